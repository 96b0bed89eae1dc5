//! `swarmctl status`: what a target holds of a stack, service by service, against what the
//! stack asks for. Pure: built from an observed state and the desired replica counts (from the
//! stack's files, or the last revision when only a name is given).

pub mod host;
pub mod swarm;

use crate::model::stack::{Kind, Stack};
use crate::plan::placement::{Comparison, TaskCounts};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Serialize)]
pub struct StackStatus {
    pub stack: String,
    /// `host` or `swarm`.
    pub target: &'static str,
    pub services: Vec<ServiceStatus>,
    /// Swarm: every node, so a lost one shows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeStatus>,
    /// Swarm: where the tasks run against where the last deploy predicted them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementCheck>,
}

/// One node of a swarm.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    pub availability: String,
    pub state: String,
    /// The stack's running tasks on it.
    pub tasks: usize,
}

/// Predicted against observed placement.
#[derive(Debug, Serialize)]
pub struct PlacementCheck {
    pub predicted: TaskCounts,
    pub observed: TaskCounts,
    pub differences: Comparison,
    /// The differences and both tables, as text.
    #[serde(skip)]
    pub text: String,
}

#[derive(Debug, Serialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `deployment`, `statefulset`, `daemonset`, `job`; `unknown` on objects from before the label.
    pub kind: String,
    /// Replicas the stack asks for (the observed count when nothing says).
    pub desired: usize,
    /// Replicas running and not failing a health check (jobs: completed).
    pub ready: usize,
    /// Containers (host) or tasks (swarm).
    pub instances: Vec<Instance>,
    /// Why it is not ready, when the engine says (a task's last error).
    pub problem: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Instance {
    pub name: String,
    /// The node it runs on (swarm).
    pub node: Option<String>,
    pub state: String,
    pub health: Option<String>,
    pub ready: bool,
    pub image: String,
    pub created: String,
}

/// What a stack asks for, per service.
pub type Desired = BTreeMap<String, DesiredService>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredService {
    pub kind: Kind,
    pub replicas: u32,
}

/// The replica counts `stack` asks for (a daemonset counts one per host).
pub fn desired(stack: &Stack) -> Desired {
    stack
        .services
        .values()
        .map(|s| (s.name.clone(), DesiredService { kind: s.kind, replicas: if s.kind == Kind::Daemonset { 1 } else { s.replicas } }))
        .collect()
}

impl StackStatus {
    /// Every service has all its replicas ready (jobs completed): `status` exits 0.
    pub fn all_ready(&self) -> bool {
        self.services.iter().all(|s| s.ready >= s.desired && s.instances.iter().all(|i| i.ready))
    }
}

/// One line per service (`web  deployment  2/2 ready`), then one per container or task.
impl fmt::Display for StackStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.services.is_empty() {
            let what = if self.target == "swarm" { "services on this swarm" } else { "containers on this engine" };
            return writeln!(f, "stack `{}` has no {what}", self.stack);
        }
        let width = self.services.iter().flat_map(|s| &s.instances).map(|c| c.name.len()).max().unwrap_or(0);
        for service in &self.services {
            writeln!(f, "{:<20} {:<12} {}/{} ready", service.name, service.kind, service.ready, service.desired)?;
            for instance in &service.instances {
                let state = match &instance.health {
                    Some(health) => format!("{}, {health}", instance.state),
                    None => instance.state.clone(),
                };
                let node = instance.node.as_deref().map(|n| format!("{n:<12} ")).unwrap_or_default();
                writeln!(f, "  {:<width$}  {node}{:<20} {}", instance.name, state, instance.image)?;
            }
            if let Some(problem) = &service.problem {
                writeln!(f, "  ! {problem}")?;
            }
        }
        if !self.nodes.is_empty() {
            let width = self.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0).max(4);
            writeln!(f, "\n{:<width$}  {:<8} {:<12} {:<12} TASKS", "NODE", "ROLE", "AVAILABILITY", "STATE")?;
            for node in &self.nodes {
                writeln!(f, "{:<width$}  {:<8} {:<12} {:<12} {}", node.name, node.role, node.availability, node.state, node.tasks)?;
            }
        }
        match &self.placement {
            Some(check) if !check.differences.totals.is_empty() => {
                writeln!(f, "\nwarning: not every task runs that the last deploy placed:")?;
                write!(f, "{}", check.text)?;
            }
            Some(check) if !check.differences.nodes.is_empty() => {
                let services: BTreeSet<&str> = check.differences.nodes.iter().map(|d| d.service.as_str()).collect();
                let services: Vec<&str> = services.into_iter().collect();
                writeln!(f, "\nnote: {} run on other nodes than predicted, as good as those: Swarm chooses among equal nodes at random", services.join(", "))?;
            }
            _ => {}
        }
        Ok(())
    }
}
