//! A cluster node as the placement planner sees it.
//!
//! One type serves both the nodes a Swarm reports (`docker node inspect`) and the hypothetical
//! nodes of a cluster file (`plan --cluster`), so "would this stack fit on the servers we are
//! about to buy?" and "why is this task Pending?" are answered by the same arithmetic
//! ([`crate::plan::placement`]). It holds exactly what swarmkit's scheduler reads about a node:
//! what constraints match against (role, hostname, id, address, labels, platform), whether it
//! takes new tasks (availability, state), and what it can still reserve (its CPUs and memory
//! minus what tasks outside the planned stack already reserved there).
//!
//! Plain serde data: no IO, no engine types.
//!
//! ```
//! use swarmctl::model::node::{Node, Role};
//! let mut node = Node::new("node-1");
//! node.role = Role::Manager;
//! node.resources.nano_cpus = 4 * swarmctl::model::node::NANO_CPUS_PER_CPU;
//! node.resources.memory_bytes = 8 << 30;
//! node.labels.insert("zone".into(), "zone-a".into());
//! assert_eq!(node.free_nano_cpus(), 4_000_000_000);
//! assert!(node.takes_new_tasks());
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Swarm counts CPUs in billionths (`NanoCPUs`): 1.5 CPUs is 1,500,000,000.
pub const NANO_CPUS_PER_CPU: u64 = 1_000_000_000;

/// A Swarm node, observed or hypothetical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Swarm's node ID (`node.id`); a cluster file uses the node's name.
    pub id: String,
    /// `node.hostname`; what tables show.
    pub hostname: String,
    pub role: Role,
    /// What the operator set (`docker node update --availability`).
    pub availability: Availability,
    /// What the managers see (heartbeats).
    pub state: State,
    /// The node's address (`node.ip` constraints); `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<String>,
    /// Node labels (`docker node update --label-add`), matched by `node.labels.KEY`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Engine labels (`daemon.json` `labels`), matched by `engine.labels.KEY`.
    #[serde(default)]
    pub engine_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Platform,
    /// What the node has in total (`Description.Resources`).
    pub resources: Resources,
    /// What tasks that are not the planned stack's already hold on the node.
    #[serde(default)]
    pub reserved: Reserved,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

/// Whether the scheduler may give the node new tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Takes new tasks.
    Active,
    /// Keeps its tasks, takes no new ones.
    Pause,
    /// Its tasks move elsewhere; takes none.
    Drain,
}

/// The node's health as the managers see it. Only `Ready` nodes take tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ready,
    Down,
    Unknown,
    Disconnected,
}

/// `node.platform.os` / `node.platform.arch` as the engine reports them (`linux`, `x86_64`).
/// Empty strings mean "not reported", which only `!=` constraints match (as in swarmkit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

/// CPU and memory, in Swarm's units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub nano_cpus: u64,
    pub memory_bytes: u64,
}

/// What other tasks (not the planned stack's) hold on a node: it is not reservable, and the
/// task count breaks ties between otherwise equal nodes (swarmkit prefers the emptier node).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reserved {
    pub nano_cpus: u64,
    pub memory_bytes: u64,
    /// Running (or about to run) tasks.
    pub tasks: u32,
    /// Host-mode published ports already taken (`mode: host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPort>,
}

/// A port published in host mode: one task per node can hold it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HostPort {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub port: u16,
}

impl Node {
    /// A ready, active worker named `name` (id and hostname alike), with no resources yet.
    pub fn new(name: &str) -> Node {
        Node {
            id: name.to_string(),
            hostname: name.to_string(),
            role: Role::Worker,
            availability: Availability::Active,
            state: State::Ready,
            addr: None,
            labels: BTreeMap::new(),
            engine_labels: BTreeMap::new(),
            platform: Platform::default(),
            resources: Resources::default(),
            reserved: Reserved::default(),
        }
    }

    /// swarmkit's `ReadyFilter`: ready and active. Paused, drained, down, unknown and
    /// disconnected nodes take nothing new.
    pub fn takes_new_tasks(&self) -> bool {
        self.state == State::Ready && self.availability == Availability::Active
    }

    /// CPU left to reserve before the planned stack: negative when others over-reserved.
    pub fn free_nano_cpus(&self) -> i64 {
        clamp_i64(self.resources.nano_cpus) - clamp_i64(self.reserved.nano_cpus)
    }

    /// Memory left to reserve before the planned stack: negative when others over-reserved.
    pub fn free_memory_bytes(&self) -> i64 {
        clamp_i64(self.resources.memory_bytes) - clamp_i64(self.reserved.memory_bytes)
    }
}

fn clamp_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "manager" => Role::Manager,
            "worker" => Role::Worker,
            _ => return None,
        })
    }
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }

    pub fn parse(text: &str) -> Option<Availability> {
        Some(match text {
            "active" => Availability::Active,
            "pause" => Availability::Pause,
            "drain" => Availability::Drain,
            _ => return None,
        })
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::Down => "down",
            State::Unknown => "unknown",
            State::Disconnected => "disconnected",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        Some(match text {
            "ready" => State::Ready,
            "down" => State::Down,
            "unknown" => State::Unknown,
            "disconnected" => State::Disconnected,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.protocol)
    }
}

/// `1.5` for 1,500,000,000 nano CPUs; whole numbers without decimals, at most 3 decimals.
pub fn format_cpus(nano_cpus: i64) -> String {
    let sign = if nano_cpus < 0 { "-" } else { "" };
    let magnitude = nano_cpus.unsigned_abs();
    let whole = magnitude / NANO_CPUS_PER_CPU;
    // Rounded to thousandths: nobody reserves a millionth of a CPU.
    let thousandths = (magnitude % NANO_CPUS_PER_CPU + 500_000) / 1_000_000;
    let (whole, thousandths) = if thousandths == 1000 { (whole + 1, 0) } else { (whole, thousandths) };
    if thousandths == 0 {
        format!("{sign}{whole}")
    } else {
        let fraction = format!("{thousandths:03}");
        format!("{sign}{whole}.{}", fraction.trim_end_matches('0'))
    }
}

/// `512MiB`, `1.5GiB`, `8GiB`: binary units, at most two decimals.
pub fn format_bytes(bytes: i64) -> String {
    let sign = if bytes < 0 { "-" } else { "" };
    let magnitude = bytes.unsigned_abs();
    const UNITS: [(&str, u64); 5] = [("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if magnitude >= size {
            let hundredths = (u128::from(magnitude) * 100 + u128::from(size) / 2) / u128::from(size);
            let (whole, fraction) = (hundredths / 100, hundredths % 100);
            return if fraction == 0 {
                format!("{sign}{whole}{unit}")
            } else {
                let fraction = format!("{fraction:02}");
                format!("{sign}{whole}.{}{unit}", fraction.trim_end_matches('0'))
            };
        }
    }
    format!("{sign}{magnitude}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_print_as_people_write_them() {
        assert_eq!(format_cpus(1_500_000_000), "1.5");
        assert_eq!(format_cpus(2_000_000_000), "2");
        assert_eq!(format_cpus(250_000_000), "0.25");
        assert_eq!(format_cpus(0), "0");
        assert_eq!(format_cpus(-500_000_000), "-0.5");
        assert_eq!(format_cpus(999_999_999), "1");
    }

    #[test]
    fn bytes_print_in_binary_units() {
        assert_eq!(format_bytes(8 << 30), "8GiB");
        assert_eq!(format_bytes(512 << 20), "512MiB");
        assert_eq!(format_bytes(3 << 29), "1.5GiB");
        assert_eq!(format_bytes(100), "100B");
        assert_eq!(format_bytes(-(1 << 30)), "-1GiB");
    }

    #[test]
    fn only_ready_active_nodes_take_new_tasks() {
        let mut node = Node::new("n");
        assert!(node.takes_new_tasks());
        node.availability = Availability::Pause;
        assert!(!node.takes_new_tasks());
        node.availability = Availability::Active;
        node.state = State::Disconnected;
        assert!(!node.takes_new_tasks());
    }
}
