//! The swarm planner, scenario by scenario, against the fake swarm engine: each test plans,
//! snapshots the plan text, applies it to the fake and checks that planning again changes
//! nothing. The real cluster runs the same scenarios in `tests/swarm_deploy.rs`.

use std::path::Path;
use std::sync::Arc;
use swarmctl::apply::{apply, ApplyOptions, Silent};
use swarmctl::engine::fake_swarm::FakeSwarmEngine;
use swarmctl::engine::{Scripted, SwarmEngine};
use swarmctl::model::node::{Node, NANO_CPUS_PER_CPU};
use swarmctl::model::swarm::ObservedSwarm;
use swarmctl::plan::swarm::{candidate_names, plan, plan_down, Plan, SwarmOp};
use swarmctl::plan::{Op, PlanOptions};
use swarmctl::spec::{load, LoadOptions, Loaded};

const IMAGE: &str = "swarmctl-test/testapp:latest";

fn stack(dir: &Path, yaml: &str) -> Loaded {
    std::fs::write(dir.join("stack.yaml"), yaml).unwrap();
    let options = LoadOptions { path: dir.to_path_buf(), ..LoadOptions::default() };
    load(&options, &|_: &str| None::<String>).unwrap_or_else(|f| panic!("{:?}", f.diagnostics))
}

/// Three ready nodes, 2 CPUs and 4 GiB each: the fake's manager node-1, and two workers.
fn engine() -> FakeSwarmEngine {
    let engine = FakeSwarmEngine::new();
    engine.add_image(IMAGE);
    for index in 2..=3 {
        let mut node = Node::new(&format!("node-{index}"));
        node.resources.nano_cpus = 2 * NANO_CPUS_PER_CPU;
        node.resources.memory_bytes = 4 << 30;
        engine.add_node(node);
    }
    engine
}

async fn observe(engine: &FakeSwarmEngine, loaded: &Loaded) -> ObservedSwarm {
    engine.observe(&loaded.stack.name, &candidate_names(&loaded.stack)).await.unwrap()
}

async fn plan_for(engine: &FakeSwarmEngine, loaded: &Loaded) -> Plan {
    plan(&loaded.stack, &loaded.graph, &observe(engine, loaded).await, &PlanOptions::default()).unwrap()
}

async fn deploy(engine: &FakeSwarmEngine, loaded: &Loaded) -> Plan {
    let planned = plan_for(engine, loaded).await;
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged(), "{planned}\n{:?}", report.outcomes);
    planned
}

/// The plan's steps only: the placement table has its own tests.
fn steps(plan: &Plan) -> String {
    Plan { placement: None, ..plan.clone() }.to_string()
}

const SHOP: &str = r#"
name: shop
services:
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    deploy: {replicas: 2}
    healthcheck: {test: ["CMD", "true"], interval: 1s}
    volumes: [data:/data]
  migrate:
    image: swarmctl-test/testapp:latest
    depends_on: {db: {condition: service_healthy}}
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 3}
    environment: {MODE: blue}
    configs: [{source: settings, target: /etc/web.conf}]
    depends_on:
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started}
  cache:
    image: swarmctl-test/testapp:latest
  agent:
    image: swarmctl-test/testapp:latest
    deploy: {mode: global}
configs:
  settings: {content: "greeting=hello"}
volumes:
  data:
"#;

#[tokio::test(start_paused = true)]
async fn a_cold_deploy_creates_everything_in_dependency_order_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = stack(dir.path(), SHOP);
    let engine = engine();
    let planned = deploy(&engine, &loaded).await;
    insta::assert_snapshot!("swarm_cold_deploy", steps(&planned));
    assert!(plan_for(&engine, &loaded).await.is_empty(), "a second plan must change nothing");
    // Every service waited for its dependencies: web after migrate completed, migrate after db.
    let calls = engine.calls();
    let at = |call: &str| calls.iter().position(|c| c == call).unwrap_or_else(|| panic!("{call} not in {calls:?}"));
    assert!(at("wait_service shop_db-1") < at("create_service shop_migrate"));
    assert!(at("wait_service shop_migrate") < at("create_service shop_web"));
    assert!(at("wait_service shop_db-0") < at("create_service shop_db-1"), "ordinals start in order");
    // Each ordinal is pinned to a node, and they are spread.
    let pins: Vec<String> = ["shop_db-0", "shop_db-1"]
        .iter()
        .map(|name| engine.service(name).unwrap().placement.constraints.last().cloned().unwrap())
        .collect();
    assert!(pins.iter().all(|p| p.starts_with("node.id==")), "{pins:?}");
    assert_ne!(pins[0], pins[1], "ordinals go to different nodes");
}

#[tokio::test(start_paused = true)]
async fn a_changed_service_is_updated_naming_the_field_and_nothing_else_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let changed = stack(dir.path(), &SHOP.replace("MODE: blue", "MODE: green"));
    let planned = plan_for(&engine, &changed).await;
    insta::assert_snapshot!("swarm_change_one_service", steps(&planned));
    assert!(planned.steps.iter().all(|s| s.service.as_deref() == Some("web")));
    deploy(&engine, &changed).await;
    assert!(plan_for(&engine, &changed).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_surge_rollout_says_swarm_counts_a_stopping_replica_as_gone() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let surge = SHOP.replace("    deploy: {replicas: 3}\n", "    deploy: {replicas: 3}\n    x-rollout: {max_surge: 1, max_unavailable: 0}\n");
    deploy(&engine, &stack(dir.path(), &surge)).await;
    let planned = plan_for(&engine, &stack(dir.path(), &surge.replace("MODE: blue", "MODE: green"))).await;
    let notes = &planned.rollouts.iter().find(|r| r.service == "web").expect("web rolls out").notes;
    assert!(notes.iter().any(|n| n.contains("told to stop") && n.contains("more containers run than max surge allows")), "{notes:?}");
}

#[tokio::test(start_paused = true)]
async fn new_config_content_is_a_new_config_and_the_old_one_goes_after_the_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let changed = stack(dir.path(), &SHOP.replace("greeting=hello", "greeting=bonjour"));
    let planned = plan_for(&engine, &changed).await;
    insta::assert_snapshot!("swarm_config_changed", steps(&planned));
    let removal = planned.steps.iter().find(|s| matches!(s.op, SwarmOp::RemoveConfig { .. })).expect("the old config goes");
    let wait = planned.steps.iter().find(|s| matches!(s.op, SwarmOp::WaitService(_)) && s.service.as_deref() == Some("web")).unwrap();
    assert!(removal.after.contains(&wait.id), "after the rollout, not before");
    deploy(&engine, &changed).await;
    assert!(plan_for(&engine, &changed).await.is_empty());
    assert_eq!(observe(&engine, &changed).await.configs.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn scaling_is_an_update_and_removed_services_go() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let scaled = stack(dir.path(), &SHOP.replace("deploy: {replicas: 3}", "deploy: {replicas: 5}").replace("  agent:\n    image: swarmctl-test/testapp:latest\n    deploy: {mode: global}\n", ""));
    let planned = plan_for(&engine, &scaled).await;
    insta::assert_snapshot!("swarm_scale_and_orphan", steps(&planned));
    deploy(&engine, &scaled).await;
    assert!(plan_for(&engine, &scaled).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_ordinal_keeps_its_node_and_its_volume() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let before = engine.service("shop_db-0").unwrap();
    // Another image for db: the ordinal is updated in place, pinned where it was.
    let changed = stack(dir.path(), &SHOP.replace("    x-kind: statefulset\n", "    x-kind: statefulset\n    environment: {V: \"2\"}\n"));
    deploy(&engine, &changed).await;
    let after = engine.service("shop_db-0").unwrap();
    assert_eq!(before.placement.constraints, after.placement.constraints);
    assert_eq!(after.container.mounts[0].source, "shop_data-0");
}

#[tokio::test(start_paused = true)]
async fn keys_a_swarm_cannot_honour_and_unplaceable_services_are_refused_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let privileged = stack(dir.path(), "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    privileged: true\n");
    let error = plan(&privileged.stack, &privileged.graph, &observe(&engine, &privileged).await, &PlanOptions::default()).unwrap_err();
    assert!(error.to_string().contains("a swarm service has no `privileged`"), "{error}");
    // A value that asks for nothing a task would not get anyway is no reason to refuse.
    let harmless = stack(
        dir.path(),
        "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    privileged: false\n    devices: []\n    security_opt: []\n    volumes_from: []\n    pid: \"\"\n    ipc: private\n    userns_mode: \"\"\n    runtime: \"\"\n    cgroup_parent: \"\"\n",
    );
    plan(&harmless.stack, &harmless.graph, &observe(&engine, &harmless).await, &PlanOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let cgroup = stack(dir.path(), "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    cgroup_parent: /batch\n    security_opt: [seccomp=unconfined]\n");
    let error = plan(&cgroup.stack, &cgroup.graph, &observe(&engine, &cgroup).await, &PlanOptions::default()).unwrap_err();
    let refused: Vec<&str> = error.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(refused, ["service `web`: a swarm service has no `security_opt`", "service `web`: a swarm service has no `cgroup_parent`"]);
    assert!(error.problems.iter().all(|p| p.pos.is_some()), "each at its key");
    let unplaceable = stack(
        dir.path(),
        "name: shop\nservices:\n  db:\n    image: swarmctl-test/testapp:latest\n    deploy:\n      placement: {constraints: [node.labels.tier == data]}\n",
    );
    let error = plan(&unplaceable.stack, &unplaceable.graph, &observe(&engine, &unplaceable).await, &PlanOptions::default()).unwrap_err();
    insta::assert_snapshot!("swarm_unplaceable", error.to_string());
    assert!(engine.calls().iter().all(|c| !c.starts_with("create")), "nothing was changed: {:?}", engine.calls());
}

#[tokio::test(start_paused = true)]
async fn down_removes_dependents_first_then_networks_and_configs() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), SHOP);
    deploy(&engine, &loaded).await;
    let observed = observe(&engine, &loaded).await;
    let planned = plan_down("shop", &observed, false);
    insta::assert_snapshot!("swarm_down", planned.to_string());
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged(), "{:?}", report.outcomes);
    let left = observe(&engine, &loaded).await;
    assert!(left.services.is_empty() && left.networks.is_empty() && left.configs.is_empty(), "{left:?}");
    assert!(planned.steps.iter().all(|s| s.op.verb() != "remove volume"));
}

#[tokio::test(start_paused = true)]
async fn an_ordinal_whose_node_is_down_stays_there_and_is_reported_and_the_rest_deploys() {
    use swarmctl::apply::StepOutcome;
    use swarmctl::model::node::State;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let pin = engine.service("shop_db-1").unwrap().placement.constraints.last().cloned().unwrap();
    let lost = pin.trim_start_matches("node.id==").to_string();
    let mut node = observe(&engine, &stack(dir.path(), SHOP)).await.nodes.into_iter().find(|n| n.id == lost).unwrap();
    node.state = State::Down;
    engine.add_node(node.clone());

    // A change to every service: db-1 is not touched, it is reported; the rest is updated.
    let changed = stack(dir.path(), &SHOP.replace("image: swarmctl-test/testapp:latest", "image: swarmctl-test/testapp:latest\n    environment: {V: \"2\"}").replace("    environment: {MODE: blue}\n", ""));
    let planned = plan_for(&engine, &changed).await;
    insta::assert_snapshot!("swarm_ordinal_on_lost_node", steps(&planned));
    let unavailable = planned.steps.iter().find(|s| matches!(s.op, SwarmOp::Unavailable { .. })).expect("db-1 is reported");
    assert_eq!(unavailable.op.object(), "shop_db-1");
    assert!(!planned.steps.iter().any(|s| s.op.is_mutation() && s.op.object() == "shop_db-1"), "{planned}");
    let placement = planned.placement.as_ref().unwrap();
    assert!(placement.services.iter().all(|s| !s.nodes.contains_key(&lost)), "nothing new is placed on the lost node");

    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(!report.converged(), "a missing ordinal is not converged");
    let outcome = |object: &str, verb: &str| {
        let step = planned.steps.iter().position(|s| s.op.object() == object && s.op.verb() == verb).unwrap_or_else(|| panic!("{verb} {object}"));
        report.outcomes[step].clone()
    };
    match outcome("shop_db-1", "unavailable") {
        StepOutcome::Failed { error, .. } => assert!(error.contains(&format!("its volumes are on {}, which is down", node.hostname)), "{error}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(outcome("shop_migrate", "update service"), StepOutcome::Skipped { .. }), "migrate waits for db: skipped");
    assert!(matches!(outcome("shop_cache", "update service"), StepOutcome::Done { .. }), "what does not need db goes on");
    assert!(matches!(outcome("shop_db-0", "update service"), StepOutcome::Skipped { .. }), "ordered: db-0 waits for db-1, as a StatefulSet does");

    // `status` says which node is down and why db has one replica.
    let observed = observe(&engine, &changed).await;
    let predicted = planned.placement.as_ref().unwrap().counts();
    let status = swarmctl::status::swarm::from_observed("shop", &observed, Some(&swarmctl::status::desired(&changed.stack)), Some(&predicted));
    let text = status.to_string();
    assert!(text.contains(&format!("! db-1: its volumes are on {}, which is down", node.hostname)), "{text}");
    let lost_row = text.lines().find(|l| l.starts_with(&node.hostname)).unwrap_or_else(|| panic!("{text}"));
    assert!(lost_row.contains("down"), "{text}");
    assert!(!status.all_ready());
}

/// External networks and secrets are looked up by the name they are given, in the old
/// `external: {name: x}` spelling too.
#[tokio::test(start_paused = true)]
async fn external_objects_are_looked_up_by_their_external_name() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    networks: [shared]\n    secrets: [token]\nnetworks:\n  shared: {external: {name: platform-net}}\nsecrets:\n  token: {external: {name: platform-token}}\n";
    let loaded = stack(dir.path(), yaml);
    let error = plan(&loaded.stack, &loaded.graph, &observe(&engine, &loaded).await, &PlanOptions::default()).unwrap_err().to_string();
    assert!(error.contains("external network `platform-net` does not exist"), "{error}");
    assert!(error.contains("external secret `platform-token` does not exist"), "{error}");
}

/// `deploy.mode: global-job` runs one task to completion on every node, not one on one node;
/// its dependents wait for all of them.
#[tokio::test(start_paused = true)]
async fn a_global_job_runs_on_every_node() {
    use swarmctl::model::service::ServiceMode;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = "name: shop\nservices:\n  prepare:\n    image: swarmctl-test/testapp:latest\n    deploy: {mode: global-job}\n  web:\n    image: swarmctl-test/testapp:latest\n    depends_on: {prepare: {condition: service_completed_successfully}}\n";
    let loaded = stack(dir.path(), yaml);
    let planned = deploy(&engine, &loaded).await;
    assert_eq!(engine.service("shop_prepare").unwrap().mode, ServiceMode::GlobalJob);
    let create = planned.steps.iter().find(|s| s.op.verb() == "create service" && s.op.object() == "shop_web").unwrap();
    let wait = planned.steps.iter().find(|s| matches!(s.op, SwarmOp::WaitService(_)) && s.service.as_deref() == Some("prepare")).unwrap();
    assert!(create.after.contains(&wait.id), "{planned}");
    assert!(plan_for(&engine, &loaded).await.is_empty(), "a completed global job is not run again");
}

/// `volume.nocopy`, `bind.propagation` and `tmpfs.mode` reach the service's mounts (the engine
/// sends them as `VolumeOptions.NoCopy`, `BindOptions.Propagation`, `TmpfsOptions.Mode`).
#[tokio::test(start_paused = true)]
async fn mount_options_reach_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    volumes:\n      - {type: volume, source: data, target: /data, volume: {nocopy: true}}\n      - cache:/cache\n      - {type: bind, source: /srv, target: /srv, bind: {propagation: rslave}}\n      - {type: tmpfs, target: /run, tmpfs: {mode: 01777}}\n    tmpfs: ['/scratch:mode=0700,size=1m']\nvolumes: {data: {}, cache: {}}\n";
    deploy(&engine, &stack(dir.path(), yaml)).await;
    let mounts = engine.service("shop_web").unwrap().container.mounts;
    let options: Vec<(&str, bool, Option<&str>, Option<u32>)> = mounts.iter().map(|m| (m.target.as_str(), m.no_copy, m.propagation.as_deref(), m.tmpfs_mode)).collect();
    assert_eq!(
        options,
        [("/data", true, None, None), ("/cache", false, None, None), ("/srv", false, Some("rslave"), None), ("/run", false, None, Some(0o1777)), ("/scratch", false, None, Some(0o700))]
    );
}
