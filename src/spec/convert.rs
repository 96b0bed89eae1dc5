//! The merged, interpolated, schema-checked tree becomes the typed [`Stack`]: short syntaxes
//! expanded, defaults resolved, files read. Keys swarmctl does not act on yet are kept (they
//! render) and reported as warnings naming the key and the service.

use super::files::resolve_inside;
use crate::model::stack::*;
use super::schema::{parse_duration, parse_size};
use super::source::{FileId, Pos, Sources};
use super::template;
use super::yaml::{Node, Typed, Value};
use crate::diagnostics::Diagnostics;
use std::collections::{BTreeMap, BTreeSet};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Service keys that become engine settings as written.
const PASSED_THROUGH: &[&str] = &[
    "cap_add", "cap_drop", "privileged", "read_only", "init", "tty", "stdin_open", "sysctls", "extra_hosts",
    "tmpfs", "ulimits", "dns", "dns_search", "dns_opt", "shm_size", "expose", "mem_limit", "mem_reservation",
    "cpus", "cpu_shares", "pids_limit", "logging", "devices", "security_opt", "group_add", "domainname",
    "oom_score_adj", "ipc", "pid", "platform", "userns_mode", "runtime", "mac_address", "cpuset", "mem_swappiness",
    "cpu_quota", "cpu_period", "memswap_limit", "volumes_from", "links", "cgroup_parent",
];

/// Bind propagation modes (`bind.propagation`, or an option of the short syntax).
const PROPAGATIONS: [&str; 6] = ["private", "rprivate", "shared", "rshared", "slave", "rslave"];

/// Service keys the model reads.
const MODELLED: &[&str] = &[
    "image", "build", "pull_policy", "command", "entrypoint", "environment", "env_file", "labels", "depends_on",
    "ports", "volumes", "networks", "network_mode", "configs", "secrets", "healthcheck", "restart", "stop_signal",
    "stop_grace_period", "container_name", "hostname", "user", "working_dir", "profiles", "deploy", "scale",
];

/// Inputs conversion needs besides the tree.
pub struct ConvertInput<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
    pub profiles: &'a BTreeSet<String>,
    /// Template context, for `*.hbs` config and secret files.
    pub template_context: &'a serde_json::Value,
    /// Layer folder of each service that was defined in one.
    pub service_layers: &'a BTreeMap<String, String>,
    pub layers: &'a [String],
    /// Variables (process environment, then `.env`), for configs and secrets read from one.
    pub variables: &'a dyn super::interpolate::Lookup,
}

pub fn convert(root: &Node, input: &ConvertInput<'_>, sources: &mut Sources, out: &mut Diagnostics) -> Stack {
    for entry in root.as_map().unwrap_or(&[]).iter().filter(|e| e.key == "include" || e.key == "models") {
        let consequence = if entry.key == "include" { ": the services of included files are not loaded" } else { "" };
        out.warning(entry.key_pos, format!("top-level `{}` is accepted but not acted on yet{consequence}", entry.key)).hint =
            (entry.key == "include").then(|| "put the included services in the stack directory (a layer folder, or an overlay)".to_string());
    }
    // Services convert independently, so in parallel, each into its own diagnostics, gathered
    // in the order of the file.
    let shared = Mutex::new(std::mem::take(sources));
    let converted: Vec<(&str, Service, Diagnostics)> = root
        .get("services")
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .par_iter()
        .filter(|e| !e.key.starts_with("x-"))
        .map(|entry| {
            let mut out = Diagnostics::default();
            let mut service = Converter { input, sources: &shared, out: &mut out }.service(&entry.key, &entry.value);
            service.pos = entry.key_pos;
            (entry.key.as_str(), service, out)
        })
        .collect();
    let mut services = BTreeMap::new();
    let mut inactive = BTreeSet::new();
    for (name, service, diagnostics) in converted {
        out.extend(diagnostics);
        let active = service.profiles.is_empty() || service.profiles.iter().any(|p| input.profiles.contains(p));
        if active {
            services.insert(name.to_string(), service);
        } else {
            inactive.insert(name.to_string());
        }
    }
    let mut converter = Converter { input, sources: &shared, out };
    mark_jobs(&mut services);
    for (name, network) in entries(root.get("networks")) {
        warn_network_keys_not_acted_on(name, network, converter.out);
    }
    for (kind, key) in [("config", "configs"), ("secret", "secrets")] {
        for (name, object) in entries(root.get(key)) {
            // Objects carry swarmctl's labels and are named by their content; there is no driver.
            for entry in object.as_map().unwrap_or(&[]).iter().filter(|e| matches!(e.key.as_str(), "labels" | "driver" | "driver_opts" | "template_driver")) {
                converter.out.warning(entry.key_pos, format!("{kind} `{name}`: `{}` is accepted but not acted on yet", entry.key));
            }
        }
    }
    let layers = input
        .layers
        .iter()
        .map(|layer| {
            let members = services.keys().filter(|s| input.service_layers.get(*s) == Some(layer)).cloned().collect();
            (layer.clone(), members)
        })
        .collect();
    let stack = Stack {
        name: input.name.to_string(),
        dir: input.dir.to_path_buf(),
        networks: entries(root.get("networks")).map(|(n, node)| (n.to_string(), network(n, node, converter.out))).collect(),
        volumes: entries(root.get("volumes")).map(|(n, node)| (n.to_string(), volume(n, node, converter.out))).collect(),
        configs: entries(root.get("configs")).map(|(n, node)| (n.to_string(), converter.file_object(n, node, false))).collect(),
        secrets: entries(root.get("secrets")).map(|(n, node)| (n.to_string(), converter.file_object(n, node, true))).collect(),
        services,
        inactive,
        layers,
    };
    *sources = shared.into_inner().unwrap_or_else(PoisonError::into_inner);
    stack
}

/// `enable_ipv4` (Engine 28+) is the one network key of the specification that [`network`] does
/// not read: the network would be created without it, so say so.
fn warn_network_keys_not_acted_on(name: &str, network: &Node, out: &mut Diagnostics) {
    for entry in network.as_map().unwrap_or(&[]).iter().filter(|e| e.key == "enable_ipv4") {
        out.warning(entry.key_pos, format!("network `{name}`: `{}` is accepted but not acted on yet", entry.key));
    }
}

/// A service that another waits for with `service_completed_successfully` runs to completion.
fn mark_jobs(services: &mut BTreeMap<String, Service>) {
    let completed: BTreeSet<String> = services
        .values()
        .flat_map(|s| &s.depends_on)
        .filter(|d| d.condition == Condition::ServiceCompletedSuccessfully)
        .map(|d| d.service.clone())
        .collect();
    for name in completed {
        if let Some(service) = services.get_mut(&name) {
            service.kind = Kind::Job;
        }
    }
}

/// The entries of a mapping node (none for null or absent), `x-` keys skipped.
fn entries(node: Option<&Node>) -> impl Iterator<Item = (&str, &Node)> {
    node.and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter(|e| !e.key.starts_with("x-"))
        .map(|e| (e.key.as_str(), &e.value))
}

struct Converter<'a, 'b> {
    input: &'a ConvertInput<'a>,
    /// Files read on the way (rarely: an env file with errors, a config's file).
    sources: &'b Mutex<Sources>,
    out: &'b mut Diagnostics,
}

impl Converter<'_, '_> {
    fn add_source(&self, path: &Path, text: String, sensitive: bool) -> FileId {
        let mut sources = self.sources.lock().unwrap_or_else(PoisonError::into_inner);
        if sensitive { sources.add_sensitive(path, text) } else { sources.add(path, text) }
    }

    fn service(&mut self, name: &str, node: &Node) -> Service {
        let deploy = node.get("deploy");
        let get = |key: &str| node.get(key);
        let text = |key: &str| get(key).and_then(Node::as_text).map(str::to_string);
        for entry in node.as_map().unwrap_or(&[]) {
            let key = entry.key.as_str();
            // Keys outside the specification were already reported as errors by the schema check.
            let known = super::schema::is_service_key(key);
            if known && !MODELLED.contains(&key) && !PASSED_THROUGH.contains(&key) {
                self.out.warning(entry.key_pos, format!("service `{name}`: `{key}` is accepted but not acted on yet"));
            }
            if key.starts_with("x-") && key != "x-kind" && key != "x-rollout" {
                // Other extensions are ignored, as compose does; a near miss of ours is a typo.
                if let Some(ours) = super::schema::did_you_mean(key, ["x-kind", "x-rollout"]) {
                    self.out.warning(entry.key_pos, format!("service `{name}`: extension `{key}` is ignored")).hint = Some(format!("did you mean `{ours}`?"));
                } else if key.starts_with("x-swarmctl") {
                    self.out.warning(entry.key_pos, format!("service `{name}`: unknown swarmctl extension `{key}`")).hint =
                        Some("swarmctl reads `x-kind` and `x-rollout`".into());
                }
            }
        }
        self.warn_pull_policy(name, node);
        self.warn_sub_keys_not_acted_on(name, node);
        let kind = self.kind(name, node);
        let replicas = self.replicas(name, node, kind);
        let mut environment = BTreeMap::new();
        match get("env_file") {
            Some(list) if list.as_seq().is_some() => list.as_seq().unwrap_or(&[]).iter().for_each(|item| self.env_file(name, item, &mut environment)),
            Some(single) => self.env_file(name, single, &mut environment),
            None => {}
        }
        // `- KEY` without a value takes the deployer's (the process environment, then `.env`), as
        // compose does; unset there, an env_file's value stands.
        for (key, value) in key_values(get("environment")) {
            match value.or_else(|| self.input.variables.get(&key)) {
                Some(value) => {
                    environment.insert(key, Some(value));
                }
                None => {
                    environment.entry(key).or_insert(None);
                }
            }
        }
        let mut positions: BTreeMap<String, Pos> = BTreeMap::new();
        if let Some(env) = get("environment") {
            for item in env.as_seq().unwrap_or(&[]) {
                if let Some(text) = item.as_text() {
                    positions.insert(format!("environment.{}", text.split('=').next().unwrap_or(text)), item.pos);
                }
            }
            for entry in env.as_map().unwrap_or(&[]) {
                positions.insert(format!("environment.{}", entry.key), entry.key_pos);
            }
        }
        for entry in node.as_map().unwrap_or(&[]) {
            positions.insert(entry.key.clone(), entry.key_pos);
        }
        if let Some(networks) = get("networks") {
            for item in networks.as_seq().unwrap_or(&[]) {
                if let Some(network) = item.as_text() {
                    positions.insert(format!("networks.{network}"), item.pos);
                }
            }
            for entry in networks.as_map().unwrap_or(&[]) {
                positions.insert(format!("networks.{}", entry.key), entry.key_pos);
            }
        }
        Service {
            name: name.to_string(),
            pos: node.pos,
            kind,
            replicas,
            image: text("image"),
            build: get("build").map(|b| self.build(b)),
            pull_policy: text("pull_policy"),
            command: get("command").and_then(command_line),
            entrypoint: get("entrypoint").and_then(command_line),
            environment,
            labels: key_values(get("labels")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
            depends_on: with_implicit_dependencies(self.depends_on(name, get("depends_on")), node),
            layer: self.input.service_layers.get(name).cloned(),
            ports: self.ports(name, get("ports")),
            volumes: self.volumes(name, get("volumes")),
            networks: networks(get("networks")),
            network_addresses: network_addresses(get("networks")),
            network_mode: text("network_mode"),
            configs: file_mounts(get("configs"), "/"),
            secrets: file_mounts(get("secrets"), "/run/secrets/"),
            healthcheck: get("healthcheck").map(healthcheck),
            restart: text("restart").or_else(|| restart_from_policy(deploy)),
            stop_signal: text("stop_signal"),
            stop_grace_period: get("stop_grace_period").and_then(duration),
            container_name: text("container_name"),
            hostname: text("hostname"),
            user: text("user"),
            working_dir: text("working_dir"),
            profiles: string_list(get("profiles"), ""),
            resources: resources(deploy, node),
            placement: placement(deploy),
            rollout: self.rollout(name, node, kind),
            swarm: SwarmSettings { global_job: kind == Kind::Job && deploy_mode(node) == Some("global-job"), ..swarm_settings(deploy) },
            positions,
            extra: PASSED_THROUGH.iter().filter_map(|k| get(k).map(|v| (k.to_string(), passed_through(k, v)))).collect(),
        }
    }

    /// Images are never pulled (no registry is used), and built only when missing: `never`
    /// and `missing` (`if_not_present`) say what swarmctl does anyway; other policies are not
    /// acted on.
    fn warn_pull_policy(&mut self, name: &str, node: &Node) {
        let Some(policy) = node.get("pull_policy") else { return };
        let value = policy.as_text().unwrap_or_default();
        let (why, hint) = match value {
            "never" | "missing" | "if_not_present" => return,
            "build" => ("swarmctl builds an image only when it is missing", "remove the image (`docker image rm`) to have it built again"),
            _ => ("swarmctl never pulls images", "load the image on the engine (on every node of a swarm) before deploying"),
        };
        self.out.warning(policy.pos, format!("service `{name}`: `pull_policy` is accepted but not acted on yet: `{value}` is ignored, {why}")).hint = Some(hint.into());
    }

    /// Sub-keys of the specification that load but change nothing yet get the warning the
    /// service keys get, at their position (`build.dockerfile_inline`, `volumes[0].bind.selinux`).
    fn warn_sub_keys_not_acted_on(&mut self, name: &str, node: &Node) {
        /// Keys of `parent` that the specification knows at `schema` and swarmctl does not read.
        fn check(unused: &mut Vec<(String, Pos, String)>, parent: Option<&Node>, path: &str, schema: &[&str], acted_on: &[&str]) {
            for entry in parent.and_then(Node::as_map).unwrap_or(&[]) {
                let known = super::schema::is_service_sub_key(&[schema, &[entry.key.as_str()]].concat());
                if known && !acted_on.contains(&entry.key.as_str()) {
                    unused.push((format!("{path}.{}", entry.key), entry.key_pos, String::new()));
                }
            }
        }
        let mut unused: Vec<(String, Pos, String)> = Vec::new();
        check(&mut unused, node.get("build"), "build", &["build"], &["context", "dockerfile", "args", "target", "labels", "no_cache"]);
        check(&mut unused, node.get("healthcheck"), "healthcheck", &["healthcheck"], &["test", "interval", "timeout", "retries", "start_period", "disable"]);
        let resources = node.get("deploy").and_then(|d| d.get("resources"));
        for (key, acted_on) in [("limits", &["cpus", "memory", "pids"][..]), ("reservations", &["cpus", "memory"][..])] {
            check(&mut unused, resources.and_then(|r| r.get(key)), &format!("deploy.resources.{key}"), &["deploy", "resources", key], acted_on);
        }
        for entry in node.get("networks").and_then(Node::as_map).unwrap_or(&[]) {
            check(&mut unused, Some(&entry.value), &format!("networks.{}", entry.key), &["networks"], &["aliases", "ipv4_address", "ipv6_address"]);
        }
        for (index, item) in node.get("env_file").and_then(Node::as_seq).unwrap_or(&[]).iter().enumerate() {
            check(&mut unused, Some(item), &format!("env_file[{index}]"), &["env_file"], &["path", "required"]);
        }
        for (index, item) in node.get("volumes").and_then(Node::as_seq).unwrap_or(&[]).iter().enumerate() {
            let kind = item.get("type").and_then(Node::as_text).unwrap_or("volume");
            for entry in item.as_map().unwrap_or(&[]) {
                let path = format!("volumes[{index}].{}", entry.key);
                let schema = ["volumes", entry.key.as_str()];
                match (entry.key.as_str(), kind) {
                    ("bind", "bind") => check(&mut unused, Some(&entry.value), &path, &schema, &["propagation", "create_host_path"]),
                    ("volume", "volume") => check(&mut unused, Some(&entry.value), &path, &schema, &["nocopy"]),
                    ("tmpfs", "tmpfs") => check(&mut unused, Some(&entry.value), &path, &schema, &["size", "mode"]),
                    ("bind" | "volume" | "tmpfs" | "image", _) => unused.push((path, entry.key_pos, format!(": the mount is of type `{kind}`"))),
                    _ => {}
                }
            }
        }
        for (path, pos, why) in unused {
            let hint = match path.as_str() {
                "build.dockerfile_inline" => Some("write the Dockerfile into the build context and name it with `build.dockerfile`"),
                "healthcheck.start_interval" => Some("Engine 20.10 (API 1.41, which swarmctl speaks) has no start interval"),
                _ => None,
            };
            self.out.warning(pos, format!("service `{name}`: `{path}` is accepted but not acted on yet{why}")).hint = hint.map(str::to_string);
        }
    }

    fn kind(&mut self, name: &str, node: &Node) -> Kind {
        if let Some(kind_node) = node.get("x-kind") {
            let text = kind_node.as_text().unwrap_or("");
            return Kind::parse(text).unwrap_or_else(|| {
                self.out
                    .error(kind_node.pos, format!("service `{name}`: unknown x-kind `{text}`"))
                    .hint = Some("x-kind is one of deployment, statefulset, daemonset, job".into());
                Kind::Deployment
            });
        }
        match deploy_mode(node) {
            Some("global") => Kind::Daemonset,
            Some("replicated-job" | "global-job") => Kind::Job,
            Some("replicated") | None => Kind::Deployment,
            Some(other) => {
                let pos = node.get("deploy").and_then(|d| d.get("mode")).map_or(node.pos, |n| n.pos);
                self.out.error(pos, format!("service `{name}`: unknown deploy.mode `{other}`")).hint =
                    Some("deploy.mode is one of replicated, global, replicated-job, global-job".into());
                Kind::Deployment
            }
        }
    }

    fn replicas(&mut self, name: &str, node: &Node, kind: Kind) -> u32 {
        use super::validate::MAX_REPLICAS;
        let written = node.get("deploy").and_then(|d| d.get("replicas")).or_else(|| node.get("scale"));
        let Some(written) = written else { return 1 };
        let value = match written.as_scalar().map(|s| s.typed()) {
            Some(Typed::Int(n)) => Some(n),
            Some(Typed::Str(s)) => s.parse::<i64>().ok(),
            _ => None,
        };
        match value {
            Some(n) if n < 0 => {
                self.out.error(written.pos, format!("service `{name}`: replicas must not be negative, got {n}"));
                1
            }
            Some(n) if kind == Kind::Daemonset => {
                self.out.error(written.pos, format!("service `{name}`: replicas ({n}) cannot be set with global mode (one per node)")).hint =
                    Some("remove `replicas`, or use `deploy.mode: replicated`".into());
                1
            }
            Some(n) if kind == Kind::Job && deploy_mode(node) == Some("global-job") => {
                self.out.error(written.pos, format!("service `{name}`: replicas ({n}) cannot be set with global-job mode (one per node)")).hint =
                    Some("remove `replicas`, or use `deploy.mode: replicated-job`".into());
                1
            }
            Some(n) if n > i64::from(MAX_REPLICAS) => {
                self.out.error(written.pos, format!("service `{name}`: {n} replicas is more than the limit of {MAX_REPLICAS} per service")).hint =
                    Some("a stack this size is a mistake here; split the work over several services".into());
                1
            }
            Some(n) => n as u32,
            None => 1, // the schema check already reported it
        }
    }

    fn depends_on(&mut self, name: &str, node: Option<&Node>) -> Vec<Dependency> {
        let Some(node) = node else { return Vec::new() };
        let dependency = |service: &str, pos: Pos| Dependency {
            service: service.to_string(),
            condition: Condition::ServiceStarted,
            required: true,
            restart: false,
            implicit: false,
            pos,
        };
        match &node.value {
            Value::Seq(items) => items.iter().filter_map(|i| Some(dependency(i.as_text()?, i.pos))).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| {
                    let mut d = dependency(&e.key, e.key_pos);
                    if let Some(condition) = e.value.get("condition") {
                        let text = condition.as_text().unwrap_or("");
                        match Condition::parse(text) {
                            Some(c) => d.condition = c,
                            None => {
                                let hint = super::schema::did_you_mean(text, ["service_started", "service_healthy", "service_completed_successfully"])
                                    .map_or("the condition is one of service_started, service_healthy, service_completed_successfully".to_string(), |s| format!("did you mean `{s}`?"));
                                self.out.error(condition.pos, format!("service `{name}`: unknown dependency condition `{text}`")).hint = Some(hint);
                            }
                        }
                    }
                    d.required = e.value.get("required").and_then(boolean).unwrap_or(true);
                    d.restart = e.value.get("restart").and_then(boolean).unwrap_or(false);
                    if let Some(restart) = e.value.get("restart").filter(|_| d.restart) {
                        let message = format!(
                            "service `{name}`: `depends_on.{}.restart` is accepted but not acted on yet: `{name}` is not restarted when `{}` is replaced",
                            e.key, e.key
                        );
                        self.out.warning(restart.pos, message).hint = Some(format!("remove it; to restart `{name}`, change it too (any change replaces its containers)"));
                    }
                    d
                })
                .collect(),
            Value::Scalar(_) => Vec::new(),
        }
    }

    fn ports(&mut self, name: &str, node: Option<&Node>) -> Vec<Port> {
        let mut ports = Vec::new();
        for item in node.and_then(Node::as_seq).unwrap_or(&[]) {
            let parsed = if item.as_map().is_some() {
                long_port(item)
            } else {
                item.as_text().ok_or_else(|| "empty port".to_string()).and_then(|t| short_ports(t, item.pos))
            };
            match parsed {
                Ok(mut found) => ports.append(&mut found),
                Err(why) => {
                    self.out.error(item.pos, format!("service `{name}`: invalid port: {why}")).hint =
                        Some("ports look like `8080`, `80:8080`, `127.0.0.1:80:8080/udp` or {target, published, protocol}".into());
                }
            }
        }
        ports
    }

    fn volumes(&mut self, name: &str, node: Option<&Node>) -> Vec<Mount> {
        let mut mounts = Vec::new();
        for item in node.and_then(Node::as_seq).unwrap_or(&[]) {
            let mut mount = if item.as_map().is_some() {
                let kind = match item.get("type").and_then(Node::as_text).unwrap_or("volume") {
                    "bind" => MountKind::Bind,
                    "tmpfs" => MountKind::Tmpfs,
                    _ => MountKind::Volume,
                };
                // Each kind reads its own options; another kind's are warned about as not acted on.
                let options = |key: &str, of: MountKind| item.get(key).filter(|_| kind == of);
                let (bind, volume, tmpfs) = (options("bind", MountKind::Bind), options("volume", MountKind::Volume), options("tmpfs", MountKind::Tmpfs));
                let propagation = bind.and_then(|b| b.get("propagation"));
                if let Some(written) = propagation.filter(|p| !p.as_text().is_some_and(|p| PROPAGATIONS.contains(&p))) {
                    self.out.error(written.pos, format!("service `{name}`: unknown bind propagation `{}`", written.as_text().unwrap_or_default())).hint =
                        Some(format!("bind.propagation is one of {}", PROPAGATIONS.join(", ")));
                }
                let mode = tmpfs.and_then(|t| t.get("mode"));
                if let Some(written) = mode.filter(|m| file_mode(m).is_none()) {
                    self.out.error(written.pos, format!("service `{name}`: tmpfs.mode `{}` is not a file mode", written.as_text().unwrap_or_default())).hint =
                        Some("write it in octal with a leading 0 (`01777`, `0700`) or quoted (`\"1777\"`); a plain number is decimal, as in compose".into());
                }
                Mount {
                    kind,
                    source: item.get("source").and_then(Node::as_text).unwrap_or("").to_string(),
                    target: item.get("target").and_then(Node::as_text).unwrap_or("").to_string(),
                    read_only: item.get("read_only").and_then(boolean).unwrap_or(false),
                    // The long syntax creates a missing host path only when asked (the spec).
                    create_host_path: bind.and_then(|b| b.get("create_host_path")).and_then(boolean).unwrap_or(false),
                    no_copy: volume.and_then(|v| v.get("nocopy")).and_then(boolean).unwrap_or(false),
                    tmpfs_size: tmpfs.and_then(|t| t.get("size")).and_then(size),
                    tmpfs_mode: mode.and_then(file_mode),
                    propagation: propagation.and_then(Node::as_text).filter(|p| PROPAGATIONS.contains(p)).map(str::to_string),
                    pos: item.pos,
                }
            } else {
                let text = item.as_text().unwrap_or("");
                let parts: Vec<&str> = text.split(':').collect();
                let (source, target, options) = match parts.as_slice() {
                    [target] => ("", *target, ""),
                    [source, target] => (*source, *target, ""),
                    [source, target, options] => (*source, *target, *options),
                    _ => {
                        self.out.error(item.pos, format!("service `{name}`: invalid volume `{text}`")).hint =
                            Some("volumes look like `name:/path`, `./dir:/path:ro` or `/path`".into());
                        continue;
                    }
                };
                let bind = source.starts_with(['.', '/', '~']);
                for relabel in options.split(',').filter(|o| *o == "z" || *o == "Z") {
                    self.out.warning(item.pos, format!("service `{name}`: volume option `{relabel}` (SELinux relabelling) is accepted but not acted on yet"));
                }
                Mount {
                    kind: if bind { MountKind::Bind } else { MountKind::Volume },
                    source: source.to_string(),
                    target: target.to_string(),
                    read_only: options.split(',').any(|o| o == "ro"),
                    // The short syntax always did (docker-compose's legacy).
                    create_host_path: bind,
                    no_copy: options.split(',').any(|o| o == "nocopy"),
                    tmpfs_size: None,
                    tmpfs_mode: None,
                    propagation: options.split(',').find(|o| bind && PROPAGATIONS.contains(o)).map(str::to_string),
                    pos: item.pos,
                }
            };
            if mount.kind == MountKind::Bind {
                match self.host_path(&mount.source) {
                    Ok(path) => mount.source = path,
                    Err(why) => {
                        self.out.error(item.pos, format!("service `{name}`: bind source `{}`: {why}", mount.source)).hint =
                            Some("a bind source is an absolute path, a path relative to the stack file (`./data`), or one under `~`".into());
                    }
                }
            }
            mounts.push(mount);
        }
        mounts
    }

    /// A bind source as an absolute, clean path: relative ones against the stack's directory,
    /// `~` the deployer's home, whatever the current directory is.
    fn host_path(&self, source: &str) -> Result<String, String> {
        let path = if source == "~" || source.starts_with("~/") {
            let home = self.input.variables.get("HOME").filter(|h| !h.is_empty()).ok_or("`~` needs HOME to be set")?;
            Path::new(&home).join(source.trim_start_matches('~').trim_start_matches('/'))
        } else if source.starts_with('~') {
            return Err("`~user` paths are not supported; write the path out".into());
        } else {
            self.input.dir.join(source)
        };
        Ok(super::files::clean(&path).display().to_string())
    }

    fn build(&mut self, node: &Node) -> Build {
        let (context, context_pos, dockerfile, args, target) = match node.as_text() {
            Some(context) => (context.to_string(), node.pos, None, BTreeMap::new(), None),
            None => (
                node.get("context").and_then(Node::as_text).unwrap_or(".").to_string(),
                node.get("context").map_or(node.pos, |c| c.pos),
                node.get("dockerfile").and_then(Node::as_text).map(str::to_string),
                key_values(node.get("args")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
                node.get("target").and_then(Node::as_text).map(str::to_string),
            ),
        };
        let labels: BTreeMap<String, String> = key_values(node.get("labels")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
        let no_cache = node.get("no_cache").and_then(boolean).unwrap_or(false);
        // A remote context (a Git repository or a tarball URL) is fetched by the builder.
        if is_remote_context(&context) {
            return Build { context: PathBuf::from(context), dockerfile, args, target, labels, no_cache };
        }
        let context = match resolve_inside(self.input.dir, &context) {
            Ok(path) => path,
            Err(why) => {
                let hint = if why.is_outside() { "keep the build context inside the stack directory" } else { "the build context is a directory relative to the stack directory" };
                self.out.error(context_pos, format!("build context: {why}")).hint = Some(hint.into());
                PathBuf::from(context)
            }
        };
        Build { context, dockerfile, args, target, labels, no_cache }
    }

    /// Reads one `env_file` entry; a missing file is fine when it says `required: false`.
    fn env_file(&mut self, name: &str, item: &Node, environment: &mut BTreeMap<String, Option<String>>) {
        let Some(path) = item.as_text().or_else(|| item.get("path").and_then(Node::as_text)) else { return };
        let required = item.get("required").and_then(boolean).unwrap_or(true);
        let pos = item.get("path").map_or(item.pos, |p| p.pos);
        let resolved = match resolve_inside(self.input.dir, path) {
            Ok(p) => p,
            Err(super::files::Unresolved::Missing { .. }) if !required => return,
            Err(why) => {
                let hint = if why.is_outside() {
                    "keep env files inside the stack directory"
                } else {
                    "env files are relative to the stack directory; mark optional ones `required: false`"
                };
                self.out.error(pos, format!("service `{name}`: env_file {why}")).hint = Some(hint.into());
                return;
            }
        };
        match super::read::text(&resolved) {
            Ok(text) => {
                let parsed = super::dotenv::parse(&text, &|_: &str| None::<String>);
                environment.extend(parsed.vars.into_iter().map(|(k, v)| (k, Some(v))));
                if !parsed.errors.is_empty() {
                    // Env files hold credentials: positions only, never an excerpt.
                    let file = self.add_source(&resolved, text, true);
                    for (line, why) in parsed.errors {
                        self.out.error(Pos { file, line, col: 1 }, format!("env_file: {why}"));
                    }
                }
            }
            Err(e) => {
                self.out.error(pos, format!("service `{name}`: cannot read env_file `{path}`: {e}"));
            }
        }
    }

    /// The rollout policy: compose `deploy.update_config` with its Swarm meaning (parallelism 1,
    /// stop-first, monitor 5s, pause on failure), under `x-rollout` in Kubernetes words (a
    /// deployment then defaults to 25% surge and 25% unavailable, a daemonset to one at a time).
    fn rollout(&mut self, name: &str, node: &Node, kind: Kind) -> Rollout {
        let update = node.get("deploy").and_then(|d| d.get("update_config"));
        let field = |key: &str| update.and_then(|u| u.get(key));
        let parallelism = field("parallelism").and_then(integer).unwrap_or(1).max(0) as u32;
        let start_first = field("order").and_then(Node::as_text) == Some("start-first");
        let failure_action = field("failure_action").and_then(Node::as_text);
        // Swarm semantics: stop-first replaces `parallelism` at a time; start-first surges them;
        // parallelism 0 is everything at once.
        let batch = if parallelism == 0 { IntOrPercent::Percent(100) } else { IntOrPercent::Int(parallelism) };
        let mut rollout = Rollout {
            max_surge: if start_first { batch } else { IntOrPercent::Int(0) },
            max_unavailable: if start_first { IntOrPercent::Int(0) } else { batch },
            min_ready: field("delay").and_then(duration).unwrap_or(Duration::ZERO),
            progress_deadline: Duration::from_secs(600),
            auto_rollback: failure_action == Some("rollback"),
            partition: 0,
            recreate: false,
            monitor: field("monitor").and_then(duration).unwrap_or(Duration::from_secs(5)),
            max_failure_ratio: field("max_failure_ratio").and_then(number).unwrap_or(0.0),
            continue_on_failure: failure_action == Some("continue"),
        };
        let Some(policy) = node.get("x-rollout") else { return rollout };
        if kind == Kind::Daemonset {
            (rollout.max_surge, rollout.max_unavailable) = (crate::plan::rollout::DAEMONSET_DEFAULT_MAX_SURGE, crate::plan::rollout::DAEMONSET_DEFAULT_MAX_UNAVAILABLE);
        } else {
            (rollout.max_surge, rollout.max_unavailable) = (crate::plan::rollout::DEPLOYMENT_DEFAULT_MAX_SURGE, crate::plan::rollout::DEPLOYMENT_DEFAULT_MAX_UNAVAILABLE);
        }
        for entry in policy.as_map().unwrap_or(&[]) {
            let value = &entry.value;
            match entry.key.as_str() {
                "max_surge" | "max_unavailable" => match int_or_percent(value) {
                    Some(v) if entry.key == "max_surge" => rollout.max_surge = v,
                    Some(v) => rollout.max_unavailable = v,
                    None => {
                        self.out.error(value.pos, format!("service `{name}`: x-rollout.{} must be a count or a percentage like `25%`", entry.key));
                    }
                },
                "min_ready" | "progress_deadline" => match value.as_text().map(parse_duration) {
                    Some(Ok(d)) if entry.key == "min_ready" => rollout.min_ready = d,
                    Some(Ok(d)) => rollout.progress_deadline = d,
                    _ => {
                        self.out.error(value.pos, format!("service `{name}`: x-rollout.{} must be a duration such as `30s`", entry.key));
                    }
                },
                "auto_rollback" => match boolean(value) {
                    Some(b) => rollout.auto_rollback = b,
                    None => {
                        self.out.error(value.pos, format!("service `{name}`: x-rollout.auto_rollback must be true or false"));
                    }
                },
                "partition" => match integer(value) {
                    Some(n) if n >= 0 => rollout.partition = n.min(i64::from(u32::MAX)) as u32,
                    _ => {
                        self.out.error(value.pos, format!("service `{name}`: x-rollout.partition must be a non-negative integer"));
                    }
                },
                "strategy" => match value.as_text() {
                    Some("rolling") => rollout.recreate = false,
                    Some("recreate") => rollout.recreate = true,
                    _ => {
                        self.out.error(value.pos, format!("service `{name}`: x-rollout.strategy is `rolling` or `recreate`"));
                    }
                },
                other => {
                    let known = ["max_surge", "max_unavailable", "min_ready", "progress_deadline", "auto_rollback", "partition", "strategy"];
                    let diagnostic = self.out.error(entry.key_pos, format!("service `{name}`: unknown key `{other}` in x-rollout"));
                    diagnostic.hint = super::schema::did_you_mean(other, known).map(|s| format!("did you mean `{s}`?"));
                }
            }
        }
        if let Err(why) = crate::plan::rollout::check_policy(kind, rollout.max_surge, rollout.max_unavailable) {
            let hint = match why {
                crate::plan::rollout::PolicyError::BothZero => "allow one extra replica (`max_surge: 1`) or one unavailable (`max_unavailable: 1`)",
                crate::plan::rollout::PolicyError::SurgeWithUnavailable => "set `max_surge` (new beside old on each node) or `max_unavailable`, not both",
                crate::plan::rollout::PolicyError::Over100Percent => "write at most `100%`",
            };
            self.out.error(policy.pos, format!("service `{name}`: {why}")).hint = Some(hint.into());
        }
        rollout
    }

    fn file_object(&mut self, name: &str, node: &Node, secret: bool) -> FileObject {
        let external = node.get("external").is_some_and(|e| boolean(e) != Some(false));
        let mut object = FileObject {
            external,
            name: declared_name(if secret { "secret" } else { "config" }, name, node, self.out),
            file: None,
            content: Vec::new(),
            hash: String::new(),
            withheld: false,
        };
        if let Some(file_node) = node.get("file") {
            let relative = file_node.as_text().unwrap_or("");
            match resolve_inside(self.input.dir, relative) {
                Ok(path) => {
                    object.content = self.read_object_file(&path, file_node.pos, secret);
                    object.file = Some(path);
                }
                Err(why) => {
                    let kind = if secret { "secret" } else { "config" };
                    let hint = if why.is_outside() {
                        "keep config and secret files inside the stack directory"
                    } else {
                        "`file:` is relative to the stack directory"
                    };
                    self.out.error(file_node.pos, format!("{kind} `{name}`: {why}")).hint = Some(hint.into());
                }
            }
        } else if let Some(content) = node.get("content").and_then(Node::as_text) {
            object.content = content.as_bytes().to_vec();
        } else if let Some(variable) = node.get("environment").and_then(Node::as_text) {
            match self.input.variables.get(variable) {
                Some(value) => object.content = value.into_bytes(),
                None => {
                    self.out.error(node.pos, format!("`{name}` reads environment variable `{variable}`, which is not set"));
                }
            }
        } else if !external {
            self.out.error(node.pos, format!("`{name}` needs `file`, `content`, `environment` or `external: true`"));
        }
        object.hash = FileObject::content_hash(self.input.name, name, &object.content, secret);
        object
    }

    /// Reads a config or secret file; `*.hbs` files are rendered with the stack's values.
    fn read_object_file(&mut self, path: &Path, pos: Pos, secret: bool) -> Vec<u8> {
        let bytes = match super::read::bytes(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.out.error(pos, format!("cannot read `{}`: {e}", path.display()));
                return Vec::new();
            }
        };
        if path.extension().is_none_or(|e| e != "hbs") {
            return bytes;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // A secret's template may hold the secret itself: its errors show no excerpt.
        let file = self.add_source(path, text.clone(), secret);
        match template::render(&text, file, self.input.template_context, template::Output::Text) {
            Ok(rendered) => rendered.text.into_bytes(),
            Err(diagnostics) => {
                diagnostics.into_iter().for_each(|d| self.out.push(d));
                Vec::new()
            }
        }
    }
}

/// Adds the dependencies compose implies without `depends_on`: `links` (`db` or `db:alias`),
/// `volumes_from` (`app`, `app:ro`; not `container:…`) and `network_mode`, `ipc`, `pid` set to
/// `service:app` all need the other service's container first.
fn with_implicit_dependencies(mut dependencies: Vec<Dependency>, node: &Node) -> Vec<Dependency> {
    let mut implied: Vec<(String, Pos)> = Vec::new();
    for item in node.get("links").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(link) = item.as_text() {
            implied.push((link.split(':').next().unwrap_or(link).to_string(), item.pos));
        }
    }
    for item in node.get("volumes_from").and_then(Node::as_seq).unwrap_or(&[]) {
        if let Some(source) = item.as_text().filter(|s| !s.starts_with("container:")) {
            implied.push((source.strip_prefix("service:").unwrap_or(source).split(':').next().unwrap_or(source).to_string(), item.pos));
        }
    }
    for key in ["network_mode", "ipc", "pid"] {
        if let Some(value) = node.get(key) {
            if let Some(service) = value.as_text().and_then(|v| v.strip_prefix("service:")) {
                implied.push((service.to_string(), value.pos));
            }
        }
    }
    for (service, pos) in implied {
        if !dependencies.iter().any(|d| d.service == service) {
            dependencies.push(Dependency { service, condition: Condition::ServiceStarted, required: true, restart: false, implicit: true, pos });
        }
    }
    dependencies
}

/// An engine setting as written, in one form where compose allows several: `sysctls` as a
/// mapping of strings, `extra_hosts` as `host:ip` strings (compose also takes `host=ip` and a
/// mapping), so the planner reads one shape however the user wrote it.
fn passed_through(key: &str, node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match key {
        "sysctls" => J::Object(key_values(Some(node)).into_iter().map(|(k, v)| (k, J::String(v.unwrap_or_default()))).collect()),
        "extra_hosts" => J::Array(match &node.value {
            Value::Map(entries) => entries.iter().map(|e| J::String(format!("{}:{}", e.key, e.value.as_text().unwrap_or("")))).collect(),
            _ => string_list(Some(node), "")
                .into_iter()
                .map(|entry| match entry.split_once('=') {
                    Some((host, ip)) => J::String(format!("{host}:{ip}")),
                    None => J::String(entry),
                })
                .collect(),
        }),
        _ => node.to_json(),
    }
}

/// `https://…/repo.git#main`, `git@host:repo`, `github.com/org/repo`: fetched, not a local path.
fn is_remote_context(context: &str) -> bool {
    context.contains("://") || context.starts_with("git@") || context.starts_with("github.com/")
}

fn boolean(node: &Node) -> Option<bool> {
    match node.as_scalar()?.typed() {
        Typed::Bool(b) => Some(b),
        Typed::Str("true") => Some(true),
        Typed::Str("false") => Some(false),
        _ => None,
    }
}

fn integer(node: &Node) -> Option<i64> {
    match node.as_scalar()?.typed() {
        Typed::Int(n) => Some(n),
        Typed::Str(s) => s.parse().ok(),
        _ => None,
    }
}

fn number(node: &Node) -> Option<f64> {
    match node.as_scalar()?.typed() {
        Typed::Int(n) => Some(n as f64),
        Typed::Float(f) => Some(f),
        Typed::Str(s) => s.parse().ok(),
        _ => None,
    }
}

fn duration(node: &Node) -> Option<Duration> {
    parse_duration(node.as_text()?).ok()
}

fn size(node: &Node) -> Option<u64> {
    match node.as_scalar()?.typed() {
        Typed::Int(n) => u64::try_from(n).ok(),
        _ => parse_size(node.as_text()?),
    }
}

fn int_or_percent(node: &Node) -> Option<IntOrPercent> {
    let text = node.as_text()?;
    match text.strip_suffix('%') {
        Some(percent) => percent.parse().ok().map(IntOrPercent::Percent),
        None => text.parse().ok().map(IntOrPercent::Int),
    }
}

/// A string or list of strings; for lists of mappings, the value under `field`.
fn string_list(node: Option<&Node>, field: &str) -> Vec<String> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| i.as_text().or_else(|| i.get(field).and_then(Node::as_text)))
            .map(str::to_string)
            .collect(),
        Some(Value::Scalar(_)) => node.and_then(Node::as_text).map(|s| vec![s.to_string()]).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `KEY=VALUE` lists and mappings alike; `- KEY` / `KEY:` with no value gives `None`.
fn key_values(node: Option<&Node>) -> BTreeMap<String, Option<String>> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(Node::as_text)
            .map(|item| match item.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (item.to_string(), None),
            })
            .collect(),
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|e| (e.key.clone(), if e.value.is_null() { None } else { e.value.as_text().map(str::to_string) }))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `command: a b` (split like a shell would, without expansion) or a list.
fn command_line(node: &Node) -> Option<Vec<String>> {
    match &node.value {
        Value::Seq(items) => Some(items.iter().map(|i| i.as_text().unwrap_or("").to_string()).collect()),
        Value::Scalar(_) => node.as_text().map(shell_words),
        Value::Map(_) => None,
    }
}

/// Splits like POSIX sh word splitting with quotes, no expansion (what compose does).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => word.extend(chars.next()),
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

fn networks(node: Option<&Node>) -> BTreeMap<String, Vec<String>> {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(Node::as_text).map(|n| (n.to_string(), Vec::new())).collect(),
        Some(Value::Map(entries)) => entries.iter().map(|e| (e.key.clone(), string_list(e.value.get("aliases"), ""))).collect(),
        _ => BTreeMap::new(),
    }
}

/// `ipv4_address` / `ipv6_address` per network, where written.
fn network_addresses(node: Option<&Node>) -> BTreeMap<String, NetworkAddress> {
    node.and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|e| {
            let text = |key: &str| e.value.get(key).and_then(Node::as_text).map(str::to_string);
            let address = NetworkAddress { ipv4: text("ipv4_address"), ipv6: text("ipv6_address") };
            (address != NetworkAddress::default()).then(|| (e.key.clone(), address))
        })
        .collect()
}

/// `deploy.mode` as written.
fn deploy_mode(service: &Node) -> Option<&str> {
    service.get("deploy").and_then(|d| d.get("mode")).and_then(Node::as_text)
}

/// The `deploy` keys only a swarm reads.
fn swarm_settings(deploy: Option<&Node>) -> SwarmSettings {
    let Some(deploy) = deploy else { return SwarmSettings::default() };
    SwarmSettings {
        labels: key_values(deploy.get("labels")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        dnsrr: deploy.get("endpoint_mode").and_then(Node::as_text) == Some("dnsrr"),
        restart_policy: deploy.get("restart_policy").map(|policy| SwarmRestart {
            condition: policy.get("condition").and_then(Node::as_text).unwrap_or("any").to_string(),
            delay: policy.get("delay").and_then(duration),
            max_attempts: policy.get("max_attempts").and_then(integer).map(|n| n.max(0) as u64),
            window: policy.get("window").and_then(duration),
        }),
        global_job: false,
    }
}

/// `deploy.restart_policy` as a container restart policy, when `restart` is not written (what
/// compose does on one host): `any` → `always`, `on-failure` with its attempts, `none` → `no`.
fn restart_from_policy(deploy: Option<&Node>) -> Option<String> {
    let policy = deploy?.get("restart_policy")?;
    let attempts = policy.get("max_attempts").and_then(integer);
    Some(match policy.get("condition").and_then(Node::as_text).unwrap_or("any") {
        "none" => "no".into(),
        "on-failure" => attempts.map_or("on-failure".into(), |n| format!("on-failure:{n}")),
        _ => "always".into(),
    })
}

fn file_mounts(node: Option<&Node>, default_dir: &str) -> Vec<FileMount> {
    node.and_then(Node::as_seq)
        .unwrap_or(&[])
        .iter()
        .filter_map(|item| {
            let source = item.as_text().or_else(|| item.get("source").and_then(Node::as_text))?.to_string();
            let target = item.get("target").and_then(Node::as_text).map(str::to_string);
            let target = match target {
                Some(t) if t.starts_with('/') => t,
                Some(t) => format!("{default_dir}{t}"),
                None => format!("{default_dir}{source}"),
            };
            let mode = item.get("mode").and_then(file_mode);
            Some(FileMount {
                source,
                target,
                uid: item.get("uid").and_then(Node::as_text).map(str::to_string),
                gid: item.get("gid").and_then(Node::as_text).map(str::to_string),
                mode,
                pos: item.pos,
            })
        })
        .collect()
}

/// A file mode as compose reads it: `0440` and `0o440` are octal (YAML 1.1 integers, as docker
/// compose parses them), `"440"` quoted is octal too, and a plain `288` is decimal.
pub fn file_mode(node: &Node) -> Option<u32> {
    let scalar = node.as_scalar()?;
    let text = scalar.text.as_str();
    let octal = |digits: &str| u32::from_str_radix(digits, 8).ok();
    match scalar.typed() {
        Typed::Int(_) if text.starts_with("0o") => octal(&text[2..]),
        Typed::Int(_) if text.len() > 1 && text.starts_with('0') => octal(&text[1..]),
        Typed::Int(n) => u32::try_from(n).ok(),
        Typed::Str(s) => octal(s.trim_start_matches("0o")),
        _ => None,
    }
}

fn healthcheck(node: &Node) -> Healthcheck {
    let disabled = node.get("disable").and_then(boolean) == Some(true);
    let test = node.get("test").map(|t| match &t.value {
        Value::Seq(items) => items.iter().map(|i| i.as_text().unwrap_or("").to_string()).collect(),
        _ => vec!["CMD-SHELL".to_string(), t.as_text().unwrap_or("").to_string()],
    });
    let test = test.filter(|t| !disabled && t.first().is_none_or(|first| first != "NONE"));
    Healthcheck {
        test,
        interval: node.get("interval").and_then(duration),
        timeout: node.get("timeout").and_then(duration),
        start_period: node.get("start_period").and_then(duration),
        retries: node.get("retries").and_then(integer).map(|n| n.max(0) as u32),
    }
}

fn resources(deploy: Option<&Node>, service: &Node) -> Resources {
    let limits = deploy.and_then(|d| d.get("resources")).and_then(|r| r.get("limits"));
    let reservations = deploy.and_then(|d| d.get("resources")).and_then(|r| r.get("reservations"));
    Resources {
        cpus: limits.and_then(|l| l.get("cpus")).or_else(|| service.get("cpus")).and_then(number),
        memory: limits.and_then(|l| l.get("memory")).or_else(|| service.get("mem_limit")).and_then(size),
        pids: limits.and_then(|l| l.get("pids")).or_else(|| service.get("pids_limit")).and_then(integer),
        reserve_cpus: reservations.and_then(|r| r.get("cpus")).and_then(number),
        reserve_memory: reservations.and_then(|r| r.get("memory")).or_else(|| service.get("mem_reservation")).and_then(size),
    }
}

fn placement(deploy: Option<&Node>) -> Placement {
    let placement = deploy.and_then(|d| d.get("placement"));
    Placement {
        constraints: string_list(placement.and_then(|p| p.get("constraints")), ""),
        spread: string_list(placement.and_then(|p| p.get("preferences")), "spread"),
        max_replicas_per_node: placement.and_then(|p| p.get("max_replicas_per_node")).and_then(integer).map(|n| n.max(0) as u32),
    }
}

fn network(key: &str, node: &Node, out: &mut Diagnostics) -> Network {
    Network {
        name: declared_name("network", key, node, out),
        driver: node.get("driver").and_then(Node::as_text).map(str::to_string),
        external: node.get("external").is_some_and(|e| boolean(e) != Some(false)),
        internal: node.get("internal").and_then(boolean).unwrap_or(false),
        attachable: node.get("attachable").and_then(boolean).unwrap_or(false),
        driver_opts: key_values(node.get("driver_opts")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        ipam: node
            .get("ipam")
            .and_then(|i| i.get("config"))
            .and_then(Node::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|c| {
                let text = |key: &str| c.get(key).and_then(Node::as_text).map(str::to_string);
                Some(crate::model::objects::IpamPool {
                    subnet: text("subnet")?,
                    gateway: text("gateway"),
                    ip_range: text("ip_range"),
                    aux_addresses: key_values(c.get("aux_addresses")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
                })
            })
            .collect(),
        ipam_driver: node.get("ipam").and_then(|i| i.get("driver")).and_then(Node::as_text).map(str::to_string),
        ipam_options: key_values(node.get("ipam").and_then(|i| i.get("options"))).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        enable_ipv6: node.get("enable_ipv6").and_then(boolean).unwrap_or(false),
        labels: key_values(node.get("labels")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
    }
}

/// The name a network, volume, config or secret is known by: `name`, or the older
/// `external: {name: x}` (compose file format 3; the specification deprecates it for `name:`
/// beside `external: true`, and docker compose v2 warns about it). Both, naming different
/// objects, is an error: which one is meant cannot be guessed.
fn declared_name(kind: &str, key: &str, node: &Node, out: &mut Diagnostics) -> Option<String> {
    let name = node.get("name").and_then(Node::as_text);
    let Some(legacy) = node.get("external").and_then(|e| e.get("name")) else { return name.map(str::to_string) };
    let legacy_name = legacy.as_text().unwrap_or_default();
    match name {
        Some(name) if name != legacy_name => {
            out.error(legacy.pos, format!("{kind} `{key}`: `external.name` (`{legacy_name}`) and `name` (`{name}`) name different objects")).hint =
                Some("keep one: `name: …` beside `external: true` (`external.name` is its older spelling)".into());
            Some(name.to_string())
        }
        Some(_) => {
            out.warning(legacy.pos, format!("{kind} `{key}`: `external.name` is deprecated")).hint =
                Some(format!("remove it: `name: {legacy_name}` says the same"));
            Some(legacy_name.to_string())
        }
        None => {
            out.warning(legacy.pos, format!("{kind} `{key}`: `external.name` is deprecated")).hint =
                Some(format!("write `name: {legacy_name}` beside `external: true`"));
            Some(legacy_name.to_string())
        }
    }
}

fn volume(key: &str, node: &Node, out: &mut Diagnostics) -> Volume {
    Volume {
        name: declared_name("volume", key, node, out),
        driver: node.get("driver").and_then(Node::as_text).map(str::to_string),
        external: node.get("external").is_some_and(|e| boolean(e) != Some(false)),
        driver_opts: key_values(node.get("driver_opts")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
        labels: key_values(node.get("labels")).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect(),
    }
}

fn long_port(node: &Node) -> Result<Vec<Port>, String> {
    let target = node.get("target").and_then(integer).ok_or("`target` is required")?;
    let published = match node.get("published").and_then(Node::as_text) {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("published port `{p}` is not a port number"))?),
        None => None,
    };
    Ok(vec![Port {
        target: u16::try_from(target).map_err(|_| format!("{target} is not a port number"))?,
        published,
        host_ip: node.get("host_ip").and_then(Node::as_text).map(str::to_string),
        protocol: node.get("protocol").and_then(Node::as_text).unwrap_or("tcp").to_string(),
        ephemeral: published.is_none(),
        host_mode: node.get("mode").and_then(Node::as_text) == Some("host"),
        pos: node.pos,
    }])
}

/// `8080`, `80:8080`, `127.0.0.1:80:8080`, `127.0.0.1::8080`, `8000-8002:9000-9002/udp`.
fn short_ports(text: &str, pos: Pos) -> Result<Vec<Port>, String> {
    let (body, protocol) = text.split_once('/').unwrap_or((text, "tcp"));
    if !matches!(protocol, "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol `{protocol}`"));
    }
    let parts: Vec<&str> = body.rsplitn(3, ':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => (None, None, *target),
        [target, published] => (None, Some(*published), *target),
        [target, published, ip] => (Some(ip.trim_matches(['[', ']']).to_string()), Some(*published).filter(|p| !p.is_empty()), *target),
        _ => return Err(format!("`{text}`")),
    };
    let targets = port_range(target)?;
    let published_ports = match published {
        Some(p) => port_range(p)?.into_iter().map(Some).collect(),
        None => vec![None; targets.len()],
    };
    if published_ports.len() != targets.len() {
        return Err(format!("`{text}`: the published and target ranges differ in length"));
    }
    Ok(targets
        .into_iter()
        .zip(published_ports)
        .map(|(target, published)| Port {
            target,
            published,
            host_ip: host_ip.clone(),
            protocol: protocol.to_string(),
            // Compose publishes a port without a host port on a random one.
            ephemeral: published.is_none(),
            host_mode: false,
            pos,
        })
        .collect())
}

fn port_range(text: &str) -> Result<Vec<u16>, String> {
    let parse = |p: &str| p.parse::<u16>().map_err(|_| format!("`{p}` is not a port number"));
    match text.split_once('-') {
        Some((low, high)) => {
            let (low, high) = (parse(low)?, parse(high)?);
            if low > high || high - low > 1000 {
                return Err(format!("`{text}` is not a range of at most 1000 ports"));
            }
            Ok((low..=high).collect())
        }
        None => Ok(vec![parse(text)?]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::FileId;

    const POS: Pos = Pos { file: FileId(0), line: 1, col: 1 };

    #[test]
    fn short_port_syntaxes() {
        let p = short_ports("127.0.0.1:8080:80/udp", POS).unwrap();
        assert_eq!((p[0].host_ip.as_deref(), p[0].published, p[0].target, p[0].protocol.as_str()), (Some("127.0.0.1"), Some(8080), 80, "udp"));
        let p = short_ports("80", POS).unwrap();
        assert_eq!((p[0].published, p[0].target, p[0].ephemeral), (None, 80, true));
        let p = short_ports("9000-9001:8000-8001", POS).unwrap();
        assert_eq!(p.iter().map(|p| (p.published, p.target)).collect::<Vec<_>>(), vec![(Some(9000), 8000), (Some(9001), 8001)]);
        assert!(short_ports("80:http", POS).is_err());
        assert!(short_ports("80/xyz", POS).is_err());
    }

    #[test]
    fn file_modes_are_octal_as_compose_reads_them() {
        use crate::spec::source::LineMap;
        use crate::spec::yaml::{parse, Limits};
        let tree = parse("a: 0440\nb: '0440'\nc: 288\nd: 0o440\ne: '440'\n", FileId(0), &LineMap::identity(), &Limits::default()).unwrap().unwrap();
        let modes: Vec<Option<u32>> = ["a", "b", "c", "d", "e"].iter().map(|k| file_mode(tree.get(k).unwrap())).collect();
        assert_eq!(modes, vec![Some(0o440); 5]);
    }

    #[test]
    fn sysctls_and_extra_hosts_take_one_shape_however_written() {
        use crate::spec::source::LineMap;
        use crate::spec::yaml::{parse, Limits};
        let tree = parse(
            "a: [net.core.somaxconn=1024]\nb: {net.core.somaxconn: 1024}\nc: ['db:10.0.0.1', 'cache=10.0.0.2', 'v6=::1']\nd: {db: 10.0.0.1}\n",
            FileId(0),
            &LineMap::identity(),
            &Limits::default(),
        )
        .unwrap()
        .unwrap();
        let sysctls = serde_json::json!({"net.core.somaxconn": "1024"});
        assert_eq!(passed_through("sysctls", tree.get("a").unwrap()), sysctls);
        assert_eq!(passed_through("sysctls", tree.get("b").unwrap()), sysctls);
        assert_eq!(passed_through("extra_hosts", tree.get("c").unwrap()), serde_json::json!(["db:10.0.0.1", "cache:10.0.0.2", "v6:::1"]));
        assert_eq!(passed_through("extra_hosts", tree.get("d").unwrap()), serde_json::json!(["db:10.0.0.1"]));
    }

    #[test]
    fn command_strings_split_like_a_shell() {
        assert_eq!(shell_words(r#"sh -c "echo 'a b'" x\ y"#), vec!["sh", "-c", "echo 'a b'", "x y"]);
    }
}
