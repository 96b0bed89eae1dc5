//! What the swarm engine is asked to create: services, and the configs and secrets they mount.
//!
//! Fully resolved plain values, as [`super::objects`] is for one host: the swarm planner fills
//! them in from the stack, the engine translates them field by field into the Engine API's
//! `ServiceSpec`, and every field is explicit (the API's zero values differ from the CLI's
//! defaults: parallelism 0 updates everything at once, a monitor of 0 becomes 5 s). Lists are
//! sorted where Swarm compares them, so an unchanged spec stays equal. A secret's bytes live
//! only in [`ObjectSpec::data`], which serialises as a digest.

use super::objects::{FileContent, Healthcheck};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// One Swarm service.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceSpec {
    /// `<stack>_<service>` (statefulset ordinals: `<stack>_<service>-<n>`).
    pub name: String,
    /// Service labels: `deploy.labels`, ownership, spec hash.
    pub labels: BTreeMap<String, String>,
    pub mode: ServiceMode,
    pub container: ContainerTemplate,
    pub resources: ServiceResources,
    pub restart: SwarmRestartPolicy,
    pub placement: ServicePlacement,
    /// Networks joined, in order; `networks[i].network_id` is filled in by the executor.
    pub networks: Vec<ServiceNetwork>,
    pub endpoint: Endpoint,
    /// `None` for jobs (Swarm refuses an update config on them).
    pub update: Option<UpdateConfig>,
    pub rollback: Option<UpdateConfig>,
    pub log_driver: Option<LogDriver>,
}

/// How many tasks, and whether they run to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceMode {
    Replicated { replicas: u64 },
    /// One task per eligible node.
    Global,
    /// Runs `total` tasks to completion.
    ReplicatedJob { total: u64 },
    /// One task per eligible node, to completion.
    GlobalJob,
}

impl Default for ServiceMode {
    fn default() -> Self {
        ServiceMode::Replicated { replicas: 1 }
    }
}

impl ServiceMode {
    pub fn is_job(self) -> bool {
        matches!(self, ServiceMode::ReplicatedJob { .. } | ServiceMode::GlobalJob)
    }
}

/// The container every task runs (Swarm's `TaskTemplate.ContainerSpec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerTemplate {
    pub image: String,
    /// Replaces the image's ENTRYPOINT (compose `entrypoint`).
    pub command: Option<Vec<String>>,
    /// Replaces the image's CMD (compose `command`).
    pub args: Option<Vec<String>>,
    /// May hold Swarm placeholders (`{{.Task.Slot}}`), expanded on the node.
    pub hostname: Option<String>,
    /// `KEY=VALUE`, sorted.
    pub env: Vec<String>,
    /// Container labels (compose `labels`), including ownership and the spec hash.
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub groups: Vec<String>,
    pub tty: bool,
    pub stdin_open: bool,
    pub read_only: bool,
    pub init: Option<bool>,
    pub mounts: Vec<ServiceMount>,
    pub stop_signal: Option<String>,
    pub stop_grace: Option<Duration>,
    pub healthcheck: Option<Healthcheck>,
    /// `/etc/hosts` entries as Swarm writes them: `IP host`.
    pub hosts: Vec<String>,
    pub dns: DnsConfig,
    /// Sorted by target; `configs[i].object_id` is filled in by the executor.
    pub configs: Vec<FileReference>,
    pub secrets: Vec<FileReference>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub ulimits: Vec<super::objects::Ulimit>,
}

/// A volume, bind or tmpfs mount of every task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceMount {
    pub kind: super::objects::MountKind,
    /// Volume name (created on each node where a task lands), host path, or empty (tmpfs,
    /// anonymous volume).
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// A volume's labels, driver and options, for the nodes that create it.
    pub volume_labels: BTreeMap<String, String>,
    pub volume_driver: Option<String>,
    pub volume_options: BTreeMap<String, String>,
    /// A volume not populated from the image's content at the target (`volume.nocopy`).
    #[serde(default)]
    pub no_copy: bool,
    pub tmpfs_size: Option<i64>,
    /// A tmpfs's file mode.
    #[serde(default)]
    pub tmpfs_mode: Option<u32>,
    /// A bind's propagation (`rshared`, …).
    #[serde(default)]
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsConfig {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// A config or secret mounted as a file; Swarm wants both its ID and its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReference {
    pub object_id: String,
    pub object_name: String,
    /// The file: an absolute path for configs, a name under `/run/secrets/` for secrets.
    pub target: String,
    pub uid: String,
    pub gid: String,
    pub mode: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServiceResources {
    pub limit_nano_cpus: Option<i64>,
    pub limit_memory_bytes: Option<i64>,
    pub limit_pids: Option<i64>,
    pub reserve_nano_cpus: Option<i64>,
    pub reserve_memory_bytes: Option<i64>,
}

/// Swarm's restart policy; absent in compose means Swarm's default (`any`, 5 s delay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmRestartPolicy {
    pub condition: RestartCondition,
    pub delay: Duration,
    /// 0: unlimited.
    pub max_attempts: u64,
    pub window: Duration,
}

impl Default for SwarmRestartPolicy {
    fn default() -> Self {
        SwarmRestartPolicy { condition: RestartCondition::Any, delay: Duration::from_secs(5), max_attempts: 0, window: Duration::ZERO }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    None,
    OnFailure,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ServicePlacement {
    pub constraints: Vec<String>,
    /// Spread preferences, outermost first (`node.labels.zone`).
    pub spread: Vec<String>,
    pub max_replicas_per_node: Option<u64>,
}

/// A network a service joins, with extra DNS aliases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    pub network_id: String,
    pub aliases: Vec<String>,
}

/// How tasks are reached: a virtual IP (needs IPVS) or DNS round robin, and published ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Endpoint {
    pub dnsrr: bool,
    pub ports: Vec<ServicePort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub protocol: String,
    pub target: u16,
    /// `None`: Swarm picks one (ingress only).
    pub published: Option<u16>,
    /// Published on the node running the task rather than through the routing mesh.
    pub host_mode: bool,
}

/// Swarm's rolling update (and rollback) settings, every field explicit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UpdateConfig {
    /// Tasks updated at once; never 0 here (0 means "all" to the API).
    pub parallelism: u64,
    pub delay: Duration,
    pub failure_action: FailureAction,
    pub monitor: Duration,
    pub max_failure_ratio: f64,
    pub start_first: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogDriver {
    pub name: String,
    pub options: BTreeMap<String, String>,
}

/// A config or secret to create. Swarm's are immutable, so the name carries a hash of the
/// content: changed content is a new object, and the services using it are updated to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Prints and serialises as a digest and a length only.
    pub data: FileContent,
}
