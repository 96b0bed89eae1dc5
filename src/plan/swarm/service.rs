//! What one compose service is to Swarm: its service spec, converted the way `docker stack
//! deploy` converts it (docker/cli `cli/compose/convert/service.go`) but with every field
//! explicit, and the hashes that say whether an observed service needs an update.
//!
//! Two hashes, because Swarm restarts tasks only when their task spec changes: the *task hash*
//! (the container every task runs: image, command, environment, mounts, …; the host target's
//! spec hash) rides on the containers' labels, so a wait counts only the tasks of the new spec;
//! the *service hash* adds what changes the service without touching its tasks (replicas,
//! placement, update policy, service labels) and rides on the service's labels.
//!
//! The container settings come from the same translation the host target uses
//! ([`container_spec`]), so a stack runs the same thing on both.

use crate::model::labels::{LABEL_DEPENDS_ON, LABEL_FIELDS, LABEL_HASH, LABEL_KIND, LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK};
use crate::model::objects::{self, ContainerSpec, MountKind};
use crate::model::service::{
    ContainerTemplate, DnsConfig, Endpoint, FailureAction, FileReference, LogDriver, RestartCondition, ServiceMode,
    ServiceMount, ServiceNetwork, ServicePlacement, ServicePort, ServiceResources, ServiceSpec, SwarmRestartPolicy, UpdateConfig,
};
use crate::model::stack::{FileObject, Kind, Service, Stack};
use crate::plan::host::container::{container_spec, network_attachments};
use crate::plan::naming::{field_hashes_label, json_hash, spec_hash};
use crate::plan::rollout::{self, FailurePolicy, UpdateOrder};
use crate::plan::teardown::depends_on_label;
use std::collections::BTreeMap;
use std::time::Duration;

/// The label `docker stack` reads: `docker stack ls / ps / services` list swarmctl's stacks too.
pub const LABEL_NAMESPACE: &str = "com.docker.stack.namespace";
/// The node a statefulset ordinal is pinned to (where its volume lives).
pub const LABEL_NODE: &str = "io.swarmctl.node";

/// `<stack>_<service>`, and `<stack>_<service>-<ordinal>` for a statefulset's ordinal (each its
/// own Swarm service, so each has a stable name and its own volume).
pub fn service_name(stack: &Stack, service: &Service, ordinal: Option<u32>) -> String {
    match ordinal {
        Some(ordinal) => format!("{}_{}-{ordinal}", stack.name, service.name),
        None => format!("{}_{}", stack.name, service.name),
    }
}

/// A config's or secret's Swarm name: immutable objects, so the name carries the content's
/// hash (`<stack>_<key>-<hash>`) and changed content is a new object. External ones keep theirs.
pub fn object_name(stack: &Stack, key: &str, object: &FileObject) -> String {
    if object.external {
        return object.name.clone().unwrap_or_else(|| key.to_string());
    }
    format!("{}_{key}-{}", stack.name, &object.hash[..object.hash.len().min(12)])
}

/// One Swarm service of the stack: a compose service, or one ordinal of a statefulset.
#[derive(Debug, Clone)]
pub struct Desired<'a> {
    pub service: &'a Service,
    pub ordinal: Option<u32>,
    /// The node ID an ordinal is pinned to.
    pub pin: Option<String>,
}

impl Desired<'_> {
    pub fn name(&self, stack: &Stack) -> String {
        service_name(stack, self.service, self.ordinal)
    }

    /// The Swarm mode: an ordinal is one replica; a daemonset runs on every node; a job runs
    /// its replicas to completion, or one task on every node (`global-job`).
    pub fn mode(&self) -> ServiceMode {
        match (self.service.kind, self.ordinal) {
            (_, Some(_)) => ServiceMode::Replicated { replicas: 1 },
            (Kind::Daemonset, None) => ServiceMode::Global,
            (Kind::Job, None) if self.service.swarm.global_job => ServiceMode::GlobalJob,
            (Kind::Job, None) => ServiceMode::ReplicatedJob { total: u64::from(self.service.replicas) },
            (_, None) => ServiceMode::Replicated { replicas: u64::from(self.service.replicas) },
        }
    }
}

/// What decides an update: the task hash and the service's field hashes (with its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Hashes {
    pub task: String,
    pub fields: BTreeMap<String, String>,
    pub service: String,
}

/// `task_fields`: the service's [`field_hashes`](crate::plan::naming::field_hashes), the same for each of its ordinals.
pub fn hashes(task_fields: &BTreeMap<String, String>, desired: &Desired<'_>) -> Hashes {
    let service = desired.service;
    let mut fields = task_fields.clone();
    let task = spec_hash(&fields);
    fields.insert("replicas".into(), json_hash(&desired.mode()));
    fields.insert("placement".into(), json_hash(&(&service.placement, &desired.pin)));
    fields.insert("rollout".into(), json_hash(&service.rollout));
    fields.insert("swarm".into(), json_hash(&service.swarm));
    let service_hash = spec_hash(&fields);
    Hashes { task, fields, service: service_hash }
}

/// The service spec, with network, config and secret IDs left for the executor to fill in:
/// `networks[i]` is the stack network `network_keys[i]`; configs and secrets follow the
/// service's `configs` and `secrets` in order.
pub fn service_spec(stack: &Stack, desired: &Desired<'_>, hashes: &Hashes, task_fields: &BTreeMap<String, String>) -> ServiceSpec {
    let service = desired.service;
    let replica = desired.ordinal.unwrap_or(1);
    let container = container_spec(stack, service, replica, task_fields);
    let name = desired.name(stack);

    let mut labels = service.swarm.labels.clone();
    labels.insert(LABEL_STACK.into(), stack.name.clone());
    labels.insert(LABEL_NAMESPACE.into(), stack.name.clone());
    labels.insert(LABEL_SERVICE.into(), service.name.clone());
    labels.insert(LABEL_HASH.into(), hashes.service.clone());
    labels.insert(LABEL_FIELDS.into(), field_hashes_label(&hashes.fields));
    labels.insert(LABEL_KIND.into(), service.kind.as_str().into());
    labels.insert(LABEL_DEPENDS_ON.into(), depends_on_label(service.depends_on.iter().map(|d| d.service.as_str())));
    if let Some(ordinal) = desired.ordinal {
        labels.insert(LABEL_REPLICA.into(), ordinal.to_string());
    }
    if let Some(pin) = &desired.pin {
        labels.insert(LABEL_NODE.into(), pin.clone());
    }

    let mut container_labels = service.labels.clone();
    container_labels.insert(LABEL_STACK.into(), stack.name.clone());
    container_labels.insert(LABEL_NAMESPACE.into(), stack.name.clone());
    container_labels.insert(LABEL_SERVICE.into(), service.name.clone());
    container_labels.insert(LABEL_HASH.into(), hashes.task.clone());

    let mut placement = ServicePlacement {
        constraints: service.placement.constraints.clone(),
        spread: service.placement.spread.clone(),
        max_replicas_per_node: service.placement.max_replicas_per_node.map(u64::from),
    };
    if let Some(pin) = &desired.pin {
        placement.constraints.push(format!("node.id=={pin}"));
    }
    let job = desired.mode().is_job();
    let update = (!job).then(|| update_config(service, desired));
    // An empty driver name keeps the engine's default driver, with the options written.
    let log_driver = container.log.clone().map(|log| LogDriver { name: log.driver, options: log.options });
    ServiceSpec {
        name,
        labels,
        mode: desired.mode(),
        container: template(stack, service, container, container_labels),
        resources: ServiceResources {
            limit_nano_cpus: service.resources.cpus.map(|c| (c * 1e9) as i64),
            limit_memory_bytes: service.resources.memory.map(|m| m as i64),
            limit_pids: service.resources.pids,
            reserve_nano_cpus: service.resources.reserve_cpus.map(|c| (c * 1e9) as i64),
            reserve_memory_bytes: service.resources.reserve_memory.map(|m| m as i64),
        },
        restart: restart_policy(service, job),
        placement,
        networks: network_attachments(stack, service, replica)
            .into_iter()
            .map(|attachment| ServiceNetwork { network_id: String::new(), aliases: attachment.aliases })
            .collect(),
        endpoint: Endpoint {
            dnsrr: service.swarm.dnsrr,
            ports: service
                .ports
                .iter()
                .filter(|p| p.published.is_some() || p.ephemeral)
                .map(|p| ServicePort { protocol: p.protocol.clone(), target: p.target, published: p.published, host_mode: p.host_mode })
                .collect(),
        },
        update,
        // A rollback is never rolled back itself: on failure it pauses.
        rollback: update.map(|u| UpdateConfig { failure_action: FailureAction::Pause, ..u }),
        log_driver,
    }
}

/// The container of every task, from the settings both targets share.
fn template(stack: &Stack, service: &Service, container: ContainerSpec, labels: BTreeMap<String, String>) -> ContainerTemplate {
    let mut env = container.env;
    env.sort();
    // The container's mounts follow the service's volumes one for one.
    let mut mounts: Vec<ServiceMount> = container.mounts.iter().zip(&service.volumes).map(|(m, written)| mount(stack, m, &written.source)).collect();
    // Service-level `tmpfs:` entries are tmpfs mounts to Swarm.
    mounts.extend(container.tmpfs.iter().map(|entry| {
        let (target, options) = entry.split_once(':').unwrap_or((entry, ""));
        let size = options.split(',').find_map(|o| o.strip_prefix("size=")).and_then(crate::spec::schema::parse_size).map(|s| s as i64);
        let mode = options.split(',').find_map(|o| o.strip_prefix("mode=")).and_then(|m| u32::from_str_radix(m, 8).ok());
        ServiceMount {
            kind: MountKind::Tmpfs,
            source: String::new(),
            target: target.to_string(),
            read_only: false,
            volume_labels: BTreeMap::new(),
            volume_driver: None,
            volume_options: BTreeMap::new(),
            no_copy: false,
            tmpfs_size: size,
            tmpfs_mode: mode,
            propagation: None,
        }
    }));
    let reference = |target: &str, file: &crate::model::stack::FileMount, object: &str| FileReference {
        object_id: String::new(),
        object_name: object.to_string(),
        target: target.to_string(),
        uid: file.uid.clone().unwrap_or_else(|| "0".into()),
        gid: file.gid.clone().unwrap_or_else(|| "0".into()),
        mode: file.mode.unwrap_or(0o444),
    };
    ContainerTemplate {
        image: container.image,
        command: container.entrypoint,
        args: container.command,
        hostname: container.hostname,
        env,
        labels,
        user: container.user,
        working_dir: container.working_dir,
        groups: container.group_add,
        tty: container.tty,
        stdin_open: container.stdin_open,
        read_only: container.read_only,
        init: container.init,
        mounts,
        stop_signal: container.stop_signal,
        stop_grace: container.stop_grace,
        healthcheck: container.healthcheck,
        // Compose writes `host:ip`; Swarm takes `/etc/hosts` lines, `ip host`.
        hosts: container.extra_hosts.iter().filter_map(|h| h.split_once(':').map(|(host, ip)| format!("{ip} {host}"))).collect(),
        dns: DnsConfig { nameservers: container.dns, search: container.dns_search, options: container.dns_options },
        configs: service
            .configs
            .iter()
            .filter_map(|c| stack.configs.get(&c.source).map(|o| reference(&c.target, c, &object_name(stack, &c.source, o))))
            .collect(),
        secrets: service
            .secrets
            .iter()
            .filter_map(|s| stack.secrets.get(&s.source).map(|o| reference(&s.target, s, &object_name(stack, &s.source, o))))
            .collect(),
        cap_add: container.cap_add,
        cap_drop: container.cap_drop,
        sysctls: container.sysctls,
        ulimits: container.ulimits,
    }
}

/// A volume, bind or tmpfs mount; a named volume of the stack (`key`) carries the stack's labels
/// for the nodes that create it (Swarm makes it where a task lands).
fn mount(stack: &Stack, mount: &objects::Mount, key: &str) -> ServiceMount {
    let declared = stack.volumes.get(key).filter(|v| mount.kind == MountKind::Volume && !v.external);
    let (volume_labels, volume_driver, volume_options) = match declared {
        Some(volume) => {
            let mut labels = volume.labels.clone();
            labels.insert(LABEL_STACK.into(), stack.name.clone());
            labels.insert(LABEL_NAMESPACE.into(), stack.name.clone());
            labels.insert("io.swarmctl.volume".into(), key.to_string());
            (labels, volume.driver.clone(), volume.driver_opts.clone())
        }
        None => (BTreeMap::new(), None, BTreeMap::new()),
    };
    ServiceMount {
        kind: mount.kind,
        source: mount.source.clone(),
        target: mount.target.clone(),
        read_only: mount.read_only,
        volume_labels,
        volume_driver,
        volume_options,
        no_copy: mount.no_copy,
        tmpfs_size: mount.tmpfs_size,
        tmpfs_mode: mount.tmpfs_mode,
        propagation: mount.propagation.clone(),
    }
}

/// `deploy.restart_policy` as written; else compose's `restart` the way `docker stack deploy`
/// reads it (`always`/`unless-stopped` → any, `on-failure[:n]`), else Swarm's default (any,
/// 5 s apart). A job's tasks are not restarted: a failed job fails the deploy, as on one host.
fn restart_policy(service: &Service, job: bool) -> SwarmRestartPolicy {
    let default = SwarmRestartPolicy::default();
    if job {
        return SwarmRestartPolicy { condition: RestartCondition::None, ..default };
    }
    if let Some(policy) = &service.swarm.restart_policy {
        let condition = match policy.condition.as_str() {
            "none" => RestartCondition::None,
            "on-failure" => RestartCondition::OnFailure,
            _ => RestartCondition::Any,
        };
        return SwarmRestartPolicy {
            condition,
            delay: policy.delay.unwrap_or(default.delay),
            max_attempts: policy.max_attempts.unwrap_or(0),
            window: policy.window.unwrap_or(Duration::ZERO),
        };
    }
    match service.restart.as_deref() {
        Some(on_failure) if on_failure.starts_with("on-failure") => SwarmRestartPolicy {
            condition: RestartCondition::OnFailure,
            max_attempts: on_failure.split_once(':').and_then(|(_, n)| n.parse().ok()).unwrap_or(0),
            ..default
        },
        _ => default,
    }
}

/// The rolling update, in Swarm's words: surge only is start-first, unavailability only is
/// stop-first, `min_ready` is the delay between batches (see [`rollout::swarm_update_config`]).
/// A statefulset ordinal is one replica: stop-first, as Kubernetes replaces a pod.
fn update_config(service: &Service, desired: &Desired<'_>) -> UpdateConfig {
    let replicas = match desired.ordinal {
        Some(_) => 1,
        None => service.replicas,
    };
    let kind = if desired.ordinal.is_some() { Kind::Deployment } else { service.kind };
    let bounds = match (desired.ordinal, rollout::strategy_for(kind, &service.rollout, replicas)) {
        (Some(_), _) => rollout::Bounds::new(1, 0, 1),
        (None, strategy) => strategy.bounds(),
    };
    // A failed update pauses; `auto_rollback` is swarmctl's, for the whole revision (see
    // `crate::deploy`), so Swarm's own rollback would only race it.
    let action = if service.rollout.continue_on_failure { rollout::FailureAction::Continue } else { rollout::FailureAction::Pause };
    let policy = FailurePolicy { action, monitor: service.rollout.monitor, max_failure_ratio: service.rollout.max_failure_ratio };
    let mapped = rollout::swarm_update_config(&bounds, service.rollout.min_ready, &policy).config;
    UpdateConfig {
        parallelism: u64::from(mapped.parallelism.max(1)),
        delay: mapped.delay,
        failure_action: match mapped.failure_action {
            rollout::FailureAction::Pause => FailureAction::Pause,
            rollout::FailureAction::Continue => FailureAction::Continue,
            rollout::FailureAction::Rollback => FailureAction::Rollback,
        },
        monitor: mapped.monitor,
        max_failure_ratio: mapped.max_failure_ratio,
        start_first: mapped.order == UpdateOrder::StartFirst,
    }
}
