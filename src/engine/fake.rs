//! An in-memory [`Engine`] for executor tests: records calls, scripts failures, delays,
//! health outcomes and exit codes, and measures concurrency.
//!
//! It models just enough of the engine for an executor to run against it (names are unique,
//! a running container cannot be removed, removing something gone succeeds); it is not a
//! Docker simulator and must not grow into one. Calls are recorded as `"<method> <name>"`,
//! e.g. `"create_container demo-web-1"`, using the container's *current* name even when the
//! call was made with its ID.
//!
//! ```
//! # use std::time::Duration;
//! # use swarmctl::engine::{FakeEngine, HostEngine, Scripted};
//! # use swarmctl::model::objects::ContainerSpec;
//! # tokio_test_block_on(async {
//! let engine = FakeEngine::new();
//! engine.fail_on("start_container", "demo-web-1");
//! let spec = ContainerSpec { name: "demo-web-1".into(), image: "web:1".into(), ..Default::default() };
//! let id = engine.create_container(&spec).await.unwrap();
//! assert!(engine.start_container(&id).await.is_err());
//! assert_eq!(engine.calls(), ["create_container demo-web-1", "start_container demo-web-1"]);
//! # });
//! # fn tokio_test_block_on(future: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::error::EngineError;
use crate::model::host::{
    is_anonymous_volume, CandidateNames, ContainerState, ForeignNames, HealthState, ObservedContainer, ObservedNetwork, ObservedState,
    ObservedVolume,
};
use crate::model::objects::{BuildSpec, ContainerSpec, FileDelivery, MountKind, NetworkAttachment, NetworkSpec, VolumeSpec};
use super::{EngineInfo, ExitOutcome, HostEngine};
use crate::model::labels::LABEL_STACK;

pub use super::fake_calls::{Scripted, ANY};
use super::fake_calls::{Calls, InFlight};

/// The health a container reaches in [`Engine::wait_healthy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeHealth {
    /// Becomes healthy (the default).
    Healthy,
    /// Becomes unhealthy: the wait fails with `WaitFailed`.
    Unhealthy,
    /// Stays starting: the wait runs into its timeout.
    NeverHealthy,
}

/// The in-memory engine. Cheap to clone; clones share the same world.
#[derive(Clone, Default)]
pub struct FakeEngine {
    world: Arc<Mutex<World>>,
    calls: Calls,
}

#[derive(Default)]
struct World {
    next_id: u64,
    /// By ID.
    containers: BTreeMap<String, ObservedContainer>,
    /// By ID.
    networks: BTreeMap<String, ObservedNetwork>,
    /// By name.
    volumes: BTreeMap<String, ObservedVolume>,
    images: BTreeSet<String>,
    health: BTreeMap<String, FakeHealth>,
    /// `KEY=value` in a container's environment → the health it reaches (a new version that
    /// never gets healthy, whatever its container is named).
    health_by_env: Vec<(String, FakeHealth)>,
    /// By container ID: the health its environment scripted.
    scripted_health: BTreeMap<String, FakeHealth>,
    /// Containers with a health check: they start `starting`, like the engine's.
    checked: BTreeSet<String>,
    exit_codes: BTreeMap<String, i64>,
    logs: BTreeMap<String, Vec<String>>,
    /// Every container after each change, when recording.
    states: Option<Vec<Vec<ObservedContainer>>>,
}

impl World {
    fn health_of(&self, id: &str, name: &str) -> Option<FakeHealth> {
        self.health.get(name).or_else(|| self.scripted_health.get(id)).copied()
    }

    /// Keeps the containers as they are now, when recording.
    fn record(&mut self) {
        let now: Vec<ObservedContainer> = self.containers.values().cloned().collect();
        if let Some(states) = self.states.as_mut() {
            states.push(now);
        }
    }
}


impl Scripted for FakeEngine {
    fn calls_of(&self) -> &Calls {
        &self.calls
    }
}

impl std::fmt::Debug for FakeEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("FakeEngine").field("calls", &self.calls().len()).finish()
    }
}

impl FakeEngine {
    /// An empty world.
    pub fn new() -> Self {
        FakeEngine::default()
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ----- scripting -----

    /// The health the named container reaches (default [`FakeHealth::Healthy`]).
    pub fn set_health(&self, container_name: &str, health: FakeHealth) {
        self.lock().health.insert(container_name.to_string(), health);
    }

    /// The health every container created from now on with `entry` (`KEY=value`) in its
    /// environment reaches.
    pub fn set_health_by_env(&self, entry: &str, health: FakeHealth) {
        self.lock().health_by_env.push((entry.to_string(), health));
    }

    /// From now on, keeps every container after each change (see [`FakeEngine::states`]).
    pub fn record_states(&self) {
        let mut world = self.lock();
        world.states = Some(Vec::new());
        world.record();
    }

    /// The containers after each change since [`FakeEngine::record_states`].
    pub fn states(&self) -> Vec<Vec<ObservedContainer>> {
        self.lock().states.clone().unwrap_or_default()
    }

    /// The named container exits with `code` as soon as it starts (for jobs and crashes).
    pub fn set_exit_code(&self, container_name: &str, code: i64) {
        self.lock().exit_codes.insert(container_name.to_string(), code);
    }

    /// The log lines the named container prints (returned by `wait_exit`).
    pub fn set_logs(&self, container_name: &str, lines: &[&str]) {
        self.lock().logs.insert(container_name.to_string(), lines.iter().map(|line| line.to_string()).collect());
    }

    /// Makes an image reference exist.
    pub fn add_image(&self, reference: &str) {
        self.lock().images.insert(reference.to_string());
    }

    /// Puts an existing container into the world (e.g. from an earlier deploy, or a foreign one).
    pub fn add_container(&self, container: ObservedContainer) {
        self.lock().containers.insert(container.id.clone(), container);
    }

    /// Puts an existing network into the world.
    pub fn add_network(&self, network: ObservedNetwork) {
        self.lock().networks.insert(network.id.clone(), network);
    }

    /// Puts an existing volume into the world.
    pub fn add_volume(&self, volume: ObservedVolume) {
        self.lock().volumes.insert(volume.name.clone(), volume);
    }

    // ----- inspection -----

    /// The container with this name, if it exists.
    pub fn container(&self, name: &str) -> Option<ObservedContainer> {
        self.lock().containers.values().find(|container| container.name == name).cloned()
    }

    /// All containers, sorted by name.
    pub fn containers(&self) -> Vec<ObservedContainer> {
        let mut all: Vec<ObservedContainer> = self.lock().containers.values().cloned().collect();
        all.sort_by(|left, right| left.name.cmp(&right.name));
        all
    }

    /// All networks, sorted by name.
    pub fn networks(&self) -> Vec<ObservedNetwork> {
        let mut all: Vec<ObservedNetwork> = self.lock().networks.values().cloned().collect();
        all.sort_by(|left, right| (&left.name, &left.id).cmp(&(&right.name, &right.id)));
        all
    }

    /// All volumes, sorted by name.
    pub fn volumes(&self) -> Vec<ObservedVolume> {
        self.lock().volumes.values().cloned().collect()
    }

    // ----- the call protocol -----

    /// Starts a call: counts it in flight, records it, applies any delay, then any failure.
    async fn begin(&self, operation: &str, resource: &str) -> Result<InFlight<'_>, EngineError> {
        self.calls.begin("fake engine", operation, resource).await
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut world = self.lock();
        world.next_id += 1;
        format!("{prefix}{:012}", world.next_id)
    }

    /// The current name of a container addressed by ID or name (the ID itself when unknown).
    fn container_name(&self, id_or_name: &str) -> String {
        let world = self.lock();
        find_container(&world, id_or_name).map_or_else(|| id_or_name.to_string(), |container| container.name.clone())
    }
}

fn find_container<'a>(world: &'a World, id_or_name: &str) -> Option<&'a ObservedContainer> {
    world
        .containers
        .get(id_or_name)
        .or_else(|| world.containers.values().find(|container| container.name == id_or_name))
}

fn find_container_mut<'a>(world: &'a mut World, id_or_name: &str) -> Option<&'a mut ObservedContainer> {
    let id = find_container(world, id_or_name)?.id.clone();
    world.containers.get_mut(&id)
}

fn not_found(operation: &'static str, resource: &str) -> EngineError {
    EngineError::NotFound { operation, resource: resource.to_string(), message: "no such object (fake)".into() }
}

#[async_trait::async_trait]
impl HostEngine for FakeEngine {
    async fn info(&self) -> Result<EngineInfo, EngineError> {
        let _call = self.begin("info", "engine").await?;
        Ok(EngineInfo {
            id: "FAKE:ENGINE".into(),
            name: "fake".into(),
            server_version: "0.0.0-fake".into(),
            api_version: "1.41".into(),
            swarm_manager: false,
        })
    }

    async fn observe(&self, stack: &str, candidate_names: &CandidateNames) -> Result<ObservedState, EngineError> {
        let _call = self.begin("observe", stack).await?;
        let world = self.lock();
        let ours = |labels: &BTreeMap<String, String>| labels.get(LABEL_STACK).is_some_and(|value| value == stack);
        let mut observed = ObservedState { images: world.images.clone(), ..ObservedState::default() };
        let mut foreign = ForeignNames::default();
        for container in world.containers.values() {
            if ours(&container.labels) {
                observed.containers.push(container.clone());
            } else if candidate_names.containers.contains(&container.name) {
                foreign.containers.insert(container.name.clone());
            }
        }
        for network in world.networks.values() {
            if ours(&network.labels) {
                observed.networks.push(network.clone());
            } else if candidate_names.networks.contains(&network.name) {
                foreign.networks.insert(network.name.clone());
            }
        }
        for volume in world.volumes.values() {
            if ours(&volume.labels) {
                observed.volumes.push(volume.clone());
            } else if candidate_names.volumes.contains(&volume.name) {
                foreign.volumes.insert(volume.name.clone());
            }
        }
        observed.foreign_names = foreign;
        observed.sort();
        Ok(observed)
    }

    async fn create_network(&self, spec: &NetworkSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_network", &spec.name).await?;
        let id = self.next_id("network");
        let mut world = self.lock();
        if world.networks.values().any(|network| network.name == spec.name) {
            return Err(EngineError::Conflict {
                operation: "create network",
                resource: spec.name.clone(),
                message: format!("network with name {} already exists", spec.name),
            });
        }
        world.networks.insert(id.clone(), ObservedNetwork { id: id.clone(), name: spec.name.clone(), labels: spec.labels.clone() });
        Ok(id)
    }

    async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        let name = self.lock().networks.get(id).map_or_else(|| id.to_string(), |network| network.name.clone());
        let _call = self.begin("remove_network", &name).await?;
        self.lock().networks.remove(id);
        Ok(())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<(), EngineError> {
        let _call = self.begin("create_volume", &spec.name).await?;
        self.lock()
            .volumes
            .entry(spec.name.clone())
            .or_insert_with(|| ObservedVolume { name: spec.name.clone(), labels: spec.labels.clone() });
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        let _call = self.begin("remove_volume", name).await?;
        self.lock().volumes.remove(name);
        Ok(())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError> {
        let _call = self.begin("create_container", &spec.name).await?;
        let id = self.next_id("container");
        let mut world = self.lock();
        if world.containers.values().any(|container| container.name == spec.name) {
            return Err(EngineError::Conflict {
                operation: "create container",
                resource: spec.name.clone(),
                message: format!("the container name \"/{}\" is already in use", spec.name),
            });
        }
        let serial = world.next_id;
        if spec.healthcheck.as_ref().is_some_and(|h| h.test.first().is_some_and(|t| t != "NONE")) {
            world.checked.insert(id.clone());
        }
        if let Some((_, health)) = world.health_by_env.iter().find(|(entry, _)| spec.env.contains(entry)) {
            let health = *health;
            world.scripted_health.insert(id.clone(), health);
        }
        world.containers.insert(
            id.clone(),
            ObservedContainer {
                id: id.clone(),
                name: spec.name.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                state: ContainerState::Created,
                health: None,
                created: "2000-01-01T00:00:00Z".into(),
                networks: spec.network.iter().map(|n| n.network_id.clone()).filter(|id| !id.is_empty()).collect(),
                anonymous_volumes: spec
                    .mounts
                    .iter()
                    .filter(|m| m.kind == MountKind::Volume && (m.source.is_empty() || is_anonymous_volume(&m.source)))
                    .enumerate()
                    .map(|(i, m)| (m.target.clone(), if m.source.is_empty() { format!("{serial:056x}{i:08x}") } else { m.source.clone() }))
                    .collect(),
            },
        );
        Ok(id)
    }

    async fn connect_network(&self, id: &str, attachment: &NetworkAttachment) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("connect_network", &name).await?;
        let mut world = self.lock();
        if !world.networks.contains_key(&attachment.network_id) {
            return Err(not_found("connect network", &attachment.network_id));
        }
        let container = find_container_mut(&mut world, id).ok_or_else(|| not_found("connect network", &name))?;
        container.networks.insert(attachment.network_id.clone());
        Ok(())
    }

    async fn copy_files(&self, id: &str, _files: &[FileDelivery]) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("copy_files", &name).await?;
        find_container_mut(&mut self.lock(), id).map(|_| ()).ok_or_else(|| not_found("copy files", &name))
    }

    async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("start_container", &name).await?;
        let mut world = self.lock();
        let exit_code = world.exit_codes.get(&name).copied();
        let health = world.health_of(id, &name);
        let checked = world.checked.contains(id);
        let container = find_container_mut(&mut world, id).ok_or_else(|| not_found("start container", &name))?;
        container.state = match exit_code {
            Some(code) => ContainerState::Exited { code },
            None => ContainerState::Running,
        };
        container.health = match (exit_code, health) {
            (Some(_), _) => None,
            (None, Some(FakeHealth::Unhealthy)) => Some(HealthState::Unhealthy),
            (None, Some(FakeHealth::NeverHealthy)) => Some(HealthState::Starting),
            (None, _) if checked => Some(HealthState::Starting),
            (None, _) => None,
        };
        world.record();
        Ok(())
    }

    async fn stop_container(&self, id: &str, _grace: Option<Duration>) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("stop_container", &name).await?;
        let mut world = self.lock();
        let container = find_container_mut(&mut world, id).ok_or_else(|| not_found("stop container", &name))?;
        if container.state == ContainerState::Running {
            container.state = ContainerState::Exited { code: 0 };
            container.health = None;
        }
        world.record();
        Ok(())
    }

    async fn remove_container(&self, id: &str, _anonymous_volumes: bool) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("remove_container", &name).await?;
        let mut world = self.lock();
        let Some(container) = find_container(&world, id).cloned() else {
            return Ok(());
        };
        if container.state == ContainerState::Running {
            return Err(EngineError::Conflict {
                operation: "remove container",
                resource: name,
                message: "you cannot remove a running container; stop it first".into(),
            });
        }
        world.containers.remove(&container.id);
        world.record();
        Ok(())
    }

    async fn rename_container(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("rename_container", &format!("{name} {new_name}")).await?;
        let mut world = self.lock();
        if world.containers.values().any(|container| container.name == new_name) {
            return Err(EngineError::Conflict {
                operation: "rename container",
                resource: format!("{name} to {new_name}"),
                message: format!("the name {new_name} is already in use"),
            });
        }
        let container = find_container_mut(&mut world, id).ok_or_else(|| not_found("rename container", &name))?;
        container.name = new_name.to_string();
        Ok(())
    }

    async fn wait_healthy(&self, id: &str, timeout: Duration) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("wait_healthy", &name).await?;
        let (exists, exit_code, health) = {
            let world = self.lock();
            (find_container(&world, id).is_some(), world.exit_codes.get(&name).copied(), world.health_of(id, &name))
        };
        if !exists {
            return Err(not_found("wait healthy", &name));
        }
        if let Some(code) = exit_code {
            return Err(EngineError::WaitFailed {
                operation: "wait healthy",
                resource: name,
                reason: format!("exited with code {code}"),
                detail: Vec::new(),
            });
        }
        match health.unwrap_or(FakeHealth::Healthy) {
            FakeHealth::Healthy => {
                let mut world = self.lock();
                if let Some(container) = find_container_mut(&mut world, id) {
                    container.health = Some(HealthState::Healthy);
                }
                world.record();
                Ok(())
            }
            FakeHealth::Unhealthy => Err(EngineError::WaitFailed {
                operation: "wait healthy",
                resource: name,
                reason: "unhealthy after 3 consecutive failed health checks".into(),
                detail: vec!["health check exit 1: scripted failure".into()],
            }),
            FakeHealth::NeverHealthy => {
                tokio::time::sleep(timeout).await;
                Err(EngineError::Timeout { operation: "wait healthy", resource: name, after: timeout, detail: Vec::new() })
            }
        }
    }

    async fn wait_running(&self, id: &str, _timeout: Duration) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("wait_running", &name).await?;
        let world = self.lock();
        if find_container(&world, id).is_none() {
            return Err(not_found("wait running", &name));
        }
        match world.exit_codes.get(&name) {
            Some(code) if *code != 0 => Err(EngineError::WaitFailed {
                operation: "wait running",
                resource: name.clone(),
                reason: format!("exited with code {code}"),
                detail: world.logs.get(&name).cloned().unwrap_or_default(),
            }),
            _ => Ok(()),
        }
    }

    async fn wait_stable(&self, id: &str, _stable: Duration, _from_start: bool) -> Result<(), EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("wait_stable", &name).await?;
        let world = self.lock();
        let container = find_container(&world, id).ok_or_else(|| not_found("wait stable", &name))?;
        match container.state {
            ContainerState::Running => Ok(()),
            state => Err(EngineError::WaitFailed {
                operation: "wait stable",
                resource: name.clone(),
                reason: format!("stopped running: {state:?}"),
                detail: world.logs.get(&name).cloned().unwrap_or_default(),
            }),
        }
    }

    async fn wait_exit(&self, id: &str, _timeout: Duration, tail: usize) -> Result<ExitOutcome, EngineError> {
        let name = self.container_name(id);
        let _call = self.begin("wait_exit", &name).await?;
        let mut world = self.lock();
        let exit_code = world.exit_codes.get(&name).copied().unwrap_or(0);
        let logs = world.logs.get(&name).cloned().unwrap_or_default();
        let container = find_container_mut(&mut world, id).ok_or_else(|| not_found("wait exit", &name))?;
        container.state = ContainerState::Exited { code: exit_code };
        let skip = logs.len().saturating_sub(tail);
        Ok(ExitOutcome { exit_code, log_tail: logs.into_iter().skip(skip).collect() })
    }

    async fn image_exists(&self, reference: &str) -> Result<bool, EngineError> {
        let _call = self.begin("image_exists", reference).await?;
        Ok(self.lock().images.contains(reference))
    }

    async fn build_image(&self, spec: &BuildSpec) -> Result<(), EngineError> {
        let _call = self.begin("build_image", &spec.tag).await?;
        self.lock().images.insert(spec.tag.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.into(),
            image: "web:1".into(),
            labels: BTreeMap::from([(LABEL_STACK.to_string(), "demo".to_string())]),
            ..ContainerSpec::default()
        }
    }

    #[tokio::test]
    async fn calls_are_recorded_by_current_name() {
        let engine = FakeEngine::new();
        let id = engine.create_container(&spec("demo-web-1")).await.expect("create");
        engine.start_container(&id).await.expect("start");
        engine.stop_container(&id, None).await.expect("stop");
        engine.rename_container(&id, "demo-web-1-old").await.expect("rename");
        engine.remove_container(&id, false).await.expect("remove");
        assert_eq!(
            engine.calls(),
            [
                "create_container demo-web-1",
                "start_container demo-web-1",
                "stop_container demo-web-1",
                "rename_container demo-web-1 demo-web-1-old",
                "remove_container demo-web-1-old",
            ]
        );
    }

    #[tokio::test]
    async fn scripted_failures_fire_on_their_target_only() {
        let engine = FakeEngine::new();
        engine.fail_once("create_container", "demo-db-1");
        assert!(engine.create_container(&spec("demo-web-1")).await.is_ok());
        assert!(engine.create_container(&spec("demo-db-1")).await.is_err());
        assert!(engine.create_container(&spec("demo-db-1")).await.is_ok(), "fail_once fails once");
    }

    #[tokio::test]
    async fn names_are_unique_and_running_containers_are_not_removed() {
        let engine = FakeEngine::new();
        let id = engine.create_container(&spec("demo-web-1")).await.expect("create");
        assert!(engine.create_container(&spec("demo-web-1")).await.expect_err("duplicate").is_conflict());
        engine.start_container(&id).await.expect("start");
        assert!(engine.remove_container(&id, false).await.expect_err("running").is_conflict());
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_measured() {
        let engine = FakeEngine::new();
        engine.delay("create_container", ANY, Duration::from_millis(100));
        let creates = (0..3).map(|index| {
            let engine = engine.clone();
            async move { engine.create_container(&spec(&format!("demo-web-{index}"))).await }
        });
        for result in futures::future::join_all(creates).await {
            result.expect("create");
        }
        assert_eq!(engine.max_in_flight(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn health_outcomes_are_scripted_per_container() {
        let engine = FakeEngine::new();
        engine.set_health("demo-db-1", FakeHealth::Unhealthy);
        engine.set_health("demo-cache-1", FakeHealth::NeverHealthy);
        let web = engine.create_container(&spec("demo-web-1")).await.expect("create");
        let db = engine.create_container(&spec("demo-db-1")).await.expect("create");
        let cache = engine.create_container(&spec("demo-cache-1")).await.expect("create");
        assert!(engine.wait_healthy(&web, Duration::from_secs(5)).await.is_ok());
        assert!(matches!(engine.wait_healthy(&db, Duration::from_secs(5)).await, Err(EngineError::WaitFailed { .. })));
        assert!(matches!(engine.wait_healthy(&cache, Duration::from_secs(5)).await, Err(EngineError::Timeout { .. })));
    }

    #[tokio::test]
    async fn observe_separates_the_stack_from_foreign_names() {
        let engine = FakeEngine::new();
        engine.create_container(&spec("demo-web-1")).await.expect("create");
        engine.add_container(ObservedContainer {
            id: "foreign".into(),
            name: "demo-db-1".into(),
            image: "db".into(),
            labels: BTreeMap::new(),
            state: ContainerState::Running,
            health: None,
            created: "2000-01-01T00:00:00Z".into(),
            networks: BTreeSet::new(),
            anonymous_volumes: BTreeMap::new(),
        });
        let candidates = CandidateNames {
            containers: BTreeSet::from(["demo-web-1".to_string(), "demo-db-1".to_string()]),
            ..CandidateNames::default()
        };
        let observed = engine.observe("demo", &candidates).await.expect("observe");
        let names: Vec<&str> = observed.containers.iter().map(|container| container.name.as_str()).collect();
        assert_eq!(names, ["demo-web-1"]);
        assert_eq!(observed.foreign_names.containers, BTreeSet::from(["demo-db-1".to_string()]));
    }
}
