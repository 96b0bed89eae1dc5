//! The only door to the outside world: the [`Engine`] trait and the types that cross it.
//!
//! Everything before the plan is pure; the planner reads an [`ObservedState`] and emits steps
//! whose payloads are the specs defined here ([`ContainerSpec`], [`NetworkSpec`], …); the
//! executor calls one [`Engine`] method per step. Implementations *translate*, they never
//! decide: no retries, no adoption of existing objects, no name choices, no ordering.
//!
//! bollard's types never leave this module: [`convert`] is the only place that maps between
//! them and the domain types, [`docker`] the only place that calls the Docker Engine API.
//!
//! - [`connect`]: turn `DOCKER_HOST` & co. into a connected [`DockerEngine`].
//! - [`docker`]: the Engine for one Docker host.
//! - [`fake`]: an in-memory Engine for executor tests.

mod archive;
pub mod connect;
mod convert;
pub mod docker;
mod error;
mod events;
pub mod fake;
mod observed;
mod spec;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use connect::{connect, ConnectOptions, DockerHost};
pub use docker::DockerEngine;
pub use error::{sanitize, EngineError, Operation};
pub use fake::FakeEngine;
pub use observed::{
    unix_seconds_to_rfc3339, CandidateNames, ContainerState, ForeignNames, HealthState, ObservedContainer,
    ObservedNetwork, ObservedState, ObservedVolume,
};
pub use spec::{
    BuildSpec, ContainerSpec, FileContent, FileDelivery, Healthcheck, Mount, MountKind, NetworkAttachment,
    NetworkSpec, PortBinding, Resources, RestartPolicy, Ulimit, VolumeSpec,
};

/// Label naming the stack an object belongs to.
pub const LABEL_STACK: &str = "io.swarmctl.stack";
/// Label naming the service a container belongs to.
pub const LABEL_SERVICE: &str = "io.swarmctl.service";
/// Label holding the hash of the spec that produced an object.
pub const LABEL_HASH: &str = "io.swarmctl.spec-hash";
/// Label holding a container's replica number (ordinal for stateful sets).
pub const LABEL_REPLICA: &str = "io.swarmctl.replica";
/// Label holding the service's kind (`deployment`, `job`, …), for `status` without the stack files.
pub const LABEL_KIND: &str = "io.swarmctl.kind";

/// Who the engine is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The engine's unique ID (from `/info`).
    pub id: String,
    /// The host name the engine reports.
    pub name: String,
    /// Engine version, e.g. `20.10.24`.
    pub server_version: String,
    /// The API version in use after negotiation, e.g. `1.41`.
    pub api_version: String,
    /// True when this engine is a swarm manager (then the swarm target applies).
    pub swarm_manager: bool,
}

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitOutcome {
    /// The exit code.
    pub exit_code: i64,
    /// The last log lines (stdout and stderr interleaved), control characters removed.
    pub log_tail: Vec<String>,
}

/// One container engine, as the executor sees it. Each method is one API operation (or a
/// wait); none of them decides anything.
///
/// Identifiers: containers are addressed by ID (a name also works), networks by ID, volumes by
/// name. Removing something that is already gone succeeds.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// Identifies the engine (ID from `/info`) and whether it is a swarm manager.
    async fn info(&self) -> Result<EngineInfo, EngineError>;

    /// Lists what exists for `stack` and which of `candidate_names` foreign objects hold.
    async fn observe(&self, stack: &str, candidate_names: &CandidateNames) -> Result<ObservedState, EngineError>;

    /// Creates a network and returns its ID. Fails with `Conflict` when the name is taken.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError>;

    /// Removes a network by ID; success if it does not exist.
    async fn remove_network(&self, id: &str) -> Result<(), EngineError>;

    /// Creates a named volume (succeeds if a volume with that name exists: the engine's rule).
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError>;

    /// Removes a volume by name; success if it does not exist.
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;

    /// Creates (does not start) a container: on the first network, connects the rest with
    /// their aliases, uploads `files`. Returns its ID. On a failure after the create, the
    /// half-made container is removed again, so a labelled container always means a complete one.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError>;

    /// Starts a created or stopped container.
    async fn start_container(&self, id: &str) -> Result<(), EngineError>;

    /// Stops a container with its own stop signal; `grace` overrides its stop timeout.
    async fn stop_container(&self, id: &str, grace: Option<Duration>) -> Result<(), EngineError>;

    /// Removes a stopped container (not forced); success if it is gone. Its anonymous volumes
    /// (image `VOLUME`s and unnamed mounts) go with it only when `anonymous_volumes` is set.
    async fn remove_container(&self, id: &str, anonymous_volumes: bool) -> Result<(), EngineError>;

    /// Renames a container. Fails with `Conflict` when the new name is taken.
    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), EngineError>;

    /// Resolves when the container is healthy; `WaitFailed` when it is unhealthy or has exited
    /// (carrying the last health check results, or the exit code and last log lines);
    /// `Timeout` after `timeout`.
    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), EngineError>;

    /// Resolves when the container is running (or has exited with code 0); `WaitFailed` when it
    /// exited non-zero; `Timeout` after `timeout`.
    async fn wait_running(&self, id: &str, timeout: Duration) -> Result<(), EngineError>;

    /// Waits for the container to exit and returns its code and last `tail` log lines.
    async fn wait_exit(&self, id: &str, timeout: Duration, tail: usize) -> Result<ExitOutcome, EngineError>;

    /// True when the image reference (tag, digest or ID) exists locally.
    async fn image_exists(&self, reference: &str) -> Result<bool, EngineError>;

    /// Builds and tags an image from a local context directory through the engine.
    async fn build_image(&self, spec: &BuildSpec) -> Result<(), EngineError>;
}
