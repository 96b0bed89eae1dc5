//! The swarm target's engine: services, overlay networks, configs and secrets on a Swarm
//! manager, and the dumb mapping from each [`SwarmOp`] to exactly one of its calls. It also
//! offers the few config calls the in-cluster store needs (the lock lease and the history).

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::EngineError;
use crate::apply::Execute;
use crate::model::objects::NetworkSpec;
use crate::model::service::{ObjectSpec, ServiceSpec};
use crate::model::swarm::{ObservedSwarm, SwarmCandidateNames};
use crate::plan::swarm::{ServiceWait, SwarmOp};

/// A config read back whole: what the in-cluster store keeps its lease and revisions in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConfig {
    pub id: String,
    pub name: String,
    /// The version an update of its labels must quote.
    pub version: u64,
    pub labels: BTreeMap<String, String>,
    pub data: Vec<u8>,
}

/// One Swarm, as the swarm executor and store see it: each method is one API operation (or a
/// wait). Identifiers are IDs; removing something already gone succeeds. A stale version on
/// an update is a [`EngineError::Conflict`] (a race: observe and plan again).
#[async_trait::async_trait]
pub trait SwarmEngine: Send + Sync {
    /// What exists for `stack` (labelled `io.swarmctl.stack`), every node, and which of
    /// `candidates` foreign objects hold.
    async fn observe(&self, stack: &str, candidates: &SwarmCandidateNames) -> Result<ObservedSwarm, EngineError>;

    /// Creates an overlay network (swarm scope) and returns its ID.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError>;

    async fn remove_network(&self, id: &str) -> Result<(), EngineError>;

    /// Creates a config and returns its ID; `Conflict` when the name is taken.
    async fn create_config(&self, spec: &ObjectSpec) -> Result<String, EngineError>;

    async fn remove_config(&self, id: &str) -> Result<(), EngineError>;

    /// Creates a secret and returns its ID; `Conflict` when the name is taken.
    async fn create_secret(&self, spec: &ObjectSpec) -> Result<String, EngineError>;

    async fn remove_secret(&self, id: &str) -> Result<(), EngineError>;

    /// Creates a service and returns its ID.
    async fn create_service(&self, spec: &ServiceSpec) -> Result<String, EngineError>;

    /// Replaces a service's spec; `version` is the index it was observed at.
    async fn update_service(&self, id: &str, version: u64, spec: &ServiceSpec) -> Result<(), EngineError>;

    /// Puts a service back to its previous spec (Swarm keeps one).
    async fn rollback_service(&self, id: &str, version: u64) -> Result<(), EngineError>;

    async fn remove_service(&self, id: &str) -> Result<(), EngineError>;

    /// Resolves when the service's tasks of `wait.spec_hash` reach `wait.until` in the number
    /// expected (and, for running, stay so for `wait.stable`); `WaitFailed` naming the task, its
    /// node, its error and its last log lines when one of them fails or cannot be scheduled;
    /// `Timeout` after `wait.timeout`. All waits of one engine share one poll of the tasks.
    async fn wait_service(&self, wait: &ServiceWait) -> Result<(), EngineError>;

    /// Resolves when no task of these (removed) services is left.
    async fn wait_tasks_gone(&self, service_ids: &[String], timeout: Duration) -> Result<(), EngineError>;

    /// The config named exactly `name`, with its data; `None` when there is none.
    async fn read_config(&self, name: &str) -> Result<Option<StoredConfig>, EngineError>;

    /// Configs carrying `label=value`, without their data.
    async fn list_configs(&self, label: &str, value: &str) -> Result<Vec<StoredConfig>, EngineError>;

    /// Replaces a config's labels, if it is still at `version`; `Conflict` when it moved.
    async fn update_config_labels(&self, id: &str, version: u64, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError>;
}

#[async_trait::async_trait]
impl<E: SwarmEngine + ?Sized> Execute<SwarmOp> for E {
    async fn execute(&self, op: &SwarmOp) -> Result<Option<String>, EngineError> {
        match op {
            SwarmOp::CreateNetwork { spec } => self.create_network(spec).await.map(Some),
            SwarmOp::RemoveNetwork { id, .. } => self.remove_network(id).await.map(|_| None),
            SwarmOp::CreateConfig { spec } => self.create_config(spec).await.map(Some),
            SwarmOp::RemoveConfig { id, .. } => self.remove_config(id).await.map(|_| None),
            SwarmOp::CreateSecret { spec } => self.create_secret(spec).await.map(Some),
            SwarmOp::RemoveSecret { id, .. } => self.remove_secret(id).await.map(|_| None),
            SwarmOp::CreateService { spec, .. } => self.create_service(spec).await.map(Some),
            SwarmOp::UpdateService { id, version, spec, .. } => self.update_service(id, *version, spec).await.map(|_| None),
            SwarmOp::RemoveService { id, .. } => self.remove_service(id).await.map(|_| None),
            SwarmOp::WaitService(wait) => self.wait_service(wait).await.map(|_| None),
            SwarmOp::WaitTasksGone { service_ids, timeout, .. } => self.wait_tasks_gone(service_ids, *timeout).await.map(|_| None),
            SwarmOp::Unavailable { name, reason } => {
                Err(EngineError::WaitFailed { operation: "wait running", resource: format!("service {name}"), reason: reason.clone(), detail: Vec::new() })
            }
        }
    }
}
