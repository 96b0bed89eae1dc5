//! Placement on a real 3-node Swarm labelled from the data platform's minimum cluster file
//! (`stacks/data-platform/cluster-minimum.yaml`): what `plan` predicts is where Swarm puts the
//! tasks (spread, max per node, global with constraints, statefulset ordinals, and the whole
//! data platform), an unschedulable service is refused before anything is created, and a lost
//! node is reported, its replicas come back on the others, and an ordinal pinned to it waits
//! for it rather than leaving its data behind.
//!
//! `harness = false`: the `main` below (libtest-mimic) owns the cluster's lifetime.

mod swarm_support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};
use swarm_support::{run_tests_leaving_no_trace, trial, wait_for, Cluster, SharedCluster, Spec, BUSYBOX, TESTAPP};

const BINARY: &str = env!("CARGO_BIN_EXE_swarmctl");
const CLUSTER_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/data-platform/cluster-minimum.yaml");
const DATA_PLATFORM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/stacks/data-platform");

/// The images of the data platform's offline overlay.
const IMAGES: [&str; 6] = [BUSYBOX, TESTAPP, "swarmctl-test/mariadb:10.11", "swarmctl-test/redis:7", "swarmctl-test/nginx:1.22", "swarmctl-test/prometheus:2"];

static CLUSTER: SharedCluster = SharedCluster::new(|| {
    let file = swarmctl::spec::cluster::load(Path::new(CLUSTER_FILE)).unwrap_or_else(|f| panic!("{CLUSTER_FILE}: {:?}", f.diagnostics));
    let managers = file.nodes.iter().filter(|n| n.role == swarmctl::model::node::Role::Manager).count();
    let mut spec = Spec::new("swarm-placement", file.nodes.len()).images(&IMAGES).managers(managers);
    for node in &file.nodes {
        for (key, value) in &node.labels {
            spec = spec.label(&node.hostname, &format!("{key}={value}"));
        }
    }
    spec
});


fn main() -> ExitCode {
    let trials = vec![
        trial("an_unschedulable_service_is_refused_at_plan_time_and_nothing_is_created", unschedulable),
        trial("spread_max_per_node_global_and_ordinals_land_where_plan_predicted", predicted_equals_observed),
        trial("a_lost_node_is_reported_its_replicas_return_elsewhere_and_its_ordinal_waits_for_it", node_loss),
        trial("the_data_platform_lands_where_predicted_answers_across_nodes_and_survives_a_node_loss", data_platform),
    ];
    run_tests_leaving_no_trace(&CLUSTER, trials)
}

fn cluster() -> &'static Cluster {
    CLUSTER.get()
}

fn docker(args: &[&str]) -> String {
    cluster().docker("node-1", args)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A stack of one test (a directory of its own, or a shipped one), brought down when the
/// test ends.
struct Stack {
    name: String,
    path: PathBuf,
    args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Stack {
    fn new(name: &str, yaml: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), yaml.replace("NAME", name)).unwrap();
        Stack::at(name, dir.path().to_path_buf(), Vec::new(), Some(dir))
    }

    fn at(name: &str, path: PathBuf, args: Vec<String>, dir: Option<tempfile::TempDir>) -> Stack {
        let stack = Stack { name: name.into(), path, args, _dir: dir };
        stack.run(&["down", "--volumes"]);
        stack
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.arg(args[0]).arg(&self.path).arg("--name").arg(&self.name);
        if matches!(args[0], "plan" | "deploy") {
            command.args(&self.args);
        }
        command.args(&args[1..]).env("DOCKER_HOST", cluster().docker_host()).env("NO_COLOR", "1");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run swarmctl")
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("swarmctl {args:?}: {e}: {}", text(&out)))
    }

    fn services(&self) -> Vec<String> {
        let out = docker(&["service", "ls", "--filter", &format!("label=io.swarmctl.stack={}", self.name), "--format", "{{.Name}}"]);
        out.lines().map(str::to_string).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Per Swarm service (without the stack prefix), the node IDs of its tasks that run (or,
    /// for a job, completed), as the docker CLI reports them.
    fn observed(&self) -> Counts {
        let ids: BTreeMap<&str, &str> = cluster().nodes().iter().map(|n| (n.name.as_str(), n.id.as_str())).collect();
        let mut counts: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for service in self.services() {
            let short = service.trim_start_matches(&format!("{}_", self.name)).to_string();
            let tasks = docker(&["service", "ps", &service, "--format", "{{.Node}}|{{.DesiredState}}|{{.CurrentState}}"]);
            for line in tasks.lines() {
                let fields: Vec<&str> = line.split('|').collect();
                let live = matches!(fields[1], "Running" | "Complete") && (fields[2].starts_with("Running") || fields[2].starts_with("Complete"));
                if live {
                    *counts.entry(short.clone()).or_default().entry(ids[fields[0]].to_string()).or_default() += 1;
                }
            }
        }
        counts
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes"]);
    }
}

/// Per service, per node ID, as `plan --output json` predicts.
fn predicted(plan: &Value) -> Counts {
    let services = plan["plan"]["placement"]["services"].as_array().unwrap_or_else(|| panic!("no placement in {plan}"));
    services
        .iter()
        .filter(|s| s["nodes"].as_object().is_some_and(|nodes| !nodes.is_empty()))
        .map(|s| {
            let nodes = s["nodes"].as_object().unwrap().iter().map(|(id, count)| (id.clone(), count.as_u64().unwrap())).collect();
            (s["service"].as_str().unwrap().to_string(), nodes)
        })
        .collect()
}

/// `status --output json` finds every predicted task running; `exact`: on the predicted nodes.
fn assert_status_agrees(stack: &Stack, exact: bool) {
    let status = stack.json(&["status", "--output", "json"]);
    let differences = &status["placement"]["differences"];
    assert!(differences["totals"].as_array().is_some_and(Vec::is_empty), "{status:#}");
    if exact {
        assert!(differences["nodes"].as_array().is_some_and(Vec::is_empty), "{status:#}");
    }
}

/// Where Swarm had a real choice the prediction is exact (ordinals, global services, one node
/// per replica); where nodes tie, Swarm picks at random (swarmkit's scheduler breaks ties by map
/// order), so the prediction holds up to which of the equal nodes: each service's counts per
/// node, sorted, are the same.
fn assert_same_placement(observed: &Counts, predicted: &Counts, exact: &[&str]) {
    let shape = |counts: &BTreeMap<String, u64>| {
        let mut shape: Vec<u64> = counts.values().copied().collect();
        shape.sort_unstable();
        shape
    };
    assert_eq!(observed.keys().collect::<Vec<_>>(), predicted.keys().collect::<Vec<_>>(), "the same services run");
    for (service, counts) in predicted {
        let pinned = exact.iter().any(|prefix| service.starts_with(prefix));
        if pinned {
            assert_eq!(&observed[service], counts, "{service}: on exactly the predicted nodes");
        } else {
            assert_eq!(shape(&observed[service]), shape(counts), "{service}: {:?} against {counts:?}", observed[service]);
        }
    }
}

type Counts = BTreeMap<String, BTreeMap<String, u64>>;

fn unschedulable() {
    let stack = Stack::new(
        "sp-refused",
        r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    networks: [front]
  analytics:
    image: swarmctl-test/testapp:latest
    deploy:
      replicas: 2
      placement: {constraints: [node.labels.gpu == true]}
  big:
    image: swarmctl-test/testapp:latest
    deploy:
      resources: {reservations: {cpus: "64"}}
configs:
  settings: {content: "x"}
networks: {front: {}}
"#,
    );
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("analytics: 2 of 2 tasks cannot be placed: node-1, node-2, node-3: constraint node.labels.gpu == true not met (no label `gpu`)"), "{said}");
    assert!(said.contains("big: 1 of 1 task cannot be placed") && said.contains("CPUs"), "{said}");
    assert!(said.contains("stack.yaml:"), "at the file and line: {said}");
    assert!(said.contains("nothing was changed"), "{said}");
    assert!(stack.services().is_empty(), "{:?}", stack.services());
    for kind in ["network", "config", "secret"] {
        let left = docker(&[kind, "ls", "--filter", "label=io.swarmctl.stack=sp-refused", "-q"]);
        assert!(left.trim().is_empty(), "{kind}: {left}");
    }
}

const LAYOUT: &str = r#"
name: NAME
services:
  spread:
    image: swarmctl-test/testapp:latest
    deploy:
      replicas: 3
      placement: {preferences: [{spread: node.labels.zone}]}
  capped:
    image: swarmctl-test/testapp:latest
    deploy:
      replicas: 2
      placement: {constraints: [node.labels.lb == true], max_replicas_per_node: 1}
  edge:
    image: swarmctl-test/testapp:latest
    deploy:
      mode: global
      placement: {constraints: [node.labels.lb == true]}
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    deploy: {replicas: 3, placement: {max_replicas_per_node: 1}}
    volumes: [data:/data]
  setup:
    image: swarmctl-test/testapp:latest
    x-kind: job
    environment: {TESTAPP_EXIT_AFTER: 100ms}
    deploy: {placement: {constraints: [node.hostname == node-3]}}
volumes: {data: {}}
"#;

fn predicted_equals_observed() {
    let stack = Stack::new("sp-layout", LAYOUT);
    let plan = stack.json(&["plan", "--output", "json"]);
    let predicted = predicted(&plan);
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stack.observed(), predicted, "docker service ps against plan's prediction (no ties here)\n{}", text(&out));
    let node = |name: &str| cluster().node(name).id.clone();
    assert_eq!(predicted["edge"].keys().cloned().collect::<BTreeSet<_>>(), BTreeSet::from([node("node-1"), node("node-2")]));
    assert_eq!(predicted["spread"].values().copied().collect::<Vec<_>>(), [1, 1, 1], "one per zone");
    assert_eq!(predicted["setup"].keys().cloned().collect::<Vec<_>>(), [node("node-3")]);
    assert_status_agrees(&stack, true);
}

const LOSS: &str = r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 4}
    stop_grace_period: 1s
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    deploy: {replicas: 3, placement: {max_replicas_per_node: 1}}
    volumes: [data:/data]
    stop_grace_period: 1s
  api:
    image: swarmctl-test/testapp:latest
    environment: {VERSION: "1"}
    depends_on: [db]
volumes: {data: {}}
"#;

/// Restarts the node when the test ends, however it ends.
struct Revive(&'static str);

impl Drop for Revive {
    fn drop(&mut self) {
        cluster().restart_node(self.0);
    }
}

fn node_loss() {
    let stack = Stack::new("sp-loss", LOSS);
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    let lost = "node-3";
    let lost_id = cluster().node(lost).id.clone();
    let ordinal_there = (0..3).map(|o| format!("db-{o}")).find(|o| stack.observed().get(o).is_some_and(|n| n.contains_key(&lost_id))).expect("one ordinal on each node");

    let started = Instant::now();
    cluster().kill_node(lost);
    let _revive = Revive(lost);
    // Swarm marks the node down and starts web's replicas elsewhere; status follows.
    wait_for("web to be back to 4 running replicas on the other nodes", Duration::from_secs(120), || {
        let web = stack.observed().get("web").cloned().unwrap_or_default();
        let running: u64 = web.iter().filter(|(id, _)| **id != lost_id).map(|(_, n)| n).sum();
        if running == 4 { Ok(()) } else { Err(format!("{web:?}")) }
    });
    eprintln!("[swarm_placement] node loss: web back to 4/4 on the remaining nodes {:.1} s after node-3 was killed", started.elapsed().as_secs_f64());

    let status = stack.run(&["status"]);
    let said = text(&status);
    assert_eq!(status.status.code(), Some(1), "not everything is ready: {said}");
    assert!(said.lines().any(|l| l.starts_with(lost) && l.contains("down")), "the lost node shows: {said}");
    assert!(said.contains(&format!("! {ordinal_there}: its volumes are on {lost}, which is down")), "{said}");
    assert!(said.contains("web                  deployment   4/4 ready"), "{said}");

    // A deploy now changes what it can, reports the ordinal, and does not wait on it.
    std::fs::write(stack.path.join("stack.yaml"), LOSS.replace("NAME", &stack.name).replace("VERSION: \"1\"", "VERSION: \"2\"")).unwrap();
    let mut child = stack.command(&["deploy", "--timeout", "3m", "--stable", "1s"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let status = wait_for("the deploy to end", Duration::from_secs(240), || child.try_wait().map_err(|e| e.to_string())?.ok_or_else(|| "running".to_string()));
    let out = Output { status, ..child.wait_with_output().unwrap() };
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains(&format!("unavailable      sp-loss_{ordinal_there} (its volumes are on {lost})")), "the plan names it: {said}");
    assert!(said.contains(&format!("its volumes are on {lost}, which is down; it runs again there once {lost} is back")), "{said}");
    assert!(said.contains("did not converge"), "{said}");
    assert!(!stack.observed().get(&ordinal_there).is_some_and(|n| n.keys().any(|id| *id != lost_id)), "never moved away from its data");

    // The node comes back: the ordinal runs there again and the deploy converges.
    drop(_revive);
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stack.observed()[&ordinal_there].keys().cloned().collect::<Vec<_>>(), [lost_id], "back on its node");
}

/// Small reservations: the test nodes are this machine's 2 CPUs each, the document's servers 8.
const SMALL_NODES: &str = r#"
platform:
  resources:
    small: {limits: {cpus: "0.5", memory: 256m}, reservations: {cpus: "0.01", memory: 16m}}
    medium: {limits: {cpus: "1.0", memory: 512m}, reservations: {cpus: "0.02", memory: 32m}}
    large: {limits: {cpus: "1.0", memory: 1g}, reservations: {cpus: "0.05", memory: 64m}}
"#;

/// `GET /` through nginx on `node`'s port 80: the data console's answer (JSON with the
/// replica's hostname), or why not.
fn through_load_balancer(node: &str) -> Result<Value, String> {
    let url = format!("http://{}:80/", cluster().node(node).ip);
    let out = cluster().exec(node, &["curl", "-sS", "--max-time", "10", "-H", "Host: data.example.com", &url]);
    if !out.status.success() {
        return Err(text(&out));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))
}

/// The test cluster's kernel has no IPVS, so a service's virtual IP does not answer (DESIGN §5):
/// every service of the stack gets `endpoint_mode: dnsrr`, an overlay of the test's own.
fn dnsrr_overlay(dir: &Path, options: &swarmctl::spec::LoadOptions) {
    let loaded = swarmctl::spec::load(options, &|_: &str| None::<String>).unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
    let services: String = loaded.stack.services.keys().map(|name| format!("  {name}:\n    deploy: {{endpoint_mode: dnsrr}}\n")).collect();
    std::fs::write(dir.join("data-platform.yaml"), format!("services:\n{services}")).unwrap();
}

fn data_platform() {
    let scratch = tempfile::tempdir().unwrap();
    let values = scratch.path().join("small-nodes.yaml");
    std::fs::write(&values, SMALL_NODES).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut options = swarmctl::spec::LoadOptions {
        path: PathBuf::from(DATA_PLATFORM),
        overlays: vec![root.join("overlays/offline")],
        values_files: vec![root.join("stacks/data-platform/shared-tiers.values.yaml"), values],
        ..Default::default()
    };
    let dnsrr = scratch.path().join("dnsrr");
    std::fs::create_dir(&dnsrr).unwrap();
    dnsrr_overlay(&dnsrr, &options);
    options.overlays.push(dnsrr);
    let mut args = Vec::new();
    for overlay in &options.overlays {
        args.extend(["--overlay".to_string(), overlay.display().to_string()]);
    }
    for values in &options.values_files {
        args.extend(["--values".to_string(), values.display().to_string()]);
    }
    let stack = Stack::at("sp-data", PathBuf::from(DATA_PLATFORM), args, None);
    let plan = stack.json(&["plan", "--output", "json"]);
    let predicted = predicted(&plan);
    let started = Instant::now();
    let out = stack.run(&["deploy", "--timeout", "8m", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("[swarm_placement] data platform deployed on 3 nodes in {:.1} s", started.elapsed().as_secs_f64());

    // Every layer where the document puts it, as predicted.
    let ordinals = ["alertmanager-", "elasticsearch-", "kafka-", "mongodb-", "mysql-", "prometheus-", "redis-0", "redis-replica-"];
    let global = ["nginx", "cadvisor", "fluentd", "node-exporter"];
    let exact: Vec<&str> = ordinals.iter().chain(&global).copied().collect();
    assert_same_placement(&stack.observed(), &predicted, &exact);
    assert_status_agrees(&stack, false);
    let id = |name: &str| cluster().node(name).id.clone();
    assert_eq!(predicted["nginx"].keys().cloned().collect::<BTreeSet<_>>(), BTreeSet::from([id("node-1"), id("node-2")]), "the lb on the lb nodes");
    for ha in ["api-gateway", "data-api", "redis-sentinel"] {
        assert_eq!(predicted[ha].values().copied().collect::<Vec<_>>(), [1, 1, 1], "{ha}: one replica per node");
    }

    // Through the load balancer on node-1 to console replicas, one of them on another node.
    let hostnames: BTreeSet<String> = (0..20)
        .map(|_| wait_for("an answer through nginx", Duration::from_secs(30), || through_load_balancer("node-1")))
        .map(|answer| answer["hostname"].as_str().unwrap_or_default().to_string())
        .collect();
    let console_nodes: BTreeSet<String> = hostnames
        .iter()
        .filter_map(|hostname| cluster().nodes().iter().find(|n| !cluster().docker(&n.name, &["ps", "-q", "--filter", &format!("id={hostname}")]).trim().is_empty()))
        .map(|n| n.name.clone())
        .collect();
    assert!(console_nodes.iter().any(|n| n != "node-1"), "answers came from {console_nodes:?} ({hostnames:?})");

    // node-3 stops: the platform keeps answering through node-1.
    let started = Instant::now();
    cluster().kill_node("node-3");
    let revive = Revive("node-3");
    let mut failed = 0;
    let mut in_a_row = 0;
    wait_for("20 answers in a row through nginx after node-3 stopped", Duration::from_secs(120), || {
        match through_load_balancer("node-1") {
            Ok(_) => in_a_row += 1,
            Err(_) => {
                failed += 1;
                in_a_row = 0;
            }
        }
        if in_a_row >= 20 { Ok(()) } else { Err(format!("{in_a_row} in a row, {failed} failed")) }
    });
    eprintln!("[swarm_placement] node-3 lost: {failed} requests failed, answering again {:.1} s after", started.elapsed().as_secs_f64());
    // The managers notice a silent node only after its heartbeats lapse (seconds after the kill).
    wait_for("status to report node-3 lost", Duration::from_secs(90), || {
        let status = text(&stack.run(&["status"]));
        let lost = status.lines().any(|l| l.starts_with("node-3") && (l.contains("down") || l.contains("unknown"))) || status.contains("node lost");
        if lost { Ok(()) } else { Err(status) }
    });
    drop(revive);
}
