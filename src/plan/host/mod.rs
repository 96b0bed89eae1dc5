//! Planning for one Docker host: desired containers, networks and volumes against observed ones.
//!
//! Per replica: missing → create + start; spec hash differs → stop, remove, create, start (the
//! old container is gone before the new one takes its name); stopped → start; a completed job
//! with the same spec → nothing. Then one wait per started replica, so a deploy ends converged,
//! and dependents start after exactly the condition they asked for (new containers are created
//! up front; only their start is gated). Orphaned containers and networks are removed; orphaned
//! volumes are only reported.

pub mod container;
mod deployment;
pub mod op;

use super::naming::{
    field_hashes, image, network_name, ordinal_volume_name, parse_field_hashes, replica_numbers, service_networks, spec_hash,
    volume_name, DEFAULT_NETWORK,
};
use super::ready::Ready;
use super::{rollout, Cause, PlanError, PlanOptions, StepId};
use crate::diagnostics::Diagnostic;
use crate::graph::{barrier_name, DependencyGraph};
use crate::model::host::{CandidateNames, ContainerState, HealthState, ObservedContainer, ObservedState};
use crate::model::labels::{LABEL_DEPENDS_ON, LABEL_FIELDS, LABEL_HASH, LABEL_SERVICE, LABEL_STACK};
use super::teardown;
use crate::model::objects::{self, BuildSpec, ContainerSpec, FileDelivery, Mount, NetworkAttachment, NetworkSpec, VolumeSpec};
use crate::model::stack::{Kind, MountKind, Service, Stack};
use container::{container_name, container_spec, incomplete_name, is_incomplete, network_attachments};
pub use op::{ContainerRef, HostOp, NetworkRef};

/// A plan for one host.
pub type Plan = super::Plan<HostOp>;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The names a plan for this stack could create, so `observe` can report foreign objects using them.
pub fn candidate_names(stack: &Stack) -> CandidateNames {
    let mut names = CandidateNames::default();
    for service in stack.services.values() {
        for replica in replica_numbers(service) {
            names.containers.insert(container_name(stack, service, replica));
        }
    }
    for (key, network) in &stack.networks {
        names.networks.insert(if network.external { network.name.clone().unwrap_or_else(|| key.clone()) } else { network_name(stack, key) });
    }
    names.networks.insert(network_name(stack, DEFAULT_NETWORK));
    names.host_paths = stack
        .services
        .values()
        .flat_map(|s| &s.volumes)
        .filter(|m| m.kind == MountKind::Bind && !m.create_host_path)
        .map(|m| m.source.clone())
        .collect();
    for (key, volume) in &stack.volumes {
        names.volumes.insert(if volume.external { volume.name.clone().unwrap_or_else(|| key.clone()) } else { volume_name(stack, key) });
    }
    names
}

/// Plans the changes that bring the host from `observed` to `stack`. Pure.
pub fn plan(stack: &Stack, graph: &DependencyGraph, observed: &ObservedState, options: &PlanOptions) -> Result<Plan, PlanError> {
    check(stack, observed)?;
    let mut plan = Plan::default();
    let owned: Vec<&ObservedContainer> =
        observed.containers.iter().filter(|c| c.labels.get(LABEL_STACK) == Some(&stack.name)).collect();

    // Orphans first: they may hold names, ports or networks the new containers need.
    for container in &owned {
        let service = container.labels.get(LABEL_SERVICE).map(String::as_str).unwrap_or("");
        if !stack.services.contains_key(service) && !stack.inactive.contains(service) {
            remove_container(&mut plan, container, Cause::Orphaned, vec![], Some(service), None, false);
        }
    }

    let networks = plan_networks(stack, observed, &owned, &mut plan);
    let volumes = plan_volumes(stack, observed, &mut plan);
    let losing: BTreeSet<String> = networks.duplicates.iter().map(|(id, _)| id.clone()).collect();

    let mut ready: BTreeMap<&str, Ready> = BTreeMap::new();
    for name in graph.waves().into_iter().flatten() {
        let Some(service) = stack.services.get(&name) else { continue };
        let mut after: Vec<StepId> = Vec::new();
        for (dependency, condition) in graph.dependencies(&name) {
            match stack.layers.iter().find(|(layer, _)| barrier_name(layer) == dependency) {
                Some((_, members)) => after.extend(members.iter().flat_map(|m| ready.get(m.as_str()).map(|r| r.started.clone()).unwrap_or_default())),
                None => after.extend(ready.get(dependency).map(|r| r.for_condition(condition).to_vec()).unwrap_or_default()),
            }
        }
        let service_ready = plan_service(stack, service, &owned, observed, &networks.refs, &losing, &volumes, after, options, &mut plan);
        ready.insert(stack.services.get_key_value(&name).map(|(k, _)| k.as_str()).unwrap_or_default(), service_ready);
    }

    // Networks nothing uses any more go last, after every container that could be on them.
    let all_removals: Vec<StepId> = plan.steps.iter().filter(|s| matches!(s.op, HostOp::RemoveContainer { .. })).map(|s| s.id).collect();
    let wanted: BTreeSet<String> = desired_networks(stack).into_iter().map(|n| network_name(stack, &n)).collect();
    for network in observed.networks.iter().filter(|n| n.labels.get(LABEL_STACK) == Some(&stack.name)) {
        if !wanted.contains(&network.name) {
            plan.push(HostOp::RemoveNetwork { id: network.id.clone(), name: network.name.clone() }, Cause::Orphaned, all_removals.clone(), None);
        }
    }
    for (id, name) in &networks.duplicates {
        plan.push(HostOp::RemoveNetwork { id: id.clone(), name: name.clone() }, Cause::Duplicate, all_removals.clone(), None);
    }
    let wanted_volumes = desired_volumes(stack);
    plan.orphaned_volumes = observed
        .volumes
        .iter()
        .filter(|v| v.labels.get(LABEL_STACK) == Some(&stack.name) && !wanted_volumes.contains_key(&v.name))
        .map(|v| v.name.clone())
        .collect();
    // Only a container made anew needs its secrets' contents.
    let problems: Vec<_> = stack
        .secrets
        .iter()
        .filter(|(_, secret)| secret.withheld)
        .filter(|(key, _)| {
            plan.steps.iter().any(|step| {
                matches!(step.op, HostOp::CreateContainer { .. })
                    && step.service.as_deref().and_then(|s| stack.services.get(s)).is_some_and(|s| s.secrets.iter().any(|m| &&m.source == key))
            })
        })
        .map(|(key, _)| super::withheld_secret(key))
        .collect();
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    Ok(plan)
}

/// Everything that can be known wrong before the first mutation, each at the key that causes it.
fn check(stack: &Stack, observed: &ObservedState) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    let candidates = candidate_names(stack);
    for service in stack.services.values() {
        for replica in replica_numbers(service) {
            let name = container_name(stack, service, replica);
            if observed.foreign_names.containers.contains(&name) {
                let at = service.positions.get("container_name").copied().unwrap_or(service.pos);
                problems.push(Diagnostic::error(at, format!("service `{}`: container name `{name}` is taken by a container this stack does not own", service.name))
                    .with_hint(format!("remove that container (`docker rm -f {name}`), or deploy under another `--name`")));
            }
        }
    }
    let _ = candidates;
    for (key, network) in &stack.networks {
        let name = network.name.clone().unwrap_or_else(|| key.clone());
        if network.external && !observed.foreign_names.networks.contains(&name) {
            problems.push(Diagnostic::error(None, format!("external network `{name}` does not exist")).with_hint(format!("create it first: `docker network create {name}`")));
        }
    }
    // As docker-compose refuses it; the engine would create an empty one in its place.
    let mut external_volumes = BTreeSet::new();
    for mount in stack.services.values().flat_map(|s| &s.volumes).filter(|m| m.kind == MountKind::Volume) {
        let Some(volume) = stack.volumes.get(&mount.source).filter(|v| v.external) else { continue };
        let name = volume.name.clone().unwrap_or_else(|| mount.source.clone());
        let exists = observed.foreign_names.volumes.contains(&name) || observed.volumes.iter().any(|v| v.name == name);
        if !exists && external_volumes.insert(name.clone()) {
            problems.push(Diagnostic::error(mount.pos, format!("external volume `{name}` does not exist")).with_hint(format!("create it first: `docker volume create {name}`")));
        }
    }
    for name in desired_networks(stack).iter().map(|n| network_name(stack, n)) {
        if observed.foreign_names.networks.contains(&name) {
            problems.push(Diagnostic::error(None, format!("network name `{name}` is taken by a network this stack does not own"))
                .with_hint("remove that network, set the network's `name:`, or deploy under another `--name`"));
        }
    }
    for name in desired_volumes(stack).keys() {
        if observed.foreign_names.volumes.contains(name) {
            problems.push(Diagnostic::error(None, format!("volume name `{name}` is taken by a volume this stack does not own"))
                .with_hint("declare it `external: true` to use it, or deploy under another `--name`"));
        }
    }
    let mut published: BTreeMap<(String, u16, String), String> = BTreeMap::new();
    for service in stack.services.values() {
        let at = |key: &str| service.positions.get(key).copied().unwrap_or(service.pos);
        if service.build.is_none() {
            let reference = image(stack, service);
            if !image_present(&observed.images, &reference) {
                problems.push(Diagnostic::error(at("image"), format!("service `{}`: image `{reference}` is not on the engine, and the service has no `build:`", service.name))
                    .with_hint("load or build it on the engine first (no registry is used)"));
            }
        }
        problems.extend(container::external_files(stack, service));
        for mount in service.volumes.iter().filter(|m| m.kind == MountKind::Bind && observed.missing_host_paths.contains(&m.source)) {
            problems.push(Diagnostic::error(mount.pos, format!("service `{}`: bind source `{}` does not exist, and `bind.create_host_path` is false", service.name, mount.source))
                .with_hint("create it, or set `bind.create_host_path: true`"));
        }
        for port in service.ports.iter().filter(|p| p.published.is_some()) {
            let ip = port.host_ip.as_deref().unwrap_or("0.0.0.0");
            let taken = observed.foreign_ports.iter().find(|f| {
                let any = |ip: &str| ip == "0.0.0.0" || ip == "::" || ip.is_empty();
                Some(f.port) == port.published && f.protocol == port.protocol && (any(ip) || any(&f.host_ip) || f.host_ip == ip)
            });
            if let Some(taken) = taken {
                problems.push(Diagnostic::error(port.pos, format!(
                    "service `{}`: host port {}/{} is already published by container `{}`, which this stack does not own",
                    service.name, taken.port, taken.protocol, taken.container
                ))
                .with_hint("stop that container, or publish another port"));
            }
        }
        for replica in replica_numbers(service) {
            for port in service.ports.iter().filter(|p| p.published.is_some()) {
                let key = (port.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()), port.published.unwrap_or(0), port.protocol.clone());
                let owner = format!("{}#{replica}", service.name);
                if let Some(first) = published.insert(key.clone(), owner.clone()) {
                    problems.push(Diagnostic::error(port.pos, format!("host port {}:{}/{} is published by both {first} and {owner}", key.0, key.1, key.2))
                        .with_hint("one host port binds one container: publish distinct ports, or leave the host port out for a random one"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PlanError { problems })
    }
}

/// `name` or `name:latest` among local images.
fn image_present(images: &BTreeSet<String>, reference: &str) -> bool {
    images.contains(reference) || (!reference.contains(':') && images.contains(&format!("{reference}:latest")))
}

/// Network keys the active services join.
fn desired_networks(stack: &Stack) -> BTreeSet<String> {
    stack
        .services
        .values()
        .flat_map(|s| service_networks(s).into_iter().map(|(n, _)| n))
        .filter(|n| !stack.networks.get(n).is_some_and(|network| network.external))
        .collect()
}

/// Volume names to exist, with the spec each is created from.
fn desired_volumes(stack: &Stack) -> BTreeMap<String, VolumeSpec> {
    let mut volumes = BTreeMap::new();
    for service in stack.services.values() {
        for mount in service.volumes.iter().filter(|m| m.kind == MountKind::Volume && !m.source.is_empty()) {
            let Some(declared) = stack.volumes.get(&mount.source).filter(|v| !v.external) else { continue };
            let names: Vec<String> = match service.kind {
                Kind::Statefulset => replica_numbers(service).into_iter().map(|o| ordinal_volume_name(stack, &mount.source, o)).collect(),
                _ => vec![volume_name(stack, &mount.source)],
            };
            for name in names {
                let mut labels = declared.labels.clone();
                labels.insert(LABEL_STACK.into(), stack.name.clone());
                labels.insert("io.swarmctl.volume".into(), mount.source.clone());
                volumes.insert(name.clone(), VolumeSpec { name, driver: declared.driver.clone(), driver_opts: declared.driver_opts.clone(), labels });
            }
        }
    }
    volumes
}

/// Networks the services will use, and owned networks that duplicate a name and lost.
struct Networks {
    refs: BTreeMap<String, NetworkRef>,
    duplicates: Vec<(String, String)>,
}

fn plan_networks(stack: &Stack, observed: &ObservedState, owned: &[&ObservedContainer], plan: &mut Plan) -> Networks {
    let mut refs = BTreeMap::new();
    let mut duplicates = Vec::new();
    for (key, network) in &stack.networks {
        if network.external {
            refs.insert(key.clone(), NetworkRef::Existing(network.name.clone().unwrap_or_else(|| key.clone())));
        }
    }
    for key in desired_networks(stack) {
        let name = network_name(stack, &key);
        // Two networks may share a name on these engines (a killed deploy's create can land after
        // the next deploy looked). Keep the one most containers use, then the smallest ID.
        let mut same_name: Vec<&String> =
            observed.networks.iter().filter(|n| n.name == name && n.labels.get(LABEL_STACK) == Some(&stack.name)).map(|n| &n.id).collect();
        same_name.sort_by_key(|id| (std::cmp::Reverse(owned.iter().filter(|c| c.networks.contains(*id)).count()), (*id).clone()));
        duplicates.extend(same_name.iter().skip(1).map(|id| ((*id).clone(), name.clone())));
        let existing = same_name.first().copied();
        let reference = match existing {
            Some(id) => NetworkRef::Existing(id.clone()),
            None => {
                let declared = stack.networks.get(&key).cloned().unwrap_or_default();
                let mut labels = declared.labels.clone();
                labels.insert(LABEL_STACK.into(), stack.name.clone());
                labels.insert("io.swarmctl.network".into(), key.clone());
                let spec = NetworkSpec {
                    name,
                    driver: declared.driver.clone(),
                    internal: declared.internal,
                    attachable: declared.attachable,
                    labels,
                    options: declared.driver_opts.clone(),
                    ipam_pools: declared.ipam.clone(),
                    ipam_driver: declared.ipam_driver.clone(),
                    ipam_options: declared.ipam_options.clone(),
                    enable_ipv6: declared.enable_ipv6,
                };
                NetworkRef::CreatedBy(plan.push(HostOp::CreateNetwork { spec }, Cause::Missing, vec![], None))
            }
        };
        refs.insert(key, reference);
    }
    Networks { refs, duplicates }
}

fn plan_volumes(stack: &Stack, observed: &ObservedState, plan: &mut Plan) -> BTreeMap<String, StepId> {
    let existing: BTreeSet<&str> = observed.volumes.iter().map(|v| v.name.as_str()).collect();
    desired_volumes(stack)
        .into_iter()
        .filter(|(name, _)| !existing.contains(name.as_str()))
        .map(|(name, spec)| (name, plan.push(HostOp::CreateVolume { spec }, Cause::Missing, vec![], None)))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn plan_service(
    stack: &Stack,
    service: &Service,
    owned: &[&ObservedContainer],
    observed: &ObservedState,
    networks: &BTreeMap<String, NetworkRef>,
    losing_networks: &BTreeSet<String>,
    volumes: &BTreeMap<String, StepId>,
    dependencies: Vec<StepId>,
    options: &PlanOptions,
    plan: &mut Plan,
) -> Ready {
    let name = service.name.as_str();
    let fields = field_hashes(stack, service);
    let hash = spec_hash(&fields);
    let mine: BTreeMap<&str, &ObservedContainer> = owned
        .iter()
        .filter(|c| c.labels.get(LABEL_SERVICE).map(String::as_str) == Some(name))
        .map(|c| (c.name.as_str(), *c))
        .collect();

    // Containers a killed deploy left half-made go first: their names are needed again.
    let mut leftovers: BTreeMap<String, StepId> = BTreeMap::new();
    for (container_name, container) in mine.iter().filter(|(n, _)| is_incomplete(n)) {
        leftovers.insert(container_name.to_string(), remove_container(plan, container, Cause::Incomplete, vec![], Some(name), None, false));
    }

    let mut setup = Vec::new();
    let image_ref = image(stack, service);
    if let Some(build) = &service.build {
        if !image_present(&observed.images, &image_ref) {
            let spec = BuildSpec {
                context: build.context.clone(),
                dockerfile: build.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()),
                build_args: build.args.clone(),
                tag: image_ref.clone(),
                target: build.target.clone(),
                labels: build.labels.clone().into_iter().chain([(LABEL_STACK.to_string(), stack.name.clone())]).collect(),
                no_cache: build.no_cache,
            };
            setup.push(plan.push(HostOp::BuildImage { spec }, Cause::Missing, vec![], Some(name)));
        }
    }
    let network_refs: Vec<(NetworkRef, String)> = service_networks(service)
        .into_iter()
        .filter_map(|(key, _)| networks.get(&key).map(|r| (r.clone(), network_name(stack, &key))))
        .collect();
    setup.extend(network_refs.iter().filter_map(|(r, _)| match r {
        NetworkRef::CreatedBy(step) => Some(*step),
        NetworkRef::Existing(_) => None,
    }));
    let maker = ReplicaMaker {
        stack,
        service,
        fields,
        hash,
        setup,
        volumes,
        network_refs,
        files: container::files(stack, service),
        leftovers,
        dependencies,
        options,
    };
    let existing: Vec<&ObservedContainer> = mine.values().filter(|c| !is_incomplete(&c.name)).copied().collect();
    match service.kind {
        Kind::Deployment | Kind::Daemonset => deployment::plan(&maker, &existing, losing_networks, plan),
        Kind::Job | Kind::Statefulset => in_place(&maker, &existing, losing_networks, plan),
    }
}

/// What every replica of one service is made from, and what its steps wait for.
pub(crate) struct ReplicaMaker<'a> {
    stack: &'a Stack,
    service: &'a Service,
    fields: BTreeMap<String, String>,
    /// The spec hash the service's containers carry when they are current.
    hash: String,
    /// What every create waits for: the image build and the networks being made.
    setup: Vec<StepId>,
    volumes: &'a BTreeMap<String, StepId>,
    network_refs: Vec<(NetworkRef, String)>,
    files: Vec<FileDelivery>,
    /// Removals of half-made containers, by their incomplete name.
    leftovers: BTreeMap<String, StepId>,
    /// What the service's starts wait for: its `depends_on` conditions.
    dependencies: Vec<StepId>,
    options: &'a PlanOptions,
}

impl ReplicaMaker<'_> {
    fn name(&self, replica: u32) -> String {
        container_name(self.stack, self.service, replica)
    }

    /// Whether `container` runs the current spec (on networks that stay).
    fn is_current(&self, container: &ObservedContainer, losing_networks: &BTreeSet<String>) -> bool {
        container.labels.get(LABEL_HASH) == Some(&self.hash) && container.networks.is_disjoint(losing_networks)
    }

    /// Why `container` is not current.
    fn change(&self, container: &ObservedContainer) -> Cause {
        if container.labels.get(LABEL_HASH) == Some(&self.hash) {
            Cause::Changed(vec!["network (duplicate name)".into()])
        } else {
            Cause::Changed(changed_fields(container, &self.fields))
        }
    }

    /// Replica `replica`'s container, made after `after`; complete (named) once `complete_after`
    /// ran, when another container holds its name until then. Inherits `inherit`'s anonymous
    /// volumes.
    fn create(&self, plan: &mut Plan, replica: u32, inherit: Option<&ObservedContainer>, after: Vec<StepId>, complete_after: Vec<StepId>, cause: &Cause) -> Made {
        let name = self.name(replica);
        let mut spec = container_spec(self.stack, self.service, replica, &self.fields);
        if let Some(old) = inherit {
            inherit_anonymous_volumes(&mut spec, old);
        }
        let mut after = after;
        after.extend(&self.setup);
        after.extend(spec.mounts.iter().filter_map(|m| self.volumes.get(&m.source).copied()));
        after.extend(self.leftovers.get(&incomplete_name(&name)).copied());
        // `network_mode: service:…`, `volumes_from` and `links` name another service's
        // container in the create call itself: that one must exist first.
        if names_other_containers(self.service) {
            after.extend(&self.dependencies);
        }
        let attachments: Vec<(NetworkRef, String, NetworkAttachment)> = self
            .network_refs
            .iter()
            .zip(network_attachments(self.stack, self.service, replica))
            .map(|((reference, network), attachment)| (reference.clone(), network.clone(), attachment))
            .collect();
        make_container(plan, spec, attachments, &self.files, after, complete_after, cause, &self.service.name)
    }

    fn start(&self, plan: &mut Plan, container: ContainerRef, name: &str, after: Vec<StepId>, cause: Cause) -> StepId {
        plan.push(HostOp::StartContainer { container, name: name.to_string() }, cause, after, Some(&self.service.name))
    }

    /// The wait that says a started replica is ready: completed (a job), healthy (with a health
    /// check) or running.
    fn wait(&self, plan: &mut Plan, container: &ContainerRef, name: &str, after: Vec<StepId>, timeout: Duration) -> StepId {
        let (container, name) = (container.clone(), name.to_string());
        let op = match self.service.kind {
            Kind::Job => HostOp::WaitCompleted { container, name, timeout },
            _ if self.service.healthcheck.as_ref().is_some_and(|h| h.test.is_some()) => HostOp::WaitHealthy { container, name, timeout },
            _ => HostOp::WaitRunning { container, name, timeout },
        };
        plan.push(op, Cause::Readiness, after, Some(&self.service.name))
    }

    /// `deploy --stable`: the replica stays up since its start; gates nothing.
    fn check_stable(&self, plan: &mut Plan, container: &ContainerRef, name: &str, wait: StepId) {
        if self.service.kind != Kind::Job && !self.options.stable.is_zero() {
            let op = HostOp::WaitStable { container: container.clone(), name: name.to_string(), stable: self.options.stable };
            plan.push(op, Cause::Readiness, vec![wait], Some(&self.service.name));
        }
    }
}

/// Jobs and statefulsets: each replica is its own (a job's run, an ordinal with its volume) and
/// is replaced in place, stop first, under the same name. Missing ordinals start in order, each
/// after the one below is ready; changed ones are replaced from the highest down, one at a time,
/// and those below `x-rollout.partition` keep their spec (Kubernetes' StatefulSet).
fn in_place(maker: &ReplicaMaker<'_>, existing: &[&ObservedContainer], losing_networks: &BTreeSet<String>, plan: &mut Plan) -> Ready {
    let service = maker.service;
    let name = service.name.as_str();
    let by_name: BTreeMap<&str, &ObservedContainer> = existing.iter().map(|c| (c.name.as_str(), *c)).collect();
    let replicas = replica_numbers(service);
    let desired_names: Vec<String> = replicas.iter().map(|r| maker.name(*r)).collect();
    let current = existing.len() as u32;
    let statefulset = service.kind == Kind::Statefulset;
    let causes: Vec<(u32, &String, Option<&ObservedContainer>, Option<Cause>)> = replicas
        .iter()
        .zip(&desired_names)
        .map(|(replica, container)| {
            let existing = by_name.get(container.as_str()).copied();
            let cause = match existing {
                None if current > 0 => Some(Cause::Scaled { from: current, to: service.replicas }),
                None => Some(Cause::Missing),
                Some(_) if statefulset && *replica < service.rollout.partition => None,
                Some(c) if !maker.is_current(c, losing_networks) => Some(maker.change(c)),
                Some(c) => match (&c.state, service.kind) {
                    (ContainerState::Exited { code: 0 }, Kind::Job) => None,
                    (ContainerState::Exited { code }, Kind::Job) => Some(Cause::Rerun { exit_code: *code }),
                    _ => None,
                },
            };
            (*replica, container, existing, cause)
        })
        .collect();
    let (mut changed, in_order): (Vec<_>, Vec<_>) = causes.into_iter().partition(|(_, _, _, cause)| statefulset && matches!(cause, Some(Cause::Changed(_))));
    changed.reverse();
    if !changed.is_empty() {
        let strategy = rollout::Strategy::Ordered { replicas: service.replicas, partition: service.rollout.partition };
        let start = rollout::Replicas { old: changed.len() as u32, old_available: changed.len() as u32, new: service.replicas - changed.len() as u32, ..Default::default() };
        plan.rollouts.push(super::ServiceRollout { service: name.to_string(), table: rollout::table(&strategy, &start), notes: Vec::new() });
    }
    let mut ready = Ready::default();
    let mut previous_ordinal: Option<StepId> = None;
    for (replica, container, existing, cause) in in_order.into_iter().chain(changed) {
        let replica = &replica;
        let (container_ref, started) = match (cause, existing) {
            (Some(cause), existing) => {
                // A new container is made at once and only its start waits for the
                // dependencies (as compose does), so creates leave the critical path and a
                // create error shows up first. A replaced one keeps serving until then: its
                // successor is made beside it under another name, and takes the name once
                // the old one is gone.
                let mut start_after = maker.dependencies.clone();
                let mut complete_after = Vec::new();
                if let Some(old) = existing {
                    complete_after.push(remove_container(plan, old, cause.clone(), maker.dependencies.clone(), Some(name), service.stop_grace_period, false));
                }
                let made = maker.create(plan, *replica, existing, previous_ordinal.into_iter().collect(), complete_after, &cause);
                start_after.push(made.complete);
                let start = maker.start(plan, ContainerRef::CreatedBy(made.create), container, start_after, cause);
                (ContainerRef::CreatedBy(made.create), Some(start))
            }
            (None, Some(existing)) => {
                // A job runs once: start it only if it never ran (killed between create and start).
                let start_it = match service.kind {
                    Kind::Job => existing.state == ContainerState::Created,
                    _ => matches!(existing.state, ContainerState::Created | ContainerState::Exited { .. } | ContainerState::Dead),
                };
                let start = start_it.then(|| {
                    let mut after: Vec<StepId> = previous_ordinal.into_iter().collect();
                    after.extend(&maker.dependencies);
                    maker.start(plan, ContainerRef::Existing(existing.id.clone()), container, after, Cause::NotRunning)
                });
                (ContainerRef::Existing(existing.id.clone()), start)
            }
            (None, None) => unreachable!("a missing replica always has a cause"),
        };
        ready.started.extend(started);
        let needs_wait = started.is_some() || existing.is_some_and(|c| not_ready(c, service));
        let wait = needs_wait.then(|| maker.wait(plan, &container_ref, container, started.into_iter().collect(), maker.options.timeout));
        match service.kind {
            Kind::Job => ready.completed.extend(wait),
            _ => ready.healthy.extend(wait.or(started)),
        }
        if service.kind == Kind::Statefulset {
            previous_ordinal = wait.or(started).or(previous_ordinal);
        }
        if let Some(wait) = wait {
            maker.check_stable(plan, &container_ref, container, wait);
        }
    }

    // Replicas beyond the desired count go, highest first.
    let mut extra: Vec<&ObservedContainer> = existing.iter().filter(|c| !desired_names.contains(&c.name)).copied().collect();
    extra.sort_by(|a, b| b.name.cmp(&a.name));
    for container in extra {
        let cause = Cause::Scaled { from: current, to: service.replicas };
        remove_container(plan, container, cause, vec![], Some(name), service.stop_grace_period, false);
    }
    ready
}

/// The steps that made one container.
struct Made {
    create: StepId,
    /// After this step the container is complete and has its name.
    complete: StepId,
}

/// One create call when that makes the container complete; otherwise a create under its
/// incomplete name, the other networks, the files, and the rename that completes it (after
/// `complete_after`: the predecessor that holds the name is gone).
#[allow(clippy::too_many_arguments)]
fn make_container(
    plan: &mut Plan,
    mut spec: ContainerSpec,
    attachments: Vec<(NetworkRef, String, NetworkAttachment)>,
    files: &[FileDelivery],
    after: Vec<StepId>,
    complete_after: Vec<StepId>,
    cause: &Cause,
    service: &str,
) -> Made {
    let name = spec.name.clone();
    let in_several_calls = attachments.len() > 1 || !files.is_empty() || !complete_after.is_empty();
    if in_several_calls {
        spec.name = incomplete_name(&name);
    }
    let mut attachments = attachments.into_iter();
    let first = attachments.next();
    spec.network = first.as_ref().map(|(_, _, attachment)| attachment.clone());
    let network = first.map(|(reference, _, _)| reference);
    let create = plan.push(HostOp::CreateContainer { spec: Box::new(spec), network }, cause.clone(), after, Some(service));
    if !in_several_calls {
        return Made { create, complete: create };
    }
    let container = ContainerRef::CreatedBy(create);
    let incomplete = incomplete_name(&name);
    let mut done = vec![create];
    for (network, network_name, attachment) in attachments {
        let op = HostOp::ConnectNetwork { container: container.clone(), name: incomplete.clone(), network, network_name, attachment };
        done = vec![plan.push(op, cause.clone(), done, Some(service))];
    }
    if !files.is_empty() {
        let op = HostOp::CopyFiles { container: container.clone(), name: incomplete.clone(), files: files.to_vec() };
        done = vec![plan.push(op, cause.clone(), done, Some(service))];
    }
    done.extend(complete_after);
    let complete = plan.push(HostOp::RenameContainer { container, from: incomplete, to: name }, cause.clone(), done, Some(service));
    Made { create, complete }
}

/// Whether creating the service's containers names another service's container.
fn names_other_containers(service: &Service) -> bool {
    let shares = |mode: Option<&str>| mode.is_some_and(|m| m.starts_with("service:"));
    let text = |key: &str| service.extra.get(key).and_then(|v| v.as_str());
    shares(service.network_mode.as_deref()) || shares(text("ipc")) || shares(text("pid")) || service.extra.contains_key("volumes_from") || service.extra.contains_key("links")
}

/// An unchanged replica that a deploy must still wait for.
fn not_ready(container: &ObservedContainer, service: &Service) -> bool {
    match service.kind {
        Kind::Job => container.state == ContainerState::Running,
        _ => matches!(container.health, Some(HealthState::Starting | HealthState::Unhealthy)),
    }
}

/// A replacement mounts its predecessor's anonymous volumes where its own spec leaves the path
/// unnamed (compose does the same), so data in an image's `VOLUME` survives a spec change.
fn inherit_anonymous_volumes(spec: &mut ContainerSpec, old: &ObservedContainer) {
    for (target, volume) in &old.anonymous_volumes {
        match spec.mounts.iter_mut().find(|m| &m.target == target) {
            Some(mount) if mount.kind == objects::MountKind::Volume && mount.source.is_empty() => mount.source = volume.clone(),
            Some(_) => {}
            None => spec.mounts.push(Mount {
                kind: objects::MountKind::Volume,
                source: volume.clone(),
                target: target.clone(),
                read_only: false,
                create_host_path: false,
                ..Mount::default()
            }),
        }
    }
}

/// Stop (when running) then remove; returns the removal step. Anonymous volumes are deleted
/// only for `down --volumes`; everything else keeps them.
fn remove_container(
    plan: &mut Plan,
    container: &ObservedContainer,
    cause: Cause,
    after: Vec<StepId>,
    service: Option<&str>,
    grace: Option<Duration>,
    anonymous_volumes: bool,
) -> StepId {
    let mut after = after;
    if matches!(container.state, ContainerState::Running | ContainerState::Restarting | ContainerState::Paused) {
        after = vec![plan.push(HostOp::StopContainer { id: container.id.clone(), name: container.name.clone(), grace }, cause.clone(), after, service)];
    }
    plan.push(HostOp::RemoveContainer { id: container.id.clone(), name: container.name.clone(), anonymous_volumes }, cause, after, service)
}

/// Fields whose hash differs from the running container's label.
fn changed_fields(container: &ObservedContainer, fields: &BTreeMap<String, String>) -> Vec<String> {
    let Some(label) = container.labels.get(LABEL_FIELDS) else { return Vec::new() };
    let old = parse_field_hashes(label);
    fields.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, _)| k.clone()).chain(old.keys().filter(|k| !fields.contains_key(*k)).cloned()).collect()
}

/// `down`: every container of the stack (running or exited) stopped and removed in parallel, then
/// its networks, and its volumes only when asked.
pub fn plan_down(stack: &str, observed: &ObservedState, volumes: bool) -> Plan {
    let mut plan = Plan::default();
    let owned: Vec<&ObservedContainer> = observed.containers.iter().filter(|c| c.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)).collect();
    let service_of = |c: &ObservedContainer| c.labels.get(LABEL_SERVICE).cloned().unwrap_or_default();
    let depends_on: BTreeMap<String, String> =
        owned.iter().map(|c| (service_of(c), c.labels.get(LABEL_DEPENDS_ON).cloned().unwrap_or_default())).collect();
    let dependents = teardown::dependents(&depends_on);
    // Dependents first: a service's containers are removed after its dependents' are.
    let mut removed_by_service: BTreeMap<String, Vec<StepId>> = BTreeMap::new();
    let mut removals = Vec::new();
    for service in teardown::removal_order(&depends_on) {
        let after: Vec<StepId> = dependents[&service].iter().flat_map(|d| removed_by_service.get(d).cloned().unwrap_or_default()).collect();
        for container in owned.iter().filter(|c| service_of(c) == service) {
            let removed = remove_container(&mut plan, container, Cause::Down, after.clone(), Some(&service), None, volumes);
            removed_by_service.entry(service.clone()).or_default().push(removed);
            removals.push(removed);
        }
    }
    for network in observed.networks.iter().filter(|n| n.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)) {
        plan.push(HostOp::RemoveNetwork { id: network.id.clone(), name: network.name.clone() }, Cause::Down, removals.clone(), None);
    }
    for volume in observed.volumes.iter().filter(|v| v.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)) {
        if volumes {
            plan.push(HostOp::RemoveVolume { name: volume.name.clone() }, Cause::Down, removals.clone(), None);
        } else {
            plan.orphaned_volumes.push(volume.name.clone());
        }
    }
    plan
}
