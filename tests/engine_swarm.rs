//! The swarm engine (`impl SwarmEngine for DockerEngine`) against a real 3-node Swarm: every
//! method, on real services, tasks, networks, configs and secrets. The cluster is three
//! dockerds of our own in network namespaces (tests/cluster), started on first use and torn
//! down after the last test; the machine's own engine is never touched, and the run fails if
//! its swarm state changed or anything of the cluster is left.
//!
//! Each test works in a stack of its own (`es-<test>`), removes what it made, and also what an
//! earlier run made in that stack when the cluster is kept (`SWARMCTL_KEEP_CLUSTER=1`).
//!
//! Needs root and the machine's Docker engine (Debian's docker.io 20.10, API 1.41).
//! `harness = false`: the `main` below (libtest-mimic) owns the cluster's lifetime.

mod swarm_support;
#[allow(dead_code)]
#[path = "engine_proxy/mod.rs"]
mod engine_proxy;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use swarmctl::engine::{connect, ConnectOptions, DockerEngine, EngineError, SwarmEngine};
use swarmctl::model::labels::{LABEL_HASH, LABEL_STACK};
use swarmctl::model::node::{Availability, HostPort, Role, State};
use swarmctl::model::objects::{FileContent, Healthcheck, NetworkSpec};
use swarmctl::model::service::{
    ContainerTemplate, Endpoint, FailureAction, FileReference, ObjectSpec, RestartCondition, ServiceMode, ServiceNetwork,
    ServicePlacement, ServiceSpec, SwarmRestartPolicy, UpdateConfig,
};
use swarmctl::model::swarm::{SwarmCandidateNames, TaskState, UpdateState};
use swarmctl::plan::swarm::{Expect, ObjectRef, ServiceWait, Until};
use swarm_support::{run_tests_leaving_no_trace, trial, wait_for, Cluster, SharedCluster, Spec, BUSYBOX, TESTAPP};

static CLUSTER: SharedCluster =
    SharedCluster::new(|| Spec::new("engine-swarm", 3).label("node-2", "tier=data").label("node-2", "zone=b").label("node-3", "tier=web"));


fn main() -> ExitCode {
    let trials = vec![
        trial("observe_reports_the_stack_every_node_and_foreign_names", observe_reports_the_stack_every_node_and_foreign_names),
        trial("update_with_a_stale_version_conflicts_rollback_restores_the_old_spec", update_stale_version_rollback_remove),
        trial("dnsrr_service_on_an_overlay_spreads_across_nodes_and_answers", dnsrr_service_on_an_overlay),
        trial("global_service_waits_for_every_node", global_service_waits_for_every_node),
        trial("wait_running_means_healthy_and_an_unhealthy_task_fails_with_its_node", wait_running_means_healthy),
        trial("jobs_complete_and_a_failing_job_reports_exit_code_and_logs", jobs_complete_and_failing_jobs_report),
        trial("unschedulable_service_fails_fast_with_the_schedulers_reason", unschedulable_service_fails_fast),
        trial("wait_times_out_with_each_tasks_last_state", wait_times_out_with_each_tasks_last_state),
        trial("twenty_concurrent_waits_share_one_poll", twenty_concurrent_waits_share_one_poll),
        trial("networks_are_overlays_with_their_options_and_names_are_unique", networks_are_overlays_with_their_options),
        trial("configs_secrets_and_the_store_calls", configs_secrets_and_the_store_calls),
    ];
    run_tests_leaving_no_trace(&CLUSTER, trials)
}

// ---------------------------------------------------------------- helpers

fn cluster() -> &'static Cluster {
    CLUSTER.get()
}

/// docker on the manager (for what the engine does not do: foreign objects, checks).
fn manager(args: &[&str]) -> String {
    cluster().docker("node-1", args)
}

fn run<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime").block_on(future)
}

async fn engine_at(host: &str) -> DockerEngine {
    connect(&ConnectOptions { docker_host: Some(host.to_string()), ..ConnectOptions::default() }).await.expect("connects to the manager")
}

async fn engine() -> DockerEngine {
    engine_at(cluster().docker_host()).await
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect()
}

/// A testapp service of `stack` whose tasks carry `hash`, on `network`: dnsrr (no IPVS
/// here), init and a short grace so it stops at once, a quick restart, every field explicit.
fn service(stack: &str, name: &str, hash: &str, network: &str) -> ServiceSpec {
    ServiceSpec {
        name: format!("{stack}_{name}"),
        labels: labels(&[(LABEL_STACK, stack), (LABEL_HASH, hash)]),
        mode: ServiceMode::Replicated { replicas: 1 },
        container: ContainerTemplate {
            image: TESTAPP.to_string(),
            labels: labels(&[(LABEL_STACK, stack), (LABEL_HASH, hash)]),
            init: Some(true),
            stop_grace: Some(Duration::from_secs(1)),
            ..ContainerTemplate::default()
        },
        restart: SwarmRestartPolicy { condition: RestartCondition::Any, delay: Duration::from_millis(500), max_attempts: 0, window: Duration::ZERO },
        networks: vec![ServiceNetwork { network_id: network.to_string(), aliases: vec![name.to_string()] }],
        endpoint: Endpoint { dnsrr: true, ports: vec![] },
        update: Some(UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(1),
            max_failure_ratio: 0.0,
            start_first: false,
        }),
        rollback: Some(UpdateConfig {
            parallelism: 1,
            delay: Duration::ZERO,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(1),
            max_failure_ratio: 0.0,
            start_first: false,
        }),
        ..ServiceSpec::default()
    }
}

fn healthcheck() -> Healthcheck {
    Healthcheck {
        test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"].map(String::from).to_vec(),
        interval: Some(Duration::from_millis(500)),
        timeout: Some(Duration::from_secs(2)),
        start_period: None,
        retries: Some(2),
    }
}

/// A busybox job: `script` as `sh -c`, run `total` times, never restarted.
fn job(stack: &str, name: &str, hash: &str, total: u64, script: &str) -> ServiceSpec {
    let mut spec = service(stack, name, hash, "");
    spec.networks.clear();
    spec.mode = ServiceMode::ReplicatedJob { total };
    spec.container.image = BUSYBOX.to_string();
    spec.container.command = Some(vec!["sh".into(), "-c".into(), script.into()]);
    spec.restart.condition = RestartCondition::None;
    spec.update = None;
    spec.rollback = None;
    spec
}

fn wait(id: &str, spec: &ServiceSpec, until: Until, expect: Expect, timeout: Duration) -> ServiceWait {
    ServiceWait {
        service: ObjectRef::Existing(id.to_string()),
        name: spec.name.clone(),
        until,
        expect,
        spec_hash: spec.container.labels[LABEL_HASH].clone(),
        stable: Duration::ZERO,
        timeout,
    }
}

fn network_spec(stack: &str, name: &str) -> NetworkSpec {
    NetworkSpec {
        name: format!("{stack}_{name}"),
        driver: Some("overlay".into()),
        attachable: true,
        labels: labels(&[(LABEL_STACK, stack)]),
        ..NetworkSpec::default()
    }
}

fn object(name: &str, stack: Option<&str>, data: &[u8]) -> ObjectSpec {
    ObjectSpec {
        name: name.to_string(),
        labels: stack.map(|stack| labels(&[(LABEL_STACK, stack)])).unwrap_or_default(),
        data: FileContent::new(data.to_vec()),
    }
}

/// Removes everything of `stack` (services first, then their tasks, then the rest), through
/// the engine; networks are retried while their tasks' containers go away.
async fn clean(engine: &DockerEngine, stack: &str) {
    let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe for cleanup");
    let ids: Vec<String> = observed.services.iter().map(|service| service.id.clone()).collect();
    for id in &ids {
        engine.remove_service(id).await.expect("remove service");
    }
    if !ids.is_empty() {
        engine.wait_tasks_gone(&ids, Duration::from_secs(60)).await.expect("tasks gone");
    }
    for config in &observed.configs {
        engine.remove_config(&config.id).await.expect("remove config");
    }
    for secret in &observed.secrets {
        engine.remove_secret(&secret.id).await.expect("remove secret");
    }
    for network in &observed.networks {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match engine.remove_network(&network.id).await {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(error) => panic!("network {} stays: {error}", network.name),
            }
        }
    }
}

/// Removes foreign objects made with the CLI (ignoring what is already gone).
fn remove_foreign(kind: &str, names: &[&str]) {
    for name in names {
        let _ = cluster().docker_output("node-1", &[kind, "rm", name]);
    }
}

// ---------------------------------------------------------------- tests

fn observe_reports_the_stack_every_node_and_foreign_names() {
    let stack = "es-observe";
    remove_foreign("service", &["es-foreign_web"]);
    remove_foreign("network", &["es-observe_taken"]);
    remove_foreign("config", &["es-observe_taken"]);
    remove_foreign("secret", &["es-observe_taken"]);
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        // Foreign: a service on node-2 reserving CPU and memory and holding a host port, and a
        // network, config and secret with names the stack could want.
        manager(&[
            "service", "create", "--detach", "--name", "es-foreign_web", "--constraint", "node.hostname==node-2",
            "--reserve-cpu", "0.25", "--reserve-memory", "16M", "--publish", "mode=host,target=8080,published=18080",
            "--init", "--stop-grace-period", "1s", TESTAPP,
        ]);
        manager(&["network", "create", "--driver", "overlay", "es-observe_taken"]);
        let config = std::env::temp_dir().join("es-observe-config");
        std::fs::write(&config, "x").expect("temp file");
        let config_path = config.to_string_lossy().to_string();
        manager(&["config", "create", "es-observe_taken", &config_path]);
        manager(&["secret", "create", "es-observe_taken", &config_path]);
        let _ = std::fs::remove_file(&config);

        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let config_id = engine.create_config(&object("es-observe_conf", Some(stack), b"conf")).await.expect("config");
        let secret_id = engine.create_secret(&object("es-observe_pw", Some(stack), b"pw")).await.expect("secret");
        let mut web = service(stack, "web", "observe-h1", &network);
        web.mode = ServiceMode::Replicated { replicas: 2 };
        web.resources.reserve_nano_cpus = Some(100_000_000);
        let reference = |id: &str, name: &str, target: &str| FileReference {
            object_id: id.into(),
            object_name: name.into(),
            target: target.into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        };
        web.container.configs = vec![reference(&config_id, "es-observe_conf", "/etc/conf")];
        web.container.secrets = vec![reference(&secret_id, "es-observe_pw", "pw")];
        let id = engine.create_service(&web).await.expect("service");
        engine.wait_service(&wait(&id, &web, Until::Running, Expect::Replicas(2), Duration::from_secs(60))).await.expect("web runs");
        wait_for("the foreign service running", Duration::from_secs(30), || {
            let state = manager(&["service", "ps", "es-foreign_web", "--format", "{{.CurrentState}}"]);
            if state.starts_with("Running") { Ok(()) } else { Err(state) }
        });

        let candidates = SwarmCandidateNames {
            services: BTreeSet::from(["es-foreign_web".to_string(), "es-observe_web".to_string(), "es-observe_free".to_string()]),
            networks: BTreeSet::from(["es-observe_taken".to_string(), "es-observe_default".to_string()]),
            configs: BTreeSet::from(["es-observe_taken".to_string(), "es-observe_conf".to_string()]),
            secrets: BTreeSet::from(["es-observe_taken".to_string()]),
        };
        let observed = engine.observe(stack, &candidates).await.expect("observe");

        let hostnames: Vec<&str> = observed.nodes.iter().map(|node| node.hostname.as_str()).collect();
        assert_eq!(hostnames, ["node-1", "node-2", "node-3"]);
        for node in &observed.nodes {
            let expected = cluster().node(&node.hostname);
            assert_eq!(node.id, expected.id);
            assert_eq!(node.role, if node.hostname == "node-1" { Role::Manager } else { Role::Worker });
            assert_eq!((node.availability, node.state), (Availability::Active, State::Ready));
            assert_eq!(node.addr.as_deref(), Some(expected.ip.as_str()), "{}", node.hostname);
            assert!(node.resources.nano_cpus >= 1_000_000_000 && node.resources.memory_bytes > 1 << 30, "{node:?}");
            assert_eq!(node.platform.os, "linux");
            assert!(!node.platform.architecture.is_empty());
        }
        assert_eq!(observed.nodes[1].labels, labels(&[("tier", "data"), ("zone", "b")]));
        assert_eq!(observed.nodes[2].labels, labels(&[("tier", "web")]));
        // Reserved: the foreign service only; the stack's own reservation does not count.
        let others_on_node_2 = manager(&["node", "ps", "node-2", "--filter", "desired-state=running", "--format", "{{.Name}}"])
            .lines()
            .filter(|name| !name.starts_with("es-observe_"))
            .count() as u32;
        let node_2 = &observed.nodes[1].reserved;
        assert_eq!((node_2.nano_cpus, node_2.memory_bytes, node_2.tasks), (250_000_000, 16 << 20, others_on_node_2), "{node_2:?}");
        assert_eq!(node_2.host_ports, [HostPort { protocol: "tcp".into(), port: 18080 }]);
        for other in [&observed.nodes[0], &observed.nodes[2]] {
            assert_eq!(other.reserved.nano_cpus, 0, "{}", other.hostname);
        }

        assert_eq!(observed.services.len(), 1);
        let observed_web = &observed.services[0];
        assert_eq!((observed_web.id.as_str(), observed_web.name.as_str()), (id.as_str(), "es-observe_web"));
        assert_eq!(observed_web.mode, ServiceMode::Replicated { replicas: 2 });
        assert_eq!((observed_web.running_tasks, observed_web.desired_tasks), (2, 2));
        assert!(observed_web.version > 0);
        assert_eq!(observed_web.labels.get(LABEL_HASH).map(String::as_str), Some("observe-h1"));
        assert!(observed_web.created.ends_with('Z') && observed_web.created.len() == 30, "{}", observed_web.created);
        let tasks: Vec<_> = observed.tasks_of(&id).collect();
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        for task in &tasks {
            assert_eq!((task.state, task.desired_state), (TaskState::Running, TaskState::Running));
            assert_eq!(task.spec_hash.as_deref(), Some("observe-h1"));
            assert!(task.slot.is_some() && !task.node_id.is_empty());
        }
        assert_eq!(observed.networks.iter().map(|network| network.id.as_str()).collect::<Vec<_>>(), [network.as_str()]);
        assert_eq!(observed.configs.iter().map(|config| config.name.as_str()).collect::<Vec<_>>(), ["es-observe_conf"]);
        assert_eq!(observed.secrets.iter().map(|secret| (secret.name.as_str(), secret.id.as_str())).collect::<Vec<_>>(), [("es-observe_pw", secret_id.as_str())]);
        assert_eq!(observed.foreign_names.services, BTreeSet::from(["es-foreign_web".to_string()]));
        assert_eq!(observed.foreign_names.networks, BTreeSet::from(["es-observe_taken".to_string()]));
        assert_eq!(observed.foreign_names.configs, BTreeSet::from(["es-observe_taken".to_string()]));
        assert_eq!(observed.foreign_names.secrets, BTreeSet::from(["es-observe_taken".to_string()]));
        assert!(observed.images.as_ref().is_some_and(|images| images.contains(TESTAPP)), "{:?}", observed.images);
        // Deterministic: observing again gives the same snapshot.
        assert_eq!(engine.observe(stack, &candidates).await.expect("observe again"), observed);

        clean(&engine, stack).await;
    });
    remove_foreign("service", &["es-foreign_web"]);
    wait_for("foreign network removable", Duration::from_secs(30), || {
        let output = cluster().docker_output("node-1", &["network", "rm", "es-observe_taken"]);
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        if output.status.success() || stderr.contains("not found") { Ok(()) } else { Err(stderr) }
    });
    remove_foreign("config", &["es-observe_taken"]);
    remove_foreign("secret", &["es-observe_taken"]);
}

fn update_stale_version_rollback_remove() {
    let stack = "es-update";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut v1 = service(stack, "web", "update-h1", &network);
        v1.mode = ServiceMode::Replicated { replicas: 2 };
        v1.container.env = vec!["VERSION=1".into()];
        let id = engine.create_service(&v1).await.expect("create");
        engine.wait_service(&wait(&id, &v1, Until::Running, Expect::Replicas(2), Duration::from_secs(60))).await.expect("v1 runs");
        let duplicate = engine.create_service(&v1).await.expect_err("the name is taken");
        assert!(duplicate.is_conflict(), "{duplicate}");

        let version = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe").services[0].version;
        let mut v2 = service(stack, "web", "update-h2", &network);
        v2.mode = ServiceMode::Replicated { replicas: 2 };
        v2.container.env = vec!["VERSION=2".into()];
        engine.update_service(&id, version, &v2).await.expect("update");
        let stale = engine.update_service(&id, version, &v2).await.expect_err("stale version");
        assert!(stale.is_conflict(), "{stale}");
        assert!(stale.to_string().contains("update out of sequence") && stale.to_string().contains("es-update_web"), "{stale}");
        engine.wait_service(&wait(&id, &v2, Until::Running, Expect::Replicas(2), Duration::from_secs(60))).await.expect("v2 runs");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let running: Vec<_> = observed.tasks_of(&id).filter(|task| task.state == TaskState::Running).collect();
        assert_eq!(running.len(), 2);
        assert!(running.iter().all(|task| task.spec_hash.as_deref() == Some("update-h2")), "{running:?}");
        // The service reports its rolling update and a new version; the updater itself moves
        // the version when it completes, so quote the version read once it is done.
        let service = &observed.services[0];
        assert!(service.version > version);
        assert!(service.update.is_some(), "a rolling update ran: {service:?}");
        let mut current = service.clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while current.update.as_ref().map(|update| update.state) != Some(UpdateState::Completed) {
            assert!(Instant::now() < deadline, "the update did not complete: {current:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            current = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe").services[0].clone();
        }
        engine.rollback_service(&id, current.version).await.expect("rollback");
        // A wait on the new spec now fails at once: the service runs the old one again.
        let replaced = engine.wait_service(&wait(&id, &v2, Until::Running, Expect::Replicas(2), Duration::from_secs(30))).await.expect_err("rolled back");
        assert!(matches!(replaced, EngineError::WaitFailed { .. }), "{replaced}");
        assert!(replaced.to_string().contains("rolled the update back"), "{replaced}");
        engine.wait_service(&wait(&id, &v1, Until::Running, Expect::Replicas(2), Duration::from_secs(60))).await.expect("v1 runs again");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let running: Vec<_> = observed.tasks_of(&id).filter(|task| task.state == TaskState::Running).collect();
        assert!(running.iter().all(|task| task.spec_hash.as_deref() == Some("update-h1")), "after a rollback the tasks carry the old hash: {running:?}");
        assert_eq!(observed.services[0].labels.get(LABEL_HASH).map(String::as_str), Some("update-h1"), "service labels roll back too");
        let again = engine.rollback_service(&id, version).await.expect_err("stale version");
        assert!(again.is_conflict(), "{again}");

        engine.remove_service(&id).await.expect("remove");
        engine.remove_service(&id).await.expect("removing what is gone succeeds");
        let started = Instant::now();
        engine.wait_tasks_gone(std::slice::from_ref(&id), Duration::from_secs(60)).await.expect("tasks gone");
        eprintln!("[engine_swarm] tasks of a removed service gone after {:.1} s", started.elapsed().as_secs_f64());
        // The nodes remove the stopped containers a moment after the tasks left the store.
        let label = format!("label=com.docker.swarm.service.id={id}");
        let after_tasks = Instant::now();
        wait_for("the service's containers removed on every node", Duration::from_secs(30), || {
            let containers: String = cluster().nodes().iter().map(|node| cluster().docker(&node.name, &["ps", "-aq", "--filter", &label])).collect();
            if containers.trim().is_empty() { Ok(()) } else { Err(containers) }
        });
        eprintln!("[engine_swarm] and their containers {:.1} s later", after_tasks.elapsed().as_secs_f64());
        clean(&engine, stack).await;
    });
}

fn dnsrr_service_on_an_overlay() {
    let stack = "es-dnsrr";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut web = service(stack, "web", "dnsrr-h1", &network);
        web.mode = ServiceMode::Replicated { replicas: 3 };
        web.placement = ServicePlacement { max_replicas_per_node: Some(1), ..ServicePlacement::default() };
        web.container.hostname = Some("{{.Node.Hostname}}".into());
        web.container.healthcheck = Some(healthcheck());
        let id = engine.create_service(&web).await.expect("create");
        engine.wait_service(&wait(&id, &web, Until::Running, Expect::Replicas(3), Duration::from_secs(60))).await.expect("runs");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let nodes: BTreeSet<&str> = observed.tasks_of(&id).filter(|task| task.state == TaskState::Running).map(|task| task.node_id.as_str()).collect();
        assert_eq!(nodes.len(), 3, "one task per node: {:?}", observed.tasks);
        let endpoint = manager(&["service", "inspect", "--format", "{{.Spec.EndpointSpec.Mode}}", "es-dnsrr_web"]);
        assert_eq!(endpoint.trim(), "dnsrr");
        // From node-3's task: each task by its address on the overlay (so across nodes), and
        // the service by its name and its alias (dnsrr: they resolve to the tasks).
        let container_on = |node: &str| {
            let id = cluster().docker(node, &["ps", "-q", "--filter", "label=com.docker.swarm.service.name=es-dnsrr_web"]);
            id.trim().to_string()
        };
        let probe = container_on("node-3");
        let get = |url: &str| -> String {
            let body = cluster().docker("node-3", &["exec", &probe, "/testapp", "get", url]);
            let json: serde_json::Value = serde_json::from_str(body.trim()).expect("testapp answers JSON");
            json["hostname"].as_str().unwrap_or_default().to_string()
        };
        let mut answered = BTreeSet::new();
        for node in ["node-1", "node-2", "node-3"] {
            let address = cluster().docker(node, &["inspect", "--format", "{{(index .NetworkSettings.Networks \"es-dnsrr_default\").IPAddress}}", &container_on(node)]);
            answered.insert(get(&format!("http://{}:8080/", address.trim())));
        }
        assert!(!get("http://es-dnsrr_web:8080/").is_empty());
        assert!(!get("http://web:8080/").is_empty(), "the network alias resolves");
        assert_eq!(answered, BTreeSet::from(["node-1".to_string(), "node-2".to_string(), "node-3".to_string()]));
        clean(&engine, stack).await;
    });
}

fn global_service_waits_for_every_node() {
    let stack = "es-global";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut agent = service(stack, "agent", "global-h1", &network);
        agent.mode = ServiceMode::Global;
        let id = engine.create_service(&agent).await.expect("create");
        engine.wait_service(&wait(&id, &agent, Until::Running, Expect::EveryNode, Duration::from_secs(60))).await.expect("one per node");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let running: Vec<_> = observed.tasks_of(&id).filter(|task| task.state == TaskState::Running).collect();
        assert_eq!(running.len(), 3);
        assert!(running.iter().all(|task| task.slot.is_none()), "global tasks have no slot");
        // A global job on the two data/web nodes: complete on each.
        let mut sweep = job(stack, "sweep", "global-j1", 1, "echo swept");
        sweep.mode = ServiceMode::GlobalJob;
        sweep.placement.constraints = vec!["node.role==worker".into()];
        let sweep_id = engine.create_service(&sweep).await.expect("create");
        engine.wait_service(&wait(&sweep_id, &sweep, Until::Completed, Expect::EveryNode, Duration::from_secs(60))).await.expect("complete on every node");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let complete = observed.tasks_of(&sweep_id).filter(|task| task.state == TaskState::Complete).count();
        assert_eq!(complete, 2, "{:?}", observed.tasks);
        clean(&engine, stack).await;
    });
}

fn wait_running_means_healthy() {
    let stack = "es-health";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut healthy = service(stack, "slowstart", "health-h1", &network);
        healthy.container.env = vec!["TESTAPP_START_DELAY=2s".into()];
        healthy.container.healthcheck = Some(Healthcheck { retries: Some(10), ..healthcheck() });
        // Unhealthy, and its process dies of the SIGTERM that stops it: Swarm's error says why.
        let mut sick = service(stack, "sick", "health-h2", &network);
        sick.container.image = BUSYBOX.to_string();
        sick.container.command = Some(vec!["sh".into(), "-c".into(), "echo sick and tired; exec sleep 3600".into()]);
        sick.container.healthcheck = Some(Healthcheck { test: vec!["CMD".into(), "false".into()], ..healthcheck() });
        sick.restart.condition = RestartCondition::None;
        // Unhealthy, and its process exits 0 on SIGTERM: the task ends `complete`.
        let mut quiet = service(stack, "quiet", "health-h3", &network);
        quiet.container.env = vec!["TESTAPP_UNHEALTHY=1".into()];
        quiet.container.healthcheck = Some(healthcheck());
        quiet.restart.condition = RestartCondition::None;
        let quiet_id = engine.create_service(&quiet).await.expect("create");
        let healthy_id = engine.create_service(&healthy).await.expect("create");
        let sick_id = engine.create_service(&sick).await.expect("create");

        let started = Instant::now();
        let mut running = wait(&healthy_id, &healthy, Until::Running, Expect::Replicas(1), Duration::from_secs(60));
        running.stable = Duration::from_secs(1);
        let started_wait = wait(&healthy_id, &healthy, Until::Started, Expect::Replicas(1), Duration::from_secs(60));
        let (started_result, running_result) = tokio::join!(engine.wait_service(&started_wait), engine.wait_service(&running));
        started_result.expect("started");
        running_result.expect("healthy");
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(3), "running waited for health (2 s) and stability (1 s): {took:?}");

        let failure = engine
            .wait_service(&wait(&sick_id, &sick, Until::Running, Expect::Replicas(1), Duration::from_secs(60)))
            .await
            .expect_err("never healthy");
        let EngineError::WaitFailed { operation, resource, reason, detail } = &failure else { panic!("{failure}") };
        assert_eq!((*operation, resource.as_str()), ("wait running", "es-health_sick"));
        assert!(reason.starts_with("task es-health_sick.1 failed on node-"), "{reason}");
        assert!(reason.contains("dockerexec: unhealthy container") && reason.ends_with("(exit code 143)"), "{reason}");
        assert!(detail.contains(&"log: sick and tired".to_string()), "{detail:?}");
        eprintln!("[engine_swarm] unhealthy: {failure}");
        let quiet_failure = engine
            .wait_service(&wait(&quiet_id, &quiet, Until::Running, Expect::Replicas(1), Duration::from_secs(60)))
            .await
            .expect_err("never healthy");
        let EngineError::WaitFailed { reason, detail, .. } = &quiet_failure else { panic!("{quiet_failure}") };
        assert!(reason.starts_with("task es-health_quiet.1 exited with code 0 on node-") && reason.ends_with("instead of running"), "{reason}");
        assert!(detail.iter().any(|line| line.contains("got SIGTERM")), "{detail:?}");
        eprintln!("[engine_swarm] unhealthy, exits 0: {quiet_failure}");
        clean(&engine, stack).await;
    });
}

fn jobs_complete_and_failing_jobs_report() {
    let stack = "es-job";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let good = job(stack, "migrate", "job-h1", 3, "echo migrating; sleep 0.2; echo done");
        let bad = job(stack, "broken", "job-h2", 1, "echo step one; echo disk full >&2; exit 3");
        let good_id = engine.create_service(&good).await.expect("create");
        let bad_id = engine.create_service(&bad).await.expect("create");
        engine.wait_service(&wait(&good_id, &good, Until::Completed, Expect::Completions(3), Duration::from_secs(60))).await.expect("completes");
        // A completed job never hangs a wait for it to run.
        engine.wait_service(&wait(&good_id, &good, Until::Running, Expect::Completions(3), Duration::from_secs(10))).await.expect("done is done");
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        let slots: BTreeSet<Option<u64>> = observed.tasks_of(&good_id).filter(|task| task.state == TaskState::Complete).map(|task| task.slot).collect();
        assert_eq!(slots, BTreeSet::from([Some(0), Some(1), Some(2)]), "slot 0 is read back as 0");
        let migrate = observed.services.iter().find(|service| service.id == good_id).expect("job observed");
        assert_eq!((migrate.mode, migrate.completed_tasks), (ServiceMode::ReplicatedJob { total: 3 }, 3));

        let failure = engine
            .wait_service(&wait(&bad_id, &bad, Until::Completed, Expect::Completions(1), Duration::from_secs(60)))
            .await
            .expect_err("fails");
        let EngineError::WaitFailed { reason, detail, .. } = &failure else { panic!("{failure}") };
        assert!(reason.starts_with("task es-job_broken.0 failed on node-"), "{reason}");
        assert!(reason.contains("non-zero exit (3)") && reason.ends_with("(exit code 3)"), "{reason}");
        assert!(detail.contains(&"log: step one".to_string()) && detail.contains(&"log: disk full".to_string()), "{detail:?}");
        eprintln!("[engine_swarm] failing job: {failure}");
        clean(&engine, stack).await;
    });
}

fn unschedulable_service_fails_fast() {
    let stack = "es-nowhere";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut lost = service(stack, "lost", "nowhere-h1", &network);
        lost.placement.constraints = vec!["node.labels.tier==nowhere".into()];
        let id = engine.create_service(&lost).await.expect("create");
        let started = Instant::now();
        let failure = engine.wait_service(&wait(&id, &lost, Until::Running, Expect::Replicas(1), Duration::from_secs(120))).await.expect_err("fails");
        let took = started.elapsed();
        let EngineError::WaitFailed { reason, .. } = &failure else { panic!("{failure}") };
        assert!(reason.contains("cannot be scheduled: no suitable node"), "{reason}");
        assert!(reason.contains("scheduling constraints not satisfied on 3 nodes"), "{reason}");
        assert!(took < Duration::from_secs(10), "fails fast, not at the deadline: {took:?}");
        eprintln!("[engine_swarm] unschedulable after {:.1} s: {failure}", took.as_secs_f64());
        clean(&engine, stack).await;
    });
}

fn wait_times_out_with_each_tasks_last_state() {
    let stack = "es-timeout";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let mut slow = service(stack, "slow", "timeout-h1", &network);
        slow.mode = ServiceMode::Replicated { replicas: 2 };
        slow.container.env = vec!["TESTAPP_START_DELAY=1h".into()];
        slow.container.healthcheck = Some(Healthcheck { start_period: Some(Duration::from_secs(3600)), ..healthcheck() });
        let id = engine.create_service(&slow).await.expect("create");
        let started = Instant::now();
        let timeout = engine.wait_service(&wait(&id, &slow, Until::Running, Expect::Replicas(2), Duration::from_secs(4))).await.expect_err("times out");
        let took = started.elapsed();
        let EngineError::Timeout { after, detail, .. } = &timeout else { panic!("{timeout}") };
        assert_eq!(*after, Duration::from_secs(4));
        assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(8), "{took:?}");
        assert_eq!(detail[0], "0 of 2 tasks of spec timeout-h1 running", "{detail:?}");
        assert!(detail[1..].iter().all(|line| line.contains(" on node-") && line.contains("starting")), "{detail:?}");
        eprintln!("[engine_swarm] {timeout}");
        // Started is reached meanwhile: the containers run, their health check never passes.
        engine.wait_service(&wait(&id, &slow, Until::Started, Expect::Replicas(2), Duration::from_secs(30))).await.expect("started");
        clean(&engine, stack).await;
    });
}

fn twenty_concurrent_waits_share_one_poll() {
    let stack = "es-many";
    // The proxy forwards to the manager and counts every request.
    std::env::set_var("DOCKER_HOST", cluster().docker_host());
    let proxy = engine_proxy::EngineProxy::start();
    run(async {
        let engine = engine_at(&proxy.host()).await;
        clean(&engine, stack).await;
        let network = engine.create_network(&network_spec(stack, "default")).await.expect("network");
        let specs: Vec<ServiceSpec> = (0..20)
            .map(|index| {
                let mut spec = service(stack, &format!("s{index:02}"), &format!("many-h{index}"), &network);
                spec.container.image = BUSYBOX.to_string();
                spec.container.command = Some(vec!["sleep".into(), "3600".into()]);
                spec
            })
            .collect();
        let mut ids = Vec::new();
        for spec in &specs {
            ids.push(engine.create_service(spec).await.expect("create"));
        }
        proxy.reset();
        let started = Instant::now();
        let waits: Vec<ServiceWait> = ids
            .iter()
            .zip(&specs)
            .map(|(id, spec)| ServiceWait { stable: Duration::from_secs(2), ..wait(id, spec, Until::Running, Expect::Replicas(1), Duration::from_secs(90)) })
            .collect();
        let results = futures::future::join_all(waits.iter().map(|wait| engine.wait_service(wait))).await;
        let took = started.elapsed();
        let requests = proxy.requests();
        for result in results {
            result.expect("every wait succeeds");
        }
        // Two requests (tasks, services) per 100 ms tick for all twenty waits together.
        let ticks = (took.as_secs_f64() / 0.1).ceil() as usize + 2;
        eprintln!("[engine_swarm] 20 waits: {requests} requests in {:.1} s ({ticks} ticks at most)", took.as_secs_f64());
        assert!(requests <= 2 * ticks, "{requests} requests in {took:?}: the waits do not share one poll");
        assert!(took >= Duration::from_secs(2), "stable for 2 s: {took:?}");
        clean(&engine, stack).await;
    });
    drop(proxy);
}

fn networks_are_overlays_with_their_options() {
    let stack = "es-net";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        let mut spec = network_spec(stack, "secure");
        spec.driver = None;
        spec.options = labels(&[("encrypted", "")]);
        spec.internal = true;
        let id = engine.create_network(&spec).await.expect("create");
        let inspected = manager(&["network", "inspect", "--format", "{{.Driver}} {{.Scope}} {{.Attachable}} {{.Internal}} {{json .Options}} {{json .Labels}}", &id]);
        let fields: Vec<&str> = inspected.trim().splitn(5, ' ').collect();
        assert_eq!(fields[..4], ["overlay", "swarm", "true", "true"], "{inspected}");
        assert!(fields[4].contains("\"encrypted\":\"\"") && fields[4].contains("\"io.swarmctl.stack\":\"es-net\""), "{inspected}");
        let duplicate = engine.create_network(&spec).await.expect_err("name taken");
        assert!(duplicate.is_conflict(), "{duplicate}");
        engine.remove_network(&id).await.expect("remove");
        engine.remove_network(&id).await.expect("removing what is gone succeeds");
        let gone = cluster().docker_output("node-1", &["network", "inspect", &id]);
        assert!(!gone.status.success());
        clean(&engine, stack).await;
    });
}

fn configs_secrets_and_the_store_calls() {
    let stack = "es-store";
    let secret_text = "hunter2-never-shown-9f2c";
    run(async {
        let engine = engine().await;
        clean(&engine, stack).await;
        for name in ["es-store-lock", "es-store-lock-2"] {
            if let Some(found) = engine.read_config(name).await.expect("read") {
                engine.remove_config(&found.id).await.expect("leftover removed");
            }
        }
        // Configs hold any bytes; names are unique.
        let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let lock = ObjectSpec {
            name: "es-store-lock".into(),
            labels: labels(&[("io.swarmctl.lock.holder", "a"), ("io.swarmctl.store", "es-store")]),
            data: FileContent::new(binary.clone()),
        };
        let lock_id = engine.create_config(&lock).await.expect("create config");
        let sibling = ObjectSpec { name: "es-store-lock-2".into(), labels: labels(&[("io.swarmctl.store", "es-store")]), data: FileContent::new("2") };
        let sibling_id = engine.create_config(&sibling).await.expect("create config");
        let duplicate = engine.create_config(&lock).await.expect_err("name taken");
        assert!(duplicate.is_conflict(), "{duplicate}");

        // read_config: the exact name, with its data; a prefix is not a match.
        let read = engine.read_config("es-store-lock").await.expect("read").expect("exists");
        assert_eq!((read.id.as_str(), read.data.len()), (lock_id.as_str(), 70_000));
        assert_eq!(read.data, binary);
        assert_eq!(read.labels, lock.labels);
        assert!(engine.read_config("es-store").await.expect("read").is_none(), "name filters are prefixes; reads are exact");
        assert!(engine.read_config("es-store-lock-3").await.expect("read").is_none());

        // list_configs: by label, without data, sorted.
        let listed = engine.list_configs("io.swarmctl.store", "es-store").await.expect("list");
        assert_eq!(listed.iter().map(|config| config.name.as_str()).collect::<Vec<_>>(), ["es-store-lock", "es-store-lock-2"]);
        assert!(listed.iter().all(|config| config.data.is_empty()));
        assert_eq!(listed[1].id, sibling_id);

        // update_config_labels: compare-and-swap on the version.
        let taken = labels(&[("io.swarmctl.lock.holder", "b"), ("io.swarmctl.store", "es-store")]);
        engine.update_config_labels(&lock_id, read.version, "es-store-lock", &taken).await.expect("cas");
        let lost = engine.update_config_labels(&lock_id, read.version, "es-store-lock", &labels(&[("io.swarmctl.lock.holder", "c")])).await;
        let lost = lost.expect_err("stale version");
        assert!(lost.is_conflict(), "{lost}");
        let now = engine.read_config("es-store-lock").await.expect("read").expect("exists");
        assert_eq!(now.labels, taken);
        assert!(now.version > read.version);
        assert_eq!(now.data, binary, "a labels-only update keeps the data");

        // Removing: twice is fine.
        engine.remove_config(&lock_id).await.expect("remove");
        engine.remove_config(&lock_id).await.expect("already gone");
        engine.remove_config(&sibling_id).await.expect("remove");

        // Secrets: created, refused when taken or redacted, and never shown.
        let secret = object("es-store_pw", Some(stack), secret_text.as_bytes());
        let secret_id = engine.create_secret(&secret).await.expect("create secret");
        let mut errors: Vec<EngineError> = Vec::new();
        errors.push(engine.create_secret(&secret).await.expect_err("name taken"));
        assert!(errors[0].is_conflict(), "{}", errors[0]);
        let redacted: FileContent = serde_json::from_str(&serde_json::to_string(&secret.data).expect("json")).expect("json");
        errors.push(engine.create_secret(&ObjectSpec { data: redacted, ..secret.clone() }).await.expect_err("redacted"));
        assert!(matches!(errors[1], EngineError::Invalid { .. }), "{}", errors[1]);
        let too_big = object("es-store_big", Some(stack), &[b'x'; 600_000]);
        errors.push(engine.create_secret(&too_big).await.expect_err("too big"));
        let bad_name = object("es-store/bad name", Some(stack), secret_text.as_bytes());
        errors.push(engine.create_secret(&bad_name).await.expect_err("bad name"));
        // A service referring to the secret under a wrong ID.
        let mut user = job(stack, "reader", "store-h1", 1, "cat /run/secrets/pw");
        user.container.secrets = vec![FileReference {
            object_id: "not-an-id".into(),
            object_name: "es-store_pw".into(),
            target: "pw".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o400,
        }];
        errors.push(engine.create_service(&user).await.expect_err("wrong secret ID"));
        for error in &errors {
            for shown in [error.to_string(), format!("{error:?}")] {
                assert!(!shown.contains(secret_text), "secret content in an error: {shown}");
            }
        }
        eprintln!("[engine_swarm] secret errors: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "));
        let observed = engine.observe(stack, &SwarmCandidateNames::default()).await.expect("observe");
        assert_eq!(observed.secrets.iter().map(|secret| secret.id.as_str()).collect::<Vec<_>>(), [secret_id.as_str()]);
        assert!(!format!("{observed:?}").contains(secret_text));
        engine.remove_secret(&secret_id).await.expect("remove");
        engine.remove_secret(&secret_id).await.expect("already gone");
        clean(&engine, stack).await;
    });
}
