//! An in-memory [`SwarmEngine`] for swarm planner and executor tests: records calls, scripts
//! failures and delays, and lets a test decide how a service's tasks end.
//!
//! It models just enough of a swarm for an executor to run against it; it is not a Docker
//! simulator and must not grow into one:
//! - names are unique per kind (`Conflict`), and a service may refer only to networks,
//!   configs and secrets that exist (`NotFound`), which cannot be removed while it does;
//! - one version index, bumped by every write; an update quoting a stale version is a
//!   `Conflict`; a rollback swaps the spec with the previous one;
//! - tasks, made at once on create, update and rollback: a replicated service gets
//!   `replicas` running tasks, a global one one per node that takes tasks, a job its
//!   completed ones, all carrying the spec hash of their container labels. A change of that
//!   hash replaces the tasks (the old ones shut down); other changes keep them (as Swarm
//!   does); a job runs again on every update;
//! - [`FakeSwarmEngine::wait_service`] judges those tasks by the very rules of the Docker
//!   engine ([`super::swarm_tasks`]), polled every 50 ms of tokio time (paused clocks work);
//! - removing a service takes its tasks with it at once.
//!
//! Calls are recorded as `"<method> <name>"` (`"create_service demo_web"`), naming the object
//! even when the call used its ID. An object created without the `io.swarmctl.stack` label is
//! what `observe` reports as a foreign name. `reserved` on nodes is whatever the test put there.
//!
//! ```
//! # use std::collections::BTreeMap;
//! # use std::time::Duration;
//! # use swarmctl::engine::fake_swarm::FakeSwarmEngine;
//! # use swarmctl::engine::{Scripted, SwarmEngine};
//! # use swarmctl::model::service::{ContainerTemplate, ServiceMode, ServiceSpec};
//! # use swarmctl::plan::swarm::{Expect, ObjectRef, ServiceWait, Until};
//! # tokio_test_block_on(async {
//! let engine = FakeSwarmEngine::new();
//! engine.fail_tasks("demo_db", "task: non-zero exit (1)", 1);
//! let spec = |name: &str| ServiceSpec {
//!     name: name.into(),
//!     labels: BTreeMap::from([("io.swarmctl.stack".into(), "demo".into())]),
//!     mode: ServiceMode::Replicated { replicas: 2 },
//!     container: ContainerTemplate {
//!         image: "web:1".into(),
//!         labels: BTreeMap::from([("io.swarmctl.spec-hash".into(), "h1".into())]),
//!         ..Default::default()
//!     },
//!     ..Default::default()
//! };
//! let web = engine.create_service(&spec("demo_web")).await.unwrap();
//! let db = engine.create_service(&spec("demo_db")).await.unwrap();
//! let wait = |id: &str, name: &str| ServiceWait {
//!     service: ObjectRef::Existing(id.into()),
//!     name: name.into(),
//!     until: Until::Running,
//!     expect: Expect::Replicas(2),
//!     spec_hash: "h1".into(),
//!     stable: Duration::ZERO,
//!     timeout: Duration::from_secs(30),
//! };
//! assert!(engine.wait_service(&wait(&web, "demo_web")).await.is_ok());
//! assert!(engine.wait_service(&wait(&db, "demo_db")).await.is_err());
//! assert_eq!(engine.calls(), ["create_service demo_web", "create_service demo_db", "wait_service demo_web", "wait_service demo_db"]);
//! # });
//! # fn tokio_test_block_on(future: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::error::EngineError;
use super::swarm::{StoredConfig, SwarmEngine};
use super::swarm_tasks::{self, PolledService, PolledTask, TaskSnapshot, Verdict, WaitMemory};
use crate::model::host::ObservedNetwork;
use crate::model::labels::{LABEL_HASH, LABEL_STACK};
use crate::model::node::{Node, Resources, Role};
use crate::model::objects::NetworkSpec;
use crate::model::service::{ObjectSpec, ServiceMode, ServiceSpec};
use crate::model::swarm::{
    ForeignSwarmNames, ObservedObject, ObservedService, ObservedSwarm, ObservedTask, SwarmCandidateNames, TaskState,
};
use crate::plan::swarm::ServiceWait;

pub use super::fake_calls::{Scripted, ANY};
use super::fake_calls::{Calls, InFlight};

/// How often a fake wait looks at the tasks.
const LOOK_INTERVAL: Duration = Duration::from_millis(50);

/// How a service's tasks end up (per service name; the default is [`TaskOutcome::Run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskOutcome {
    /// Running (services) or complete (jobs).
    Run,
    /// Failed with Swarm's error and the container's exit code.
    Fail { error: String, exit_code: i64 },
    /// Pending with the scheduler's reason (`no suitable node (…)`).
    Unschedulable { reason: String },
    /// Starting for ever: never healthy.
    NeverHealthy,
}

/// The in-memory swarm. Cheap to clone; clones share the same world.
#[derive(Clone)]
pub struct FakeSwarmEngine {
    world: Arc<Mutex<World>>,
    calls: Calls,
}

impl Default for FakeSwarmEngine {
    fn default() -> Self {
        FakeSwarmEngine::new()
    }
}

#[derive(Default)]
struct World {
    next_id: u64,
    /// The raft-like index every write bumps.
    index: u64,
    services: BTreeMap<String, FakeService>,
    tasks: Vec<FakeTask>,
    networks: BTreeMap<String, (NetworkSpec, u64)>,
    configs: BTreeMap<String, FakeObject>,
    secrets: BTreeMap<String, FakeObject>,
    nodes: Vec<Node>,
    images: BTreeSet<String>,
    outcomes: BTreeMap<String, TaskOutcome>,
    logs: BTreeMap<String, Vec<String>>,
}

struct FakeService {
    spec: ServiceSpec,
    previous: Option<ServiceSpec>,
    version: u64,
    job_iteration: u64,
    created: String,
    updated: String,
}

struct FakeTask {
    task: ObservedTask,
    since: Instant,
    job_iteration: Option<u64>,
}

struct FakeObject {
    name: String,
    labels: BTreeMap<String, String>,
    data: Vec<u8>,
    version: u64,
}


impl Scripted for FakeSwarmEngine {
    fn calls_of(&self) -> &Calls {
        &self.calls
    }
}

impl std::fmt::Debug for FakeSwarmEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FakeSwarmEngine").field("calls", &self.calls().len()).finish()
    }
}

fn not_found(operation: &'static str, resource: &str, what: &str) -> EngineError {
    EngineError::NotFound { operation, resource: resource.to_string(), message: format!("{what} not found (fake)") }
}

fn conflict(operation: &'static str, resource: &str, message: String) -> EngineError {
    EngineError::Conflict { operation, resource: resource.to_string(), message }
}

fn in_use(operation: &'static str, resource: &str, user: &str) -> EngineError {
    EngineError::Api {
        operation,
        resource: resource.to_string(),
        status: Some(400),
        message: format!("{resource} is in use by service {user} (fake)"),
    }
}

/// A fake timestamp that sorts in creation order.
fn timestamp(serial: u64) -> String {
    format!("2000-01-01T00:00:00.{serial:09}Z")
}

impl FakeSwarmEngine {
    /// A swarm of one ready, active manager node `node-1` (2 CPUs, 4 GiB), nothing else.
    pub fn new() -> Self {
        let mut manager = Node::new("node-1");
        manager.role = Role::Manager;
        manager.resources = Resources { nano_cpus: 2_000_000_000, memory_bytes: 4 << 30 };
        let world = World { nodes: vec![manager], ..World::default() };
        FakeSwarmEngine { world: Arc::new(Mutex::new(world)), calls: Calls::default() }
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ----- scripting -----

    /// How the named service's tasks end from its next create, update or rollback on.
    pub fn set_task_outcome(&self, service_name: &str, outcome: TaskOutcome) {
        self.lock().outcomes.insert(service_name.to_string(), outcome);
    }

    /// The named service's tasks fail with Swarm's `error` and the container's `exit_code`.
    pub fn fail_tasks(&self, service_name: &str, error: &str, exit_code: i64) {
        self.set_task_outcome(service_name, TaskOutcome::Fail { error: error.to_string(), exit_code });
    }

    /// The named service's tasks stay pending: no node meets its constraints.
    pub fn unschedulable(&self, service_name: &str, reason: &str) {
        self.set_task_outcome(service_name, TaskOutcome::Unschedulable { reason: reason.to_string() });
    }

    /// The log lines a failed task of the named service printed (a failed wait's detail).
    pub fn set_task_logs(&self, service_name: &str, lines: &[&str]) {
        self.lock().logs.insert(service_name.to_string(), lines.iter().map(|line| line.to_string()).collect());
    }

    /// Adds a node (global services get a task on it from their next change on).
    pub fn add_node(&self, node: Node) {
        let mut world = self.lock();
        world.nodes.retain(|existing| existing.id != node.id);
        world.nodes.push(node);
    }

    /// Makes an image reference exist on the manager.
    pub fn add_image(&self, reference: &str) {
        self.lock().images.insert(reference.to_string());
    }

    // ----- inspection -----

    /// The current spec of the named service.
    pub fn service(&self, name: &str) -> Option<ServiceSpec> {
        self.lock().services.values().find(|service| service.spec.name == name).map(|service| service.spec.clone())
    }

    /// Every task of the named service, history included, oldest first.
    pub fn tasks(&self, service_name: &str) -> Vec<ObservedTask> {
        let world = self.lock();
        let Some(id) = world.services.iter().find(|(_, service)| service.spec.name == service_name).map(|(id, _)| id.clone()) else {
            return Vec::new();
        };
        world.tasks.iter().filter(|task| task.task.service_id == id).map(|task| task.task.clone()).collect()
    }

    // ----- the call protocol -----

    /// Starts a call: counts it in flight, records it, applies any delay, then any failure.
    async fn begin(&self, operation: &str, resource: &str) -> Result<InFlight<'_>, EngineError> {
        self.calls.begin("fake swarm engine", operation, resource).await
    }

    fn service_name(&self, id: &str) -> String {
        self.lock().services.get(id).map_or_else(|| id.to_string(), |service| service.spec.name.clone())
    }

    fn object_name(&self, id: &str, kind: fn(&World) -> &BTreeMap<String, FakeObject>) -> String {
        let world = self.lock();
        kind(&world).get(id).map_or_else(|| id.to_string(), |object| object.name.clone())
    }

    fn create_object(&self, kind: fn(&mut World) -> &mut BTreeMap<String, FakeObject>, operation: &'static str, spec: &ObjectSpec) -> Result<String, EngineError> {
        let Some(bytes) = spec.data.bytes() else {
            return Err(EngineError::Invalid {
                operation,
                resource: spec.name.clone(),
                message: "its content was redacted (fake)".to_string(),
            });
        };
        let mut world = self.lock();
        let id = world.new_id(&operation.replace(' ', "-"));
        let version = world.bump();
        let objects = kind(&mut world);
        if objects.values().any(|object| object.name == spec.name) {
            return Err(conflict(operation, &spec.name, format!("{} already exists", spec.name)));
        }
        objects.insert(id.clone(), FakeObject { name: spec.name.clone(), labels: spec.labels.clone(), data: bytes.to_vec(), version });
        Ok(id)
    }
}

impl World {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{:08}", self.next_id)
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// `Err(NotFound)` if the spec refers to a network, config or secret that does not exist.
    fn check_references(&self, operation: &'static str, spec: &ServiceSpec) -> Result<(), EngineError> {
        for network in &spec.networks {
            if !self.networks.contains_key(&network.network_id) {
                return Err(not_found(operation, &spec.name, &format!("network {}", network.network_id)));
            }
        }
        for config in &spec.container.configs {
            if !self.configs.contains_key(&config.object_id) {
                return Err(not_found(operation, &spec.name, &format!("config {}", config.object_name)));
            }
        }
        for secret in &spec.container.secrets {
            if !self.secrets.contains_key(&secret.object_id) {
                return Err(not_found(operation, &spec.name, &format!("secret {}", secret.object_name)));
            }
        }
        Ok(())
    }

    /// The name of a service that refers to `id` through `refers`, if any.
    fn user_of(&self, refers: impl Fn(&ServiceSpec) -> bool) -> Option<String> {
        self.services.values().find(|service| refers(&service.spec)).map(|service| service.spec.name.clone())
    }

    /// Makes the service's tasks match its spec (see the module doc).
    fn schedule(&mut self, service_id: &str, rerun_job: bool) {
        let Some(service) = self.services.get(service_id) else { return };
        let spec = service.spec.clone();
        let iteration = service.job_iteration;
        let hash = spec.container.labels.get(LABEL_HASH).cloned();
        let outcome = self.outcomes.get(&spec.name).cloned().unwrap_or(TaskOutcome::Run);
        let eligible: Vec<String> = {
            let mut nodes: Vec<&Node> = self.nodes.iter().filter(|node| node.takes_new_tasks()).collect();
            nodes.sort_by(|a, b| a.hostname.cmp(&b.hostname));
            nodes.into_iter().map(|node| node.id.clone()).collect()
        };
        let units: Vec<(Option<u64>, Option<String>)> = match spec.mode {
            ServiceMode::Replicated { replicas } => (1..=replicas).map(|slot| (Some(slot), None)).collect(),
            ServiceMode::ReplicatedJob { total } => (0..total).map(|slot| (Some(slot), None)).collect(),
            ServiceMode::Global | ServiceMode::GlobalJob => eligible.iter().map(|node| (None, Some(node.clone()))).collect(),
        };
        let job = spec.mode.is_job();
        // Retire what no longer fits: tasks of another hash, of dropped units, of a past run.
        let wanted: BTreeSet<(Option<u64>, Option<String>)> = units.iter().cloned().collect();
        let mut kept: BTreeSet<(Option<u64>, Option<String>)> = BTreeSet::new();
        for task in self.tasks.iter_mut().filter(|task| task.task.service_id == service_id) {
            if task.task.state.is_terminal() && task.task.desired_state != TaskState::Running {
                continue;
            }
            let key = (task.task.slot, task.task.slot.is_none().then(|| task.task.node_id.clone()));
            let current = task.task.spec_hash == hash && wanted.contains(&key) && !(job && rerun_job);
            if current {
                kept.insert(key);
            } else {
                task.task.desired_state = TaskState::Shutdown;
                if !task.task.state.is_terminal() {
                    task.task.state = TaskState::Shutdown;
                    task.task.message = "shutdown".to_string();
                }
            }
        }
        let now = Instant::now();
        let mut round_robin = eligible.iter().cycle();
        for (slot, node) in units {
            if kept.contains(&(slot, node.clone())) {
                continue;
            }
            let node = node.or_else(|| round_robin.next().cloned());
            let (state, desired, message, error, exit_code, node_id) = match (&outcome, node) {
                (TaskOutcome::Unschedulable { reason }, _) => (TaskState::Pending, TaskState::Running, "pending", Some(reason.clone()), None, String::new()),
                (_, None) => (
                    TaskState::Pending,
                    TaskState::Running,
                    "pending",
                    Some("no suitable node (no node available)".to_string()),
                    None,
                    String::new(),
                ),
                (TaskOutcome::Run, Some(node)) if job => (TaskState::Complete, TaskState::Complete, "finished", None, Some(0), node),
                (TaskOutcome::Run, Some(node)) => (TaskState::Running, TaskState::Running, "started", None, None, node),
                (TaskOutcome::NeverHealthy, Some(node)) => (TaskState::Starting, TaskState::Running, "starting", None, None, node),
                (TaskOutcome::Fail { error, exit_code }, Some(node)) => {
                    (TaskState::Failed, TaskState::Shutdown, "started", Some(error.clone()), Some(*exit_code), node)
                }
            };
            let desired = if job && desired == TaskState::Running { TaskState::Complete } else { desired };
            self.next_id += 1;
            let serial = self.next_id;
            self.tasks.push(FakeTask {
                task: ObservedTask {
                    id: format!("task-{serial:08}"),
                    service_id: service_id.to_string(),
                    slot,
                    node_id,
                    state,
                    desired_state: desired,
                    message: message.to_string(),
                    error,
                    exit_code,
                    pid: None,
                    spec_hash: hash.clone(),
                    created: timestamp(serial),
                },
                since: now,
                job_iteration: job.then_some(iteration),
            });
        }
    }

    fn observed_service(&self, id: &str, service: &FakeService) -> ObservedService {
        let live: Vec<&ObservedTask> = self.tasks.iter().map(|task| &task.task).filter(|task| task.service_id == id).collect();
        let running = live.iter().filter(|task| task.state == TaskState::Running).count() as u64;
        let desired = live.iter().filter(|task| task.desired_state == TaskState::Running).count() as u64;
        let completed = self
            .tasks
            .iter()
            .filter(|task| task.task.service_id == id && task.task.state == TaskState::Complete && task.job_iteration == Some(service.job_iteration))
            .count() as u64;
        ObservedService {
            id: id.to_string(),
            name: service.spec.name.clone(),
            version: service.version,
            labels: service.spec.labels.clone(),
            mode: service.spec.mode,
            update: None,
            running_tasks: running,
            desired_tasks: match service.spec.mode {
                ServiceMode::ReplicatedJob { total } => total,
                _ => desired,
            },
            completed_tasks: completed,
            created: service.created.clone(),
            updated: service.updated.clone(),
        }
    }

    fn snapshot(&self) -> TaskSnapshot {
        let now = Instant::now();
        TaskSnapshot {
            services: self
                .services
                .iter()
                .map(|(id, service)| PolledService {
                    service: self.observed_service(id, service),
                    task_hash: service.spec.container.labels.get(LABEL_HASH).cloned(),
                    job_iteration: service.spec.mode.is_job().then_some(service.job_iteration),
                })
                .collect(),
            tasks: self
                .tasks
                .iter()
                .map(|task| PolledTask {
                    task: task.task.clone(),
                    in_state_for: Some(now.saturating_duration_since(task.since)),
                    job_iteration: task.job_iteration,
                })
                .collect(),
        }
    }
}

fn ours(labels: &BTreeMap<String, String>, stack: &str) -> bool {
    labels.get(LABEL_STACK).is_some_and(|value| value == stack)
}

#[async_trait::async_trait]
impl SwarmEngine for FakeSwarmEngine {
    async fn observe(&self, stack: &str, candidates: &SwarmCandidateNames) -> Result<ObservedSwarm, EngineError> {
        let _call = self.begin("observe", stack).await?;
        let world = self.lock();
        let mut observed = ObservedSwarm { nodes: world.nodes.clone(), images: Some(world.images.clone()), ..ObservedSwarm::default() };
        let mut foreign = ForeignSwarmNames::default();
        for (id, service) in &world.services {
            if ours(&service.spec.labels, stack) {
                observed.services.push(world.observed_service(id, service));
            } else if candidates.services.contains(&service.spec.name) {
                foreign.services.insert(service.spec.name.clone());
            }
        }
        let our_ids: BTreeSet<&str> = observed.services.iter().map(|service| service.id.as_str()).collect();
        let tasks = world.tasks.iter().map(|task| task.task.clone()).filter(|task| our_ids.contains(task.service_id.as_str())).collect();
        observed.tasks = swarm_tasks::current_tasks(tasks);
        for (id, (spec, _)) in &world.networks {
            if ours(&spec.labels, stack) {
                observed.networks.push(ObservedNetwork { id: id.clone(), name: spec.name.clone(), labels: spec.labels.clone() });
            } else if candidates.networks.contains(&spec.name) {
                foreign.networks.insert(spec.name.clone());
                observed.foreign_ids.insert(spec.name.clone(), id.clone());
            }
        }
        for (id, config) in &world.configs {
            if ours(&config.labels, stack) {
                observed.configs.push(ObservedObject { id: id.clone(), name: config.name.clone(), labels: config.labels.clone() });
            } else if candidates.configs.contains(&config.name) {
                foreign.configs.insert(config.name.clone());
                observed.foreign_ids.insert(config.name.clone(), id.clone());
            }
        }
        for (id, secret) in &world.secrets {
            if ours(&secret.labels, stack) {
                observed.secrets.push(ObservedObject { id: id.clone(), name: secret.name.clone(), labels: secret.labels.clone() });
            } else if candidates.secrets.contains(&secret.name) {
                foreign.secrets.insert(secret.name.clone());
                observed.foreign_ids.insert(secret.name.clone(), id.clone());
            }
        }
        observed.foreign_names = foreign;
        observed.sort();
        Ok(observed)
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_network", &spec.name).await?;
        let mut world = self.lock();
        if world.networks.values().any(|(network, _)| network.name == spec.name) {
            return Err(conflict("create network", &spec.name, format!("network with name {} already exists", spec.name)));
        }
        let id = world.new_id("network");
        let version = world.bump();
        world.networks.insert(id.clone(), (spec.clone(), version));
        Ok(id)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        let name = self.lock().networks.get(id).map_or_else(|| id.to_string(), |(network, _)| network.name.clone());
        let _call = self.begin("remove_network", &name).await?;
        let mut world = self.lock();
        if let Some(user) = world.user_of(|spec| spec.networks.iter().any(|network| network.network_id == id)) {
            return Err(in_use("remove network", &name, &user));
        }
        world.networks.remove(id);
        Ok(())
    }

    async fn create_config(&self, spec: &ObjectSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_config", &spec.name).await?;
        self.create_object(|world| &mut world.configs, "create config", spec)
    }

    async fn remove_config(&self, id: &str) -> Result<(), EngineError> {
        let name = self.object_name(id, |world| &world.configs);
        let _call = self.begin("remove_config", &name).await?;
        let mut world = self.lock();
        if let Some(user) = world.user_of(|spec| spec.container.configs.iter().any(|config| config.object_id == id)) {
            return Err(in_use("remove config", &name, &user));
        }
        world.configs.remove(id);
        Ok(())
    }

    async fn create_secret(&self, spec: &ObjectSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_secret", &spec.name).await?;
        self.create_object(|world| &mut world.secrets, "create secret", spec)
    }

    async fn remove_secret(&self, id: &str) -> Result<(), EngineError> {
        let name = self.object_name(id, |world| &world.secrets);
        let _call = self.begin("remove_secret", &name).await?;
        let mut world = self.lock();
        if let Some(user) = world.user_of(|spec| spec.container.secrets.iter().any(|secret| secret.object_id == id)) {
            return Err(in_use("remove secret", &name, &user));
        }
        world.secrets.remove(id);
        Ok(())
    }

    async fn create_service(&self, spec: &ServiceSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_service", &spec.name).await?;
        let mut world = self.lock();
        if world.services.values().any(|service| service.spec.name == spec.name) {
            return Err(conflict("create service", &spec.name, format!("service {} already exists", spec.name)));
        }
        world.check_references("create service", spec)?;
        let id = world.new_id("service");
        let version = world.bump();
        let now = timestamp(version);
        world.services.insert(
            id.clone(),
            FakeService { spec: spec.clone(), previous: None, version, job_iteration: 0, created: now.clone(), updated: now },
        );
        world.schedule(&id, false);
        Ok(id)
    }

    async fn update_service(&self, id: &str, version: u64, spec: &ServiceSpec) -> Result<(), EngineError> {
        let _call = self.begin("update_service", &self.service_name(id)).await?;
        let mut world = self.lock();
        let current = world.services.get(id).ok_or_else(|| not_found("update service", &spec.name, "service"))?;
        if current.version != version {
            return Err(conflict("update service", &spec.name, "update out of sequence".to_string()));
        }
        if std::mem::discriminant(&current.spec.mode) != std::mem::discriminant(&spec.mode) {
            return Err(EngineError::Api {
                operation: "update service",
                resource: spec.name.clone(),
                status: Some(501),
                message: "service mode change is not allowed".to_string(),
            });
        }
        world.check_references("update service", spec)?;
        let index = world.bump();
        let Some(service) = world.services.get_mut(id) else { return Err(not_found("update service", &spec.name, "service")) };
        service.previous = Some(std::mem::replace(&mut service.spec, spec.clone()));
        service.version = index;
        service.updated = timestamp(index);
        if spec.mode.is_job() {
            service.job_iteration += 1;
        }
        world.schedule(id, spec.mode.is_job());
        Ok(())
    }

    async fn rollback_service(&self, id: &str, version: u64) -> Result<(), EngineError> {
        let name = self.service_name(id);
        let _call = self.begin("rollback_service", &name).await?;
        let mut world = self.lock();
        let index = world.index + 1;
        let service = world.services.get_mut(id).ok_or_else(|| not_found("rollback service", &name, "service"))?;
        if service.version != version {
            return Err(conflict("rollback service", &name, "update out of sequence".to_string()));
        }
        let Some(previous) = service.previous.take() else {
            return Err(EngineError::Api {
                operation: "rollback service",
                resource: name.clone(),
                status: Some(400),
                message: format!("service {name} does not have a previous spec"),
            });
        };
        service.previous = Some(std::mem::replace(&mut service.spec, previous));
        service.version = index;
        service.updated = timestamp(index);
        let job = service.spec.mode.is_job();
        if job {
            service.job_iteration += 1;
        }
        world.bump();
        world.schedule(id, job);
        Ok(())
    }

    async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        let _call = self.begin("remove_service", &self.service_name(id)).await?;
        let mut world = self.lock();
        if world.services.remove(id).is_some() {
            world.bump();
        }
        world.tasks.retain(|task| task.task.service_id != id);
        Ok(())
    }

    async fn wait_service(&self, wait: &ServiceWait) -> Result<(), EngineError> {
        let _call = self.begin("wait_service", &wait.name).await?;
        let deadline = Instant::now() + wait.timeout;
        let mut memory = WaitMemory::default();
        loop {
            let (snapshot, hostnames) = {
                let world = self.lock();
                (world.snapshot(), world.nodes.iter().map(|node| (node.id.clone(), node.hostname.clone())).collect::<BTreeMap<_, _>>())
            };
            match swarm_tasks::judge(wait, &snapshot, &mut memory, Instant::now()) {
                Verdict::Done => return Ok(()),
                Verdict::Failed(failure) => {
                    let logs = match swarm_tasks::failed_task(&failure) {
                        Some(_) => self.lock().logs.get(&wait.name).cloned().unwrap_or_default().into_iter().map(|line| format!("log: {line}")).collect(),
                        None => Vec::new(),
                    };
                    return Err(swarm_tasks::failure_error(wait, &failure, &hostnames, logs));
                }
                Verdict::Pending => {}
            }
            if Instant::now() >= deadline {
                return Err(swarm_tasks::timeout_error(wait, Some(&snapshot), &hostnames));
            }
            tokio::time::sleep(LOOK_INTERVAL.min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    async fn wait_tasks_gone(&self, service_ids: &[String], timeout: Duration) -> Result<(), EngineError> {
        let _call = self.begin("wait_tasks_gone", &service_ids.join(",")).await?;
        let removed: std::collections::HashSet<&str> = service_ids.iter().map(String::as_str).collect();
        let left = self.lock().snapshot().tasks.iter().filter(|polled| swarm_tasks::holds_on(polled, &removed)).count();
        if left == 0 {
            return Ok(());
        }
        tokio::time::sleep(timeout).await;
        Err(EngineError::Timeout {
            operation: "wait tasks gone",
            resource: format!("of {} service(s)", service_ids.len()),
            after: timeout,
            detail: vec![format!("{left} task(s) left")],
        })
    }

    async fn read_config(&self, name: &str) -> Result<Option<StoredConfig>, EngineError> {
        let _call = self.begin("read_config", name).await?;
        let world = self.lock();
        Ok(world.configs.iter().find(|(_, config)| config.name == name).map(|(id, config)| StoredConfig {
            id: id.clone(),
            name: config.name.clone(),
            version: config.version,
            labels: config.labels.clone(),
            data: config.data.clone(),
        }))
    }

    async fn list_configs(&self, label: &str, value: &str) -> Result<Vec<StoredConfig>, EngineError> {
        let _call = self.begin("list_configs", &format!("{label}={value}")).await?;
        let world = self.lock();
        let mut found: Vec<StoredConfig> = world
            .configs
            .iter()
            .filter(|(_, config)| config.labels.get(label).is_some_and(|found| found == value))
            .map(|(id, config)| StoredConfig { id: id.clone(), name: config.name.clone(), version: config.version, labels: config.labels.clone(), data: Vec::new() })
            .collect();
        found.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(found)
    }

    async fn update_config_labels(&self, id: &str, version: u64, name: &str, labels: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let _call = self.begin("update_config_labels", name).await?;
        let mut world = self.lock();
        let index = world.index + 1;
        let config = world.configs.get_mut(id).ok_or_else(|| not_found("update config labels", name, "config"))?;
        if config.version != version {
            return Err(conflict("update config labels", name, "update out of sequence".to_string()));
        }
        if config.name != name {
            return Err(EngineError::Api {
                operation: "update config labels",
                resource: name.to_string(),
                status: Some(400),
                message: "only updates to Labels are allowed".to_string(),
            });
        }
        config.labels = labels.clone();
        config.version = index;
        world.bump();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::FileContent;
    use crate::model::service::{ContainerTemplate, FileReference};
    use crate::plan::swarm::{Expect, ObjectRef, Until};

    fn spec(name: &str, mode: ServiceMode, hash: &str) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            labels: BTreeMap::from([(LABEL_STACK.into(), "demo".into())]),
            mode,
            container: ContainerTemplate {
                image: "web:1".into(),
                labels: BTreeMap::from([(LABEL_HASH.into(), hash.into())]),
                ..ContainerTemplate::default()
            },
            ..ServiceSpec::default()
        }
    }

    fn wait(id: &str, name: &str, until: Until, expect: Expect, hash: &str) -> ServiceWait {
        ServiceWait {
            service: ObjectRef::Existing(id.into()),
            name: name.into(),
            until,
            expect,
            spec_hash: hash.into(),
            stable: Duration::ZERO,
            timeout: Duration::from_secs(30),
        }
    }

    fn object(name: &str, stack: Option<&str>) -> ObjectSpec {
        ObjectSpec {
            name: name.into(),
            labels: stack.map(|stack| BTreeMap::from([(LABEL_STACK.to_string(), stack.to_string())])).unwrap_or_default(),
            data: FileContent::new("data"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn services_get_tasks_per_mode_and_waits_resolve() {
        let engine = FakeSwarmEngine::new();
        engine.add_node(Node::new("node-2"));
        let web = engine.create_service(&spec("demo_web", ServiceMode::Replicated { replicas: 3 }, "h1")).await.expect("create");
        let agent = engine.create_service(&spec("demo_agent", ServiceMode::Global, "h1")).await.expect("create");
        let job = engine.create_service(&spec("demo_init", ServiceMode::ReplicatedJob { total: 2 }, "h1")).await.expect("create");
        engine.wait_service(&wait(&web, "demo_web", Until::Running, Expect::Replicas(3), "h1")).await.expect("web runs");
        engine.wait_service(&wait(&agent, "demo_agent", Until::Running, Expect::EveryNode, "h1")).await.expect("one per node");
        engine.wait_service(&wait(&job, "demo_init", Until::Completed, Expect::Completions(2), "h1")).await.expect("job completes");
        assert_eq!(engine.tasks("demo_agent").len(), 2);
        let observed = engine.observe("demo", &SwarmCandidateNames::default()).await.expect("observe");
        assert_eq!(observed.services.len(), 3);
        assert_eq!(observed.tasks.len(), 7);
        assert_eq!(observed.nodes.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn versions_move_on_every_write_and_stale_ones_conflict() {
        let engine = FakeSwarmEngine::new();
        let id = engine.create_service(&spec("demo_web", ServiceMode::Replicated { replicas: 1 }, "h1")).await.expect("create");
        let version = engine.observe("demo", &SwarmCandidateNames::default()).await.expect("observe").services[0].version;
        engine.update_service(&id, version, &spec("demo_web", ServiceMode::Replicated { replicas: 1 }, "h2")).await.expect("update");
        let stale = engine.update_service(&id, version, &spec("demo_web", ServiceMode::Replicated { replicas: 1 }, "h3")).await;
        assert!(stale.expect_err("stale").is_conflict());
        let tasks = engine.tasks("demo_web");
        assert_eq!(tasks.iter().filter(|task| task.state == TaskState::Running).map(|task| task.spec_hash.clone()).collect::<Vec<_>>(), [Some("h2".to_string())]);
        let version = engine.observe("demo", &SwarmCandidateNames::default()).await.expect("observe").services[0].version;
        engine.rollback_service(&id, version).await.expect("rollback");
        assert_eq!(engine.service("demo_web").expect("service").container.labels[LABEL_HASH], "h1");
        engine.wait_service(&wait(&id, "demo_web", Until::Running, Expect::Replicas(1), "h1")).await.expect("h1 again");
    }

    #[tokio::test(start_paused = true)]
    async fn scripted_task_outcomes_fail_or_time_out_waits() {
        let engine = FakeSwarmEngine::new();
        engine.fail_tasks("demo_db", "task: non-zero exit (3)", 3);
        engine.set_task_logs("demo_db", &["boom"]);
        engine.unschedulable("demo_big", "no suitable node (insufficient resources on 1 node)");
        engine.set_task_outcome("demo_slow", TaskOutcome::NeverHealthy);
        let db = engine.create_service(&spec("demo_db", ServiceMode::Replicated { replicas: 1 }, "h1")).await.expect("create");
        let big = engine.create_service(&spec("demo_big", ServiceMode::Replicated { replicas: 1 }, "h1")).await.expect("create");
        let slow = engine.create_service(&spec("demo_slow", ServiceMode::Replicated { replicas: 1 }, "h1")).await.expect("create");
        let failed = engine.wait_service(&wait(&db, "demo_db", Until::Running, Expect::Replicas(1), "h1")).await.expect_err("fails");
        assert_eq!(failed.to_string(), "wait running demo_db: task demo_db.1 failed on node-1: task: non-zero exit (3) (exit code 3)\n    log: boom");
        let stuck = engine.wait_service(&wait(&big, "demo_big", Until::Running, Expect::Replicas(1), "h1")).await.expect_err("fails");
        assert!(stuck.to_string().contains("cannot be scheduled: no suitable node"), "{stuck}");
        let slow = engine.wait_service(&wait(&slow, "demo_slow", Until::Running, Expect::Replicas(1), "h1")).await.expect_err("times out");
        assert!(matches!(slow, EngineError::Timeout { .. }), "{slow}");
    }

    #[tokio::test]
    async fn names_are_unique_references_must_exist_and_objects_in_use_stay() {
        let engine = FakeSwarmEngine::new();
        let config = engine.create_config(&object("demo_conf", Some("demo"))).await.expect("create");
        assert!(engine.create_config(&object("demo_conf", Some("demo"))).await.expect_err("duplicate").is_conflict());
        let mut web = spec("demo_web", ServiceMode::Replicated { replicas: 1 }, "h1");
        web.container.configs = vec![FileReference {
            object_id: "missing".into(),
            object_name: "demo_conf".into(),
            target: "/etc/conf".into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        }];
        assert!(engine.create_service(&web).await.expect_err("dangling").is_not_found());
        web.container.configs[0].object_id = config.clone();
        let id = engine.create_service(&web).await.expect("create");
        assert!(engine.remove_config(&config).await.is_err(), "in use");
        engine.remove_service(&id).await.expect("remove");
        engine.remove_config(&config).await.expect("no longer in use");
        engine.remove_config(&config).await.expect("already gone");
        engine.wait_tasks_gone(&[id], Duration::from_secs(1)).await.expect("gone with the service");
    }

    #[tokio::test]
    async fn store_calls_read_exact_names_list_by_label_and_compare_and_swap() {
        let engine = FakeSwarmEngine::new();
        let id = engine.create_config(&object("swarmctl-lock", None)).await.expect("create");
        engine.create_config(&object("swarmctl-lock-2", Some("demo"))).await.expect("create");
        let lock = engine.read_config("swarmctl-lock").await.expect("read").expect("exists");
        assert_eq!(lock.data, b"data");
        assert!(engine.read_config("swarmctl").await.expect("read").is_none());
        let labels = BTreeMap::from([("holder".to_string(), "me".to_string())]);
        engine.update_config_labels(&id, lock.version, "swarmctl-lock", &labels).await.expect("cas");
        assert!(engine.update_config_labels(&id, lock.version, "swarmctl-lock", &labels).await.expect_err("stale").is_conflict());
        let listed = engine.list_configs("holder", "me").await.expect("list");
        assert_eq!(listed.iter().map(|config| config.name.as_str()).collect::<Vec<_>>(), ["swarmctl-lock"]);
        assert!(listed[0].data.is_empty());
    }

    #[tokio::test]
    async fn observe_reports_foreign_names_and_calls_are_named() {
        let engine = FakeSwarmEngine::new();
        engine.create_secret(&object("demo_pw", None)).await.expect("foreign secret");
        engine.create_network(&NetworkSpec { name: "demo_net".into(), ..NetworkSpec::default() }).await.expect("foreign network");
        let candidates = SwarmCandidateNames {
            secrets: BTreeSet::from(["demo_pw".to_string()]),
            networks: BTreeSet::from(["demo_net".to_string(), "demo_other".to_string()]),
            ..SwarmCandidateNames::default()
        };
        let observed = engine.observe("demo", &candidates).await.expect("observe");
        assert_eq!(observed.foreign_names.secrets, BTreeSet::from(["demo_pw".to_string()]));
        assert_eq!(observed.foreign_names.networks, BTreeSet::from(["demo_net".to_string()]));
        engine.fail_once("create_secret", "demo_key");
        assert!(engine.create_secret(&object("demo_key", Some("demo"))).await.is_err());
        assert_eq!(engine.calls(), ["create_secret demo_pw", "create_network demo_net", "observe demo", "create_secret demo_key"]);
    }
}
