//! Domain ⇄ bollard for the swarm target: the only module that builds or reads bollard's Swarm
//! types (services, tasks, nodes, configs, secrets), as [`super::convert`] is for one host.
//!
//! Straight, field-by-field translation, no IO, so every mapping is unit-tested. Three rules
//! shape the service spec, all from how swarmkit decides that a task must be replaced
//! (`reflect.DeepEqual` of the task spec):
//!
//! - **absent, never empty**: an empty list or map is sent as absent (`None`), because Swarm
//!   stores nil and `[]` differently and would see a change where there is none;
//! - **order**: lists whose order means something are kept in the order given (the planner
//!   sorts them where it does not matter): env, mounts, networks, hosts, DNS, groups,
//!   constraints, spread preferences, command and args. Lists whose order means nothing are
//!   sorted here, as `docker stack deploy` sorts them: published ports (by published port,
//!   target, protocol), configs and secrets (by target file, then name), capabilities
//!   (deduplicated), ulimits (by name);
//! - **every field explicit**: update and rollback configs carry all six fields (the API's
//!   zero values are not the CLI's defaults), the restart policy all four, booleans are sent.
//!
//! Reading back never round-trips a service spec: bollard cannot read a service's health check
//! (it expects `HealthCheck`, the daemon writes `Healthcheck`), so the domain never sees an
//! inspected spec, only what it needs to plan (labels, mode, versions, counts).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{
    Config, ConfigSpec, EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount as BollardMount, MountTmpfsOptions, MountType, MountVolumeOptions,
    MountVolumeOptionsDriverConfig, NetworkAttachmentConfig, Node as BollardNode, NodeSpecAvailabilityEnum, NodeSpecRoleEnum,
    NodeState, ResourceObject, ResourcesUlimits, Secret, SecretSpec, Service, ServiceSpec as BollardServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecModeReplicatedJob, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, Task,
    TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecDnsConfig,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecLogDriver,
    TaskSpecPlacement, TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState as BollardTaskState,
};

use super::convert::{duration_to_nanos, health_config};
use super::error::EngineError;
use super::swarm::StoredConfig;
use crate::model::labels::{LABEL_HASH, LABEL_STACK};
use crate::model::node::{Availability, HostPort, Node, Platform, Resources, Role, State};
use crate::model::objects::MountKind;
use crate::model::service::{
    FailureAction, FileReference, ObjectSpec, RestartCondition, ServiceMode, ServiceMount, ServicePort, ServiceSpec,
    UpdateConfig,
};
use crate::model::swarm::{ObservedObject, ObservedService, ObservedTask, TaskState, UpdateState, UpdateStatus};

/// What swarmkit says when an update quotes a version that is no longer current (HTTP 500).
const STALE_VERSION: &str = "update out of sequence";

// ---------------------------------------------------------------- small helpers

fn to_hash_map(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    if map.is_empty() {
        None
    } else {
        Some(map.iter().map(|(key, value)| (key.clone(), value.clone())).collect())
    }
}

fn to_btree_map(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|entries| entries.iter().map(|(key, value)| (key.clone(), value.clone())).collect()).unwrap_or_default()
}

fn non_empty(list: &[String]) -> Option<Vec<String>> {
    if list.is_empty() {
        None
    } else {
        Some(list.to_vec())
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn non_negative(value: Option<i64>) -> u64 {
    value.and_then(|value| u64::try_from(value).ok()).unwrap_or(0)
}

/// A filter map with one key: `{"label": ["io.swarmctl.stack=demo"]}`.
pub(crate) fn filter(key: &str, values: Vec<String>) -> HashMap<String, Vec<String>> {
    HashMap::from([(key.to_string(), values)])
}

/// `key=value`, the `label` filter that matches exactly that value.
pub(crate) fn label_filter(key: &str, value: &str) -> HashMap<String, Vec<String>> {
    filter("label", vec![format!("{key}={value}")])
}

/// True when a label map says the object belongs to `stack`.
pub(crate) fn belongs_to(labels: Option<&HashMap<String, String>>, stack: &str) -> bool {
    labels.and_then(|labels| labels.get(LABEL_STACK)).is_some_and(|value| value == stack)
}

// ---------------------------------------------------------------- service spec

/// `busybox` → `busybox:latest`, as the docker client sends it; a tag or digest is kept.
pub(crate) fn normalise_image(image: &str) -> String {
    let last_component = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last_component.contains(':') || image.is_empty() {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The body of `POST /services/create` and `/services/{id}/update` for a spec; `Err` names
/// what cannot be expressed (nothing is sent then).
pub(crate) fn service_spec(spec: &ServiceSpec) -> Result<BollardServiceSpec, String> {
    let endpoint = endpoint_spec(spec)?;
    let rollback_config = spec.rollback.as_ref().map(rollback_config).transpose()?;
    Ok(BollardServiceSpec {
        name: Some(spec.name.clone()),
        labels: to_hash_map(&spec.labels),
        task_template: Some(task_spec(spec)),
        mode: Some(service_mode(spec.mode)),
        update_config: spec.update.as_ref().map(update_config),
        rollback_config,
        // Deprecated at the service level: the networks go in the task template.
        networks: None,
        endpoint_spec: Some(endpoint),
    })
}

fn service_mode(mode: ServiceMode) -> ServiceSpecMode {
    match mode {
        ServiceMode::Replicated { replicas } => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(saturating_i64(replicas)) }),
            ..ServiceSpecMode::default()
        },
        ServiceMode::Global => ServiceSpecMode { global: Some(HashMap::new()), ..ServiceSpecMode::default() },
        // Everything at once, as `docker stack deploy` does: MaxConcurrent = TotalCompletions.
        ServiceMode::ReplicatedJob { total } => ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: Some(saturating_i64(total)),
                total_completions: Some(saturating_i64(total)),
            }),
            ..ServiceSpecMode::default()
        },
        ServiceMode::GlobalJob => ServiceSpecMode { global_job: Some(HashMap::new()), ..ServiceSpecMode::default() },
    }
}

/// Every field sent. A parallelism of 0 means "all at once" to the API, which the model never
/// means, so it is sent as 1.
fn update_config(config: &UpdateConfig) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(saturating_i64(config.parallelism.max(1))),
        delay: Some(duration_to_nanos(config.delay)),
        failure_action: Some(match config.failure_action {
            FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
            FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
        }),
        monitor: Some(duration_to_nanos(config.monitor)),
        max_failure_ratio: Some(config.max_failure_ratio),
        order: Some(if config.start_first {
            ServiceSpecUpdateConfigOrderEnum::START_FIRST
        } else {
            ServiceSpecUpdateConfigOrderEnum::STOP_FIRST
        }),
    }
}

/// As [`update_config`]; a rollback cannot itself roll back.
fn rollback_config(config: &UpdateConfig) -> Result<ServiceSpecRollbackConfig, String> {
    let failure_action = match config.failure_action {
        FailureAction::Pause => ServiceSpecRollbackConfigFailureActionEnum::PAUSE,
        FailureAction::Continue => ServiceSpecRollbackConfigFailureActionEnum::CONTINUE,
        FailureAction::Rollback => return Err("a rollback's failure action cannot be \"rollback\"".to_string()),
    };
    Ok(ServiceSpecRollbackConfig {
        parallelism: Some(saturating_i64(config.parallelism.max(1))),
        delay: Some(duration_to_nanos(config.delay)),
        failure_action: Some(failure_action),
        monitor: Some(duration_to_nanos(config.monitor)),
        max_failure_ratio: Some(config.max_failure_ratio),
        order: Some(if config.start_first {
            ServiceSpecRollbackConfigOrderEnum::START_FIRST
        } else {
            ServiceSpecRollbackConfigOrderEnum::STOP_FIRST
        }),
    })
}

fn endpoint_spec(spec: &ServiceSpec) -> Result<EndpointSpec, String> {
    let mut ports = spec.endpoint.ports.clone();
    ports.sort_by(|a, b| (a.published, a.target, &a.protocol, a.host_mode).cmp(&(b.published, b.target, &b.protocol, b.host_mode)));
    let ports = ports.iter().map(endpoint_port).collect::<Result<Vec<_>, String>>()?;
    Ok(EndpointSpec {
        mode: Some(if spec.endpoint.dnsrr { EndpointSpecModeEnum::DNSRR } else { EndpointSpecModeEnum::VIP }),
        ports: if ports.is_empty() { None } else { Some(ports) },
    })
}

fn endpoint_port(port: &ServicePort) -> Result<EndpointPortConfig, String> {
    let protocol = match port.protocol.as_str() {
        "tcp" => EndpointPortConfigProtocolEnum::TCP,
        "udp" => EndpointPortConfigProtocolEnum::UDP,
        "sctp" => EndpointPortConfigProtocolEnum::SCTP,
        other => return Err(format!("unknown port protocol {other:?} (tcp, udp or sctp)")),
    };
    Ok(EndpointPortConfig {
        name: None,
        protocol: Some(protocol),
        target_port: Some(i64::from(port.target)),
        published_port: port.published.map(i64::from),
        publish_mode: Some(if port.host_mode {
            EndpointPortConfigPublishModeEnum::HOST
        } else {
            EndpointPortConfigPublishModeEnum::INGRESS
        }),
    })
}

fn task_spec(spec: &ServiceSpec) -> TaskSpec {
    let resources = &spec.resources;
    let limits = (resources.limit_nano_cpus.is_some() || resources.limit_memory_bytes.is_some() || resources.limit_pids.is_some())
        .then_some(Limit {
            nano_cpus: resources.limit_nano_cpus,
            memory_bytes: resources.limit_memory_bytes,
            pids: resources.limit_pids,
        });
    let reservations = (resources.reserve_nano_cpus.is_some() || resources.reserve_memory_bytes.is_some()).then_some(
        ResourceObject {
            nano_cpus: resources.reserve_nano_cpus,
            memory_bytes: resources.reserve_memory_bytes,
            generic_resources: None,
        },
    );
    let placement = &spec.placement;
    let has_placement =
        !placement.constraints.is_empty() || !placement.spread.is_empty() || placement.max_replicas_per_node.is_some();
    let networks: Vec<NetworkAttachmentConfig> = spec
        .networks
        .iter()
        .map(|network| NetworkAttachmentConfig {
            target: Some(network.network_id.clone()),
            aliases: non_empty(&network.aliases),
            driver_opts: None,
        })
        .collect();
    TaskSpec {
        container_spec: Some(container_spec(spec)),
        resources: (limits.is_some() || reservations.is_some()).then_some(TaskSpecResources {
            limits,
            reservations,
            swap_bytes: None,
            memory_swappiness: None,
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(match spec.restart.condition {
                RestartCondition::None => TaskSpecRestartPolicyConditionEnum::NONE,
                RestartCondition::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
                RestartCondition::Any => TaskSpecRestartPolicyConditionEnum::ANY,
            }),
            delay: Some(duration_to_nanos(spec.restart.delay)),
            max_attempts: Some(saturating_i64(spec.restart.max_attempts)),
            window: Some(duration_to_nanos(spec.restart.window)),
        }),
        placement: has_placement.then(|| TaskSpecPlacement {
            constraints: non_empty(&placement.constraints),
            preferences: if placement.spread.is_empty() {
                None
            } else {
                Some(
                    placement
                        .spread
                        .iter()
                        .map(|descriptor| TaskSpecPlacementPreferences {
                            spread: Some(TaskSpecPlacementSpread { spread_descriptor: Some(descriptor.clone()) }),
                        })
                        .collect(),
                )
            },
            max_replicas: placement.max_replicas_per_node.map(saturating_i64),
            platforms: None,
        }),
        networks: if networks.is_empty() { None } else { Some(networks) },
        log_driver: spec.log_driver.as_ref().map(|driver| TaskSpecLogDriver {
            name: Some(driver.name.clone()),
            options: to_hash_map(&driver.options),
        }),
        ..TaskSpec::default()
    }
}

fn container_spec(spec: &ServiceSpec) -> TaskSpecContainerSpec {
    let container = &spec.container;
    let dns = &container.dns;
    let dns_config = (!dns.nameservers.is_empty() || !dns.search.is_empty() || !dns.options.is_empty()).then(|| {
        TaskSpecContainerSpecDnsConfig {
            nameservers: non_empty(&dns.nameservers),
            search: non_empty(&dns.search),
            options: non_empty(&dns.options),
        }
    });
    let mut configs = container.configs.clone();
    configs.sort_by(|a, b| (&a.target, &a.object_name).cmp(&(&b.target, &b.object_name)));
    let mut secrets = container.secrets.clone();
    secrets.sort_by(|a, b| (&a.target, &a.object_name).cmp(&(&b.target, &b.object_name)));
    let mut ulimits = container.ulimits.clone();
    ulimits.sort_by(|a, b| a.name.cmp(&b.name));
    TaskSpecContainerSpec {
        image: Some(normalise_image(&container.image)),
        labels: to_hash_map(&container.labels),
        command: container.command.clone(),
        args: container.args.clone(),
        hostname: container.hostname.clone(),
        env: non_empty(&container.env),
        dir: container.working_dir.clone(),
        user: container.user.clone(),
        groups: non_empty(&container.groups),
        privileges: None,
        tty: Some(container.tty),
        open_stdin: Some(container.stdin_open),
        read_only: Some(container.read_only),
        mounts: if container.mounts.is_empty() { None } else { Some(container.mounts.iter().map(mount).collect()) },
        stop_signal: container.stop_signal.clone(),
        stop_grace_period: container.stop_grace.map(duration_to_nanos),
        health_check: container.healthcheck.as_ref().map(health_config),
        hosts: non_empty(&container.hosts),
        dns_config,
        secrets: if secrets.is_empty() { None } else { Some(secrets.iter().map(secret_reference).collect()) },
        oom_score_adj: None,
        configs: if configs.is_empty() { None } else { Some(configs.iter().map(config_reference).collect()) },
        isolation: None,
        init: container.init,
        sysctls: to_hash_map(&container.sysctls),
        capability_add: sorted_unique(&container.cap_add),
        capability_drop: sorted_unique(&container.cap_drop),
        ulimits: if ulimits.is_empty() {
            None
        } else {
            Some(
                ulimits
                    .iter()
                    .map(|ulimit| ResourcesUlimits {
                        name: Some(ulimit.name.clone()),
                        soft: Some(ulimit.soft),
                        hard: Some(ulimit.hard),
                    })
                    .collect(),
            )
        },
    }
}

fn sorted_unique(list: &[String]) -> Option<Vec<String>> {
    let unique: BTreeSet<&String> = list.iter().collect();
    if unique.is_empty() {
        None
    } else {
        Some(unique.into_iter().cloned().collect())
    }
}

fn mount(mount: &ServiceMount) -> BollardMount {
    let (typ, source) = match mount.kind {
        MountKind::Volume => (MountType::VOLUME, (!mount.source.is_empty()).then(|| mount.source.clone())),
        MountKind::Bind => (MountType::BIND, Some(mount.source.clone())),
        MountKind::Tmpfs => (MountType::TMPFS, None),
    };
    let volume_options = (mount.kind == MountKind::Volume
        && (mount.no_copy || !mount.volume_labels.is_empty() || mount.volume_driver.is_some() || !mount.volume_options.is_empty()))
    .then(|| MountVolumeOptions {
        no_copy: mount.no_copy.then_some(true),
        labels: to_hash_map(&mount.volume_labels),
        driver_config: (mount.volume_driver.is_some() || !mount.volume_options.is_empty()).then(|| {
            MountVolumeOptionsDriverConfig {
                name: mount.volume_driver.clone(),
                options: to_hash_map(&mount.volume_options),
            }
        }),
        subpath: None,
    });
    let tmpfs_options = (mount.kind == MountKind::Tmpfs && (mount.tmpfs_size.is_some() || mount.tmpfs_mode.is_some()))
        .then_some(MountTmpfsOptions { size_bytes: mount.tmpfs_size, mode: mount.tmpfs_mode.map(i64::from), options: None });
    let bind_options = if mount.kind == MountKind::Bind { super::convert::propagation(mount.propagation.as_deref()) } else { None };
    BollardMount {
        target: Some(mount.target.clone()),
        source,
        typ: Some(typ),
        read_only: Some(mount.read_only),
        volume_options,
        tmpfs_options,
        bind_options,
        ..BollardMount::default()
    }
}

fn config_reference(reference: &FileReference) -> TaskSpecContainerSpecConfigs {
    TaskSpecContainerSpecConfigs {
        file: Some(TaskSpecContainerSpecFile1 {
            name: Some(reference.target.clone()),
            uid: Some(reference.uid.clone()),
            gid: Some(reference.gid.clone()),
            mode: Some(reference.mode),
        }),
        runtime: None,
        config_id: Some(reference.object_id.clone()),
        config_name: Some(reference.object_name.clone()),
    }
}

fn secret_reference(reference: &FileReference) -> TaskSpecContainerSpecSecrets {
    TaskSpecContainerSpecSecrets {
        file: Some(TaskSpecContainerSpecFile {
            name: Some(reference.target.clone()),
            uid: Some(reference.uid.clone()),
            gid: Some(reference.gid.clone()),
            mode: Some(reference.mode),
        }),
        secret_id: Some(reference.object_id.clone()),
        secret_name: Some(reference.object_name.clone()),
    }
}

// ---------------------------------------------------------------- configs and secrets

/// The config to create; `None` when the content was redacted (a plan read back from JSON).
pub(crate) fn config_spec(spec: &ObjectSpec) -> Option<ConfigSpec> {
    let bytes = spec.data.bytes()?;
    Some(ConfigSpec {
        name: Some(spec.name.clone()),
        labels: to_hash_map(&spec.labels),
        data: Some(base64_encode(bytes)),
        templating: None,
    })
}

/// The secret to create; `None` when the content was redacted.
pub(crate) fn secret_spec(spec: &ObjectSpec) -> Option<SecretSpec> {
    let bytes = spec.data.bytes()?;
    Some(SecretSpec {
        name: Some(spec.name.clone()),
        labels: to_hash_map(&spec.labels),
        data: Some(base64_encode(bytes)),
        driver: None,
        templating: None,
    })
}

/// A labels-only update: the data is left out, which Swarm reads as "unchanged". The labels
/// map is sent even when empty: it replaces the old one whole.
pub(crate) fn config_labels_spec(name: &str, labels: &BTreeMap<String, String>) -> ConfigSpec {
    ConfigSpec {
        name: Some(name.to_string()),
        labels: Some(labels.iter().map(|(key, value)| (key.clone(), value.clone())).collect()),
        data: None,
        templating: None,
    }
}

/// A config as the store reads it; the data only when `with_data` (it is not decoded
/// otherwise, and undecodable data is an error naming the config).
pub(crate) fn stored_config(config: &Config, with_data: bool) -> Result<Option<StoredConfig>, String> {
    let (Some(id), Some(spec)) = (config.id.as_ref(), config.spec.as_ref()) else { return Ok(None) };
    let name = spec.name.clone().unwrap_or_default();
    let data = match (with_data, spec.data.as_deref()) {
        (true, Some(encoded)) => base64_decode(encoded).ok_or_else(|| format!("config {name}: its data is not valid base64"))?,
        _ => Vec::new(),
    };
    Ok(Some(StoredConfig {
        id: id.clone(),
        name,
        version: config.version.as_ref().and_then(|version| version.index).unwrap_or(0),
        labels: to_btree_map(spec.labels.as_ref()),
        data,
    }))
}

pub(crate) fn observed_config(config: &Config) -> Option<ObservedObject> {
    let spec = config.spec.as_ref()?;
    Some(ObservedObject { id: config.id.clone()?, name: spec.name.clone()?, labels: to_btree_map(spec.labels.as_ref()) })
}

pub(crate) fn observed_secret(secret: &Secret) -> Option<ObservedObject> {
    let spec = secret.spec.as_ref()?;
    Some(ObservedObject { id: secret.id.clone()?, name: spec.name.clone()?, labels: to_btree_map(spec.labels.as_ref()) })
}

// ---------------------------------------------------------------- services and tasks

/// A service as the planner sees it; `None` without an ID or spec (never seen in practice).
pub(crate) fn observed_service(service: &Service) -> Option<ObservedService> {
    let spec = service.spec.as_ref()?;
    let status = service.service_status.as_ref();
    Some(ObservedService {
        id: service.id.clone()?,
        name: spec.name.clone().unwrap_or_default(),
        version: service.version.as_ref().and_then(|version| version.index).unwrap_or(0),
        labels: to_btree_map(spec.labels.as_ref()),
        mode: spec.mode.as_ref().map_or(ServiceMode::Replicated { replicas: 1 }, observed_mode),
        update: service.update_status.as_ref().and_then(|status| {
            let state = match status.state? {
                ServiceUpdateStatusStateEnum::EMPTY => return None,
                ServiceUpdateStatusStateEnum::UPDATING => UpdateState::Updating,
                ServiceUpdateStatusStateEnum::PAUSED => UpdateState::Paused,
                ServiceUpdateStatusStateEnum::COMPLETED => UpdateState::Completed,
                ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => UpdateState::RollbackStarted,
                ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => UpdateState::RollbackPaused,
                ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => UpdateState::RollbackCompleted,
            };
            Some(UpdateStatus { state, message: super::error::sanitize(status.message.as_deref().unwrap_or("")) })
        }),
        running_tasks: status.and_then(|status| status.running_tasks).unwrap_or(0),
        desired_tasks: status.and_then(|status| status.desired_tasks).unwrap_or(0),
        completed_tasks: status.and_then(|status| status.completed_tasks).unwrap_or(0),
        created: service.created_at.as_deref().map(normalise_timestamp).unwrap_or_default(),
        updated: service.updated_at.as_deref().map(normalise_timestamp).unwrap_or_default(),
    })
}

fn observed_mode(mode: &ServiceSpecMode) -> ServiceMode {
    if mode.global.is_some() {
        ServiceMode::Global
    } else if mode.global_job.is_some() {
        ServiceMode::GlobalJob
    } else if let Some(job) = &mode.replicated_job {
        // The daemon's default: TotalCompletions = MaxConcurrent = 1.
        ServiceMode::ReplicatedJob { total: non_negative(job.total_completions.or(job.max_concurrent)).max(1) }
    } else {
        let replicas = mode.replicated.as_ref().and_then(|replicated| replicated.replicas);
        ServiceMode::Replicated { replicas: replicas.map_or(1, |replicas| non_negative(Some(replicas))) }
    }
}

/// The spec hash the service's *current* spec gives its tasks (its container label).
pub(crate) fn service_task_hash(service: &Service) -> Option<String> {
    service
        .spec
        .as_ref()?
        .task_template
        .as_ref()?
        .container_spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_HASH)
        .cloned()
}

/// The job's current run (0 for its first, and for services that are not jobs).
pub(crate) fn service_job_iteration(service: &Service) -> Option<u64> {
    service.job_status.as_ref().map(|status| status.job_iteration.as_ref().and_then(|version| version.index).unwrap_or(0))
}

pub(crate) fn task_state(state: BollardTaskState) -> TaskState {
    match state {
        BollardTaskState::NEW => TaskState::New,
        BollardTaskState::ALLOCATED => TaskState::Allocated,
        BollardTaskState::PENDING => TaskState::Pending,
        BollardTaskState::ASSIGNED => TaskState::Assigned,
        BollardTaskState::ACCEPTED => TaskState::Accepted,
        BollardTaskState::PREPARING => TaskState::Preparing,
        BollardTaskState::READY => TaskState::Ready,
        BollardTaskState::STARTING => TaskState::Starting,
        BollardTaskState::RUNNING => TaskState::Running,
        BollardTaskState::COMPLETE => TaskState::Complete,
        BollardTaskState::SHUTDOWN => TaskState::Shutdown,
        BollardTaskState::FAILED => TaskState::Failed,
        BollardTaskState::REJECTED => TaskState::Rejected,
        BollardTaskState::REMOVE => TaskState::Remove,
        BollardTaskState::ORPHANED => TaskState::Orphaned,
    }
}

/// One task. `slot_zero`: the task's service is a replicated job, whose slot 0 the API leaves
/// out (Go's `omitempty`); every other service numbers from 1, or has no slots (global).
pub(crate) fn observed_task(task: &Task, slot_zero: bool) -> Option<ObservedTask> {
    let status = task.status.as_ref();
    let slot = task.slot.and_then(|slot| u64::try_from(slot).ok()).or(slot_zero.then_some(0));
    let error = status.and_then(|status| status.err.as_deref()).filter(|err| !err.is_empty()).map(super::error::sanitize);
    Some(ObservedTask {
        id: task.id.clone()?,
        service_id: task.service_id.clone().unwrap_or_default(),
        slot,
        node_id: task.node_id.clone().unwrap_or_default(),
        state: status.and_then(|status| status.state).map_or(TaskState::New, task_state),
        desired_state: task.desired_state.map_or(TaskState::New, task_state),
        message: super::error::sanitize(status.and_then(|status| status.message.as_deref()).unwrap_or("")),
        error,
        exit_code: status.and_then(|status| status.container_status.as_ref()).and_then(|container| container.exit_code),
        pid: status.and_then(|status| status.container_status.as_ref()).and_then(|container| container.pid),
        spec_hash: task_spec_hash(task),
        created: task.created_at.as_deref().map(normalise_timestamp).unwrap_or_default(),
    })
}

/// The spec hash the task runs: its container's `io.swarmctl.spec-hash` label.
pub(crate) fn task_spec_hash(task: &Task) -> Option<String> {
    task.spec.as_ref()?.container_spec.as_ref()?.labels.as_ref()?.get(LABEL_HASH).cloned()
}

/// When the task entered its current state (the daemon's clock).
pub(crate) fn task_state_since(task: &Task) -> Option<SystemTime> {
    task.status.as_ref()?.timestamp.as_deref().and_then(parse_timestamp)
}

/// Which run of its job the task belongs to (0 for the first).
pub(crate) fn task_job_iteration(task: &Task) -> Option<u64> {
    task.job_iteration.as_ref().map(|version| version.index.unwrap_or(0))
}

/// The CPU and memory a task reserves, from its own spec.
pub(crate) fn task_reservation(task: &Task) -> (u64, u64) {
    let reservations = task.spec.as_ref().and_then(|spec| spec.resources.as_ref()).and_then(|resources| resources.reservations.as_ref());
    (
        non_negative(reservations.and_then(|reservations| reservations.nano_cpus)),
        non_negative(reservations.and_then(|reservations| reservations.memory_bytes)),
    )
}

/// The ports a service publishes in host mode, each of which one task per node can hold:
/// the assigned ports, or the spec's when none is assigned yet.
pub(crate) fn host_ports(service: &Service) -> Vec<HostPort> {
    let endpoint = service.endpoint.as_ref();
    let assigned = endpoint.and_then(|endpoint| endpoint.ports.as_ref()).filter(|ports| !ports.is_empty());
    let ports = assigned.or_else(|| {
        service.spec.as_ref().and_then(|spec| spec.endpoint_spec.as_ref()).and_then(|endpoint| endpoint.ports.as_ref())
    });
    let mut host_ports: Vec<HostPort> = ports
        .into_iter()
        .flatten()
        .filter(|port| port.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST))
        .filter_map(|port| {
            let published = u16::try_from(port.published_port?).ok().filter(|published| *published > 0)?;
            let protocol = match port.protocol {
                Some(EndpointPortConfigProtocolEnum::UDP) => "udp",
                Some(EndpointPortConfigProtocolEnum::SCTP) => "sctp",
                _ => "tcp",
            };
            Some(HostPort { protocol: protocol.to_string(), port: published })
        })
        .collect();
    host_ports.sort();
    host_ports.dedup();
    host_ports
}

// ---------------------------------------------------------------- nodes

/// A node as the placement planner sees it; `reserved` is left empty (the caller sums it from
/// the other stacks' tasks).
pub(crate) fn node(node: &BollardNode) -> Option<Node> {
    let id = node.id.clone()?;
    let spec = node.spec.as_ref();
    let description = node.description.as_ref();
    let status = node.status.as_ref();
    let hostname = description.and_then(|description| description.hostname.clone()).unwrap_or_else(|| id.clone());
    // A manager may report 0.0.0.0 as its status address; its manager address is the real one.
    let status_addr = status.and_then(|status| status.addr.clone()).filter(|addr| !addr.is_empty() && addr != "0.0.0.0");
    let manager_addr = node
        .manager_status
        .as_ref()
        .and_then(|manager| manager.addr.as_deref())
        .map(|addr| addr.rsplit_once(':').map_or(addr, |(host, _)| host).to_string());
    let resources = description.and_then(|description| description.resources.as_ref());
    let platform = description.and_then(|description| description.platform.as_ref());
    Some(Node {
        id,
        hostname,
        role: match spec.and_then(|spec| spec.role) {
            Some(NodeSpecRoleEnum::MANAGER) => Role::Manager,
            _ => Role::Worker,
        },
        availability: match spec.and_then(|spec| spec.availability) {
            Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
            Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
            _ => Availability::Active,
        },
        state: match status.and_then(|status| status.state) {
            Some(NodeState::READY) => State::Ready,
            Some(NodeState::DOWN) => State::Down,
            Some(NodeState::DISCONNECTED) => State::Disconnected,
            _ => State::Unknown,
        },
        addr: status_addr.or(manager_addr),
        labels: to_btree_map(spec.and_then(|spec| spec.labels.as_ref())),
        engine_labels: to_btree_map(description.and_then(|description| description.engine.as_ref()).and_then(|engine| engine.labels.as_ref())),
        platform: Platform {
            os: platform.and_then(|platform| platform.os.clone()).unwrap_or_default(),
            architecture: platform.and_then(|platform| platform.architecture.clone()).unwrap_or_default(),
        },
        resources: Resources {
            nano_cpus: non_negative(resources.and_then(|resources| resources.nano_cpus)),
            memory_bytes: non_negative(resources.and_then(|resources| resources.memory_bytes)),
        },
        reserved: Default::default(),
    })
}

// ---------------------------------------------------------------- errors

/// A stale version is a race, not a failure: swarmkit answers it with HTTP 500 "update out of
/// sequence", which becomes [`EngineError::Conflict`] like a 409.
pub(crate) fn stale_version_is_conflict(error: EngineError) -> EngineError {
    match error {
        EngineError::Api { operation, resource, status: Some(500), message } if message.contains(STALE_VERSION) => {
            EngineError::Conflict { operation, resource, message }
        }
        other => other,
    }
}

// ---------------------------------------------------------------- timestamps

/// RFC 3339 with exactly nine fraction digits in UTC (`…T12:00:01.500000000Z`), so that
/// timestamps compare in time order as text; text that is not a timestamp is kept as is.
pub(crate) fn normalise_timestamp(text: &str) -> String {
    let Some(moment) = parse_timestamp(text) else { return text.to_string() };
    let Ok(since_epoch) = moment.duration_since(UNIX_EPOCH) else { return text.to_string() };
    let seconds = since_epoch.as_secs();
    let (days, second_of_day) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        since_epoch.subsec_nanos()
    )
}

/// Parses the daemon's RFC 3339 timestamps (`2026-01-02T03:04:05.123456789Z`, or with an
/// offset); `None` for anything else, including Go's zero time.
pub(crate) fn parse_timestamp(text: &str) -> Option<SystemTime> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|byte| byte.is_ascii_digit()).then(|| part.parse().ok()).flatten()
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: u32 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &fraction[..digits.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (hours, minutes) = rest[1..].split_once(':')?;
            sign * (hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    // Go's zero time (year 1) and anything before 1970 mean "not set" here.
    let seconds = u64::try_from(seconds).ok().filter(|seconds| *seconds > 0)?;
    UNIX_EPOCH.checked_add(Duration::new(seconds, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// ---------------------------------------------------------------- base64

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding: how configs and secrets carry their data on the wire.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let group = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for position in 0..4 {
            if position <= chunk.len() {
                encoded.push(char::from(BASE64_ALPHABET[(group >> (18 - 6 * position) & 63) as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

/// The inverse of [`base64_encode`] (padding optional, whitespace ignored); `None` when the
/// text is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(text.len() / 4 * 3);
    let (mut group, mut bits) = (0u32, 0u32);
    let mut padding = false;
    for byte in text.bytes().filter(|byte| !byte.is_ascii_whitespace()) {
        if byte == b'=' {
            padding = true;
            continue;
        }
        if padding {
            return None;
        }
        let value = BASE64_ALPHABET.iter().position(|candidate| *candidate == byte)? as u32;
        group = (group << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            decoded.push((group >> bits) as u8);
            group &= (1 << bits) - 1;
        }
    }
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{FileContent, Healthcheck, Ulimit};
    use crate::model::service::{
        ContainerTemplate, DnsConfig, Endpoint, LogDriver, ServiceNetwork, ServicePlacement, ServiceResources,
        SwarmRestartPolicy,
    };

    fn reference(id: &str, name: &str, target: &str) -> FileReference {
        FileReference {
            object_id: id.into(),
            object_name: name.into(),
            target: target.into(),
            uid: "0".into(),
            gid: "0".into(),
            mode: 0o444,
        }
    }

    fn port(protocol: &str, target: u16, published: Option<u16>, host_mode: bool) -> ServicePort {
        ServicePort { protocol: protocol.into(), target, published, host_mode }
    }

    /// A service with every field set.
    fn full_spec() -> ServiceSpec {
        ServiceSpec {
            name: "demo_web".into(),
            labels: BTreeMap::from([(LABEL_STACK.into(), "demo".into()), (LABEL_HASH.into(), "svc-hash".into())]),
            mode: ServiceMode::Replicated { replicas: 3 },
            container: ContainerTemplate {
                image: "swarmctl-test/testapp".into(),
                command: Some(vec!["/testapp".into()]),
                args: Some(vec!["serve".into()]),
                hostname: Some("{{.Task.Slot}}".into()),
                env: vec!["B=2".into(), "A=1".into()],
                labels: BTreeMap::from([(LABEL_HASH.into(), "h1".into())]),
                user: Some("1000:1000".into()),
                working_dir: Some("/srv".into()),
                groups: vec!["wheel".into()],
                tty: true,
                stdin_open: false,
                read_only: true,
                init: Some(true),
                mounts: vec![
                    ServiceMount {
                        kind: MountKind::Volume,
                        source: "demo_data".into(),
                        target: "/data".into(),
                        read_only: false,
                        volume_labels: BTreeMap::from([(LABEL_STACK.into(), "demo".into())]),
                        volume_driver: Some("local".into()),
                        volume_options: BTreeMap::from([("type".into(), "tmpfs".into())]),
                        no_copy: true,
                        tmpfs_size: None,
                        tmpfs_mode: None,
                        propagation: None,
                    },
                    ServiceMount {
                        kind: MountKind::Tmpfs,
                        source: String::new(),
                        target: "/scratch".into(),
                        read_only: false,
                        volume_labels: BTreeMap::new(),
                        volume_driver: None,
                        volume_options: BTreeMap::new(),
                        no_copy: false,
                        tmpfs_size: Some(1 << 20),
                        tmpfs_mode: Some(0o1777),
                        propagation: None,
                    },
                    ServiceMount {
                        kind: MountKind::Bind,
                        source: "/etc/hostname".into(),
                        target: "/host-name".into(),
                        read_only: true,
                        volume_labels: BTreeMap::new(),
                        volume_driver: None,
                        volume_options: BTreeMap::new(),
                        no_copy: false,
                        tmpfs_size: None,
                        tmpfs_mode: None,
                        propagation: Some("rslave".into()),
                    },
                ],
                stop_signal: Some("SIGINT".into()),
                stop_grace: Some(Duration::from_secs(2)),
                healthcheck: Some(Healthcheck {
                    test: vec!["CMD".into(), "/testapp".into(), "check".into(), "http://127.0.0.1:8080/health".into()],
                    interval: Some(Duration::from_millis(500)),
                    timeout: Some(Duration::from_secs(2)),
                    start_period: Some(Duration::from_secs(10)),
                    retries: Some(3),
                }),
                hosts: vec!["10.0.0.1 db".into()],
                dns: DnsConfig { nameservers: vec!["10.0.0.53".into()], search: vec![], options: vec!["ndots:1".into()] },
                configs: vec![reference("c2", "demo_b", "/etc/b"), reference("c1", "demo_a", "/etc/a")],
                secrets: vec![reference("s1", "demo_pw", "pw")],
                cap_add: vec!["NET_ADMIN".into(), "CHOWN".into(), "NET_ADMIN".into()],
                cap_drop: vec![],
                sysctls: BTreeMap::from([("net.core.somaxconn".into(), "1024".into())]),
                ulimits: vec![
                    Ulimit { name: "nproc".into(), soft: 10, hard: 20 },
                    Ulimit { name: "nofile".into(), soft: 100, hard: 200 },
                ],
            },
            resources: ServiceResources {
                limit_nano_cpus: Some(500_000_000),
                limit_memory_bytes: Some(64 << 20),
                limit_pids: Some(100),
                reserve_nano_cpus: Some(100_000_000),
                reserve_memory_bytes: None,
            },
            restart: SwarmRestartPolicy {
                condition: RestartCondition::OnFailure,
                delay: Duration::from_millis(1500),
                max_attempts: 3,
                window: Duration::from_secs(60),
            },
            placement: ServicePlacement {
                constraints: vec!["node.role==worker".into(), "node.labels.tier==web".into()],
                spread: vec!["node.labels.zone".into()],
                max_replicas_per_node: Some(2),
            },
            networks: vec![
                ServiceNetwork { network_id: "net-b".into(), aliases: vec!["web".into()] },
                ServiceNetwork { network_id: "net-a".into(), aliases: vec![] },
            ],
            endpoint: Endpoint {
                dnsrr: false,
                ports: vec![port("udp", 53, Some(5353), true), port("tcp", 8080, Some(80), false), port("tcp", 9000, None, false)],
            },
            update: Some(UpdateConfig {
                parallelism: 2,
                delay: Duration::from_secs(1),
                failure_action: FailureAction::Rollback,
                monitor: Duration::from_secs(5),
                max_failure_ratio: 0.25,
                start_first: true,
            }),
            rollback: Some(UpdateConfig {
                parallelism: 0,
                delay: Duration::ZERO,
                failure_action: FailureAction::Pause,
                monitor: Duration::from_secs(5),
                max_failure_ratio: 0.0,
                start_first: false,
            }),
            log_driver: Some(LogDriver { name: "json-file".into(), options: BTreeMap::from([("max-size".into(), "1m".into())]) }),
        }
    }

    fn container(spec: &BollardServiceSpec) -> &TaskSpecContainerSpec {
        spec.task_template.as_ref().and_then(|task| task.container_spec.as_ref()).expect("container spec")
    }

    #[test]
    fn every_top_level_field_is_sent() {
        let spec = service_spec(&full_spec()).expect("converts");
        assert_eq!(spec.name.as_deref(), Some("demo_web"));
        assert_eq!(spec.labels.as_ref().and_then(|labels| labels.get(LABEL_STACK)).map(String::as_str), Some("demo"));
        assert_eq!(spec.mode.and_then(|mode| mode.replicated).and_then(|replicated| replicated.replicas), Some(3));
        assert!(spec.networks.is_none(), "networks go in the task template");
        let task = spec.task_template.as_ref().expect("task template");
        let targets: Vec<_> = task.networks.iter().flatten().map(|network| network.target.clone().unwrap_or_default()).collect();
        assert_eq!(targets, ["net-b", "net-a"], "networks keep the given order");
        assert_eq!(task.networks.as_ref().expect("networks")[0].aliases, Some(vec!["web".to_string()]));
        assert_eq!(task.networks.as_ref().expect("networks")[1].aliases, None, "no aliases: absent, not empty");
        let log = task.log_driver.as_ref().expect("log driver");
        assert_eq!(log.name.as_deref(), Some("json-file"));
    }

    #[test]
    fn update_config_sends_every_field_and_never_parallelism_zero() {
        let spec = service_spec(&full_spec()).expect("converts");
        let update = spec.update_config.expect("update config");
        assert_eq!(update.parallelism, Some(2));
        assert_eq!(update.delay, Some(1_000_000_000));
        assert_eq!(update.failure_action, Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
        assert_eq!(update.monitor, Some(5_000_000_000));
        assert_eq!(update.max_failure_ratio, Some(0.25));
        assert_eq!(update.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        let rollback = spec.rollback_config.expect("rollback config");
        assert_eq!(rollback.parallelism, Some(1), "0 would mean all at once");
        assert_eq!(rollback.delay, Some(0));
        assert_eq!(rollback.failure_action, Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE));
        assert_eq!(rollback.monitor, Some(5_000_000_000));
        assert_eq!(rollback.max_failure_ratio, Some(0.0));
        assert_eq!(rollback.order, Some(ServiceSpecRollbackConfigOrderEnum::STOP_FIRST));
    }

    #[test]
    fn a_rollback_that_rolls_back_is_refused() {
        let mut spec = full_spec();
        spec.rollback.as_mut().expect("rollback").failure_action = FailureAction::Rollback;
        assert!(service_spec(&spec).expect_err("refused").contains("rollback"));
    }

    #[test]
    fn jobs_send_no_update_config() {
        let spec = ServiceSpec { mode: ServiceMode::ReplicatedJob { total: 4 }, update: None, rollback: None, ..full_spec() };
        let converted = service_spec(&spec).expect("converts");
        assert!(converted.update_config.is_none() && converted.rollback_config.is_none());
        let job = converted.mode.and_then(|mode| mode.replicated_job).expect("replicated job");
        assert_eq!((job.max_concurrent, job.total_completions), (Some(4), Some(4)));
    }

    #[test]
    fn every_mode_maps_to_its_one_field() {
        let json = |mode| serde_json::to_value(service_mode(mode)).expect("serialises");
        assert_eq!(json(ServiceMode::Replicated { replicas: 2 }), serde_json::json!({"Replicated": {"Replicas": 2}}));
        assert_eq!(json(ServiceMode::Global), serde_json::json!({"Global": {}}));
        assert_eq!(
            json(ServiceMode::ReplicatedJob { total: 3 }),
            serde_json::json!({"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}})
        );
        assert_eq!(json(ServiceMode::GlobalJob), serde_json::json!({"GlobalJob": {}}));
        for mode in [ServiceMode::Replicated { replicas: 2 }, ServiceMode::Global, ServiceMode::ReplicatedJob { total: 3 }, ServiceMode::GlobalJob] {
            assert_eq!(observed_mode(&service_mode(mode)), mode);
        }
    }

    #[test]
    fn untagged_images_get_latest() {
        assert_eq!(normalise_image("busybox"), "busybox:latest");
        assert_eq!(normalise_image("swarmctl-test/testapp"), "swarmctl-test/testapp:latest");
        assert_eq!(normalise_image("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalise_image("localhost:5000/app:2"), "localhost:5000/app:2");
        assert_eq!(normalise_image("app@sha256:abcd"), "app@sha256:abcd");
        let spec = service_spec(&full_spec()).expect("converts");
        assert_eq!(container(&spec).image.as_deref(), Some("swarmctl-test/testapp:latest"));
    }

    #[test]
    fn container_fields_pass_through_with_env_in_the_given_order() {
        let spec = service_spec(&full_spec()).expect("converts");
        let container = container(&spec);
        assert_eq!(container.env, Some(vec!["B=2".to_string(), "A=1".to_string()]));
        assert_eq!(container.command, Some(vec!["/testapp".to_string()]));
        assert_eq!(container.args, Some(vec!["serve".to_string()]));
        assert_eq!(container.hostname.as_deref(), Some("{{.Task.Slot}}"));
        assert_eq!(container.user.as_deref(), Some("1000:1000"));
        assert_eq!(container.dir.as_deref(), Some("/srv"));
        assert_eq!(container.groups, Some(vec!["wheel".to_string()]));
        assert_eq!((container.tty, container.open_stdin, container.read_only), (Some(true), Some(false), Some(true)));
        assert_eq!(container.init, Some(true));
        assert_eq!(container.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(container.stop_grace_period, Some(2_000_000_000));
        assert_eq!(container.hosts, Some(vec!["10.0.0.1 db".to_string()]));
        let dns = container.dns_config.as_ref().expect("dns");
        assert_eq!(dns.nameservers, Some(vec!["10.0.0.53".to_string()]));
        assert_eq!(dns.search, None);
        assert_eq!(dns.options, Some(vec!["ndots:1".to_string()]));
        assert_eq!(container.sysctls.as_ref().map(HashMap::len), Some(1));
        assert_eq!(container.labels.as_ref().and_then(|labels| labels.get(LABEL_HASH)).map(String::as_str), Some("h1"));
    }

    #[test]
    fn healthcheck_durations_are_nanoseconds() {
        let spec = service_spec(&full_spec()).expect("converts");
        let health = container(&spec).health_check.as_ref().expect("healthcheck");
        assert_eq!(health.interval, Some(500_000_000));
        assert_eq!(health.timeout, Some(2_000_000_000));
        assert_eq!(health.start_period, Some(10_000_000_000));
        assert_eq!(health.retries, Some(3));
        assert_eq!(health.start_interval, None, "Engine 20.10 does not know it");
        let json = serde_json::to_value(container(&spec)).expect("serialises");
        assert!(json.get("HealthCheck").is_some(), "the daemon reads it case-insensitively");
    }

    #[test]
    fn unordered_lists_are_sorted_and_capabilities_deduplicated() {
        let spec = service_spec(&full_spec()).expect("converts");
        let container = container(&spec);
        let configs: Vec<_> = container.configs.iter().flatten().map(|config| config.config_name.clone().unwrap_or_default()).collect();
        assert_eq!(configs, ["demo_a", "demo_b"]);
        assert_eq!(container.capability_add, Some(vec!["CHOWN".to_string(), "NET_ADMIN".to_string()]));
        assert_eq!(container.capability_drop, None);
        let ulimits: Vec<_> = container.ulimits.iter().flatten().map(|ulimit| ulimit.name.clone().unwrap_or_default()).collect();
        assert_eq!(ulimits, ["nofile", "nproc"]);
        let ports: Vec<_> = spec
            .endpoint_spec
            .as_ref()
            .and_then(|endpoint| endpoint.ports.as_ref())
            .expect("ports")
            .iter()
            .map(|port| (port.published_port, port.target_port))
            .collect();
        assert_eq!(ports, [(None, Some(9000)), (Some(80), Some(8080)), (Some(5353), Some(53))]);
    }

    #[test]
    fn config_and_secret_references_carry_id_name_and_file() {
        let spec = service_spec(&full_spec()).expect("converts");
        let json = serde_json::to_value(container(&spec)).expect("serialises");
        assert_eq!(
            json["Configs"][0],
            serde_json::json!({"ConfigID": "c1", "ConfigName": "demo_a", "File": {"Name": "/etc/a", "UID": "0", "GID": "0", "Mode": 292}})
        );
        assert_eq!(
            json["Secrets"][0],
            serde_json::json!({"SecretID": "s1", "SecretName": "demo_pw", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 292}})
        );
    }

    #[test]
    fn mounts_keep_their_order_and_options() {
        let spec = service_spec(&full_spec()).expect("converts");
        let mounts = container(&spec).mounts.as_ref().expect("mounts");
        let kinds: Vec<_> = mounts.iter().map(|mount| (mount.typ, mount.source.clone(), mount.target.clone())).collect();
        assert_eq!(
            kinds,
            [
                (Some(MountType::VOLUME), Some("demo_data".to_string()), Some("/data".to_string())),
                (Some(MountType::TMPFS), None, Some("/scratch".to_string())),
                (Some(MountType::BIND), Some("/etc/hostname".to_string()), Some("/host-name".to_string())),
            ]
        );
        let volume = mounts[0].volume_options.as_ref().expect("volume options");
        assert_eq!(volume.labels.as_ref().and_then(|labels| labels.get(LABEL_STACK)).map(String::as_str), Some("demo"));
        assert_eq!(volume.no_copy, Some(true), "volume.nocopy");
        let driver = volume.driver_config.as_ref().expect("driver");
        assert_eq!(driver.name.as_deref(), Some("local"));
        assert_eq!(mounts[1].tmpfs_options.as_ref().and_then(|tmpfs| tmpfs.size_bytes), Some(1 << 20));
        assert_eq!(mounts[1].tmpfs_options.as_ref().and_then(|tmpfs| tmpfs.mode), Some(0o1777));
        assert!(mounts[2].volume_options.is_none() && mounts[2].tmpfs_options.is_none());
        let propagation = mounts[2].bind_options.as_ref().and_then(|bind| bind.propagation);
        assert_eq!(propagation, Some(bollard::models::MountBindOptionsPropagationEnum::RSLAVE));
        assert_eq!(mounts[2].read_only, Some(true));
    }

    #[test]
    fn resources_restart_and_placement() {
        let spec = service_spec(&full_spec()).expect("converts");
        let task = spec.task_template.as_ref().expect("task");
        let resources = task.resources.as_ref().expect("resources");
        let limits = resources.limits.as_ref().expect("limits");
        assert_eq!((limits.nano_cpus, limits.memory_bytes, limits.pids), (Some(500_000_000), Some(64 << 20), Some(100)));
        let reservations = resources.reservations.as_ref().expect("reservations");
        assert_eq!((reservations.nano_cpus, reservations.memory_bytes), (Some(100_000_000), None));
        let restart = task.restart_policy.as_ref().expect("restart");
        assert_eq!(restart.condition, Some(TaskSpecRestartPolicyConditionEnum::ON_FAILURE));
        assert_eq!((restart.delay, restart.max_attempts, restart.window), (Some(1_500_000_000), Some(3), Some(60_000_000_000)));
        let placement = task.placement.as_ref().expect("placement");
        assert_eq!(placement.constraints, Some(vec!["node.role==worker".to_string(), "node.labels.tier==web".to_string()]));
        assert_eq!(placement.max_replicas, Some(2));
        let spread = placement.preferences.as_ref().expect("preferences")[0].spread.as_ref().expect("spread");
        assert_eq!(spread.spread_descriptor.as_deref(), Some("node.labels.zone"));
    }

    #[test]
    fn a_minimal_spec_sends_absent_lists_and_the_default_restart_policy() {
        let spec = ServiceSpec { name: "demo_min".into(), container: ContainerTemplate { image: "busybox".into(), ..Default::default() }, ..Default::default() };
        let converted = service_spec(&spec).expect("converts");
        let json = serde_json::to_value(&converted).expect("serialises");
        let container = &json["TaskTemplate"]["ContainerSpec"];
        for absent in ["Env", "Mounts", "Labels", "Hosts", "Configs", "Secrets", "CapabilityAdd", "Ulimits", "Sysctls", "DNSConfig", "Groups"] {
            assert!(container.get(absent).is_none(), "{absent} must be absent: {container}");
        }
        for absent in ["Resources", "Placement", "Networks", "LogDriver"] {
            assert!(json["TaskTemplate"].get(absent).is_none(), "{absent} must be absent");
        }
        assert!(json.get("UpdateConfig").is_none() && json.get("Labels").is_none());
        assert_eq!(json["TaskTemplate"]["RestartPolicy"], serde_json::json!({"Condition": "any", "Delay": 5_000_000_000i64, "MaxAttempts": 0, "Window": 0}));
        assert_eq!(json["EndpointSpec"], serde_json::json!({"Mode": "vip"}));
    }

    #[test]
    fn endpoint_modes_and_publish_modes() {
        let mut spec = full_spec();
        spec.endpoint = Endpoint { dnsrr: true, ports: vec![port("tcp", 8080, Some(18080), true)] };
        let converted = service_spec(&spec).expect("converts");
        let json = serde_json::to_value(converted.endpoint_spec).expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({"Mode": "dnsrr", "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 18080, "PublishMode": "host"}]})
        );
        spec.endpoint.ports = vec![port("icmp", 1, None, false)];
        assert!(service_spec(&spec).is_err());
    }

    #[test]
    fn secrets_are_base64_and_redacted_content_is_refused() {
        let spec = ObjectSpec { name: "demo_pw".into(), labels: BTreeMap::new(), data: FileContent::new("hunter2") };
        assert_eq!(secret_spec(&spec).and_then(|secret| secret.data).as_deref(), Some("aHVudGVyMg=="));
        assert_eq!(config_spec(&spec).and_then(|config| config.data).as_deref(), Some("aHVudGVyMg=="));
        let redacted: FileContent = serde_json::from_str(&serde_json::to_string(&spec.data).expect("serialises")).expect("reads");
        let redacted = ObjectSpec { data: redacted, ..spec };
        assert!(secret_spec(&redacted).is_none() && config_spec(&redacted).is_none());
    }

    #[test]
    fn base64_round_trips_any_bytes() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0, 255, 128, 7, 1]] {
            let encoded = base64_encode(bytes);
            assert_eq!(base64_decode(&encoded).as_deref(), Some(bytes), "{encoded}");
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn the_stale_version_500_is_a_conflict() {
        let stale = EngineError::Api {
            operation: "update service",
            resource: "demo_web".into(),
            status: Some(500),
            message: "rpc error: code = Unknown desc = update out of sequence".into(),
        };
        assert!(stale_version_is_conflict(stale).is_conflict());
        let other = EngineError::Api { operation: "update service", resource: "demo_web".into(), status: Some(500), message: "boom".into() };
        assert!(!stale_version_is_conflict(other).is_conflict());
    }

    #[test]
    fn timestamps_normalise_to_nine_digits_and_parse() {
        assert_eq!(normalise_timestamp("2026-11-30T12:25:45.5Z"), "2026-11-30T12:25:45.500000000Z");
        assert_eq!(normalise_timestamp("2026-11-30T12:25:45Z"), "2026-11-30T12:25:45.000000000Z");
        assert_eq!(normalise_timestamp("2026-11-30T14:25:45.123+02:00"), "2026-11-30T12:25:45.123000000Z");
        assert_eq!(normalise_timestamp("garbage"), "garbage");
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), None);
        let moment = parse_timestamp("1970-01-02T00:00:01.25Z").expect("parses");
        assert_eq!(moment.duration_since(UNIX_EPOCH).expect("after epoch"), Duration::new(86_401, 250_000_000));
        assert!(normalise_timestamp("2026-01-01T00:00:01Z") > normalise_timestamp("2026-01-01T00:00:00.9Z"));
    }

    #[test]
    fn tasks_read_state_hash_slot_and_exit_code() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "ID": "t1", "ServiceID": "s1", "NodeID": "n1", "CreatedAt": "2026-11-30T12:25:42.5935Z",
            "Spec": {"ContainerSpec": {"Image": "x", "Labels": {"io.swarmctl.spec-hash": "h1"}}},
            "Status": {"Timestamp": "2026-11-30T12:25:45.36Z", "State": "failed", "Message": "started",
                       "Err": "task: non-zero exit (3)", "ContainerStatus": {"ExitCode": 3}},
            "DesiredState": "shutdown", "JobIteration": {}
        }))
        .expect("task json");
        let observed = observed_task(&task, true).expect("observed");
        assert_eq!(observed.slot, Some(0), "a replicated job's slot 0 is left out by the API");
        assert_eq!(observed.state, TaskState::Failed);
        assert_eq!(observed.desired_state, TaskState::Shutdown);
        assert_eq!(observed.error.as_deref(), Some("task: non-zero exit (3)"));
        assert_eq!(observed.exit_code, Some(3));
        assert_eq!(observed.spec_hash.as_deref(), Some("h1"));
        assert_eq!(observed.created, "2026-11-30T12:25:42.593500000Z");
        assert_eq!(task_job_iteration(&task), Some(0));
        assert!(task_state_since(&task).is_some());
        assert_eq!(observed_task(&task, false).expect("observed").slot, None);
    }

    #[test]
    fn services_read_mode_counts_update_and_hashes() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "ID": "s1", "Version": {"Index": 44}, "CreatedAt": "2026-11-30T12:00:00Z", "UpdatedAt": "2026-11-30T12:01:00Z",
            "Spec": {"Name": "demo_job", "Labels": {"io.swarmctl.stack": "demo"},
                     "Mode": {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 2}},
                     "TaskTemplate": {"ContainerSpec": {"Image": "x", "Labels": {"io.swarmctl.spec-hash": "h2"}}}},
            "ServiceStatus": {"RunningTasks": 0, "DesiredTasks": 2, "CompletedTasks": 1},
            "JobStatus": {"JobIteration": {"Index": 7}},
            "UpdateStatus": {"State": "rollback_started", "Message": "manually requested rollback"}
        }))
        .expect("service json");
        let observed = observed_service(&service).expect("observed");
        assert_eq!(observed.version, 44);
        assert_eq!(observed.mode, ServiceMode::ReplicatedJob { total: 2 });
        assert_eq!((observed.running_tasks, observed.desired_tasks, observed.completed_tasks), (0, 2, 1));
        assert_eq!(observed.update.as_ref().map(|update| update.state), Some(UpdateState::RollbackStarted));
        assert_eq!(service_task_hash(&service).as_deref(), Some("h2"));
        assert_eq!(service_job_iteration(&service), Some(7));
    }

    #[test]
    fn nodes_read_role_state_resources_and_labels() {
        let node: BollardNode = serde_json::from_value(serde_json::json!({
            "ID": "n1",
            "Spec": {"Role": "manager", "Availability": "drain", "Labels": {"zone": "a"}},
            "Description": {"Hostname": "node-1", "Platform": {"Architecture": "x86_64", "OS": "linux"},
                            "Resources": {"NanoCPUs": 2000000000, "MemoryBytes": 1073741824},
                            "Engine": {"EngineVersion": "20.10.24", "Labels": {"disk": "ssd"}}},
            "Status": {"State": "ready", "Addr": "0.0.0.0"},
            "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "10.199.1.11:2377"}
        }))
        .expect("node json");
        let node = super::node(&node).expect("node");
        assert_eq!((node.hostname.as_str(), node.role, node.availability, node.state), ("node-1", Role::Manager, Availability::Drain, State::Ready));
        assert_eq!(node.addr.as_deref(), Some("10.199.1.11"));
        assert_eq!(node.labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!(node.engine_labels.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!((node.platform.os.as_str(), node.platform.architecture.as_str()), ("linux", "x86_64"));
        assert_eq!((node.resources.nano_cpus, node.resources.memory_bytes), (2_000_000_000, 1 << 30));
    }

    #[test]
    fn host_ports_come_from_the_endpoint() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "ID": "s1",
            "Spec": {"Name": "x", "EndpointSpec": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}},
            "Endpoint": {"Ports": [
                {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 5353, "PublishMode": "host"},
                {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30000, "PublishMode": "ingress"}
            ]}
        }))
        .expect("service json");
        assert_eq!(host_ports(&service), [HostPort { protocol: "udp".into(), port: 5353 }]);
    }
}
