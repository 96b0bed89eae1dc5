//! What both fake engines do on every call: record it, count it while it is in flight, and
//! delay or fail it when the test scripted so. An engine holds a [`Calls`] and starts each
//! method with [`Calls::begin`]; tests script it through the [`Scripted`] trait.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::error::EngineError;

/// Matches any resource in [`Scripted::fail_on`] and [`Scripted::delay`].
pub const ANY: &str = "*";

/// The call log and the script of one fake engine. Cheap to clone; clones share both.
#[derive(Clone, Default)]
pub struct Calls {
    script: Arc<Mutex<Script>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Script {
    log: Vec<String>,
    failures: Vec<ScriptedFailure>,
    delays: Vec<(String, String, Duration)>,
}

struct ScriptedFailure {
    operation: String,
    resource: String,
    error: Option<EngineError>,
    remaining: Option<usize>,
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == ANY || pattern == value
}

/// Decrements the in-flight count when a call ends, however it ends.
pub struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts `operation` on `resource` for `engine` (its name in an injected error): counts
    /// it in flight, records it, applies any delay, then any failure.
    pub async fn begin(&self, engine: &'static str, operation: &str, resource: &str) -> Result<InFlight<'_>, EngineError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let guard = InFlight(&self.in_flight);
        let delay = {
            let mut script = self.lock();
            script.log.push(format!("{operation} {resource}"));
            script.delays.iter().filter(|(delayed, target, _)| delayed == operation && matches(target, resource)).map(|(_, _, duration)| *duration).max()
        };
        if let Some(duration) = delay {
            tokio::time::sleep(duration).await;
        }
        let mut script = self.lock();
        let scripted = script
            .failures
            .iter_mut()
            .find(|failure| failure.operation == operation && matches(&failure.resource, resource) && failure.remaining != Some(0));
        if let Some(failure) = scripted {
            if let Some(remaining) = failure.remaining.as_mut() {
                *remaining -= 1;
            }
            return Err(failure.error.clone().unwrap_or_else(|| EngineError::Api {
                operation: engine,
                resource: format!("{operation} {resource}"),
                status: Some(500),
                message: "injected failure".to_string(),
            }));
        }
        Ok(guard)
    }

    fn script_failure(&self, operation: &str, resource: &str, error: Option<EngineError>, remaining: Option<usize>) {
        self.lock().failures.push(ScriptedFailure { operation: operation.to_string(), resource: resource.to_string(), error, remaining });
    }
}

/// How a test scripts a fake engine and reads what it was asked.
pub trait Scripted {
    fn calls_of(&self) -> &Calls;

    /// Every later `operation` (method name, e.g. `"start_container"`) on `resource` (a name,
    /// or [`ANY`]) fails with an injected 500 error.
    fn fail_on(&self, operation: &str, resource: &str) {
        self.calls_of().script_failure(operation, resource, None, None);
    }

    /// The next `operation` on `resource` fails once, later ones succeed.
    fn fail_once(&self, operation: &str, resource: &str) {
        self.calls_of().script_failure(operation, resource, None, Some(1));
    }

    /// Every later `operation` on `resource` fails with `error`.
    fn fail_with(&self, operation: &str, resource: &str, error: EngineError) {
        self.calls_of().script_failure(operation, resource, Some(error), None);
    }

    /// `operation` on `resource` (or [`ANY`]) takes `duration` (tokio time, so paused clocks work).
    fn delay(&self, operation: &str, resource: &str, duration: Duration) {
        self.calls_of().lock().delays.push((operation.to_string(), resource.to_string(), duration));
    }

    /// Every call so far, in order, as `"<method> <resource>"`.
    fn calls(&self) -> Vec<String> {
        self.calls_of().lock().log.clone()
    }

    /// Forgets the recorded calls (the world stays).
    fn clear_calls(&self) {
        self.calls_of().lock().log.clear();
    }

    /// The highest number of calls that were in progress at the same time.
    fn max_in_flight(&self) -> usize {
        self.calls_of().max_in_flight.load(Ordering::SeqCst)
    }
}
