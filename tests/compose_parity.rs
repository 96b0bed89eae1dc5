//! Differential compose parity: every case of `tests/parity/` is deployed by docker-compose and by
//! swarmctl on the same local images, one after the other, and every container's effective
//! configuration (`docker inspect`, plus the secret and config files inside it) is compared field
//! by field after normalising names. A difference fails the test unless
//! `tests/parity/allow-list.yaml` lists it with a reason; an allow-list entry that matches no
//! difference fails it too (stale). See `tests/parity/README.md`.
//!
//! `PARITY_CASES=a,b` runs only those cases (the stale check is then skipped), `PARITY_JOBS=N`
//! sets how many cases run at once (default 3).

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod host_support;

use host_support::{images, repository, text, BINARY};

const ABSENT: &str = "<absent>";

fn corpus() -> PathBuf {
    repository().join("tests/parity")
}

// ---------------------------------------------------------------------------------------------
// The corpus

/// `tests/parity/<case>/parity.yaml`: how to run the case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    /// One line: what the case covers.
    #[allow(dead_code)]
    description: String,
    /// The `version:` written into docker-compose's copy of every compose file of the case.
    compose_version: String,
    /// Profiles enabled for both tools.
    #[serde(default)]
    profiles: Vec<String>,
    #[serde(default)]
    expect: Expect,
    /// How swarmctl is pointed at the case; default: one relative and one absolute way.
    #[serde(default)]
    invocations: Vec<Invocation>,
    /// Keys removed (anywhere) from docker-compose's copy of `compose.yaml`, for keys its schema
    /// does not know although its behaviour already matches them.
    #[serde(default)]
    compose_drop_keys: Vec<String>,
    /// A folder of the case copied into the scratch `$HOME` both tools get.
    #[serde(default)]
    home: Option<String>,
    /// Host paths (relative to the case) whose existence after the deploy is compared.
    #[serde(default)]
    host_paths: Vec<String>,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expect {
    /// Both tools deploy it; everything is compared.
    #[default]
    Deploy,
    /// Both tools must refuse it, and swarmctl must refuse before it creates anything.
    Refuse,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
enum Invocation {
    /// `cd <parent> && swarmctl deploy <case>`
    RelativeDir,
    /// `cd <case> && swarmctl deploy compose.yaml`
    FileInDir,
    /// `cd / && swarmctl deploy /abs/<case>`
    AbsoluteDirFromRoot,
    /// `cd <some temp dir> && swarmctl deploy /abs/<case>/compose.yaml`
    AbsoluteFileFromTmp,
}

impl Invocation {
    fn name(self) -> &'static str {
        match self {
            Invocation::RelativeDir => "relative-dir",
            Invocation::FileInDir => "file-in-dir",
            Invocation::AbsoluteDirFromRoot => "absolute-dir-from-root",
            Invocation::AbsoluteFileFromTmp => "absolute-file-from-tmp",
        }
    }
}

struct Case {
    name: String,
    dir: PathBuf,
    meta: Meta,
    /// The case's `compose.yaml`, parsed (for secret/config targets and declared subnets).
    compose: Value,
    invocations: Vec<Invocation>,
}

fn load_cases() -> Vec<Case> {
    let only: Option<BTreeSet<String>> =
        std::env::var("PARITY_CASES").ok().filter(|s| !s.trim().is_empty()).map(|s| s.split(',').map(|c| c.trim().to_string()).collect());
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("read tests/parity")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("parity.yaml").is_file())
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for (index, dir) in dirs.into_iter().enumerate() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let meta: Meta = serde_yaml::from_str(&std::fs::read_to_string(dir.join("parity.yaml")).unwrap())
            .unwrap_or_else(|e| panic!("{name}/parity.yaml: {e}"));
        let compose: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(dir.join("compose.yaml")).unwrap())
            .unwrap_or_else(|e| panic!("{name}/compose.yaml: {e}"));
        let compose = serde_json::to_value(compose).unwrap();
        // Alternate the default ways of pointing swarmctl at a case, so the corpus covers all four.
        let invocations = if meta.invocations.is_empty() {
            if index % 2 == 0 {
                vec![Invocation::RelativeDir, Invocation::AbsoluteFileFromTmp]
            } else {
                vec![Invocation::FileInDir, Invocation::AbsoluteDirFromRoot]
            }
        } else {
            meta.invocations.clone()
        };
        if only.as_ref().is_none_or(|o| o.contains(&name)) {
            cases.push(Case { name, dir, meta, compose, invocations });
        }
    }
    if let Some(only) = &only {
        for wanted in only {
            assert!(cases.iter().any(|c| &c.name == wanted), "PARITY_CASES names an unknown case `{wanted}`");
        }
    }
    cases
}

/// A secret or config file a service should find inside its containers.
#[derive(Debug, Clone)]
struct ExpectedFile {
    path: String,
    config: bool,
    /// Mode, owner and content hash the Compose Specification gives it (used for configs, which
    /// docker-compose 1.29 does not deliver at all).
    spec_mode: u32,
    spec_owner: String,
    spec_content: Option<String>,
}

/// Octal modes as compose reads them (YAML 1.1: `0440` is octal).
fn mode_of(value: &Value) -> Option<u32> {
    match value {
        Value::String(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
        Value::Number(n) => n.as_u64().map(|n| n as u32),
        _ => None,
    }
}

fn expected_files(case: &Case, service: &str) -> Vec<ExpectedFile> {
    let mut out = Vec::new();
    let spec = &case.compose["services"][service];
    for (kind, config) in [("secrets", false), ("configs", true)] {
        for item in spec[kind].as_array().into_iter().flatten() {
            let (source, target, mode, uid, gid) = match item {
                Value::String(s) => (s.clone(), None, None, None, None),
                Value::Object(o) => (
                    o.get("source").and_then(Value::as_str).unwrap_or_default().to_string(),
                    o.get("target").and_then(Value::as_str).map(str::to_string),
                    o.get("mode").and_then(mode_of),
                    o.get("uid").and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string()))),
                    o.get("gid").and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_u64().map(|n| n.to_string()))),
                ),
                _ => continue,
            };
            let path = match (&target, config) {
                (Some(t), _) if t.starts_with('/') => t.clone(),
                (Some(t), false) => format!("/run/secrets/{t}"),
                (None, false) => format!("/run/secrets/{source}"),
                (Some(t), true) => format!("/{t}"),
                (None, true) => format!("/{source}"),
            };
            let object = &case.compose[kind][&source];
            let spec_content = if let Some(file) = object["file"].as_str() {
                std::fs::read(case.dir.join(file)).ok().map(|b| content_hash(&b))
            } else {
                object["content"].as_str().map(|c| content_hash(c.as_bytes()))
            };
            out.push(ExpectedFile {
                path,
                config,
                spec_mode: mode.unwrap_or(0o444),
                spec_owner: format!("{}:{}", uid.unwrap_or_else(|| "0".into()), gid.unwrap_or_else(|| "0".into())),
                spec_content,
            });
        }
    }
    out
}

/// Host files that compose bind-mounts as secrets/configs (made mode 0444, the spec default, in
/// both copies: compose shows the host file's own mode, swarmctl the delivered one).
fn source_files(case: &Case) -> Vec<String> {
    ["secrets", "configs"]
        .iter()
        .flat_map(|kind| case.compose[*kind].as_object().into_iter().flat_map(|m| m.values()))
        .filter_map(|o| o["file"].as_str().map(str::to_string))
        .collect()
}

fn content_hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("sha256:{}", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
}

// ---------------------------------------------------------------------------------------------
// Scratch copies, tools, cleanup

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A copy of the case as swarmctl reads it (unchanged) or as docker-compose gets it (a `version:`
/// key in every compose file, `compose_drop_keys` removed).
fn scratch_copy(case: &Case, to: &Path, for_compose: bool) {
    copy_dir(&case.dir, to);
    std::fs::remove_file(to.join("parity.yaml")).unwrap();
    for file in source_files(case) {
        chmod(&to.join(file), 0o444);
    }
    if !for_compose {
        return;
    }
    for entry in std::fs::read_dir(to).unwrap() {
        let path = entry.unwrap().path();
        let yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !yaml || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(serde_yaml::Value::Mapping(parsed)) = serde_yaml::from_str::<serde_yaml::Value>(&text) else { continue };
        if !parsed.contains_key("services") {
            continue;
        }
        let body = if case.meta.compose_drop_keys.is_empty() {
            text
        } else {
            let mut value = serde_yaml::Value::Mapping(parsed);
            drop_keys(&mut value, &case.meta.compose_drop_keys);
            serde_yaml::to_string(&value).unwrap()
        };
        std::fs::write(&path, format!("version: \"{}\"\n{body}", case.meta.compose_version)).unwrap();
    }
}

fn drop_keys(value: &mut serde_yaml::Value, keys: &[String]) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for key in keys {
                map.remove(key.as_str());
            }
            map.values_mut().for_each(|v| drop_keys(v, keys));
        }
        serde_yaml::Value::Sequence(items) => items.iter_mut().for_each(|v| drop_keys(v, keys)),
        _ => {}
    }
}

fn setup_home(case: &Case, home: &Path) {
    std::fs::create_dir_all(home).unwrap();
    if let Some(folder) = &case.meta.home {
        copy_dir(&case.dir.join(folder), home);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("run docker")
}

fn docker_lines(args: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&docker(args).stdout).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Compose,
    Swarmctl,
}

impl Tool {
    fn label(self, project: &str) -> String {
        match self {
            Tool::Compose => format!("com.docker.compose.project={project}"),
            Tool::Swarmctl => format!("io.swarmctl.stack={project}"),
        }
    }
}

/// Removes whatever carries the tool's project label, whatever state the tool left it in.
fn remove_by_label(tool: Tool, project: &str) {
    let filter = format!("label={}", tool.label(project));
    let containers = docker_lines(&["ps", "-aq", "--filter", &filter]);
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args);
    }
    for network in docker_lines(&["network", "ls", "-q", "--filter", &filter]) {
        docker(&["network", "rm", &network]);
    }
    for volume in docker_lines(&["volume", "ls", "-q", "--filter", &filter]) {
        docker(&["volume", "rm", "-f", &volume]);
    }
    // Images built for the case (`<project>_<service>`, `<project>-<service>`).
    for image in docker_lines(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", &format!("reference={project}*")]) {
        docker(&["image", "rm", "-f", &image]);
    }
}

/// Objects of a project, as `kind name` lines.
fn objects(tool: Tool, project: &str) -> Vec<String> {
    let filter = format!("label={}", tool.label(project));
    let mut found = Vec::new();
    for (kind, args) in [
        ("container", vec!["ps", "-a", "--format", "{{.Names}}", "--filter", &filter]),
        ("network", vec!["network", "ls", "--format", "{{.Name}}", "--filter", &filter]),
        ("volume", vec!["volume", "ls", "--format", "{{.Name}}", "--filter", &filter]),
    ] {
        found.extend(docker_lines(&args).into_iter().map(|n| format!("{kind} {n}")));
    }
    found.sort();
    found
}

/// One deployment of a case by one tool; `Drop` takes it down, whatever happened.
struct Deployment {
    tool: Tool,
    project: String,
    /// The scratch copy of the case this deployment reads.
    dir: PathBuf,
    home: PathBuf,
    state: PathBuf,
    elsewhere: PathBuf,
    invocation: Option<Invocation>,
    profiles: Vec<String>,
}

impl Deployment {
    fn command(&self, verb: &str, extra: &[&str]) -> Command {
        match self.tool {
            Tool::Compose => {
                let mut command = Command::new("docker-compose");
                command.current_dir(&self.dir).args(["-p", &self.project, "-f", "compose.yaml"]);
                for profile in &self.profiles {
                    command.args(["--profile", profile]);
                }
                command.arg(verb).args(extra);
                command.env("HOME", &self.home);
                for variable in ["COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR"] {
                    command.env_remove(variable);
                }
                command
            }
            Tool::Swarmctl => {
                let name = self.dir.file_name().unwrap().to_string_lossy().into_owned();
                let (cwd, path) = match self.invocation.expect("swarmctl runs with an invocation") {
                    Invocation::RelativeDir => (self.dir.parent().unwrap().to_path_buf(), PathBuf::from(name)),
                    Invocation::FileInDir => (self.dir.clone(), PathBuf::from("compose.yaml")),
                    Invocation::AbsoluteDirFromRoot => (PathBuf::from("/"), self.dir.clone()),
                    Invocation::AbsoluteFileFromTmp => (self.elsewhere.clone(), self.dir.join("compose.yaml")),
                };
                let mut command = Command::new(BINARY);
                command.current_dir(cwd).arg(verb).arg(path).args(["--target", "host", "--name", &self.project]);
                for profile in &self.profiles {
                    command.args(["--profile", profile]);
                }
                command.args(extra);
                command.env("SWARMCTL_STATE_DIR", &self.state).env("NO_COLOR", "1").env("HOME", &self.home);
                command
            }
        }
    }

    fn up(&self) -> Output {
        match self.tool {
            Tool::Compose => self.command("up", &["-d"]).output().expect("run docker-compose"),
            Tool::Swarmctl => self.command("deploy", &["--timeout", "90s"]).output().expect("run swarmctl"),
        }
    }

    /// Removes what an earlier, interrupted run left; the tool's own `down` only when there is
    /// something to take down (docker-compose takes a second just to start).
    fn preclean(&self) {
        if !objects(self.tool, &self.project).is_empty() {
            self.down();
        }
        remove_by_label(self.tool, &self.project);
    }

    fn down(&self) {
        let _ = match self.tool {
            Tool::Compose => self.command("down", &["-v", "--remove-orphans", "-t", "1", "--rmi", "local"]).output(),
            Tool::Swarmctl => self.command("down", &["--volumes"]).output(),
        };
        remove_by_label(self.tool, &self.project);
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.down();
    }
}

// ---------------------------------------------------------------------------------------------
// Inspecting and normalising

type Fields = BTreeMap<String, String>;

/// What one tool made of one case.
struct Snapshot {
    deployed: bool,
    /// Exit code and the first error-looking lines, for the report only.
    detail: String,
    /// `web#1`, `network:<P>_front`, `volume:<P>_data`, `host` → field → normalised value.
    scopes: BTreeMap<String, Fields>,
}

struct Normaliser {
    /// Longest first.
    replacements: Vec<(String, String)>,
    /// Container IDs and names of the deployment → `<service#n>`, for references to containers
    /// (`network_mode: service:x`, `volumes_from`, `links`).
    containers: Vec<(String, String)>,
}

impl Normaliser {
    fn new(project: &str, dir: &Path, home: &Path) -> Normaliser {
        let mut replacements = vec![
            (dir.display().to_string(), "<CASE>".to_string()),
            (home.display().to_string(), "<HOME>".to_string()),
            (project.to_string(), "<P>".to_string()),
        ];
        replacements.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        Normaliser { replacements, containers: Vec::new() }
    }

    /// Learns the deployment's containers (full ID, short ID, name) and their keys.
    fn with_containers(mut self, containers: &[(String, String, String)]) -> Normaliser {
        for (id, name, key) in containers {
            self.containers.push((id.clone(), format!("<{key}>")));
            self.containers.push((name.clone(), format!("<{key}>")));
            self.containers.push((id.get(..12).unwrap_or_default().to_string(), format!("<{key}>")));
        }
        self.containers.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
        self
    }

    /// Names only: the project, the scratch paths (a container's own name stays readable).
    fn names(&self, s: &str) -> String {
        self.replacements.iter().fold(s.to_string(), |acc, (from, to)| acc.replace(from.as_str(), to))
    }

    fn text(&self, s: &str) -> String {
        let s = self.containers.iter().fold(s.to_string(), |acc, (from, to)| acc.replace(from.as_str(), to));
        self.names(&s)
    }

    fn value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (self.text(k), self.value(v))).collect()),
            other => other.clone(),
        }
    }
}

/// The engine's defaults and "not set" look alike: null, "", 0, false, [] and {} all mean absent.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Drops empty members of an object, recursively.
fn prune(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(map.iter().filter(|(_, v)| !is_empty(v)).map(|(k, v)| (k.clone(), prune(v))).collect()),
        Value::Array(items) => Value::Array(items.iter().map(prune).collect()),
        other => other.clone(),
    }
}

fn show(v: &Value) -> String {
    serde_json::to_string(v).unwrap()
}

struct Collector<'a> {
    fields: Fields,
    norm: &'a Normaliser,
}

impl Collector<'_> {
    /// A field whose empty value means "not set".
    fn put(&mut self, field: impl Into<String>, v: &Value) {
        let v = prune(&self.norm.value(v));
        if !is_empty(&v) {
            self.fields.insert(field.into(), show(&v));
        }
    }

    /// A field whose empty value is a value (an environment variable set to "").
    fn put_raw(&mut self, field: impl Into<String>, v: &Value) {
        self.fields.insert(field.into(), show(&self.norm.value(v)));
    }

    fn put_sorted(&mut self, field: &str, v: &Value) {
        let mut items: Vec<String> =
            v.as_array().into_iter().flatten().map(|i| self.norm.text(&i.as_str().map_or_else(|| i.to_string(), str::to_string))).collect();
        items.sort();
        self.put(field, &json!(items));
    }
}

fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn inspect(kind: &str, ids: &[String]) -> Vec<Value> {
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec![kind, "inspect"];
    args.extend(ids.iter().map(String::as_str));
    serde_json::from_slice(&docker(&args).stdout).unwrap_or_default()
}

/// Waits until every container is past its start: exited, or running and not `starting` health.
fn settle(ids: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let settled = inspect("container", ids).iter().all(|c| {
            let state = &c["State"];
            match state["Status"].as_str().unwrap_or("") {
                "running" => state["Health"]["Status"].as_str() != Some("starting"),
                _ => true,
            }
        });
        if settled || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn container_key(tool: Tool, c: &Value) -> String {
    let labels = &c["Config"]["Labels"];
    let (service, number) = match tool {
        Tool::Compose => (&labels["com.docker.compose.service"], &labels["com.docker.compose.container-number"]),
        Tool::Swarmctl => (&labels["io.swarmctl.service"], &labels["io.swarmctl.replica"]),
    };
    format!("{}#{}", service.as_str().unwrap_or("?"), number.as_str().unwrap_or("?"))
}

const HOST_SCALARS: &[&str] = &[
    "Privileged", "ReadonlyRootfs", "Init", "Memory", "MemoryReservation", "MemorySwap", "MemorySwappiness", "NanoCpus", "CpuShares", "CpuQuota",
    "CpuPeriod", "CpusetCpus", "PidsLimit", "ShmSize", "IpcMode", "PidMode", "UsernsMode", "UTSMode", "OomScoreAdj",
    "OomKillDisable", "Runtime", "CgroupParent", "PublishAllPorts",
];
/// Lists whose order matters (resolv.conf order).
const HOST_ORDERED: &[&str] = &["Dns", "DnsSearch", "DnsOptions"];
/// Lists that are sets.
const HOST_SETS: &[&str] = &["CapAdd", "CapDrop", "ExtraHosts", "SecurityOpt", "GroupAdd", "DeviceCgroupRules", "Links", "VolumesFrom"];

fn container_fields(c: &Value, norm: &Normaliser) -> Fields {
    let mut out = Collector { fields: Fields::new(), norm };
    let id = c["Id"].as_str().unwrap_or_default().to_string();
    let short = id.get(..12).unwrap_or_default().to_string();
    let config = &c["Config"];
    let host = &c["HostConfig"];

    let name = norm.names(c["Name"].as_str().unwrap_or_default().trim_start_matches('/'));
    out.fields.insert("Name".into(), show(&json!(name)));
    out.put("Image", &config["Image"]);
    for entry in config["Env"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        let (name, value) = entry.split_once('=').unwrap_or((entry, ""));
        out.put_raw(format!("Env[{name}]"), &json!(value));
    }
    for field in ["Cmd", "Entrypoint", "User", "WorkingDir", "Domainname", "MacAddress", "Tty", "OpenStdin", "StopSignal", "StopTimeout"] {
        out.put(field, &config[field]);
    }
    let hostname = config["Hostname"].as_str().unwrap_or_default();
    out.put("Hostname", &json!(if hostname == short { "<container-id>" } else { hostname }));
    for port in config["ExposedPorts"].as_object().into_iter().flat_map(|m| m.keys()) {
        out.put(format!("ExposedPorts[{port}]"), &json!("exposed"));
    }
    for (name, value) in config["Labels"].as_object().into_iter().flatten() {
        out.put_raw(format!("Labels[{name}]"), value);
    }
    out.put("Healthcheck", &config["Healthcheck"]);

    for field in HOST_SCALARS {
        out.put(*field, &host[*field]);
    }
    for field in HOST_ORDERED {
        out.put(*field, &host[*field]);
    }
    for field in HOST_SETS {
        out.put_sorted(field, &host[*field]);
    }
    let devices: Vec<String> = host["Devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let part = |key: &str| d[key].as_str().unwrap_or("").to_string();
            format!("{}:{}:{}", part("PathOnHost"), part("PathInContainer"), part("CgroupPermissions"))
        })
        .collect();
    out.put_sorted("Devices", &json!(devices));
    let restart = &host["RestartPolicy"];
    let policy = match restart["Name"].as_str().unwrap_or("") {
        "" | "no" => "no".to_string(),
        "on-failure" => format!("on-failure:{}", restart["MaximumRetryCount"].as_i64().unwrap_or(0)),
        other => other.to_string(),
    };
    out.put("RestartPolicy", &json!(policy));
    for (port, bindings) in host["PortBindings"].as_object().into_iter().flatten() {
        let mut list: Vec<String> = bindings
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("{}:{}", b["HostIp"].as_str().unwrap_or(""), b["HostPort"].as_str().unwrap_or("")))
            .collect();
        list.sort();
        out.put(format!("PortBindings[{port}]"), &json!(list));
    }
    for (name, value) in host["Sysctls"].as_object().into_iter().flatten() {
        out.put_raw(format!("Sysctls[{name}]"), value);
    }
    for (path, options) in host["Tmpfs"].as_object().into_iter().flatten() {
        out.put_raw(format!("Tmpfs[{path}]"), options);
    }
    for limit in host["Ulimits"].as_array().into_iter().flatten() {
        out.put_raw(format!("Ulimits[{}]", limit["Name"].as_str().unwrap_or("?")), &json!(format!("{}:{}", limit["Soft"], limit["Hard"])));
    }
    out.put("LogConfig.Type", &host["LogConfig"]["Type"]);
    for (name, value) in host["LogConfig"]["Config"].as_object().into_iter().flatten() {
        out.put_raw(format!("LogConfig.Config[{name}]"), value);
    }

    // Mounts as the container got them, whichever API asked for them (Binds or Mounts).
    for mount in c["Mounts"].as_array().into_iter().flatten() {
        let target = mount["Destination"].as_str().unwrap_or("?").to_string();
        let kind = mount["Type"].as_str().unwrap_or("?");
        let mut described = Map::new();
        described.insert("Type".into(), json!(kind));
        match kind {
            "volume" => {
                let name = mount["Name"].as_str().unwrap_or("");
                described.insert("Source".into(), json!(if is_anonymous(name) { "<anonymous>" } else { name }));
                described.insert("Driver".into(), mount["Driver"].clone());
            }
            "bind" => {
                described.insert("Source".into(), mount["Source"].clone());
                described.insert("Propagation".into(), mount["Propagation"].clone());
            }
            _ => {}
        }
        described.insert("RW".into(), json!(mount["RW"].as_bool().unwrap_or(false)));
        let requested = host["Mounts"].as_array().into_iter().flatten().find(|m| m["Target"].as_str() == Some(target.as_str()));
        if let Some(requested) = requested {
            for options in ["VolumeOptions", "TmpfsOptions"] {
                let value = prune(&requested[options]);
                if !is_empty(&value) {
                    described.insert(options.into(), value);
                }
            }
        }
        let bind_nocopy = host["Binds"].as_array().into_iter().flatten().filter_map(Value::as_str).any(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            parts.get(1) == Some(&target.as_str()) && parts.get(2).is_some_and(|o| o.split(',').any(|o| o == "nocopy"))
        });
        if bind_nocopy {
            described.insert("VolumeOptions".into(), json!({"NoCopy": true}));
        }
        out.put_raw(format!("Mounts[{target}]"), &Value::Object(described));
    }
    // Sized tmpfs mounts from the Mounts API do not show in `.Mounts`: list them from the request.
    for requested in host["Mounts"].as_array().into_iter().flatten().filter(|m| m["Type"] == "tmpfs") {
        let target = requested["Target"].as_str().unwrap_or("?");
        if !out.fields.contains_key(&format!("Mounts[{target}]")) {
            let mut described = Map::new();
            described.insert("Type".into(), json!("tmpfs"));
            described.insert("RW".into(), json!(!requested["ReadOnly"].as_bool().unwrap_or(false)));
            let options = prune(&requested["TmpfsOptions"]);
            if !is_empty(&options) {
                described.insert("TmpfsOptions".into(), options);
            }
            out.put_raw(format!("Mounts[{target}]"), &Value::Object(described));
        }
    }

    // Networks: by name; the engine's own alias (the short container ID) dropped.
    let networks = c["NetworkSettings"]["Networks"].as_object().cloned().unwrap_or_default();
    let mut names: Vec<String> = networks.keys().map(|n| norm.text(n)).collect();
    names.sort();
    out.put("Networks", &json!(names));
    for (name, endpoint) in &networks {
        let name = norm.text(name);
        let mut aliases: Vec<String> =
            endpoint["Aliases"].as_array().into_iter().flatten().filter_map(Value::as_str).filter(|a| *a != short && *a != id).map(str::to_string).collect();
        aliases.sort();
        out.put(format!("Networks[{name}].Aliases"), &json!(aliases));
        out.put(format!("Networks[{name}].IPAMConfig"), &endpoint["IPAMConfig"]);
        // Legacy links as `<target>:<alias>`, minus the ones every link gets (the target's own
        // name, and compose 1.29's `<service>_<n>`): the alias the file asked for is what counts.
        let links: Vec<String> = endpoint["Links"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|l| norm.text(l))
            .filter(|l| match l.split_once(':') {
                Some((target, alias)) => {
                    let key = target.trim_start_matches('<').trim_end_matches('>');
                    alias != target && alias != key.replace('#', "_")
                }
                None => true,
            })
            .collect();
        out.put_sorted(&format!("Networks[{name}].Links"), &json!(links));
    }
    let mode = host["NetworkMode"].as_str().unwrap_or_default();
    let mode = networks.iter().find(|(_, e)| e["NetworkID"].as_str() == Some(mode)).map_or(mode.to_string(), |(n, _)| n.clone());
    out.put("NetworkMode", &json!(mode));

    let state = &c["State"];
    out.put("State.Status", &state["Status"]);
    out.put("State.ExitCode", &state["ExitCode"]);
    out.put("State.Health", &state["Health"]["Status"]);
    out.fields
}

/// Mode, owner and content of a file inside a container (`docker cp` works on stopped ones too,
/// and through bind mounts).
fn file_in_container(id: &str, path: &str) -> Option<(u32, String, String)> {
    let out = docker(&["cp", &format!("{id}:{path}"), "-"]);
    if !out.status.success() {
        return None;
    }
    let mut archive = tar::Archive::new(out.stdout.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let header = entry.header().clone();
    let mut content = Vec::new();
    entry.read_to_end(&mut content).ok()?;
    Some((header.mode().ok()? & 0o7777, format!("{}:{}", header.uid().ok()?, header.gid().ok()?), content_hash(&content)))
}

fn file_fields(tool: Tool, id: &str, files: &[ExpectedFile], fields: &mut Fields) {
    for file in files {
        let prefix = if file.config { "Config" } else { "Secret" };
        let found = if tool == Tool::Compose && file.config {
            // docker-compose 1.29 drops `configs:` outside swarm: compare with the specification.
            Some((file.spec_mode, file.spec_owner.clone(), file.spec_content.clone().unwrap_or_default()))
        } else {
            file_in_container(id, &file.path)
        };
        if let Some((mode, owner, content)) = found {
            fields.insert(format!("{prefix}[{}].mode", file.path), format!("\"{mode:04o}\""));
            fields.insert(format!("{prefix}[{}].owner", file.path), format!("\"{owner}\""));
            fields.insert(format!("{prefix}[{}].content", file.path), format!("\"{content}\""));
        }
    }
}

fn network_fields(n: &Value, case: &Case, project: &str, norm: &Normaliser) -> Fields {
    let mut out = Collector { fields: Fields::new(), norm };
    for field in ["Driver", "Internal", "Attachable", "EnableIPv6"] {
        out.put(field, &n[field]);
    }
    for (name, value) in n["Options"].as_object().into_iter().flatten() {
        out.put_raw(format!("Options[{name}]"), value);
    }
    for (name, value) in n["Labels"].as_object().into_iter().flatten() {
        out.put_raw(format!("Labels[{name}]"), value);
    }
    // Subnets only where the case chose them: the engine picks the others from its pools.
    let key = n["Name"].as_str().unwrap_or_default().strip_prefix(&format!("{project}_")).unwrap_or_default().to_string();
    if !is_empty(&case.compose["networks"][&key]["ipam"]["config"]) {
        let mut configs: Vec<Value> = n["IPAM"]["Config"].as_array().cloned().unwrap_or_default().iter().map(prune).collect();
        configs.sort_by_key(show);
        out.put("IPAM.Config", &json!(configs));
    }
    out.fields
}

fn volume_fields(v: &Value, norm: &Normaliser) -> Fields {
    let mut out = Collector { fields: Fields::new(), norm };
    out.put("Driver", &v["Driver"]);
    for (name, value) in v["Options"].as_object().into_iter().flatten() {
        out.put_raw(format!("Options[{name}]"), value);
    }
    for (name, value) in v["Labels"].as_object().into_iter().flatten() {
        out.put_raw(format!("Labels[{name}]"), value);
    }
    out.fields
}

fn snapshot(case: &Case, deployment: &Deployment, up: &Output) -> Snapshot {
    let filter = format!("label={}", deployment.tool.label(&deployment.project));
    let ids = docker_lines(&["ps", "-aq", "--filter", &filter]);
    settle(&ids, Duration::from_secs(60));
    let containers = inspect("container", &ids);
    let known: Vec<(String, String, String)> = containers
        .iter()
        .map(|c| {
            let name = c["Name"].as_str().unwrap_or_default().trim_start_matches('/').to_string();
            (c["Id"].as_str().unwrap_or_default().to_string(), name, container_key(deployment.tool, c))
        })
        .collect();
    let norm = Normaliser::new(&deployment.project, &deployment.dir, &deployment.home).with_containers(&known);
    let mut scopes: BTreeMap<String, Fields> = BTreeMap::new();
    for c in containers {
        let key = container_key(deployment.tool, &c);
        let mut fields = container_fields(&c, &norm);
        let service = key.split('#').next().unwrap_or_default();
        file_fields(deployment.tool, c["Id"].as_str().unwrap_or_default(), &expected_files(case, service), &mut fields);
        scopes.insert(key, fields);
    }
    for n in inspect("network", &docker_lines(&["network", "ls", "-q", "--filter", &filter])) {
        let name = norm.text(n["Name"].as_str().unwrap_or_default());
        scopes.insert(format!("network:{name}"), network_fields(&n, case, &deployment.project, &norm));
    }
    let volumes: Vec<String> = docker_lines(&["volume", "ls", "-q", "--filter", &filter]).into_iter().filter(|v| !is_anonymous(v)).collect();
    for v in inspect("volume", &volumes) {
        let name = norm.text(v["Name"].as_str().unwrap_or_default());
        scopes.insert(format!("volume:{name}"), volume_fields(&v, &norm));
    }
    let mut host = Fields::new();
    for path in &case.meta.host_paths {
        let kind = match std::fs::symlink_metadata(deployment.dir.join(path)) {
            Ok(m) if m.is_dir() => "directory",
            Ok(_) => "file",
            Err(_) => continue,
        };
        host.insert(format!("HostPath[{path}]"), format!("\"{kind}\""));
    }
    scopes.insert("host".into(), host);

    let output = text(up);
    let mut detail = format!("exit {}", up.status.code().map_or("signal".into(), |c| c.to_string()));
    // Sorted and deduplicated: parallel steps fail in any order.
    let errors: BTreeSet<String> =
        output.lines().filter(|l| l.contains("error") || l.contains("ERROR") || l.contains('✗')).map(without_timings).collect();
    let errors: Vec<String> = errors.into_iter().take(3).collect();
    if !errors.is_empty() {
        detail = format!("{detail}: {}", errors.join(" | "));
    }
    Snapshot { deployed: up.status.success(), detail, scopes }
}

/// With `PARITY_DUMP=DIR`, every snapshot is written to `DIR/<case>/<compose|invocation>.json`,
/// normalised as compared, to read beside a failure.
fn dump(case: &Case, who: &str, snapshot: &Snapshot) {
    let Some(dir) = std::env::var_os("PARITY_DUMP").filter(|d| !d.is_empty()) else { return };
    let dir = PathBuf::from(dir).join(&case.name);
    std::fs::create_dir_all(&dir).unwrap();
    let scopes: BTreeMap<&String, BTreeMap<&String, Value>> = snapshot
        .scopes
        .iter()
        .map(|(scope, fields)| (scope, fields.iter().map(|(k, v)| (k, serde_json::from_str(v).unwrap_or_else(|_| json!(v)))).collect()))
        .collect();
    let body = json!({"deployed": snapshot.deployed, "detail": snapshot.detail, "scopes": scopes});
    std::fs::write(dir.join(format!("{who}.json")), serde_json::to_string_pretty(&body).unwrap()).unwrap();
}

/// swarmctl's progress lines start with `[   1.2s] `; without it the same failure reads the same
/// in every invocation.
fn without_timings(line: &str) -> String {
    let trimmed = line.trim_start();
    if let Some(rest) = trimmed.strip_prefix('[') {
        if let Some((inside, after)) = rest.split_once(']') {
            if inside.trim().strip_suffix('s').is_some_and(|n| n.parse::<f64>().is_ok()) {
                return after.trim_start().to_string();
            }
        }
    }
    trimmed.to_string()
}

// ---------------------------------------------------------------------------------------------
// Differences and the allow-list

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Difference {
    case: String,
    scope: String,
    field: String,
    compose: String,
    swarmctl: String,
}

impl Difference {
    fn line(&self) -> String {
        let left = if self.field.starts_with("Config[") { "compose(spec)" } else { "compose" };
        format!("{}/{}: {}: {left}={} swarmctl={}", self.case, self.scope, self.field, self.compose, self.swarmctl)
    }
}

fn compare(case: &Case, compose: &Snapshot, swarmctl: &Snapshot, out: &mut Vec<Difference>) {
    let mut push = |scope: &str, field: &str, c: &str, s: &str| {
        out.push(Difference { case: case.name.clone(), scope: scope.into(), field: field.into(), compose: c.into(), swarmctl: s.into() });
    };
    let outcome = |s: &Snapshot| if s.deployed { "succeeded".to_string() } else { "failed".to_string() };
    if case.meta.expect == Expect::Deploy && !compose.deployed {
        // A corpus or machine problem (a port taken, an image missing), not a swarmctl one.
        push("-", "corpus: docker-compose must deploy this case", &format!("failed ({})", compose.detail), "-");
    }
    if compose.deployed != swarmctl.deployed {
        push("-", "deploy", &outcome(compose), &format!("{} ({})", outcome(swarmctl), swarmctl.detail));
    }
    if case.meta.expect == Expect::Refuse {
        if compose.deployed && swarmctl.deployed {
            push("-", "deploy", "succeeded (expected: refused)", "succeeded (expected: refused)");
        }
        let c = compose.scopes.get("host").cloned().unwrap_or_default();
        let s = swarmctl.scopes.get("host").cloned().unwrap_or_default();
        for key in c.keys().chain(s.keys()).collect::<BTreeSet<_>>() {
            let (cv, sv) = (c.get(key).map_or(ABSENT, String::as_str), s.get(key).map_or(ABSENT, String::as_str));
            if cv != sv {
                push("host", key, cv, sv);
            }
        }
        return;
    }
    let scopes: BTreeSet<&String> = compose.scopes.keys().chain(swarmctl.scopes.keys()).collect();
    for scope in scopes {
        let kind = if scope.starts_with("network:") {
            "network"
        } else if scope.starts_with("volume:") {
            "volume"
        } else {
            "container"
        };
        match (compose.scopes.get(scope), swarmctl.scopes.get(scope)) {
            (Some(_), None) => push(scope, kind, "present", ABSENT),
            (None, Some(_)) => push(scope, kind, ABSENT, "present"),
            (Some(c), Some(s)) => {
                for key in c.keys().chain(s.keys()).collect::<BTreeSet<_>>() {
                    let (cv, sv) = (c.get(key).map_or(ABSENT, String::as_str), s.get(key).map_or(ABSENT, String::as_str));
                    if cv != sv {
                        push(scope, key, cv, sv);
                    }
                }
            }
            (None, None) => unreachable!(),
        }
    }
}

/// One reviewed, intended difference.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Allowed {
    case: String,
    service: String,
    field: String,
    #[serde(default)]
    compose: Option<String>,
    #[serde(default)]
    swarmctl: Option<String>,
    reason: String,
}

impl Allowed {
    fn matches(&self, d: &Difference) -> bool {
        let service = d.scope.split('#').next().unwrap_or_default();
        glob(&self.case, &d.case)
            && (glob(&self.service, &d.scope) || glob(&self.service, service))
            && glob(&self.field, &d.field)
            && self.compose.as_ref().is_none_or(|p| glob(p, &d.compose))
            && self.swarmctl.as_ref().is_none_or(|p| glob(p, &d.swarmctl))
    }

    fn line(&self) -> String {
        let mut line = format!("{}/{}: {}", self.case, self.service, self.field);
        if let Some(c) = &self.compose {
            line.push_str(&format!(" compose={c}"));
        }
        if let Some(s) = &self.swarmctl {
            line.push_str(&format!(" swarmctl={s}"));
        }
        line
    }
}

/// `*` matches any run of characters; everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn load_allow_list() -> Vec<Allowed> {
    let path = corpus().join("allow-list.yaml");
    let entries: Vec<Allowed> = serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read tests/parity/allow-list.yaml"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for entry in &entries {
        assert!(!entry.reason.trim().is_empty() && !entry.reason.contains('\n'), "allow-list entry {} needs a one-line reason", entry.line());
    }
    entries
}

// ---------------------------------------------------------------------------------------------
// Running a case

struct CaseReport {
    differences: Vec<(Difference, Invocation)>,
    log: Vec<String>,
    deployments: usize,
}

fn run_case(case: &Case, work: &Path) -> CaseReport {
    let mut log = Vec::new();
    let mut differences = Vec::new();
    let root = work.join(&case.name);
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();

    let compose_dir = root.join("compose").join(&case.name);
    scratch_copy(case, &compose_dir, true);
    let compose = Deployment {
        tool: Tool::Compose,
        project: format!("parity-c-{}", case.name),
        home: root.join("compose-home"),
        state: root.join("compose-state"),
        elsewhere: elsewhere.clone(),
        dir: compose_dir,
        invocation: None,
        profiles: case.meta.profiles.clone(),
    };
    setup_home(case, &compose.home);
    compose.preclean();
    let started = Instant::now();
    let up = compose.up();
    let mut compose_snapshot = snapshot(case, &compose, &up);
    compose_snapshot.detail = compose_snapshot.detail.replace(&compose.dir.display().to_string(), "<CASE>");
    dump(case, "compose", &compose_snapshot);
    log.push(format!("compose up {:.1}s ({})", started.elapsed().as_secs_f64(), compose_snapshot.detail));
    if case.meta.expect == Expect::Deploy && !up.status.success() {
        log.push(format!("docker-compose output:\n{}", text(&up)));
    }
    drop(compose);

    for &invocation in &case.invocations {
        let dir = root.join(invocation.name()).join(&case.name);
        scratch_copy(case, &dir, false);
        let swarmctl = Deployment {
            tool: Tool::Swarmctl,
            project: format!("parity-s-{}", case.name),
            home: root.join(format!("{}-home", invocation.name())),
            state: root.join(format!("{}-state", invocation.name())),
            elsewhere: elsewhere.clone(),
            dir,
            invocation: Some(invocation),
            profiles: case.meta.profiles.clone(),
        };
        setup_home(case, &swarmctl.home);
        std::fs::create_dir_all(&swarmctl.state).unwrap();
        swarmctl.preclean();
        let started = Instant::now();
        let up = swarmctl.up();
        let mut snap = snapshot(case, &swarmctl, &up);
        dump(case, invocation.name(), &snap);
        log.push(format!("swarmctl[{}] {:.1}s ({})", invocation.name(), started.elapsed().as_secs_f64(), snap.detail));
        for warning in text(&up).lines().filter(|l| l.contains("warning")) {
            log.push(format!("  swarmctl: {}", warning.trim()));
        }
        let mut found = Vec::new();
        if case.meta.expect == Expect::Refuse && !up.status.success() {
            let left = objects(Tool::Swarmctl, &swarmctl.project);
            if !left.is_empty() {
                found.push(Difference {
                    case: case.name.clone(),
                    scope: "-".into(),
                    field: "created before refusing".into(),
                    compose: "nothing (expected)".into(),
                    swarmctl: left.join(", "),
                });
            }
        }
        snap.detail = snap.detail.replace(&swarmctl.dir.display().to_string(), "<CASE>");
        compare(case, &compose_snapshot, &snap, &mut found);
        differences.extend(found.into_iter().map(|d| (d, invocation)));
        drop(swarmctl);
    }
    let deployments = 1 + case.invocations.len();
    CaseReport { differences, log, deployments }
}

/// Only one compose-parity run per machine at a time: the corpus uses fixed host ports and
/// subnets. Held until the returned file is dropped.
fn machine_lock() -> std::fs::File {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open("/tmp/swarmctl-compose-parity.lock").unwrap();
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        eprintln!("compose parity: waiting for another run on this machine to finish");
        // SAFETY: as above.
        assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0, "lock /tmp/swarmctl-compose-parity.lock");
    }
    file
}

/// A rough guess of a case's duration, in deployments: builds and PostgreSQL's initdb are slow.
fn cost(case: &Case) -> usize {
    let services = case.compose["services"].as_object().cloned().unwrap_or_default();
    let builds = services.values().any(|s| !s["build"].is_null());
    let postgres = services.values().any(|s| s["image"].as_str().is_some_and(|i| i.contains("postgres")));
    (1 + case.invocations.len()) * 2 + if builds { 6 } else { 0 } + if postgres { 4 } else { 0 }
}

#[test]
fn compose_files_deploy_the_same_with_swarmctl_as_with_docker_compose() {
    let version = Command::new("docker-compose").arg("version").arg("--short").output().expect("docker-compose is installed (Debian's 1.29)");
    assert!(version.status.success(), "docker-compose version: {}", text(&version));
    images();
    let cases = load_cases();
    assert!(!cases.is_empty());
    let full_run = std::env::var("PARITY_CASES").map_or(true, |s| s.trim().is_empty());
    let allow_list = load_allow_list();
    let _lock = machine_lock();
    let work = tempfile::Builder::new().prefix("compose-parity-").tempdir().unwrap();
    let jobs: usize = std::env::var("PARITY_JOBS").ok().and_then(|j| j.parse().ok()).unwrap_or(3).max(1);
    let started = Instant::now();

    // The slowest cases first, so the last ones to finish are short.
    let mut order: Vec<&Case> = cases.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse(cost(c)));
    let queue = Mutex::new(order.into_iter().collect::<VecDeque<&Case>>());
    let reports: Mutex<BTreeMap<String, CaseReport>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(cases.len()) {
            scope.spawn(|| loop {
                let Some(case) = queue.lock().unwrap().pop_front() else { break };
                let case_started = Instant::now();
                let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(case, work.path()))).unwrap_or_else(|panic| {
                    let why = panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                    CaseReport {
                        differences: vec![(
                            Difference {
                                case: case.name.clone(),
                                scope: "-".into(),
                                field: "harness".into(),
                                compose: "-".into(),
                                swarmctl: format!("panicked: {why}"),
                            },
                            Invocation::RelativeDir,
                        )],
                        log: vec![],
                        deployments: 0,
                    }
                });
                eprintln!("compose parity: {} ({:.1}s): {}", case.name, case_started.elapsed().as_secs_f64(), report.log.join("; "));
                reports.lock().unwrap().insert(case.name.clone(), report);
            });
        }
    });
    let reports = reports.into_inner().unwrap();
    let elapsed = started.elapsed();
    // What `down --rmi local` and the tagged-image cleanup leave: the untagged intermediate
    // stages of the build case, labelled by its Dockerfile.
    for image in docker_lines(&["image", "ls", "-q", "--filter", "label=io.swarmctl.test=parity-build"]) {
        docker(&["image", "rm", "-f", &image]);
    }

    // The same difference under several invocations is one line naming them.
    let mut merged: BTreeMap<Difference, BTreeSet<Invocation>> = BTreeMap::new();
    for report in reports.values() {
        for (difference, invocation) in &report.differences {
            merged.entry(difference.clone()).or_default().insert(*invocation);
        }
    }
    let mut used = vec![0usize; allow_list.len()];
    let mut failing = Vec::new();
    let mut allowed = Vec::new();
    let verbose = std::env::var("PARITY_VERBOSE").is_ok_and(|v| !v.is_empty() && v != "0");
    for (difference, invocations) in &merged {
        let case = cases.iter().find(|c| c.name == difference.case).unwrap();
        let how = if invocations.len() == case.invocations.len() {
            String::new()
        } else {
            format!("   [only {}]", invocations.iter().map(|i| i.name()).collect::<Vec<_>>().join(", "))
        };
        match allow_list.iter().position(|a| a.matches(difference)) {
            Some(i) => {
                used[i] += 1;
                allowed.push(format!("  {}{how}\n      allowed: {}", difference.line(), allow_list[i].reason));
            }
            None => failing.push(format!("  {}{how}", difference.line())),
        }
    }
    let stale: Vec<String> = if full_run {
        allow_list.iter().zip(&used).filter(|(_, u)| **u == 0).map(|(a, _)| format!("  {}  ({})", a.line(), a.reason)).collect()
    } else {
        Vec::new()
    };

    let deployments: usize = reports.values().map(|r| r.deployments).sum();
    eprintln!(
        "\ncompose parity: {} cases, {deployments} deployments, {:.1}s, {jobs} at a time",
        cases.len(),
        elapsed.as_secs_f64()
    );
    if verbose && !allowed.is_empty() {
        eprintln!("\nallowed differences ({}):\n{}", allowed.len(), allowed.join("\n"));
    } else if !allowed.is_empty() {
        let summary: Vec<String> = allow_list.iter().zip(&used).filter(|(_, n)| **n > 0).map(|(a, n)| format!("  {n:>4} × {}", a.line())).collect();
        eprintln!("\nallowed differences ({}, PARITY_VERBOSE=1 lists each):\n{}", allowed.len(), summary.join("\n"));
    }
    if !stale.is_empty() {
        eprintln!("\nstale allow-list entries (they match no difference any more; remove them):\n{}", stale.join("\n"));
    }
    if !failing.is_empty() {
        eprintln!("\ndifferences not in tests/parity/allow-list.yaml ({}):\n{}", failing.len(), failing.join("\n"));
    }
    assert!(failing.is_empty() && stale.is_empty(), "{} differences not allowed, {} stale allow-list entries (see above)", failing.len(), stale.len());
}

#[test]
fn progress_timings_are_dropped_from_failure_details() {
    assert_eq!(without_timings("[   0.1s] ✗ create container x: boom"), "✗ create container x: boom");
    assert_eq!(without_timings("ERROR: for web  Cannot start"), "ERROR: for web  Cannot start");
    assert_eq!(without_timings("[x] not a timing"), "[x] not a timing");
}

#[test]
fn glob_matches_like_a_shell_star() {
    assert!(glob("*", "anything"));
    assert!(glob("Mounts[/run/secrets/*]", "Mounts[/run/secrets/db]"));
    assert!(glob("Labels[com.docker.compose.*]", "Labels[com.docker.compose.project]"));
    assert!(!glob("Labels[com.docker.compose.*]", "Labels[io.swarmctl.stack]"));
    assert!(glob("a*b*c", "aXXbYYc"));
    assert!(!glob("a*b", "aXXc"));
    assert!(glob("", ""));
}
