//! The host target's engine: containers, networks and volumes on one Docker engine, and the
//! dumb mapping from each [`HostOp`] to exactly one of its calls.

use std::time::Duration;

use super::error::EngineError;
use super::{EngineInfo, ExitOutcome};
use crate::apply::Execute;
use crate::model::host::{CandidateNames, ObservedState};
use crate::model::objects::{BuildSpec, ContainerSpec, FileDelivery, NetworkAttachment, NetworkSpec, VolumeSpec};
use crate::plan::host::HostOp;

/// One container engine, as the host executor sees it. Each method is one API operation (or a
/// wait); none of them decides anything.
///
/// Identifiers: containers are addressed by ID (a name also works), networks by ID, volumes by
/// name. Removing something that is already gone succeeds.
#[async_trait::async_trait]
pub trait HostEngine: Send + Sync {
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

    /// Creates (does not start) a container, on its one network if it has one. Returns its ID.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError>;

    /// Connects a created container to one more network, with DNS aliases.
    async fn connect_network(&self, id: &str, attachment: &NetworkAttachment) -> Result<(), EngineError>;

    /// Writes files (configs, secrets) into a created container, before it starts.
    async fn copy_files(&self, id: &str, files: &[FileDelivery]) -> Result<(), EngineError>;

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

    /// Resolves once the running container has been up for `stable` since it started (or, with
    /// `from_start` false, from now: a rollout's `min_ready`), without exiting, restarting or
    /// turning unhealthy (`WaitFailed` with its exit code and last log lines if it does):
    /// "converged" means it stays up, not that it was up for an instant.
    async fn wait_stable(&self, id: &str, stable: Duration, from_start: bool) -> Result<(), EngineError>;

    /// Waits for the container to exit and returns its code and last `tail` log lines.
    async fn wait_exit(&self, id: &str, timeout: Duration, tail: usize) -> Result<ExitOutcome, EngineError>;

    /// True when the image reference (tag, digest or ID) exists locally.
    async fn image_exists(&self, reference: &str) -> Result<bool, EngineError>;

    /// Builds and tags an image from a local context directory through the engine.
    async fn build_image(&self, spec: &BuildSpec) -> Result<(), EngineError>;
}

#[async_trait::async_trait]
impl<E: HostEngine + ?Sized> Execute<HostOp> for E {
    async fn execute(&self, op: &HostOp) -> Result<Option<String>, EngineError> {
        match op {
            HostOp::CreateNetwork { spec } => self.create_network(spec).await.map(Some),
            HostOp::RemoveNetwork { id, .. } => self.remove_network(id).await.map(|_| None),
            HostOp::CreateVolume { spec } => self.create_volume(spec).await.map(|_| None),
            HostOp::RemoveVolume { name } => self.remove_volume(name).await.map(|_| None),
            HostOp::BuildImage { spec } => self.build_image(spec).await.map(|_| None),
            HostOp::CreateContainer { spec, .. } => self.create_container(spec).await.map(Some),
            HostOp::ConnectNetwork { container, attachment, .. } => self.connect_network(container.id(), attachment).await.map(|_| None),
            HostOp::CopyFiles { container, files, .. } => self.copy_files(container.id(), files).await.map(|_| None),
            HostOp::RenameContainer { container, to, .. } => self.rename_container(container.id(), to).await.map(|_| None),
            HostOp::StartContainer { container, .. } => self.start_container(container.id()).await.map(|_| None),
            HostOp::StopContainer { id, grace, .. } => self.stop_container(id, *grace).await.map(|_| None),
            HostOp::RemoveContainer { id, anonymous_volumes, .. } => self.remove_container(id, *anonymous_volumes).await.map(|_| None),
            HostOp::WaitRunning { container, timeout, .. } => self.wait_running(container.id(), *timeout).await.map(|_| None),
            HostOp::WaitHealthy { container, timeout, .. } => self.wait_healthy(container.id(), *timeout).await.map(|_| None),
            HostOp::WaitStable { container, stable, .. } => self.wait_stable(container.id(), *stable, true).await.map(|_| None),
            HostOp::WaitMinReady { container, min_ready, .. } => self.wait_stable(container.id(), *min_ready, false).await.map(|_| None),
            HostOp::WaitCompleted { container, timeout, name } => {
                let outcome = self.wait_exit(container.id(), *timeout, 20).await?;
                if outcome.exit_code == 0 {
                    Ok(None)
                } else {
                    Err(EngineError::WaitFailed {
                        operation: "wait completed",
                        resource: name.clone(),
                        reason: format!("job exited with code {}", outcome.exit_code),
                        detail: outcome.log_tail,
                    })
                }
            }
        }
    }
}
