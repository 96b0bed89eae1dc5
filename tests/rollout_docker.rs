//! Rolling updates, automatic rollback and `rollback` on the real Docker engine, through the
//! binary. While a rollout runs, an observer samples the engine every 100 ms and a client sends
//! requests through the stack's own entry point (HAProxy in front of the replicas): no sample
//! may show fewer healthy replicas or more replicas than the policy allows, and no request may
//! fail.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod host_support;

use host_support::{docker, free_port, images, text, Stack};

/// This binary's own queries of a stack (an inherent impl may sit in any module of the crate).
impl Stack {
    /// `docker ps` lines of one service: `State Status`.
    fn ps(&self, service: &str) -> Vec<String> {
        let filters = [format!("label=io.swarmctl.stack={}", self.name), format!("label=io.swarmctl.service={service}")];
        docker(&["ps", "-a", "--filter", &filters[0], "--filter", &filters[1], "--format", "{{.ID}} {{.State}} {{.Status}}"]).lines().map(str::to_string).collect()
    }

    /// The environment value `key` of each running container of `service`.
    fn env_of(&self, service: &str, key: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .ps(service)
            .iter()
            .filter(|line| line.contains(" running "))
            .map(|line| {
                let id = line.split_whitespace().next().unwrap_or_default();
                let env = docker(&["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", id]);
                env.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default().to_string()
            })
            .collect();
        values.sort();
        values
    }
}

/// The configuration `web_stack` gives its entry point, in front of the replicas, which
/// Docker's DNS names `web`.
fn write_haproxy_cfg(stack: &Stack) {
    std::fs::write(stack.path().join("haproxy.cfg"), include_str!("fixtures/rollout/haproxy.cfg").replace("BACKEND", "web:8080")).unwrap();
}

fn web_stack(port: u16, version: &str, extra_env: &str, surge: u32, auto_rollback: bool) -> String {
    format!(
        r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    deploy: {{replicas: 4}}
    environment: {{TESTAPP_PORTS: "8080", VERSION: "{version}"{extra_env}}}
    healthcheck: {{test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 1s, retries: 3}}
    stop_grace_period: 2s
    x-rollout: {{max_surge: {surge}, max_unavailable: 0, progress_deadline: 30s, auto_rollback: {auto_rollback}}}
  entry:
    image: swarmctl-test/haproxy:2.6
    configs: [{{source: haproxy_cfg, target: /usr/local/etc/haproxy/haproxy.cfg}}]
    ports: ["127.0.0.1:{port}:8000"]
    depends_on: {{web: {{condition: service_healthy}}}}
configs:
  haproxy_cfg: {{file: ./haproxy.cfg}}
"#
    )
}

/// Samples the engine every 100 ms: the most replicas of `web` at once, the fewest healthy.
struct Observer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<(usize, usize, usize)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Observer {
    fn start(stack: &Stack) -> Observer {
        let (stop, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new((0, usize::MAX, 0))));
        let filters = [format!("label=io.swarmctl.stack={}", stack.name), "label=io.swarmctl.service=web".to_string()];
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let out = docker(&["ps", "--filter", &filters[0], "--filter", &filters[1], "--format", "{{.Status}}"]);
                    let running = out.lines().count();
                    let healthy = out.lines().filter(|l| l.contains("(healthy)")).count();
                    let mut seen = seen.lock().unwrap();
                    *seen = (seen.0.max(running), seen.1.min(healthy), seen.2 + 1);
                    drop(seen);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        Observer { stop, seen, thread: Some(thread) }
    }

    /// (most replicas, fewest healthy, samples)
    fn finish(mut self) -> (usize, usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join());
        *self.seen.lock().unwrap()
    }
}

/// Sends requests one after another through the entry point; counts them and the failures.
struct Client {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn get(port: u16) -> Result<String, String> {
    let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: entry\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
        Ok(answer)
    } else {
        Err(answer.lines().next().unwrap_or("empty answer").to_string())
    }
}

impl Client {
    fn start(port: u16) -> Client {
        let (stop, sent, failed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Vec::new())));
        let thread = {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Err(why) = get(port) {
                        failed.lock().unwrap().push(why);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Client { stop, sent, failed, thread: Some(thread) }
    }

    /// (requests sent, failures)
    fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join());
        (self.sent.load(Ordering::Relaxed), self.failed.lock().unwrap().clone())
    }
}

/// Until HAProxy answers 20 times in a row (it has found the replicas).
fn warm_up(port: u16) {
    let mut in_a_row = 0;
    for _ in 0..600 {
        in_a_row = if get(port).is_ok() { in_a_row + 1 } else { 0 };
        if in_a_row >= 20 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the entry point never answered 20 times in a row");
}

/// [`web_stack`] version 1 deployed as `name`, its entry point answering on the port returned.
fn serving(name: &str, surge: u32, auto_rollback: bool) -> (Stack, u16) {
    let stack = Stack::empty(name);
    write_haproxy_cfg(&stack);
    let port = free_port();
    stack.write(&web_stack(port, "1", "", surge, auto_rollback));
    let out = stack.run(&["deploy", "--stable", "1s"]);
    assert!(out.status.success(), "{}", text(&out));
    warm_up(port);
    (stack, port)
}

/// Runs the binary with `args` (a deploy) while the observer samples the engine and the client
/// sends requests through the entry point; the deploy succeeded, the observer saw it, and no
/// request failed. Returns the most replicas and the fewest healthy ones seen.
fn observed_rollout(stack: &Stack, port: u16, args: &[&str], what: &str) -> (usize, usize) {
    let (observer, client) = (Observer::start(stack), Client::start(port));
    let out = stack.run(args);
    let ((most, fewest_healthy, samples), (sent, failed)) = (observer.finish(), client.finish());
    assert!(out.status.success(), "{}", text(&out));
    eprintln!("[rollout_docker] {what}: {samples} samples, at most {most} replicas, at least {fewest_healthy} healthy; {sent} requests, {} failed", failed.len());
    assert!(samples >= 10, "the observer saw the rollout ({samples} samples)");
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    (most, fewest_healthy)
}

#[test]
fn a_rolling_update_keeps_four_healthy_replicas_and_every_request_succeeds_and_a_bad_version_is_rolled_back() {
    let (stack, port) = serving("rd-roll", 1, true);

    // Version 2, one extra replica at a time.
    stack.write(&web_stack(port, "2", "", 1, true));
    let plan = stack.run(&["plan"]);
    assert!(text(&plan).contains("rollout web: rolling update of 4 replicas: max surge 1, max unavailable 0"), "{}", text(&plan));
    let (most, fewest_healthy) = observed_rollout(&stack, port, &["deploy", "--stable", "1s"], "v1 → v2");
    assert!(most <= 5, "never more than 4 + 1 replicas: saw {most}");
    assert!(fewest_healthy >= 4, "never fewer than 4 healthy: saw {fewest_healthy}");
    assert_eq!(stack.env_of("web", "VERSION"), ["2", "2", "2", "2"]);

    // Version 3 never gets healthy: the deploy fails, web goes back to version 2, and the old
    // replicas serve throughout.
    stack.write(&web_stack(port, "3", r#", TESTAPP_UNHEALTHY: "1""#, 1, true));
    let client = Client::start(port);
    let out = stack.run(&["deploy", "--stable", "1s"]);
    let (sent, failed) = client.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("auto_rollback: web back to revision 2"), "{}", text(&out));
    assert!(text(&out).contains("web rolled back to revision 2: converged; the deploy failed"), "{}", text(&out));
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    assert_eq!(stack.env_of("web", "VERSION"), ["2", "2", "2", "2"]);
    let history = text(&stack.run(&["history"]));
    assert!(history.contains("web rolled back to 2"), "{history}");

    // Without auto_rollback the rollout stops where it is, says so, and the old replicas serve.
    stack.write(&web_stack(port, "3", r#", TESTAPP_UNHEALTHY: "1""#, 1, false));
    let client = Client::start(port);
    let out = stack.run(&["deploy", "--stable", "1s"]);
    let (sent, failed) = client.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("the rollout of web stopped where it was; the old replicas left keep serving"), "{}", text(&out));
    assert!(failed.is_empty(), "{} of {sent} requests failed: {failed:?}", failed.len());
    assert_eq!(stack.env_of("web", "VERSION").iter().filter(|v| *v == "2").count(), 4, "the old replicas all run");
}

#[test]
fn two_at_a_time_keeps_four_healthy_replicas_and_at_most_six_and_every_request_succeeds() {
    // Each old replica stops as soon as its replacement is healthy, not once the whole batch
    // is: the bounds must hold on the engine as the planner's slots promise.
    let (stack, port) = serving("rd-roll2", 2, false);

    stack.write(&web_stack(port, "2", "", 2, false));
    let plan = stack.run(&["plan"]);
    assert!(text(&plan).contains("rollout web: rolling update of 4 replicas: max surge 2, max unavailable 0"), "{}", text(&plan));
    let (most, fewest_healthy) = observed_rollout(&stack, port, &["deploy", "--stable", "0s"], "two at a time");
    assert!(most <= 6, "never more than 4 + 2 replicas: saw {most}");
    assert!(most >= 5, "the surge is used: saw {most}");
    assert!(fewest_healthy >= 4, "never fewer than 4 healthy: saw {fewest_healthy}");
    assert_eq!(stack.env_of("web", "VERSION"), ["2", "2", "2", "2"]);
}

const POSTGRES: &str = r#"
name: NAME
services:
  db:
    image: IMAGE
    x-kind: statefulset
    environment: {POSTGRES_PASSWORD_FILE: /run/secrets/pg_password}
    secrets: [pg_password]
    healthcheck: {test: ["CMD", "pg_isready", "-U", "postgres"], interval: 1s, retries: 30}
    volumes: [data:/var/lib/postgresql/data]
    stop_grace_period: 10s
secrets:
  pg_password: {content: "rollout-test"}
volumes: {data: {}}
"#;

/// A second tag of the PostgreSQL test image, removed when the test ends.
struct Tag(&'static str);

impl Drop for Tag {
    fn drop(&mut self) {
        docker(&["rmi", self.0]);
    }
}

fn psql(stack: &Stack, sql: &str) -> String {
    let id = stack.ps("db").iter().find(|l| l.contains(" running ")).and_then(|l| l.split_whitespace().next().map(str::to_string)).expect("db runs");
    docker(&["exec", &id, "psql", "-U", "postgres", "-tAc", sql]).trim().to_string()
}

#[test]
fn a_statefulset_postgres_keeps_its_rows_through_an_image_update_and_a_rollback() {
    images();
    let _tag = Tag("swarmctl-test/postgres:15-rollout");
    assert!(Command::new("docker").args(["tag", "swarmctl-test/postgres:15", "swarmctl-test/postgres:15-rollout"]).status().unwrap().success());
    let stack = Stack::empty("rd-pg");
    stack.write(&POSTGRES.replace("IMAGE", "swarmctl-test/postgres:15"));
    let out = stack.run(&["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    psql(&stack, "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 1000)");

    stack.write(&POSTGRES.replace("IMAGE", "swarmctl-test/postgres:15-rollout"));
    let out = stack.run(&["deploy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rollout db: ordered update of 1 replica"), "{}", text(&out));
    assert!(docker(&["ps", "--filter", &format!("name={}-db-0", stack.name), "--format", "{{.Image}}"]).contains("15-rollout"));
    assert_eq!(psql(&stack, "SELECT count(*) FROM orders"), "1000", "the rows survive the update");

    let out = stack.run(&["rollback"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(docker(&["ps", "--filter", &format!("name={}-db-0", stack.name), "--format", "{{.Image}}"]).trim(), "swarmctl-test/postgres:15");
    assert_eq!(psql(&stack, "SELECT count(*) FROM orders"), "1000", "and the rollback");
    let history = text(&stack.run(&["history"]));
    assert!(history.contains("db: image") && history.contains("rollback to 1"), "{history}");
}

const THREE: &str = r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 2}
    environment: {VERSION: "@V@"}
    configs: [{source: settings, target: /etc/settings}]
  worker:
    image: swarmctl-test/testapp:latest
    environment: {VERSION: "@V@"}
    secrets: [token]
configs:
  settings: {content: "revision @V@"}
secrets:
  token: {content: "token @V@"}
"#;

#[test]
fn rollback_to_one_after_three_revisions_restores_revision_one_everywhere() {
    let stack = Stack::empty("rd-back");
    for version in ["1", "2", "3"] {
        stack.write(&THREE.replace("@V@", version));
        let out = stack.run(&["deploy", "--stable", "1s"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    // The files now hold revision 3's secret: revision 1's must be given.
    let out = stack.run(&["rollback", "--to", "1", "--stable", "1s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("secret `token` must be created again") && text(&out).contains("--secret token=FILE"), "{}", text(&out));
    let secret = stack.dir.path().join("token-1");
    std::fs::write(&secret, "token 1").unwrap();
    let out = stack.run(&["rollback", "--to", "1", "--stable", "1s", "--secret", &format!("token={}", secret.display())]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stack.env_of("web", "VERSION"), ["1", "1"]);
    assert_eq!(stack.env_of("worker", "VERSION"), ["1"]);
    let web = stack.ps("web").iter().find(|l| l.contains(" running ")).and_then(|l| l.split_whitespace().next().map(str::to_string)).unwrap();
    assert_eq!(docker(&["exec", &web, "cat", "/etc/settings"]), "revision 1", "configs too");
    let worker = stack.ps("worker").iter().find(|l| l.contains(" running ")).and_then(|l| l.split_whitespace().next().map(str::to_string)).unwrap();
    assert_eq!(docker(&["exec", &worker, "cat", "/run/secrets/token"]), "token 1", "and secrets");
    let history = text(&stack.run(&["history"]));
    assert!(history.lines().any(|l| l.starts_with("4 ") && l.contains("rollback to 1")), "{history}");
    assert!(!history.contains("token 1") && !history.contains("token 3"), "no secret content in history: {history}");
}

