//! The validated stack: what the planner reads. Plain data with defaults resolved; every field
//! here has been checked, so consumers never re-validate. Maps are sorted for determinism.

use crate::spec::source::Pos;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stack {
    pub name: String,
    /// The stack directory; relative paths were resolved against it.
    #[serde(skip)]
    pub dir: PathBuf,
    /// Active services (profiles applied).
    pub services: BTreeMap<String, Service>,
    /// Services left out because none of their profiles is active.
    pub inactive: BTreeSet<String>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub configs: BTreeMap<String, FileObject>,
    pub secrets: BTreeMap<String, FileObject>,
    /// Layer folders in order, with the services each holds.
    pub layers: Vec<(String, Vec<String>)>,
}

/// How replicas relate to each other (Kubernetes' workload kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Interchangeable replicas.
    Deployment,
    /// Ordinals `name-0..n-1`, a volume per ordinal, ordered start, updates from the top ordinal.
    Statefulset,
    /// One per node.
    Daemonset,
    /// Runs to completion.
    Job,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::Statefulset => "statefulset",
            Kind::Daemonset => "daemonset",
            Kind::Job => "job",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Some(match text {
            "deployment" => Kind::Deployment,
            "statefulset" => Kind::Statefulset,
            "daemonset" => Kind::Daemonset,
            "job" => Kind::Job,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

impl Condition {
    pub fn parse(text: &str) -> Option<Condition> {
        Some(match text {
            "service_started" => Condition::ServiceStarted,
            "service_healthy" => Condition::ServiceHealthy,
            "service_completed_successfully" => Condition::ServiceCompletedSuccessfully,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Condition::ServiceStarted => "service_started",
            Condition::ServiceHealthy => "service_healthy",
            Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub service: String,
    pub condition: Condition,
    pub required: bool,
    /// Restart this service when the dependency is replaced.
    pub restart: bool,
    /// Implied rather than written in `depends_on`: by `links`, `volumes_from` or
    /// `network_mode: service:…` (layer order is a graph barrier, not a dependency).
    pub implicit: bool,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    #[serde(skip)]
    pub pos: Pos,
    pub kind: Kind,
    pub replicas: u32,
    pub image: Option<String>,
    pub build: Option<Build>,
    pub pull_policy: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `None` means "take it from the environment of the deployer" (compose's `- KEY` form).
    pub environment: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub depends_on: Vec<Dependency>,
    pub layer: Option<String>,
    pub ports: Vec<Port>,
    pub volumes: Vec<Mount>,
    /// Networks joined, with extra aliases; empty with `network_mode`.
    pub networks: BTreeMap<String, Vec<String>>,
    /// Static addresses on networks (`ipv4_address`, `ipv6_address`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub network_addresses: BTreeMap<String, NetworkAddress>,
    pub network_mode: Option<String>,
    pub configs: Vec<FileMount>,
    pub secrets: Vec<FileMount>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub container_name: Option<String>,
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub profiles: Vec<String>,
    pub resources: Resources,
    pub placement: Placement,
    pub rollout: Rollout,
    /// What only a swarm reads.
    #[serde(default, skip_serializing_if = "SwarmSettings::is_empty")]
    pub swarm: SwarmSettings,
    /// Where keys were written (`container_name`, `environment.KEY`), for diagnostics.
    #[serde(skip)]
    pub positions: BTreeMap<String, Pos>,
    /// Other engine settings passed through as written (cap_add, sysctls, ulimits, …).
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A fixed address on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAddress {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub context: PathBuf,
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Build without the engine's cache (`no_cache`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_cache: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    pub target: u16,
    /// `None`: not published on the host (or an ephemeral host port when `ephemeral`).
    pub published: Option<u16>,
    pub host_ip: Option<String>,
    pub protocol: String,
    /// Published to a random host port: compose publishes every listed port, and one written
    /// without a host port (`"8080"`, `"127.0.0.1::8080"`, `{target: 8080}`) gets a random one.
    pub ephemeral: bool,
    /// Swarm: published on the node that runs the task (`mode: host`), not through the mesh.
    #[serde(default, skip_serializing_if = "is_false")]
    pub host_mode: bool,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Volume,
    Bind,
    Tmpfs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub kind: MountKind,
    /// Volume name (stack-level key), absolute host path, or empty for anonymous volumes and tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// A bind whose host path is created when missing: the short syntax always (compose's
    /// legacy), the long one with `bind.create_host_path: true`. Not part of the spec hash:
    /// it changes how the container is made, not the container.
    #[serde(default)]
    pub create_host_path: bool,
    /// A volume not populated from the image (`volume.nocopy`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_copy: bool,
    /// A tmpfs's size in bytes (`tmpfs.size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<u64>,
    /// A tmpfs's file mode (`tmpfs.mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_mode: Option<u32>,
    /// A bind's propagation (`bind.propagation`, or one in the short syntax's options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    #[serde(skip)]
    pub pos: Pos,
}

fn is_false(value: &bool) -> bool {
    !value
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMount {
    pub source: String,
    pub target: String,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
    #[serde(skip)]
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]`; `None` when disabled.
    pub test: Option<Vec<String>>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub retries: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory: Option<u64>,
    pub pids: Option<i64>,
    pub reserve_cpus: Option<f64>,
    pub reserve_memory: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub constraints: Vec<String>,
    pub spread: Vec<String>,
    pub max_replicas_per_node: Option<u32>,
}

/// Compose keys only a swarm acts on (`deploy.labels`, `deploy.endpoint_mode`,
/// `deploy.restart_policy`); one host ignores them, as docker compose does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwarmSettings {
    /// Labels on the service (compose's `labels` go on its containers).
    pub labels: BTreeMap<String, String>,
    /// `endpoint_mode: dnsrr`: DNS round robin instead of a virtual IP.
    pub dnsrr: bool,
    pub restart_policy: Option<SwarmRestart>,
    /// `deploy.mode: global-job`: a job with one task on every node. One host runs it once,
    /// as any job.
    #[serde(default, skip_serializing_if = "is_false")]
    pub global_job: bool,
}

impl SwarmSettings {
    pub fn is_empty(&self) -> bool {
        *self == SwarmSettings::default()
    }
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmRestart {
    /// `none`, `on-failure` or `any`.
    pub condition: String,
    pub delay: Option<Duration>,
    pub max_attempts: Option<u64>,
    pub window: Option<Duration>,
}

/// An int or a percentage of replicas (`1`, `25%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntOrPercent {
    Int(u32),
    Percent(u32),
}

/// Kubernetes rollout policy (`x-rollout`), or compose's `update_config` with Swarm defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub max_surge: IntOrPercent,
    pub max_unavailable: IntOrPercent,
    /// How long a new replica must stay ready before it counts (Swarm's `delay`).
    pub min_ready: Duration,
    pub progress_deadline: Duration,
    pub auto_rollback: bool,
    /// StatefulSet: ordinals below this are not updated.
    pub partition: u32,
    /// Stop every old replica, then start the new ones (`x-rollout.strategy: recreate`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub recreate: bool,
    /// Swarm's failure window after each batch (`update_config.monitor`).
    #[serde(default = "default_monitor")]
    pub monitor: Duration,
    /// Swarm's tolerated fraction of failed tasks (`update_config.max_failure_ratio`).
    #[serde(default)]
    pub max_failure_ratio: f64,
    /// `update_config.failure_action: continue`: failures do not stop the update.
    #[serde(default, skip_serializing_if = "is_false")]
    pub continue_on_failure: bool,
}

fn default_monitor() -> Duration {
    Duration::from_secs(5)
}

/// Swarm's defaults (compose `update_config` unwritten): one at a time, stop-first, watched 5s.
impl Default for Rollout {
    fn default() -> Self {
        Rollout {
            max_surge: IntOrPercent::Int(0),
            max_unavailable: IntOrPercent::Int(1),
            min_ready: Duration::ZERO,
            progress_deadline: Duration::from_secs(600),
            auto_rollback: false,
            partition: 0,
            recreate: false,
            monitor: default_monitor(),
            max_failure_ratio: 0.0,
            continue_on_failure: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub external: bool,
    pub internal: bool,
    pub attachable: bool,
    pub driver_opts: BTreeMap<String, String>,
    pub ipam: Vec<crate::model::objects::IpamPool>,
    pub ipam_driver: Option<String>,
    pub ipam_options: BTreeMap<String, String>,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub external: bool,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A config or secret. The content of secrets never leaves this struct except into a container.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct FileObject {
    pub external: bool,
    pub name: Option<String>,
    /// The file it was read from (for messages).
    pub file: Option<PathBuf>,
    #[serde(skip)]
    pub content: Vec<u8>,
    /// sha256 of the content; for secrets keyed with the stack name, so equal secrets in two
    /// stacks do not reveal each other by hash.
    pub hash: String,
    /// A secret restored from a revision without its content (history never stores it): a
    /// plan that must create it asks for it instead.
    #[serde(skip)]
    pub withheld: bool,
}

impl FileObject {
    /// The hash of a config's or secret's content. A secret's is keyed by stack and name, so
    /// its hash alone does not identify common values across stacks.
    pub fn content_hash(stack: &str, key: &str, content: &[u8], secret: bool) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        if secret {
            hasher.update(format!("swarmctl-secret\0{stack}\0{key}\0"));
        }
        hasher.update(content);
        format!("{:x}", hasher.finalize())
    }
}

impl std::fmt::Debug for FileObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileObject")
            .field("external", &self.external)
            .field("file", &self.file)
            .field("content", &format_args!("<{} bytes>", self.content.len()))
            .field("hash", &self.hash)
            .field("withheld", &self.withheld)
            .finish()
    }
}
