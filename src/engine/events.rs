//! One engine-wide stream of container events, shared by every wait.
//!
//! A wait re-inspects its container when something happens to it. With a subscription per wait,
//! the daemon filters every event once per wait: at a hundred health-gated containers on a
//! saturated engine, that work competes with the very health probes being waited for. So one
//! subscription runs while anyone listens, and each wait picks its own container out of the
//! fan-out. The stream is only a trigger to re-inspect, so repeats and extras are harmless;
//! a missed event is not, hence the replay on (re)connect and [`Heard::Resync`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::query_parameters::EventsOptions;
use bollard::Docker;
use futures::StreamExt;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;

/// How far back a (re)connection replays, so nothing between a listener's first inspect and the
/// subscription reaching the daemon is missed.
const REPLAY: Duration = Duration::from_secs(2);
/// Pause before reconnecting a broken stream.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// How often the stream checks whether anyone still listens.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Events buffered per listener; one that falls further behind re-inspects ([`Heard::Resync`]).
const CAPACITY: usize = 4096;

/// What the stream tells its listeners.
#[derive(Clone, Debug)]
enum Heard {
    /// Something happened to the container with this ID.
    Container(Arc<str>),
    /// Events may have been missed (the stream broke and reconnected): everyone re-inspects.
    Resync,
}

/// The shared subscription: running while at least one [`Listener`] exists.
#[derive(Default)]
pub(super) struct ContainerEvents {
    running: Mutex<Option<Running>>,
}

struct Running {
    sender: broadcast::Sender<Heard>,
    pump: JoinHandle<()>,
}

/// One wait's view of the shared stream.
pub(super) struct Listener {
    receiver: broadcast::Receiver<Heard>,
}

impl ContainerEvents {
    /// Starts listening, starting the shared subscription if none runs. Events from the moment
    /// this returns (and a little before) reach the listener.
    pub(super) fn listen(self: &Arc<Self>, docker: &Docker) -> Listener {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(current) = running.as_ref().filter(|current| !current.pump.is_finished()) {
            return Listener { receiver: current.sender.subscribe() };
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        let pump = tokio::spawn(pump(Arc::clone(self), docker.clone(), sender.clone()));
        *running = Some(Running { sender, pump });
        Listener { receiver }
    }

    /// Ends the subscription if nobody listens; true if it ended. Under the lock, so a
    /// listener that subscribes concurrently either keeps it alive or starts a new one.
    fn stop_if_unheard(&self) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let unheard = running.as_ref().is_none_or(|current| current.sender.receiver_count() == 0);
        if unheard {
            *running = None;
        }
        unheard
    }
}

impl Listener {
    /// Returns when something may have happened to container `id`. Never returns if the stream
    /// is gone for good (its runtime shut down); callers keep a poll as the safety net.
    pub(super) async fn changed(&mut self, id: &str) {
        loop {
            match self.receiver.recv().await {
                Ok(Heard::Container(actor)) if &*actor == id => return,
                Ok(Heard::Container(_)) => {}
                Ok(Heard::Resync) | Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending().await,
            }
        }
    }
}

/// Forwards the daemon's container events to the listeners until none is left, reconnecting
/// (with replay from the last event seen) when the stream breaks or the client times it out.
async fn pump(events: Arc<ContainerEvents>, docker: Docker, sender: broadcast::Sender<Heard>) {
    let mut since = unix_seconds(SystemTime::now().checked_sub(REPLAY).unwrap_or(UNIX_EPOCH));
    let mut idle = tokio::time::interval(IDLE_CHECK);
    loop {
        let mut stream = docker.events(Some(options(since)));
        loop {
            tokio::select! {
                item = stream.next() => {
                    let Some(Ok(message)) = item else { break };
                    since = message.time.unwrap_or(since);
                    if let Some(id) = message.actor.and_then(|actor| actor.id) {
                        // No receiver is not an error: the idle check ends the pump.
                        let _ = sender.send(Heard::Container(Arc::from(id)));
                    }
                }
                _ = idle.tick() => if events.stop_if_unheard() { return },
            }
        }
        let _ = sender.send(Heard::Resync);
        tokio::time::sleep(RECONNECT_DELAY).await;
        if events.stop_if_unheard() {
            return;
        }
    }
}

/// Container lifecycle events a wait can conclude something from.
fn options(since: i64) -> EventsOptions {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "event".to_string(),
            ["health_status", "die", "start", "destroy"].map(str::to_string).to_vec(),
        ),
    ]);
    EventsOptions { since: Some(since.to_string()), until: None, filters: Some(filters) }
}

fn unix_seconds(moment: SystemTime) -> i64 {
    moment.duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs() as i64)
}
