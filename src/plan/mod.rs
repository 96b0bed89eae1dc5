//! The plan: a DAG of steps, each one engine call (or a wait), each with its cause. One generic
//! [`Plan`] serves both targets; each target brings its own step type ([`Op`]): `host::HostOp`
//! for containers on one engine, `swarm::SwarmOp` for services on a cluster.
//!
//! Glossary: *desired* is what the stack asks for, *observed* what the engine has; a *replica* is
//! one container (or task) of a service; a step's `after` lists the steps that must succeed first.
//! Planning is pure: no IO, no clock, no randomness — the same inputs give the same plan, and
//! its text form is stable enough for snapshot tests.

pub mod host;
pub mod naming;
pub mod placement;
mod ready;
pub mod rollout;
pub mod swarm;
pub mod teardown;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub type StepId = usize;

/// What a target's step type tells the generic plan and executor about itself.
pub trait Op: fmt::Debug + Clone + PartialEq + Serialize + Send + Sync + 'static {
    /// Changes the world (as opposed to waiting on it): mutations take an engine-call slot.
    fn is_mutation(&self) -> bool;
    /// What the step does, e.g. `create container`.
    fn verb(&self) -> &'static str;
    /// The object the step acts on, e.g. `shop-web-1`.
    fn object(&self) -> String;
    /// A word more for the plan's text form, e.g. `+anonymous volumes`.
    fn note(&self) -> Option<&'static str> {
        None
    }
    /// The same step with the IDs that earlier steps produced filled in.
    fn resolve(&self, created: &BTreeMap<StepId, String>) -> Self;
}

/// Why a step exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Cause {
    /// The object does not exist yet.
    Missing,
    /// The service's spec changed; the fields that differ.
    Changed(Vec<String>),
    /// Replicas `from` → `to`.
    Scaled { from: u32, to: u32 },
    /// Owned by this stack but no longer in it.
    Orphaned,
    /// Exists with the right spec but is not running.
    NotRunning,
    /// A job that failed before runs again.
    Rerun { exit_code: i64 },
    /// A dependent waits for this condition.
    Readiness,
    /// Requested by `down`.
    Down,
    /// An owned network whose name another owned network also has.
    Duplicate,
    /// Left half-made by an interrupted deploy.
    Incomplete,
    /// A statefulset ordinal whose node, where its volumes are, cannot run it now.
    NodeLost { node: String },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Missing => f.write_str("missing"),
            Cause::Changed(fields) if fields.is_empty() => f.write_str("spec changed"),
            Cause::Changed(fields) => write!(f, "spec changed: {}", fields.join(", ")),
            Cause::Scaled { from, to } => write!(f, "scaled {from} -> {to}"),
            Cause::Orphaned => f.write_str("orphaned"),
            Cause::NotRunning => f.write_str("not running"),
            Cause::Rerun { exit_code } => write!(f, "job failed before (exit {exit_code})"),
            Cause::Readiness => f.write_str("readiness"),
            Cause::Down => f.write_str("down"),
            Cause::Duplicate => f.write_str("duplicate name"),
            Cause::Incomplete => f.write_str("left incomplete by an interrupted deploy"),
            Cause::NodeLost { node } => write!(f, "its volumes are on {node}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step<O> {
    pub id: StepId,
    pub op: O,
    pub cause: Cause,
    /// Steps that must succeed first.
    pub after: Vec<StepId>,
    /// The service this step belongs to, if any (for progress and reports).
    pub service: Option<String>,
}

/// Steps in creation order (every `after` points backwards), plus what is reported but not done.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan<O> {
    pub steps: Vec<Step<O>>,
    /// Volumes owned by the stack that nothing uses any more: reported, never deleted by deploy.
    pub orphaned_volumes: Vec<String>,
    /// What the plan does differently from what was written, or cannot check (a key the target
    /// ignores, an approximated update policy, an image only the nodes may have).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where a swarm's tasks are predicted to land.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<placement::PlacementPlan>,
    /// How each changed service's replicas are replaced, before it happens.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollouts: Vec<ServiceRollout>,
}

/// One service's rollout: its resolved strategy and the old/new counts after each batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceRollout {
    pub service: String,
    pub table: rollout::Table,
    /// How the policy was fitted to the target, when it was (a fixed host port, Swarm's words).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl<O> Default for Plan<O> {
    fn default() -> Self {
        Plan { steps: Vec::new(), orphaned_volumes: Vec::new(), notes: Vec::new(), placement: None, rollouts: Vec::new() }
    }
}

impl<O: Op> Plan<O> {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn mutations(&self) -> usize {
        self.steps.iter().filter(|s| s.op.is_mutation()).count()
    }

    /// Adds a step and returns its ID.
    pub fn push(&mut self, op: O, cause: Cause, after: Vec<StepId>, service: Option<&str>) -> StepId {
        let id = self.steps.len();
        let mut after = after;
        after.sort_unstable();
        after.dedup();
        self.steps.push(Step { id, op, cause, after, service: service.map(str::to_string) });
        id
    }
}

/// The stable text form: one line per step, `#id [after] verb object (cause)`.
impl<O: Op> fmt::Display for Plan<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A large plan's placement table takes as long to render as its steps: made beside them.
        let (steps, placement) = rayon::join(|| self.steps_text(), || self.placement.as_ref().map(placement::PlacementPlan::render));
        f.write_str(&steps)?;
        f.write_str(placement.as_deref().unwrap_or_default())
    }
}

impl<O: Op> Plan<O> {
    /// The text form up to the placement table.
    fn steps_text(&self) -> String {
        use fmt::Write as _;
        let mut f = String::with_capacity(self.steps.len() * 96);
        if self.steps.is_empty() {
            f.push_str("no changes\n");
        }
        // Writing to a String cannot fail.
        for step in &self.steps {
            let _ = write!(f, "#{:<3} {:<16} {}", step.id, step.op.verb(), step.op.object());
            if let Some(note) = step.op.note() {
                let _ = write!(f, " {note}");
            }
            let _ = write!(f, " ({})", step.cause);
            for (i, after) in step.after.iter().enumerate() {
                let _ = write!(f, "{}#{after}", if i == 0 { " after " } else { "," });
            }
            f.push('\n');
        }
        for volume in &self.orphaned_volumes {
            let _ = writeln!(f, "note: volume {volume} is no longer used; kept (remove with `swarmctl down --volumes`)");
        }
        for note in &self.notes {
            let _ = writeln!(f, "note: {note}");
        }
        for rollout in &self.rollouts {
            let _ = write!(f, "rollout {}: {}", rollout.service, rollout.table);
            for note in &rollout.notes {
                let _ = writeln!(f, "  note: {note}");
            }
        }
        f
    }
}

/// A plan that cannot be made; reported before anything changes, each problem at the place in
/// the stack's files that causes it, with how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub problems: Vec<crate::diagnostics::Diagnostic>,
}

impl std::error::Error for PlanError {}

/// Without the files at hand: `error: message` and the hint, one problem after another.
impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "error: {}", problem.message)?;
            if let Some(hint) = &problem.hint {
                writeln!(f, "  help: {hint}")?;
            }
        }
        Ok(())
    }
}

/// A secret a plan must create again whose content history did not keep (`rollback`).
pub(crate) fn withheld_secret(key: &str) -> crate::diagnostics::Diagnostic {
    crate::diagnostics::Diagnostic::error(None, format!("secret `{key}` must be created again, and history never keeps a secret's content"))
        .with_hint(format!("pass `--secret {key}=FILE` with the content it had, or roll back from the stack directory whose files still hold it"))
}

/// Knobs that shape a plan without being part of the stack.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// How long a replica may take to become running / healthy / complete.
    pub timeout: Duration,
    /// How long a replica must stay up since its start for the deploy to have converged (0: no
    /// check). A container that dies a second after starting has not converged.
    pub stable: Duration,
}

/// `deploy --stable`'s default: long enough to see a process that dies on its configuration,
/// short enough not to matter (it runs beside the other waits, from each container's start).
pub const DEFAULT_STABLE: Duration = Duration::from_secs(3);

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { timeout: Duration::from_secs(300), stable: DEFAULT_STABLE }
    }
}

