//! Every example stack under `stacks/` deploys on this machine's Docker engine, through the real
//! binary, with the overlays that make it runnable on one machine without a registry
//! (`overlays/single-host` then `overlays/offline`), on the host target:
//!
//! - `deploy` exits 0 and prints "converged";
//! - `status` exits 0 and reports every active service of the stack with all its replicas ready;
//! - a second `deploy` of the same input plans nothing, changes no container (no create, start,
//!   stop, kill, die or destroy in `docker events`) and records no revision;
//! - `down --volumes` leaves no container, network or volume labelled with the stack, and deletes
//!   the anonymous volumes its containers mounted.
//!
//! The images come from `bash tests/images/build.sh --all` (CI's `.ci/run` builds them); a
//! missing one fails the test with that command, it is never skipped. The stacks run one at a
//! time (they are sized for one 2-core machine), each under its own name `sd-<stack>-<pid>`, with
//! free host ports instead of their defaults (80, 5432, …), and whatever they made is removed
//! even when an assertion fails. Set `SD_KEEP=1` to keep a failed stack running for a look.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use swarmctl::spec::{load, LoadOptions, Loaded};

const BINARY: &str = env!("CARGO_BIN_EXE_swarmctl");
const LABEL: &str = "io.swarmctl.stack";
const OVERLAYS: [&str; 2] = ["single-host", "offline"];
const BUILD_IMAGES: &str = "bash tests/images/build.sh --all";

/// One stack at a time: each is a whole platform for a 2-core machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Example {
    /// The directory under `stacks/`.
    stack: &'static str,
    /// Variables that set the stack's published host ports (each gets a free port).
    port_variables: &'static [&'static str],
    /// Checks of this stack once it converged, given the stack's name.
    check: Option<fn(&str)>,
}

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run the docker CLI")
}

/// Lines of a docker listing, sorted.
fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = docker(args);
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    lines.sort();
    lines
}

/// A free TCP port on loopback, for a published port that must not collide with anything.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// One deployment of an example: its name, state directory and environment.
struct Deployment {
    stack: &'static str,
    name: String,
    state: tempfile::TempDir,
    env: BTreeMap<String, String>,
    /// Volumes the stack's containers mounted (named and anonymous), for the cleanup.
    volumes: BTreeSet<String>,
}

impl Deployment {
    fn new(example: &Example) -> Deployment {
        let env = example.port_variables.iter().map(|v| (v.to_string(), free_port().to_string())).collect();
        Deployment {
            stack: example.stack,
            name: format!("sd-{}-{}", example.stack, std::process::id()),
            state: tempfile::tempdir().unwrap(),
            env,
            volumes: BTreeSet::new(),
        }
    }

    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            path: repository().join("stacks").join(self.stack),
            overlays: OVERLAYS.iter().map(|o| repository().join("overlays").join(o)).collect(),
            name: Some(self.name.clone()),
            ..LoadOptions::default()
        }
    }

    /// The stack as the binary will see it (same overlays, same environment).
    fn load(&self) -> Loaded {
        let lookup = |key: &str| self.env.get(key).cloned().or_else(|| std::env::var(key).ok());
        load(&self.load_options(), &lookup).unwrap_or_else(|failure| {
            let messages: Vec<String> = failure.diagnostics.0.iter().map(|d| d.render(&failure.sources, false)).collect();
            panic!("{} with {OVERLAYS:?} does not load:\n{}", self.stack, messages.join(""))
        })
    }

    /// `swarmctl COMMAND stacks/<stack> --overlay … --name … --target host ARGS…`
    fn swarmctl(&self, command: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(BINARY);
        cmd.arg(command).arg(repository().join("stacks").join(self.stack));
        for overlay in OVERLAYS {
            cmd.arg("--overlay").arg(repository().join("overlays").join(overlay));
        }
        cmd.args(["--name", &self.name, "--target", "host"]).args(args);
        cmd.current_dir(repository()).env("SWARMCTL_STATE_DIR", self.state.path()).env("NO_COLOR", "1").envs(&self.env);
        cmd.output().expect("run swarmctl")
    }

    fn label(&self) -> String {
        format!("label={LABEL}={}", self.name)
    }

    fn containers(&self) -> Vec<String> {
        docker_lines(&["ps", "-a", "--filter", &self.label(), "--format", "{{.Names}}"])
    }

    fn networks(&self) -> Vec<String> {
        docker_lines(&["network", "ls", "--filter", &self.label(), "--format", "{{.Name}}"])
    }

    fn labelled_volumes(&self) -> Vec<String> {
        docker_lines(&["volume", "ls", "--filter", &self.label(), "--format", "{{.Name}}"])
    }

    /// Every volume the stack's containers mount, anonymous ones included.
    fn mounted_volumes(&self) -> BTreeSet<String> {
        let containers = self.containers();
        if containers.is_empty() {
            return BTreeSet::new();
        }
        let mut args = vec!["inspect", "--format", "{{range .Mounts}}{{if eq .Type \"volume\"}}{{.Name}}\n{{end}}{{end}}"];
        args.extend(containers.iter().map(String::as_str));
        docker_lines(&args).into_iter().collect()
    }

    fn existing(&self, volumes: &BTreeSet<String>) -> Vec<String> {
        volumes.iter().filter(|v| docker(&["volume", "inspect", v.as_str()]).status.success()).cloned().collect()
    }
}

/// Removes everything of the deployment, whatever state the test left it in.
impl Drop for Deployment {
    fn drop(&mut self) {
        if std::thread::panicking() && std::env::var_os("SD_KEEP").is_some() {
            eprintln!("SD_KEEP: leaving stack {} running; remove it with: docker rm -fv $(docker ps -aq --filter {})", self.name, self.label());
            return;
        }
        let _ = self.swarmctl("down", &["--volumes", "--lock-timeout", "30s"]);
        // What down could not remove (an engine error, a half-created container).
        let containers = self.containers();
        if !containers.is_empty() {
            let mut args = vec!["rm", "-fv"];
            args.extend(containers.iter().map(String::as_str));
            let _ = docker(&args);
        }
        for network in self.networks() {
            let _ = docker(&["network", "rm", &network]);
        }
        let mut volumes: BTreeSet<String> = self.labelled_volumes().into_iter().collect();
        volumes.extend(self.volumes.iter().cloned());
        for volume in volumes {
            let _ = docker(&["volume", "rm", "-f", &volume]);
        }
    }
}

/// Fails, naming the build command, when an image a service of the stack runs is not on the engine.
fn require_images(stack: &str, loaded: &Loaded) {
    let images: BTreeSet<&str> = loaded.stack.services.values().filter_map(|s| s.image.as_deref()).collect();
    let missing: Vec<&str> = images.into_iter().filter(|image| !docker(&["image", "inspect", image]).status.success()).collect();
    assert!(
        missing.is_empty(),
        "{stack} needs images that are not on this engine: {}\nbuild them with `{BUILD_IMAGES}` (no registry: nothing is pulled)",
        missing.join(", ")
    );
}

fn deploy_converges_redeploys_as_a_no_op_and_goes(example: &Example) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut deployment = Deployment::new(example);
    let name = deployment.name.clone();
    let loaded = deployment.load();
    require_images(example.stack, &loaded);
    // Every published host port is one of ours, so this never collides with what else runs here.
    let ours: BTreeSet<u16> = deployment.env.values().map(|p| p.parse().unwrap()).collect();
    for service in loaded.stack.services.values() {
        for port in &service.ports {
            assert!(
                port.published.is_none_or(|p| ours.contains(&p)),
                "{}/{} publishes fixed host port {:?}: give it a variable in this test",
                example.stack,
                service.name,
                port.published
            );
        }
    }
    let _ = deployment.swarmctl("down", &["--volumes"]); // a leftover of an earlier run with our pid

    // 1. A cold deploy converges.
    let started = Instant::now();
    let deployed = deployment.swarmctl("deploy", &["--timeout", "3m"]);
    let took = started.elapsed();
    deployment.volumes = deployment.mounted_volumes();
    assert!(deployed.status.success(), "{} did not deploy (exit {:?}):\n{}", example.stack, deployed.status.code(), text(&deployed));
    assert!(text(&deployed).contains("converged in"), "{}", text(&deployed));
    eprintln!("{}: deployed and converged in {:.1}s ({} services)", example.stack, took.as_secs_f64(), loaded.stack.services.len());

    // 2. status: every active service, every replica ready.
    let status = deployment.swarmctl("status", &["--output", "json"]);
    assert!(status.status.success(), "status of {name} is not all ready:\n{}\n{}", text(&status), text(&deployment.swarmctl("status", &[])));
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("status --output json: {e}\n{}", text(&status)));
    let services = json["services"].as_array().expect("services in status");
    let reported: BTreeSet<&str> = services.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = loaded.stack.services.keys().map(String::as_str).collect();
    assert_eq!(reported, expected, "status reports other services than the stack has");
    for service in services {
        let (desired, ready) = (service["desired"].as_u64().unwrap(), service["ready"].as_u64().unwrap());
        assert!(desired >= 1 && ready == desired, "{}/{}: {ready}/{desired} ready: {service:#}", example.stack, service["name"]);
        for instance in service["instances"].as_array().unwrap() {
            assert_eq!(instance["ready"], true, "{}: {instance:#}", example.stack);
        }
    }

    if let Some(check) = example.check {
        check(&name);
    }

    // 3. The same input again changes nothing. `docker events` counts whole seconds: the window
    // starts after the first deploy's last second.
    std::thread::sleep(Duration::from_millis(1100));
    let since = unix_now();
    let again = deployment.swarmctl("deploy", &["--timeout", "3m"]);
    let until = unix_now() + 1;
    assert!(again.status.success(), "the second deploy failed:\n{}", text(&again));
    assert!(text(&again).contains("no changes"), "the second deploy of the same input planned changes:\n{}", text(&again));
    let events = docker_lines(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        &deployment.label(),
        "--filter",
        "type=container",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let mutations: Vec<&String> =
        events.iter().filter(|e| ["create", "start", "stop", "kill", "die", "destroy", "rename"].iter().any(|a| e.starts_with(&format!("{a} ")))).collect();
    assert!(mutations.is_empty(), "the no-op deploy of {name} (or a container on its own) changed containers: {mutations:?}");
    let plan = deployment.swarmctl("plan", &["--output", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap_or_else(|e| panic!("plan --output json: {e}\n{}", text(&plan)));
    assert_eq!(plan["plan"]["steps"], serde_json::json!([]), "plan after the redeploy");
    let history = deployment.swarmctl("history", &["--output", "json"]);
    let revisions: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap_or_else(|e| panic!("history --output json: {e}\n{}", text(&history)));
    assert_eq!(revisions.as_array().map(Vec::len), Some(1), "the no-op deploy recorded a revision: {revisions:#}");

    // 4. down --volumes leaves nothing of the stack.
    let down = deployment.swarmctl("down", &["--volumes"]);
    assert!(down.status.success(), "down --volumes failed:\n{}", text(&down));
    assert_eq!(deployment.containers(), Vec::<String>::new(), "containers left by down");
    assert_eq!(deployment.networks(), Vec::<String>::new(), "networks left by down");
    assert_eq!(deployment.labelled_volumes(), Vec::<String>::new(), "volumes left by down --volumes");
    assert_eq!(deployment.existing(&deployment.volumes), Vec::<String>::new(), "volumes the stack mounted (anonymous ones too) left by down --volumes");
}

#[test]
fn clickvisual_deploys_converges_and_goes() {
    deploy_converges_redeploys_as_a_no_op_and_goes(&Example {
        stack: "clickvisual",
        port_variables: &["CLICKVISUAL_HTTP_PORT", "INGRESS_HTTP_PORT"],
        check: None,
    });
}

#[test]
fn data_platform_deploys_converges_and_goes() {
    deploy_converges_redeploys_as_a_no_op_and_goes(&Example { stack: "data-platform", port_variables: &["PLATFORM_HTTP_PORT"], check: None });
}

#[test]
fn db_gateway_deploys_converges_and_goes() {
    deploy_converges_redeploys_as_a_no_op_and_goes(&Example {
        stack: "db-gateway",
        port_variables: &["HAPROXY_PG_PORT", "HAPROXY_STATS_PORT", "WEBUI_BACKEND_PORT", "HOST_API_PORT"],
        check: None,
    });
}

#[test]
fn voicehelper_deploys_converges_and_goes() {
    deploy_converges_redeploys_as_a_no_op_and_goes(&Example {
        stack: "voicehelper",
        port_variables: &["VOICEHELPER_HTTP_PORT"],
        check: Some(rabbitmq_is_named_after_its_ordinal),
    });
}

/// RabbitMQ's node is `rabbit@<hostname>` and its data directory is named after the node: the
/// statefulset replica's hostname `rabbitmq-0` keeps both stable across re-creation, and the
/// healthcheck (`rabbitmq-diagnostics -q ping`, which asks `rabbit@<hostname>`) reaches it.
fn rabbitmq_is_named_after_its_ordinal(name: &str) {
    let container = format!("{name}-rabbitmq-0");
    let hostname = docker(&["inspect", "--format", "{{.Config.Hostname}}", &container]);
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), "rabbitmq-0", "{}", text(&hostname));
    let mnesia = docker(&["exec", &container, "ls", "/var/lib/rabbitmq/mnesia"]);
    assert!(String::from_utf8_lossy(&mnesia.stdout).lines().any(|l| l == "rabbit@rabbitmq-0"), "the node's data on the stack's volume: {}", text(&mnesia));
}

/// Every directory under `stacks/` has a test above: a new example cannot be forgotten.
#[test]
fn every_example_stack_is_deployed_here() {
    let tested: BTreeSet<&str> = ["clickvisual", "data-platform", "db-gateway", "voicehelper"].into();
    let present: BTreeSet<String> = std::fs::read_dir(repository().join("stacks"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
    assert_eq!(present, tested, "add a test to tests/stacks_deploy.rs for each stack under stacks/");
}
