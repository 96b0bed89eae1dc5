//! The deploy procedure, the same for every target: lock → observe → plan → apply → plan again
//! after a race → record → release. The CLI only says what to deploy and prints what it hears.

use crate::apply::{self, ApplyOptions, ApplyReport, Progress, StepOutcome};
use crate::engine::EngineError;
use crate::graph::DependencyGraph;
use crate::model::stack::Stack;
use crate::plan::{Cause, Op, Plan, PlanError, PlanOptions};
use crate::spec::Loaded;
use crate::store::snapshot::{self, StackSnapshot};
use crate::store::{Held, NewRevision, StoreError};
use std::collections::BTreeSet;
use crate::target::Target;
use std::time::Duration;

/// How to deploy, beside what.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    pub plan: PlanOptions,
    pub apply: ApplyOptions,
    /// How long to wait for another deploy or down of the stack.
    pub lock_timeout: Duration,
}

/// Hears what a deploy does, for the CLI to show.
pub trait Reporter<O>: Progress<O> {
    /// Another deploy holds the lock; we wait.
    fn waiting_for_lock(&self, holder: &str);
    /// The plan about to be applied (also an empty one).
    fn planned(&self, plan: &Plan<O>);
    /// The engine moved under the plan; this one converges it.
    fn replanned(&self, plan: &Plan<O>);
    /// `services`' rollouts failed; they go back to revision `to` (`None`: there is none).
    fn rolling_back(&self, services: &[String], to: Option<u32>);
}

/// Hears nothing (tests, library callers that only want the result).
impl<O: Op> Reporter<O> for apply::Silent {
    fn waiting_for_lock(&self, _: &str) {}
    fn planned(&self, _: &Plan<O>) {}
    fn replanned(&self, _: &Plan<O>) {}
    fn rolling_back(&self, _: &[String], _: Option<u32>) {}
}

/// What a deploy did.
#[derive(Debug)]
pub struct Deployed<O> {
    /// The last plan applied (the first, unless the engine moved under it).
    pub plan: Plan<O>,
    pub report: ApplyReport,
    /// The revision recorded; `None` when there was nothing to do.
    pub revision: Option<u32>,
    /// Why the revision could not be recorded (a full disk, a lost cluster).
    pub unrecorded: Option<StoreError>,
    /// Services whose rollout failed went back to an earlier revision (`auto_rollback`).
    pub rolled_back: Option<RolledBack<O>>,
}

/// An automatic rollback: of which services, to which revision, and how it went.
#[derive(Debug)]
pub struct RolledBack<O> {
    pub services: Vec<String>,
    /// `None`: no earlier revision converged; nothing was rolled back.
    pub to: Option<u32>,
    /// The stack now deployed: the new one with the services as they were.
    pub stack: Option<Stack>,
    pub plan: Option<Plan<O>>,
    pub report: Option<ApplyReport>,
    /// Why the rollback could not be planned.
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// Interrupted before anything changed.
    #[error("interrupted before anything changed")]
    Interrupted,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("stack `{stack}` has no revision {}{}", wanted.map_or("before its last one".to_string(), |n| n.to_string()), if have.is_empty() { String::new() } else { format!(" (it has {})", have.join(", ")) })]
    NoRevision { stack: String, wanted: Option<u32>, have: Vec<String> },
    #[error("revision {revision} of `{stack}` was recorded by an older swarmctl, without its stack: it cannot be deployed again")]
    NotRestorable { stack: String, revision: u32 },
}

/// Deploys `loaded` to `target`. A service whose rollout fails and has `auto_rollback` goes
/// back to its definition in the last converged revision (the rest of the deploy stays); the
/// deploy still fails, saying so.
pub async fn deploy<T: Target>(target: &T, loaded: &Loaded, options: &DeployOptions, reporter: &dyn Reporter<T::Op>) -> Result<Deployed<T::Op>, DeployError> {
    let lock = lock(target, &loaded.stack.name, options, reporter).await?;
    let deployed = under_lock(target, &loaded.stack, &loaded.graph, None, options, reporter).await;
    lock.release().await;
    deployed
}

/// Deploys the stack of revision `to` (default: the one before the last) again, with the same
/// rolling rules, recorded as a new revision. Secrets come from `supply` (history keeps none):
/// one it cannot supply is required only where it must be created.
pub async fn rollback<T: Target>(
    target: &T,
    name: &str,
    to: Option<u32>,
    supply: &(dyn Fn(&str, &crate::model::stack::FileObject) -> Option<Vec<u8>> + Sync),
    options: &DeployOptions,
    reporter: &dyn Reporter<T::Op>,
) -> Result<Deployed<T::Op>, DeployError> {
    let lock = lock(target, name, options, reporter).await?;
    let deployed = async {
        let revisions = target.store().revisions(name).await?;
        let wanted = match to {
            Some(number) => revisions.iter().find(|r| r.number == number),
            None => revisions.iter().rev().nth(1),
        };
        let Some(revision) = wanted else {
            let numbers: Vec<String> = revisions.iter().map(|r| r.number.to_string()).collect();
            return Err(DeployError::NoRevision { stack: name.to_string(), wanted: to, have: numbers });
        };
        let Some(snapshot) = &revision.content.stack else {
            return Err(DeployError::NotRestorable { stack: name.to_string(), revision: revision.number });
        };
        let stack = snapshot.restore(supply);
        let graph = DependencyGraph::build(&stack).map_err(|d| PlanError { problems: vec![d] })?;
        under_lock(target, &stack, &graph, Some(format!("rollback to {}", revision.number)), options, reporter).await
    }
    .await;
    lock.release().await;
    deployed
}

async fn under_lock<T: Target>(
    target: &T,
    stack: &Stack,
    graph: &DependencyGraph,
    rollback_to: Option<String>,
    options: &DeployOptions,
    reporter: &dyn Reporter<T::Op>,
) -> Result<Deployed<T::Op>, DeployError> {
    let (plan, report) = converge(target, stack, graph, options, reporter).await?;
    if plan.is_empty() {
        return Ok(Deployed { plan, report, revision: None, unrecorded: None, rolled_back: None });
    }
    // A rollback never rolls back itself.
    let failed: Vec<String> = match rollback_to.is_none() && !report.interrupted {
        true => stopped_rollouts(&plan, &report).into_iter().filter(|s| stack.services.get(s).is_some_and(|s| s.rollout.auto_rollback)).collect(),
        false => Vec::new(),
    };
    let mut rolled_back = None;
    let mut recorded = (stack.clone(), rollback_to);
    if !failed.is_empty() {
        let outcome = auto_rollback(target, stack, &failed, options, reporter).await;
        if let RolledBack { to: Some(to), stack: Some(reverted), .. } = &outcome {
            recorded = (reverted.clone(), Some(format!("{} rolled back to {to}", failed.join(", "))));
        }
        rolled_back = Some(outcome);
    }
    let (stack, note) = recorded;
    let revision = NewRevision {
        result: verdict(&report).into(),
        steps: plan.steps.len(),
        failed_steps: report.count(|o| matches!(o, StepOutcome::Failed { .. })),
        seconds: report.seconds,
        stack: Some(StackSnapshot::of(&stack)),
        note,
        desired: crate::status::desired(&stack),
        placement: plan.placement.as_ref().map(|p| p.counts()),
    };
    let (revision, unrecorded) = match target.store().record(&stack.name, revision).await {
        Ok(number) => (Some(number), None),
        Err(error) => (None, Some(error)),
    };
    Ok(Deployed { plan, report, revision, unrecorded, rolled_back })
}

/// Observe, plan, apply; then, level-triggered, again after a race (the engine moved while we
/// worked: a killed deploy's last call landing late, an object gone), a bounded number of times.
async fn converge<T: Target>(
    target: &T,
    stack: &Stack,
    graph: &DependencyGraph,
    options: &DeployOptions,
    reporter: &dyn Reporter<T::Op>,
) -> Result<(Plan<T::Op>, ApplyReport), DeployError> {
    let observed = target.observe(&stack.name, Some(stack)).await?;
    let mut plan = target.plan(stack, graph, &observed, &options.plan)?;
    reporter.planned(&plan);
    if plan.is_empty() {
        return Ok((plan, ApplyReport::default()));
    }
    let mut report = apply::apply(&plan, target.engine(), reporter, &options.apply).await;
    for _ in 0..2 {
        if report.interrupted || !report.only_races() {
            break;
        }
        let Ok(observed) = target.observe(&stack.name, Some(stack)).await else { break };
        let Ok(again) = target.plan(stack, graph, &observed, &options.plan) else { break };
        if again.is_empty() {
            break;
        }
        reporter.replanned(&again);
        report = apply::apply(&again, target.engine(), reporter, &options.apply).await;
        plan = again;
    }
    Ok((plan, report))
}

/// Services whose rollout failed: they were changed, and a step of theirs failed. Their
/// rollout stopped where it was.
pub fn stopped_rollouts<O: Op>(plan: &Plan<O>, report: &ApplyReport) -> Vec<String> {
    let failed: BTreeSet<&str> = plan
        .steps
        .iter()
        .zip(&report.outcomes)
        .filter(|(_, outcome)| matches!(outcome, StepOutcome::Failed { .. }))
        .filter_map(|(step, _)| step.service.as_deref())
        .collect();
    let changed = |service: &str| plan.steps.iter().any(|s| s.service.as_deref() == Some(service) && matches!(s.cause, Cause::Changed(_)));
    failed.into_iter().filter(|s| changed(s)).map(str::to_string).collect()
}

/// Puts `services` back as the last converged revision had them, the rest of `stack` as it is.
async fn auto_rollback<T: Target>(target: &T, stack: &Stack, services: &[String], options: &DeployOptions, reporter: &dyn Reporter<T::Op>) -> RolledBack<T::Op> {
    let services = services.to_vec();
    let revisions = target.store().revisions(&stack.name).await.unwrap_or_default();
    let previous = revisions.iter().rev().find(|r| r.content.result == "converged" && r.content.stack.is_some());
    let Some((number, snapshot)) = previous.and_then(|r| Some((r.number, r.content.stack.as_ref()?))) else {
        reporter.rolling_back(&services, None);
        return RolledBack { services, to: None, stack: None, plan: None, report: None, error: None };
    };
    reporter.rolling_back(&services, Some(number));
    let reverted = revert(stack, &snapshot.restore(&snapshot::from_stack(stack)), &services);
    let result = match DependencyGraph::build(&reverted) {
        Ok(graph) => converge(target, &reverted, &graph, options, reporter).await,
        Err(diagnostic) => Err(DeployError::Plan(PlanError { problems: vec![diagnostic] })),
    };
    match result {
        Ok((plan, report)) => RolledBack { services, to: Some(number), stack: Some(reverted), plan: Some(plan), report: Some(report), error: None },
        Err(error) => RolledBack { services, to: Some(number), stack: None, plan: None, report: None, error: Some(error.to_string()) },
    }
}

/// `stack` with each of `services` as `previous` defines it, with the configs, secrets,
/// networks and volumes that definition names (a service `previous` lacks stays as it is).
fn revert(stack: &Stack, previous: &Stack, services: &[String]) -> Stack {
    let mut reverted = stack.clone();
    for name in services {
        let Some(service) = previous.services.get(name) else { continue };
        for config in &service.configs {
            if let Some(object) = previous.configs.get(&config.source) {
                reverted.configs.insert(config.source.clone(), object.clone());
            }
        }
        for secret in &service.secrets {
            if let Some(object) = previous.secrets.get(&secret.source) {
                reverted.secrets.insert(secret.source.clone(), object.clone());
            }
        }
        for (network, _) in crate::plan::naming::service_networks(service) {
            if let Some(declared) = previous.networks.get(&network) {
                reverted.networks.entry(network).or_insert_with(|| declared.clone());
            }
        }
        for mount in &service.volumes {
            if let Some(declared) = previous.volumes.get(&mount.source) {
                reverted.volumes.entry(mount.source.clone()).or_insert_with(|| declared.clone());
            }
        }
        reverted.services.insert(name.clone(), service.clone());
    }
    reverted
}

/// The stack's lock, unless the deploy is interrupted while it waits for it.
async fn lock<T: Target>(target: &T, name: &str, options: &DeployOptions, reporter: &dyn Reporter<T::Op>) -> Result<Box<dyn Held>, DeployError> {
    let on_wait = |holder: &str| reporter.waiting_for_lock(holder);
    tokio::select! {
        held = target.store().lock(name, options.lock_timeout, &on_wait) => Ok(held?),
        () = options.apply.cancel.cancelled() => Err(DeployError::Interrupted),
    }
}

/// `converged`, `interrupted` or `failed`.
pub fn verdict(report: &ApplyReport) -> &'static str {
    if report.interrupted {
        "interrupted"
    } else if report.converged() {
        "converged"
    } else {
        "failed"
    }
}

/// Removes what the target holds of the stack `name`, under the same lock as deploy; its
/// revisions too, once everything else is gone, unless `keep_history`.
pub async fn down<T: Target>(
    target: &T,
    name: &str,
    volumes: bool,
    keep_history: bool,
    options: &DeployOptions,
    reporter: &dyn Reporter<T::Op>,
) -> Result<Deployed<T::Op>, DeployError> {
    let lock = lock(target, name, options, reporter).await?;
    let result = async {
        let observed = target.observe(name, None).await?;
        let plan = target.plan_down(name, &observed, volumes);
        reporter.planned(&plan);
        let report = if plan.is_empty() { ApplyReport::default() } else { apply::apply(&plan, target.engine(), reporter, &options.apply).await };
        let unrecorded = match keep_history || !report.converged() {
            true => None,
            false => target.store().forget(name).await.err(),
        };
        Ok(Deployed { plan, report, revision: None, unrecorded, rolled_back: None })
    }
    .await;
    lock.release().await;
    result
}
