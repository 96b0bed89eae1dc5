//! The host planner, scenario by scenario: each test plans against a fake engine's observed
//! state, snapshots the plan text, then applies it to the fake and checks that planning again
//! changes nothing (convergence).

use std::path::Path;
use std::sync::Arc;
use swarmctl::apply::{apply, ApplyOptions, Silent};
use swarmctl::engine::{FakeEngine, HostEngine};
use swarmctl::model::host::{ContainerState, ObservedContainer};
use swarmctl::plan::host::{candidate_names, plan, plan_down, HostOp, Plan};
use swarmctl::plan::{Op, PlanOptions};
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

async fn deploy(engine: &FakeEngine, loaded: &Loaded) -> Plan {
    let planned = plan_for(engine, loaded).await;
    let report = apply(&planned, Arc::new(engine.clone()), &Silent, &ApplyOptions::default()).await;
    assert!(report.converged(), "{:?}", report.outcomes);
    planned
}

fn engine() -> FakeEngine {
    let engine = FakeEngine::new();
    engine.add_image(IMAGE);
    engine
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
    deploy: {replicas: 2}
    environment: {MODE: blue}
    depends_on:
      migrate: {condition: service_completed_successfully}
      cache: {condition: service_started}
  cache:
    image: swarmctl-test/testapp:latest
volumes:
  data:
"#;

#[tokio::test]
async fn a_cold_deploy_creates_everything_in_dependency_order_and_converges() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = stack(dir.path(), SHOP);
    let engine = engine();
    let planned = deploy(&engine, &loaded).await;
    insta::assert_snapshot!("cold_deploy", planned.to_string());
    assert!(plan_for(&engine, &loaded).await.is_empty(), "a second plan must change nothing");
}

#[tokio::test]
async fn a_changed_service_is_replaced_and_nothing_else_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let changed = stack(dir.path(), &SHOP.replace("MODE: blue", "MODE: green"));
    let planned = plan_for(&engine, &changed).await;
    insta::assert_snapshot!("change_one_service", planned.to_string());
    assert!(planned.steps.iter().all(|s| s.service.as_deref() == Some("web")));
    deploy(&engine, &changed).await;
    assert!(plan_for(&engine, &changed).await.is_empty());
}

#[tokio::test]
async fn scaling_adds_or_removes_replicas_without_touching_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let up = stack(dir.path(), &SHOP.replace("deploy: {replicas: 2}\n    environment", "deploy: {replicas: 3}\n    environment"));
    insta::assert_snapshot!("scale_up", plan_for(&engine, &up).await.to_string());
    let down = stack(dir.path(), &SHOP.replace("x-kind: statefulset\n    deploy: {replicas: 2}", "x-kind: statefulset\n    deploy: {replicas: 1}"));
    let planned = plan_for(&engine, &down).await;
    insta::assert_snapshot!("scale_down_statefulset_keeps_volumes", planned.to_string());
    assert!(planned.steps.iter().all(|s| !s.op.verb().contains("volume")), "scaling down never deletes volumes");
}

#[tokio::test]
async fn a_removed_service_is_an_orphan_and_its_volume_is_only_reported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let without_db = r#"
name: shop
services:
  cache:
    image: swarmctl-test/testapp:latest
"#;
    let planned = plan_for(&engine, &stack(dir.path(), without_db)).await;
    insta::assert_snapshot!("orphans", planned.to_string());
    assert_eq!(planned.orphaned_volumes, vec!["shop_data-0", "shop_data-1"]);
}

#[tokio::test]
async fn a_completed_job_is_not_run_again_and_a_failed_one_is() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), SHOP);
    deploy(&engine, &loaded).await;
    assert!(plan_for(&engine, &loaded).await.is_empty(), "exited 0 and unchanged: satisfied");
    // The job's container exited non-zero (e.g. a migration failed last time).
    let job = engine.container("shop-migrate-1").unwrap();
    engine.add_container(ObservedContainer { state: ContainerState::Exited { code: 3 }, ..job });
    insta::assert_snapshot!("job_rerun", plan_for(&engine, &loaded).await.to_string());
}

#[tokio::test]
async fn names_taken_by_foreign_objects_and_missing_images_are_refused_before_any_change() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    engine.add_image(IMAGE);
    engine.add_container(ObservedContainer {
        id: "foreign".into(),
        name: "shop-cache-1".into(),
        image: IMAGE.into(),
        labels: Default::default(),
        state: ContainerState::Running,
        health: None,
        created: String::new(),
        networks: Default::default(),
        anonymous_volumes: Default::default(),
    });
    let loaded = stack(dir.path(), &SHOP.replace("  cache:\n    image: swarmctl-test/testapp:latest", "  cache:\n    image: not-here:1"));
    let observed = engine.observe("shop", &candidate_names(&loaded.stack)).await.unwrap();
    let error = plan(&loaded.stack, &loaded.graph, &observed, &PlanOptions::default()).unwrap_err();
    insta::assert_snapshot!("refused", error.to_string());
}

#[tokio::test]
async fn a_job_created_but_never_started_is_started_not_just_awaited() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), SHOP);
    deploy(&engine, &loaded).await;
    // A deploy killed between the job's create and start leaves it `Created`; waiting on it
    // would return at once (the engine reports exit 0 for a container that never ran).
    let job = engine.container("shop-migrate-1").unwrap();
    engine.add_container(ObservedContainer { state: ContainerState::Created, ..job });
    insta::assert_snapshot!("job_never_started", plan_for(&engine, &loaded).await.to_string());
}

#[tokio::test]
async fn a_replacement_mounts_its_predecessors_anonymous_volumes_and_only_down_volumes_deletes_them() {
    const CACHED: &str = "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    environment: {MODE: blue}\n    volumes: [/cache, /scratch]\n";
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), CACHED)).await;
    let observed = engine.observe("shop", &Default::default()).await.unwrap();
    let before = observed.containers[0].anonymous_volumes.clone();
    assert_eq!(before.keys().collect::<Vec<_>>(), ["/cache", "/scratch"]);

    // `/scratch` becomes a named volume: only `/cache` is inherited.
    let changed = stack(dir.path(), &CACHED.replace("MODE: blue", "MODE: green").replace("/scratch]", "scratch:/scratch]\nvolumes:\n  scratch:\n"));
    let planned = plan_for(&engine, &changed).await;
    let created = planned.steps.iter().find_map(|s| match &s.op {
        HostOp::CreateContainer { spec, .. } => Some(spec.mounts.clone()),
        _ => None,
    });
    let mounts: Vec<(String, String)> = created.unwrap().into_iter().map(|m| (m.target, m.source)).collect();
    assert_eq!(mounts, [("/cache".to_string(), before["/cache"].clone()), ("/scratch".to_string(), "shop_scratch".to_string())]);
    deploy(&engine, &changed).await;
    assert!(plan_for(&engine, &changed).await.is_empty(), "an inherited mount is not a change");

    let observed = engine.observe("shop", &Default::default()).await.unwrap();
    let keep = plan_down("shop", &observed, false).to_string();
    let delete = plan_down("shop", &observed, true).to_string();
    assert!(!keep.contains("anonymous"), "{keep}");
    insta::assert_snapshot!("down_volumes", delete);
}

const TWO_NETWORKS: &str = r#"
name: shop
services:
  web:
    image: swarmctl-test/testapp:latest
    networks: [front, back]
    configs: [{source: settings, target: /etc/web.conf}]
networks: {front: {}, back: {}}
configs:
  settings: {content: "greeting=hello"}
"#;

/// A container that needs more than one call is made under another name and renamed last, so
/// a deploy killed half-way leaves nothing a later plan could take for a finished container.
#[tokio::test]
async fn a_container_made_in_several_calls_gets_its_name_last_and_a_half_made_one_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), TWO_NETWORKS);
    let planned = deploy(&engine, &loaded).await;
    insta::assert_snapshot!("made_in_several_calls", planned.to_string());
    assert!(plan_for(&engine, &loaded).await.is_empty());

    // Killed before the rename: the half-made container has the stack's labels and the right
    // spec hash, but not its name.
    let made = engine.container("shop-web-1").unwrap();
    engine.add_container(ObservedContainer { name: "shop-web-1.incomplete".into(), state: ContainerState::Created, ..made });
    let again = deploy(&engine, &loaded).await;
    insta::assert_snapshot!("half_made_is_made_again", again.to_string());
    assert!(plan_for(&engine, &loaded).await.is_empty());
}

/// `down` stops dependents before what they depend on, as compose does: the database outlives
/// the application that writes to it. A stack name is enough (the order is in the labels).
#[tokio::test]
async fn down_removes_dependents_first() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    deploy(&engine, &stack(dir.path(), SHOP)).await;
    let observed = engine.observe("shop", &Default::default()).await.unwrap();
    let planned = plan_down("shop", &observed, false);
    insta::assert_snapshot!("down_dependents_first", planned.to_string());
    let removal = |name: &str| planned.steps.iter().find(|s| matches!(&s.op, HostOp::RemoveContainer { name: n, .. } if n == name)).unwrap().id;
    let stop = |name: &str| planned.steps.iter().find(|s| matches!(&s.op, HostOp::StopContainer { name: n, .. } if n == name)).unwrap();
    assert!(stop("shop-db-0").after.contains(&removal("shop-migrate-1")), "db stops after migrate is gone");
    assert!(stop("shop-cache-1").after.contains(&removal("shop-web-1")), "cache stops after web is gone");
}

const EXTERNAL: &str = r#"
name: shop
services:
  web:
    image: swarmctl-test/testapp:latest
    networks: [shared]
    volumes: [uploads:/srv/uploads]
networks:
  shared: {external: {name: platform-net}}
volumes:
  uploads: {external: {name: platform-uploads}}
"#;

/// External networks and volumes are used by the name they are given, in the old
/// `external: {name: x}` spelling too, and must exist: the engine would make an empty volume
/// in place of a missing one (docker-compose refuses that too).
#[tokio::test]
async fn external_networks_and_volumes_are_used_by_their_name_and_must_exist() {
    use swarmctl::model::host::{ObservedNetwork, ObservedVolume};
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), EXTERNAL);
    let observed = engine.observe("shop", &candidate_names(&loaded.stack)).await.unwrap();
    let error = plan(&loaded.stack, &loaded.graph, &observed, &PlanOptions::default()).unwrap_err();
    insta::assert_snapshot!("external_missing", error.to_string());

    engine.add_network(ObservedNetwork { id: "net-platform".into(), name: "platform-net".into(), labels: Default::default() });
    engine.add_volume(ObservedVolume { name: "platform-uploads".into(), labels: Default::default() });
    let planned = deploy(&engine, &loaded).await;
    let (spec, network) = planned
        .steps
        .iter()
        .find_map(|s| match &s.op {
            HostOp::CreateContainer { spec, network } => Some((spec.clone(), network.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(spec.mounts[0].source, "platform-uploads");
    assert_eq!(network, Some(swarmctl::plan::host::NetworkRef::Existing("platform-net".into())));
    assert!(!planned.steps.iter().any(|s| matches!(s.op, HostOp::CreateNetwork { .. } | HostOp::CreateVolume { .. })), "{planned}");
    assert!(plan_for(&engine, &loaded).await.is_empty());
}

/// One host has no config or secret objects: an external one is refused at the service that
/// mounts it, rather than the container starting without the file.
#[tokio::test]
async fn external_configs_and_secrets_are_refused_on_one_host() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    configs: [settings]\n    secrets:\n      - source: token\n        target: api-token\nconfigs:\n  settings: {external: true}\nsecrets:\n  token: {external: true, name: shop-token}\n";
    let loaded = stack(dir.path(), yaml);
    let observed = engine.observe("shop", &candidate_names(&loaded.stack)).await.unwrap();
    let error = plan(&loaded.stack, &loaded.graph, &observed, &PlanOptions::default()).unwrap_err();
    insta::assert_snapshot!("external_files_refused", error.to_string());
    assert_eq!(error.problems.len(), 2);
    assert!(error.problems.iter().all(|p| p.pos.is_some()), "each at the mount that names it: {error}");
}

/// On one host, `deploy.mode: global-job` is a job with one run (one host is one node).
#[tokio::test]
async fn a_global_job_runs_once_on_one_host() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let loaded = stack(dir.path(), "name: shop\nservices:\n  prepare:\n    image: swarmctl-test/testapp:latest\n    deploy: {mode: global-job}\n");
    let planned = deploy(&engine, &loaded).await;
    let waits: Vec<&HostOp> = planned.steps.iter().map(|s| &s.op).filter(|op| matches!(op, HostOp::WaitCompleted { .. })).collect();
    assert_eq!(waits.len(), 1, "{planned}");
    assert!(plan_for(&engine, &loaded).await.is_empty());
}

/// `pull_policy` is not acted on (nothing is pulled): changing it changes no container.
#[tokio::test]
async fn pull_policy_is_not_part_of_the_spec_hash() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let yaml = "name: shop\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n";
    deploy(&engine, &stack(dir.path(), yaml)).await;
    for policy in ["always", "never", "build"] {
        let changed = stack(dir.path(), &format!("{yaml}    pull_policy: {policy}\n"));
        assert!(plan_for(&engine, &changed).await.is_empty(), "pull_policy: {policy}");
    }
}

/// `bind.propagation` (and a propagation in the short syntax), `tmpfs.mode` and
/// `build.no_cache` reach the engine.
#[tokio::test]
async fn mount_options_and_build_no_cache_reach_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let yaml = "name: shop\nservices:\n  web:\n    build: {context: ., no_cache: true}\n    volumes:\n      - {type: bind, source: ./data, target: /data, bind: {propagation: rshared, create_host_path: true}}\n      - ./logs:/logs:ro,rslave\n      - {type: tmpfs, target: /run, tmpfs: {mode: 01777}}\n";
    let loaded = stack(dir.path(), yaml);
    let planned = plan_for(&FakeEngine::new(), &loaded).await;
    let build = planned.steps.iter().find_map(|s| match &s.op {
        HostOp::BuildImage { spec } => Some(spec.clone()),
        _ => None,
    });
    assert!(build.unwrap().no_cache);
    let mounts = planned.steps.iter().find_map(|s| match &s.op {
        HostOp::CreateContainer { spec, .. } => Some(spec.mounts.clone()),
        _ => None,
    });
    let options: Vec<(String, Option<String>, Option<u32>)> = mounts.unwrap().into_iter().map(|m| (m.target, m.propagation, m.tmpfs_mode)).collect();
    assert_eq!(
        options,
        [("/data".into(), Some("rshared".into()), None), ("/logs".into(), Some("rslave".into()), None), ("/run".into(), None, Some(0o1777))]
    );
}
