//! Smoke test of the Swarm test cluster (tests/cluster/swarm.sh, tests/swarm_support):
//! three real nodes, each its own dockerd in its own network namespace. Checks what the
//! Swarm end-to-end tests rely on: nodes Ready with their hostnames, roles and labels; the
//! test images on every node; a `dnsrr` service with one task per node on an overlay
//! network, reached from a task on another node; a `replicated-job` running to completion;
//! node loss detected. After the last test the cluster is torn down and nothing of it may
//! be left, and the machine's own engine must still be in the swarm state it was in.
//!
//! Needs root and the machine's Docker engine (Debian's docker.io 20.10, API 1.41).
//! `harness = false`: the `main` below (libtest-mimic) owns the cluster's lifetime.

mod swarm_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use swarm_support::{run_tests_leaving_no_trace, trial, wait_for, Cluster, Role, SharedCluster, Spec, BUSYBOX, TESTAPP};

static CLUSTER: SharedCluster =
    SharedCluster::new(|| Spec::new("smoke", 3).label("node-2", "tier=data").label("node-2", "zone=b").label("node-3", "tier=web"));


fn main() -> ExitCode {
    let trials = vec![
        trial("nodes_ready_with_hostnames_roles_and_labels", nodes_ready_with_hostnames_roles_and_labels),
        trial("engines_are_docker_20_10_api_1_41", engines_are_docker_20_10_api_1_41),
        trial("test_images_on_every_node", test_images_on_every_node),
        trial("dnsrr_service_one_task_per_node_reached_across_the_overlay", dnsrr_service_reached_across_the_overlay),
        trial("replicated_job_runs_to_completion", replicated_job_runs_to_completion),
        // Last: it kills and restarts a node (tests run one at a time, in this order).
        trial("node_loss_detected_and_node_back", node_loss_detected_and_node_back),
    ];
    run_tests_leaving_no_trace(&CLUSTER, trials)
}

fn cluster() -> &'static Cluster {
    CLUSTER.get()
}

/// docker on the manager.
fn manager(args: &[&str]) -> String {
    cluster().docker("node-1", args)
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).map(String::from).collect()
}

/// Removes the services and networks a test made (also left over from an earlier run
/// when the cluster is kept with SWARMCTL_KEEP_CLUSTER).
fn remove(services: &[&str], networks: &[&str]) {
    let cluster = cluster();
    for service in services {
        let _ = cluster.docker_output("node-1", &["service", "rm", service]);
    }
    for network in networks {
        // A network is in use until the tasks' containers are gone on every node.
        wait_for(&format!("network {network} removable"), Duration::from_secs(30), || {
            let output = cluster.docker_output("node-1", &["network", "rm", network]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() || stderr.contains("not found") {
                Ok(())
            } else {
                Err(stderr.trim().to_string())
            }
        });
    }
}

/// A service's tasks (`docker service ps`, newest first), as (node, current state),
/// e.g. ("node-2", "Running 3 seconds ago").
fn tasks(service: &str) -> Vec<(String, String)> {
    let output = cluster().docker_output("node-1", &["service", "ps", service, "--format", "{{.Node}}|{{.CurrentState}}"]);
    lines(&String::from_utf8_lossy(&output.stdout))
        .iter()
        .filter_map(|line| line.split_once('|').map(|(node, state)| (node.to_string(), state.to_string())))
        .collect()
}

// ---------------------------------------------------------------- tests

fn nodes_ready_with_hostnames_roles_and_labels() {
    let cluster = cluster();
    let table = manager(&[
        "node",
        "ls",
        "--format",
        "{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}} {{if .ManagerStatus}}manager{{else}}worker{{end}}",
    ]);
    let rows: BTreeMap<String, Vec<String>> = lines(&table)
        .iter()
        .map(|line| {
            let fields: Vec<String> = line.split(' ').map(String::from).collect();
            (fields[1].clone(), fields)
        })
        .collect();
    assert_eq!(rows.keys().cloned().collect::<Vec<_>>(), ["node-1", "node-2", "node-3"], "docker node ls:\n{table}");
    for node in cluster.nodes() {
        let row = &rows[&node.name];
        let role = if node.role == Role::Manager { "manager" } else { "worker" };
        assert_eq!(row[2..], ["Ready", "Active", role], "{}: {row:?}", node.name);
        assert_eq!(row[0], node.id, "{}: swarm.sh reported another node ID", node.name);
        // Each node sees itself: its hostname, its address, in the swarm.
        let info = cluster.docker(&node.name, &["info", "--format", "{{.Name}} {{.Swarm.NodeAddr}} {{.Swarm.LocalNodeState}}"]);
        assert_eq!(info.trim(), format!("{} {} active", node.name, node.ip));
    }
    assert_eq!(cluster.manager().role, Role::Manager);
    assert!(cluster.docker_host().ends_with("/node-1/docker.sock"), "{}", cluster.docker_host());
    let expected: [(&str, &[(&str, &str)]); 3] =
        [("node-1", &[]), ("node-2", &[("tier", "data"), ("zone", "b")]), ("node-3", &[("tier", "web")])];
    for (node, labels) in expected {
        let json = manager(&["node", "inspect", "--format", "{{json .Spec.Labels}}", node]);
        let actual: BTreeMap<String, String> = serde_json::from_str(json.trim()).unwrap_or_default();
        let expected: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(actual, expected, "labels of {node}");
    }
}

fn engines_are_docker_20_10_api_1_41() {
    let cluster = cluster();
    for node in cluster.nodes() {
        let version = cluster.docker(&node.name, &["version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}"]);
        let (engine, api) = version.trim().split_once(' ').expect("two fields");
        assert!(engine.starts_with("20.10."), "{}: engine {engine}", node.name);
        assert_eq!(api, "1.41", "{}", node.name);
        // Each node runs its own containerd (not the machine's, nor another node's).
        let driver = cluster.docker(&node.name, &["info", "--format", "{{.Driver}} {{.CgroupDriver}}"]);
        assert_eq!(driver.trim().split(' ').next(), Some("overlay2"), "{}", node.name);
    }
    let containerds = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.starts_with("containerd ") && cmdline.contains(&format!("{}/", cluster.dir().display())))
        .count();
    assert_eq!(containerds, 3, "one containerd per node");
}

fn test_images_on_every_node() {
    let cluster = cluster();
    for image in [BUSYBOX, TESTAPP] {
        let machine = swarm_support::docker_cli(swarm_support::MACHINE_DOCKER_HOST, &["image", "inspect", "--format", "{{.Id}}", image]);
        let want = String::from_utf8_lossy(&machine.stdout).trim().to_string();
        assert!(want.starts_with("sha256:"), "{image} on the machine's engine: {want:?}");
        for node in cluster.nodes() {
            let have = cluster.docker(&node.name, &["image", "inspect", "--format", "{{.Id}}", image]);
            assert_eq!(have.trim(), want, "{image} on {}", node.name);
        }
    }
}

fn dnsrr_service_reached_across_the_overlay() {
    let cluster = cluster();
    remove(&["smoke-web", "smoke-probe"], &["smoke-net"]);
    manager(&["network", "create", "--driver", "overlay", "smoke-net"]);
    let start = Instant::now();
    // One task per node; each answers GET / with its hostname, which is its node's.
    manager(&[
        "service", "create", "--detach", "--name", "smoke-web", "--replicas", "3", "--replicas-max-per-node", "1",
        "--endpoint-mode", "dnsrr", "--network", "smoke-net", "--hostname", "{{.Node.Hostname}}",
        "--health-cmd", "/testapp check http://127.0.0.1:8080/health", "--health-interval", "1s",
        "--health-start-period", "10s", TESTAPP,
    ]);
    // A task with a healthcheck stays "Starting" until its container is healthy.
    let nodes = wait_for("3 smoke-web tasks running, one per node", Duration::from_secs(60), || {
        let all = tasks("smoke-web");
        let running: BTreeSet<String> =
            all.iter().filter(|(_, state)| state.starts_with("Running")).map(|(node, _)| node.clone()).collect();
        if running.len() == 3 { Ok(running) } else { Err(format!("{all:?}")) }
    });
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["node-1", "node-2", "node-3"]);
    eprintln!("[smoke] smoke-web: 3 tasks running and healthy {:.1} s after service create", start.elapsed().as_secs_f64());
    for node in cluster.nodes() {
        let status = cluster.docker(&node.name, &["ps", "--filter", "label=com.docker.swarm.service.name=smoke-web", "--format", "{{.Status}}"]);
        assert!(status.contains("(healthy)"), "{}: {status}", node.name);
    }
    // From node-3, every task by its own address (dnsrr: the service name resolves to the
    // tasks' addresses; a VIP would resolve but not answer here: no IPVS), then by name
    // through glibc. busybox nslookup asks Docker's DNS; testapp is the HTTP client.
    let probe = r#"
        set -e
        ips=$(nslookup smoke-web 127.0.0.11 | sed -n 's/^Address:[[:space:]]*//p' | grep -v '^127\.0\.0\.11')
        echo "addresses: $ips"
        for ip in $ips; do /testapp get "http://$ip:8080/"; echo; done >/tmp/answers
        cat /tmp/answers
        grep -q '"hostname":"node-1"' /tmp/answers
        grep -q '"hostname":"node-2"' /tmp/answers
        /testapp get http://smoke-web:8080/; echo
        /testapp tcp tasks.smoke-web:8080
        echo probe-ok
    "#;
    manager(&[
        "service", "create", "--detach", "--name", "smoke-probe", "--mode", "replicated-job",
        "--constraint", "node.hostname==node-3", "--network", "smoke-net", "--restart-condition", "none",
        "--entrypoint", "sh", TESTAPP, "-c", probe,
    ]);
    let state = wait_for("smoke-probe to finish", Duration::from_secs(60), || {
        match tasks("smoke-probe").first() {
            Some((node, state)) if state.starts_with("Complete") || state.starts_with("Failed") => Ok((node.clone(), state.clone())),
            other => Err(format!("{other:?}")),
        }
    });
    let logs = manager(&["service", "logs", "--raw", "smoke-probe"]);
    assert!(state.1.starts_with("Complete") && logs.contains("probe-ok"), "probe on {}: {}; its output:\n{logs}", state.0, state.1);
    assert_eq!(state.0, "node-3");
    remove(&["smoke-web", "smoke-probe"], &["smoke-net"]);
}

fn replicated_job_runs_to_completion() {
    remove(&["smoke-job"], &[]);
    let start = Instant::now();
    manager(&[
        "service", "create", "--detach", "--name", "smoke-job", "--mode", "replicated-job", "--replicas", "3",
        "--max-concurrent", "3", "--env", "TESTAPP_EXIT_AFTER=300ms", TESTAPP,
    ]);
    let done = wait_for("smoke-job: 3 completed tasks", Duration::from_secs(60), || {
        let all = tasks("smoke-job");
        let complete = all.iter().filter(|(_, state)| state.starts_with("Complete")).count();
        if complete == 3 { Ok(all) } else { Err(format!("{all:?}")) }
    });
    eprintln!("[smoke] smoke-job: 3 of 3 completed {:.1} s after service create: {done:?}", start.elapsed().as_secs_f64());
    // What a program reads: GET /services?status=true has ServiceStatus.CompletedTasks (API 1.41).
    let replicas = manager(&["service", "ls", "--filter", "name=smoke-job", "--format", "{{.Replicas}}"]);
    assert_eq!(replicas.trim(), "0/3 (3/3 completed)");
    remove(&["smoke-job"], &[]);
}

fn node_loss_detected_and_node_back() {
    let cluster = cluster();
    let start = Instant::now();
    cluster.kill_node("node-3");
    let down = wait_for("node-3 Down", Duration::from_secs(30), || {
        let state = manager(&["node", "inspect", "--format", "{{.Status.State}}", "node-3"]);
        if state.trim() == "down" { Ok(start.elapsed()) } else { Err(state.trim().to_string()) }
    });
    eprintln!("[smoke] node-3 killed: Down after {:.1} s (heartbeat {})", down.as_secs_f64(), cluster.spec().heartbeat);
    assert!(cluster.docker_output("node-3", &["version"]).status.code() != Some(0), "node-3's engine still answers");
    let start = Instant::now();
    cluster.restart_node("node-3");
    let state = manager(&["node", "inspect", "--format", "{{.Status.State}}", "node-3"]);
    assert_eq!(state.trim(), "ready");
    eprintln!("[smoke] node-3 restarted: Ready after {:.1} s", start.elapsed().as_secs_f64());
}
