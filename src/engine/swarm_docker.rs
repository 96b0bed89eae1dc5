//! The [`SwarmEngine`] of a Docker Swarm manager, over the Docker Engine API (bollard): the
//! same [`DockerEngine`] that drives one host, seen from its swarm side.
//!
//! A straight translation: each method is one API operation (or a wait built from the shared
//! task poll, [`super::swarm_poll`]); it decides nothing, retries nothing, names nothing.
//! bollard's types are built and read only in [`super::swarm_convert`]; what the tasks mean
//! for a wait is [`super::swarm_tasks`]. Things worth knowing about the API here:
//!
//! - a stale `version` on an update is HTTP 500 "update out of sequence": a `Conflict`;
//! - name filters are prefix matches, so exact names are matched here after listing;
//! - a service's spec is never read back into the domain (bollard loses its health check);
//!   a rollback still needs a valid body, which the daemon validates and ignores, so the
//!   inspected spec is sent back with `rollback=previous`;
//! - network creation sends `CheckDuplicate` (API 1.41 would otherwise create a second
//!   network of the same name while an old one lingers on a node).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    InspectServiceOptions, ListConfigsOptions, ListImagesOptions, ListNetworksOptions, ListNodesOptions,
    ListSecretsOptions, ListServicesOptions, ListTasksOptions, LogsOptions, UpdateConfigOptions, UpdateServiceOptions,
};
use futures::StreamExt;
use tokio::time::Instant;

use super::convert;
use super::docker::{short_id, DockerEngine};
use super::error::{sanitize, EngineError, Operation};
use super::swarm::{StoredConfig, SwarmEngine};
use super::swarm_convert as to;
use super::swarm_poll::{PollScope, Receiver, Snapshot};
use super::swarm_tasks::{self, PolledService, PolledTask, TaskSnapshot, Verdict, WaitFailure, WaitMemory};
use crate::model::labels::LABEL_STACK;
use crate::model::node::{HostPort, Node};
use crate::model::objects::NetworkSpec;
use crate::model::service::{ObjectSpec, ServiceMode, ServiceSpec};
use crate::model::swarm::{ForeignSwarmNames, ObservedSwarm, ObservedTask, SwarmCandidateNames, TaskState};
use crate::plan::swarm::ServiceWait;

/// How many log lines a failed task's wait error carries.
const FAILURE_LOG_LINES: usize = 20;
/// How long reading a failed task's logs may take: the manager fetches them from the task's
/// node, which may be the one that is gone.
const LOG_PATIENCE: Duration = Duration::from_secs(5);

impl DockerEngine {
    fn swarm_error(&self, operation: Operation, resource: &str, error: BollardError) -> EngineError {
        to::stale_version_is_conflict(self.error(operation, resource, error))
    }

    /// Subscribes to the shared poll of `scope`.
    fn subscribe(&self, scope: &PollScope) -> Receiver {
        let engine = self.clone();
        let polled = scope.clone();
        self.swarm_polls().subscribe(scope, move || {
            let engine = engine.clone();
            let scope = polled.clone();
            async move { engine.poll_tasks(&scope).await }
        })
    }

    /// One poll: every task (history included) and service of `scope`, with status counts.
    async fn poll_tasks(&self, scope: &PollScope) -> Result<TaskSnapshot, EngineError> {
        let (filters, resource) = match scope {
            PollScope::Stack(stack) => (Some(to::label_filter(LABEL_STACK, stack)), format!("stack {stack}")),
            PollScope::Everything => (None, "swarm".to_string()),
        };
        let tasks = self.client().list_tasks(Some(ListTasksOptions { filters: filters.clone() }));
        let services = self.client().list_services(Some(ListServicesOptions { filters, status: Some(true) }));
        let (tasks, services) = tokio::join!(tasks, services);
        let tasks = tasks.map_err(|error| self.error("poll tasks", &resource, error))?;
        let services = services.map_err(|error| self.error("poll services", &resource, error))?;
        let now = SystemTime::now();
        let replicated_jobs: HashSet<String> = services
            .iter()
            .filter_map(to::observed_service)
            .filter(|service| matches!(service.mode, ServiceMode::ReplicatedJob { .. }))
            .map(|service| service.id)
            .collect();
        Ok(TaskSnapshot {
            services: services
                .iter()
                .filter_map(|service| {
                    Some(PolledService {
                        service: to::observed_service(service)?,
                        task_hash: to::service_task_hash(service),
                        job_iteration: to::service_job_iteration(service),
                    })
                })
                .collect(),
            tasks: tasks
                .iter()
                .filter_map(|task| {
                    let slot_zero = task.service_id.as_ref().is_some_and(|id| replicated_jobs.contains(id));
                    Some(PolledTask {
                        task: to::observed_task(task, slot_zero)?,
                        in_state_for: to::task_state_since(task).and_then(|since| now.duration_since(since).ok()),
                        job_iteration: to::task_job_iteration(task),
                    })
                })
                .collect(),
        })
    }

    /// The scope a wait on service `id` polls: its stack, known from `observe` or
    /// `create_service`, else read from the service's labels.
    async fn scope_of(&self, operation: Operation, id: &str, name: &str) -> Result<PollScope, EngineError> {
        if id.is_empty() {
            return Err(invalid(operation, name, "the service's ID is not known (its create step did not run)"));
        }
        if let Some(stack) = self.swarm_polls().stack_of(id) {
            return Ok(PollScope::Stack(stack));
        }
        let service = match self.client().inspect_service(id, None::<InspectServiceOptions>).await {
            Ok(service) => service,
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => return Ok(PollScope::Everything),
            Err(error) => return Err(self.swarm_error(operation, name, error)),
        };
        let stack = service.spec.as_ref().and_then(|spec| spec.labels.as_ref()).and_then(|labels| labels.get(LABEL_STACK));
        Ok(match stack {
            Some(stack) => {
                self.swarm_polls().remember_stack(id, stack);
                PollScope::Stack(stack.clone())
            }
            None => PollScope::Everything,
        })
    }

    /// Node ID → hostname, for messages; empty if the nodes cannot be listed.
    async fn hostnames(&self) -> BTreeMap<String, String> {
        match self.client().list_nodes(None::<ListNodesOptions>).await {
            Ok(nodes) => nodes.iter().filter_map(to::node).map(|node| (node.id, node.hostname)).collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// A task's last log lines (the manager collects them from the task's node), or one line
    /// saying why there are none.
    async fn task_log_evidence(&self, task_id: &str) -> Vec<String> {
        let options = LogsOptions { stdout: true, stderr: true, tail: FAILURE_LOG_LINES.to_string(), ..LogsOptions::default() };
        let read = async {
            let mut stream = self.client().task_logs(task_id, Some(options));
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                bytes.extend_from_slice(chunk?.as_ref());
            }
            Ok::<Vec<u8>, BollardError>(bytes)
        };
        match tokio::time::timeout(LOG_PATIENCE, read).await {
            Err(_) => vec![format!("(logs unavailable: the task's node did not send them within {}s)", LOG_PATIENCE.as_secs())],
            Ok(Err(error)) => vec![format!("(logs unavailable: {})", convert::error_chain(&error))],
            Ok(Ok(bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                let lines: Vec<String> = text.lines().map(sanitize).collect();
                let skip = lines.len().saturating_sub(FAILURE_LOG_LINES);
                if lines.is_empty() {
                    vec!["(no log output)".to_string()]
                } else {
                    lines.into_iter().skip(skip).map(|line| format!("log: {line}")).collect()
                }
            }
        }
    }

    /// Waits on the shared poll until `judge` concludes, a poll fails, or `timeout` passes.
    /// Only polls sent after the wait began count, so a change made just before it (the
    /// update it waits on) is always seen.
    async fn watch<Judge>(&self, scope: &PollScope, timeout: Duration, mut judge: Judge) -> Watched
    where
        Judge: FnMut(&TaskSnapshot) -> Verdict,
    {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut receiver = self.subscribe(scope);
        let mut last = None;
        loop {
            tokio::select! {
                changed = receiver.changed() => {
                    if changed.is_err() {
                        // The pump ended under us (its runtime is shutting down): join a new one.
                        receiver = self.subscribe(scope);
                        continue;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Watched::TimedOut(last),
            }
            let Some(snapshot) = receiver.borrow_and_update().clone() else { continue };
            if snapshot.sent < start {
                continue;
            }
            match &snapshot.result {
                Err(error) => return Watched::PollFailed(error.clone()),
                Ok(tasks) => match judge(tasks) {
                    Verdict::Done => return Watched::Done,
                    Verdict::Failed(failure) => return Watched::Failed(failure),
                    Verdict::Pending => {}
                },
            }
            last = Some(snapshot);
        }
    }
}

/// How [`DockerEngine::watch`] ended.
enum Watched {
    Done,
    /// At the deadline, with the last snapshot seen (none if no poll answered in time).
    TimedOut(Option<Arc<Snapshot>>),
    PollFailed(EngineError),
    Failed(Box<WaitFailure>),
}

/// Sums what `tasks` (not the observed stack's) hold on each node: CPU and memory
/// reservations, a task count, host-mode ports. Only tasks that hold a node count: assigned
/// and not ended, desired to run (or a job's, still running).
fn reserved_by_others(
    nodes: &mut [Node],
    tasks: &[bollard::models::Task],
    ours: &HashSet<String>,
    host_ports: &HashMap<String, Vec<HostPort>>,
) {
    let index: HashMap<String, usize> = nodes.iter().enumerate().map(|(position, node)| (node.id.clone(), position)).collect();
    for task in tasks {
        let Some(observed) = to::observed_task(task, false) else { continue };
        if ours.contains(&observed.service_id) || observed.node_id.is_empty() || observed.state.is_terminal() {
            continue;
        }
        if !matches!(observed.desired_state, TaskState::Running | TaskState::Ready | TaskState::Complete) {
            continue;
        }
        let Some(&position) = index.get(&observed.node_id) else { continue };
        let (nano_cpus, memory_bytes) = to::task_reservation(task);
        let reserved = &mut nodes[position].reserved;
        reserved.nano_cpus = reserved.nano_cpus.saturating_add(nano_cpus);
        reserved.memory_bytes = reserved.memory_bytes.saturating_add(memory_bytes);
        reserved.tasks = reserved.tasks.saturating_add(1);
        reserved.host_ports.extend(host_ports.get(&observed.service_id).into_iter().flatten().cloned());
    }
    for node in nodes {
        node.reserved.host_ports.sort();
        node.reserved.host_ports.dedup();
    }
}

fn invalid(operation: Operation, resource: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid { operation, resource: resource.to_string(), message: message.into() }
}

#[async_trait::async_trait]
impl SwarmEngine for DockerEngine {
    async fn observe(&self, stack: &str, candidates: &SwarmCandidateNames) -> Result<ObservedSwarm, EngineError> {
        let operation = "observe stack";
        let client = self.client();
        let ours = || Some(to::label_filter(LABEL_STACK, stack));
        // Everything at once: the stack's services (with counts) and tasks; every service
        // (foreign names, host ports) and every task that holds a node (reservations); nodes,
        // networks, configs (ours by label, candidates by name: a config list carries every
        // config's data), secrets and images.
        let our_services = client.list_services(Some(ListServicesOptions { filters: ours(), status: Some(true) }));
        let all_services = client.list_services(None::<ListServicesOptions>);
        let our_tasks = client.list_tasks(Some(ListTasksOptions { filters: ours() }));
        let desired = ["running", "ready", "complete"].map(str::to_string).to_vec();
        let busy_tasks = client.list_tasks(Some(ListTasksOptions { filters: Some(to::filter("desired-state", desired)) }));
        let nodes = client.list_nodes(None::<ListNodesOptions>);
        let networks = client.list_networks(None::<ListNetworksOptions>);
        let our_configs = client.list_configs(Some(ListConfigsOptions { filters: ours() }));
        let candidate_configs: Vec<String> = candidates.configs.iter().cloned().collect();
        let named_configs = async {
            if candidate_configs.is_empty() {
                Ok(Vec::new())
            } else {
                client.list_configs(Some(ListConfigsOptions { filters: Some(to::filter("name", candidate_configs.clone())) })).await
            }
        };
        let secrets = client.list_secrets(None::<ListSecretsOptions>);
        let images = client.list_images(None::<ListImagesOptions>);
        let (our_services, all_services, our_tasks, busy_tasks, nodes, networks, our_configs, named_configs, secrets, images) =
            tokio::join!(our_services, all_services, our_tasks, busy_tasks, nodes, networks, our_configs, named_configs, secrets, images);
        let fail = |error| self.error(operation, stack, error);
        let (our_services, all_services, our_tasks, busy_tasks) =
            (our_services.map_err(fail)?, all_services.map_err(fail)?, our_tasks.map_err(fail)?, busy_tasks.map_err(fail)?);
        let (nodes, networks, our_configs, named_configs, secrets, images) = (
            nodes.map_err(fail)?,
            networks.map_err(fail)?,
            our_configs.map_err(fail)?,
            named_configs.map_err(fail)?,
            secrets.map_err(fail)?,
            images.map_err(fail)?,
        );

        let mut observed = ObservedSwarm::default();
        let mut foreign = ForeignSwarmNames::default();
        observed.services = our_services.iter().filter_map(to::observed_service).collect();
        let our_ids: HashSet<String> = observed.services.iter().map(|service| service.id.clone()).collect();
        for service in &observed.services {
            self.swarm_polls().remember_stack(&service.id, stack);
        }
        let replicated_jobs: HashSet<&str> = observed
            .services
            .iter()
            .filter(|service| matches!(service.mode, ServiceMode::ReplicatedJob { .. }))
            .map(|service| service.id.as_str())
            .collect();
        let tasks: Vec<ObservedTask> = our_tasks
            .iter()
            .filter_map(|task| {
                let slot_zero = task.service_id.as_deref().is_some_and(|id| replicated_jobs.contains(id));
                to::observed_task(task, slot_zero)
            })
            .filter(|task| our_ids.contains(&task.service_id))
            .collect();
        observed.tasks = swarm_tasks::current_tasks(tasks);

        let mut host_ports: HashMap<String, Vec<HostPort>> = HashMap::new();
        for service in &all_services {
            let (Some(id), Some(name)) = (service.id.as_ref(), service.spec.as_ref().and_then(|spec| spec.name.as_ref())) else { continue };
            if !our_ids.contains(id) {
                if candidates.services.contains(name) {
                    foreign.services.insert(name.clone());
                }
                host_ports.insert(id.clone(), to::host_ports(service));
            }
        }
        observed.nodes = nodes.iter().filter_map(to::node).collect();
        reserved_by_others(&mut observed.nodes, &busy_tasks, &our_ids, &host_ports);

        for network in &networks {
            let Some(observed_network) = convert::observed_network(network) else { continue };
            let swarm_scope = network.scope.as_deref() == Some("swarm");
            if swarm_scope && to::belongs_to(network.labels.as_ref(), stack) {
                observed.networks.push(observed_network);
            } else if candidates.networks.contains(&observed_network.name) {
                observed.foreign_ids.insert(observed_network.name.clone(), observed_network.id.clone());
                foreign.networks.insert(observed_network.name);
            }
        }
        observed.configs = our_configs.iter().filter_map(to::observed_config).collect();
        for config in named_configs.iter().filter_map(to::observed_config) {
            if candidates.configs.contains(&config.name) && config.labels.get(LABEL_STACK).is_none_or(|value| value != stack) {
                observed.foreign_ids.insert(config.name.clone(), config.id.clone());
                foreign.configs.insert(config.name);
            }
        }
        for secret in secrets.iter().filter_map(to::observed_secret) {
            if secret.labels.get(LABEL_STACK).is_some_and(|value| value == stack) {
                observed.secrets.push(secret);
            } else if candidates.secrets.contains(&secret.name) {
                observed.foreign_ids.insert(secret.name.clone(), secret.id.clone());
                foreign.secrets.insert(secret.name);
            }
        }
        observed.images = Some(images.iter().flat_map(convert::image_references).collect::<BTreeSet<_>>());
        observed.foreign_names = foreign;
        observed.sort();
        Ok(observed)
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let operation = "create network";
        let spec = NetworkSpec { driver: Some(spec.driver.clone().unwrap_or_else(|| "overlay".to_string())), ..spec.clone() };
        let body = convert::network_create_body_checking_duplicates(&spec).map_err(|error| invalid(operation, &spec.name, error.to_string()))?;
        let client = self.client().clone().with_request_modifier(move |mut request| {
            if request.uri().path().ends_with("/networks/create") {
                *request.body_mut() = bollard::body_full(body.clone().into());
            }
            request
        });
        let created = client
            .create_network(convert::network_create_request(&spec))
            .await
            .map_err(|error| self.error(operation, &spec.name, error))?;
        Ok(created.id)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        match self.client().remove_network(id).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove network", &short_id(id), error)),
        }
    }

    async fn create_config(&self, spec: &ObjectSpec) -> Result<String, EngineError> {
        let operation = "create config";
        let body = to::config_spec(spec)
            .ok_or_else(|| invalid(operation, &spec.name, "its content was redacted (a plan read back from a file cannot create it)"))?;
        let created = self.client().create_config(body).await.map_err(|error| self.error(operation, &spec.name, error))?;
        Ok(created.id)
    }

    async fn remove_config(&self, id: &str) -> Result<(), EngineError> {
        match self.client().delete_config(id).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove config", &short_id(id), error)),
        }
    }

    async fn create_secret(&self, spec: &ObjectSpec) -> Result<String, EngineError> {
        let operation = "create secret";
        let body = to::secret_spec(spec)
            .ok_or_else(|| invalid(operation, &spec.name, "its content was redacted (a plan read back from a file cannot create it)"))?;
        // Errors carry the daemon's message and the secret's name, never the body.
        let created = self.client().create_secret(body).await.map_err(|error| self.error(operation, &spec.name, error))?;
        Ok(created.id)
    }

    async fn remove_secret(&self, id: &str) -> Result<(), EngineError> {
        match self.client().delete_secret(id).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove secret", &short_id(id), error)),
        }
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String, EngineError> {
        let operation = "create service";
        let body = to::service_spec(spec).map_err(|message| invalid(operation, &spec.name, message))?;
        let created = self.client().create_service(body, None).await.map_err(|error| self.swarm_error(operation, &spec.name, error))?;
        let id = created.id.ok_or_else(|| EngineError::Api {
            operation,
            resource: spec.name.clone(),
            status: None,
            message: "the engine answered without the new service's ID".to_string(),
        })?;
        if let Some(stack) = spec.labels.get(LABEL_STACK) {
            self.swarm_polls().remember_stack(&id, stack);
        }
        Ok(id)
    }

    async fn update_service(&self, id: &str, version: u64, spec: &ServiceSpec) -> Result<(), EngineError> {
        let operation = "update service";
        let body = to::service_spec(spec).map_err(|message| invalid(operation, &spec.name, message))?;
        let version = i32::try_from(version).map_err(|_| invalid(operation, &spec.name, format!("version {version} is out of the API's range")))?;
        let options = UpdateServiceOptions { version, rollback: None, ..UpdateServiceOptions::default() };
        self.client().update_service(id, body, options, None).await.map_err(|error| self.swarm_error(operation, &spec.name, error))?;
        if let Some(stack) = spec.labels.get(LABEL_STACK) {
            self.swarm_polls().remember_stack(id, stack);
        }
        Ok(())
    }

    async fn rollback_service(&self, id: &str, version: u64) -> Result<(), EngineError> {
        let operation = "rollback service";
        // The daemon validates the body of a rollback and then ignores it: the current spec
        // (as read, health check lost or not) is a valid one.
        let service = self
            .client()
            .inspect_service(id, None::<InspectServiceOptions>)
            .await
            .map_err(|error| self.swarm_error(operation, &short_id(id), error))?;
        let spec = service.spec.unwrap_or_default();
        let name = spec.name.clone().unwrap_or_else(|| short_id(id));
        let version = i32::try_from(version).map_err(|_| invalid(operation, &name, format!("version {version} is out of the API's range")))?;
        let options = UpdateServiceOptions { version, rollback: Some("previous".to_string()), ..UpdateServiceOptions::default() };
        self.client().update_service(id, spec, options, None).await.map_err(|error| self.swarm_error(operation, &name, error))?;
        Ok(())
    }

    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        match self.client().delete_service(id).await {
            Ok(()) | Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(()),
            Err(error) => Err(self.error("remove service", &short_id(id), error)),
        }
    }

    async fn wait_service(&self, wait: &ServiceWait) -> Result<(), EngineError> {
        let operation = swarm_tasks::wait_operation(wait.until);
        let scope = self.scope_of(operation, wait.service.id(), &wait.name).await?;
        let mut memory = WaitMemory::default();
        let outcome = self.watch(&scope, wait.timeout, |tasks| swarm_tasks::judge(wait, tasks, &mut memory, Instant::now())).await;
        match outcome {
            Watched::Done => Ok(()),
            Watched::PollFailed(error) => Err(error),
            Watched::TimedOut(last) => {
                let hostnames = if last.is_some() { self.hostnames().await } else { BTreeMap::new() };
                Err(swarm_tasks::timeout_error(wait, last.as_ref().and_then(|last| last.result.as_ref().ok()), &hostnames))
            }
            Watched::Failed(failure) => {
                let hostnames = self.hostnames().await;
                let logs = match swarm_tasks::failed_task(&failure) {
                    Some(task) => self.task_log_evidence(&task.id).await,
                    None => Vec::new(),
                };
                Err(swarm_tasks::failure_error(wait, &failure, &hostnames, logs))
            }
        }
    }

    async fn wait_tasks_gone(&self, service_ids: &[String], timeout: Duration) -> Result<(), EngineError> {
        let operation = "wait tasks gone";
        let resource = format!("of {} service(s)", service_ids.len());
        let stacks: BTreeSet<Option<String>> = service_ids.iter().map(|id| self.swarm_polls().stack_of(id)).collect();
        let scope = match stacks.into_iter().collect::<Vec<_>>().as_slice() {
            [Some(stack)] => PollScope::Stack(stack.clone()),
            _ => PollScope::Everything,
        };
        let gone: HashSet<&str> = service_ids.iter().map(String::as_str).collect();
        let left = |tasks: &TaskSnapshot| tasks.tasks.iter().filter(|polled| swarm_tasks::holds_on(polled, &gone)).count();
        let outcome = self.watch(&scope, timeout, |tasks| if left(tasks) == 0 { Verdict::Done } else { Verdict::Pending }).await;
        let last = match outcome {
            Watched::Done => return Ok(()),
            Watched::PollFailed(error) => return Err(error),
            Watched::TimedOut(last) => last,
            Watched::Failed(_) => None,
        };
        let hostnames = self.hostnames().await;
        let detail = match last.as_ref().and_then(|last| last.result.as_ref().ok()) {
            None => vec!["no poll of the tasks answered before the deadline".to_string()],
            Some(tasks) => tasks
                .tasks
                .iter()
                .filter(|polled| swarm_tasks::holds_on(polled, &gone))
                .map(|polled| {
                    let task = &polled.task;
                    let node = hostnames.get(&task.node_id).map_or(task.node_id.as_str(), String::as_str);
                    format!("task {} of service {} on {node}: {}", short_id(&task.id), short_id(&task.service_id), task.state.as_str())
                })
                .collect(),
        };
        Err(EngineError::Timeout { operation, resource, after: timeout, detail })
    }

    async fn read_config(&self, name: &str) -> Result<Option<StoredConfig>, EngineError> {
        let operation = "read config";
        // The name filter is a prefix match: keep the exact name only.
        let options = ListConfigsOptions { filters: Some(to::filter("name", vec![name.to_string()])) };
        let configs = self.client().list_configs(Some(options)).await.map_err(|error| self.error(operation, name, error))?;
        let Some(config) = configs.iter().find(|config| config.spec.as_ref().and_then(|spec| spec.name.as_deref()) == Some(name)) else {
            return Ok(None);
        };
        to::stored_config(config, true).map_err(|message| EngineError::Api { operation, resource: name.to_string(), status: None, message })
    }

    async fn list_configs(&self, label: &str, value: &str) -> Result<Vec<StoredConfig>, EngineError> {
        let operation = "list configs";
        let resource = format!("{label}={value}");
        let options = ListConfigsOptions { filters: Some(to::label_filter(label, value)) };
        let configs = self.client().list_configs(Some(options)).await.map_err(|error| self.error(operation, &resource, error))?;
        let mut stored = Vec::new();
        for config in &configs {
            let read = to::stored_config(config, false)
                .map_err(|message| EngineError::Api { operation, resource: resource.clone(), status: None, message })?;
            stored.extend(read);
        }
        stored.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(stored)
    }

    async fn update_config_labels(&self, id: &str, version: u64, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let operation = "update config labels";
        let version = i64::try_from(version).map_err(|_| invalid(operation, name, format!("version {version} is out of the API's range")))?;
        self.client()
            .update_config(id, to::config_labels_spec(name, labels), UpdateConfigOptions { version })
            .await
            .map_err(|error| self.swarm_error(operation, name, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_a_swarm_engine_object() {
        fn object_safe(_: Option<Arc<dyn SwarmEngine>>) {}
        object_safe(None);
        fn is_swarm_engine<T: SwarmEngine>() {}
        is_swarm_engine::<DockerEngine>();
    }

    #[test]
    fn reservations_of_other_stacks_are_summed_per_node() {
        let task = |id: &str, service: &str, node: &str, state: &str, desired: &str, cpus: i64| -> bollard::models::Task {
            serde_json::from_value(serde_json::json!({
                "ID": id, "ServiceID": service, "NodeID": node, "DesiredState": desired, "Status": {"State": state},
                "Spec": {"Resources": {"Reservations": {"NanoCPUs": cpus, "MemoryBytes": 1024}}}
            }))
            .expect("task json")
        };
        let tasks = vec![
            task("1", "foreign", "n1", "running", "running", 100),
            task("2", "foreign", "n1", "starting", "running", 200),
            task("3", "foreign", "n1", "failed", "shutdown", 400),
            task("4", "ours", "n1", "running", "running", 800),
            task("5", "foreign", "", "pending", "running", 1600),
        ];
        let mut nodes = vec![Node::new("n1")];
        let ours = HashSet::from(["ours".to_string()]);
        let ports = HashMap::from([("foreign".to_string(), vec![HostPort { protocol: "tcp".into(), port: 8080 }])]);
        reserved_by_others(&mut nodes, &tasks, &ours, &ports);
        let reserved = &nodes[0].reserved;
        assert_eq!((reserved.nano_cpus, reserved.memory_bytes, reserved.tasks), (300, 2048, 2));
        assert_eq!(reserved.host_ports, [HostPort { protocol: "tcp".into(), port: 8080 }]);
    }
}
