//! The executor: runs a [`Plan`]'s steps against an engine, as fast as the DAG allows, and
//! decides nothing. It is generic over the step type, so both targets share it. It resolves IDs created by earlier steps, bounds concurrent API calls (waits
//! do not take a slot: they only listen), skips the dependents of a failed step while
//! independent work finishes, and stops scheduling when cancelled. It always returns a report,
//! also after a failure.

use crate::engine::EngineError;
use crate::plan::{Op, Plan, Step, StepId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Concurrent mutating API calls.
    pub concurrency: usize,
    /// Set to stop scheduling (Ctrl-C); in-flight calls finish.
    pub cancel: Arc<AtomicBool>,
    /// Fault injection for tests: the process kills itself after this many mutations.
    pub kill_after_mutations: Option<usize>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { concurrency: 8, cancel: Arc::new(AtomicBool::new(false)), kill_after_mutations: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Done { seconds: f64 },
    Failed {
        error: String,
        detail: Vec<String>,
        /// The engine moved under the plan (409 already exists, 404 gone): planning again fixes it.
        race: bool,
    },
    /// Not run because a step it needed failed.
    Skipped { because: StepId },
    /// Not run because the deploy was interrupted.
    NotRun,
}

/// Runs one step: exactly one engine call (or one wait). Each target's engine implements it for
/// its own step type.
#[async_trait::async_trait]
pub trait Execute<O>: Send + Sync {
    /// Returns the ID the call produced (a created object's), if any.
    async fn execute(&self, op: &O) -> Result<Option<String>, EngineError>;
}

/// Hears about steps as they run (the progress display).
pub trait Progress<O>: Send + Sync {
    fn started(&self, step: &Step<O>);
    fn finished(&self, step: &Step<O>, outcome: &StepOutcome);
}

/// Progress that goes nowhere.
pub struct Silent;

impl<O> Progress<O> for Silent {
    fn started(&self, _: &Step<O>) {}
    fn finished(&self, _: &Step<O>, _: &StepOutcome) {}
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// One outcome per step, by step ID.
    pub outcomes: Vec<StepOutcome>,
    pub interrupted: bool,
    pub seconds: f64,
}

impl ApplyReport {
    pub fn converged(&self) -> bool {
        !self.interrupted && self.outcomes.iter().all(|o| matches!(o, StepOutcome::Done { .. }))
    }

    /// Every failure was a race with the engine: observing and planning again can converge.
    pub fn only_races(&self) -> bool {
        self.outcomes.iter().all(|o| !matches!(o, StepOutcome::Failed { race: false, .. }))
    }

    pub fn count(&self, predicate: impl Fn(&StepOutcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| predicate(o)).count()
    }
}

/// Runs every step of `plan` whose prerequisites succeed.
pub async fn apply<O, E>(plan: &Plan<O>, engine: Arc<E>, progress: &dyn Progress<O>, options: &ApplyOptions) -> ApplyReport
where
    O: Op,
    E: Execute<O> + ?Sized + 'static,
{
    let started_at = Instant::now();
    let steps = &plan.steps;
    let mut waiting_on: Vec<usize> = steps.iter().map(|s| s.after.len()).collect();
    let mut dependents: Vec<Vec<StepId>> = vec![Vec::new(); steps.len()];
    for step in steps {
        for &before in &step.after {
            dependents[before].push(step.id);
        }
    }
    let mut outcomes: Vec<Option<StepOutcome>> = vec![None; steps.len()];
    let mut created: BTreeMap<StepId, String> = BTreeMap::new();
    let mut ready: VecDeque<StepId> = steps.iter().filter(|s| s.after.is_empty()).map(|s| s.id).collect();
    let mut running: JoinSet<(StepId, Result<Option<String>, EngineError>, f64)> = JoinSet::new();
    let mut mutations_in_flight = 0;
    let mut mutations_done = 0;

    loop {
        let cancelled = options.cancel.load(Ordering::SeqCst);
        // Start what may start: waits always, mutations up to the bound.
        let mut deferred = VecDeque::new();
        while let Some(id) = ready.pop_front() {
            if cancelled {
                deferred.push_back(id);
                continue;
            }
            let step = &steps[id];
            let mutation = step.op.is_mutation();
            if mutation && mutations_in_flight >= options.concurrency.max(1) {
                deferred.push_back(id);
                continue;
            }
            let op = step.op.resolve(&created);
            mutations_in_flight += usize::from(mutation);
            progress.started(step);
            let engine = engine.clone();
            running.spawn(async move {
                let began = Instant::now();
                let result = engine.execute(&op).await;
                (id, result, began.elapsed().as_secs_f64())
            });
        }
        ready = deferred;
        let Some(joined) = running.join_next().await else { break };
        let Ok((id, result, seconds)) = joined else { continue };
        let step = &steps[id];
        if step.op.is_mutation() {
            mutations_in_flight -= 1;
        }
        let outcome = match result {
            Ok(output) => {
                if let Some(output) = output {
                    created.insert(id, output);
                }
                for &next in &dependents[id] {
                    waiting_on[next] -= 1;
                    if waiting_on[next] == 0 {
                        ready.push_back(next);
                    }
                }
                if step.op.is_mutation() {
                    mutations_done += 1;
                    if options.kill_after_mutations == Some(mutations_done) {
                        kill_self();
                    }
                }
                StepOutcome::Done { seconds }
            }
            Err(error) => {
                let detail = match &error {
                    EngineError::WaitFailed { detail, .. } => detail.clone(),
                    _ => Vec::new(),
                };
                skip_dependents(id, &dependents, &mut outcomes, steps, progress);
                StepOutcome::Failed { error: error.to_string(), detail, race: error.is_conflict() || error.is_not_found() }
            }
        };
        progress.finished(step, &outcome);
        outcomes[id] = Some(outcome);
    }
    let interrupted = options.cancel.load(Ordering::SeqCst);
    ApplyReport {
        outcomes: outcomes.into_iter().map(|o| o.unwrap_or(StepOutcome::NotRun)).collect(),
        interrupted,
        seconds: started_at.elapsed().as_secs_f64(),
    }
}

fn skip_dependents<O>(failed: StepId, dependents: &[Vec<StepId>], outcomes: &mut [Option<StepOutcome>], steps: &[Step<O>], progress: &dyn Progress<O>) {
    let mut queue: VecDeque<StepId> = dependents[failed].iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if outcomes[id].is_none() {
            let outcome = StepOutcome::Skipped { because: failed };
            progress.finished(&steps[id], &outcome);
            outcomes[id] = Some(outcome);
            queue.extend(dependents[id].iter().copied());
        }
    }
}

/// The fault-injection hook: die as a crash would, mid-deploy.
fn kill_self() -> ! {
    // SAFETY: sending a signal to our own process has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_secs(1));
    std::process::abort()
}
