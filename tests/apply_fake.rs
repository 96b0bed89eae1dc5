//! The executor against the fake engine: it follows the DAG, bounds concurrent API calls, skips
//! only what depends on a failure, and stops scheduling when cancelled.

use std::sync::Arc;
use std::time::Duration;
use swarmctl::apply::{apply, ApplyOptions, Execute, Silent, StepOutcome};
use swarmctl::engine::fake::{FakeHealth, ANY};
use swarmctl::engine::{EngineError, FakeEngine, Scripted};
use swarmctl::model::objects::{ContainerSpec, NetworkAttachment, NetworkSpec};
use swarmctl::plan::host::{ContainerRef, HostOp, NetworkRef, Plan};
use swarmctl::plan::{Cause, StepId};

fn create(plan: &mut Plan, name: &str, network: Option<StepId>, after: Vec<StepId>) -> StepId {
    let mut spec = ContainerSpec { name: name.into(), image: "img".into(), ..Default::default() };
    spec.network = network.map(|_| NetworkAttachment { network_id: String::new(), aliases: vec![], ..Default::default() });
    let mut after = after;
    after.extend(network);
    let created = plan.push(HostOp::CreateContainer { spec: Box::new(spec), network: network.map(NetworkRef::CreatedBy) }, Cause::Missing, after, Some(name));
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
    options.cancel.cancel();
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

/// Ctrl-C must end a wait at once, not when the wait would have timed out (the clock is
/// tokio's paused test clock, so this measures no real time).
#[tokio::test(start_paused = true)]
async fn cancelling_ends_the_waits_in_flight_at_once() {
    let engine = FakeEngine::new();
    engine.set_health("db", FakeHealth::NeverHealthy);
    let mut plan = Plan::default();
    let started = create(&mut plan, "db", None, vec![]);
    let wait = plan.push(
        HostOp::WaitHealthy { container: ContainerRef::CreatedBy(started - 1), name: "db".into(), timeout: Duration::from_secs(300) },
        Cause::Readiness,
        vec![started],
        Some("db"),
    );
    let options = ApplyOptions::default();
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        cancel.cancel();
    });
    let began = tokio::time::Instant::now();
    let report = apply(&plan, Arc::new(engine.clone()), &Silent, &options).await;
    assert!(began.elapsed() < Duration::from_secs(5), "the wait ran on for {:?}", began.elapsed());
    assert!(report.interrupted);
    assert_eq!(report.outcomes[wait], StepOutcome::NotRun);
    assert!(matches!(report.outcomes[started], StepOutcome::Done { .. }));
}

/// An engine whose every call panics.
struct Panicking;

#[async_trait::async_trait]
impl Execute<HostOp> for Panicking {
    async fn execute(&self, _: &HostOp) -> Result<Option<String>, EngineError> {
        panic!("a bug in the engine layer")
    }
}

#[tokio::test]
async fn a_panic_inside_a_step_is_a_failure_with_its_message() {
    let mut plan = Plan::default();
    let first = network(&mut plan);
    let second = create(&mut plan, "web", Some(first), vec![]);
    let report = apply(&plan, Arc::new(Panicking), &Silent, &ApplyOptions::default()).await;
    match &report.outcomes[first] {
        StepOutcome::Failed { error, .. } => assert!(error.contains("a bug in the engine layer"), "{error}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    assert!(matches!(report.outcomes[second], StepOutcome::Skipped { .. }));
    assert!(!report.converged());
}
