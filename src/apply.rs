//! The executor: runs a [`Plan`]'s steps against an engine, as fast as the DAG allows, and
//! decides nothing. It is generic over the step type, so both targets share it.
//!
//! It resolves IDs created by earlier steps, bounds concurrent API calls (waits do not take a
//! slot: they only listen), skips the dependents of a failed step while independent work
//! finishes, and on cancellation starts nothing new and ends the waits in flight at once while
//! the engine calls in flight finish. It always returns a report, also after a failure or a
//! panic inside a step.

use crate::engine::EngineError;
use crate::plan::{Op, Plan, Step, StepId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Concurrent mutating API calls.
    pub concurrency: usize,
    /// Cancelled on Ctrl-C: nothing new starts, waits end, in-flight calls finish.
    pub cancel: CancellationToken,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { concurrency: 8, cancel: CancellationToken::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StepOutcome {
    Done { seconds: f64 },
    Failed {
        /// What went wrong (the step itself is named beside it).
        error: String,
        /// Evidence: health check results, last log lines.
        detail: Vec<String>,
        /// The engine moved under the plan (409 already exists, 404 gone): planning again fixes it.
        race: bool,
        /// The engine stopped answering: what became of the step is unknown.
        engine_lost: bool,
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

    /// A step failed because the engine stopped answering.
    pub fn engine_lost(&self) -> bool {
        self.outcomes.iter().any(|o| matches!(o, StepOutcome::Failed { engine_lost: true, .. }))
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
    let mut running: JoinSet<(Result<Option<String>, EngineError>, f64)> = JoinSet::new();
    let mut in_flight: BTreeMap<tokio::task::Id, (StepId, AbortHandle)> = BTreeMap::new();
    let mut mutations_in_flight = 0;

    loop {
        let cancelled = options.cancel.is_cancelled();
        if cancelled {
            // Waits only listen: end them now. Engine calls in flight finish.
            for (id, handle) in in_flight.values() {
                if !steps[*id].op.is_mutation() {
                    handle.abort();
                }
            }
        } else {
            // Start what may start: waits always, mutations up to the bound.
            let mut deferred = VecDeque::new();
            while let Some(id) = ready.pop_front() {
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
                let handle = running.spawn(async move {
                    let began = Instant::now();
                    let result = engine.execute(&op).await;
                    (result, began.elapsed().as_secs_f64())
                });
                in_flight.insert(handle.id(), (id, handle));
            }
            ready = deferred;
        }
        let joined = tokio::select! {
            joined = running.join_next_with_id() => joined,
            () = options.cancel.cancelled(), if !cancelled => continue,
        };
        let Some(joined) = joined else { break };
        let (task, result) = match joined {
            Ok((task, (result, seconds))) => (task, Ok((result, seconds))),
            Err(error) => (error.id(), Err(error)),
        };
        let Some((id, _)) = in_flight.remove(&task) else { continue };
        let step = &steps[id];
        if step.op.is_mutation() {
            mutations_in_flight -= 1;
        }
        let outcome = match result {
            Ok((Ok(output), seconds)) => {
                if let Some(output) = output {
                    created.insert(id, output);
                }
                for &next in &dependents[id] {
                    waiting_on[next] -= 1;
                    if waiting_on[next] == 0 {
                        ready.push_back(next);
                    }
                }
                StepOutcome::Done { seconds }
            }
            Ok((Err(error), _)) => {
                StepOutcome::Failed {
                    error: error.reason(),
                    detail: error.detail().to_vec(),
                    race: error.is_conflict() || error.is_not_found(),
                    engine_lost: error.is_engine_lost(),
                }
            }
            // An aborted wait: the deploy was interrupted.
            Err(join) if join.is_cancelled() => continue,
            Err(join) => {
                let message = join.into_panic();
                let message = message.downcast_ref::<String>().cloned().or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()));
                let error = format!("swarmctl failed inside this step: {}", message.unwrap_or_default());
                StepOutcome::Failed { error, detail: Vec::new(), race: false, engine_lost: false }
            }
        };
        progress.finished(step, &outcome);
        let failed = matches!(outcome, StepOutcome::Failed { .. });
        outcomes[id] = Some(outcome);
        if failed {
            skip_dependents(id, &dependents, &mut outcomes, steps, progress);
        }
    }
    let interrupted = options.cancel.is_cancelled();
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
