//! The status of a stack on a swarm, from its services and their current tasks: per stack
//! service (a statefulset's ordinals together), its kind, desired and ready replicas, where each
//! task runs, and the last task error when something is wrong; every node, an ordinal whose
//! node is lost, and where the tasks run against where the last deploy predicted them.

use super::{Desired, Instance, NodeStatus, PlacementCheck, ServiceStatus, StackStatus};
use crate::model::labels::{LABEL_KIND, LABEL_SERVICE, LABEL_STACK};
use crate::plan::placement::{self, TaskCounts};
use crate::plan::swarm::lost_node;
use crate::plan::swarm::service::LABEL_NODE;
use crate::model::node::State;
use crate::model::service::ServiceMode;
use crate::model::swarm::{ObservedSwarm, ObservedTask, TaskState};
use std::collections::BTreeMap;

pub fn from_observed(stack: &str, observed: &ObservedSwarm, desired: Option<&Desired>, predicted: Option<&TaskCounts>) -> StackStatus {
    let mut placed = TaskCounts::default();
    let hostname = |node_id: &str| observed.nodes.iter().find(|n| n.id == node_id).map(|n| n.hostname.clone()).unwrap_or_else(|| node_id.to_string());
    let mut services: BTreeMap<String, ServiceStatus> = BTreeMap::new();
    for name in desired.into_iter().flat_map(|d| d.keys()) {
        let wanted = &desired.expect("iterating it")[name];
        services.insert(name.clone(), empty(name, wanted.kind.as_str(), wanted.replicas as usize));
    }
    for service in observed.services.iter().filter(|s| s.labels.get(LABEL_STACK).map(String::as_str) == Some(stack)) {
        let name = service.labels.get(LABEL_SERVICE).cloned().unwrap_or_else(|| service.name.clone());
        let kind = service.labels.get(LABEL_KIND).cloned().unwrap_or_else(|| "unknown".into());
        let job = service.mode.is_job();
        let entry = services.entry(name.clone()).or_insert_with(|| empty(&name, &kind, 0));
        if desired.is_none() {
            entry.desired += match service.mode {
                ServiceMode::Replicated { replicas } => replicas as usize,
                ServiceMode::ReplicatedJob { total } => total as usize,
                ServiceMode::Global | ServiceMode::GlobalJob => service.desired_tasks as usize,
            };
        } else if matches!(service.mode, ServiceMode::Global | ServiceMode::GlobalJob) {
            // One per eligible node: how many that is, Swarm knows.
            entry.desired = service.desired_tasks as usize;
        }
        // The tasks of the service's current spec: those a deploy waited for.
        let task_hash = tasks_hash(observed.tasks_of(&service.id));
        let current: Vec<&ObservedTask> = observed
            .tasks_of(&service.id)
            .filter(|t| t.desired_state <= TaskState::Complete || t.state <= TaskState::Running)
            .filter(|t| task_hash.is_none() || t.spec_hash == task_hash)
            .collect();
        // A lost node's tasks keep the last state it reported: running there is not ready.
        let node_up = |task: &ObservedTask| observed.nodes.iter().any(|n| n.id == task.node_id && n.state == State::Ready);
        let ready = |task: &ObservedTask| {
            if job {
                task.state == TaskState::Complete
            } else {
                task.state == TaskState::Running && task.desired_state == TaskState::Running && node_up(task)
            }
        };
        for task in &current {
            let ready = ready(task);
            entry.instances.push(Instance {
                name: match task.slot {
                    Some(slot) => format!("{}.{slot}", service.name),
                    None => format!("{}.{}", service.name, hostname(&task.node_id)),
                },
                node: (!task.node_id.is_empty()).then(|| hostname(&task.node_id)),
                state: if node_up(task) || task.node_id.is_empty() { task.state.as_str().to_string() } else { format!("{} (node lost)", task.state.as_str()) },
                health: None,
                ready,
                image: String::new(),
                created: task.created.clone(),
            });
        }
        let short_name = service.name.strip_prefix(&format!("{stack}_")).unwrap_or(&service.name);
        for task in current.iter().filter(|t| ready(t)) {
            placed.add(short_name, &task.node_id, 1);
        }
        entry.ready = entry.instances.iter().filter(|i| i.ready).count();
        if let Some((_, reason)) = service.labels.get(LABEL_NODE).and_then(|id| lost_node(id, &observed.nodes)) {
            entry.problem = Some(format!("{short_name}: {reason}"));
            continue;
        }
        let failed = observed.tasks_of(&service.id).filter(|t| matches!(t.state, TaskState::Failed | TaskState::Rejected) || t.error.is_some()).max_by(|a, b| a.created.cmp(&b.created));
        if let Some(task) = failed.filter(|_| entry.ready < entry.desired) {
            let node = if task.node_id.is_empty() { "no node".to_string() } else { hostname(&task.node_id) };
            let code = task.exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default();
            entry.problem = Some(format!("{} on {node}: {}{code}", task.state.as_str(), task.error.clone().unwrap_or_else(|| task.message.clone())));
        }
    }
    let nodes = observed
        .nodes
        .iter()
        .map(|n| NodeStatus {
            name: n.hostname.clone(),
            role: n.role.to_string(),
            availability: n.availability.to_string(),
            state: n.state.to_string(),
            tasks: placed.0.values().map(|per_node| per_node.get(&n.id).copied().unwrap_or(0) as usize).sum(),
        })
        .collect();
    let placement = predicted.map(|predicted| {
        let differences = placement::compare(predicted, &placed);
        let names = placement::plan_placement(&observed.nodes, &[]).map(|p| p.nodes).unwrap_or_default();
        let text = differences.render(&names, predicted, &placed);
        PlacementCheck { predicted: predicted.clone(), observed: placed, differences, text }
    });
    StackStatus { stack: stack.to_string(), target: "swarm", services: services.into_values().collect(), nodes, placement }
}

/// The spec hash of the newest task (the service's current spec), if tasks carry one.
fn tasks_hash<'a>(tasks: impl Iterator<Item = &'a ObservedTask>) -> Option<String> {
    tasks.max_by(|a, b| a.created.cmp(&b.created)).and_then(|t| t.spec_hash.clone())
}

fn empty(name: &str, kind: &str, desired: usize) -> ServiceStatus {
    ServiceStatus { name: name.to_string(), kind: kind.to_string(), desired, ready: 0, instances: Vec::new(), problem: None }
}
