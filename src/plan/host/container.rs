//! What one replica of a service looks like to the host engine: its name, its labels and the
//! translation of a [`Service`] into a [`ContainerSpec`].

use crate::model::labels::{LABEL_DEPENDS_ON, LABEL_FIELDS, LABEL_HASH, LABEL_KIND, LABEL_REPLICA, LABEL_SERVICE, LABEL_STACK};
use crate::plan::teardown::depends_on_label;
use crate::model::objects::{
    ContainerSpec, FileContent, FileDelivery, Healthcheck, Mount, MountKind, NetworkAttachment, PortBinding, Resources,
    RestartPolicy, Ulimit, Device, LogConfig,
};
use crate::diagnostics::Diagnostic;
use crate::model::stack::{self as model, Kind, Service, Stack};
use crate::plan::naming::{field_hashes_label, image, ordinal_volume_name, replica_numbers, service_networks, spec_hash, volume_name};
use std::collections::BTreeMap;

pub fn container_name(stack: &Stack, service: &Service, replica: u32) -> String {
    match &service.container_name {
        Some(name) => name.clone(),
        None => format!("{}-{}-{replica}", stack.name, service.name),
    }
}

/// The name a container has while it is being made in several calls; see [`is_incomplete`].
pub fn incomplete_name(name: &str) -> String {
    format!("{name}{INCOMPLETE}")
}

/// A container made in several calls (create, connect, copy files) gets its real name only by
/// its last call, a rename: a deploy killed half-way leaves a container that no later plan
/// can mistake for a finished one.
pub fn is_incomplete(name: &str) -> bool {
    name.ends_with(INCOMPLETE)
}

const INCOMPLETE: &str = ".incomplete";

/// The networks a replica joins, in [`service_networks`] order, with its DNS aliases: the
/// service name, the ordinal name of a statefulset replica, and the extra aliases written.
/// Network IDs are filled in by the executor.
pub fn network_attachments(stack: &Stack, service: &Service, replica: u32) -> Vec<NetworkAttachment> {
    let ordinal_alias = (service.kind == Kind::Statefulset).then(|| format!("{}-{replica}", service.name));
    let links: Vec<String> = strings(&service.extra, "links").iter().map(|link| link_to_container(stack, link)).collect();
    service_networks(service)
        .into_iter()
        .map(|(network, extra)| {
            let mut aliases = vec![service.name.clone()];
            aliases.extend(ordinal_alias.clone());
            aliases.extend(extra);
            let address = service.network_addresses.get(&network);
            NetworkAttachment {
                network_id: String::new(),
                aliases,
                ipv4_address: address.and_then(|a| a.ipv4.clone()),
                ipv6_address: address.and_then(|a| a.ipv6.clone()),
                links: links.clone(),
            }
        })
        .collect()
}

/// `db` or `db:alias` (a service of the stack) as the engine's `container:alias`.
fn link_to_container(stack: &Stack, link: &str) -> String {
    let (target, alias) = link.split_once(':').unwrap_or((link, link));
    format!("{}:{alias}", first_container(stack, target))
}

/// The container standing for a service when another names it (`network_mode: service:app`,
/// `volumes_from: [app]`, `links`): its first replica. Other names pass as they are.
fn first_container(stack: &Stack, service: &str) -> String {
    match stack.services.get(service) {
        Some(target) => container_name(stack, target, replica_numbers(target).first().copied().unwrap_or(1)),
        None => service.to_string(),
    }
}

/// `service:app` (compose's way to share another service's namespace) as `container:<name>`.
fn namespace_mode(stack: &Stack, mode: Option<&str>) -> Option<String> {
    let mode = mode?;
    Some(match mode.strip_prefix("service:") {
        Some(service) => format!("container:{}", first_container(stack, service)),
        None => mode.to_string(),
    })
}

/// A string or list of strings (numbers written as numbers too) from a passed-through key.
fn strings(extra: &BTreeMap<String, serde_json::Value>, key: &str) -> Vec<String> {
    match extra.get(key) {
        Some(serde_json::Value::Array(items)) => items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string)).collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        Some(serde_json::Value::Number(n)) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

/// An integer written as a number or a string.
fn integer(extra: &BTreeMap<String, serde_json::Value>, key: &str) -> Option<i64> {
    extra.get(key).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
}

/// A byte size written as a number or as compose writes sizes (`512m`).
fn size(extra: &BTreeMap<String, serde_json::Value>, key: &str) -> Option<i64> {
    extra.get(key).and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(crate::spec::schema::parse_size).map(|s| s as i64)))
}

/// The container for one replica, without its network (the planner adds the first).
pub fn container_spec(stack: &Stack, service: &Service, replica: u32, fields: &BTreeMap<String, String>) -> ContainerSpec {
    let name = container_name(stack, service, replica);
    let mut labels: BTreeMap<String, String> = service.labels.clone();
    labels.insert(LABEL_STACK.into(), stack.name.clone());
    labels.insert(LABEL_SERVICE.into(), service.name.clone());
    labels.insert(LABEL_HASH.into(), spec_hash(fields));
    labels.insert(LABEL_REPLICA.into(), replica.to_string());
    labels.insert(LABEL_KIND.into(), service.kind.as_str().into());
    labels.insert(LABEL_DEPENDS_ON.into(), depends_on_label(service.depends_on.iter().map(|d| d.service.as_str())));
    labels.insert(LABEL_FIELDS.into(), field_hashes_label(fields));

    let extra = &service.extra;
    let strings = |key: &str| strings(extra, key);
    let text = |key: &str| extra.get(key).and_then(|v| v.as_str().map(str::to_string).or_else(|| v.as_number().map(|n| n.to_string())));
    // The schema takes `"true"` and `"false"` for booleans too.
    let flag = |key: &str| extra.get(key).and_then(|v| v.as_bool().or_else(|| v.as_str().and_then(|s| s.parse().ok())));

    ContainerSpec {
        name,
        image: image(stack, service),
        // A statefulset replica is `<service>-<ordinal>` to itself, as a Kubernetes pod is:
        // clustered servers (RabbitMQ, ZooKeeper) name their nodes after the host name.
        hostname: service.hostname.clone().or_else(|| (service.kind == Kind::Statefulset).then(|| format!("{}-{replica}", service.name))),
        command: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        env: service.environment.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect(),
        labels,
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        ports: service
            .ports
            .iter()
            .map(|p| PortBinding { container_port: p.target, protocol: p.protocol.clone(), host_ip: p.host_ip.clone(), host_port: p.published })
            .collect(),
        mounts: service.volumes.iter().map(|m| mount(stack, service, m, replica)).collect(),
        network: None,
        network_mode: namespace_mode(stack, service.network_mode.as_deref()),
        // A disabled check is sent as `NONE`, which switches off the image's own.
        healthcheck: service.healthcheck.as_ref().map(|h| Healthcheck {
            test: h.test.clone().unwrap_or_else(|| vec!["NONE".into()]),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            retries: h.retries,
        }),
        restart: restart_policy(service),
        stop_signal: service.stop_signal.clone(),
        stop_grace: service.stop_grace_period,
        resources: Resources {
            memory_bytes: service.resources.memory.map(|m| m as i64),
            memory_reservation_bytes: service.resources.reserve_memory.map(|m| m as i64),
            nano_cpus: service.resources.cpus.map(|c| (c * 1e9) as i64),
            pids_limit: service.resources.pids,
            cpu_shares: integer(extra, "cpu_shares"),
            cpuset_cpus: text("cpuset"),
            cpu_quota: integer(extra, "cpu_quota"),
            cpu_period: integer(extra, "cpu_period"),
            memory_swap_bytes: size(extra, "memswap_limit"),
            memory_swappiness: integer(extra, "mem_swappiness"),
        },
        cap_add: strings("cap_add"),
        cap_drop: strings("cap_drop"),
        privileged: flag("privileged").unwrap_or(false),
        read_only: flag("read_only").unwrap_or(false),
        init: flag("init"),
        tty: flag("tty").unwrap_or(false),
        stdin_open: flag("stdin_open").unwrap_or(false),
        sysctls: match extra.get("sysctls") {
            Some(serde_json::Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect(),
            _ => strings("sysctls").into_iter().filter_map(|s| s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))).collect(),
        },
        extra_hosts: match extra.get("extra_hosts") {
            Some(serde_json::Value::Object(map)) => map.iter().map(|(k, v)| format!("{k}:{}", v.as_str().unwrap_or_default())).collect(),
            _ => strings("extra_hosts"),
        },
        tmpfs: strings("tmpfs"),
        ulimits: ulimits(extra.get("ulimits")),
        dns: strings("dns"),
        shm_size: size(extra, "shm_size"),
        exposed_ports: strings("expose").iter().map(|port| if port.contains('/') { port.clone() } else { format!("{port}/tcp") }).collect(),
        mac_address: text("mac_address"),
        domainname: text("domainname"),
        dns_search: strings("dns_search"),
        dns_options: strings("dns_opt"),
        group_add: strings("group_add"),
        security_opt: strings("security_opt"),
        log: extra.get("logging").map(|logging| LogConfig {
            driver: logging.get("driver").and_then(|d| d.as_str()).unwrap_or_default().to_string(),
            options: logging
                .get("options")
                .and_then(|o| o.as_object())
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect())
                .unwrap_or_default(),
        }),
        pid_mode: namespace_mode(stack, text("pid").as_deref()),
        ipc_mode: namespace_mode(stack, text("ipc").as_deref()),
        userns_mode: text("userns_mode"),
        oom_score_adj: integer(extra, "oom_score_adj"),
        devices: devices(extra.get("devices")),
        runtime: text("runtime"),
        platform: text("platform"),
        volumes_from: strings("volumes_from")
            .iter()
            .map(|from| {
                let (source, mode) = match from.rsplit_once(':') {
                    Some((source, mode)) if mode == "ro" || mode == "rw" => (source, Some(mode)),
                    _ => (from.as_str(), None),
                };
                let container = source.strip_prefix("container:").map_or_else(|| first_container(stack, source), str::to_string);
                mode.map_or(container.clone(), |mode| format!("{container}:{mode}"))
            })
            .collect(),
        cgroup_parent: text("cgroup_parent").filter(|parent| !parent.is_empty()),
    }
}

fn mount(stack: &Stack, service: &Service, written: &model::Mount, replica: u32) -> Mount {
    let (kind, source) = match written.kind {
        model::MountKind::Bind => (MountKind::Bind, written.source.clone()),
        model::MountKind::Tmpfs => (MountKind::Tmpfs, String::new()),
        model::MountKind::Volume if written.source.is_empty() => (MountKind::Volume, String::new()),
        model::MountKind::Volume => {
            let external = stack.volumes.get(&written.source).is_some_and(|v| v.external);
            let name = if external {
                stack.volumes[&written.source].name.clone().unwrap_or_else(|| written.source.clone())
            } else if service.kind == Kind::Statefulset {
                ordinal_volume_name(stack, &written.source, replica)
            } else {
                volume_name(stack, &written.source)
            };
            (MountKind::Volume, name)
        }
    };
    Mount {
        kind,
        source,
        target: written.target.clone(),
        read_only: written.read_only,
        create_host_path: written.create_host_path,
        no_copy: written.no_copy,
        tmpfs_size: written.tmpfs_size.map(|size| size as i64),
        tmpfs_mode: written.tmpfs_mode,
        propagation: written.propagation.clone(),
    }
}

/// `/dev/fuse`, `/dev/sda:/dev/xvda:rwm`, or `{source, target, permissions}`.
fn devices(value: Option<&serde_json::Value>) -> Vec<Device> {
    let Some(serde_json::Value::Array(items)) = value else { return Vec::new() };
    items
        .iter()
        .filter_map(|item| match item {
            serde_json::Value::String(text) => {
                let parts: Vec<&str> = text.split(':').collect();
                let (host, container, permissions) = match parts.as_slice() {
                    [host] => (*host, *host, "rwm"),
                    [host, container] => (*host, *container, "rwm"),
                    [host, container, permissions, ..] => (*host, *container, *permissions),
                    [] => return None,
                };
                Some(Device { host: host.into(), container: container.into(), permissions: permissions.into() })
            }
            serde_json::Value::Object(map) => {
                let field = |k: &str| map.get(k).and_then(|v| v.as_str()).map(str::to_string);
                let host = field("source")?;
                Some(Device { container: field("target").unwrap_or_else(|| host.clone()), permissions: field("permissions").unwrap_or_else(|| "rwm".into()), host })
            }
            _ => None,
        })
        .collect()
}

fn restart_policy(service: &Service) -> RestartPolicy {
    if service.kind == Kind::Job {
        return RestartPolicy::Never;
    }
    match service.restart.as_deref() {
        Some("always") => RestartPolicy::Always,
        Some("unless-stopped") => RestartPolicy::UnlessStopped,
        Some(policy) if policy.starts_with("on-failure") => RestartPolicy::OnFailure {
            max_retries: policy.split_once(':').and_then(|(_, n)| n.parse().ok()).unwrap_or(0),
        },
        _ => RestartPolicy::Never,
    }
}

fn ulimits(value: Option<&serde_json::Value>) -> Vec<Ulimit> {
    let Some(serde_json::Value::Object(map)) = value else { return Vec::new() };
    map.iter()
        .map(|(name, limit)| {
            let (soft, hard) = match limit {
                serde_json::Value::Object(l) => (l.get("soft").and_then(|v| v.as_i64()).unwrap_or(0), l.get("hard").and_then(|v| v.as_i64()).unwrap_or(0)),
                other => {
                    let n = other.as_i64().unwrap_or(0);
                    (n, n)
                }
            };
            Ulimit { name: name.clone(), soft, hard }
        })
        .collect()
}

/// One host has no config or secret objects: an `external` one (a Swarm object) cannot be
/// delivered, and a container without its file would start anyway. An error at the mount.
pub fn external_files(stack: &Stack, service: &Service) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (kind, mounts, objects) in [("config", &service.configs, &stack.configs), ("secret", &service.secrets, &stack.secrets)] {
        for mount in mounts.iter().filter(|m| objects.get(&m.source).is_some_and(|o| o.external)) {
            problems.push(
                Diagnostic::error(mount.pos, format!("service `{}`: {kind} `{}` is external, and one host has no {kind} objects to deliver it from", service.name, mount.source))
                    .with_hint(format!("for one host, give `{kind}s.{}` a `file:`, `environment:` or `content:` in place of `external` (an overlay can), or deploy to a swarm", mount.source)),
            );
        }
    }
    problems
}

/// Configs and secrets delivered as files before start: mode 0444 and owner root unless the
/// long syntax says otherwise (the Compose Specification's default for both), so a service
/// running as another user can read its own secret.
pub fn files(stack: &Stack, service: &Service) -> Vec<FileDelivery> {
    let deliver = |mount: &model::FileMount, object: Option<&model::FileObject>, default_mode: u32| {
        let object = object.filter(|o| !o.external)?;
        Some(FileDelivery {
            path: mount.target.clone(),
            mode: mount.mode.unwrap_or(default_mode),
            uid: mount.uid.as_deref().and_then(|u| u.parse().ok()).unwrap_or(0),
            gid: mount.gid.as_deref().and_then(|g| g.parse().ok()).unwrap_or(0),
            content: FileContent::new(object.content.clone()),
        })
    };
    service
        .configs
        .iter()
        .filter_map(|c| deliver(c, stack.configs.get(&c.source), 0o444))
        .chain(service.secrets.iter().filter_map(|s| deliver(s, stack.secrets.get(&s.source), 0o444)))
        .collect()
}
