//! The deploy procedure, the same for every target: lock → observe → plan → apply → plan again
//! after a race → record → release. The CLI only says what to deploy and prints what it hears.

use crate::apply::{self, ApplyOptions, ApplyReport, Progress, StepOutcome};
use crate::engine::EngineError;
use crate::plan::{Plan, PlanError, PlanOptions};
use crate::spec::{render, Loaded};
use crate::store::{Held, NewRevision, StoreError};
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
}

/// Deploys `loaded` to `target`.
pub async fn deploy<T: Target>(target: &T, loaded: &Loaded, options: &DeployOptions, reporter: &dyn Reporter<T::Op>) -> Result<Deployed<T::Op>, DeployError> {
    let lock = lock(target, &loaded.stack.name, options, reporter).await?;
    let deployed = under_lock(target, loaded, options, reporter).await;
    lock.release().await;
    deployed
}

async fn under_lock<T: Target>(target: &T, loaded: &Loaded, options: &DeployOptions, reporter: &dyn Reporter<T::Op>) -> Result<Deployed<T::Op>, DeployError> {
    let stack = &loaded.stack;
    let observed = target.observe(&stack.name, Some(stack)).await?;
    let mut plan = target.plan(stack, &loaded.graph, &observed, &options.plan)?;
    reporter.planned(&plan);
    if plan.is_empty() {
        return Ok(Deployed { plan, report: ApplyReport::default(), revision: None, unrecorded: None });
    }
    let mut report = apply::apply(&plan, target.engine(), reporter, &options.apply).await;
    // Level-triggered: the engine may have moved while we worked (a killed deploy's last call
    // landing late, an object gone). Look again and converge, a bounded number of times.
    for _ in 0..2 {
        if report.interrupted || !report.only_races() {
            break;
        }
        let Ok(observed) = target.observe(&stack.name, Some(stack)).await else { break };
        let Ok(again) = target.plan(stack, &loaded.graph, &observed, &options.plan) else { break };
        if again.is_empty() {
            break;
        }
        reporter.replanned(&again);
        report = apply::apply(&again, target.engine(), reporter, &options.apply).await;
        plan = again;
    }
    let revision = NewRevision {
        result: verdict(&report).into(),
        steps: plan.steps.len(),
        failed_steps: report.count(|o| matches!(o, StepOutcome::Failed { .. })),
        seconds: report.seconds,
        document: render::document(loaded),
        desired: crate::status::desired(stack),
        placement: plan.placement.as_ref().map(|p| p.counts()),
    };
    let (revision, unrecorded) = match target.store().record(&stack.name, revision).await {
        Ok(number) => (Some(number), None),
        Err(error) => (None, Some(error)),
    };
    Ok(Deployed { plan, report, revision, unrecorded })
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
        Ok(Deployed { plan, report, revision: None, unrecorded })
    }
    .await;
    lock.release().await;
    result
}
