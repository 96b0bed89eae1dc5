//! What a service's tasks mean: which of them `observe` keeps, and when a wait on a service
//! is done, still going, or failed. Pure functions over the domain's task and service types,
//! shared by the Docker engine ([`super::swarm_docker`]) and the fake
//! ([`super::fake_swarm`]), so both resolve a wait the same way.
//!
//! # Wait semantics
//!
//! A wait looks only at the tasks of its service whose spec hash (the container label
//! `io.swarmctl.spec-hash`) is `wait.spec_hash`, and, for a job, only at its current run. It
//! counts *units*: a replicated service's or job's slots, a global service's nodes; a unit
//! counts once however many of its tasks qualify.
//!
//! - [`Until::Started`]: units with a task `starting` or `running` (or `complete`: it started
//!   and already finished).
//! - [`Until::Running`]: units with a task `running` and desired running, in that state for at
//!   least `wait.stable` by the task's status timestamp. Swarm keeps a task `starting` until
//!   its container is healthy, so with a health check this means healthy; but a container
//!   stopped for failing its health check that exits 0 is reported `running` (with no process)
//!   just before `complete`, and does not count. A job's `complete` tasks count too: a job
//!   never stays running.
//! - [`Until::Completed`]: units with a task `complete`.
//!
//! Expected: `Replicas(n)` and `Completions(n)` want `n` units; `EveryNode` wants as many as
//! Swarm desires (`ServiceStatus.DesiredTasks`), or as many nodes as hold a task of the
//! spec, whichever is more. When that is 0 (no eligible node), the wait succeeds once it
//! has stayed 0 for [`NONE_EXPECTED_GRACE`] (Swarm may not have made the tasks yet).
//!
//! It fails ([`WaitFailure`]), checked before success on every look:
//! - the service is gone;
//! - the service now runs another spec (someone updated it, or Swarm rolled it back: the
//!   tasks of this spec will not come);
//! - its rolling update is paused (Swarm waits for a human);
//! - a task of the spec is `failed`, or (waiting for running) a service's task is `complete`:
//!   its container exited, with code 0 (a process that exits 0 on SIGTERM ends so when Swarm
//!   stops it for a failing health check). A task that had already ended so at the first look
//!   is history from an earlier attempt when a newer task of its unit followed;
//! - a unit's tasks never ran [`NEVER_RAN_TO_FAIL`] times, or its newest one that never ran
//!   was not retried within [`NEVER_RAN_GRACE`]. A task never ran when its node rejected it, or
//!   when the engine failed to start its container: a node rejects tasks while it rejoins after
//!   a loss ("swarm is not active"), an engine under load can fail a start ("unable to remount
//!   dir as readonly … device or resource busy"), and Swarm retries both, where a missing image,
//!   mount source or executable fails every time;
//! - a task of the spec has been `pending` with a scheduler error (`no suitable node (…)`) for
//!   [`PENDING_GRACE`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use super::error::EngineError;
use crate::model::swarm::{ObservedService, ObservedTask, TaskState, UpdateState, UpdateStatus};
use crate::plan::swarm::{Expect, ServiceWait, Until};

/// How long a task may sit pending with a scheduler error before the wait gives up on it:
/// long enough for a rolling update's brief "max replicas per node" overlap, short enough that
/// a constraint no node meets fails in seconds, not at the deadline.
pub(crate) const PENDING_GRACE: Duration = Duration::from_secs(3);
/// How long a global service may show no desired task before the wait believes it.
pub(crate) const NONE_EXPECTED_GRACE: Duration = Duration::from_secs(2);
/// Attempts of one unit that never ran (see [`never_ran`]) that fail a wait.
pub(crate) const NEVER_RAN_TO_FAIL: usize = 3;
/// How long a unit's newest attempt that never ran may stay so, not retried, before the wait
/// fails (Swarm retries after the restart delay, 5 s by default).
pub(crate) const NEVER_RAN_GRACE: Duration = Duration::from_secs(10);

/// One task as a wait sees it.
#[derive(Debug, Clone)]
pub(crate) struct PolledTask {
    pub task: ObservedTask,
    /// How long it has been in its current state, as of the poll.
    pub in_state_for: Option<Duration>,
    /// A job task's run (0 for the first); `None` for services.
    pub job_iteration: Option<u64>,
}

/// One service as a wait sees it.
#[derive(Debug, Clone)]
pub(crate) struct PolledService {
    pub service: ObservedService,
    /// The spec hash its current spec gives its tasks.
    pub task_hash: Option<String>,
    /// A job's current run; `None` for services.
    pub job_iteration: Option<u64>,
}

/// Every task (history included) and service of the polled scope, at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct TaskSnapshot {
    pub services: Vec<PolledService>,
    pub tasks: Vec<PolledTask>,
}

/// What a wait remembers between looks.
#[derive(Debug, Default)]
pub(crate) struct WaitMemory {
    /// The tasks of the spec that had ended badly at the first look.
    baseline_failed: Option<BTreeSet<String>>,
    /// Tasks pending with a scheduler error, since when.
    pending_since: BTreeMap<String, Instant>,
    /// Since when no task has been expected (`EveryNode` with nothing desired).
    none_expected_since: Option<Instant>,
}

/// A wait's conclusion from one look.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    Done,
    Pending,
    Failed(Box<WaitFailure>),
}

/// Why a wait cannot succeed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum WaitFailure {
    /// A task of the spec failed, was rejected, or exited when it should run.
    Task(ObservedTask),
    /// A task of the spec cannot be placed on any node.
    Unschedulable(ObservedTask),
    ServiceGone,
    /// The service's current spec is another one.
    Replaced { current: String, update: Option<UpdateStatus> },
    /// Swarm paused the rolling update.
    Paused(UpdateStatus),
}

/// The unit a task fills: its slot, or (global services) its node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Unit {
    Slot(u64),
    Node(String),
}

pub(crate) fn unit(task: &ObservedTask) -> Unit {
    task.slot.map_or_else(|| Unit::Node(task.node_id.clone()), Unit::Slot)
}

fn is_failed(task: &ObservedTask) -> bool {
    matches!(task.state, TaskState::Failed | TaskState::Rejected)
}

/// Rejected by its node, or failed because the engine could not start its container: nothing
/// of the service ran, and Swarm tries again.
fn never_ran(task: &ObservedTask) -> bool {
    task.state == TaskState::Rejected
        || (task.state == TaskState::Failed && task.error.as_deref().is_some_and(|error| error.starts_with("starting container failed")))
}

/// Failed, or (a service's task, while waiting for it to run) exited.
fn ended_badly(wait: &ServiceWait, job: bool, task: &ObservedTask) -> bool {
    is_failed(task) || (wait.until == Until::Running && !job && task.state == TaskState::Complete)
}

/// The tasks `observe` reports: those desired to run (or ready to, or a job's complete ones),
/// those not yet ended, and per unit the newest failed one, which explains a failure.
pub(crate) fn current_tasks(tasks: Vec<ObservedTask>) -> Vec<ObservedTask> {
    let mut newest_failed: BTreeMap<(String, Unit), ObservedTask> = BTreeMap::new();
    let mut kept = Vec::new();
    for task in tasks {
        let wanted = matches!(task.desired_state, TaskState::Running | TaskState::Ready | TaskState::Complete);
        if wanted || !task.state.is_terminal() {
            kept.push(task);
        } else if is_failed(&task) {
            let key = (task.service_id.clone(), unit(&task));
            match newest_failed.get(&key) {
                Some(newer) if (&newer.created, &newer.id) >= (&task.created, &task.id) => {}
                _ => {
                    newest_failed.insert(key, task);
                }
            }
        }
    }
    for failed in newest_failed.into_values() {
        if !kept.iter().any(|task| task.id == failed.id) {
            kept.push(failed);
        }
    }
    kept
}

/// True while a task of one of the `removed` services is still there, as far as waiting for
/// them to go is concerned. Swarm deletes a removed service's tasks once they are shut down,
/// except a job's ended ones (Engine 20.10 keeps those for ever): those count as gone.
pub(crate) fn holds_on(polled: &PolledTask, removed: &std::collections::HashSet<&str>) -> bool {
    removed.contains(polled.task.service_id.as_str()) && !(polled.job_iteration.is_some() && polled.task.state.is_terminal())
}

/// The name Swarm gives a task in `docker service ps`: `<service>.<slot>`, or for a global
/// service `<service>.<node id>`.
pub(crate) fn task_name(service_name: &str, task: &ObservedTask) -> String {
    match unit(task) {
        Unit::Slot(slot) => format!("{service_name}.{slot}"),
        Unit::Node(node) if node.is_empty() => format!("{service_name} (unassigned)"),
        Unit::Node(node) => format!("{service_name}.{node}"),
    }
}

/// The operation a wait reports as, matching its step's verb.
pub(crate) fn wait_operation(until: Until) -> &'static str {
    match until {
        Until::Started => "wait started",
        Until::Running => "wait running",
        Until::Completed => "wait completed",
    }
}

/// The tasks of the waited spec (and the service's current job run).
fn tasks_of_spec<'a>(wait: &ServiceWait, service: &PolledService, snapshot: &'a TaskSnapshot) -> Vec<&'a PolledTask> {
    snapshot
        .tasks
        .iter()
        .filter(|polled| polled.task.service_id == service.service.id)
        .filter(|polled| polled.task.spec_hash.as_deref() == Some(wait.spec_hash.as_str()))
        .filter(|polled| match (polled.job_iteration, service.job_iteration) {
            (Some(task_run), Some(current_run)) => task_run == current_run,
            _ => true,
        })
        .collect()
}

fn qualifies(wait: &ServiceWait, job: bool, polled: &PolledTask) -> bool {
    let task = &polled.task;
    match wait.until {
        Until::Started => matches!(task.state, TaskState::Starting | TaskState::Running | TaskState::Complete),
        Until::Running => {
            let stable = polled.in_state_for.unwrap_or(Duration::ZERO) >= wait.stable;
            let alive = task.pid != Some(0);
            (task.state == TaskState::Running && task.desired_state == TaskState::Running && stable && alive)
                || (job && task.state == TaskState::Complete)
        }
        Until::Completed => task.state == TaskState::Complete,
    }
}

/// (units that qualify, units expected) at this look.
fn counts(wait: &ServiceWait, service: &PolledService, tasks: &[&PolledTask]) -> (u64, u64) {
    let job = service.service.mode.is_job();
    let done: BTreeSet<Unit> = tasks.iter().filter(|polled| qualifies(wait, job, polled)).map(|polled| unit(&polled.task)).collect();
    let expected = match wait.expect {
        Expect::Replicas(count) | Expect::Completions(count) => count,
        Expect::EveryNode => {
            let holding: BTreeSet<Unit> = tasks
                .iter()
                .filter(|polled| matches!(polled.task.desired_state, TaskState::Running | TaskState::Complete))
                .map(|polled| unit(&polled.task))
                .collect();
            service.service.desired_tasks.max(holding.len() as u64)
        }
    };
    (done.len() as u64, expected)
}

/// One look at the snapshot: done, pending, or failed (see the module doc).
pub(crate) fn judge(wait: &ServiceWait, snapshot: &TaskSnapshot, memory: &mut WaitMemory, now: Instant) -> Verdict {
    let Some(service) = snapshot.services.iter().find(|polled| polled.service.id == wait.service.id()) else {
        return Verdict::Failed(Box::new(WaitFailure::ServiceGone));
    };
    let tasks = tasks_of_spec(wait, service, snapshot);
    let job = service.service.mode.is_job();
    let baseline = memory.baseline_failed.get_or_insert_with(|| {
        tasks.iter().filter(|polled| ended_badly(wait, job, &polled.task)).map(|polled| polled.task.id.clone()).collect()
    });

    if let Some(current) = service.task_hash.as_ref().filter(|current| **current != wait.spec_hash) {
        return Verdict::Failed(Box::new(WaitFailure::Replaced { current: current.clone(), update: service.service.update.clone() }));
    }
    if let Some(update) = service.service.update.as_ref().filter(|update| matches!(update.state, UpdateState::Paused | UpdateState::RollbackPaused)) {
        return Verdict::Failed(Box::new(WaitFailure::Paused(update.clone())));
    }

    let newest_per_unit: BTreeMap<Unit, &ObservedTask> = tasks.iter().fold(BTreeMap::new(), |mut newest, polled| {
        let task = &polled.task;
        let entry = newest.entry(unit(task)).or_insert(task);
        if (&task.created, &task.id) > (&entry.created, &entry.id) {
            *entry = task;
        }
        newest
    });
    let newest = |task: &ObservedTask| newest_per_unit.get(&unit(task)).is_some_and(|newest| newest.id == task.id);
    let attempts_that_never_ran = |task: &ObservedTask| tasks.iter().filter(|p| never_ran(&p.task) && unit(&p.task) == unit(task)).count();
    let failed = tasks
        .iter()
        .filter(|polled| ended_badly(wait, job, &polled.task))
        .filter(|polled| !baseline.contains(&polled.task.id) || newest(&polled.task))
        .filter(|polled| {
            !never_ran(&polled.task)
                || attempts_that_never_ran(&polled.task) >= NEVER_RAN_TO_FAIL
                || (newest(&polled.task) && polled.in_state_for.is_some_and(|d| d >= NEVER_RAN_GRACE))
        })
        .map(|polled| &polled.task)
        .max_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
    if let Some(task) = failed {
        return Verdict::Failed(Box::new(WaitFailure::Task(task.clone())));
    }

    let stuck: Vec<&ObservedTask> = tasks
        .iter()
        .map(|polled| &polled.task)
        .filter(|task| task.state <= TaskState::Pending && task.error.is_some())
        .filter(|task| matches!(task.desired_state, TaskState::Running | TaskState::Ready | TaskState::Complete))
        .collect();
    memory.pending_since.retain(|id, _| stuck.iter().any(|task| &task.id == id));
    for task in stuck {
        let since = *memory.pending_since.entry(task.id.clone()).or_insert(now);
        if now.saturating_duration_since(since) >= PENDING_GRACE {
            return Verdict::Failed(Box::new(WaitFailure::Unschedulable(task.clone())));
        }
    }

    let (done, expected) = counts(wait, service, &tasks);
    if expected == 0 && wait.expect == Expect::EveryNode {
        let since = *memory.none_expected_since.get_or_insert(now);
        return if now.saturating_duration_since(since) >= NONE_EXPECTED_GRACE { Verdict::Done } else { Verdict::Pending };
    }
    memory.none_expected_since = None;
    if done >= expected {
        Verdict::Done
    } else {
        Verdict::Pending
    }
}

fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn node_name<'a>(hostnames: &'a BTreeMap<String, String>, node_id: &'a str) -> &'a str {
    if node_id.is_empty() {
        "no node"
    } else {
        hostnames.get(node_id).map_or(node_id, String::as_str)
    }
}

/// The service's name in the snapshot, or the wait's.
fn service_name<'a>(wait: &'a ServiceWait, snapshot: Option<&'a TaskSnapshot>) -> &'a str {
    snapshot
        .and_then(|snapshot| snapshot.services.iter().find(|polled| polled.service.id == wait.service.id()))
        .map_or(wait.name.as_str(), |polled| polled.service.name.as_str())
}

/// The failed task whose logs explain a failure, if the failure is a task's.
pub(crate) fn failed_task(failure: &WaitFailure) -> Option<&ObservedTask> {
    match failure {
        WaitFailure::Task(task) => Some(task),
        _ => None,
    }
}

/// The error a failed wait returns. `hostnames`: node ID → hostname; `logs`: the failed task's
/// last log lines (or one line saying why there are none).
pub(crate) fn failure_error(wait: &ServiceWait, failure: &WaitFailure, hostnames: &BTreeMap<String, String>, logs: Vec<String>) -> EngineError {
    let operation = wait_operation(wait.until);
    let resource = wait.name.clone();
    let (reason, detail) = match failure {
        WaitFailure::Task(task) => {
            let (name, node) = (task_name(&wait.name, task), node_name(hostnames, &task.node_id));
            let reason = if task.state == TaskState::Complete {
                format!("task {name} exited with code {} on {node} instead of running", task.exit_code.unwrap_or(0))
            } else {
                let verb = if task.state == TaskState::Rejected { "was rejected" } else { "failed" };
                let mut reason = format!("task {name} {verb} on {node}");
                let why = task.error.as_deref().unwrap_or(task.message.as_str());
                if !why.is_empty() {
                    reason.push_str(&format!(": {why}"));
                }
                if let Some(code) = task.exit_code.filter(|code| *code != 0) {
                    reason.push_str(&format!(" (exit code {code})"));
                }
                reason
            };
            (reason, logs)
        }
        WaitFailure::Unschedulable(task) => {
            let why = task.error.as_deref().unwrap_or("no suitable node");
            (format!("task {} cannot be scheduled: {why}", task_name(&wait.name, task)), Vec::new())
        }
        WaitFailure::ServiceGone => ("the service no longer exists".to_string(), Vec::new()),
        WaitFailure::Replaced { current, update } => {
            let runs = format!("the service runs spec {} instead of {}", short_hash(current), short_hash(&wait.spec_hash));
            match update {
                Some(update) if matches!(update.state, UpdateState::RollbackStarted | UpdateState::RollbackCompleted) => {
                    (format!("Swarm rolled the update back ({}): {runs}", update.message), Vec::new())
                }
                _ => (format!("{runs}: it was changed meanwhile"), Vec::new()),
            }
        }
        WaitFailure::Paused(update) => (format!("Swarm paused the rolling update: {}", update.message), Vec::new()),
    };
    EngineError::WaitFailed { operation, resource, reason, detail }
}

/// The error a wait returns at its deadline, with the last state of each expected task.
pub(crate) fn timeout_error(wait: &ServiceWait, snapshot: Option<&TaskSnapshot>, hostnames: &BTreeMap<String, String>) -> EngineError {
    EngineError::Timeout {
        operation: wait_operation(wait.until),
        resource: wait.name.clone(),
        after: wait.timeout,
        detail: progress_lines(wait, snapshot, hostnames),
    }
}

/// Where a wait stands: the count, then the newest task of the spec in each unit, then the
/// update status.
pub(crate) fn progress_lines(wait: &ServiceWait, snapshot: Option<&TaskSnapshot>, hostnames: &BTreeMap<String, String>) -> Vec<String> {
    let Some(snapshot) = snapshot else { return vec!["no poll of the tasks answered before the deadline".to_string()] };
    let Some(service) = snapshot.services.iter().find(|polled| polled.service.id == wait.service.id()) else {
        return vec!["the service no longer exists".to_string()];
    };
    let tasks = tasks_of_spec(wait, service, snapshot);
    let (done, expected) = counts(wait, service, &tasks);
    let state = match wait.until {
        Until::Started => "started",
        Until::Running if wait.stable.is_zero() => "running",
        Until::Running => "running long enough",
        Until::Completed => "completed",
    };
    let mut lines = vec![format!("{done} of {expected} tasks of spec {} {state}", short_hash(&wait.spec_hash))];
    let mut newest: BTreeMap<Unit, &PolledTask> = BTreeMap::new();
    for polled in &tasks {
        let entry = newest.entry(unit(&polled.task)).or_insert(polled);
        if (&polled.task.created, &polled.task.id) > (&entry.task.created, &entry.task.id) {
            *entry = polled;
        }
    }
    if newest.is_empty() {
        lines.push(format!("no task of spec {} yet", short_hash(&wait.spec_hash)));
    }
    let name = service_name(wait, Some(snapshot));
    for polled in newest.values() {
        let task = &polled.task;
        let mut line = format!("{} on {}: {}", task_name(name, task), node_name(hostnames, &task.node_id), task.state.as_str());
        if !task.message.is_empty() && task.message != task.state.as_str() {
            line.push_str(&format!(" ({})", task.message));
        }
        if let Some(error) = &task.error {
            line.push_str(&format!(": {error}"));
        }
        if let Some(for_how_long) = polled.in_state_for {
            line.push_str(&format!(", for {:.1}s", for_how_long.as_secs_f64()));
        }
        lines.push(line);
    }
    if let Some(update) = &service.service.update {
        lines.push(format!("rolling update: {:?}: {}", update.state, update.message));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::service::ServiceMode;
    use crate::plan::swarm::ObjectRef;

    fn service(mode: ServiceMode, desired: u64, hash: &str) -> PolledService {
        PolledService {
            service: ObservedService {
                id: "svc".into(),
                name: "demo_web".into(),
                version: 1,
                labels: BTreeMap::new(),
                mode,
                update: None,
                running_tasks: 0,
                desired_tasks: desired,
                completed_tasks: 0,
                created: String::new(),
                updated: String::new(),
            },
            task_hash: Some(hash.into()),
            job_iteration: mode.is_job().then_some(0),
        }
    }

    fn task(id: &str, slot: Option<u64>, node: &str, state: TaskState, desired: TaskState, hash: &str, created: &str) -> PolledTask {
        PolledTask {
            task: ObservedTask {
                id: id.into(),
                service_id: "svc".into(),
                slot,
                node_id: node.into(),
                state,
                desired_state: desired,
                message: state.as_str().into(),
                error: None,
                exit_code: None,
                pid: None,
                spec_hash: Some(hash.into()),
                created: created.into(),
            },
            in_state_for: Some(Duration::from_secs(10)),
            job_iteration: None,
        }
    }

    /// An ended attempt at slot 1 of spec `h2`, in its state for `for_secs`.
    fn attempt(id: &str, created: &str, for_secs: u64, state: TaskState, error: &str) -> PolledTask {
        let mut attempt = task(id, Some(1), "n3", state, Shutdown, "h2", created);
        attempt.task.error = Some(error.into());
        attempt.in_state_for = Some(Duration::from_secs(for_secs));
        attempt
    }

    fn wait(until: Until, expect: Expect) -> ServiceWait {
        ServiceWait {
            service: ObjectRef::Existing("svc".into()),
            name: "demo_web".into(),
            until,
            expect,
            spec_hash: "h2".into(),
            stable: Duration::ZERO,
            timeout: Duration::from_secs(60),
        }
    }

    fn snapshot(service: PolledService, tasks: Vec<PolledTask>) -> TaskSnapshot {
        TaskSnapshot { services: vec![service], tasks }
    }

    fn look(wait: &ServiceWait, snapshot: &TaskSnapshot) -> Verdict {
        judge(wait, snapshot, &mut WaitMemory::default(), Instant::now())
    }

    use TaskState::{Complete, Failed, Pending as PendingState, Running, Shutdown, Starting};

    #[test]
    fn only_tasks_of_the_waited_spec_count() {
        let wait = wait(Until::Running, Expect::Replicas(2));
        let old = task("t1", Some(1), "n1", Running, Running, "h1", "1");
        let new = task("t2", Some(2), "n2", Running, Running, "h2", "2");
        assert_eq!(look(&wait, &snapshot(service(ServiceMode::Replicated { replicas: 2 }, 2, "h2"), vec![old.clone(), new.clone()])), Verdict::Pending);
        let newer = task("t3", Some(1), "n1", Running, Running, "h2", "3");
        assert_eq!(look(&wait, &snapshot(service(ServiceMode::Replicated { replicas: 2 }, 2, "h2"), vec![old, new, newer])), Verdict::Done);
    }

    #[test]
    fn started_accepts_starting_and_running_but_not_assigned() {
        let wait = wait(Until::Started, Expect::Replicas(1));
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        assert_eq!(look(&wait, &snapshot(svc(), vec![task("t", Some(1), "n", Starting, Running, "h2", "1")])), Verdict::Done);
        assert_eq!(look(&wait, &snapshot(svc(), vec![task("t", Some(1), "n", TaskState::Assigned, Running, "h2", "1")])), Verdict::Pending);
    }

    #[test]
    fn running_means_running_for_the_stable_window() {
        let mut wait = wait(Until::Running, Expect::Replicas(1));
        wait.stable = Duration::from_secs(30);
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        let young = task("t", Some(1), "n", Running, Running, "h2", "1");
        assert_eq!(look(&wait, &snapshot(svc(), vec![young.clone()])), Verdict::Pending);
        let old = PolledTask { in_state_for: Some(Duration::from_secs(31)), ..young };
        assert_eq!(look(&wait, &snapshot(svc(), vec![old])), Verdict::Done);
        let starting = task("t", Some(1), "n", Starting, Running, "h2", "1");
        assert_eq!(look(&wait, &snapshot(svc(), vec![starting])), Verdict::Pending, "starting = not yet healthy");
    }

    /// Swarm stops a container that fails its health check; one that exits 0 on SIGTERM ends
    /// its start successfully, so its task is reported `running` (process 0) before `complete`.
    #[test]
    fn a_running_task_whose_container_has_exited_is_not_running() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        let mut exited = task("t", Some(1), "n", Running, Running, "h2", "1");
        exited.task.pid = Some(0);
        assert_eq!(look(&wait, &snapshot(svc(), vec![exited.clone()])), Verdict::Pending);
        exited.task.pid = Some(4242);
        assert_eq!(look(&wait, &snapshot(svc(), vec![exited])), Verdict::Done);
    }

    #[test]
    fn a_new_failure_fails_the_wait_but_old_replaced_history_does_not() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        let mut old_failure = task("t1", Some(1), "n", Failed, Shutdown, "h2", "1");
        old_failure.task.error = Some("task: non-zero exit (1)".into());
        let replacement = task("t2", Some(1), "n", Starting, Running, "h2", "2");
        let mut memory = WaitMemory::default();
        let first = snapshot(svc(), vec![old_failure.clone(), replacement.clone()]);
        assert_eq!(judge(&wait, &first, &mut memory, Instant::now()), Verdict::Pending);
        let mut new_failure = task("t2", Some(1), "n", Failed, Shutdown, "h2", "2");
        new_failure.task.exit_code = Some(143);
        let second = snapshot(svc(), vec![old_failure.clone(), new_failure.clone()]);
        assert_eq!(judge(&wait, &second, &mut memory, Instant::now()), Verdict::Failed(Box::new(WaitFailure::Task(new_failure.task))));
        // A failure that is the newest of its slot fails even if it was there at the first look.
        assert!(matches!(look(&wait, &snapshot(svc(), vec![old_failure])), Verdict::Failed(failure) if matches!(*failure, WaitFailure::Task(_))));
    }

    /// A node rejoining after a loss rejects tasks, and an engine under load can fail a
    /// container's start; Swarm retries both. A container that ran and failed is not waited out.
    #[test]
    fn attempts_that_never_ran_are_waited_out_but_repeated_or_unretried_ones_fail() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        let never_ran = [
            (TaskState::Rejected, "cannot create a swarm scoped network when swarm is not active"),
            (Failed, "starting container failed: unable to remount dir as readonly: device or resource busy"),
        ];
        for (state, error) in never_ran {
            let attempt = |id: &str, created: &str, for_secs: u64| attempt(id, created, for_secs, state, error);
            // The first try fails; Swarm retries it.
            assert_eq!(look(&wait, &snapshot(svc(), vec![attempt("t1", "1", 1)])), Verdict::Pending);
            let retried = task("t2", Some(1), "n3", Running, Running, "h2", "2");
            assert_eq!(look(&wait, &snapshot(svc(), vec![attempt("t1", "1", 6), retried])), Verdict::Done);
            // Failing every time (a missing image or executable): the third attempt fails the wait.
            let three = vec![attempt("t1", "1", 12), attempt("t2", "2", 6), attempt("t3", "3", 1)];
            assert!(matches!(look(&wait, &snapshot(svc(), three)), Verdict::Failed(f) if matches!(&*f, WaitFailure::Task(t) if t.id == "t3")));
            // Not retried at all (restart condition none): fails after the grace.
            assert!(matches!(look(&wait, &snapshot(svc(), vec![attempt("t1", "1", 10)])), Verdict::Failed(_)));
        }
        let crashed = attempt("t1", "1", 1, Failed, "task: non-zero exit (1)");
        assert!(matches!(look(&wait, &snapshot(svc(), vec![crashed])), Verdict::Failed(_)));
    }

    #[test]
    fn a_service_task_that_exits_fails_a_wait_for_running_but_not_for_started() {
        let svc = || service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        let mut exited = task("t", Some(1), "n3", Complete, Running, "h2", "1");
        exited.task.exit_code = Some(0);
        let verdict = look(&wait(Until::Running, Expect::Replicas(1)), &snapshot(svc(), vec![exited.clone()]));
        assert_eq!(verdict, Verdict::Failed(Box::new(WaitFailure::Task(exited.task.clone()))));
        let error = failure_error(&wait(Until::Running, Expect::Replicas(1)), &WaitFailure::Task(exited.task.clone()), &BTreeMap::new(), vec![]);
        assert_eq!(error.to_string(), "wait running demo_web: task demo_web.1 exited with code 0 on n3 instead of running");
        assert_eq!(look(&wait(Until::Started, Expect::Replicas(1)), &snapshot(svc(), vec![exited])), Verdict::Done);
    }

    #[test]
    fn pending_with_a_scheduler_error_fails_after_the_grace() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let mut stuck = task("t", Some(1), "", PendingState, Running, "h2", "1");
        stuck.task.error = Some("no suitable node (scheduling constraints not satisfied on 3 nodes)".into());
        let snap = snapshot(service(ServiceMode::Replicated { replicas: 1 }, 1, "h2"), vec![stuck.clone()]);
        let mut memory = WaitMemory::default();
        let start = Instant::now();
        assert_eq!(judge(&wait, &snap, &mut memory, start), Verdict::Pending);
        assert_eq!(judge(&wait, &snap, &mut memory, start + Duration::from_secs(1)), Verdict::Pending);
        assert_eq!(judge(&wait, &snap, &mut memory, start + PENDING_GRACE), Verdict::Failed(Box::new(WaitFailure::Unschedulable(stuck.task))));
    }

    #[test]
    fn jobs_complete_and_never_hang_once_complete() {
        let svc = || service(ServiceMode::ReplicatedJob { total: 2 }, 2, "h2");
        let mut done = vec![task("a", Some(0), "n1", Complete, Complete, "h2", "1"), task("b", Some(1), "n2", Complete, Complete, "h2", "1")];
        for polled in &mut done {
            polled.job_iteration = Some(0);
        }
        for until in [Until::Started, Until::Running, Until::Completed] {
            assert_eq!(look(&wait(until, Expect::Completions(2)), &snapshot(svc(), done.clone())), Verdict::Done, "{until:?}");
        }
        // Tasks of an earlier run of the same spec do not count.
        let mut rerun = svc();
        rerun.job_iteration = Some(1);
        assert_eq!(look(&wait(Until::Completed, Expect::Completions(2)), &snapshot(rerun, done)), Verdict::Pending);
    }

    #[test]
    fn every_node_follows_what_swarm_desires() {
        let wait = wait(Until::Running, Expect::EveryNode);
        let tasks = vec![task("a", None, "n1", Running, Running, "h2", "1"), task("b", None, "n2", Starting, Running, "h2", "1")];
        assert_eq!(look(&wait, &snapshot(service(ServiceMode::Global, 2, "h2"), tasks.clone())), Verdict::Pending);
        assert_eq!(look(&wait, &snapshot(service(ServiceMode::Global, 1, "h2"), tasks[..1].to_vec())), Verdict::Done);
        let nothing = snapshot(service(ServiceMode::Global, 0, "h2"), vec![]);
        let mut memory = WaitMemory::default();
        let start = Instant::now();
        assert_eq!(judge(&wait, &nothing, &mut memory, start), Verdict::Pending);
        assert_eq!(judge(&wait, &nothing, &mut memory, start + NONE_EXPECTED_GRACE), Verdict::Done);
    }

    #[test]
    fn a_replaced_spec_a_paused_update_and_a_gone_service_fail() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let rolled_back = PolledService {
            service: ObservedService {
                update: Some(UpdateStatus { state: UpdateState::RollbackStarted, message: "update rolled back due to failure".into() }),
                ..service(ServiceMode::Replicated { replicas: 1 }, 1, "h1").service
            },
            ..service(ServiceMode::Replicated { replicas: 1 }, 1, "h1")
        };
        let verdict = look(&wait, &snapshot(rolled_back, vec![]));
        let Verdict::Failed(failure) = verdict else { panic!("{verdict:?}") };
        let error = failure_error(&wait, &failure, &BTreeMap::new(), vec![]);
        assert!(error.to_string().contains("Swarm rolled the update back"), "{error}");
        let mut paused = service(ServiceMode::Replicated { replicas: 1 }, 1, "h2");
        paused.service.update = Some(UpdateStatus { state: UpdateState::Paused, message: "update paused due to failure".into() });
        assert!(matches!(look(&wait, &snapshot(paused, vec![])), Verdict::Failed(failure) if matches!(*failure, WaitFailure::Paused(_))));
        assert_eq!(look(&wait, &TaskSnapshot::default()), Verdict::Failed(Box::new(WaitFailure::ServiceGone)));
    }

    #[test]
    fn a_failure_names_task_node_error_exit_code_and_logs() {
        let wait = wait(Until::Running, Expect::Replicas(1));
        let mut failed = task("t", Some(2), "n3", Failed, Shutdown, "h2", "1").task;
        failed.error = Some("task: non-zero exit (143): dockerexec: unhealthy container".into());
        failed.exit_code = Some(143);
        let hostnames = BTreeMap::from([("n3".to_string(), "node-3".to_string())]);
        let error = failure_error(&wait, &WaitFailure::Task(failed), &hostnames, vec!["log: boom".into()]);
        assert_eq!(
            error.to_string(),
            "wait running demo_web: task demo_web.2 failed on node-3: task: non-zero exit (143): dockerexec: unhealthy container (exit code 143)\n    log: boom"
        );
    }

    #[test]
    fn a_timeout_shows_each_units_newest_task() {
        let wait = wait(Until::Running, Expect::Replicas(2));
        let snap = snapshot(
            service(ServiceMode::Replicated { replicas: 2 }, 2, "h2"),
            vec![task("a", Some(1), "n1", Running, Running, "h2", "1"), task("b", Some(2), "n2", Starting, Running, "h2", "1")],
        );
        let lines = progress_lines(&wait, Some(&snap), &BTreeMap::from([("n2".to_string(), "node-2".to_string())]));
        assert_eq!(lines[0], "1 of 2 tasks of spec h2 running");
        assert_eq!(lines[2], "demo_web.2 on node-2: starting, for 10.0s");
    }

    #[test]
    fn observe_keeps_current_tasks_and_the_newest_failure_per_slot() {
        let tasks = vec![
            task("old-fail", Some(1), "n", Failed, Shutdown, "h", "1").task,
            task("new-fail", Some(1), "n", Failed, Shutdown, "h", "2").task,
            task("running", Some(1), "n", Running, Running, "h", "3").task,
            task("shut", Some(2), "n", Shutdown, Shutdown, "h", "1").task,
            task("job", Some(0), "n", Complete, Complete, "h", "1").task,
        ];
        let mut kept: Vec<String> = current_tasks(tasks).into_iter().map(|task| task.id).collect();
        kept.sort();
        assert_eq!(kept, ["job", "new-fail", "running"]);
    }
}
