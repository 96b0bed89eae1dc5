//! Cluster files: the hypothetical nodes `swarmctl plan STACK --cluster cluster.yaml` plans
//! against, with no engine anywhere — "would this stack fit on the four servers we are about
//! to buy?".
//!
//! The file is read with the project's positioned YAML reader ([`super::yaml`]), so every
//! problem says `file:line:col`, what is wrong and how to fix it; all problems are collected
//! before anything is reported, unknown keys get "did you mean". Anchors and merge keys work,
//! so identical nodes need not be written out twice. Keys starting with `x-` are ignored (a
//! place for anchors).
//!
//! ```yaml
//! x-worker: &worker            # anchors are welcome; x- keys are ignored
//!   cpus: 8                    # CPUs: 8, 0.5, "2.5"
//!   memory: 16GiB              # bytes, or with a unit: 512M, 8g, 16GiB
//! nodes:                       # name → node; the name is its hostname and id unless set
//!   node-1:
//!     <<: *worker
//!     role: manager            # manager | worker (default worker)
//!     labels: {zone: zone-a, tier: data}
//!   node-2:
//!     <<: *worker
//!     availability: drain      # active | pause | drain (default active)
//!     state: ready             # ready | down | unknown | disconnected (default ready)
//!     engine_labels: {disk: ssd}
//!     platform: {os: linux, arch: aarch64}   # default linux / x86_64
//!     addr: 10.0.0.12          # for node.ip constraints
//!     reserved: {cpus: 1, memory: 2GiB, tasks: 3}   # held by other stacks already
//! ```

use super::read::{self, ReadError};
use super::schema::{did_you_mean, parse_size};
use super::source::{display_path, FileId, LineMap, Pos, Sources};
use super::yaml::{self, Limits, Node as Yaml, Typed, Value};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::model::node::{Availability, Node, Platform, Reserved, Resources, Role, State, NANO_CPUS_PER_CPU};
use std::collections::BTreeMap;
use std::path::Path;

/// More nodes than this is a generated file gone wrong, not a cluster (Swarm's own tested
/// scale is in the thousands).
pub const MAX_NODES: usize = 10_000;
/// CPUs per node: more than any machine has.
pub const MAX_CPUS: f64 = 100_000.0;
/// Memory per node: 1 PiB.
pub const MAX_MEMORY_BYTES: u64 = 1 << 50;
/// A cluster file is small: the limit of every file a stack names.
pub use super::read::MAX_FILE_BYTES;

const TOP_KEYS: [&str; 1] = ["nodes"];
const NODE_KEYS: [&str; 12] =
    ["role", "cpus", "memory", "labels", "engine_labels", "platform", "availability", "state", "id", "hostname", "addr", "reserved"];
const RESERVED_KEYS: [&str; 3] = ["cpus", "memory", "tasks"];
const PLATFORM_KEYS: [&str; 2] = ["os", "arch"];

/// A cluster file that loaded.
#[derive(Debug)]
pub struct Cluster {
    /// In the order the file lists them.
    pub nodes: Vec<Node>,
    /// Warnings only; errors make loading fail.
    pub warnings: Diagnostics,
    pub sources: Sources,
}

/// Loading failed: every problem, and the file they point into.
#[derive(Debug)]
pub struct ClusterFailure {
    pub diagnostics: Diagnostics,
    pub sources: Sources,
}

/// Reads and checks a cluster file (a regular file of at most [`MAX_FILE_BYTES`], read with
/// [`super::read`], so a FIFO or a huge file is refused without blocking or filling memory).
pub fn load(path: &Path) -> Result<Cluster, ClusterFailure> {
    let mut sources = Sources::default();
    let mut out = Diagnostics::default();
    let text = match read::text(path) {
        Ok(text) => text,
        Err(why) => {
            let hint = match why {
                ReadError::Missing => "write one (see `stacks/data-platform/cluster.yaml`), or check the path",
                ReadError::TooBig { .. } => "a cluster file lists nodes; use anchors (`<<: *worker`) for nodes that are alike",
                _ => "pass a YAML file that lists the nodes",
            };
            out.push(Diagnostic::error(None, format!("cannot read cluster file `{}`: {why}", display_path(path).display())).with_hint(hint));
            return Err(ClusterFailure { diagnostics: out, sources });
        }
    };
    let file = sources.add(path, text.as_str());
    let nodes = parse(&text, file, &mut out);
    match nodes {
        Some(nodes) if !out.has_errors() => Ok(Cluster { nodes, warnings: out.sorted(), sources }),
        _ => Err(ClusterFailure { diagnostics: out.sorted(), sources }),
    }
}

/// Parses a cluster file's text (registered as `file`), pushing every problem to `out`. `None`
/// when nothing usable was found; with errors in `out` the nodes are not to be trusted.
pub fn parse(text: &str, file: FileId, out: &mut Diagnostics) -> Option<Vec<Node>> {
    let start = Pos { file, line: 1, col: 1 };
    let limits = Limits { max_bytes: MAX_FILE_BYTES as usize, ..Limits::default() };
    let root = match yaml::parse(text, file, &LineMap::identity(), &limits) {
        Ok(Some(root)) => root,
        Ok(None) => {
            out.push(Diagnostic::error(start, "the cluster file is empty").with_hint(EXAMPLE_HINT));
            return None;
        }
        Err(diagnostic) => {
            out.push(diagnostic);
            return None;
        }
    };
    let Some(entries) = root.as_map() else {
        out.push(Diagnostic::error(root.pos, format!("a cluster file is a mapping with `nodes:`, not {}", root.kind_name())).with_hint(EXAMPLE_HINT));
        return None;
    };
    for entry in entries.iter().filter(|e| !e.key.starts_with("x-") && !TOP_KEYS.contains(&e.key.as_str())) {
        out.push(unknown_key(&entry.key, entry.key_pos, "at the top level", &TOP_KEYS));
    }
    let Some(nodes_entry) = entries.iter().find(|e| e.key == "nodes") else {
        out.push(Diagnostic::error(root.pos, "the cluster file has no `nodes:`").with_hint(EXAMPLE_HINT));
        return None;
    };
    let list = &nodes_entry.value;
    let Some(named) = list.as_map() else {
        out.push(
            Diagnostic::error(list.pos, format!("`nodes` must map node names to nodes, not be {}", list.kind_name()))
                .with_hint("write `nodes:` then one `NAME:` per node, e.g. `node-1: {cpus: 4, memory: 8GiB}`"),
        );
        return None;
    };
    if named.is_empty() {
        out.push(Diagnostic::error(list.pos, "`nodes` lists no node").with_hint(EXAMPLE_HINT));
        return None;
    }
    if named.len() > MAX_NODES {
        out.push(
            Diagnostic::error(nodes_entry.key_pos, format!("`nodes` lists {} nodes, more than the {MAX_NODES} a cluster file may hold", named.len()))
                .with_hint("plan against a smaller cluster; placement per node does not need thousands of identical nodes"),
        );
        return None;
    }
    let mut nodes = Vec::with_capacity(named.len());
    for entry in named {
        nodes.push(node(&entry.key, entry.key_pos, &entry.value, out));
    }
    check_unique(&nodes, named, out);
    if !nodes.iter().any(|n| n.role == Role::Manager) {
        out.push(
            Diagnostic::warning(nodes_entry.key_pos, "no node has `role: manager`; a Swarm needs at least one manager")
                .with_hint("add `role: manager` to one node (three for a manager quorum that survives one loss)"),
        );
    }
    Some(nodes)
}

const EXAMPLE_HINT: &str = "a cluster file looks like:\n    nodes:\n      node-1: {role: manager, cpus: 4, memory: 8GiB, labels: {zone: a}}\n      node-2: {cpus: 4, memory: 8GiB, labels: {zone: b}}";

/// One node; problems go to `out`, and a best-effort node comes back either way.
fn node(name: &str, name_pos: Pos, value: &Yaml, out: &mut Diagnostics) -> Node {
    let mut node = Node::new(name);
    node.platform = Platform { os: "linux".into(), architecture: "x86_64".into() };
    if !valid_name(name) {
        out.push(
            Diagnostic::error(name_pos, format!("node name `{name}` is not a host name"))
                .with_hint("use letters, digits, `.`, `-` and `_` (at most 253), e.g. `node-1`"),
        );
    }
    let Some(entries) = value.as_map() else {
        out.push(
            Diagnostic::error(value.pos, format!("node `{name}` must be a mapping, not {}", value.kind_name()))
                .with_hint(format!("write e.g. `{name}: {{cpus: 4, memory: 8GiB}}`")),
        );
        return node;
    };
    let place = format!("in node `{name}`");
    let (mut cpus, mut memory) = (None, None);
    for entry in entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "role" => node.role = keyword(v, "role", &place, Role::parse, &["manager", "worker"], out).unwrap_or(node.role),
            "availability" => {
                node.availability = keyword(v, "availability", &place, Availability::parse, &["active", "pause", "drain"], out).unwrap_or(node.availability)
            }
            "state" => node.state = keyword(v, "state", &place, State::parse, &["ready", "down", "unknown", "disconnected"], out).unwrap_or(node.state),
            "cpus" => cpus = Some(nano_cpus(v, "cpus", &place, out)),
            "memory" => memory = Some(memory_bytes(v, &place, true, out)),
            "labels" => node.labels = labels(v, "labels", &place, out),
            "engine_labels" => node.engine_labels = labels(v, "engine_labels", &place, out),
            "platform" => platform(v, &place, &mut node.platform, out),
            "id" => node.id = identifier(v, "id", &place, out).unwrap_or(node.id),
            "hostname" => node.hostname = identifier(v, "hostname", &place, out).unwrap_or(node.hostname),
            "addr" => node.addr = address(v, &place, out),
            "reserved" => node.reserved = reserved(v, &place, out),
            key if key.starts_with("x-") => {}
            key => out.push(unknown_key(key, entry.key_pos, &place, &NODE_KEYS)),
        }
    }
    for (key, value) in [("cpus", &cpus), ("memory", &memory)] {
        if value.is_none() {
            out.push(
                Diagnostic::error(name_pos, format!("node `{name}` has no `{key}`"))
                    .with_hint("every node says what it has, e.g. `cpus: 4` and `memory: 8GiB`, so reservations can be checked"),
            );
        }
    }
    let (cpus, memory) = (cpus.flatten(), memory.flatten());
    node.resources = Resources { nano_cpus: cpus.unwrap_or(0), memory_bytes: memory.unwrap_or(0) };
    let over = |reserved: u64, has: Option<u64>| has.is_some_and(|has| reserved > has);
    if over(node.reserved.nano_cpus, cpus) || over(node.reserved.memory_bytes, memory) {
        if let Some(at) = entries.iter().find(|e| e.key == "reserved") {
            out.push(
                Diagnostic::warning(at.key_pos, format!("node `{name}` has more reserved than it has"))
                    .with_hint("nothing that reserves CPU or memory will fit there; check `reserved` against `cpus` and `memory`"),
            );
        }
    }
    node
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn unknown_key(key: &str, pos: Pos, place: &str, known: &[&str]) -> Diagnostic {
    let diagnostic = Diagnostic::error(pos, format!("unknown key `{key}` {place}")).with_label("not a cluster file key");
    match did_you_mean(key, known.iter().copied()) {
        Some(suggestion) => diagnostic.with_hint(format!("did you mean `{suggestion}`?")),
        None => diagnostic.with_hint(format!("known keys here: {}; keys starting with `x-` are ignored", known.join(", "))),
    }
}

/// A scalar's text, or an error saying what it should be.
fn text<'v>(value: &'v Yaml, key: &str, place: &str, what: &str, out: &mut Diagnostics) -> Option<&'v str> {
    match value.as_text() {
        Some(text) if value.as_scalar().is_some() => Some(text),
        _ => {
            out.push(Diagnostic::error(value.pos, format!("`{key}` {place} must be {what}, not {}", value.kind_name())));
            None
        }
    }
}

fn keyword<T>(value: &Yaml, key: &str, place: &str, parse: fn(&str) -> Option<T>, choices: &[&str], out: &mut Diagnostics) -> Option<T> {
    let word = text(value, key, place, &format!("one of {}", choices.join(", ")), out)?;
    if let Some(parsed) = parse(word) {
        return Some(parsed);
    }
    let diagnostic = Diagnostic::error(value.pos, format!("`{key}` {place} is `{word}`, not one of {}", choices.join(", ")));
    let lower = word.to_ascii_lowercase();
    let suggestion = did_you_mean(&lower, choices.iter().copied()).or_else(|| choices.iter().copied().find(|c| lower.starts_with(c)));
    out.push(match suggestion {
        Some(choice) => diagnostic.with_hint(format!("did you mean `{choice}`?")),
        None => diagnostic.with_hint(format!("write one of {}", choices.join(", "))),
    });
    None
}

/// `4`, `0.5`, `"2.5"` → nano CPUs; `None` after reporting a problem.
fn nano_cpus(value: &Yaml, key: &str, place: &str, out: &mut Diagnostics) -> Option<u64> {
    let number = match value.as_scalar().map(|s| s.typed()) {
        Some(Typed::Int(n)) => Some(n as f64),
        Some(Typed::Float(f)) => Some(f),
        Some(Typed::Str(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let Some(cpus) = number.filter(|c| c.is_finite()) else {
        out.push(
            Diagnostic::error(value.pos, format!("`{key}` {place} must be a number of CPUs, not {}", describe(value)))
                .with_hint(format!("write e.g. `{key}: 4` or `{key}: 0.5`")),
        );
        return None;
    };
    if !(0.0..=MAX_CPUS).contains(&cpus) {
        out.push(
            Diagnostic::error(value.pos, format!("`{key}` {place} is {cpus}, outside 0 to {MAX_CPUS}"))
                .with_hint("write the node's CPU count, e.g. `4` or `0.5`"),
        );
        return None;
    }
    Some((cpus * NANO_CPUS_PER_CPU as f64).round() as u64)
}

/// `8GiB`, `512M`, `1073741824` → bytes. A node's own memory that is tiny was likely written
/// without its unit (`memory: 16`): `warn_tiny` says so.
fn memory_bytes(value: &Yaml, place: &str, warn_tiny: bool, out: &mut Diagnostics) -> Option<u64> {
    let key = "memory";
    let bytes = match value.as_scalar().map(|s| s.typed()) {
        Some(Typed::Int(n)) => u64::try_from(n).ok(),
        Some(Typed::Str(s)) => parse_size(s).filter(|_| !s.trim_start().starts_with(['-', '+'])),
        _ => None,
    };
    let Some(bytes) = bytes else {
        out.push(
            Diagnostic::error(value.pos, format!("`{key}` {place} must be a size, not {}", describe(value)))
                .with_hint(format!("write bytes or a size with a unit (k, m, g, t; KiB, MiB, GiB, TiB), e.g. `{key}: 16GiB`")),
        );
        return None;
    };
    if bytes > MAX_MEMORY_BYTES {
        out.push(
            Diagnostic::error(value.pos, format!("`{key}` {place} is more than 1PiB"))
                .with_hint("write the node's memory, e.g. `16GiB`"),
        );
        return None;
    }
    if warn_tiny && bytes > 0 && bytes < 4 << 20 {
        let text = value.as_text().unwrap_or_default();
        out.push(
            Diagnostic::warning(value.pos, format!("`{key}` {place} is {bytes} bytes"))
                .with_hint(format!("sizes without a unit are bytes; did you mean `{text}GiB`?")),
        );
    }
    Some(bytes)
}

/// How a value reads in a message: a scalar as written (`` `four` ``), a collection by its kind.
fn describe(value: &Yaml) -> String {
    match value.as_scalar() {
        Some(scalar) if !value.is_null() => format!("`{}`", scalar.text),
        _ => value.kind_name().to_string(),
    }
}

/// `{zone: a, ssd: true}` or `["zone=a", "ssd"]`; values are text (`true` is `"true"`, no value
/// is `""`, as `docker node update --label-add ssd` gives).
fn labels(value: &Yaml, key: &str, place: &str, out: &mut Diagnostics) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    match &value.value {
        Value::Map(entries) => {
            for entry in entries {
                if entry.key.trim().is_empty() {
                    out.push(Diagnostic::error(entry.key_pos, format!("`{key}` {place} has an empty label name")));
                    continue;
                }
                let text = match &entry.value.value {
                    Value::Scalar(_) => entry.value.as_text().unwrap_or("").to_string(),
                    _ => {
                        out.push(
                            Diagnostic::error(entry.value.pos, format!("label `{}` {place} must be a single value, not {}", entry.key, entry.value.kind_name()))
                                .with_hint("label values are text, e.g. `zone: zone-a`"),
                        );
                        continue;
                    }
                };
                labels.insert(entry.key.clone(), text);
            }
        }
        Value::Seq(items) => {
            for item in items {
                let Some(written) = item.as_text().filter(|_| item.as_scalar().is_some()) else {
                    out.push(Diagnostic::error(item.pos, format!("`{key}` {place}: a list item must be `NAME=VALUE`, not {}", item.kind_name())));
                    continue;
                };
                let (name, text) = written.split_once('=').unwrap_or((written, ""));
                if name.trim().is_empty() {
                    out.push(Diagnostic::error(item.pos, format!("`{key}` {place} has an empty label name")).with_hint("write `NAME=VALUE`, e.g. `zone=zone-a`"));
                    continue;
                }
                labels.insert(name.to_string(), text.to_string());
            }
        }
        _ if value.is_null() => {}
        _ => out.push(
            Diagnostic::error(value.pos, format!("`{key}` {place} must map label names to values, not be {}", value.kind_name()))
                .with_hint(format!("write e.g. `{key}: {{zone: zone-a}}`")),
        ),
    }
    labels
}

fn platform(value: &Yaml, place: &str, platform: &mut Platform, out: &mut Diagnostics) {
    let Some(entries) = value.as_map() else {
        out.push(
            Diagnostic::error(value.pos, format!("`platform` {place} must be a mapping, not {}", value.kind_name()))
                .with_hint("write e.g. `platform: {os: linux, arch: x86_64}`"),
        );
        return;
    };
    for entry in entries {
        let place = format!("{place}'s platform");
        match entry.key.as_str() {
            "os" => platform.os = text(&entry.value, "os", &place, "a string", out).unwrap_or_default().to_string(),
            "arch" => platform.architecture = text(&entry.value, "arch", &place, "a string", out).unwrap_or_default().to_string(),
            key if key.starts_with("x-") => {}
            key => out.push(unknown_key(key, entry.key_pos, &place, &PLATFORM_KEYS)),
        }
    }
}

fn identifier(value: &Yaml, key: &str, place: &str, out: &mut Diagnostics) -> Option<String> {
    let written = text(value, key, place, "a string", out)?;
    if written.trim().is_empty() || written.chars().any(char::is_control) {
        out.push(Diagnostic::error(value.pos, format!("`{key}` {place} is empty or holds control characters")));
        return None;
    }
    Some(written.to_string())
}

fn address(value: &Yaml, place: &str, out: &mut Diagnostics) -> Option<String> {
    let written = text(value, "addr", place, "an IP address", out)?;
    if written.parse::<std::net::IpAddr>().is_err() {
        out.push(
            Diagnostic::error(value.pos, format!("`addr` {place} is `{written}`, not an IP address"))
                .with_hint("write the node's address, e.g. `addr: 10.0.0.11`"),
        );
        return None;
    }
    Some(written.to_string())
}

fn reserved(value: &Yaml, place: &str, out: &mut Diagnostics) -> Reserved {
    let mut reserved = Reserved::default();
    let Some(entries) = value.as_map() else {
        out.push(
            Diagnostic::error(value.pos, format!("`reserved` {place} must be a mapping, not {}", value.kind_name()))
                .with_hint("write what other stacks hold there, e.g. `reserved: {cpus: 1, memory: 2GiB, tasks: 3}`"),
        );
        return reserved;
    };
    let place = format!("{place}'s reserved");
    for entry in entries {
        let v = &entry.value;
        match entry.key.as_str() {
            "cpus" => reserved.nano_cpus = nano_cpus(v, "cpus", &place, out).unwrap_or(0),
            "memory" => reserved.memory_bytes = memory_bytes(v, &place, false, out).unwrap_or(0),
            "tasks" => match v.as_scalar().map(|s| s.typed()) {
                Some(Typed::Int(n)) if (0..=1_000_000).contains(&n) => reserved.tasks = n as u32,
                _ => out.push(
                    Diagnostic::error(v.pos, format!("`tasks` {place} must be a count of tasks (0 to 1000000), not {}", describe(v)))
                        .with_hint("write how many tasks of other stacks run there, e.g. `tasks: 3`"),
                ),
            },
            key if key.starts_with("x-") => {}
            key => out.push(unknown_key(key, entry.key_pos, &place, &RESERVED_KEYS)),
        }
    }
    reserved
}

/// Ids and hostnames must name one node each (tables and pins name nodes by them).
fn check_unique(nodes: &[Node], entries: &[yaml::Entry], out: &mut Diagnostics) {
    for (field, of) in [("id", (|n: &Node| n.id.as_str()) as fn(&Node) -> &str), ("hostname", |n: &Node| n.hostname.as_str())] {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (node, entry) in nodes.iter().zip(entries) {
            if let Some(first) = seen.get(of(node)).copied() {
                let pos = entry.value.get(field).map_or(entry.key_pos, |v| v.pos);
                out.push(
                    Diagnostic::error(pos, format!("node `{}` has the {field} `{}` of node `{first}`", entry.key, of(node)))
                        .with_hint(format!("give every node its own {field}")),
                );
            } else {
                seen.insert(of(node), &entry.key);
            }
        }
    }
}
