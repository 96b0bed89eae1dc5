//! Rolling updates on one host, against the fake engine, which records every container after
//! each change: for any policy, replica count and health check, the running replicas never
//! exceed `desired + max_surge`, the available ones never drop below `desired -
//! max_unavailable`, the rollout ends with `desired` current replicas, and planning again
//! changes nothing. A version that never gets healthy stops the rollout where it is; with
//! `auto_rollback` the deploy puts the service back as the last converged revision had it.

use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use swarmctl::apply::{apply, ApplyOptions, Silent, StepOutcome};
use swarmctl::engine::fake::{FakeHealth, Scripted};
use swarmctl::engine::{FakeEngine, HostEngine};
use swarmctl::model::host::{ContainerState, HealthState, ObservedContainer};
use swarmctl::model::labels::LABEL_SERVICE;
use swarmctl::plan::host::{candidate_names, plan, Plan};
use swarmctl::plan::rollout::{resolve_deployment, Bounds};
use swarmctl::plan::PlanOptions;
use swarmctl::spec::{load, LoadOptions, Loaded};

const IMAGE: &str = "swarmctl-test/testapp:latest";

fn stack(dir: &Path, yaml: &str) -> Loaded {
    std::fs::write(dir.join("stack.yaml"), yaml).unwrap();
    let options = LoadOptions { path: dir.to_path_buf(), ..LoadOptions::default() };
    load(&options, &|_: &str| None::<String>).unwrap_or_else(|f| panic!("{:?}", f.diagnostics))
}

async fn plan_for(engine: &FakeEngine, loaded: &Loaded) -> Plan {
    let observed = engine.observe(&loaded.stack.name, &candidate_names(&loaded.stack)).await.unwrap();
    plan(&loaded.stack, &loaded.graph, &observed, &PlanOptions::default()).unwrap()
}

fn engine() -> FakeEngine {
    let engine = FakeEngine::new();
    engine.add_image(IMAGE);
    engine
}

fn web(replicas: u32, surge: &str, unavailable: &str, healthcheck: bool, version: u32) -> String {
    let check = if healthcheck { "\n    healthcheck: {test: [\"CMD\", \"true\"], interval: 1s}" } else { "" };
    format!(
        "name: shop\nservices:\n  web:\n    image: {IMAGE}\n    deploy: {{replicas: {replicas}}}\n    environment: {{VERSION: \"{version}\"}}\n    \
         x-rollout: {{max_surge: {surge}, max_unavailable: {unavailable}}}{check}\n"
    )
}

/// Running replicas of `web`, and those available (running and not starting or unhealthy).
fn counts(state: &[ObservedContainer]) -> (u32, u32) {
    let web: Vec<&ObservedContainer> = state.iter().filter(|c| c.labels.get(LABEL_SERVICE).map(String::as_str) == Some("web")).collect();
    let running = web.iter().filter(|c| c.state == ContainerState::Running).count() as u32;
    let available = web
        .iter()
        .filter(|c| c.state == ContainerState::Running && !matches!(c.health, Some(HealthState::Starting | HealthState::Unhealthy)))
        .count() as u32;
    (running, available)
}

/// Deploys version 1, then rolls out version 2 while recording; returns the bounds and every
/// recorded state of the rollout. `timing[n]`: how many ms replica number n + 1 takes to get
/// ready and to stop, so that the replicas of one batch finish in any order.
async fn roll(replicas: u32, surge: &str, unavailable: &str, healthcheck: bool, timing: &[(u64, u64)]) -> (Bounds, Vec<Vec<ObservedContainer>>, Plan, FakeEngine, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let v1 = stack(dir.path(), &web(replicas, surge, unavailable, healthcheck, 1));
    let report = apply(&plan_for(&engine, &v1).await, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged());
    for (n, &(ready, stop)) in timing.iter().enumerate() {
        let name = format!("shop-web-{}", n + 1);
        engine.delay(if healthcheck { "wait_healthy" } else { "wait_running" }, &name, Duration::from_millis(ready));
        engine.delay("stop_container", &name, Duration::from_millis(stop));
    }
    let v2 = stack(dir.path(), &web(replicas, surge, unavailable, healthcheck, 2));
    let planned = plan_for(&engine, &v2).await;
    engine.record_states();
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged(), "{planned}\n{:?}", report.outcomes);
    let rollout = &v2.stack.services["web"].rollout;
    (resolve_deployment(rollout.max_surge, rollout.max_unavailable, replicas), engine.states(), planned, engine, v2)
}

#[tokio::test(start_paused = true)]
async fn one_extra_replica_at_a_time_never_lowers_availability() {
    let (bounds, states, planned, _, _) = roll(4, "1", "0", true, &[]).await;
    assert_eq!(bounds, Bounds::new(4, 1, 0));
    let rollout = &planned.rollouts[0];
    assert_eq!(rollout.table.counts_line(), "4/0 → 4/1 → 3/1 → 3/2 → 2/2 → 2/3 → 1/3 → 1/4 → 0/4");
    for state in &states {
        let (running, available) = counts(state);
        assert!(running <= 5 && available >= 4, "{running} running, {available} available");
    }
    assert!(states.iter().any(|s| counts(s).0 == 5), "the surge is used");
}

#[tokio::test(start_paused = true)]
async fn an_old_replica_goes_as_soon_as_its_replacement_is_ready_not_after_the_slowest_of_its_batch() {
    // Two at a time: new replicas 5 and 6 replace old 4 and 3; 6 takes a second longer.
    let timing = [(0, 0), (0, 0), (0, 0), (0, 0), (0, 0), (1000, 0)];
    let (_, states, _, _, _) = roll(4, "2", "0", true, &timing).await;
    let running = |state: &[ObservedContainer], name: &str| state.iter().any(|c| c.name == name && c.state == ContainerState::Running);
    let starting = |state: &[ObservedContainer], name: &str| {
        state.iter().any(|c| c.name == name && c.state == ContainerState::Running && c.health == Some(HealthState::Starting))
    };
    assert!(
        states.iter().any(|s| !running(s, "shop-web-4") && starting(s, "shop-web-6")),
        "old 4 stopped while new 6 was still starting"
    );
    assert!(states.iter().all(|s| !(starting(s, "shop-web-6") && (running(s, "shop-web-7") || running(s, "shop-web-8")))), "the next batch waits for the whole batch");
    for state in &states {
        let (running, available) = counts(state);
        assert!(running <= 6 && available >= 4, "{running} running, {available} available");
    }
}

#[tokio::test(start_paused = true)]
async fn kubernetes_defaults_roll_ten_replicas_in_five_batches() {
    let (bounds, _, planned, _, _) = roll(10, "25%", "25%", true, &[]).await;
    assert_eq!(bounds, Bounds::new(10, 3, 2));
    assert_eq!(planned.rollouts[0].table.counts_line(), "10/0 → 10/3 → 5/3 → 5/8 → 0/8 → 0/10");
}

#[tokio::test(start_paused = true)]
async fn a_fixed_host_port_rolls_stop_first_and_the_plan_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = |version: u32| {
        format!("name: shop\nservices:\n  web:\n    image: {IMAGE}\n    ports: [\"8080:80\"]\n    environment: {{VERSION: \"{version}\"}}\n    x-rollout: {{max_surge: 1, max_unavailable: 0}}\n")
    };
    let v1 = stack(dir.path(), &yaml(1));
    apply(&plan_for(&engine, &v1).await, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    let planned = plan_for(&engine, &stack(dir.path(), &yaml(2))).await;
    let text = planned.to_string();
    assert!(text.contains("note: web publishes 8080 on the host: cannot start a second copy beside the first; rolling stop-first, 1 at a time"), "{text}");
    assert!(text.contains("rolling update of 1 replica: max surge 0, max unavailable 1"), "{text}");
    engine.record_states();
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged());
    assert!(engine.states().iter().all(|s| counts(s).0 <= 1), "never two copies binding 8080");
}

#[tokio::test(start_paused = true)]
async fn a_version_that_never_gets_healthy_stops_the_rollout_and_the_old_replicas_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let v1 = stack(dir.path(), &web(4, "1", "0", true, 1));
    apply(&plan_for(&engine, &v1).await, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    engine.set_health_by_env("VERSION=2", FakeHealth::Unhealthy);
    let planned = plan_for(&engine, &stack(dir.path(), &web(4, "1", "0", true, 2))).await;
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(!report.converged());
    let failed = report.outcomes.iter().filter(|o| matches!(o, StepOutcome::Failed { .. })).count();
    assert_eq!(failed, 1, "one new replica failed, and nothing went on after it");
    let now = engine.containers();
    let old_running = now.iter().filter(|c| c.state == ContainerState::Running && c.labels.get(LABEL_SERVICE).is_some_and(|s| s == "web")).count();
    assert!(old_running >= 4, "the 4 old replicas still run: {now:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The bounds hold at every recorded moment, whatever order the replicas of a batch get
    /// ready and stop in; the rollout ends with `desired` new replicas, and planning again
    /// changes nothing.
    #[test]
    fn every_rollout_keeps_its_bounds_and_ends_converged(
        replicas in 1u32..=7,
        surge in prop_oneof![(0u32..=3).prop_map(|n| n.to_string()), (0u32..=100).prop_map(|p| format!("\"{p}%\""))],
        unavailable in prop_oneof![(0u32..=3).prop_map(|n| n.to_string()), (0u32..=100).prop_map(|p| format!("\"{p}%\""))],
        healthcheck in any::<bool>(),
        timing in proptest::collection::vec((0u64..40, 0u64..40), 16),
    ) {
        let zero = |value: &str| value == "0" || value == "\"0%\"";
        prop_assume!(!(zero(&surge) && zero(&unavailable)), "refused at load, as Kubernetes does");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        runtime.block_on(async {
            let (bounds, states, _, engine, v2) = roll(replicas, &surge, &unavailable, healthcheck, &timing).await;
            for state in &states {
                let (running, available) = counts(state);
                prop_assert!(running <= bounds.max_total(), "{running} running > {} ({bounds:?})", bounds.max_total());
                prop_assert!(available >= bounds.min_available(), "{available} available < {} ({bounds:?})", bounds.min_available());
            }
            let end = counts(states.last().unwrap());
            prop_assert_eq!(end, (replicas, replicas));
            prop_assert!(plan_for(&engine, &v2).await.is_empty(), "planning again changes nothing");
            Ok(())
        })?;
    }
}

/// The deploy procedure on the fake engine with a store in a temporary directory.
fn target(engine: &FakeEngine, state: &Path) -> swarmctl::target::host::HostTarget {
    let dir = state.display().to_string();
    let store = swarmctl::store::local::LocalStore::new("fake", move |name| (name == "SWARMCTL_STATE_DIR").then(|| dir.clone()));
    swarmctl::target::host::HostTarget { engine: Arc::new(engine.clone()), store }
}

fn with_auto_rollback(version: u32) -> String {
    web(4, "1", "0", true, version).replace("x-rollout: {", "x-rollout: {auto_rollback: true, ")
}

#[tokio::test(start_paused = true)]
async fn with_auto_rollback_a_failed_rollout_goes_back_to_the_last_converged_revision() {
    use swarmctl::deploy::{deploy, DeployOptions};
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = engine();
    let target = target(&engine, state.path());
    let options = DeployOptions::default();
    let v1 = stack(dir.path(), &with_auto_rollback(1));
    let first = deploy(&target, &v1, &options, &Silent).await.unwrap();
    assert!(first.report.converged() && first.rolled_back.is_none());

    engine.set_health_by_env("VERSION=2", FakeHealth::Unhealthy);
    let v2 = stack(dir.path(), &with_auto_rollback(2));
    let second = deploy(&target, &v2, &options, &Silent).await.unwrap();
    assert!(!second.report.converged());
    let rolled = second.rolled_back.expect("rolled back");
    assert_eq!((rolled.services.as_slice(), rolled.to), (["web".to_string()].as_slice(), Some(1)));
    assert!(rolled.report.as_ref().is_some_and(|r| r.converged()), "the rollback itself converged");
    // Version 1 runs again, 4 replicas, and the revision says what happened.
    let web: Vec<ObservedContainer> = engine.containers().into_iter().filter(|c| c.labels.get(LABEL_SERVICE).is_some_and(|s| s == "web")).collect();
    assert_eq!(web.len(), 4, "{web:?}");
    assert!(plan_for(&engine, &v1).await.is_empty(), "what runs is revision 1's web");
    let revisions = swarmctl::store::Store::revisions(&target.store, "shop").await.unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[1].content.result, "failed");
    assert_eq!(revisions[1].content.note.as_deref(), Some("web rolled back to 1"));
}

#[tokio::test(start_paused = true)]
async fn rollback_to_a_revision_deploys_its_stack_again_and_is_recorded() {
    use swarmctl::deploy::{deploy, rollback, DeployOptions};
    let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = engine();
    let target = target(&engine, state.path());
    let options = DeployOptions::default();
    for version in 1..=3 {
        let deployed = deploy(&target, &stack(dir.path(), &web(2, "1", "0", false, version)), &options, &Silent).await.unwrap();
        assert!(deployed.report.converged());
    }
    let back = rollback(&target, "shop", Some(1), &|_, _| None, &options, &Silent).await.unwrap();
    assert!(back.report.converged());
    assert!(plan_for(&engine, &stack(dir.path(), &web(2, "1", "0", false, 1))).await.is_empty(), "revision 1 runs");
    let revisions = swarmctl::store::Store::revisions(&target.store, "shop").await.unwrap();
    assert_eq!(revisions.last().map(|r| (r.number, r.content.note.clone())), Some((4, Some("rollback to 1".into()))));
    let missing = rollback(&target, "shop", Some(9), &|_, _| None, &options, &Silent).await.unwrap_err();
    assert_eq!(missing.to_string(), "stack `shop` has no revision 9 (it has 1, 2, 3, 4)");
}
