//! The executor against the fake engine: it follows the DAG, bounds concurrent API calls, skips
//! only what depends on a failure, and stops scheduling when cancelled.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use swarmctl::apply::{apply, ApplyOptions, Silent, StepOutcome};
use swarmctl::engine::{fake::ANY, FakeEngine};
use swarmctl::model::objects::{ContainerSpec, NetworkAttachment, NetworkSpec};
use swarmctl::plan::host::{ContainerRef, HostOp, NetworkRef, Plan};
use swarmctl::plan::{Cause, StepId};

fn create(plan: &mut Plan, name: &str, network: Option<StepId>, after: Vec<StepId>) -> StepId {
    let mut spec = ContainerSpec { name: name.into(), image: "img".into(), ..Default::default() };
    let networks: Vec<NetworkRef> = network.into_iter().map(NetworkRef::CreatedBy).collect();
    spec.networks = networks.iter().map(|_| NetworkAttachment { network_id: String::new(), aliases: vec![] }).collect();
    let mut after = after;
    after.extend(network);
    let created = plan.push(HostOp::CreateContainer { spec: Box::new(spec), networks }, Cause::Missing, after, Some(name));
    plan.push(HostOp::StartContainer { container: ContainerRef::CreatedBy(created), name: name.into() }, Cause::Missing, vec![created], Some(name))
}

fn network(plan: &mut Plan) -> StepId {
    plan.push(HostOp::CreateNetwork { spec: NetworkSpec { name: "net".into(), ..Default::default() } }, Cause::Missing, vec![], None)
}

#[tokio::test]
async fn steps_run_after_what_they_depend_on() {
    let engine = FakeEngine::new();
    let mut plan = Plan::default();
    let net = network(&mut plan);
    let db = create(&mut plan, "db", Some(net), vec![]);
    create(&mut plan, "web", Some(net), vec![db]);
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged());
    let calls = engine.calls();
    let position = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("{call} not in {calls:?}"));
    assert!(position("create_network net") < position("create_container db"));
    assert!(position("start_container db") < position("create_container web"));
}

#[tokio::test]
async fn concurrent_engine_calls_never_exceed_the_bound() {
    let engine = FakeEngine::new();
    engine.delay("create_container", ANY, Duration::from_millis(30));
    let mut plan = Plan::default();
    for i in 0..24 {
        create(&mut plan, &format!("c{i}"), None, vec![]);
    }
    let options = ApplyOptions { concurrency: 4, ..ApplyOptions::default() };
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &options).await;
    assert!(report.converged());
    assert!(engine.max_in_flight() <= 4, "max in flight {}", engine.max_in_flight());
    assert!(engine.max_in_flight() >= 2, "independent steps should overlap");
}

#[tokio::test]
async fn a_failure_skips_its_dependents_while_independent_work_finishes() {
    let engine = FakeEngine::new();
    engine.fail_on("start_container", "db");
    let mut plan = Plan::default();
    let db = create(&mut plan, "db", None, vec![]);
    let web = create(&mut plan, "web", None, vec![db]);
    let cache = create(&mut plan, "cache", None, vec![]);
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(!report.converged());
    assert!(matches!(report.outcomes[db], StepOutcome::Failed { .. }));
    assert!(matches!(report.outcomes[web], StepOutcome::Skipped { because } if because == db));
    assert!(matches!(report.outcomes[web - 1], StepOutcome::Skipped { .. }), "web's create is skipped too");
    assert!(matches!(report.outcomes[cache], StepOutcome::Done { .. }));
    assert!(!engine.calls().iter().any(|c| c.ends_with(" web")));
}

#[tokio::test]
async fn cancelling_stops_scheduling_and_reports_what_did_not_run() {
    let engine = FakeEngine::new();
    let mut plan = Plan::default();
    let first = create(&mut plan, "first", None, vec![]);
    create(&mut plan, "second", None, vec![first]);
    let options = ApplyOptions::default();
    options.cancel.store(true, Ordering::SeqCst);
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &options).await;
    assert!(report.interrupted);
    assert!(report.outcomes.iter().all(|o| *o == StepOutcome::NotRun));
    assert!(engine.calls().is_empty());
}

#[tokio::test]
async fn created_ids_reach_the_steps_that_use_them() {
    let engine = FakeEngine::new();
    let mut plan = Plan::default();
    let net = network(&mut plan);
    create(&mut plan, "web", Some(net), vec![]);
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged(), "{:?}", report.outcomes);
    assert!(engine.calls().contains(&"start_container web".to_string()));
}
