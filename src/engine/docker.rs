//! The [`Engine`] for one Docker host, over the Docker Engine API (bollard).
//!
//! A straight translation: each method is one API operation (or a wait built from the event
//! stream and `inspect`). It decides nothing: no retries, no adoption, no naming.
//!
//! Cloning is cheap (the connection pool is shared); share one [`DockerEngine`] across tasks.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerState as InspectedState, NetworkConnectRequest};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, ListImagesOptions,
    ListNetworksOptions, ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    RenameContainerOptions, StopContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;
use tokio::time::Instant;

use super::archive::{context_archive, files_archive, ArchiveError};
use super::convert;
use super::error::{sanitize, EngineError, Operation};
use super::events::ContainerEvents;
use super::swarm_poll::SwarmPolls;
use crate::model::host::{rfc3339_to_unix_seconds, CandidateNames, ContainerState, ForeignNames, HealthState, ObservedState};
use crate::model::objects::{BuildSpec, ContainerSpec, FileDelivery, NetworkAttachment, NetworkSpec, VolumeSpec};
use super::{EngineInfo, ExitOutcome, HostEngine};

/// How many log lines a failed wait carries.
const FAILURE_LOG_LINES: usize = 20;
/// How often waits re-inspect when no event arrives: only a safety net, since the shared event
/// stream replays and resyncs itself; every poll is an inspect a busy engine must answer.
const WAIT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long past a wait's deadline an in-flight inspect may still answer.
const INSPECT_GRACE: Duration = Duration::from_secs(1);
/// Time limit for an image build to start answering (the context upload counts).
const BUILD_REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The Docker Engine API of one host.
#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    host: Arc<str>,
    events: Arc<ContainerEvents>,
    /// The swarm waits' shared task poll ([`super::swarm_docker`]).
    swarm_polls: Arc<SwarmPolls>,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("DockerEngine").field("host", &self.host).finish()
    }
}

impl DockerEngine {
    /// Wraps a connected, version-negotiated client; `host` is how errors name the engine.
    pub(crate) fn from_client(docker: Docker, host: String) -> Self {
        DockerEngine { docker, host: Arc::from(host), events: Arc::default(), swarm_polls: Arc::default() }
    }

    /// The client, for the swarm side of this engine ([`super::swarm_docker`]).
    pub(super) fn client(&self) -> &Docker {
        &self.docker
    }

    /// The shared task poll of this engine's swarm waits.
    pub(super) fn swarm_polls(&self) -> &Arc<SwarmPolls> {
        &self.swarm_polls
    }

    /// The engine's address, e.g. `unix:///var/run/docker.sock`.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub(super) fn error(&self, operation: Operation, resource: &str, error: BollardError) -> EngineError {
        match convert::engine_error(operation, resource, &self.host, error) {
            // bollard does not say which limit ran out; it is the client's request timeout.
            EngineError::Timeout { operation, resource, after, detail } if after.is_zero() => {
                EngineError::Timeout { operation, resource, after: self.docker.timeout(), detail }
            }
            other => other,
        }
    }

    /// The container's name for messages, falling back to the (short) ID.
    async fn describe_container(&self, id: &str) -> String {
        match self.docker.inspect_container(id, None).await {
            Ok(inspected) => inspected
                .name
                .map(|name| name.trim_start_matches('/').to_string())
                .unwrap_or_else(|| short_id(id)),
            Err(_) => short_id(id),
        }
    }

    /// Maps an error on a container addressed by ID, naming the container in the message.
    async fn container_error(&self, operation: Operation, id: &str, error: BollardError) -> EngineError {
        let resource = self.describe_container(id).await;
        self.error(operation, &resource, error)
    }

    /// The last `tail` log lines, stdout and stderr interleaved, control characters removed.
    async fn log_tail(&self, id: &str, tail: usize) -> Result<Vec<String>, BollardError> {
        if tail == 0 {
            return Ok(Vec::new());
        }
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: tail.to_string(),
            ..LogsOptions::default()
        };
        let mut stream = self.docker.logs(id, Some(options));
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(chunk?.as_ref());
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text.lines().map(sanitize).collect();
        let skip = lines.len().saturating_sub(tail);
        Ok(lines.into_iter().skip(skip).collect())
    }

    /// Log lines for a failure report; a failure to read them becomes one explanatory line.
    async fn log_evidence(&self, id: &str, tail: usize) -> Vec<String> {
        match self.log_tail(id, tail).await {
            Ok(lines) if lines.is_empty() => vec!["(no log output)".to_string()],
            Ok(lines) => lines.into_iter().map(|line| format!("log: {line}")).collect(),
            Err(error) => vec![format!("(logs unavailable: {})", convert::error_chain(&error))],
        }
    }

    async fn inspect(&self, operation: Operation, id: &str) -> Result<ContainerInspectResponse, EngineError> {
        self.docker
            .inspect_container(id, None)
            .await
            .map_err(|error| self.error(operation, &short_id(id), error))
    }

    /// Re-inspects `id` on every event about it (or every [`WAIT_POLL_INTERVAL`]) until `judge`
    /// returns a verdict or `timeout` passes; a timeout carries the last state and health log.
    /// Listening starts before the first inspect, so no change in between is missed.
    async fn wait_for<Judge>(
        &self,
        operation: Operation,
        id: &str,
        timeout: Duration,
        mut judge: Judge,
    ) -> Result<(), EngineError>
    where
        Judge: FnMut(&InspectedState, i64) -> Verdict,
    {
        let deadline = Instant::now() + timeout;
        let mut listener = self.events.listen(&self.docker);
        let last_state = loop {
            // A stuck daemon must not stretch the deadline by a whole request timeout.
            let answer = tokio::time::timeout_at(deadline + INSPECT_GRACE, self.inspect(operation, id)).await;
            let Ok(inspected) = answer else {
                let resource = short_id(id);
                let detail = vec!["the engine did not answer an inspect before the deadline".to_string()];
                return Err(EngineError::Timeout { operation, resource, after: timeout, detail });
            };
            let inspected = inspected?;
            let state = inspected.state.unwrap_or_default();
            let restarts = inspected.restart_count.unwrap_or(0);
            match judge(&state, restarts) {
                Verdict::Done => return Ok(()),
                Verdict::Failed(failure) => return Err(self.wait_failure(operation, id, &state, failure).await),
                Verdict::Pending => {}
            }
            let now = Instant::now();
            if now >= deadline {
                break state;
            }
            let nap = WAIT_POLL_INTERVAL.min(deadline - now);
            tokio::select! {
                () = listener.changed(id) => {}
                () = tokio::time::sleep(nap) => {}
            }
        };
        let resource = self.describe_container(id).await;
        let mut detail = vec![format!("state: {}", describe_state(&last_state))];
        detail.extend(convert::health_log_lines(&last_state));
        Err(EngineError::Timeout { operation, resource, after: timeout, detail })
    }

    async fn wait_failure(&self, operation: Operation, id: &str, state: &InspectedState, failure: Failure) -> EngineError {
        let resource = self.describe_container(id).await;
        let (reason, detail) = match failure {
            Failure::NoHealthcheck => {
                return EngineError::Invalid {
                    operation,
                    resource,
                    message: "the container has no health check; wait for it to run instead".into(),
                }
            }
            Failure::Unhealthy => {
                let streak = state.health.as_ref().and_then(|health| health.failing_streak).unwrap_or(0);
                (format!("unhealthy after {streak} consecutive failed health checks"), convert::health_log_lines(state))
            }
            Failure::Exited { code, restarted } => {
                let mut reason = format!("exited with code {code}");
                if restarted {
                    reason.push_str(" and was restarted by its restart policy");
                }
                if let Some(message) = state.error.as_deref().filter(|message| !message.is_empty()) {
                    reason.push_str(&format!(" ({})", sanitize(message)));
                }
                if state.oom_killed == Some(true) {
                    reason.push_str(" (killed: out of memory)");
                }
                (reason, self.log_evidence(id, FAILURE_LOG_LINES).await)
            }
            Failure::Gone(what) => (what.to_string(), Vec::new()),
        };
        EngineError::WaitFailed { operation, resource, reason, detail }
    }
}

/// What a wait concluded from one inspection.
enum Verdict {
    Done,
    Pending,
    Failed(Failure),
}

#[derive(Clone, Copy)]
enum Failure {
    Unhealthy,
    Exited { code: i64, restarted: bool },
    NoHealthcheck,
    Gone(&'static str),
}

pub(super) fn short_id(id: &str) -> String {
    if id.len() == 64 && id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        id[..12].to_string()
    } else {
        id.to_string()
    }
}

fn describe_state(state: &InspectedState) -> String {
    let lifecycle = match convert::inspected_state(state) {
        ContainerState::Created => "created".to_string(),
        ContainerState::Running => "running".to_string(),
        ContainerState::Restarting => "restarting".to_string(),
        ContainerState::Paused => "paused".to_string(),
        ContainerState::Exited { code } => format!("exited ({code})"),
        ContainerState::Dead => "dead".to_string(),
        ContainerState::Removing => "removing".to_string(),
    };
    match convert::inspected_health(state) {
        Some(HealthState::Starting) => format!("{lifecycle}, health starting"),
        Some(HealthState::Healthy) => format!("{lifecycle}, healthy"),
        Some(HealthState::Unhealthy) => format!("{lifecycle}, unhealthy"),
        None => lifecycle,
    }
}

/// The verdict of `wait_healthy` on one inspection. `initial_restarts` is the restart count when
/// the wait began: a restart since means the container died.
fn judge_healthy(state: &InspectedState, restarts: i64, initial_restarts: i64) -> Verdict {
    let lifecycle = convert::inspected_state(state);
    match lifecycle {
        ContainerState::Exited { code } => return Verdict::Failed(Failure::Exited { code, restarted: false }),
        ContainerState::Dead => return Verdict::Failed(Failure::Gone("the container is dead")),
        ContainerState::Removing => return Verdict::Failed(Failure::Gone("the container is being removed")),
        ContainerState::Restarting => {
            let code = state.exit_code.unwrap_or(-1);
            return Verdict::Failed(Failure::Exited { code, restarted: true });
        }
        ContainerState::Running if restarts > initial_restarts => {
            let code = state.exit_code.unwrap_or(-1);
            return Verdict::Failed(Failure::Exited { code, restarted: true });
        }
        ContainerState::Created | ContainerState::Paused | ContainerState::Running => {}
    }
    match convert::inspected_health(state) {
        Some(HealthState::Healthy) if lifecycle == ContainerState::Running => Verdict::Done,
        Some(HealthState::Unhealthy) => Verdict::Failed(Failure::Unhealthy),
        None if lifecycle == ContainerState::Running => Verdict::Failed(Failure::NoHealthcheck),
        _ => Verdict::Pending,
    }
}

/// What stops a container from counting as stable: it is not running (it exited, is being
/// restarted, …), or its health check now fails. A restart seen by its count is the caller's.
fn judge_stable(state: &InspectedState) -> Option<Failure> {
    match convert::inspected_state(state) {
        ContainerState::Running => (convert::inspected_health(state) == Some(HealthState::Unhealthy)).then_some(Failure::Unhealthy),
        ContainerState::Exited { code } => Some(Failure::Exited { code, restarted: false }),
        ContainerState::Restarting => Some(Failure::Exited { code: state.exit_code.unwrap_or(-1), restarted: true }),
        ContainerState::Dead => Some(Failure::Gone("the container is dead")),
        ContainerState::Removing => Some(Failure::Gone("the container is being removed")),
        ContainerState::Created | ContainerState::Paused => Some(Failure::Gone("the container is not running")),
    }
}

fn unix_now_seconds() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The verdict of `wait_running`: running, or exited with 0, is done.
fn judge_running(state: &InspectedState) -> Verdict {
    match convert::inspected_state(state) {
        ContainerState::Running => Verdict::Done,
        ContainerState::Exited { code: 0 } => Verdict::Done,
        ContainerState::Exited { code } => Verdict::Failed(Failure::Exited { code, restarted: false }),
        ContainerState::Restarting => {
            Verdict::Failed(Failure::Exited { code: state.exit_code.unwrap_or(-1), restarted: true })
        }
        ContainerState::Dead => Verdict::Failed(Failure::Gone("the container is dead")),
        ContainerState::Removing => Verdict::Failed(Failure::Gone("the container is being removed")),
        ContainerState::Created | ContainerState::Paused => Verdict::Pending,
    }
}

fn archive_error(operation: Operation, resource: &str, error: ArchiveError) -> EngineError {
    EngineError::Invalid { operation, resource: resource.to_string(), message: error.to_string() }
}

#[async_trait::async_trait]
impl HostEngine for DockerEngine {
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let info = self.docker.info().await.map_err(|error| self.error("read engine info", &self.host, error))?;
        let swarm_manager = info.swarm.as_ref().and_then(|swarm| swarm.control_available).unwrap_or(false);
        Ok(EngineInfo {
            id: info.id.unwrap_or_default(),
            name: info.name.unwrap_or_default(),
            server_version: info.server_version.unwrap_or_default(),
            api_version: self.docker.client_version().to_string(),
            swarm_manager,
        })
    }

    async fn observe(&self, stack: &str, candidate_names: &CandidateNames) -> Result<ObservedState, EngineError> {
        let operation = "observe stack";
        // One list per kind, all four at once. Containers are listed unfiltered so the same
        // answer gives the stack's containers and the foreign names.
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions { all: true, ..ListContainersOptions::default() }));
        let networks = self.docker.list_networks(None::<ListNetworksOptions>);
        let volumes = self.docker.list_volumes(None::<ListVolumesOptions>);
        let images = self.docker.list_images(None::<ListImagesOptions>);
        let (containers, networks, volumes, images) = tokio::join!(containers, networks, volumes, images);
        let containers = containers.map_err(|error| self.error(operation, stack, error))?;
        let networks = networks.map_err(|error| self.error(operation, stack, error))?;
        let volumes = volumes.map_err(|error| self.error(operation, stack, error))?.volumes.unwrap_or_default();
        let images = images.map_err(|error| self.error(operation, stack, error))?;

        let mut observed = ObservedState::default();
        let mut foreign = ForeignNames::default();
        for summary in &containers {
            if convert::belongs_to(summary.labels.as_ref(), stack) {
                observed.containers.extend(convert::observed_container(summary));
            } else {
                observed.foreign_ports.extend(convert::published_ports(summary));
                let names = summary.names.iter().flatten().map(|name| name.trim_start_matches('/'));
                for name in names.filter(|name| !name.contains('/')) {
                    if candidate_names.containers.contains(name) {
                        foreign.containers.insert(name.to_string());
                    }
                }
            }
        }
        for network in &networks {
            if convert::belongs_to(network.labels.as_ref(), stack) {
                observed.networks.extend(convert::observed_network(network));
            } else if let Some(name) = network.name.as_ref().filter(|name| candidate_names.networks.contains(*name)) {
                foreign.networks.insert(name.clone());
            }
        }
        for volume in &volumes {
            if convert::belongs_to(Some(&volume.labels), stack) {
                observed.volumes.push(convert::observed_volume(volume));
            } else if candidate_names.volumes.contains(&volume.name) {
                foreign.volumes.insert(volume.name.clone());
            }
        }
        observed.images = images.iter().flat_map(convert::image_references).collect();
        observed.foreign_names = foreign;
        // The engine's host is this machine only through a local socket.
        if self.host.starts_with("unix://") {
            observed.missing_host_paths = candidate_names.host_paths.iter().filter(|p| !std::path::Path::new(p).exists()).cloned().collect();
        }
        // The list's status text ("Exited (0) 3 seconds ago") is for people; a job's exit code
        // decides whether it runs again, so it comes from the inspected state.
        let exited: Vec<usize> = observed.containers.iter().enumerate().filter(|(_, c)| matches!(c.state, ContainerState::Exited { .. })).map(|(i, _)| i).collect();
        let codes = futures::future::join_all(exited.iter().map(|&i| self.inspect(operation, &observed.containers[i].id))).await;
        for (&i, inspected) in exited.iter().zip(codes) {
            // Gone meanwhile: the next observe will not see it either.
            if let Ok(code) = inspected.map(|c| c.state.and_then(|s| s.exit_code)) {
                observed.containers[i].state = ContainerState::Exited { code: code.unwrap_or(-1) };
            }
        }
        observed.sort();
        Ok(observed)
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let operation = "create network";
        // bollard models API ≥ 1.44, where the engine always refuses duplicate names and the
        // `CheckDuplicate` field is gone. API 1.41 (Engine 20.10) creates a second network with
        // the same name unless `CheckDuplicate` is sent, so send it: the body is bollard's
        // request plus that one field.
        let body = convert::network_create_body_checking_duplicates(spec).map_err(|error| EngineError::Invalid {
            operation,
            resource: spec.name.clone(),
            message: error.to_string(),
        })?;
        let client = self.docker.clone().with_request_modifier(move |mut request| {
            if request.uri().path().ends_with("/networks/create") {
                *request.body_mut() = bollard::body_full(body.clone().into());
            }
            request
        });
        let created = client
            .create_network(convert::network_create_request(spec))
            .await
            .map_err(|error| self.error(operation, &spec.name, error))?;
        Ok(created.id)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(id).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove network", &short_id(id), error)),
        }
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError> {
        self.docker
            .create_volume(convert::volume_create_request(spec))
            .await
            .map(|_| ())
            .map_err(|error| self.error("create volume", &spec.name, error))
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_volume(name, Some(RemoveVolumeOptions { force: false })).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove volume", name, error)),
        }
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let name = spec.name.as_str();
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            platform: spec.platform.clone().unwrap_or_default(),
        };
        let with_mac = convert::container_create_body_with_mac_address(spec)
            .map_err(|error| EngineError::Invalid { operation: "create container", resource: name.to_string(), message: error.to_string() })?;
        let client = match with_mac {
            Some(body) => self.docker.clone().with_request_modifier(move |mut request| {
                if request.uri().path().ends_with("/containers/create") {
                    *request.body_mut() = bollard::body_full(body.clone().into());
                }
                request
            }),
            None => self.docker.clone(),
        };
        let created = client
            .create_container(Some(options), convert::container_create_body(spec))
            .await
            .map_err(|error| self.error("create container", name, error))?;
        Ok(created.id)
    }

    async fn connect_network(&self, id: &str, attachment: &NetworkAttachment) -> Result<(), EngineError> {
        let request = NetworkConnectRequest { container: id.to_string(), endpoint_config: Some(convert::endpoint_settings(attachment)) };
        match self.docker.connect_network(&attachment.network_id, request).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let container = self.describe_container(id).await;
                Err(self.error("connect network", &format!("{} to container {container}", short_id(&attachment.network_id)), error))
            }
        }
    }

    async fn copy_files(&self, id: &str, files: &[FileDelivery]) -> Result<(), EngineError> {
        let operation = "copy files";
        let archive = files_archive(files).map_err(|error| archive_error(operation, &short_id(id), error))?;
        let options = UploadToContainerOptions { path: "/".to_string(), ..UploadToContainerOptions::default() };
        match self.docker.upload_to_container(id, Some(options), bollard::body_full(archive.into())).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.container_error(operation, id, error).await),
        }
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.container_error("start container", id, error).await),
        }
    }

    async fn stop_container(&self, id: &str, grace: Option<Duration>) -> Result<(), EngineError> {
        let seconds = grace.map(|grace| grace.as_secs() + u64::from(grace.subsec_nanos() > 0));
        let options = StopContainerOptions {
            signal: None,
            t: seconds.map(|seconds| i32::try_from(seconds).unwrap_or(i32::MAX)),
        };
        // The engine answers only once the container is down, up to the grace period later.
        let patience = self.docker.timeout() + Duration::from_secs(seconds.unwrap_or(0) + 30);
        let client = self.docker.clone().with_timeout(patience);
        match client.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.container_error("stop container", id, error).await),
        }
    }

    async fn remove_container(&self, id: &str, anonymous_volumes: bool) -> Result<(), EngineError> {
        let options = RemoveContainerOptions { force: false, v: anonymous_volumes, link: false };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.container_error("remove container", id, error).await),
        }
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptions { name: new_name.to_string() };
        match self.docker.rename_container(id, options).await {
            Ok(()) => Ok(()),
            Err(error) => {
                let current = self.describe_container(id).await;
                Err(self.error("rename container", &format!("{current} to {new_name}"), error))
            }
        }
    }

    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let operation = "wait healthy";
        let initial_restarts = self.inspect(operation, id).await?.restart_count.unwrap_or(0);
        self.wait_for(operation, id, timeout, |state, restarts| judge_healthy(state, restarts, initial_restarts))
            .await
    }

    async fn wait_running(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        self.wait_for("wait running", id, timeout, |state, _| judge_running(state)).await
    }

    async fn wait_stable(&self, id: &str, stable: Duration, from_start: bool) -> Result<(), EngineError> {
        let operation = "wait stable";
        // Listening starts before the first look, so an exit in between is not missed.
        let mut listener = self.events.listen(&self.docker);
        let first = self.inspect(operation, id).await?;
        let restarts = first.restart_count.unwrap_or(0);
        let state = first.state.unwrap_or_default();
        // Measured from the container's own start: one that has been up longer already costs
        // nothing. Clock skew with a remote engine is bounded by `stable`.
        let up_for = state
            .started_at
            .as_deref()
            .and_then(rfc3339_to_unix_seconds)
            .filter(|_| from_start)
            .map(|started| (unix_now_seconds() - started).clamp(0.0, stable.as_secs_f64()))
            .unwrap_or(0.0);
        let deadline = Instant::now() + stable.saturating_sub(Duration::from_secs_f64(up_for));
        let mut state = state;
        loop {
            if let Some(failure) = judge_stable(&state) {
                return Err(self.wait_failure(operation, id, &state, failure).await);
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
            tokio::select! {
                () = listener.changed(id) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
            let inspected = self.inspect(operation, id).await?;
            if inspected.restart_count.unwrap_or(0) > restarts {
                let state = inspected.state.unwrap_or_default();
                let code = state.exit_code.unwrap_or(-1);
                return Err(self.wait_failure(operation, id, &state, Failure::Exited { code, restarted: true }).await);
            }
            state = inspected.state.unwrap_or_default();
        }
    }

    async fn wait_exit(&self, id: &str, timeout: Duration, tail: usize) -> Result<ExitOutcome, EngineError> {
        let operation = "wait exit";
        let options = WaitContainerOptions { condition: "not-running".to_string() };
        let mut wait = self.docker.wait_container(id, Some(options));
        let exit_code = match tokio::time::timeout(timeout, wait.next()).await {
            Err(_) => {
                let resource = self.describe_container(id).await;
                return Err(EngineError::Timeout {
                    operation,
                    resource,
                    after: timeout,
                    detail: self.log_evidence(id, FAILURE_LOG_LINES.min(tail.max(1))).await,
                });
            }
            Ok(Some(Ok(response))) => response.status_code,
            Ok(Some(Err(BollardError::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(error))) => return Err(self.container_error(operation, id, error).await),
            Ok(None) => {
                let inspected = self.inspect(operation, id).await?;
                inspected.state.and_then(|state| state.exit_code).unwrap_or(-1)
            }
        };
        let log_tail = self.log_tail(id, tail).await.map_err(|error| self.error("read logs", &short_id(id), error))?;
        Ok(ExitOutcome { exit_code, log_tail })
    }

    async fn image_exists(&self, reference: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
            Err(error) => Err(self.error("inspect image", reference, error)),
        }
    }

    async fn build_image(&self, spec: &BuildSpec) -> Result<(), EngineError> {
        let operation = "build image";
        let resource = spec.tag.as_str();
        let dockerfile = if spec.dockerfile.is_empty() { "Dockerfile" } else { spec.dockerfile.as_str() };
        if !spec.context.join(dockerfile).is_file() {
            return Err(EngineError::Invalid {
                operation,
                resource: resource.to_string(),
                message: format!("{} does not exist in the context {}", dockerfile, spec.context.display()),
            });
        }
        let context = spec.context.clone();
        let archive = tokio::task::spawn_blocking(move || context_archive(&context))
            .await
            .map_err(|error| EngineError::Api {
                operation,
                resource: resource.to_string(),
                status: None,
                message: format!("archiving the context failed: {error}"),
            })?
            .map_err(|error| archive_error(operation, resource, error))?;
        let options = BuildImageOptions {
            dockerfile: dockerfile.to_string(),
            t: Some(spec.tag.clone()),
            rm: true,
            forcerm: true,
            nocache: spec.no_cache,
            buildargs: Some(spec.build_args.clone().into_iter().collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            target: spec.target.clone().unwrap_or_default(),
            ..BuildImageOptions::default()
        };
        let client = self.docker.clone().with_timeout(BUILD_REQUEST_TIMEOUT);
        let mut progress = client.build_image(options, None, Some(bollard::body_full(archive.into())));
        let mut recent: VecDeque<String> = VecDeque::with_capacity(FAILURE_LOG_LINES);
        while let Some(item) = progress.next().await {
            let info = match item {
                Ok(info) => info,
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(EngineError::WaitFailed {
                        operation,
                        resource: resource.to_string(),
                        reason: sanitize(&error),
                        detail: recent.into(),
                    });
                }
                Err(error) => return Err(self.error(operation, resource, error)),
            };
            if let Some(message) = info.error_detail.and_then(|detail| detail.message) {
                return Err(EngineError::WaitFailed {
                    operation,
                    resource: resource.to_string(),
                    reason: sanitize(message.trim()),
                    detail: recent.into(),
                });
            }
            for line in info.stream.iter().flat_map(|text| text.lines()) {
                let line = sanitize(line.trim_end());
                if line.is_empty() {
                    continue;
                }
                if recent.len() == FAILURE_LOG_LINES {
                    recent.pop_front();
                }
                recent.push_back(line);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStateStatusEnum, Health, HealthStatusEnum};

    fn state(status: ContainerStateStatusEnum, health: Option<HealthStatusEnum>, exit_code: i64) -> InspectedState {
        InspectedState {
            status: Some(status),
            exit_code: Some(exit_code),
            health: health.map(|status| Health { status: Some(status), ..Health::default() }),
            ..InspectedState::default()
        }
    }

    #[test]
    fn the_engine_can_be_shared_across_tasks_and_used_as_a_trait_object() {
        fn shareable<T: Send + Sync + Clone + 'static>() {}
        fn object_safe(_: Option<std::sync::Arc<dyn HostEngine>>) {}
        shareable::<DockerEngine>();
        object_safe(None);
    }

    #[test]
    fn healthy_running_container_is_done() {
        let running = state(ContainerStateStatusEnum::RUNNING, Some(HealthStatusEnum::HEALTHY), 0);
        assert!(matches!(judge_healthy(&running, 0, 0), Verdict::Done));
    }

    #[test]
    fn a_restart_during_the_wait_is_a_failure_even_if_healthy_again() {
        let running = state(ContainerStateStatusEnum::RUNNING, Some(HealthStatusEnum::HEALTHY), 1);
        assert!(matches!(judge_healthy(&running, 1, 0), Verdict::Failed(Failure::Exited { restarted: true, .. })));
    }

    #[test]
    fn starting_is_pending_and_unhealthy_fails() {
        let starting = state(ContainerStateStatusEnum::RUNNING, Some(HealthStatusEnum::STARTING), 0);
        assert!(matches!(judge_healthy(&starting, 0, 0), Verdict::Pending));
        let unhealthy = state(ContainerStateStatusEnum::RUNNING, Some(HealthStatusEnum::UNHEALTHY), 0);
        assert!(matches!(judge_healthy(&unhealthy, 0, 0), Verdict::Failed(Failure::Unhealthy)));
    }

    #[test]
    fn running_without_healthcheck_cannot_become_healthy() {
        let plain = state(ContainerStateStatusEnum::RUNNING, None, 0);
        assert!(matches!(judge_healthy(&plain, 0, 0), Verdict::Failed(Failure::NoHealthcheck)));
    }

    #[test]
    fn wait_running_accepts_a_clean_exit_and_refuses_a_failed_one() {
        assert!(matches!(judge_running(&state(ContainerStateStatusEnum::EXITED, None, 0)), Verdict::Done));
        assert!(matches!(
            judge_running(&state(ContainerStateStatusEnum::EXITED, None, 2)),
            Verdict::Failed(Failure::Exited { code: 2, .. })
        ));
        assert!(matches!(judge_running(&state(ContainerStateStatusEnum::CREATED, None, 0)), Verdict::Pending));
    }
}
