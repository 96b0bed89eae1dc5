//! `swarmctl deploy` to a real 3-node Swarm, through the real binary: the whole lifecycle of a
//! stack (dependency order on the cluster, every workload kind, overlay networks across nodes,
//! content-hashed configs, a no-op re-deploy that touches no service, down), failures that must
//! fail the deploy, a deploy killed before each of its changes, and two deploys at once.
//!
//! The cluster is three dockerds of our own in network namespaces (tests/cluster), started on
//! first use and torn down after the last test; the machine's own engine is never touched.
//! `harness = false`: the `main` below (libtest-mimic) owns the cluster's lifetime.

mod swarm_support;
#[allow(dead_code)]
#[path = "engine_proxy/mod.rs"]
mod engine_proxy;

use engine_proxy::EngineProxy;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output};
use std::time::Duration;
use swarm_support::{run_tests_leaving_no_trace, trial, wait_for, Cluster, SharedCluster, Spec, BUSYBOX, TESTAPP};

const BINARY: &str = env!("CARGO_BIN_EXE_swarmctl");

const HAPROXY: &str = "swarmctl-test/haproxy:2.6";

static CLUSTER: SharedCluster = SharedCluster::new(|| Spec::new("swarm-deploy", 3).images(&[BUSYBOX, TESTAPP, HAPROXY]));


fn main() -> ExitCode {
    let trials = vec![
        trial("a_stack_deploys_in_dependency_order_redeploys_as_a_no_op_and_comes_down", whole_lifecycle),
        trial("a_failing_job_fails_the_deploy_with_its_exit_code_and_logs", failing_job),
        trial("a_dependency_that_never_gets_healthy_fails_and_nothing_after_it_is_created", never_healthy_dependency),
        trial("a_deploy_killed_before_any_of_its_changes_converges_when_run_again", killed_before_each_change),
        trial("a_second_deploy_of_a_stack_waits_for_the_first_cluster_wide", two_deploys_at_once),
        trial("a_rolling_update_keeps_four_healthy_tasks_and_every_request_succeeds_and_a_bad_version_is_rolled_back", rolling_update),
    ];
    run_tests_leaving_no_trace(&CLUSTER, trials)
}

fn cluster() -> &'static Cluster {
    CLUSTER.get()
}

/// docker on one node of the cluster.
fn docker(node: &str, args: &[&str]) -> String {
    cluster().docker(node, args)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A stack directory of one test, brought down (history too) when the test ends.
struct Stack {
    name: String,
    dir: tempfile::TempDir,
}

impl Stack {
    fn new(name: &str, yaml: &str) -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let stack = Stack { name: name.into(), dir };
        stack.write(yaml);
        stack.run(&["down"]);
        stack
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, yaml: &str) {
        std::fs::write(self.path().join("stack.yaml"), yaml.replace("NAME", &self.name)).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        self.command_at(cluster().docker_host(), args)
    }

    fn command_at(&self, docker_host: &str, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command.arg(args[0]).arg(self.path()).args(&args[1..]).env("DOCKER_HOST", docker_host).env("NO_COLOR", "1");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run swarmctl")
    }

    /// The stack's services, sorted.
    fn services(&self) -> Vec<String> {
        let out = docker("node-1", &["service", "ls", "--filter", &format!("label=io.swarmctl.stack={}", self.name), "--format", "{{.Name}}"]);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    /// `node hostname` of each running task of a Swarm service.
    fn nodes_of(&self, service: &str) -> Vec<String> {
        let out = docker("node-1", &["service", "ps", &format!("{}_{service}", self.name), "--filter", "desired-state=running", "--format", "{{.Node}} {{.CurrentState}}"]);
        let mut nodes: Vec<String> = out.lines().filter(|l| l.contains("Running")).filter_map(|l| l.split_whitespace().next().map(str::to_string)).collect();
        nodes.sort();
        nodes
    }

    fn version(&self, service: &str) -> String {
        docker("node-1", &["service", "inspect", "--format", "{{.Version.Index}}", &format!("{}_{service}", self.name)]).trim().to_string()
    }

    /// The container of a running task of `service` on `node`.
    fn container_on(&self, node: &str, service: &str) -> String {
        let filter = format!("label=com.docker.swarm.service.name={}_{service}", self.name);
        docker(node, &["ps", "-q", "--filter", &filter]).lines().next().unwrap_or_default().to_string()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.run(&["down"]);
    }
}

const LIFECYCLE: &str = r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    deploy: {replicas: 2, endpoint_mode: dnsrr}
    environment: {TESTAPP_PORTS: "5432"}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:5432/health"], interval: 1s, retries: 30}
    volumes: [data:/data]
    networks: [back]
    stop_grace_period: 1s
  migrate:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 200ms}
    depends_on: {db: {condition: service_healthy}}
    networks: [back]
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 3, endpoint_mode: dnsrr}
    configs: [{source: settings, target: /etc/web.conf}]
    depends_on: {migrate: {condition: service_completed_successfully}}
    networks: [front, back]
    stop_grace_period: 1s
  agent:
    image: swarmctl-test/testapp:latest
    deploy: {mode: global, endpoint_mode: dnsrr}
    stop_grace_period: 1s
configs:
  settings: {content: "greeting=hello"}
networks: {front: {}, back: {}}
volumes: {data: {}}
"#;

fn whole_lifecycle() {
    let stack = Stack::new("sd-life", LIFECYCLE);
    let out = stack.run(&["deploy", "--timeout", "3m"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("target: swarm"), "auto picks swarm on a manager: {}", text(&out));
    assert_eq!(stack.services(), ["sd-life_agent", "sd-life_db-0", "sd-life_db-1", "sd-life_migrate", "sd-life_web"]);
    assert_eq!(stack.nodes_of("web").len(), 3, "web has its 3 replicas");
    let agents = stack.nodes_of("agent");
    assert_eq!(agents.iter().collect::<BTreeSet<_>>().len(), 3, "an agent on every node: {agents:?}");
    let (db0, db1) = (stack.nodes_of("db-0"), stack.nodes_of("db-1"));
    assert_eq!((db0.len(), db1.len()), (1, 1));
    assert_ne!(db0, db1, "the ordinals are spread over nodes");
    // Each ordinal has its own volume, on its own node.
    for (ordinal, node) in [(0, &db0[0]), (1, &db1[0])] {
        let volumes = docker(node, &["volume", "ls", "--format", "{{.Name}}"]);
        assert!(volumes.lines().any(|v| v == format!("sd-life_data-{ordinal}")), "{node}: {volumes}");
    }
    // Across the overlay network: web on one node writes to db-0 on another, by its stable name.
    let web_node = ["node-1", "node-2", "node-3"].into_iter().find(|n| *n != db0[0] && !stack.container_on(n, "web").is_empty()).expect("a web task away from db-0");
    let web = stack.container_on(web_node, "web");
    let put = cluster().docker_output(web_node, &["exec", &web, "/testapp", "put", "http://db-0:5432/kv/greeting", "across-nodes"]);
    assert!(put.status.success(), "{}", text(&put));
    let db = stack.container_on(&db0[0], "db-0");
    assert_eq!(docker(&db0[0], &["exec", &db, "cat", "/data/greeting"]), "across-nodes");
    assert_eq!(docker(web_node, &["exec", &web, "cat", "/etc/web.conf"]), "greeting=hello");

    let status = stack.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    assert!(text(&status).contains("web                  deployment   3/3 ready"), "{}", text(&status));
    let history = stack.run(&["history", "--output", "json"]);
    let revisions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap_or_else(|_| panic!("{}", text(&history)));
    assert_eq!(revisions.as_array().map(Vec::len), Some(1), "{revisions}");

    // The same input again: nothing changes, no service's version moves.
    let versions: Vec<String> = ["agent", "db-0", "db-1", "migrate", "web"].iter().map(|s| stack.version(s)).collect();
    let again = stack.run(&["deploy"]);
    assert!(again.status.success() && text(&again).contains("no changes"), "{}", text(&again));
    assert_eq!(versions, ["agent", "db-0", "db-1", "migrate", "web"].iter().map(|s| stack.version(s)).collect::<Vec<_>>());

    // New config content: a new config object, web updated to it, the old one gone.
    stack.write(&LIFECYCLE.replace("greeting=hello", "greeting=bonjour"));
    let plan = stack.run(&["plan"]);
    assert!(text(&plan).contains("update service   sd-life_web (spec changed: contents)"), "{}", text(&plan));
    let changed = stack.run(&["deploy"]);
    assert!(changed.status.success(), "{}", text(&changed));
    assert_eq!(versions[..4], ["agent", "db-0", "db-1", "migrate"].iter().map(|s| stack.version(s)).collect::<Vec<_>>()[..], "only web was updated");
    let configs = docker("node-1", &["config", "ls", "--filter", "label=io.swarmctl.stack=sd-life", "--format", "{{.Name}}"]);
    assert_eq!(configs.lines().count(), 1, "{configs}");
    let web = stack.container_on("node-1", "web");
    let web_node = if web.is_empty() { "node-2" } else { "node-1" };
    let web = stack.container_on(web_node, "web");
    assert_eq!(docker(web_node, &["exec", &web, "cat", "/etc/web.conf"]), "greeting=bonjour");

    let down = stack.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(stack.services().is_empty());
    assert!(docker("node-1", &["config", "ls", "--filter", "label=io.swarmctl.stack=sd-life", "-q"]).trim().is_empty());
    assert!(docker("node-1", &["config", "ls", "--filter", "label=io.swarmctl.history=sd-life", "-q"]).trim().is_empty(), "down takes the history too");
    wait_for("the stack's networks to go", Duration::from_secs(60), || {
        let left = docker("node-1", &["network", "ls", "--filter", "label=io.swarmctl.stack=sd-life", "-q"]);
        if left.trim().is_empty() { Ok(()) } else { Err(left) }
    });
}

fn failing_job() {
    let stack = Stack::new("sd-job", r#"
name: NAME
services:
  migrate:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 200ms, TESTAPP_EXIT_CODE: "3"}
  web:
    image: swarmctl-test/testapp:latest
    depends_on: {migrate: {condition: service_completed_successfully}}
"#);
    let out = stack.run(&["deploy", "--timeout", "2m"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("exit code 3") || text(&out).contains("exit 3"), "{}", text(&out));
    assert!(text(&out).contains("exiting with code 3"), "the job's last log lines: {}", text(&out));
    assert_eq!(stack.services(), ["sd-job_migrate"], "web waits for the job and is never created");
}

fn never_healthy_dependency() {
    let stack = Stack::new("sd-unhealthy", r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_UNHEALTHY: "1"}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 2}
    stop_grace_period: 1s
  web:
    image: swarmctl-test/testapp:latest
    depends_on: {db: {condition: service_healthy}}
"#);
    let out = stack.run(&["deploy", "--timeout", "2m"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("unhealthy"), "{}", text(&out));
    assert!(text(&out).contains("node-"), "the failed task's node is named: {}", text(&out));
    assert_eq!(stack.services(), ["sd-unhealthy_db"], "web is never created");
    let status = stack.run(&["status"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
}

const SMALL: &str = r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    deploy: {endpoint_mode: dnsrr}
    volumes: [data:/data]
    networks: [back]
    stop_grace_period: 1s
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 2, endpoint_mode: dnsrr}
    configs: [settings]
    secrets: [token]
    depends_on: [db]
    networks: [front, back]
    stop_grace_period: 1s
configs:
  settings: {content: "greeting=hello"}
secrets:
  token: {file: ./token}
networks: {front: {}, back: {}}
volumes: {data: {}}
"#;

/// The proxy on the manager's socket kills the deploy as each change (create, update, remove)
/// arrives; a plain re-run must converge to exactly the stack, with nothing duplicated.
fn killed_before_each_change() {
    let stack = Stack::new("sd-kill", SMALL);
    std::fs::write(stack.path().join("token"), "s3cret").unwrap();
    let manager = PathBuf::from(cluster().docker_host().trim_start_matches("unix://"));
    let proxy = EngineProxy::to(manager);
    let full = stack.command_at(&proxy.host(), &["deploy"]).output().unwrap();
    assert!(full.status.success(), "{}", text(&full));
    let changes = proxy.mutations();
    assert!(changes >= 6, "a deploy of this stack makes {changes} changes");
    let converged = |k: usize| {
        assert_eq!(stack.services(), ["sd-kill_db-0", "sd-kill_web"], "k={k}");
        let objects = |kind: &str| docker("node-1", &[kind, "ls", "--filter", "label=io.swarmctl.stack=sd-kill", "--format", "{{.Name}}"]).lines().count();
        assert_eq!((objects("config"), objects("secret")), (1, 1), "k={k}");
        assert_eq!(docker("node-1", &["network", "ls", "--filter", "label=io.swarmctl.stack=sd-kill", "--format", "{{.Name}}"]).lines().collect::<BTreeSet<_>>().len(), 2, "k={k}");
        let plan = stack.run(&["plan"]);
        assert!(text(&plan).contains("no changes"), "k={k}: {}", text(&plan));
    };
    converged(0);
    for k in 1..=changes {
        let down = stack.run(&["down"]);
        assert!(down.status.success(), "k={k}: {}", text(&down));
        proxy.reset();
        proxy.kill_before_mutation(k);
        let killed = stack.command_at(&proxy.host(), &["deploy"]).output().unwrap();
        match proxy.killed() {
            Some(_) => assert_eq!(killed.status.code(), None, "k={k}: killed by a signal: {}", text(&killed)),
            None => assert!(killed.status.success(), "k={k}: {}", text(&killed)),
        }
        // The killed deploy's lease is renewed no more; the re-run waits it out if it must.
        let rerun = stack.run(&["deploy", "--lock-timeout", "2m", "--stable", "1s"]);
        assert!(rerun.status.success(), "k={k}: {}", text(&rerun));
        converged(k);
    }
}

fn two_deploys_at_once() {
    let stack = Stack::new("sd-lock", r#"
name: NAME
services:
  slow:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_START_DELAY: 4s}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 30}
    stop_grace_period: 1s
"#);
    let mut first = stack.command(&["deploy"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_for("the first deploy to hold the lock", Duration::from_secs(60), || {
        let lock = docker("node-1", &["config", "ls", "--filter", "name=swarmctl-lock.sd-lock", "-q"]);
        if lock.trim().is_empty() { Err("no lock yet".into()) } else { Ok(()) }
    });
    let refused = stack.run(&["deploy", "--lock-timeout", "0s"]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(text(&refused).contains("another deploy of `sd-lock` is running (pid"), "{}", text(&refused));
    let waited = stack.run(&["deploy", "--lock-timeout", "2m"]);
    assert!(first.wait().unwrap().success());
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(text(&waited).contains("no changes"), "the waiter sees the finished deploy: {}", text(&waited));
}


fn rolling_stack(version: &str, extra_env: &str) -> String {
    format!(
        r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    deploy: {{replicas: 4, endpoint_mode: dnsrr}}
    environment: {{TESTAPP_PORTS: "8080", VERSION: "{version}"{extra_env}}}
    healthcheck: {{test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 1s, retries: 3}}
    stop_grace_period: 2s
    x-rollout: {{max_surge: 1, max_unavailable: 0, progress_deadline: 60s, auto_rollback: true}}
  entry:
    image: swarmctl-test/haproxy:2.6
    configs: [{{source: haproxy_cfg, target: /usr/local/etc/haproxy/haproxy.cfg}}]
    ports: [{{target: 8000, published: 18000, mode: host}}]
    deploy: {{endpoint_mode: dnsrr, placement: {{constraints: [node.hostname == node-1]}}}}
    depends_on: {{web: {{condition: service_healthy}}}}
configs:
  haproxy_cfg: {{file: ./haproxy.cfg}}
"#
    )
}

/// Samples `service ps` every 100 ms: the most replicas of web at once (tasks desired to run,
/// starting or running: Swarm's updater, like Kubernetes, counts a replaced task no more once
/// told to stop, while it still stops), the most tasks including those stopping, and the fewest
/// running and desired to run (Swarm keeps a task `starting` until it is healthy).
struct TaskObserver {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, usize, usize, usize)>>,
}

impl TaskObserver {
    fn start(service: &str) -> TaskObserver {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, service) = (stop.clone(), service.to_string());
        let thread = std::thread::spawn(move || {
            let (mut most, mut with_stopping, mut fewest, mut samples) = (0, 0, usize::MAX, 0);
            while !flag.load(Ordering::Relaxed) {
                let out = docker("node-1", &["service", "ps", &service, "--format", "{{.DesiredState}} {{.CurrentState}}"]);
                let live = |l: &&str| l.contains(" Running") || l.contains(" Starting");
                let replicas = out.lines().filter(|l| l.starts_with("Running ") && live(l)).count();
                let all = out.lines().filter(live).count();
                let healthy = out.lines().filter(|l| l.starts_with("Running Running")).count();
                (most, with_stopping, fewest, samples) = (most.max(replicas), with_stopping.max(all), fewest.min(healthy), samples + 1);
                std::thread::sleep(Duration::from_millis(100));
            }
            (most, with_stopping, fewest, samples)
        });
        TaskObserver { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> (usize, usize, usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

/// `curl` in node-1's network namespace, one request after another through the entry point's
/// port published there; each line it prints is an HTTP status.
struct Requests(std::process::Child, std::thread::JoinHandle<Vec<String>>);

impl Requests {
    fn start() -> Requests {
        use std::io::BufRead;
        let node = cluster().node("node-1");
        let url = format!("http://{}:18000/", node.ip);
        let script = format!("while :; do curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 10 {url}; sleep 0.02; done");
        let mut child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", node.netns))
            .args(["--", "sh", "-c", &script])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || std::io::BufReader::new(stdout).lines().map_while(Result::ok).collect());
        Requests(child, reader)
    }

    /// (requests, failures)
    fn finish(mut self) -> (usize, Vec<String>) {
        let _ = Command::new("pkill").args(["-P", &self.0.id().to_string()]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
        let codes = self.1.join().unwrap_or_default();
        let failed = codes.iter().filter(|c| c.as_str() != "200").cloned().collect();
        (codes.len(), failed)
    }
}

fn rolling_update() {
    let stack = Stack::new("sd-roll", &rolling_stack("1", ""));
    // The entry point in front of the tasks, which Swarm's DNS names `tasks.web`.
    let cfg = include_str!("fixtures/rollout/haproxy.cfg").replace("BACKEND", "tasks.web:8080");
    std::fs::write(stack.path().join("haproxy.cfg"), cfg).unwrap();
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    let node = cluster().node("node-1");
    let url = format!("http://{}:18000/", node.ip);
    wait_for("20 answers in a row through the entry point", Duration::from_secs(60), || {
        for _ in 0..20 {
            let out = cluster().exec("node-1", &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", &url]);
            if String::from_utf8_lossy(&out.stdout) != "200" {
                return Err(text(&out));
            }
        }
        Ok(())
    });

    stack.write(&rolling_stack("2", ""));
    let plan = stack.run(&["plan"]);
    assert!(text(&plan).contains("rollout web: rolling update of 4 replicas: max surge 1, max unavailable 0"), "{}", text(&plan));
    let (observer, requests) = (TaskObserver::start("sd-roll_web"), Requests::start());
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    let ((most, with_stopping, fewest, samples), (sent, failed)) = (observer.finish(), requests.finish());
    assert!(out.status.success(), "{}", text(&out));
    eprintln!(
        "[swarm_deploy] rolling update on Swarm: {samples} samples, at most {most} replicas ({with_stopping} with those stopping), at least {fewest} healthy; {sent} requests, {} failed",
        failed.len()
    );
    assert!(samples >= 10 && sent >= 10, "{samples} samples, {sent} requests");
    assert!(most <= 5, "never more than 4 + 1 replicas: saw {most}");
    assert!(fewest >= 4, "never fewer than 4 healthy: saw {fewest}");
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());

    // A version that never gets healthy: web goes back to version 2, serving throughout.
    stack.write(&rolling_stack("3", r#", TESTAPP_UNHEALTHY: "1""#));
    let requests = Requests::start();
    let out = stack.run(&["deploy", "--timeout", "3m", "--stable", "1s"]);
    let (sent, failed) = requests.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("web rolled back to revision 2: converged; the deploy failed"), "{}", text(&out));
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    let env = docker("node-1", &["service", "inspect", "sd-roll_web", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}"]);
    assert!(env.contains("VERSION=2") && !env.contains("TESTAPP_UNHEALTHY"), "{env}");
}
