//! The plan: a DAG of steps, each one Engine API call (or a wait), each with its cause.
//!
//! Glossary: *desired* is what the stack asks for, *observed* what the engine has; a *replica* is
//! one container of a service; a step's `after` lists the steps that must succeed first.
//! Planning is pure: no IO, no clock, no randomness — the same inputs give the same plan, and
//! its text form is stable enough for snapshot tests.

pub mod container;
pub mod host;
pub mod placement;
pub mod rollout;

use crate::engine::{BuildSpec, ContainerSpec, NetworkSpec, VolumeSpec};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

pub type StepId = usize;

/// A container that exists now, or the one an earlier step creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ContainerRef {
    Existing(String),
    CreatedBy(StepId),
}

/// A network that exists now (by ID), or the one an earlier step creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NetworkRef {
    Existing(String),
    CreatedBy(StepId),
}

/// One engine call. The executor maps each variant to exactly one [`crate::engine::Engine`] method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Op {
    CreateNetwork { spec: NetworkSpec },
    RemoveNetwork { id: String, name: String },
    CreateVolume { spec: VolumeSpec },
    RemoveVolume { name: String },
    BuildImage { spec: BuildSpec },
    /// `networks[i]` fills `spec.networks[i].network_id`.
    CreateContainer { spec: Box<ContainerSpec>, networks: Vec<NetworkRef> },
    StartContainer { container: ContainerRef, name: String },
    StopContainer { id: String, name: String, grace: Option<Duration> },
    /// `anonymous_volumes`: also delete the volumes only it used (`down --volumes`).
    RemoveContainer { id: String, name: String, anonymous_volumes: bool },
    WaitRunning { container: ContainerRef, name: String, timeout: Duration },
    WaitHealthy { container: ContainerRef, name: String, timeout: Duration },
    WaitCompleted { container: ContainerRef, name: String, timeout: Duration },
}

impl Op {
    /// Changes the world (as opposed to waiting on it).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::WaitRunning { .. } | Op::WaitHealthy { .. } | Op::WaitCompleted { .. })
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Op::CreateNetwork { .. } => "create network",
            Op::RemoveNetwork { .. } => "remove network",
            Op::CreateVolume { .. } => "create volume",
            Op::RemoveVolume { .. } => "remove volume",
            Op::BuildImage { .. } => "build image",
            Op::CreateContainer { .. } => "create container",
            Op::StartContainer { .. } => "start container",
            Op::StopContainer { .. } => "stop container",
            Op::RemoveContainer { .. } => "remove container",
            Op::WaitRunning { .. } => "wait running",
            Op::WaitHealthy { .. } => "wait healthy",
            Op::WaitCompleted { .. } => "wait completed",
        }
    }

    /// The object the step acts on.
    pub fn object(&self) -> &str {
        match self {
            Op::CreateNetwork { spec } => &spec.name,
            Op::CreateVolume { spec } => &spec.name,
            Op::BuildImage { spec } => &spec.tag,
            Op::CreateContainer { spec, .. } => &spec.name,
            Op::RemoveNetwork { name, .. }
            | Op::RemoveVolume { name }
            | Op::StartContainer { name, .. }
            | Op::StopContainer { name, .. }
            | Op::RemoveContainer { name, .. }
            | Op::WaitRunning { name, .. }
            | Op::WaitHealthy { name, .. }
            | Op::WaitCompleted { name, .. } => name,
        }
    }
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
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub id: StepId,
    pub op: Op,
    pub cause: Cause,
    /// Steps that must succeed first.
    pub after: Vec<StepId>,
    /// The service this step belongs to, if any (for progress and reports).
    pub service: Option<String>,
}

/// Steps in creation order (every `after` points backwards), plus what is reported but not done.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Volumes owned by the stack that nothing uses any more: reported, never deleted by deploy.
    pub orphaned_volumes: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn mutations(&self) -> usize {
        self.steps.iter().filter(|s| s.op.is_mutation()).count()
    }

    /// Adds a step and returns its ID.
    pub fn push(&mut self, op: Op, cause: Cause, after: Vec<StepId>, service: Option<&str>) -> StepId {
        let id = self.steps.len();
        let mut after = after;
        after.sort_unstable();
        after.dedup();
        self.steps.push(Step { id, op, cause, after, service: service.map(str::to_string) });
        id
    }
}

/// The stable text form: one line per step, `#id [after] verb object (cause)`.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            writeln!(f, "no changes")?;
        }
        for step in &self.steps {
            let after = if step.after.is_empty() {
                String::new()
            } else {
                format!(" after {}", step.after.iter().map(|a| format!("#{a}")).collect::<Vec<_>>().join(","))
            };
            let also = if matches!(step.op, Op::RemoveContainer { anonymous_volumes: true, .. }) { " +anonymous volumes" } else { "" };
            writeln!(f, "#{:<3} {:<16} {}{also} ({}){after}", step.id, step.op.verb(), step.op.object(), step.cause)?;
        }
        for volume in &self.orphaned_volumes {
            writeln!(f, "note: volume {volume} is no longer used; kept (remove with `swarmctl down --volumes`)")?;
        }
        Ok(())
    }
}

/// A plan that cannot be made; reported before anything changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    pub problems: Vec<String>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "error: {problem}")?;
        }
        Ok(())
    }
}
