//! Domain ⇄ bollard models: the only module that builds or reads bollard's wire types.
//!
//! Straight, field-by-field translation with no decisions and no IO, so every mapping can be
//! unit-tested (ports, mounts, health check nanoseconds, restart policy, …). Anything the
//! engine must *do* (the order of calls, cleanup) lives in [`super::docker`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum, EndpointSettings, HealthConfig,
    HealthStatusEnum, HostConfig, ImageSummary, Ipam, IpamConfig, Mount as BollardMount, MountType,
    Network, NetworkCreateRequest, NetworkingConfig, PortBinding as BollardPortBinding,
    ResourcesUlimits, RestartPolicy as BollardRestartPolicy, RestartPolicyNameEnum, Volume,
    VolumeCreateRequest, DeviceMapping, EndpointIpamConfig, HostConfigLogConfig, MountBindOptions, MountBindOptionsPropagationEnum,
    MountTmpfsOptions, MountVolumeOptions,
};
use bollard::models::{ContainerState as InspectedState, ContainerStateStatusEnum};

use super::error::{sanitize, EngineError, Operation};
use crate::model::host::{
    is_anonymous_volume, unix_seconds_to_rfc3339, ContainerState, ForeignPort, HealthState, ObservedContainer, ObservedNetwork, ObservedVolume,
};
use crate::model::objects::{
    ContainerSpec, Healthcheck, MountKind, NetworkAttachment, NetworkSpec, RestartPolicy, VolumeSpec,
};

/// Converts a label or option map to the wire's `HashMap`, `None` when empty.
fn to_hash_map(map: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    if map.is_empty() {
        None
    } else {
        Some(map.iter().map(|(key, value)| (key.clone(), value.clone())).collect())
    }
}

fn to_btree_map(map: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    map.map(|entries| entries.iter().map(|(key, value)| (key.clone(), value.clone())).collect())
        .unwrap_or_default()
}

fn non_empty<T: Clone>(list: &[T]) -> Option<Vec<T>> {
    if list.is_empty() {
        None
    } else {
        Some(list.to_vec())
    }
}

/// A duration in nanoseconds, the unit of the health check fields, saturating at `i64::MAX`.
pub(crate) fn duration_to_nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// The body of `POST /containers/create` for a spec: one network at most (API 1.41 refuses
/// several); see [`endpoint_settings`] for the others.
pub(crate) fn container_create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let networking_config = spec.network.as_ref().map(|attachment| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(attachment.network_id.clone(), endpoint_settings(attachment))])),
    });
    let network_mode = spec
        .network_mode
        .clone()
        .or_else(|| spec.network.as_ref().map(|attachment| attachment.network_id.clone()));
    let exposed_ports: Vec<String> = {
        let unique: BTreeSet<String> = spec
            .ports
            .iter()
            .map(|port| format!("{}/{}", port.container_port, port.protocol))
            .chain(spec.exposed_ports.iter().cloned())
            .collect();
        unique.into_iter().collect()
    };

    ContainerCreateBody {
        hostname: spec.hostname.clone(),
        domainname: spec.domainname.clone(),
        user: spec.user.clone(),
        exposed_ports: if exposed_ports.is_empty() { None } else { Some(exposed_ports) },
        tty: Some(spec.tty),
        open_stdin: Some(spec.stdin_open),
        env: non_empty(&spec.env),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        healthcheck: spec.healthcheck.as_ref().map(health_config),
        image: Some(spec.image.clone()),
        working_dir: spec.working_dir.clone(),
        labels: to_hash_map(&spec.labels),
        stop_signal: spec.stop_signal.clone(),
        // Whole seconds, rounded up: a `1.5s` grace must not become 1 s for `docker stop`.
        stop_timeout: spec.stop_grace.map(|grace| i64::try_from(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)).unwrap_or(i64::MAX)),
        host_config: Some(host_config(spec, network_mode)),
        networking_config,
        ..Default::default()
    }
}

fn host_config(spec: &ContainerSpec, network_mode: Option<String>) -> HostConfig {
    HostConfig {
        cpu_shares: spec.resources.cpu_shares,
        cpuset_cpus: spec.resources.cpuset_cpus.clone(),
        cpu_quota: spec.resources.cpu_quota,
        cpu_period: spec.resources.cpu_period,
        memory_swap: spec.resources.memory_swap_bytes,
        memory_swappiness: spec.resources.memory_swappiness,
        memory: spec.resources.memory_bytes,
        memory_reservation: spec.resources.memory_reservation_bytes,
        nano_cpus: spec.resources.nano_cpus,
        pids_limit: spec.resources.pids_limit,
        init: spec.init,
        ulimits: if spec.ulimits.is_empty() {
            None
        } else {
            Some(
                spec.ulimits
                    .iter()
                    .map(|ulimit| ResourcesUlimits {
                        name: Some(ulimit.name.clone()),
                        soft: Some(ulimit.soft),
                        hard: Some(ulimit.hard),
                    })
                    .collect(),
            )
        },
        network_mode,
        port_bindings: port_bindings(spec),
        restart_policy: Some(restart_policy(spec.restart)),
        // A bind whose host path may be created goes the way `docker run -v` sends it: the
        // engine creates what is missing there (and only there, for a remote engine).
        binds: non_empty(&spec.mounts.iter().filter(|m| creates_host_path(m)).map(bind).collect::<Vec<_>>()),
        mounts: non_empty(&spec.mounts.iter().filter(|m| !creates_host_path(m)).map(mount).collect::<Vec<_>>()),
        cap_add: non_empty(&spec.cap_add),
        cap_drop: non_empty(&spec.cap_drop),
        dns: non_empty(&spec.dns),
        dns_search: non_empty(&spec.dns_search),
        dns_options: non_empty(&spec.dns_options),
        group_add: non_empty(&spec.group_add),
        security_opt: non_empty(&spec.security_opt),
        log_config: spec.log.as_ref().map(|log| HostConfigLogConfig { typ: Some(log.driver.clone()), config: to_hash_map(&log.options) }),
        pid_mode: spec.pid_mode.clone(),
        ipc_mode: spec.ipc_mode.clone(),
        userns_mode: spec.userns_mode.clone(),
        oom_score_adj: spec.oom_score_adj,
        devices: non_empty(
            &spec
                .devices
                .iter()
                .map(|d| DeviceMapping { path_on_host: Some(d.host.clone()), path_in_container: Some(d.container.clone()), cgroup_permissions: Some(d.permissions.clone()) })
                .collect::<Vec<_>>(),
        ),
        runtime: spec.runtime.clone(),
        volumes_from: non_empty(&spec.volumes_from),
        cgroup_parent: spec.cgroup_parent.clone(),
        extra_hosts: non_empty(&spec.extra_hosts),
        privileged: Some(spec.privileged),
        readonly_rootfs: Some(spec.read_only),
        tmpfs: tmpfs_map(&spec.tmpfs),
        shm_size: spec.shm_size,
        sysctls: to_hash_map(&spec.sysctls),
        ..Default::default()
    }
}

/// `HostConfig.PortBindings`: `"80/tcp" → [{HostIp, HostPort}]`, several bindings per port allowed.
fn port_bindings(spec: &ContainerSpec) -> Option<HashMap<String, Option<Vec<BollardPortBinding>>>> {
    if spec.ports.is_empty() {
        return None;
    }
    let mut bindings: HashMap<String, Option<Vec<BollardPortBinding>>> = HashMap::new();
    for port in &spec.ports {
        let key = format!("{}/{}", port.container_port, port.protocol);
        let binding = BollardPortBinding {
            host_ip: port.host_ip.clone(),
            host_port: Some(port.host_port.map(|host_port| host_port.to_string()).unwrap_or_default()),
        };
        bindings.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(binding);
    }
    Some(bindings)
}

fn creates_host_path(mount: &crate::model::objects::Mount) -> bool {
    mount.kind == MountKind::Bind && mount.create_host_path
}

/// `/host/path:/target[:ro][,rshared]`.
fn bind(mount: &crate::model::objects::Mount) -> String {
    let options: Vec<&str> = mount.read_only.then_some("ro").into_iter().chain(mount.propagation.as_deref()).collect();
    match options.is_empty() {
        true => format!("{}:{}", mount.source, mount.target),
        false => format!("{}:{}:{}", mount.source, mount.target, options.join(",")),
    }
}

/// A bind's propagation as the API names it; the loader only lets the six modes through.
pub(crate) fn propagation(mode: Option<&str>) -> Option<MountBindOptions> {
    let propagation = mode?.parse::<MountBindOptionsPropagationEnum>().ok()?;
    Some(MountBindOptions { propagation: Some(propagation), ..Default::default() })
}

fn mount(mount: &crate::model::objects::Mount) -> BollardMount {
    let kind = match mount.kind {
        MountKind::Volume => MountType::VOLUME,
        MountKind::Bind => MountType::BIND,
        MountKind::Tmpfs => MountType::TMPFS,
    };
    BollardMount {
        target: Some(mount.target.clone()),
        source: if mount.kind == MountKind::Tmpfs { None } else { Some(mount.source.clone()) },
        typ: Some(kind),
        read_only: Some(mount.read_only),
        volume_options: mount.no_copy.then(|| MountVolumeOptions { no_copy: Some(true), ..Default::default() }),
        bind_options: if mount.kind == MountKind::Bind { propagation(mount.propagation.as_deref()) } else { None },
        tmpfs_options: (mount.tmpfs_size.is_some() || mount.tmpfs_mode.is_some())
            .then(|| MountTmpfsOptions { size_bytes: mount.tmpfs_size, mode: mount.tmpfs_mode.map(i64::from), ..Default::default() }),
        ..Default::default()
    }
}

/// `tmpfs: ["/run", "/cache:size=64m"]` → `{"/run": "", "/cache": "size=64m"}`.
fn tmpfs_map(entries: &[String]) -> Option<HashMap<String, String>> {
    if entries.is_empty() {
        return None;
    }
    Some(
        entries
            .iter()
            .map(|entry| match entry.split_once(':') {
                Some((path, options)) => (path.to_string(), options.to_string()),
                None => (entry.clone(), String::new()),
            })
            .collect(),
    )
}

/// The health check in the engine's units (nanoseconds). `["NONE"]` passes through and disables
/// the image's check.
pub(crate) fn health_config(healthcheck: &Healthcheck) -> HealthConfig {
    HealthConfig {
        test: Some(healthcheck.test.clone()),
        interval: healthcheck.interval.map(duration_to_nanos),
        timeout: healthcheck.timeout.map(duration_to_nanos),
        retries: healthcheck.retries.map(i64::from),
        start_period: healthcheck.start_period.map(duration_to_nanos),
        start_interval: None,
    }
}

pub(crate) fn restart_policy(policy: RestartPolicy) -> BollardRestartPolicy {
    let (name, maximum_retry_count) = match policy {
        RestartPolicy::Never => (RestartPolicyNameEnum::NO, None),
        RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        RestartPolicy::OnFailure { max_retries } => (RestartPolicyNameEnum::ON_FAILURE, Some(i64::from(max_retries))),
    };
    BollardRestartPolicy { name: Some(name), maximum_retry_count }
}

/// Endpoint settings for joining a network with aliases (used at create and at connect).
pub(crate) fn endpoint_settings(attachment: &NetworkAttachment) -> EndpointSettings {
    let fixed = attachment.ipv4_address.is_some() || attachment.ipv6_address.is_some();
    EndpointSettings {
        aliases: non_empty(&attachment.aliases),
        network_id: Some(attachment.network_id.clone()),
        ipam_config: fixed.then(|| EndpointIpamConfig {
            ipv4_address: attachment.ipv4_address.clone(),
            ipv6_address: attachment.ipv6_address.clone(),
            ..Default::default()
        }),
        links: non_empty(&attachment.links),
        ..Default::default()
    }
}

pub(crate) fn network_create_request(spec: &NetworkSpec) -> NetworkCreateRequest {
    let ipam = if spec.ipam_pools.is_empty() && spec.ipam_driver.is_none() && spec.ipam_options.is_empty() {
        None
    } else {
        Some(Ipam {
            driver: spec.ipam_driver.clone(),
            options: to_hash_map(&spec.ipam_options),
            config: Some(
                spec.ipam_pools
                    .iter()
                    .map(|pool| IpamConfig {
                        subnet: Some(pool.subnet.clone()),
                        gateway: pool.gateway.clone(),
                        ip_range: pool.ip_range.clone(),
                        auxiliary_addresses: to_hash_map(&pool.aux_addresses),
                    })
                    .collect(),
            ),
        })
    };
    NetworkCreateRequest {
        name: spec.name.clone(),
        driver: spec.driver.clone(),
        internal: Some(spec.internal),
        attachable: Some(spec.attachable),
        enable_ipv6: Some(spec.enable_ipv6),
        ipam,
        options: to_hash_map(&spec.options),
        labels: to_hash_map(&spec.labels),
        ..Default::default()
    }
}

/// The JSON body of `POST /containers/create` with `MacAddress` added where the spec sets one:
/// API 1.41 reads it from the config (bollard's model, for API ≥ 1.44, moved it to the
/// endpoint, which 20.10 ignores on create). `None` when bollard's own body says it all.
pub(crate) fn container_create_body_with_mac_address(spec: &ContainerSpec) -> Result<Option<Vec<u8>>, serde_json::Error> {
    let Some(mac_address) = &spec.mac_address else { return Ok(None) };
    let mut body = serde_json::to_value(container_create_body(spec))?;
    if let serde_json::Value::Object(fields) = &mut body {
        fields.insert("MacAddress".to_string(), serde_json::Value::String(mac_address.clone()));
    }
    serde_json::to_vec(&body).map(Some)
}

/// The JSON body of `POST /networks/create` with `CheckDuplicate: true` added: API 1.41 creates
/// a second network with the same name without it (bollard's model, for API ≥ 1.44, lacks the
/// field because newer engines always check).
pub(crate) fn network_create_body_checking_duplicates(spec: &NetworkSpec) -> Result<Vec<u8>, serde_json::Error> {
    let mut body = serde_json::to_value(network_create_request(spec))?;
    if let serde_json::Value::Object(fields) = &mut body {
        fields.insert("CheckDuplicate".to_string(), serde_json::Value::Bool(true));
    }
    serde_json::to_vec(&body)
}

pub(crate) fn volume_create_request(spec: &VolumeSpec) -> VolumeCreateRequest {
    VolumeCreateRequest {
        name: Some(spec.name.clone()),
        driver: spec.driver.clone(),
        driver_opts: to_hash_map(&spec.driver_opts),
        labels: to_hash_map(&spec.labels),
        ..Default::default()
    }
}

/// The container's name as listed (`/web-1` → `web-1`); the first name is the real one.
pub(crate) fn summary_name(summary: &ContainerSummary) -> Option<String> {
    summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_string())
}

/// An observed container from one row of `GET /containers/json`.
///
/// Health comes from the row's `Status` text (`Up 3 seconds (healthy)`), which the engine
/// renders from the same state `inspect` reads, at list time; this saves one inspect per
/// container. Exit codes come from `Exited (3) 2 minutes ago`.
/// The host ports a (running) container publishes.
pub(crate) fn published_ports(summary: &ContainerSummary) -> Vec<ForeignPort> {
    let container = summary_name(summary).unwrap_or_default();
    summary
        .ports
        .iter()
        .flatten()
        .filter_map(|port| {
            Some(ForeignPort {
                host_ip: port.ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                port: port.public_port?,
                protocol: port.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
                container: container.clone(),
            })
        })
        .collect()
}

pub(crate) fn observed_container(summary: &ContainerSummary) -> Option<ObservedContainer> {
    let id = summary.id.clone()?;
    let name = summary_name(summary)?;
    let status_text = summary.status.as_deref().unwrap_or("");
    let state = match summary.state {
        Some(ContainerSummaryStateEnum::RUNNING) => ContainerState::Running,
        Some(ContainerSummaryStateEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerSummaryStateEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerSummaryStateEnum::EXITED) => ContainerState::Exited { code: exit_code_from_status(status_text) },
        Some(ContainerSummaryStateEnum::DEAD) => ContainerState::Dead,
        Some(ContainerSummaryStateEnum::REMOVING) => ContainerState::Removing,
        _ => ContainerState::Created,
    };
    let health = if matches!(state, ContainerState::Running | ContainerState::Paused) {
        health_from_status(status_text)
    } else {
        None
    };
    Some(ObservedContainer {
        id,
        name,
        image: summary.image.clone().unwrap_or_default(),
        labels: to_btree_map(summary.labels.as_ref()),
        state,
        health,
        created: unix_seconds_to_rfc3339(summary.created.unwrap_or(0)),
        networks: summary
            .network_settings
            .as_ref()
            .and_then(|settings| settings.networks.as_ref())
            .map(|networks| networks.values().filter_map(|endpoint| endpoint.network_id.clone()).filter(|id| !id.is_empty()).collect())
            .unwrap_or_default(),
        anonymous_volumes: summary
            .mounts
            .iter()
            .flatten()
            .filter(|mount| mount.typ.as_deref() == Some("volume"))
            .filter_map(|mount| Some((mount.destination.clone()?, mount.name.clone().filter(|name| is_anonymous_volume(name))?)))
            .collect(),
    })
}

/// `Up 5 seconds (health: starting)` → Starting, `(healthy)` → Healthy, `(unhealthy)` → Unhealthy.
pub(crate) fn health_from_status(status_text: &str) -> Option<HealthState> {
    if status_text.ends_with("(health: starting)") {
        Some(HealthState::Starting)
    } else if status_text.ends_with("(unhealthy)") {
        Some(HealthState::Unhealthy)
    } else if status_text.ends_with("(healthy)") {
        Some(HealthState::Healthy)
    } else {
        None
    }
}

/// `Exited (137) 5 minutes ago` → 137; −1 when the text has no code.
pub(crate) fn exit_code_from_status(status_text: &str) -> i64 {
    status_text
        .strip_prefix("Exited (")
        .and_then(|rest| rest.split_once(')'))
        .and_then(|(code, _)| code.parse().ok())
        .unwrap_or(-1)
}

/// The lifecycle state from `inspect`.
pub(crate) fn inspected_state(state: &InspectedState) -> ContainerState {
    match state.status {
        Some(ContainerStateStatusEnum::RUNNING) => ContainerState::Running,
        Some(ContainerStateStatusEnum::RESTARTING) => ContainerState::Restarting,
        Some(ContainerStateStatusEnum::PAUSED) => ContainerState::Paused,
        Some(ContainerStateStatusEnum::EXITED) => ContainerState::Exited { code: state.exit_code.unwrap_or(-1) },
        Some(ContainerStateStatusEnum::DEAD) => ContainerState::Dead,
        Some(ContainerStateStatusEnum::REMOVING) => ContainerState::Removing,
        _ => ContainerState::Created,
    }
}

/// The health from `inspect`, `None` when the container has no health check.
pub(crate) fn inspected_health(state: &InspectedState) -> Option<HealthState> {
    match state.health.as_ref().and_then(|health| health.status) {
        Some(HealthStatusEnum::STARTING) => Some(HealthState::Starting),
        Some(HealthStatusEnum::HEALTHY) => Some(HealthState::Healthy),
        Some(HealthStatusEnum::UNHEALTHY) => Some(HealthState::Unhealthy),
        _ => None,
    }
}

/// The health log (the engine keeps the last 5 checks) as readable lines, oldest first:
/// `exit 1: connection refused`.
pub(crate) fn health_log_lines(state: &InspectedState) -> Vec<String> {
    let Some(entries) = state.health.as_ref().and_then(|health| health.log.as_ref()) else {
        return Vec::new();
    };
    entries
        .iter()
        .map(|entry| {
            let output = sanitize(entry.output.as_deref().unwrap_or("").trim());
            let output = output.split('\n').map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" | ");
            match entry.exit_code {
                Some(code) => format!("health check exit {code}: {output}"),
                None => format!("health check: {output}"),
            }
        })
        .collect()
}

pub(crate) fn observed_network(network: &Network) -> Option<ObservedNetwork> {
    Some(ObservedNetwork {
        id: network.id.clone()?,
        name: network.name.clone()?,
        labels: to_btree_map(network.labels.as_ref()),
    })
}

pub(crate) fn observed_volume(volume: &Volume) -> ObservedVolume {
    ObservedVolume { name: volume.name.clone(), labels: to_btree_map(Some(&volume.labels)) }
}

/// Every reference an image can be addressed by: tags, digests and its ID.
pub(crate) fn image_references(image: &ImageSummary) -> impl Iterator<Item = String> + '_ {
    image
        .repo_tags
        .iter()
        .chain(image.repo_digests.iter())
        .filter(|reference| !reference.starts_with("<none>"))
        .cloned()
        .chain(std::iter::once(image.id.clone()))
}

/// True when a label map says the object belongs to `stack`.
pub(crate) fn belongs_to(labels: Option<&HashMap<String, String>>, stack: &str) -> bool {
    labels.and_then(|labels| labels.get(crate::model::labels::LABEL_STACK)).is_some_and(|value| value == stack)
}

/// Maps a bollard error to an [`EngineError`] naming the operation and the resource. Transport
/// failures (nothing answered) become `Unreachable` naming `host`.
pub(crate) fn engine_error(operation: Operation, resource: &str, host: &str, error: BollardError) -> EngineError {
    let resource = resource.to_string();
    match error {
        BollardError::DockerResponseServerError { status_code, message } => {
            let message = sanitize(&message);
            match status_code {
                404 => EngineError::NotFound { operation, resource, message },
                409 => EngineError::Conflict { operation, resource, message },
                _ => EngineError::Api { operation, resource, status: Some(status_code), message },
            }
        }
        BollardError::RequestTimeoutError => {
            EngineError::Timeout { operation, resource, after: Duration::ZERO, detail: Vec::new() }
        }
        BollardError::HyperLegacyError { ref err } if err.is_connect() => {
            EngineError::Unreachable { host: host.to_string(), cause: error_chain(&error) }
        }
        BollardError::SocketNotFoundError(ref path) => {
            EngineError::Unreachable { host: host.to_string(), cause: format!("socket {path} does not exist") }
        }
        other => EngineError::Api { operation, resource, status: None, message: error_chain(&other) },
    }
}

/// An error and all its sources, `outer: inner: root`, without repeats.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(layer) = current {
        let text = sanitize(&layer.to_string());
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = layer.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::{Mount, PortBinding, Resources};

    fn attachment(network_id: &str, aliases: &[&str]) -> NetworkAttachment {
        NetworkAttachment {
            network_id: network_id.into(),
            aliases: aliases.iter().map(|alias| alias.to_string()).collect(),
            ..Default::default()
        }
    }

    fn web_spec() -> ContainerSpec {
        ContainerSpec {
            name: "demo-web-1".into(),
            image: "web:1".into(),
            env: vec!["A=1".into(), "B=two words".into()],
            labels: BTreeMap::from([("io.swarmctl.stack".into(), "demo".into())]),
            ports: vec![
                PortBinding { container_port: 80, protocol: "tcp".into(), host_ip: None, host_port: Some(8080) },
                PortBinding {
                    container_port: 80,
                    protocol: "tcp".into(),
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(8081),
                },
                PortBinding { container_port: 53, protocol: "udp".into(), host_ip: None, host_port: None },
            ],
            mounts: vec![
                Mount { kind: MountKind::Volume, source: "demo-data".into(), target: "/data".into(), read_only: false, ..Default::default() },
                Mount { kind: MountKind::Bind, source: "/etc/hosts".into(), target: "/h".into(), read_only: true, ..Default::default() },
                Mount { kind: MountKind::Tmpfs, source: String::new(), target: "/scratch".into(), read_only: false, ..Default::default() },
            ],
            network: Some(attachment("net-a", &["web"])),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD-SHELL".into(), "nc -z localhost 80".into()],
                interval: Some(Duration::from_millis(1500)),
                timeout: Some(Duration::from_secs(2)),
                start_period: None,
                retries: Some(3),
            }),
            restart: RestartPolicy::OnFailure { max_retries: 5 },
            stop_signal: Some("SIGQUIT".into()),
            stop_grace: Some(Duration::from_secs(25)),
            resources: Resources { memory_bytes: Some(64 << 20), nano_cpus: Some(500_000_000), ..Resources::default() },
            tmpfs: vec!["/run".into(), "/cache:size=64m".into()],
            ..ContainerSpec::default()
        }
    }

    #[test]
    fn ports_are_grouped_per_container_port_and_exposed() {
        let body = container_create_body(&web_spec());
        assert_eq!(body.exposed_ports, Some(vec!["53/udp".to_string(), "80/tcp".to_string()]));
        let bindings = body.host_config.and_then(|host| host.port_bindings).expect("port bindings");
        let web: Vec<(Option<String>, Option<String>)> = bindings["80/tcp"]
            .as_ref()
            .expect("bindings for 80/tcp")
            .iter()
            .map(|binding| (binding.host_ip.clone(), binding.host_port.clone()))
            .collect();
        assert_eq!(
            web,
            vec![(None, Some("8080".into())), (Some("127.0.0.1".into()), Some("8081".into()))]
        );
        let dns = bindings["53/udp"].as_ref().expect("bindings for 53/udp");
        assert_eq!(dns[0].host_port.as_deref(), Some(""), "an empty host port asks for an ephemeral one");
    }

    #[test]
    fn mounts_map_kind_source_and_read_only() {
        let mounts = container_create_body(&web_spec()).host_config.and_then(|host| host.mounts).expect("mounts");
        type MountSummary = (Option<MountType>, Option<String>, Option<String>, Option<bool>);
        let summary: Vec<MountSummary> = mounts
            .iter()
            .map(|mount| (mount.typ, mount.source.clone(), mount.target.clone(), mount.read_only))
            .collect();
        assert_eq!(
            summary,
            vec![
                (Some(MountType::VOLUME), Some("demo-data".into()), Some("/data".into()), Some(false)),
                (Some(MountType::BIND), Some("/etc/hosts".into()), Some("/h".into()), Some(true)),
                (Some(MountType::TMPFS), None, Some("/scratch".into()), Some(false)),
            ]
        );
    }

    #[test]
    fn bind_propagation_and_tmpfs_mode_reach_the_engine() {
        let spec = ContainerSpec {
            mounts: vec![
                Mount { kind: MountKind::Bind, source: "/srv".into(), target: "/srv".into(), propagation: Some("rshared".into()), ..Default::default() },
                Mount { kind: MountKind::Bind, source: "/logs".into(), target: "/logs".into(), read_only: true, create_host_path: true, propagation: Some("rslave".into()), ..Default::default() },
                Mount { kind: MountKind::Tmpfs, target: "/tmp".into(), tmpfs_mode: Some(0o1777), ..Default::default() },
            ],
            ..web_spec()
        };
        let host = container_create_body(&spec).host_config.expect("host config");
        let mounts = host.mounts.expect("mounts");
        assert_eq!(mounts[0].bind_options.as_ref().and_then(|b| b.propagation), Some(MountBindOptionsPropagationEnum::RSHARED));
        assert_eq!(mounts[1].tmpfs_options.as_ref().map(|t| (t.mode, t.size_bytes)), Some((Some(0o1777), None)));
        // A bind whose host path may be created goes as `docker run -v` writes it.
        assert_eq!(host.binds, Some(vec!["/logs:/logs:ro,rslave".to_string()]));
    }

    #[test]
    fn healthcheck_durations_are_nanoseconds() {
        let health = container_create_body(&web_spec()).healthcheck.expect("healthcheck");
        assert_eq!(health.interval, Some(1_500_000_000));
        assert_eq!(health.timeout, Some(2_000_000_000));
        assert_eq!(health.start_period, None);
        assert_eq!(health.retries, Some(3));
        assert_eq!(health.test, Some(vec!["CMD-SHELL".to_string(), "nc -z localhost 80".to_string()]));
    }

    #[test]
    fn healthcheck_none_disables_the_image_check() {
        let disabled = Healthcheck {
            test: vec!["NONE".into()],
            interval: None,
            timeout: None,
            start_period: None,
            retries: None,
        };
        assert_eq!(health_config(&disabled).test, Some(vec!["NONE".to_string()]));
    }

    #[test]
    fn restart_policies_use_engine_names() {
        let cases = [
            (RestartPolicy::Never, RestartPolicyNameEnum::NO, None),
            (RestartPolicy::Always, RestartPolicyNameEnum::ALWAYS, None),
            (RestartPolicy::UnlessStopped, RestartPolicyNameEnum::UNLESS_STOPPED, None),
            (RestartPolicy::OnFailure { max_retries: 5 }, RestartPolicyNameEnum::ON_FAILURE, Some(5)),
        ];
        for (policy, name, retries) in cases {
            let converted = restart_policy(policy);
            assert_eq!(converted.name, Some(name), "{policy:?}");
            assert_eq!(converted.maximum_retry_count, retries, "{policy:?}");
        }
    }

    #[test]
    fn env_labels_stop_settings_and_resources_pass_through() {
        let body = container_create_body(&web_spec());
        assert_eq!(body.env, Some(vec!["A=1".to_string(), "B=two words".to_string()]));
        assert_eq!(body.labels.as_ref().and_then(|labels| labels.get("io.swarmctl.stack")).map(String::as_str), Some("demo"));
        assert_eq!(body.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(body.stop_timeout, Some(25));
        for (grace, seconds) in [(Duration::from_millis(1500), 2), (Duration::from_millis(1), 1), (Duration::ZERO, 0), (Duration::from_secs(3), 3)] {
            let body = container_create_body(&ContainerSpec { stop_grace: Some(grace), ..web_spec() });
            assert_eq!(body.stop_timeout, Some(seconds), "a {grace:?} grace period rounds up to whole seconds");
        }
        let parented = container_create_body(&ContainerSpec { cgroup_parent: Some("/batch".into()), ..web_spec() });
        assert_eq!(parented.host_config.and_then(|host| host.cgroup_parent).as_deref(), Some("/batch"));
        let host = body.host_config.expect("host config");
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        let tmpfs = host.tmpfs.expect("tmpfs");
        assert_eq!(tmpfs.get("/run").map(String::as_str), Some(""));
        assert_eq!(tmpfs.get("/cache").map(String::as_str), Some("size=64m"));
    }

    #[test]
    fn the_network_is_joined_at_create() {
        let body = container_create_body(&web_spec());
        let endpoints = body.networking_config.and_then(|config| config.endpoints_config).expect("endpoints");
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints["net-a"].aliases, Some(vec!["web".to_string()]));
        assert_eq!(body.host_config.and_then(|host| host.network_mode).as_deref(), Some("net-a"));
    }

    #[test]
    fn network_mode_wins_over_networks() {
        let spec = ContainerSpec { network_mode: Some("host".into()), network: None, ..web_spec() };
        let body = container_create_body(&spec);
        assert_eq!(body.host_config.and_then(|host| host.network_mode).as_deref(), Some("host"));
        assert!(body.networking_config.is_none());
    }

    #[test]
    fn status_text_gives_health_and_exit_code() {
        assert_eq!(health_from_status("Up 4 seconds (healthy)"), Some(HealthState::Healthy));
        assert_eq!(health_from_status("Up 4 seconds (unhealthy)"), Some(HealthState::Unhealthy));
        assert_eq!(health_from_status("Up 1 second (health: starting)"), Some(HealthState::Starting));
        assert_eq!(health_from_status("Up 4 seconds"), None);
        assert_eq!(exit_code_from_status("Exited (3) 4 seconds ago"), 3);
        assert_eq!(exit_code_from_status("Created"), -1);
    }

    #[test]
    fn http_status_codes_map_to_error_kinds() {
        let error = |status_code| {
            engine_error(
                "create container",
                "demo-web-1",
                "unix:///var/run/docker.sock",
                BollardError::DockerResponseServerError { status_code, message: "boom\u{1b}[0m".into() },
            )
        };
        assert!(error(404).is_not_found());
        assert!(error(409).is_conflict());
        let server = error(500);
        assert_eq!(server.to_string(), "create container demo-web-1: boom (HTTP 500)");
    }
}
