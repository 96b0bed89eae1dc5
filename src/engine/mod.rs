//! The only door to the outside world: one engine trait per target and the Docker implementation.
//!
//! Everything before the plan is pure; the planner reads an observed state
//! ([`crate::model::host`]) and emits steps whose payloads are plain specs
//! ([`crate::model::objects`]); the executor calls one engine method per step.
//! Implementations *translate*, they never decide: no retries, no adoption of existing objects,
//! no name choices, no ordering.
//!
//! bollard's types never leave this module: [`convert`] is the only place that maps between
//! them and the domain types, [`docker`] the only place that calls the Docker Engine API.
//!
//! - [`host`]: the [`HostEngine`] trait (containers on one engine) and how each host step maps
//!   onto one of its calls.
//! - [`connect`]: turn `DOCKER_HOST` & co. into a connected [`DockerEngine`].
//! - [`docker`]: the engines of one Docker endpoint.
//! - [`fake`]: an in-memory host engine for executor tests; [`fake_calls`]: the call log and
//!   scripted failures and delays it shares with [`fake_swarm`].
//! - [`swarm`]: the [`SwarmEngine`] trait (services, overlay networks, configs and secrets on
//!   a Swarm manager), implemented for [`DockerEngine`] in `swarm_docker` (conversions in
//!   `swarm_convert`, the waits' shared task poll in `swarm_poll`, what tasks mean for a wait
//!   in `swarm_tasks`), and in memory by [`fake_swarm`].

mod archive;
pub mod connect;
mod convert;
pub mod docker;
mod error;
mod events;
pub mod fake;
pub mod fake_calls;
pub mod fake_swarm;
pub mod host;
pub mod swarm;
mod swarm_convert;
mod swarm_docker;
mod swarm_poll;
mod swarm_tasks;

use serde::{Deserialize, Serialize};

pub use connect::{connect, ConnectOptions, DockerHost};
pub use docker::DockerEngine;
pub use error::{sanitize, EngineError, Operation};
pub use fake::FakeEngine;
pub use fake_calls::Scripted;
pub use fake_swarm::FakeSwarmEngine;
pub use host::HostEngine;
pub use swarm::SwarmEngine;

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

