//! What exists now on a swarm: the snapshot
//! [`SwarmEngine::observe`](crate::engine::SwarmEngine::observe) returns.
//!
//! Plain data, sorted and serialisable, like the host's [`super::host::ObservedState`]; the
//! swarm planner and `status` read nothing else. Health is not a field of a task: Swarm keeps a
//! task `starting` until its container is healthy, so `running` already means healthy.

use super::host::ObservedNetwork;
use super::node::Node;
use super::service::ServiceMode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What exists of one stack on a swarm, plus the names of foreign objects that could collide.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ObservedSwarm {
    /// Services labelled with the stack, sorted by name.
    pub services: Vec<ObservedService>,
    /// The tasks of those services that are not history: desired to run, or still running, or
    /// a job's completed ones; sorted by service, slot, then creation.
    pub tasks: Vec<ObservedTask>,
    /// Overlay networks labelled with the stack, sorted by name then ID.
    pub networks: Vec<ObservedNetwork>,
    /// Configs labelled with the stack, sorted by name.
    pub configs: Vec<ObservedObject>,
    /// Secrets labelled with the stack, sorted by name.
    pub secrets: Vec<ObservedObject>,
    /// Every node of the swarm, sorted by hostname.
    pub nodes: Vec<Node>,
    /// Candidate names held by objects *not* labelled with this stack.
    pub foreign_names: ForeignSwarmNames,
    /// Their IDs, by name: what a service needs to use an external network, config or secret
    /// (Swarm wants a config's ID beside its name).
    #[serde(default)]
    pub foreign_ids: BTreeMap<String, String>,
    /// Image references present on the manager (`repo:tag`, IDs); nodes may differ. `None`
    /// for the hypothetical nodes of a cluster file, where nothing is known of images.
    pub images: Option<BTreeSet<String>>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedService {
    pub id: String,
    pub name: String,
    /// The version index an update must quote (optimistic concurrency).
    pub version: u64,
    /// Service labels (ownership, spec hash, field hashes).
    pub labels: BTreeMap<String, String>,
    pub mode: ServiceMode,
    /// The state of the last rolling update, if one ran.
    pub update: Option<UpdateStatus>,
    /// What the managers count (`GET /services?status=true`).
    pub running_tasks: u64,
    pub desired_tasks: u64,
    /// Jobs: tasks that finished successfully.
    pub completed_tasks: u64,
    /// Creation and last update times, RFC 3339.
    pub created: String,
    pub updated: String,
}

/// A rolling update's progress, as Swarm's updater reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateStatus {
    pub state: UpdateState,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
}

/// One task (a replica's attempt to run) of an owned service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedTask {
    pub id: String,
    pub service_id: String,
    /// Replicated services and jobs number their slots; global ones have none (their node is
    /// the identity).
    pub slot: Option<u64>,
    /// Empty until the scheduler picked a node.
    pub node_id: String,
    pub state: TaskState,
    pub desired_state: TaskState,
    /// Swarm's one-line summary (`started`, `starting`, `no suitable node (…)`).
    pub message: String,
    /// Why it failed or cannot be scheduled.
    pub error: Option<String>,
    /// The container's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// The container's process as the agent reported it with the state: 0 when the container
    /// had already exited.
    pub pid: Option<i64>,
    /// The spec hash of the service spec this task runs (its container's label), so a wait
    /// counts only the tasks of the new spec.
    pub spec_hash: Option<String>,
    /// When the task was created, RFC 3339 with fractions, so tasks of one slot sort in order.
    pub created: String,
}

/// A task's lifecycle, in Swarm's order (`new` < … < `running` < `complete` < …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    New,
    Allocated,
    Pending,
    Assigned,
    Accepted,
    Preparing,
    Ready,
    Starting,
    Running,
    Complete,
    Shutdown,
    Failed,
    Rejected,
    Remove,
    Orphaned,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::New => "new",
            TaskState::Allocated => "allocated",
            TaskState::Pending => "pending",
            TaskState::Assigned => "assigned",
            TaskState::Accepted => "accepted",
            TaskState::Preparing => "preparing",
            TaskState::Ready => "ready",
            TaskState::Starting => "starting",
            TaskState::Running => "running",
            TaskState::Complete => "complete",
            TaskState::Shutdown => "shutdown",
            TaskState::Failed => "failed",
            TaskState::Rejected => "rejected",
            TaskState::Remove => "remove",
            TaskState::Orphaned => "orphaned",
        }
    }

    /// Ended, and will not run again (Swarm replaces it with a new task if it should).
    pub fn is_terminal(self) -> bool {
        self > TaskState::Running
    }
}

/// A config or a secret (their data is not observed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedObject {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// Names used by objects not labelled with the observed stack, among those asked about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ForeignSwarmNames {
    pub services: BTreeSet<String>,
    pub networks: BTreeSet<String>,
    pub configs: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

/// The names a plan for a stack could create, so `observe` can report foreign holders.
pub type SwarmCandidateNames = ForeignSwarmNames;

impl ObservedSwarm {
    /// Puts every list in its canonical order, so equal worlds give equal snapshots.
    pub fn sort(&mut self) {
        self.services.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        self.tasks.sort_by(|a, b| (&a.service_id, a.slot, &a.node_id, &a.created, &a.id).cmp(&(&b.service_id, b.slot, &b.node_id, &b.created, &b.id)));
        self.networks.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        self.configs.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        self.secrets.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        self.nodes.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
    }

    /// The tasks of one service.
    pub fn tasks_of<'a>(&'a self, service_id: &'a str) -> impl Iterator<Item = &'a ObservedTask> + 'a {
        self.tasks.iter().filter(move |t| t.service_id == service_id)
    }
}
