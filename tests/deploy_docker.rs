//! `swarmctl deploy` against the real Docker engine on this machine, through the real binary.
//! Each test uses its own stack name and removes what it made, even when it fails.

use std::process::{Command, Output};

#[allow(dead_code)]
mod engine_proxy;
mod host_support;

use engine_proxy::EngineProxy;
use host_support::{docker, free_port, images, repository, text, Stack, BINARY};

/// This binary's own queries of a stack (an inherent impl may sit in any module of the crate).
impl Stack {
    /// Container names of this stack, sorted, with duplicates kept.
    fn containers(&self) -> Vec<String> {
        let out = docker(&["ps", "-a", "--filter", &format!("label=io.swarmctl.stack={}", self.name), "--format", "{{.Names}}"]);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    fn networks(&self) -> Vec<String> {
        let out = docker(&["network", "ls", "--filter", &format!("label=io.swarmctl.stack={}", self.name), "--format", "{{.Name}}"]);
        let mut names: Vec<String> = out.lines().map(str::to_string).collect();
        names.sort();
        names
    }

    fn id(&self, container: &str) -> String {
        docker(&["inspect", "--format", "{{.Id}}", container]).trim().to_string()
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

const APP: &str = r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    environment: {TESTAPP_PORTS: "5432"}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:5432/health"], interval: 1s, retries: 10}
    volumes: [data:/data]
  migrate:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 200ms}
    depends_on: {db: {condition: service_healthy}}
  web:
    image: swarmctl-test/testapp:latest
    deploy: {replicas: 2}
    environment: {TESTAPP_PORTS: "8080", COLOR: blue}
    configs: [{source: settings, target: /etc/web.conf}]
    depends_on:
      migrate: {condition: service_completed_successfully}
configs:
  settings: {content: "greeting=hello"}
volumes:
  data:
"#;

#[test]
fn redeploy_changes_nothing_and_a_change_replaces_only_its_service() {
    let stack = Stack::new("e2e-idem", APP);
    let first = stack.run(&["deploy"]);
    assert!(first.status.success(), "{}", text(&first));
    assert_eq!(stack.containers(), ["e2e-idem-db-0", "e2e-idem-migrate-1", "e2e-idem-web-1", "e2e-idem-web-2"]);
    let db = stack.id("e2e-idem-db-0");
    let status = stack.run(&["status"]);
    assert!(status.status.success(), "{}", text(&status));
    for line in ["db                   statefulset  1/1 ready", "migrate              job          1/1 ready", "web                  deployment   2/2 ready"] {
        assert!(text(&status).contains(line), "{line:?} in\n{}", text(&status));
    }
    assert!(text(&status).contains("e2e-idem-db-0       running, healthy"), "{}", text(&status));
    let json: serde_json::Value = serde_json::from_slice(&stack.run(&["status", "--output", "json"]).stdout).unwrap();
    assert_eq!(json["services"][2]["instances"][1]["name"], "e2e-idem-web-2");

    // `docker events` counts in whole seconds: start the window after the first deploy's last second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let since = unix_now();
    let again = stack.run(&["deploy"]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(text(&again).contains("no changes"), "{}", text(&again));
    let until = unix_now() + 1;
    let events = docker(&[
        "events", "--since", &since.to_string(), "--until", &until.to_string(),
        "--filter", &format!("label=io.swarmctl.stack={}", stack.name), "--format", "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let mutations: Vec<&str> = events.lines().filter(|l| ["create", "start", "stop", "destroy", "die", "kill"].iter().any(|a| l.starts_with(a))).collect();
    assert!(mutations.is_empty(), "an unchanged redeploy touched containers: {mutations:?}");

    stack.write(&APP.replace("COLOR: blue", "COLOR: green"));
    let changed = stack.run(&["deploy"]);
    assert!(changed.status.success(), "{}", text(&changed));
    assert!(text(&changed).contains("spec changed: environment"), "{}", text(&changed));
    assert_eq!(stack.id("e2e-idem-db-0"), db, "the unchanged database was replaced");
    let env = docker(&["inspect", "--format", "{{json .Config.Env}}", "e2e-idem-web-1"]);
    assert!(env.contains("COLOR=green"));
    let config = docker(&["exec", "e2e-idem-web-1", "cat", "/etc/web.conf"]);
    assert_eq!(config, "greeting=hello");

    let history = stack.run(&["history", "--output", "json"]);
    let revisions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(revisions.as_array().unwrap().len(), 2, "the no-op deploy must not record a revision");

    // A replica removed by hand: `status` by name knows the desired count from the last
    // revision, and says the stack is not ready.
    docker(&["rm", "-f", "e2e-idem-web-2"]);
    let by_name = Command::new(BINARY).args(["status", "e2e-idem", "--target", "host"]).env("SWARMCTL_STATE_DIR", stack.state.path()).output().unwrap();
    assert_eq!(by_name.status.code(), Some(1), "{}", text(&by_name));
    assert!(text(&by_name).contains("web                  deployment   1/2 ready"), "{}", text(&by_name));

    let down = stack.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(stack.containers().is_empty());
    assert!(stack.networks().is_empty());
    let volumes = docker(&["volume", "ls", "--filter", "label=io.swarmctl.stack=e2e-idem", "--format", "{{.Name}}"]);
    assert_eq!(volumes.trim(), "e2e-idem_data-0", "down without --volumes keeps data");
    assert!(stack.run(&["down"]).status.success(), "down of nothing succeeds");
}

/// The volume mounted at `target` in `container`.
fn volume_at(container: &str, target: &str) -> String {
    let template = format!("{{{{range .Mounts}}}}{{{{if eq .Destination \"{target}\"}}}}{{{{.Name}}}}{{{{end}}}}{{{{end}}}}");
    docker(&["inspect", "--format", &template, container]).trim().to_string()
}

fn volume_exists(name: &str) -> bool {
    Command::new("docker").args(["volume", "inspect", name]).output().unwrap().status.success()
}

/// An unnamed volume lives as long as its replica's data: a replacement mounts the old one
/// (as compose does), and only `down --volumes` deletes it, along with the named ones.
#[test]
fn anonymous_volumes_survive_a_replacement_and_go_with_down_volumes() {
    const CACHE: &str = r#"
name: NAME
services:
  web:
    image: swarmctl-test/testapp:latest
    environment: {COLOR: blue}
    volumes: ["/cache", "data:/data"]
volumes:
  data:
"#;
    let stack = Stack::new("e2e-anon", CACHE);
    let first = stack.run(&["deploy"]);
    assert!(first.status.success(), "{}", text(&first));
    let anonymous = volume_at("e2e-anon-web-1", "/cache");
    assert_eq!(anonymous.len(), 64, "an anonymous volume at /cache: {anonymous:?}");
    docker(&["exec", "e2e-anon-web-1", "sh", "-c", "echo -n yes >/cache/kept"]);

    stack.write(&CACHE.replace("COLOR: blue", "COLOR: green"));
    let changed = stack.run(&["deploy"]);
    assert!(changed.status.success(), "{}", text(&changed));
    assert_eq!(volume_at("e2e-anon-web-1", "/cache"), anonymous, "the replacement mounts the old anonymous volume");
    assert_eq!(docker(&["exec", "e2e-anon-web-1", "cat", "/cache/kept"]), "yes");
    assert!(text(&stack.run(&["plan"])).contains("no changes"), "the inherited mount is not a change");

    let down = stack.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(volume_exists(&anonymous) && volume_exists("e2e-anon_data"), "down without --volumes keeps data");
    docker(&["volume", "rm", &anonymous]); // nothing mounts it any more: a fresh deploy makes its own

    assert!(stack.run(&["deploy"]).status.success());
    let anonymous = volume_at("e2e-anon-web-1", "/cache");
    let down = stack.run(&["down", "--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!volume_exists(&anonymous), "down --volumes deletes the anonymous volume");
    assert!(!volume_exists("e2e-anon_data"), "and the named one");
}

#[test]
fn a_dependency_that_never_gets_healthy_fails_the_deploy_with_its_health_log() {
    let stack = Stack::new("e2e-unhealthy", r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_UNHEALTHY: "1"}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 2}
  web:
    image: swarmctl-test/testapp:latest
    depends_on: {db: {condition: service_healthy}}
  cache:
    image: swarmctl-test/testapp:latest
"#);
    let out = stack.run(&["deploy", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let output = text(&out);
    assert!(output.contains("wait healthy e2e-unhealthy-db-1"), "{output}");
    assert!(output.contains("unhealthy"), "{output}");
    assert!(output.contains("skipped"), "web must be skipped: {output}");
    assert!(stack.containers().contains(&"e2e-unhealthy-cache-1".to_string()), "independent work finishes");
    // web was created up front, but never started.
    let web_state = docker(&["inspect", "--format", "{{.State.Status}}", "e2e-unhealthy-web-1"]);
    assert_eq!(web_state.trim(), "created");
    let status = stack.run(&["status"]);
    assert_eq!(status.status.code(), Some(1), "status says the stack is not ready: {}", text(&status));
    assert!(text(&status).contains("running, unhealthy"), "{}", text(&status));
}

#[test]
fn a_failing_job_fails_the_deploy_with_its_last_log_lines() {
    let stack = Stack::new("e2e-job", r#"
name: NAME
services:
  migrate:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 100ms, TESTAPP_EXIT_CODE: "3"}
  web:
    image: swarmctl-test/testapp:latest
    depends_on: {migrate: {condition: service_completed_successfully}}
"#);
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("exited with code 3"), "{}", text(&out));
    let state = docker(&["inspect", "--format", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", "e2e-job-migrate-1"]);
    assert_eq!(state.trim(), "exited no", "a job is kept with its logs and not restarted");
    // The exit code comes from the engine's state, so the failed job runs again next time.
    let plan = stack.run(&["plan"]);
    assert!(text(&plan).contains("job failed before (exit 3)"), "{}", text(&plan));
}

/// Every kind of step, and containers made in several calls (two networks, a config, a secret).
const KILLABLE: &str = r#"
name: NAME
services:
  db:
    image: swarmctl-test/testapp:latest
    x-kind: statefulset
    environment: {TESTAPP_PORTS: "5432"}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:5432/health"], interval: 300ms, retries: 20}
    volumes: [data:/data]
    networks: [back]
  migrate:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 100ms}
    depends_on: {db: {condition: service_healthy}}
    networks: [back]
  web:
    image: swarmctl-test/testapp:latest
    networks: [front, back]
    configs: [{source: settings, target: /etc/web.conf}]
    secrets: [token]
    depends_on: {migrate: {condition: service_completed_successfully}}
configs:
  settings: {content: "greeting=hello"}
secrets:
  token: {file: ./token}
networks: {front: {}, back: {}}
volumes: {data: {}}
"#;

/// A deploy killed before any one of its engine calls (the proxy on the engine socket SIGKILLs
/// it as the request arrives) converges when run again: no duplicates, no half-made
/// container taken for a finished one, the files and networks in place.
#[test]
fn a_deploy_killed_before_any_engine_call_converges_when_run_again() {
    let stack = Stack::new("e2e-kill", KILLABLE);
    std::fs::write(stack.path().join("token"), "s3cret").unwrap();
    let proxy = EngineProxy::start();
    let through_proxy = |args: &[&str]| stack.command(args).env("DOCKER_HOST", proxy.host()).output().unwrap();
    let full = through_proxy(&["deploy"]);
    assert!(full.status.success(), "{}", text(&full));
    let calls = proxy.requests();
    assert!(calls >= 20, "a deploy of this stack makes {calls} engine calls");
    let converged = |k: usize| {
        assert_eq!(stack.containers(), ["e2e-kill-db-0", "e2e-kill-migrate-1", "e2e-kill-web-1"], "k={k}");
        assert_eq!(stack.networks(), ["e2e-kill_back", "e2e-kill_front"], "k={k}");
        assert_eq!(docker(&["exec", "e2e-kill-web-1", "cat", "/etc/web.conf", "/run/secrets/token"]), "greeting=hellos3cret", "k={k}");
        let networks = docker(&["inspect", "--format", "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}", "e2e-kill-web-1"]);
        assert_eq!(networks.trim(), "e2e-kill_back e2e-kill_front", "k={k}");
        assert!(text(&stack.run(&["plan"])).contains("no changes"), "k={k}");
    };
    converged(0);
    for k in 1..=calls {
        assert!(stack.run(&["down", "--volumes"]).status.success());
        proxy.reset();
        proxy.kill_sender_of(k);
        let killed = through_proxy(&["deploy"]);
        match proxy.killed() {
            Some(_) => assert_eq!(killed.status.code(), None, "k={k}: killed by a signal: {}", text(&killed)),
            // This run made fewer calls than the first (waits poll as the engine answers).
            None => assert!(killed.status.success(), "k={k}: {}", text(&killed)),
        }
        let rerun = stack.run(&["deploy"]);
        assert!(rerun.status.success(), "k={k}: {}", text(&rerun));
        converged(k);
    }
}

#[test]
fn a_second_deploy_of_the_same_stack_waits_for_the_first() {
    let stack = Stack::new("e2e-lock", r#"
name: NAME
services:
  slow:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_START_DELAY: 3s}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 20}
"#);
    let mut first = stack.command(&["deploy"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let refused = stack.run(&["deploy", "--lock-timeout", "0s"]);
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(text(&refused).contains("another deploy of `e2e-lock` is running (pid"), "{}", text(&refused));
    let down = stack.run(&["down", "--lock-timeout", "0s"]);
    assert_eq!(down.status.code(), Some(4), "down waits for a deploy too: {}", text(&down));
    let waited = stack.run(&["deploy", "--lock-timeout", "60s"]);
    assert!(first.wait().unwrap().success());
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(text(&waited).contains("no changes"), "the waiter sees the finished deploy: {}", text(&waited));
    assert_eq!(stack.containers(), ["e2e-lock-slow-1"]);
}

#[test]
fn bad_input_changes_nothing_and_exits_2() {
    let stack = Stack::new("e2e-bad", "name: NAME\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n    depends_on: [nope]\n");
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stack.containers().is_empty() && stack.networks().is_empty());
    stack.write("name: NAME\nservices:\n  web:\n    image: not-built-anywhere:1\n");
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not-built-anywhere:1"));
    assert!(stack.containers().is_empty() && stack.networks().is_empty());

    // A host port another container already publishes: refused at plan time, not half-way
    // through with "port is already allocated".
    let port = free_port();
    let foreign = "e2e-bad-foreign-port";
    docker(&["rm", "-f", foreign]);
    docker(&["run", "-d", "--name", foreign, "-p", &format!("127.0.0.1:{port}:8080"), "swarmctl-test/testapp:latest"]);
    stack.write(&format!("name: NAME\nservices:\n  db:\n    image: swarmctl-test/testapp:latest\n  web:\n    image: swarmctl-test/testapp:latest\n    ports: [\"{port}:8080\"]\n"));
    let out = stack.run(&["deploy"]);
    docker(&["rm", "-f", foreign]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&format!("host port {port}/tcp is already published by container `{foreign}`")), "{}", text(&out));
    assert!(stack.containers().is_empty() && stack.networks().is_empty(), "nothing was created");

    // No services: an error, never "remove everything".
    stack.write("name: NAME\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n");
    assert!(stack.run(&["deploy"]).status.success());
    stack.write("name: NAME\n");
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(stack.containers(), ["e2e-bad-web-1"], "an empty stack file removes nothing");
}

/// The example DB gateway, offline: real PostgreSQL reachable only through real HAProxy.
#[test]
fn db_gateway_serves_sql_through_haproxy_and_redeploys_as_a_no_op() {
    images();
    let state = tempfile::tempdir().unwrap();
    let (pg_port, stats_port, web_port, api_port) = (free_port(), free_port(), free_port(), free_port());
    let swarmctl = |args: &[&str]| {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .arg(repository().join("stacks/db-gateway"))
            .args(["--overlay", "overlays/single-host", "--overlay", "overlays/offline", "--name", "e2e-dbgw", "--target", "host"])
            .current_dir(repository())
            .env("SWARMCTL_STATE_DIR", state.path())
            .env("NO_COLOR", "1")
            .env("HAPROXY_PG_PORT", pg_port.to_string())
            .env("HAPROXY_STATS_PORT", stats_port.to_string())
            .env("WEBUI_BACKEND_PORT", web_port.to_string())
            .env("HOST_API_PORT", api_port.to_string());
        command.output().unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            (self.0)(&["down", "--volumes"]);
        }
    }
    let _cleanup = Down(&swarmctl);
    swarmctl(&["down", "--volumes"]);

    let deployed = swarmctl(&["deploy", "--timeout", "3m"]);
    assert!(deployed.status.success(), "{}", text(&deployed));

    // Write and read a row from the host, through the proxy's published port only.
    let psql = |sql: &str| {
        Command::new("docker")
            .args(["run", "--rm", "--network", "host", "-e", "PGPASSWORD=kindler-dev-password", "--entrypoint", "psql", "swarmctl-test/postgres:15"])
            .args(["-h", "127.0.0.1", "-p", &pg_port.to_string(), "-U", "kindler", "-d", "kindler", "-tAc", sql])
            .output()
            .unwrap()
    };
    let written = psql("CREATE TABLE IF NOT EXISTS e2e (id int, note text); INSERT INTO e2e VALUES (1, 'through haproxy');");
    assert!(written.status.success(), "{}", text(&written));
    let read = psql("SELECT note FROM e2e WHERE id = 1");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "through haproxy", "{}", text(&read));
    // PostgreSQL itself publishes nothing: the proxy is the only way in.
    let ports = docker(&["port", "e2e-dbgw-postgres-0"]);
    assert!(ports.trim().is_empty(), "postgres publishes {ports}");

    let again = swarmctl(&["deploy"]);
    assert!(again.status.success() && text(&again).contains("no changes"), "{}", text(&again));
    let down = swarmctl(&["down", "--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(docker(&["ps", "-a", "--filter", "label=io.swarmctl.stack=e2e-dbgw", "--format", "{{.Names}}"]).trim().is_empty());
}

/// A service that takes two minutes to become healthy: a wait on it is still pending when the
/// tests interrupt.
const SLOW: &str = r#"
name: NAME
services:
  slow:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_START_DELAY: 120s}
    healthcheck: {test: ["CMD", "/testapp", "check", "http://127.0.0.1:8080/health"], interval: 500ms, retries: 1000}
  after:
    image: swarmctl-test/testapp:latest
    depends_on: {slow: {condition: service_healthy}}
"#;

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: signalling a child process we own.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Runs `deploy` until its wait on `slow` is in flight, then sends `sig`.
fn interrupted_deploy(stack: &Stack, sig: i32) -> (Output, std::time::Duration) {
    let mut child = stack.command(&["deploy", "--timeout", "10m"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("wait healthy") {
            break;
        }
    }
    assert!(seen.contains("wait healthy"), "the deploy never waited: {seen}");
    signal(&child, sig);
    let sent = std::time::Instant::now();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let mut out = child.wait_with_output().unwrap();
    out.stderr = format!("{seen}{}", rest.join("\n")).into_bytes();
    (out, sent.elapsed())
}

/// Ctrl-C, SIGTERM (CI, `timeout`) and SIGHUP end a deploy within seconds, also in the middle of
/// a long wait; the revision says interrupted, nothing starts afterwards, and a re-run converges.
#[test]
fn an_interrupt_ends_the_waits_records_an_interrupted_revision_and_exits_130() {
    let stack = Stack::new("e2e-sigint", SLOW);
    for (number, sig) in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP].into_iter().enumerate() {
        let (out, took) = interrupted_deploy(&stack, sig);
        assert_eq!(out.status.code(), Some(130), "signal {sig}: {}", text(&out));
        assert!(took < std::time::Duration::from_secs(60), "signal {sig}: the wait went on for {took:?} (it would take 2 minutes)");
        // `after` may have been created up front, but nothing starts after the interrupt.
        let state = docker(&["inspect", "--format", "{{.State.Status}}", "e2e-sigint-after-1"]);
        assert_eq!(state.trim(), "created", "signal {sig}: nothing new starts after an interrupt");
        let history = stack.run(&["history", "--output", "json"]);
        let revisions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
        assert_eq!(revisions[number]["result"], "interrupted", "signal {sig}: {revisions}");
    }
    stack.write(&SLOW.replace("120s", "1s"));
    let rerun = stack.run(&["deploy"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert_eq!(stack.containers(), ["e2e-sigint-after-1", "e2e-sigint-slow-1"]);
}

/// In-flight engine calls finish after a first interrupt (here a stop with a long grace period);
/// a second one quits at once.
#[test]
fn a_second_interrupt_quits_at_once() {
    const STUBBORN: &str = r#"
name: NAME
services:
  stubborn:
    image: swarmctl-test/busybox:latest
    command: ["sleep", "600"]
    stop_grace_period: 2m
    environment: {VERSION: "1"}
"#;
    let stack = Stack::new("e2e-sigint2", STUBBORN);
    assert!(stack.run(&["deploy"]).status.success());
    stack.write(&STUBBORN.replace("VERSION: \"1\"", "VERSION: \"2\""));
    let mut child = stack.command(&["deploy"]).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    // The stop of `sleep` as PID 1 runs into its whole grace period.
    while let Some(Ok(line)) = lines.next() {
        if line.contains("remove container") || line.contains("create container") {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the stop in flight finishes before the deploy ends");
    signal(&child, libc::SIGINT);
    let sent = std::time::Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(sent.elapsed() < std::time::Duration::from_secs(30), "quit took {:?}", sent.elapsed());
    docker(&["rm", "-f", "e2e-sigint2-stubborn-1"]);
}

/// The engine going away mid-deploy (a daemon restart; here the socket proxy goes away) is an
/// engine failure, exit 3, with a message saying so; a re-run once it is back converges.
#[test]
fn the_engine_going_away_mid_deploy_exits_3() {
    let stack = Stack::new("e2e-gone", &SLOW.replace("120s", "5s"));
    let proxy = EngineProxy::start();
    let mut child = stack.command(&["deploy"]).env("DOCKER_HOST", proxy.host()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("wait healthy") {
            break;
        }
    }
    proxy.go_away();
    seen.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{seen}");
    assert!(seen.contains("engine stopped answering"), "{seen}");
    let rerun = stack.run(&["deploy"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
}

/// `swarmctl … | head -1`: the reader goes away; the deploy goes on, succeeds and says so by its
/// exit code, with no panic.
#[test]
fn a_closed_stdout_is_not_a_crash() {
    let stack = Stack::new("e2e-pipe", "name: NAME\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n");
    for args in [&["deploy"][..], &["status"], &["plan"], &["history"]] {
        let mut child = stack.command(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(!text(&out).contains("panicked"), "{args:?}: {}", text(&out));
    }
    assert_eq!(stack.containers(), ["e2e-pipe-web-1"]);
}


/// A revision that cannot be written (here its file's place is taken by a directory, as a full
/// disk would fail it) is an error, exit 3, with no temporary file left behind.
#[test]
fn a_revision_that_cannot_be_recorded_is_reported() {
    let stack = Stack::new("e2e-norecord", "name: NAME\nservices:\n  web:\n    image: swarmctl-test/testapp:latest\n");
    let engine_id = docker(&["info", "--format", "{{.ID}}"]).trim().replace(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'), "_");
    let dir = stack.state.path().join(engine_id).join("e2e-norecord");
    std::fs::create_dir_all(dir.join("revision-000001.tmp")).unwrap();
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("the stack's history: cannot record the revision"), "{}", text(&out));
    assert!(text(&out).contains("converged"), "the deploy itself is reported: {}", text(&out));
}

/// A service whose only container exits a second after it started has not converged: the
/// deploy fails with the exit code and the last log lines, and `status` agrees.
#[test]
fn a_container_that_dies_after_starting_fails_the_deploy() {
    let stack = Stack::new("e2e-dies", r#"
name: NAME
services:
  api:
    image: swarmctl-test/testapp:latest
    environment: {TESTAPP_EXIT_AFTER: 1s, TESTAPP_EXIT_CODE: "2"}
"#);
    let out = stack.run(&["deploy"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("exited with code 2"), "{}", text(&out));
    assert!(text(&out).contains("exiting with code 2"), "the last log lines: {}", text(&out));
    assert!(!text(&out).contains("converged in"), "{}", text(&out));
    assert_eq!(stack.run(&["status"]).status.code(), Some(1));
}
