//! A real multi-node Docker Swarm for end-to-end tests: one dockerd per network namespace
//! on this machine, made and removed by `tests/cluster/swarm.sh` (see its README). The
//! machine's own engine is never part of it; only its images are copied in.
//!
//! Two ways to hold a cluster:
//!
//! - [`Cluster::start`] returns an owned cluster, torn down when dropped (also when the
//!   test panicked). For a test that needs a cluster of its own (one it breaks, say).
//! - [`SharedCluster`] in a `static`, for the tests of one binary to share: it starts on
//!   first use and [`run_tests`] tears it down after the last test. Such a binary has its
//!   own `main` (`harness = false` in Cargo.toml) built on `libtest-mimic`, so it keeps
//!   libtest's command line (filters, `--list`, `--exact`, `--test-threads`) and output,
//!   and it knows when the last test is over, which `#[test]` functions never do:
//!
//! ```ignore
//! mod swarm_support;
//! use swarm_support::{run_tests, trial, SharedCluster, Spec};
//!
//! static CLUSTER: SharedCluster = SharedCluster::new(|| Spec::new("e2e-rollout", 3).label("node-2", "tier=data"));
//!
//! fn main() -> std::process::ExitCode {
//!     run_tests(&CLUSTER, vec![trial("deploys", || { let cluster = CLUSTER.get(); /* ... */ })])
//! }
//! ```
//!
//! Teardown is guaranteed three times over: `run_tests` / `Drop` run `swarm.sh down`; the
//! script's watcher (`--owner-pid`) runs it within a second once this process is gone
//! (killed by a timeout, say); and `swarm.sh up` of the same name clears what a dead
//! owner left. Teardown then checks that nothing is left (namespaces, processes, mounts,
//! cgroups, folder) and fails the run if something is.
//!
//! One process owns a cluster name at a time (an abstract unix socket is the lock, so
//! nothing is left on disk): nextest, which runs every test in a process of its own,
//! runs the tests of one binary one after another, each on a fresh cluster.
//! `SWARMCTL_KEEP_CLUSTER=1` keeps the cluster after the run, and the next run of the
//! same binary reuses it (a second instead of a few): `swarm.sh down --name NAME` ends it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// The script that makes and removes clusters.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster/swarm.sh");
pub const BUSYBOX: &str = "swarmctl-test/busybox:latest";
pub const TESTAPP: &str = "swarmctl-test/testapp:latest";
/// The machine's own engine: read from (its images, its swarm state), never changed.
pub const MACHINE_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

// ---------------------------------------------------------------- spec

/// What cluster to start. Nodes are named (and have the hostname) `node-1` … `node-N`;
/// the first `managers` of them are managers, `node-1` being the one `docker_host` names.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub nodes: usize,
    pub managers: usize,
    /// (node, "key=value"), any number per node.
    pub labels: Vec<(String, String)>,
    /// Copied from the machine's engine to every node (built by tests/images/build.sh if missing).
    pub images: Vec<String>,
    /// Swarm dispatcher heartbeat: a lost node is marked Down after about 4 of them.
    pub heartbeat: String,
}

impl Spec {
    /// `name`: 1-24 of `[a-z0-9-]`, unique per test binary (it names namespaces and folders).
    pub fn new(name: &str, nodes: usize) -> Spec {
        Spec {
            name: name.to_string(),
            nodes,
            managers: 1,
            labels: Vec::new(),
            images: vec![BUSYBOX.to_string(), TESTAPP.to_string()],
            heartbeat: "1s".to_string(),
        }
    }

    pub fn label(mut self, node: &str, key_value: &str) -> Spec {
        self.labels.push((node.to_string(), key_value.to_string()));
        self
    }

    pub fn images(mut self, images: &[&str]) -> Spec {
        self.images = images.iter().map(|image| image.to_string()).collect();
        self
    }

    pub fn managers(mut self, managers: usize) -> Spec {
        self.managers = managers;
        self
    }

    pub fn heartbeat(mut self, heartbeat: &str) -> Spec {
        self.heartbeat = heartbeat.to_string();
        self
    }

    /// The script's `--labels` value: "node-2:a=b,c=d node-3:e=f".
    fn labels_arg(&self) -> String {
        let mut per_node: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (node, key_value) in &self.labels {
            per_node.entry(node).or_default().push(key_value);
        }
        per_node.iter().map(|(node, kvs)| format!("{node}:{}", kvs.join(","))).collect::<Vec<_>>().join(" ")
    }
}

// ---------------------------------------------------------------- cluster

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Manager,
    Worker,
}

/// One node: its own dockerd in its own network namespace.
#[derive(Clone, Debug)]
pub struct Node {
    /// `node-K`: also its hostname and its name in `docker node ls`.
    pub name: String,
    /// `unix:///…/node-K/docker.sock`: this node's engine.
    pub host: String,
    /// Its address on the cluster's /24 (the Swarm advertise address).
    pub ip: String,
    pub role: Role,
    /// Its network namespace (`ip netns`), for `Cluster::exec`.
    pub netns: String,
    /// Its Swarm node ID.
    pub id: String,
}

pub struct Cluster {
    spec: Spec,
    dir: PathBuf,
    docker_host: String,
    nodes: Vec<Node>,
    env: BTreeMap<String, String>,
    keep: bool,
    /// `Some` once torn down (the result is kept: a second teardown reports the first).
    torn_down: Mutex<Option<Result<(), String>>>,
    _owner: OwnerLock,
}

impl Cluster {
    /// Starts (or, if a healthy one of that name is up, reuses) a cluster; panics with the
    /// script's output if that fails. `labels`: (node, "key=value").
    pub fn start(name: &str, nodes: usize, labels: &[(&str, &str)], images: &[&str]) -> Cluster {
        let mut spec = Spec::new(name, nodes).images(images);
        for (node, key_value) in labels {
            spec = spec.label(node, key_value);
        }
        Cluster::start_spec(&spec).unwrap_or_else(|error| panic!("{error}"))
    }

    pub fn start_spec(spec: &Spec) -> Result<Cluster, String> {
        let keep = std::env::var("SWARMCTL_KEEP_CLUSTER").is_ok_and(|value| !value.is_empty() && value != "0");
        let owner = OwnerLock::acquire(&spec.name)?;
        let started = Instant::now();
        let mut args = vec![
            "up".to_string(),
            "--name".into(),
            spec.name.clone(),
            "--nodes".into(),
            spec.nodes.to_string(),
            "--managers".into(),
            spec.managers.to_string(),
            "--heartbeat".into(),
            spec.heartbeat.clone(),
            "--images".into(),
            spec.images.join(" "),
        ];
        if !spec.labels.is_empty() {
            args.extend(["--labels".to_string(), spec.labels_arg()]);
        }
        if !keep {
            args.extend(["--owner-pid".to_string(), std::process::id().to_string()]);
        }
        let output = script(&args)?;
        let env: BTreeMap<String, String> = String::from_utf8_lossy(&output)
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let get = |key: &str| env.get(key).cloned().ok_or_else(|| format!("swarm.sh up printed no {key}"));
        let count: usize = get("SWARMCTL_CLUSTER_NODES")?.parse().map_err(|_| "bad SWARMCTL_CLUSTER_NODES".to_string())?;
        let mut nodes = Vec::with_capacity(count);
        for k in 1..=count {
            let field = |name: &str| get(&format!("SWARMCTL_NODE_{k}_{name}"));
            nodes.push(Node {
                name: field("NAME")?,
                host: field("HOST")?,
                ip: field("IP")?,
                role: if field("ROLE")? == "manager" { Role::Manager } else { Role::Worker },
                netns: field("NETNS")?,
                id: field("ID")?,
            });
        }
        eprintln!(
            "[swarm_support] cluster {} ready in {:.1} s ({} nodes){}",
            spec.name,
            started.elapsed().as_secs_f64(),
            count,
            if keep { "; SWARMCTL_KEEP_CLUSTER: it stays up after the tests" } else { "" }
        );
        Ok(Cluster {
            spec: spec.clone(),
            dir: PathBuf::from(get("SWARMCTL_CLUSTER_DIR")?),
            docker_host: get("DOCKER_HOST")?,
            nodes,
            env,
            keep,
            torn_down: Mutex::new(None),
            _owner: owner,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The cluster's folder (sockets, daemon logs: `node-K/dockerd.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DOCKER_HOST` of the manager (`node-1`): what swarmctl is pointed at.
    pub fn docker_host(&self) -> &str {
        &self.docker_host
    }

    pub fn manager(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|node| node.name == name).unwrap_or_else(|| panic!("no node {name} in cluster {}", self.spec.name))
    }

    /// True with `SWARMCTL_KEEP_CLUSTER`: teardown leaves the cluster up for the next run.
    pub fn kept(&self) -> bool {
        self.keep
    }

    /// Everything `swarm.sh env` prints (KEY=VALUE).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The docker CLI against one node (`node-1` for the manager); stdout, or a panic with stderr.
    pub fn docker(&self, node: &str, args: &[&str]) -> String {
        let output = self.docker_output(node, args);
        assert!(
            output.status.success(),
            "docker -H {} {}: {}",
            self.node(node).host,
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn docker_output(&self, node: &str, args: &[&str]) -> Output {
        docker_cli(&self.node(node).host, args)
    }

    /// Node loss: SIGKILL of the node's dockerd, containerd, shims and tasks (its cgroup).
    /// The manager marks it Down after about 4 heartbeats.
    pub fn kill_node(&self, node: &str) {
        script(&["kill-node", "--name", self.name(), node]).unwrap_or_else(|error| panic!("{error}"));
    }

    /// Starts a killed node's dockerd again (same state); returns once the manager sees it Ready.
    pub fn restart_node(&self, node: &str) {
        script(&["restart-node", "--name", self.name(), node]).unwrap_or_else(|error| panic!("{error}"));
    }

    /// Takes the node's link down: a network partition (its processes keep running).
    pub fn disconnect_node(&self, node: &str) {
        script(&["disconnect-node", "--name", self.name(), node]).unwrap_or_else(|error| panic!("{error}"));
    }

    pub fn reconnect_node(&self, node: &str) {
        script(&["reconnect-node", "--name", self.name(), node]).unwrap_or_else(|error| panic!("{error}"));
    }

    /// Runs a command in the node's network namespace (e.g. to reach a port published in
    /// `mode: host` on that node at its IP or 127.0.0.1).
    pub fn exec(&self, node: &str, command: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.node(node).netns))
            .arg("--")
            .args(command)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter runs")
    }

    /// `swarm.sh down`, then a check that nothing of the cluster is left. Idempotent.
    /// With `SWARMCTL_KEEP_CLUSTER` set, does nothing.
    pub fn teardown(&self) -> Result<(), String> {
        let mut torn_down = self.torn_down.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(result) = &*torn_down {
            return result.clone();
        }
        if self.keep {
            eprintln!(
                "[swarm_support] SWARMCTL_KEEP_CLUSTER: cluster {} left up (bash {SCRIPT} down --name {})",
                self.name(),
                self.name()
            );
            *torn_down = Some(Ok(()));
            return Ok(());
        }
        let result = script(&["down", "--name", self.name()]).map(drop).and_then(|()| {
            let left = leftovers(self.name(), &self.dir);
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("cluster {} torn down, but left behind:\n  {}", self.name(), left.join("\n  ")))
            }
        });
        *torn_down = Some(result.clone());
        result
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(error) = self.teardown() {
            // No panic in drop (it may run while a test's panic unwinds).
            eprintln!("[swarm_support] ERROR: {error}");
        }
    }
}

/// What is left of cluster `name` (folder `dir`) on this machine: namespaces, processes,
/// mounts, cgroups, the folder, its registry entry. Empty after a clean teardown.
pub fn leftovers(name: &str, dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let prefix = format!("swarmctl.{name}.");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            let netns = entry.file_name().to_string_lossy().into_owned();
            if netns.starts_with(&prefix) {
                left.push(format!("network namespace {netns}"));
            }
        }
    }
    let dir_text = format!("{}/", dir.display());
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if pid == std::process::id() {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&dir_text) && !cmdline.contains("swarm.sh") {
                left.push(format!("process {pid}: {}", cmdline.trim()));
            }
        }
    }
    if let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") {
        for line in mountinfo.lines() {
            if let Some(mount_point) = line.split(' ').nth(4) {
                if mount_point.starts_with(&dir_text) || Path::new(mount_point) == dir {
                    left.push(format!("mount {mount_point}"));
                }
            }
        }
    }
    let cgroup_roots: Vec<PathBuf> = match std::fs::read_dir("/sys/fs/cgroup") {
        Ok(entries) if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() => {
            entries.flatten().map(|entry| entry.path()).collect()
        }
        _ => vec![PathBuf::from("/sys/fs/cgroup")],
    };
    for root in cgroup_roots {
        let cgroup = root.join("swarmctl").join(name);
        if cgroup.exists() {
            left.push(format!("cgroup {}", cgroup.display()));
        }
    }
    if dir.exists() {
        left.push(format!("folder {}", dir.display()));
    }
    let registered = Path::new("/run/swarmctl-clusters").join(format!("{name}.env"));
    if registered.exists() {
        left.push(format!("registry entry {}", registered.display()));
    }
    left
}

// ---------------------------------------------------------------- shared cluster, harness

/// A cluster the tests of one binary share: `static CLUSTER: SharedCluster =
/// SharedCluster::new(|| Spec::new("name", 3));`. It starts when a test first calls
/// [`SharedCluster::get`] (so `--list`, or a filter that selects nothing, starts nothing),
/// and [`run_tests`] tears it down after the last test.
pub struct SharedCluster {
    spec: fn() -> Spec,
    cell: OnceLock<Result<Cluster, String>>,
}

impl SharedCluster {
    pub const fn new(spec: fn() -> Spec) -> SharedCluster {
        SharedCluster { spec, cell: OnceLock::new() }
    }

    /// The cluster, started on first use. If starting failed, every test that asks fails
    /// with that error (it is not retried).
    pub fn get(&self) -> &Cluster {
        match self.cell.get_or_init(|| Cluster::start_spec(&(self.spec)())) {
            Ok(cluster) => cluster,
            Err(error) => panic!("the test cluster did not start: {error}"),
        }
    }

    /// The cluster if it was started.
    pub fn started(&self) -> Option<&Cluster> {
        self.cell.get().and_then(|result| result.as_ref().ok())
    }

    /// `None` if never started.
    pub fn teardown(&self) -> Option<Result<(), String>> {
        self.started().map(Cluster::teardown)
    }
}

/// A test: a closure that passes unless it panics (assert!, unwrap, …).
pub fn trial(name: &str, test: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name, move || {
        test();
        Ok::<(), Failed>(())
    })
}

/// The `main` of a test binary that shares one cluster: runs the (filtered) tests with
/// libtest's command line and output, tears the cluster down, and fails the run if a test
/// failed or the teardown left something behind. Tests run one at a time unless
/// `--test-threads N` is given: they share one cluster on a 2-core machine.
pub fn run_tests(cluster: &SharedCluster, trials: Vec<Trial>) -> ExitCode {
    run_tests_then(cluster, trials, |_| Ok(()))
}

/// [`run_tests`], failing the run also when the cluster left anything behind or the machine's
/// own engine changed its swarm state (tests must never touch it).
pub fn run_tests_leaving_no_trace(cluster: &SharedCluster, trials: Vec<Trial>) -> ExitCode {
    let before = machine_swarm_state();
    run_tests_then(cluster, trials, |cluster| {
        if let Some(cluster) = cluster.filter(|cluster| !cluster.kept()) {
            let left = leftovers(cluster.name(), cluster.dir());
            if !left.is_empty() {
                return Err(format!("left behind: {left:?}"));
            }
            eprintln!("[swarm_support] teardown left nothing of cluster {} behind", cluster.name());
        }
        let after = machine_swarm_state();
        if before != after {
            return Err(format!("the machine's own engine went from swarm state {before:?} to {after:?}"));
        }
        Ok(())
    })
}

/// [`run_tests`] with a last check after the teardown (given the cluster, if it started).
pub fn run_tests_then(
    cluster: &SharedCluster,
    trials: Vec<Trial>,
    after_teardown: impl FnOnce(Option<&Cluster>) -> Result<(), String>,
) -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads.get_or_insert(1);
    let conclusion = libtest_mimic::run(&args, trials);
    if args.list {
        return ExitCode::SUCCESS;
    }
    let mut failed = conclusion.has_failed();
    if let Some(Err(error)) = cluster.teardown() {
        eprintln!("[swarm_support] ERROR: {error}");
        failed = true;
    }
    if let Err(error) = after_teardown(cluster.started()) {
        eprintln!("[swarm_support] ERROR after teardown: {error}");
        failed = true;
    }
    if failed {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

// ---------------------------------------------------------------- helpers

/// The docker CLI against an engine (`unix://…`).
pub fn docker_cli(host: &str, args: &[&str]) -> Output {
    Command::new("docker")
        .arg("-H")
        .arg(host)
        .args(args)
        .env_remove("DOCKER_CONTEXT")
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI runs")
}

/// `Swarm.LocalNodeState` of the machine's own engine ("inactive" here): tests assert it
/// does not change.
pub fn machine_swarm_state() -> String {
    let output = docker_cli(MACHINE_DOCKER_HOST, &["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    assert!(output.status.success(), "docker info: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout`; panics
/// naming `what` (and the last `Err` the probe gave) on timeout.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) if start.elapsed() >= timeout => {
                panic!("timed out after {:.1} s waiting for {what}; last: {last}", timeout.as_secs_f64())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Runs swarm.sh; its stderr (progress, timings) is passed on; returns its stdout.
fn script<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Result<Vec<u8>, String> {
    let output = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|error| format!("cannot run bash {SCRIPT}: {error}"))?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let shown: Vec<String> = args.iter().map(|arg| arg.as_ref().to_string_lossy().into_owned()).collect();
        Err(format!("bash {SCRIPT} {} failed ({}); its messages are above", shown.join(" "), output.status))
    }
}

/// One process per cluster name: an abstract unix socket (no file; gone with the process).
struct OwnerLock {
    _listener: UnixListener,
}

impl OwnerLock {
    fn acquire(name: &str) -> Result<OwnerLock, String> {
        let address = SocketAddr::from_abstract_name(format!("swarmctl-cluster/{name}"))
            .map_err(|error| format!("lock name: {error}"))?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match UnixListener::bind_addr(&address) {
                Ok(listener) => return Ok(OwnerLock { _listener: listener }),
                Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                    if !told {
                        eprintln!("[swarm_support] cluster {name} is in use by another process; waiting for it");
                        told = true;
                    }
                    if start.elapsed() > Duration::from_secs(1800) {
                        return Err(format!("cluster {name} stayed in use by another process for 30 minutes"));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(format!("cluster lock {name}: {error}")),
            }
        }
    }
}
