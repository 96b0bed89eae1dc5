//! Planning for a swarm: desired services, overlay networks, configs and secrets against the
//! observed ones. Pure, like the host planner.
//!
//! - A compose service is one Swarm service (`<stack>_<service>`); a statefulset is one per
//!   ordinal (`<stack>_<service>-<n>`), each with its own volume, pinned to the node where it
//!   first ran so its data stays with it, created in ordinal order.
//! - Dependency order is honoured on the cluster (what `docker stack deploy` ignores): a
//!   service is created or updated once its dependencies' tasks are started, running (healthy,
//!   where they have a health check) or completed, as each `depends_on` condition says.
//! - An unchanged service is not touched at all (Swarm bumps a service's version and re-runs a
//!   job on any update, even an identical one); a changed one is updated, naming the fields.
//! - Configs and secrets are immutable on Swarm: their names carry their content's hash, so new
//!   content is a new object, and objects nothing uses any more are removed after the rollout.
//! - Placement is predicted before anything changes ([`crate::plan::placement`]): a service
//!   that cannot be placed is an error, not a task Pending forever.

pub mod op;
pub mod service;

pub use op::{Expect, ObjectRef, References, ServiceWait, SwarmOp, Until};

use super::naming::{field_hashes, network_name, parse_field_hashes, service_networks};
use super::placement::{self, PlacementPlan};
use super::ready::Ready;
use super::{teardown, Cause, Op, PlanError, PlanOptions, StepId};
use crate::diagnostics::Diagnostic;
use crate::graph::{barrier_name, DependencyGraph};
use crate::model::labels::{LABEL_DEPENDS_ON, LABEL_FIELDS, LABEL_HASH, LABEL_SERVICE, LABEL_STACK};
use crate::model::objects::NetworkSpec;
use crate::model::service::{ObjectSpec, ServiceMode, ServiceSpec};
use crate::model::stack::{Condition, Kind, Service, Stack};
use crate::model::swarm::{ObservedService, ObservedSwarm, SwarmCandidateNames};
use crate::model::objects::FileContent;
use service::{hashes, object_name, service_spec, Desired, Hashes, LABEL_NAMESPACE, LABEL_NODE};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A plan for a swarm.
pub type Plan = super::Plan<SwarmOp>;

/// Swarm's limit on service and network names.
const MAX_SERVICE_NAME: usize = 63;
/// Swarm's limit on config and secret names.
const MAX_OBJECT_NAME: usize = 64;

/// The names a plan for this stack could create, so `observe` can report foreign holders (and
/// whether the external networks, configs and secrets exist).
pub fn candidate_names(stack: &Stack) -> SwarmCandidateNames {
    let mut names = SwarmCandidateNames::default();
    for service in stack.services.values() {
        for desired in desired_of(service, &BTreeMap::new()) {
            names.services.insert(desired.name(stack));
        }
    }
    for key in desired_networks(stack) {
        names.networks.insert(network_name(stack, &key));
    }
    for (key, network) in stack.networks.iter().filter(|(_, n)| n.external) {
        names.networks.insert(network.name.clone().unwrap_or_else(|| key.clone()));
    }
    names.configs = stack.configs.iter().map(|(key, o)| object_name(stack, key, o)).collect();
    names.secrets = stack.secrets.iter().map(|(key, o)| object_name(stack, key, o)).collect();
    names
}

/// The Swarm services of one stack service: itself, or one per statefulset ordinal (pinned
/// where `pins` says).
fn desired_of<'a>(service: &'a Service, pins: &BTreeMap<String, String>) -> Vec<Desired<'a>> {
    match service.kind {
        Kind::Statefulset => (0..service.replicas)
            .map(|ordinal| Desired { service, ordinal: Some(ordinal), pin: pins.get(&format!("{}-{ordinal}", service.name)).cloned() })
            .collect(),
        _ => vec![Desired { service, ordinal: None, pin: None }],
    }
}

/// Network keys the services join, not external.
fn desired_networks(stack: &Stack) -> BTreeSet<String> {
    stack
        .services
        .values()
        .flat_map(|s| service_networks(s).into_iter().map(|(n, _)| n))
        .filter(|n| !stack.networks.get(n).is_some_and(|network| network.external))
        .collect()
}

/// Plans the changes that bring the swarm from `observed` to `stack`. Pure.
pub fn plan(stack: &Stack, graph: &DependencyGraph, observed: &ObservedSwarm, options: &PlanOptions) -> Result<Plan, PlanError> {
    let owned: BTreeMap<&str, &ObservedService> =
        observed.services.iter().filter(|s| s.labels.get(LABEL_STACK) == Some(&stack.name)).map(|s| (s.name.as_str(), s)).collect();
    // An ordinal stays where its volume is; a new one goes where the placement plan puts it.
    let mut pins: BTreeMap<String, String> = BTreeMap::new();
    for service in stack.services.values().filter(|s| s.kind == Kind::Statefulset) {
        for ordinal in 0..service.replicas {
            let name = service::service_name(stack, service, Some(ordinal));
            if let Some(node) = owned.get(name.as_str()).and_then(|s| s.labels.get(LABEL_NODE)) {
                pins.insert(format!("{}-{ordinal}", service.name), node.clone());
            }
        }
    }
    let stranded = stranded(&pins, observed);
    // What a replica is made of does not depend on where it goes: hashed while placing.
    let (placement, task_fields) = rayon::join(
        || predict(stack, graph, observed, &pins, &stranded),
        || stack.services.par_iter().map(|(name, service)| (name.as_str(), service, field_hashes(stack, service))).collect::<Vec<_>>(),
    );
    let placement = placement?;
    for service in &placement.services {
        if let (Some(ordinal_of), Some((node, _))) = (stack.services.get(&service.stack_service), service.nodes.iter().next()) {
            if ordinal_of.kind == Kind::Statefulset {
                pins.entry(service.service.clone()).or_insert_with(|| node.clone());
            }
        }
    }
    check(stack, observed)?;

    let mut plan = Plan { notes: notes(stack, observed), ..Plan::default() };
    let networks = plan_networks(stack, observed, &mut plan);
    let configs = plan_objects(stack, observed, false, &mut plan);
    let secrets = plan_objects(stack, observed, true, &mut plan);

    // Services no longer in the stack go first; their networks and objects once their tasks are gone.
    let desired_names: BTreeSet<String> = stack.services.values().flat_map(|s| desired_of(s, &pins)).map(|d| d.name(stack)).collect();
    let mut removed = Vec::new();
    let mut removals = Vec::new();
    for (name, service) in &owned {
        if !desired_names.contains(*name) {
            let label = service.labels.get(LABEL_SERVICE).map(String::as_str);
            removals.push(plan.push(SwarmOp::RemoveService { id: service.id.clone(), name: name.to_string() }, Cause::Orphaned, vec![], label));
            removed.push(service.id.clone());
        }
    }
    let gone = (!removed.is_empty()).then(|| {
        let op = SwarmOp::WaitTasksGone { service_ids: removed, name: "removed services".into(), timeout: options.timeout };
        plan.push(op, Cause::Orphaned, removals.clone(), None)
    });

    let wanted_by_dependents = conditions_wanted(stack);
    let placed = Placed { pins: &pins, stranded: &stranded };
    let mut decisions: BTreeMap<&str, Vec<Decision<'_>>> =
        task_fields.into_par_iter().map(|(name, service, fields)| (name, decide_service(stack, service, fields, &owned, placed))).collect();
    // Each Swarm service is a create or an update and up to three waits: room made once.
    plan.steps.reserve(4 * decisions.values().map(Vec::len).sum::<usize>());
    let mut ready: BTreeMap<&str, Ready> = BTreeMap::new();
    for name in graph.waves().into_iter().flatten() {
        let (Some(service), Some(decisions)) = (stack.services.get(&name), decisions.remove(name.as_str())) else { continue };
        let mut after: Vec<StepId> = Vec::new();
        for (dependency, condition) in graph.dependencies(&name) {
            match stack.layers.iter().find(|(layer, _)| barrier_name(layer) == dependency) {
                Some((_, members)) => after.extend(members.iter().flat_map(|m| ready.get(m.as_str()).map(|r| r.started.clone()).unwrap_or_default())),
                None => after.extend(ready.get(dependency).map(|r| r.for_condition(condition).to_vec()).unwrap_or_default()),
            }
        }
        let wanted = wanted_by_dependents.get(name.as_str()).cloned().unwrap_or_default();
        let service_ready = plan_service(stack, service, decisions, &owned, &networks, &configs, &secrets, after, &wanted, options, &mut plan);
        ready.insert(stack.services.get_key_value(&name).map(|(k, _)| k.as_str()).unwrap_or_default(), service_ready);
    }

    // What nothing uses any more goes last: after every rollout (a rollback would need it).
    let mut last: Vec<StepId> = plan.steps.iter().filter(|s| s.op.is_mutation() || matches!(s.op, SwarmOp::WaitService(_))).map(|s| s.id).collect();
    last.extend(gone);
    remove_unused(stack, observed, &mut plan, &last);
    plan.placement = Some(placement);
    // A secret object that still exists needs no content; one to create does.
    let problems: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|step| match &step.op {
            SwarmOp::CreateSecret { spec } => spec.labels.get("io.swarmctl.secret").filter(|key| stack.secrets.get(*key).is_some_and(|s| s.withheld)),
            _ => None,
        })
        .map(|key| super::withheld_secret(key))
        .collect();
    if !problems.is_empty() {
        return Err(PlanError { problems });
    }
    Ok(plan)
}

/// Per service, which conditions its dependents wait for.
fn conditions_wanted(stack: &Stack) -> BTreeMap<&str, BTreeSet<Condition>> {
    let mut wanted: BTreeMap<&str, BTreeSet<Condition>> = BTreeMap::new();
    for dependency in stack.services.values().flat_map(|s| &s.depends_on) {
        wanted.entry(dependency.service.as_str()).or_default().insert(dependency.condition);
    }
    wanted
}

/// Where statefulset ordinals are pinned, and which of them cannot run now.
#[derive(Clone, Copy)]
struct Placed<'a> {
    /// Ordinal (`db-0`) → node id holding its volumes.
    pins: &'a BTreeMap<String, String>,
    /// Ordinal → the hostname of its node, and why that node cannot run it.
    stranded: &'a BTreeMap<String, (String, String)>,
}

/// Ordinals pinned to a node that is down, drained or gone: Swarm would leave their tasks
/// Pending, and moving them would leave their data behind.
fn stranded(pins: &BTreeMap<String, String>, observed: &ObservedSwarm) -> BTreeMap<String, (String, String)> {
    pins.iter().filter_map(|(ordinal, id)| lost_node(id, &observed.nodes).map(|lost| (ordinal.clone(), lost))).collect()
}

/// When the node with `id`, which holds a pinned ordinal's volumes, cannot run it: the node's
/// name and the reason in words.
pub fn lost_node(id: &str, nodes: &[crate::model::node::Node]) -> Option<(String, String)> {
    use crate::model::node::{Availability, State};
    let node = nodes.iter().find(|n| n.id == id);
    let why = match node {
        None => "has left the swarm".to_string(),
        Some(node) if node.state != State::Ready => format!("is {}", node.state),
        Some(node) if node.availability == Availability::Drain => "is drained".to_string(),
        Some(_) => return None,
    };
    let name = node.map_or(id.to_string(), |n| n.hostname.clone());
    let reason = format!("its volumes are on {name}, which {why}; it runs again there once {name} is back (it is never moved away from its data)");
    Some((name, reason))
}

/// The placement the scheduler will make, predicted on the observed nodes; a service that
/// cannot be fully placed is an error before anything changes. Stranded ordinals are left out:
/// they are reported by their own step.
fn predict(
    stack: &Stack,
    graph: &DependencyGraph,
    observed: &ObservedSwarm,
    pins: &BTreeMap<String, String>,
    stranded: &BTreeMap<String, (String, String)>,
) -> Result<PlacementPlan, PlanError> {
    let order = placement::wave_order(stack, graph);
    let at = |service: &str| stack.services.get(service).map(|s| s.positions.get("deploy").copied().unwrap_or(s.pos));
    let mut demands = placement::stack_demands(stack, &order, pins).map_err(|errors| PlanError {
        problems: errors.iter().map(|e| Diagnostic::error(None, e.to_string()).with_hint(e.hint())).collect(),
    })?;
    demands.retain(|demand| !stranded.contains_key(&demand.service));
    let predicted = placement::plan_placement(&observed.nodes, &demands).map_err(|e| PlanError { problems: vec![Diagnostic::error(None, e.to_string())] })?;
    if predicted.problems.is_empty() {
        return Ok(predicted);
    }
    let problems = predicted
        .problems
        .iter()
        .map(|unplaced| {
            let stack_service = predicted.services.iter().find(|s| s.service == unplaced.service).map_or(unplaced.service.as_str(), |s| s.stack_service.as_str());
            Diagnostic::error(at(stack_service), unplaced.to_string())
                .with_hint("change the constraints or reservations, add or label nodes, or lower the replicas; `swarmctl plan --cluster FILE` tries a cluster you do not have yet")
        })
        .collect();
    Err(PlanError { problems })
}

/// Keys a swarm cannot honour: errors for those whose loss would change what the service is
/// (the plan must not quietly drop `privileged`), and names taken by objects the stack does
/// not own.
fn check(stack: &Stack, observed: &ObservedSwarm) -> Result<(), PlanError> {
    let mut problems = Vec::new();
    for service in stack.services.values() {
        let at = |key: &str| service.positions.get(key).copied().unwrap_or(service.pos);
        for key in UNSUPPORTED {
            let set = match *key {
                "network_mode" => service.network_mode.is_some(),
                _ => service.extra.get(*key).is_some_and(|value| changes_behaviour(key, value)),
            };
            if set {
                problems.push(
                    Diagnostic::error(at(key), format!("service `{}`: a swarm service has no `{key}`", service.name))
                        .with_hint("remove it for the swarm target (an overlay can reset it: `!reset null`), or deploy to one host with `--target host`"),
                );
            }
        }
        if service.image.is_none() {
            problems.push(
                Diagnostic::error(at("build"), format!("service `{}`: a swarm cannot build images", service.name))
                    .with_hint("build the image, load it on every node, and name it with `image:`"),
            );
        }
        for desired in desired_of(service, &BTreeMap::new()) {
            let name = desired.name(stack);
            if name.len() > MAX_SERVICE_NAME {
                problems.push(Diagnostic::error(service.pos, format!("service `{}`: the Swarm service name `{name}` is longer than {MAX_SERVICE_NAME} characters", service.name))
                    .with_hint("shorten the stack or service name"));
            }
            if observed.foreign_names.services.contains(&name) {
                problems.push(Diagnostic::error(service.pos, format!("service name `{name}` is taken by a service this stack does not own"))
                    .with_hint("remove that service, or deploy under another `--name`"));
            }
        }
    }
    for key in desired_networks(stack) {
        let name = network_name(stack, &key);
        if observed.foreign_names.networks.contains(&name) {
            problems.push(Diagnostic::error(None, format!("network name `{name}` is taken by a network this stack does not own"))
                .with_hint("remove that network, set the network's `name:`, or deploy under another `--name`"));
        }
    }
    for (key, network) in stack.networks.iter().filter(|(_, n)| n.external) {
        let name = network.name.clone().unwrap_or_else(|| key.clone());
        if !observed.foreign_names.networks.contains(&name) {
            problems.push(Diagnostic::error(None, format!("external network `{name}` does not exist"))
                .with_hint(format!("create it first: `docker network create --driver overlay --attachable {name}`")));
        }
    }
    for (secret, objects, foreign) in [(false, &stack.configs, &observed.foreign_names.configs), (true, &stack.secrets, &observed.foreign_names.secrets)] {
        let kind = if secret { "secret" } else { "config" };
        for (key, object) in objects {
            let name = object_name(stack, key, object);
            match (object.external, foreign.contains(&name)) {
                (true, false) => problems.push(Diagnostic::error(None, format!("external {kind} `{name}` does not exist")).with_hint(format!("create it first: `docker {kind} create {name} FILE`"))),
                (false, true) => problems.push(Diagnostic::error(None, format!("{kind} name `{name}` is taken by a {kind} this stack does not own")).with_hint("remove it, or deploy under another `--name`")),
                _ => {}
            }
            if name.len() > MAX_OBJECT_NAME {
                problems.push(Diagnostic::error(None, format!("{kind} `{key}`: the Swarm name `{name}` is longer than {MAX_OBJECT_NAME} characters")).with_hint("shorten the stack name or the key"));
            }
            let limit = if secret { MAX_SECRET_BYTES } else { MAX_CONFIG_BYTES };
            if !object.external && !object.withheld && (object.content.is_empty() || object.content.len() >= limit) {
                problems.push(Diagnostic::error(None, format!("{kind} `{key}` holds {} bytes; a swarm takes 1 to {} bytes", object.content.len(), limit - 1))
                    .with_hint(format!("ship larger files in the image or a volume; an empty {kind} needs at least one byte")));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PlanError { problems })
    }
}

/// Compose keys a swarm service has no word for, whose loss would change what it does.
const UNSUPPORTED: &[&str] = &["privileged", "devices", "pid", "ipc", "userns_mode", "network_mode", "volumes_from", "security_opt", "runtime", "cgroup_parent"];

/// Whether a value of an [`UNSUPPORTED`] key asks for something a task would not get anyway:
/// `privileged: false`, `devices: []`, `pid: ""`, `ipc: private` are what every task has.
fn changes_behaviour(key: &str, value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(false) => false,
        // The schema takes `"false"` for a boolean, and ipc `private` (the engine's default) or
        // `shareable` (others may join: none can on a swarm) is the task's own namespace anyway.
        Value::String(text) => !(text.is_empty() || (key == "privileged" && text == "false") || (key == "ipc" && (text == "private" || text == "shareable"))),
        Value::Array(items) => !items.is_empty(),
        Value::Object(entries) => !entries.is_empty(),
        _ => true,
    }
}

/// Keys a swarm ignores without changing what the service does, said in the plan.
const IGNORED: &[(&str, &str)] = &[
    ("container_name", "tasks are named by Swarm"),
    ("links", "services find each other by name on their networks"),
    ("expose", "every port is reachable on an overlay network"),
    ("mac_address", "Swarm picks addresses"),
    ("domainname", "Swarm has no domain name setting"),
    ("oom_score_adj", "Engine 20.10 drops it for services"),
    ("cpuset", "Swarm limits CPUs by count (`cpus`)"),
    ("cpu_quota", "Swarm limits CPUs by count (`cpus`)"),
    ("cpu_period", "Swarm limits CPUs by count (`cpus`)"),
    ("cpu_shares", "Swarm limits CPUs by count (`cpus`)"),
    ("memswap_limit", "Swarm limits memory only"),
    ("mem_swappiness", "Swarm limits memory only"),
    ("shm_size", "Swarm has no shared-memory size; mount a tmpfs at /dev/shm"),
    ("platform", "Swarm schedules by the nodes' platforms; use a `node.platform.*` constraint"),
];

/// Swarm's limits on one object's data (Engine 20.10: configs under 1000 KiB, secrets 500 KiB).
const MAX_CONFIG_BYTES: usize = 1000 * 1024;
const MAX_SECRET_BYTES: usize = 500 * 1024;

/// What the plan does differently from what was written, or cannot check.
fn notes(stack: &Stack, observed: &ObservedSwarm) -> Vec<String> {
    let mut notes = Vec::new();
    // One note per ignored key, naming every service that sets it.
    for (key, why) in IGNORED {
        let setting: Vec<String> = stack
            .services
            .values()
            .filter(|s| s.extra.contains_key(*key) || (*key == "container_name" && s.container_name.is_some()))
            .map(|s| format!("`{}`", s.name))
            .collect();
        if !setting.is_empty() {
            let services = if setting.len() == 1 { "service" } else { "services" };
            notes.push(format!("{services} {}: `{key}` is ignored on a swarm: {why}", setting.join(", ")));
        }
    }
    for service in stack.services.values() {
        if service.build.is_some() && service.image.is_some() {
            notes.push(format!("service `{}`: `build` is ignored on a swarm: every node runs the image `{}`", service.name, service.image.as_deref().unwrap_or_default()));
        }
        if service.ports.iter().any(|p| p.host_ip.is_some()) {
            notes.push(format!("service `{}`: a published port's host address is ignored on a swarm (every node publishes it)", service.name));
        }
        let image = service.image.as_deref().unwrap_or_default();
        let present = |images: &BTreeSet<String>| images.contains(image) || (!image.contains(':') && images.contains(&format!("{image}:latest")));
        if !image.is_empty() && observed.images.as_ref().is_some_and(|images| !present(images)) {
            notes.push(format!("service `{}`: image `{image}` is not on the manager; every node that runs it must have it (no registry is used)", service.name));
        }
    }
    notes
}

/// Networks the services will use: existing owned ones by name, else created (overlay, swarm
/// scope). A network is never updated (Swarm cannot): a changed one keeps its old settings.
fn plan_networks(stack: &Stack, observed: &ObservedSwarm, plan: &mut Plan) -> BTreeMap<String, ObjectRef> {
    let mut refs = BTreeMap::new();
    for (key, network) in stack.networks.iter().filter(|(_, n)| n.external) {
        let name = network.name.clone().unwrap_or_else(|| key.clone());
        refs.insert(key.clone(), ObjectRef::Existing(observed.foreign_ids.get(&name).cloned().unwrap_or(name)));
    }
    for key in desired_networks(stack) {
        let name = network_name(stack, &key);
        let existing = observed.networks.iter().find(|n| n.name == name && n.labels.get(LABEL_STACK) == Some(&stack.name));
        let reference = match existing {
            Some(network) => ObjectRef::Existing(network.id.clone()),
            None => {
                let declared = stack.networks.get(&key).cloned().unwrap_or_default();
                let mut labels = declared.labels.clone();
                labels.insert(LABEL_STACK.into(), stack.name.clone());
                labels.insert(LABEL_NAMESPACE.into(), stack.name.clone());
                labels.insert("io.swarmctl.network".into(), key.clone());
                let spec = NetworkSpec {
                    name,
                    driver: Some(declared.driver.clone().unwrap_or_else(|| "overlay".into())),
                    internal: declared.internal,
                    attachable: declared.attachable,
                    labels,
                    options: declared.driver_opts.clone(),
                    ipam_pools: declared.ipam.clone(),
                    ipam_driver: declared.ipam_driver.clone(),
                    ipam_options: declared.ipam_options.clone(),
                    enable_ipv6: declared.enable_ipv6,
                };
                ObjectRef::CreatedBy(plan.push(SwarmOp::CreateNetwork { spec }, Cause::Missing, vec![], None))
            }
        };
        refs.insert(key, reference);
    }
    refs
}

/// Configs (or secrets) the services use, by key: existing ones by their content-hashed name,
/// else created.
fn plan_objects(stack: &Stack, observed: &ObservedSwarm, secret: bool, plan: &mut Plan) -> BTreeMap<String, ObjectRef> {
    let (objects, existing) = if secret { (&stack.secrets, &observed.secrets) } else { (&stack.configs, &observed.configs) };
    let used: BTreeSet<&str> = stack
        .services
        .values()
        .flat_map(|s| if secret { &s.secrets } else { &s.configs })
        .map(|m| m.source.as_str())
        .collect();
    let mut refs = BTreeMap::new();
    for (key, object) in objects.iter().filter(|(k, _)| used.contains(k.as_str())) {
        let name = object_name(stack, key, object);
        let found = existing.iter().find(|o| o.name == name);
        let reference = match (found, object.external) {
            (Some(found), _) => ObjectRef::Existing(found.id.clone()),
            // An external object was checked to exist; Swarm wants its ID beside its name.
            (None, true) => ObjectRef::Existing(observed.foreign_ids.get(&name).cloned().unwrap_or(name.clone())),
            (None, false) => {
                let mut labels = BTreeMap::new();
                labels.insert(LABEL_STACK.to_string(), stack.name.clone());
                labels.insert(LABEL_NAMESPACE.to_string(), stack.name.clone());
                labels.insert(if secret { "io.swarmctl.secret" } else { "io.swarmctl.config" }.to_string(), key.clone());
                let spec = ObjectSpec { name, labels, data: FileContent::new(object.content.clone()) };
                let op = if secret { SwarmOp::CreateSecret { spec } } else { SwarmOp::CreateConfig { spec } };
                ObjectRef::CreatedBy(plan.push(op, Cause::Missing, vec![], None))
            }
        };
        refs.insert(key.clone(), reference);
    }
    refs
}

/// One Swarm service of the stack, decided: its hashes, whether and why it changes, and what
/// it becomes.
struct Decision<'a> {
    desired: Desired<'a>,
    hashes: Hashes,
    change: Option<Cause>,
    spec: Decided,
}

/// What a Swarm service becomes.
enum Decided {
    Spec(Box<ServiceSpec>),
    /// An ordinal pinned to a lost node: left as it is.
    Stranded { node: String, reason: String },
}

/// The Swarm services of one stack service, decided, in the order their steps are planned: a
/// statefulset's missing ordinals in order, changed ones from the highest down, those below
/// `x-rollout.partition` keeping their spec. Pure and independent of every other service, so
/// the services of a large stack are decided in parallel.
fn decide_service<'a>(
    stack: &Stack,
    service: &'a Service,
    task_fields: BTreeMap<String, String>,
    owned: &BTreeMap<&str, &ObservedService>,
    placed: Placed<'_>,
) -> Vec<Decision<'a>> {
    let mut decisions: Vec<Decision<'a>> = desired_of(service, placed.pins)
        .into_iter()
        .map(|desired| {
            let hashes = hashes(&task_fields, &desired);
            let change = match decide(owned.get(desired.name(stack).as_str()).copied(), &desired, &hashes) {
                Some(Cause::Changed(_)) if desired.ordinal.is_some_and(|o| o < service.rollout.partition) => None,
                change => change,
            };
            let spec = match desired.ordinal.and_then(|o| placed.stranded.get(&format!("{}-{o}", service.name))) {
                Some((node, reason)) => Decided::Stranded { node: node.clone(), reason: reason.clone() },
                None => Decided::Spec(Box::new(service_spec(stack, &desired, &hashes, &task_fields))),
            };
            Decision { desired, hashes, change, spec }
        })
        .collect();
    decisions.sort_by_key(|d| {
        let ordinal = i64::from(d.desired.ordinal.unwrap_or(0));
        if matches!(d.change, Some(Cause::Changed(_))) { (1, -ordinal) } else { (0, ordinal) }
    });
    decisions
}

#[allow(clippy::too_many_arguments)]
fn plan_service(
    stack: &Stack,
    service: &Service,
    decisions: Vec<Decision<'_>>,
    owned: &BTreeMap<&str, &ObservedService>,
    networks: &BTreeMap<String, ObjectRef>,
    configs: &BTreeMap<String, ObjectRef>,
    secrets: &BTreeMap<String, ObjectRef>,
    dependencies: Vec<StepId>,
    wanted: &BTreeSet<Condition>,
    options: &PlanOptions,
    plan: &mut Plan,
) -> Ready {
    let name = service.name.as_str();
    let references = References {
        networks: service_networks(service).into_iter().filter_map(|(key, _)| networks.get(&key).cloned()).collect(),
        configs: service.configs.iter().filter_map(|c| configs.get(&c.source).cloned()).collect(),
        secrets: service.secrets.iter().filter_map(|s| secrets.get(&s.source).cloned()).collect(),
    };
    let setup: Vec<StepId> = references
        .networks
        .iter()
        .chain(&references.configs)
        .chain(&references.secrets)
        .filter_map(|r| match r {
            ObjectRef::CreatedBy(step) => Some(*step),
            ObjectRef::Existing(_) => None,
        })
        .collect();
    let updated = decisions.iter().filter(|d| matches!(d.change, Some(Cause::Changed(_)))).count() as u32;
    if updated > 0 {
        plan.rollouts.push(rollout_view(service, owned, stack, updated));
    }
    let mut ready = Ready::default();
    let mut previous_ordinal: Option<StepId> = None;
    for Decision { desired, hashes, change, spec } in decisions {
        let swarm_name = desired.name(stack);
        let spec = match spec {
            Decided::Spec(spec) => spec,
            Decided::Stranded { node, reason } => {
                // Left as it is; what waits for it is skipped.
                let step = plan.push(SwarmOp::Unavailable { name: swarm_name, reason }, Cause::NodeLost { node }, vec![], Some(name));
                ready.started.push(step);
                ready.healthy.push(step);
                previous_ordinal = Some(step);
                continue;
            }
        };
        let existing = owned.get(swarm_name.as_str()).copied();
        let mut after = setup.clone();
        after.extend(&dependencies);
        after.extend(previous_ordinal);
        // A rollout's progress is bounded by its deadline (Kubernetes' progressDeadlineSeconds).
        let timeout = match change {
            Some(Cause::Changed(_)) => options.timeout.min(service.rollout.progress_deadline),
            _ => options.timeout,
        };
        let mutated: Option<StepId> = match (&change, existing) {
            (None, _) => None,
            (Some(cause), Some(old)) if old.mode != desired.mode() && !same_kind_of_mode(old.mode, desired.mode()) => {
                // Swarm cannot change a service's mode: remove it, then create it again.
                let removed = plan.push(SwarmOp::RemoveService { id: old.id.clone(), name: swarm_name.clone() }, cause.clone(), after.clone(), Some(name));
                let gone = plan.push(
                    SwarmOp::WaitTasksGone { service_ids: vec![old.id.clone()], name: swarm_name.clone(), timeout: options.timeout },
                    cause.clone(),
                    vec![removed],
                    Some(name),
                );
                Some(plan.push(SwarmOp::CreateService { spec, references: references.clone() }, cause.clone(), vec![gone], Some(name)))
            }
            (Some(cause), Some(old)) => {
                let op = SwarmOp::UpdateService { id: old.id.clone(), version: old.version, spec, references: references.clone() };
                Some(plan.push(op, cause.clone(), after, Some(name)))
            }
            (Some(cause), None) => Some(plan.push(SwarmOp::CreateService { spec, references: references.clone() }, cause.clone(), after, Some(name))),
        };
        let reference = match (mutated, existing) {
            (Some(step), _) if matches!(plan.steps[step].op, SwarmOp::CreateService { .. }) => ObjectRef::CreatedBy(step),
            (_, Some(old)) => ObjectRef::Existing(old.id.clone()),
            (_, None) => continue,
        };
        let expect = match desired.mode() {
            ServiceMode::Replicated { replicas } => Expect::Replicas(replicas),
            ServiceMode::ReplicatedJob { total } => Expect::Completions(total),
            ServiceMode::Global | ServiceMode::GlobalJob => Expect::EveryNode,
        };
        let needs_wait = mutated.is_some() || existing.is_some_and(|old| not_converged(old, desired.mode()));
        if !needs_wait {
            continue;
        }
        let job = desired.mode().is_job();
        let wait = |until: Until, stable: Duration| {
            SwarmOp::WaitService(ServiceWait {
                service: reference.clone(),
                name: swarm_name.clone(),
                until,
                expect,
                spec_hash: hashes.task.clone(),
                stable,
                timeout,
            })
        };
        let first = mutated.into_iter().collect::<Vec<_>>();
        let has_healthcheck = service.healthcheck.as_ref().is_some_and(|h| h.test.is_some());
        if !job && has_healthcheck && wanted.contains(&Condition::ServiceStarted) {
            ready.started.push(plan.push(wait(Until::Started, Duration::ZERO), Cause::Readiness, first.clone(), Some(name)));
        }
        let until = if job { Until::Completed } else { Until::Running };
        let done = plan.push(wait(until, Duration::ZERO), Cause::Readiness, first, Some(name));
        // `deploy --stable`: the tasks stay up; checked beside what follows, gating nothing.
        if !job && !options.stable.is_zero() {
            plan.push(wait(Until::Running, options.stable), Cause::Readiness, vec![done], Some(name));
        }
        if job {
            ready.completed.push(done);
        } else {
            ready.healthy.push(done);
            if !has_healthcheck || !wanted.contains(&Condition::ServiceStarted) {
                ready.started.push(done);
            }
        }
        if service.kind == Kind::Statefulset {
            previous_ordinal = Some(done);
        }
    }
    // Ordinals beyond the replicas go, highest first; their volumes stay on their nodes.
    if service.kind == Kind::Statefulset {
        let mut extra: Vec<(&str, &ObservedService)> = owned
            .iter()
            .filter(|(_, s)| s.labels.get(LABEL_SERVICE).map(String::as_str) == Some(name))
            .filter(|(n, _)| !(0..service.replicas).any(|o| service::service_name(stack, service, Some(o)) == **n))
            .map(|(n, s)| (*n, *s))
            .collect();
        extra.sort_by(|a, b| b.0.cmp(a.0));
        for (swarm_name, old) in extra {
            plan.push(
                SwarmOp::RemoveService { id: old.id.clone(), name: swarm_name.to_string() },
                Cause::Scaled { from: 0, to: service.replicas },
                vec![],
                Some(name),
            );
        }
    }
    ready
}

/// The rollout `plan` shows for a changed service: Kubernetes' steps in the bounds Swarm's
/// updater keeps, and what the mapping onto Swarm's words had to approximate.
fn rollout_view(service: &Service, owned: &BTreeMap<&str, &ObservedService>, stack: &Stack, updated: u32) -> super::ServiceRollout {
    use super::rollout;
    let (strategy, start) = match service.kind {
        Kind::Statefulset => {
            let strategy = rollout::Strategy::Ordered { replicas: service.replicas, partition: service.rollout.partition };
            (strategy, rollout::Replicas { old: updated, old_available: updated, new: service.replicas.saturating_sub(updated), ..Default::default() })
        }
        kind => {
            // A global service runs one task per eligible node: as many as Swarm counts now.
            let running = owned.get(service::service_name(stack, service, None).as_str()).map_or(0, |s| s.desired_tasks as u32);
            let desired = if kind == Kind::Daemonset { running } else { service.replicas };
            (rollout::strategy_for(kind, &service.rollout, desired), rollout::Replicas::old(running.min(desired)))
        }
    };
    let failure = rollout::FailurePolicy { action: rollout::FailureAction::Pause, monitor: service.rollout.monitor, max_failure_ratio: service.rollout.max_failure_ratio };
    let notes = match strategy {
        rollout::Strategy::Rolling(bounds) => {
            let mapped = rollout::swarm_update_config(&bounds, service.rollout.min_ready, &failure);
            let mut notes = mapped.notes;
            if mapped.config.order == rollout::UpdateOrder::StartFirst && bounds.desired() > mapped.config.parallelism {
                // Measured on Engine 20.10: 7 containers for 4 replicas, max surge 1
                // (tests/swarm_deploy.rs, benches/rollout.sh).
                notes.push(format!(
                    "Swarm counts an old replica gone once it is told to stop, and the next {} may start while it still stops \
                     (stop_grace_period {:?}): for those moments more containers run than max surge allows",
                    mapped.config.parallelism,
                    service.stop_grace_period.unwrap_or(Duration::from_secs(10)),
                ));
            }
            notes
        }
        _ => Vec::new(),
    };
    super::ServiceRollout { service: service.name.clone(), table: rollout::table(&strategy, &start), notes }
}

/// Replicated and replicated-with-another-count are one mode to Swarm (an update scales);
/// anything else needs a new service.
fn same_kind_of_mode(old: ServiceMode, new: ServiceMode) -> bool {
    matches!(
        (old, new),
        (ServiceMode::Replicated { .. }, ServiceMode::Replicated { .. }) | (ServiceMode::ReplicatedJob { .. }, ServiceMode::ReplicatedJob { .. })
    )
}

/// Why a service needs a change, or `None` when it matches (and, for a job, completed).
fn decide(existing: Option<&ObservedService>, desired: &Desired<'_>, hashes: &Hashes) -> Option<Cause> {
    let Some(old) = existing else { return Some(Cause::Missing) };
    if old.labels.get(LABEL_HASH) != Some(&hashes.service) {
        let changed = changed_fields(old, &hashes.fields);
        if changed == ["replicas"] {
            if let (ServiceMode::Replicated { replicas: from }, ServiceMode::Replicated { replicas: to }) = (old.mode, desired.mode()) {
                return Some(Cause::Scaled { from: from as u32, to: to as u32 });
            }
        }
        return Some(Cause::Changed(changed));
    }
    if desired.mode().is_job() {
        let total = match desired.mode() {
            ServiceMode::ReplicatedJob { total } => total,
            _ => old.desired_tasks,
        };
        // A job that ended without completing every task runs again (Swarm re-runs a job on
        // any update of it); one still running is waited for.
        if old.completed_tasks < total && old.running_tasks == 0 {
            return Some(Cause::Rerun { exit_code: -1 });
        }
    }
    None
}

/// An unchanged service a deploy must still wait for: fewer tasks running than wanted.
fn not_converged(old: &ObservedService, mode: ServiceMode) -> bool {
    match mode {
        ServiceMode::ReplicatedJob { total } => old.completed_tasks < total,
        ServiceMode::GlobalJob => old.completed_tasks < old.desired_tasks,
        _ => old.running_tasks < old.desired_tasks,
    }
}

/// Fields whose hash differs from the observed service's label.
fn changed_fields(old: &ObservedService, fields: &BTreeMap<String, String>) -> Vec<String> {
    let Some(label) = old.labels.get(LABEL_FIELDS) else { return Vec::new() };
    let before = parse_field_hashes(label);
    fields.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.clone()).chain(before.keys().filter(|k| !fields.contains_key(*k)).cloned()).collect()
}

/// Networks, configs and secrets the stack owns but no longer uses, after `after`.
fn remove_unused(stack: &Stack, observed: &ObservedSwarm, plan: &mut Plan, after: &[StepId]) {
    let networks: BTreeSet<String> = desired_networks(stack).iter().map(|k| network_name(stack, k)).collect();
    let configs: BTreeSet<String> = stack.configs.iter().map(|(k, o)| object_name(stack, k, o)).collect();
    let secrets: BTreeSet<String> = stack.secrets.iter().map(|(k, o)| object_name(stack, k, o)).collect();
    let owned = |labels: &BTreeMap<String, String>| labels.get(LABEL_STACK) == Some(&stack.name);
    for network in observed.networks.iter().filter(|n| owned(&n.labels) && !networks.contains(&n.name)) {
        plan.push(SwarmOp::RemoveNetwork { id: network.id.clone(), name: network.name.clone() }, Cause::Orphaned, after.to_vec(), None);
    }
    for config in observed.configs.iter().filter(|o| owned(&o.labels) && !configs.contains(&o.name)) {
        plan.push(SwarmOp::RemoveConfig { id: config.id.clone(), name: config.name.clone() }, Cause::Orphaned, after.to_vec(), None);
    }
    for secret in observed.secrets.iter().filter(|o| owned(&o.labels) && !secrets.contains(&o.name)) {
        plan.push(SwarmOp::RemoveSecret { id: secret.id.clone(), name: secret.name.clone() }, Cause::Orphaned, after.to_vec(), None);
    }
}

/// `down`: every service of the stack, dependents first (each removed once its dependents'
/// tasks are gone), then its networks, configs and secrets. Volumes live on each node and stay.
pub fn plan_down(stack: &str, observed: &ObservedSwarm, volumes: bool) -> Plan {
    let mut plan = Plan::default();
    let owned: Vec<&ObservedService> = observed.services.iter().filter(|s| s.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)).collect();
    let service_of = |s: &ObservedService| s.labels.get(LABEL_SERVICE).cloned().unwrap_or_default();
    let depends_on: BTreeMap<String, String> = owned.iter().map(|s| (service_of(s), s.labels.get(LABEL_DEPENDS_ON).cloned().unwrap_or_default())).collect();
    let dependents = teardown::dependents(&depends_on);
    let mut gone_by_service: BTreeMap<String, StepId> = BTreeMap::new();
    let mut all_gone = Vec::new();
    for name in teardown::removal_order(&depends_on) {
        let after: Vec<StepId> = dependents[&name].iter().filter_map(|d| gone_by_service.get(d).copied()).collect();
        let services: Vec<&&ObservedService> = owned.iter().filter(|s| service_of(s) == name).collect();
        let removals: Vec<StepId> = services
            .iter()
            .map(|s| plan.push(SwarmOp::RemoveService { id: s.id.clone(), name: s.name.clone() }, Cause::Down, after.clone(), Some(&name)))
            .collect();
        let op = SwarmOp::WaitTasksGone { service_ids: services.iter().map(|s| s.id.clone()).collect(), name: name.clone(), timeout: Duration::from_secs(300) };
        let gone = plan.push(op, Cause::Down, removals, Some(&name));
        gone_by_service.insert(name, gone);
        all_gone.push(gone);
    }
    let owned_by = |labels: &BTreeMap<String, String>| labels.get(LABEL_STACK).map(String::as_str) == Some(stack);
    for network in observed.networks.iter().filter(|n| owned_by(&n.labels)) {
        plan.push(SwarmOp::RemoveNetwork { id: network.id.clone(), name: network.name.clone() }, Cause::Down, all_gone.clone(), None);
    }
    for config in observed.configs.iter().filter(|o| owned_by(&o.labels)) {
        plan.push(SwarmOp::RemoveConfig { id: config.id.clone(), name: config.name.clone() }, Cause::Down, all_gone.clone(), None);
    }
    for secret in observed.secrets.iter().filter(|o| owned_by(&o.labels)) {
        plan.push(SwarmOp::RemoveSecret { id: secret.id.clone(), name: secret.name.clone() }, Cause::Down, all_gone.clone(), None);
    }
    if volumes {
        plan.notes.push("volumes live on the nodes that ran their tasks: `down --volumes` keeps them on a swarm; remove them with `docker volume rm` on each node".into());
    }
    plan
}
