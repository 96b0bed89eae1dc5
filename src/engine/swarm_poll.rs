//! One task poll per scope, shared by every swarm wait of an engine.
//!
//! Swarm has no task events (the event stream carries services, nodes, networks, configs and
//! secrets only), so waits must poll. A poll per wait would make a deploy of a hundred
//! services ask the manager for every task of the stack a hundred times per tick; instead,
//! while anyone waits on a scope (a stack), one pump lists its tasks and services once per
//! [`TICK`] and hands the same snapshot to every waiter through a `watch` channel. The pump
//! stops when its last waiter goes, and starts again with the next.
//!
//! The pump does not know how to poll: the engine passes the poll in, so the sharing is
//! tested here without a daemon. It also keeps which stack a service belongs to, learned
//! when the engine observed or created it, so a wait knows its scope without asking.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::EngineError;
use super::swarm_tasks::TaskSnapshot;

/// Time between two polls while someone waits, at two requests per tick for any number of
/// waiters. The manager commits its agents' task states every 100 ms (swarmkit's dispatcher
/// `maxBatchInterval`), so polling faster would mostly see the same snapshot twice; polling
/// slower delays every dependency wave: measured on the 3-node test swarm, a 400 ms tick cost
/// ~0.2 s per wave against this one (each poll itself takes ~1 ms).
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// What one poll covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PollScope {
    /// The tasks and services labelled `io.swarmctl.stack=<stack>`.
    Stack(String),
    /// Every task and service (a service whose stack is unknown).
    Everything,
}

/// One poll's outcome.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// When the poll was sent: a waiter trusts only polls sent after it started waiting.
    pub sent: Instant,
    pub result: Result<TaskSnapshot, EngineError>,
}

pub(crate) type Receiver = watch::Receiver<Option<Arc<Snapshot>>>;

/// The pumps of one engine, and what it knows of its services' stacks.
#[derive(Default)]
pub(crate) struct SwarmPolls {
    pumps: Mutex<HashMap<PollScope, Pump>>,
    stacks: Mutex<HashMap<String, String>>,
}

struct Pump {
    sender: watch::Sender<Option<Arc<Snapshot>>>,
    task: JoinHandle<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SwarmPolls {
    /// Notes that service `id` belongs to `stack`.
    pub(crate) fn remember_stack(&self, id: &str, stack: &str) {
        lock(&self.stacks).insert(id.to_string(), stack.to_string());
    }

    /// The stack service `id` belongs to, if known.
    pub(crate) fn stack_of(&self, id: &str) -> Option<String> {
        lock(&self.stacks).get(id).cloned()
    }

    /// Joins the pump of `scope`, starting it (with `poll`) if none runs. The receiver sees
    /// every snapshot from the next one on.
    pub(crate) fn subscribe<Poll, Polling>(self: &Arc<Self>, scope: &PollScope, poll: Poll) -> Receiver
    where
        Poll: Fn() -> Polling + Send + 'static,
        Polling: Future<Output = Result<TaskSnapshot, EngineError>> + Send + 'static,
    {
        let mut pumps = lock(&self.pumps);
        if let Some(pump) = pumps.get(scope).filter(|pump| !pump.task.is_finished()) {
            return pump.sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        let task = tokio::spawn(run(Arc::clone(self), scope.clone(), sender.clone(), poll));
        pumps.insert(scope.clone(), Pump { sender, task });
        receiver
    }

    /// Ends the pump of `scope` if nobody waits on it; true if it ended. Under the lock, so a
    /// waiter that subscribes at the same time either keeps it alive or starts a new one.
    fn stop_if_unheard(&self, scope: &PollScope) -> bool {
        let mut pumps = lock(&self.pumps);
        let unheard = pumps.get(scope).is_none_or(|pump| pump.sender.receiver_count() == 0);
        if unheard {
            pumps.remove(scope);
        }
        unheard
    }

    /// Hands a snapshot to the waiters, unless there are none left (then the pump ends).
    fn publish(&self, scope: &PollScope, sender: &watch::Sender<Option<Arc<Snapshot>>>, snapshot: Snapshot) -> bool {
        let mut pumps = lock(&self.pumps);
        if sender.receiver_count() == 0 {
            pumps.remove(scope);
            return false;
        }
        sender.send_replace(Some(Arc::new(snapshot)));
        true
    }
}

async fn run<Poll, Polling>(polls: Arc<SwarmPolls>, scope: PollScope, sender: watch::Sender<Option<Arc<Snapshot>>>, poll: Poll)
where
    Poll: Fn() -> Polling,
    Polling: Future<Output = Result<TaskSnapshot, EngineError>>,
{
    loop {
        let sent = Instant::now();
        let result = poll().await;
        if !polls.publish(&scope, &sender, Snapshot { sent, result }) {
            return;
        }
        tokio::time::sleep(TICK).await;
        if polls.stop_if_unheard(&scope) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting_poll(counter: &Arc<AtomicUsize>) -> impl Fn() -> std::future::Ready<Result<TaskSnapshot, EngineError>> + Send + 'static {
        let counter = Arc::clone(counter);
        move || {
            counter.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(TaskSnapshot::default()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_waiters_share_one_poll_per_tick() {
        let polls = Arc::new(SwarmPolls::default());
        let counter = Arc::new(AtomicUsize::new(0));
        let scope = PollScope::Stack("demo".into());
        let mut receivers: Vec<Receiver> = (0..100).map(|_| polls.subscribe(&scope, counting_poll(&counter))).collect();
        for receiver in &mut receivers {
            receiver.changed().await.expect("a snapshot");
        }
        tokio::time::sleep(TICK * 10).await;
        let polled = counter.load(Ordering::SeqCst);
        assert!((10..=12).contains(&polled), "{polled} polls for 100 waiters over 10 ticks");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pump_stops_when_the_last_waiter_leaves_and_restarts_with_the_next() {
        let polls = Arc::new(SwarmPolls::default());
        let counter = Arc::new(AtomicUsize::new(0));
        let scope = PollScope::Stack("demo".into());
        let mut receiver = polls.subscribe(&scope, counting_poll(&counter));
        receiver.changed().await.expect("a snapshot");
        drop(receiver);
        tokio::time::sleep(TICK * 3).await;
        let after_leaving = counter.load(Ordering::SeqCst);
        tokio::time::sleep(TICK * 10).await;
        assert_eq!(counter.load(Ordering::SeqCst), after_leaving, "no waiter, no poll");
        assert!(lock(&polls.pumps).is_empty());
        let mut receiver = polls.subscribe(&scope, counting_poll(&counter));
        receiver.changed().await.expect("a snapshot from a new pump");
        assert!(counter.load(Ordering::SeqCst) > after_leaving);
    }

    #[tokio::test(start_paused = true)]
    async fn scopes_poll_separately() {
        let polls = Arc::new(SwarmPolls::default());
        let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut a = polls.subscribe(&PollScope::Stack("a".into()), counting_poll(&first));
        let mut b = polls.subscribe(&PollScope::Stack("b".into()), counting_poll(&second));
        a.changed().await.expect("a");
        b.changed().await.expect("b");
        assert!(first.load(Ordering::SeqCst) >= 1 && second.load(Ordering::SeqCst) >= 1);
        polls.remember_stack("svc", "a");
        assert_eq!(polls.stack_of("svc").as_deref(), Some("a"));
    }
}
