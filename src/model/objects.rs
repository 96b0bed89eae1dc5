//! What the engines are asked to create: networks, volumes, containers, image builds.
//!
//! These are plain, fully resolved values: the planner fills them in, the executor hands them
//! to an engine, the engine translates them field by field. No defaults are
//! decided here beyond "absent means the engine's default". They are serialisable so a plan can
//! be printed, saved and compared; the one field that may hold secret material,
//! [`FileDelivery::content`], serialises and prints as a digest and a length only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A network to create on one host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// The network's name (not unique on Engine < 25; refer to networks by ID afterwards).
    pub name: String,
    /// Network driver; `None` means the engine default (`bridge` on one host).
    pub driver: Option<String>,
    /// No outside connectivity.
    pub internal: bool,
    /// Standalone containers may attach (meaningful for overlay networks).
    pub attachable: bool,
    /// Labels, including the ownership labels.
    pub labels: BTreeMap<String, String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// IPAM pools; empty means the engine chooses.
    pub ipam_pools: Vec<IpamPool>,
    pub ipam_driver: Option<String>,
    pub ipam_options: BTreeMap<String, String>,
    pub enable_ipv6: bool,
}

/// One address pool of a network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpamPool {
    /// CIDR, e.g. `10.201.10.0/24`.
    pub subnet: String,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    /// Reserved addresses by host name.
    pub aux_addresses: BTreeMap<String, String>,
}

/// A named volume to create.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VolumeSpec {
    /// The volume's name.
    pub name: String,
    /// Volume driver; `None` means `local`.
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: BTreeMap<String, String>,
    /// Labels, including the ownership labels.
    pub labels: BTreeMap<String, String>,
}

/// An image to build from a local context directory through the engine's build API.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BuildSpec {
    /// The context directory, sent to the engine as a tar archive.
    pub context: PathBuf,
    /// The Dockerfile, relative to the context (`Dockerfile` when empty).
    pub dockerfile: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// The tag to give the result (`name:tag`).
    pub tag: String,
    /// Multi-stage target, if any.
    pub target: Option<String>,
    /// Labels on the built image.
    pub labels: BTreeMap<String, String>,
    /// Do not use the build cache.
    pub no_cache: bool,
}

/// One container to create, fully resolved.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// The container's name.
    pub name: String,
    /// The image reference (must exist locally).
    pub image: String,
    /// Hostname inside the container.
    pub hostname: Option<String>,
    /// Command (replaces the image's CMD) when set.
    pub command: Option<Vec<String>>,
    /// Entrypoint (replaces the image's ENTRYPOINT) when set.
    pub entrypoint: Option<Vec<String>>,
    /// Environment as `KEY=VALUE`; never secrets (those go through [`ContainerSpec::files`]).
    pub env: Vec<String>,
    /// Labels, including the ownership labels and the spec hash.
    pub labels: BTreeMap<String, String>,
    /// `user[:group]` to run as.
    pub user: Option<String>,
    /// Working directory.
    pub working_dir: Option<String>,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// Volume, bind and tmpfs mounts.
    pub mounts: Vec<Mount>,
    /// The network joined at create (API 1.41 takes one); later steps connect the others.
    pub network: Option<NetworkAttachment>,
    /// `host`, `none` or `container:<id>`; when set, `networks` is empty.
    pub network_mode: Option<String>,
    /// Health check; `None` keeps the image's.
    pub healthcheck: Option<Healthcheck>,
    /// Restart policy.
    pub restart: RestartPolicy,
    /// Signal sent by `stop` (stored in the container, so any `docker stop` honours it).
    pub stop_signal: Option<String>,
    /// Time between the stop signal and SIGKILL (stored in the container).
    pub stop_grace: Option<Duration>,
    /// Resource limits.
    pub resources: Resources,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Capabilities to drop.
    pub cap_drop: Vec<String>,
    /// Run privileged.
    pub privileged: bool,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// Run an init process as PID 1; `None` means the daemon default.
    pub init: Option<bool>,
    /// Allocate a TTY.
    pub tty: bool,
    /// Keep stdin open.
    pub stdin_open: bool,
    /// Namespaced kernel parameters.
    pub sysctls: BTreeMap<String, String>,
    /// Extra `/etc/hosts` entries, `host:ip`.
    pub extra_hosts: Vec<String>,
    /// tmpfs mounts as `path` or `path:options`.
    pub tmpfs: Vec<String>,
    /// Process limits.
    pub ulimits: Vec<Ulimit>,
    /// DNS servers.
    pub dns: Vec<String>,
    /// Size of `/dev/shm` in bytes.
    pub shm_size: Option<i64>,
    /// Ports exposed without publishing (`expose`), as `8443/tcp`.
    pub exposed_ports: Vec<String>,
    pub mac_address: Option<String>,
    pub domainname: Option<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// Supplementary groups.
    pub group_add: Vec<String>,
    /// `no-new-privileges:true`, `seccomp=unconfined`, …
    pub security_opt: Vec<String>,
    /// The logging driver (empty: the engine's default) and its options.
    pub log: Option<LogConfig>,
    /// `host`, `container:<name>`, …
    pub pid_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub userns_mode: Option<String>,
    pub oom_score_adj: Option<i64>,
    pub devices: Vec<Device>,
    /// The OCI runtime (`runc`, `runsc`, …).
    pub runtime: Option<String>,
    /// `linux/amd64`: which image variant to run.
    pub platform: Option<String>,
    /// Containers whose volumes this one mounts, `name[:ro|:rw]`.
    pub volumes_from: Vec<String>,
    /// The cgroup the container's cgroup is made under.
    pub cgroup_parent: Option<String>,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// Host address to bind; `None` means all addresses.
    pub host_ip: Option<String>,
    /// Host port; `None` means an ephemeral port chosen by the engine.
    pub host_port: Option<u16>,
}

/// The kind of a [`Mount`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A named volume.
    #[default]
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs (source ignored).
    Tmpfs,
}

/// One mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Volume, bind or tmpfs.
    pub kind: MountKind,
    /// Volume name or host path; empty for tmpfs.
    pub source: String,
    /// Path inside the container.
    pub target: String,
    /// Mount read-only.
    pub read_only: bool,
    /// A bind whose missing host path the engine creates (sent the way `docker run -v` sends it).
    #[serde(default)]
    pub create_host_path: bool,
    /// A volume not populated from the image.
    #[serde(default)]
    pub no_copy: bool,
    /// A tmpfs's size in bytes.
    #[serde(default)]
    pub tmpfs_size: Option<i64>,
    /// A tmpfs's file mode.
    #[serde(default)]
    pub tmpfs_mode: Option<u32>,
    /// A bind's propagation: `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    #[serde(default)]
    pub propagation: Option<String>,
}

/// Membership of one network, with DNS aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachment {
    /// The network's ID (names are ambiguous on Engine < 25).
    pub network_id: String,
    /// DNS aliases on that network (typically the service name).
    pub aliases: Vec<String>,
    /// Fixed addresses on that network.
    #[serde(default)]
    pub ipv4_address: Option<String>,
    #[serde(default)]
    pub ipv6_address: Option<String>,
    /// Legacy links, `container:alias`.
    #[serde(default)]
    pub links: Vec<String>,
}

/// A health check, in compose terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// `["CMD", args…]`, `["CMD-SHELL", "command"]` or `["NONE"]` (disables the image's check).
    pub test: Vec<String>,
    /// Time between checks.
    pub interval: Option<Duration>,
    /// Time one check may take.
    pub timeout: Option<Duration>,
    /// Grace period during which failures do not count.
    pub start_period: Option<Duration>,
    /// Consecutive failures before `unhealthy`.
    pub retries: Option<u32>,
}

/// When the engine restarts the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartPolicy {
    /// Never restart (`no`).
    #[default]
    Never,
    /// Always restart.
    Always,
    /// Restart on a non-zero exit, at most `max_retries` times (0 = unlimited).
    OnFailure {
        /// Retry limit; 0 means unlimited.
        max_retries: u32,
    },
    /// Restart unless stopped by a user.
    UnlessStopped,
}

/// Resource limits and reservations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory_bytes: Option<i64>,
    /// Soft memory reservation in bytes.
    pub memory_reservation_bytes: Option<i64>,
    /// CPU limit in units of 10⁻⁹ CPUs.
    pub nano_cpus: Option<i64>,
    /// Maximum number of processes.
    pub pids_limit: Option<i64>,
    /// Relative CPU weight.
    pub cpu_shares: Option<i64>,
    /// CPUs the container may run on (`0-3`, `0,1`).
    pub cpuset_cpus: Option<String>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    /// Memory plus swap, in bytes (`-1`: unlimited swap).
    pub memory_swap_bytes: Option<i64>,
    pub memory_swappiness: Option<i64>,
}

/// A logging driver and its options.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogConfig {
    /// Empty: the engine's default driver, with these options.
    pub driver: String,
    pub options: BTreeMap<String, String>,
}

/// A host device given to the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub host: String,
    pub container: String,
    /// `rwm` unless written.
    pub permissions: String,
}

/// One ulimit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, …
    pub name: String,
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// A file written into a container between create and start (configs and secrets).
///
/// Parent directories that do not exist are created by the engine (mode 0755, root).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDelivery {
    /// Absolute path inside the container, e.g. `/run/secrets/db_password`.
    pub path: String,
    /// Permission bits, e.g. `0o400` for secrets.
    pub mode: u32,
    /// Owner user ID.
    pub uid: u64,
    /// Owner group ID.
    pub gid: u64,
    /// The bytes; prints and serialises as length and digest only.
    pub content: FileContent,
}

/// File bytes that may be secret.
///
/// `Debug` prints only the length. Serialisation writes only the SHA-256 digest and the
/// length, so plans and snapshots never contain the bytes; a value read back from JSON is
/// *redacted* (it compares equal to the original, by digest, but cannot be delivered).
#[derive(Clone)]
pub struct FileContent {
    bytes: Option<Arc<[u8]>>,
    sha256: String,
    len: usize,
}

impl FileContent {
    /// Wraps bytes that will be delivered.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes: Vec<u8> = bytes.into();
        let sha256 = hex(&Sha256::digest(&bytes));
        let len = bytes.len();
        FileContent { bytes: Some(Arc::from(bytes)), sha256, len }
    }

    /// The bytes, or `None` when this value was deserialised from a redacted form.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// Lowercase hex SHA-256 of the bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for zero bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for FileContent {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "FileContent(<{} bytes>)", self.len)
    }
}

impl PartialEq for FileContent {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.sha256 == other.sha256
    }
}

impl Eq for FileContent {}

/// The serialised, redacted form of [`FileContent`].
#[derive(Serialize, Deserialize)]
struct RedactedContent {
    sha256: String,
    len: usize,
}

impl Serialize for FileContent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RedactedContent { sha256: self.sha256.clone(), len: self.len }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FileContent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let redacted = RedactedContent::deserialize(deserializer)?;
        Ok(FileContent { bytes: None, sha256: redacted.sha256, len: redacted.len })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_content_never_shows_its_bytes_in_debug_or_json() {
        let delivery = FileDelivery {
            path: "/run/secrets/password".into(),
            mode: 0o400,
            uid: 0,
            gid: 0,
            content: FileContent::new("hunter2-very-secret"),
        };
        let debug = format!("{delivery:?}");
        let json = serde_json::to_string(&delivery).expect("serialises");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("19 bytes"), "{debug}");
        assert!(!json.contains("hunter2"), "{json}");
        assert!(json.contains(delivery.content.sha256()), "{json}");
    }

    #[test]
    fn deserialised_content_is_redacted_but_equal_by_digest() {
        let original = FileContent::new(vec![1, 2, 3]);
        let json = serde_json::to_string(&original).expect("serialises");
        let back: FileContent = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, original);
        assert_eq!(back.bytes(), None);
        assert_eq!(original.bytes(), Some(&[1u8, 2, 3][..]));
    }
}
