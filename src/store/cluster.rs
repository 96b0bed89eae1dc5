//! The swarm target's store, kept in the cluster itself so every manager and every operator sees
//! the same lock and history. Both live in Swarm configs, which only their labels can change
//! (with the version they were read at: a stale write is refused, so two writers cannot both win):
//!
//! - the lock of a stack is a config `swarmctl-lock.<stack>` whose labels name its holder; the
//!   holder renews it every few seconds. A lock whose version has not moved for [`LEASE`] (by the
//!   waiter's own clock, so clocks need not agree) belongs to a dead holder and is taken over,
//!   with the same compare-and-set; so is at once one whose holder ran on this very machine
//!   and is gone (a deploy killed in CI need not cost the next one a lease). Released by marking it free, never by deleting it (a delete
//!   takes no version and could remove a lease someone else just took);
//! - each revision is a config `swarmctl.<stack>.r<N>` holding the revision, gzip-compressed
//!   JSON, labelled `io.swarmctl.history=<stack>` (not the stack's ownership label: `down` and
//!   the planner leave history alone).

use super::{Held, NewRevision, Revision, Store, StoreError};
use crate::engine::{EngineError, SwarmEngine};
use crate::model::objects::FileContent;
use crate::model::service::ObjectSpec;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a lock may go unrenewed before its holder counts as dead.
pub const LEASE: Duration = Duration::from_secs(30);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a waiter looks again.
const POLL: Duration = Duration::from_millis(500);
/// A revision must fit one config on every engine (500 KiB before Engine 20.10.15).
pub const MAX_REVISION_BYTES: usize = 500 * 1024;
/// Revisions kept per stack; older ones are removed when a new one is recorded.
pub const KEPT_REVISIONS: usize = 50;

const LABEL_HISTORY: &str = "io.swarmctl.history";
const LABEL_REVISION: &str = "io.swarmctl.revision";
const LABEL_HOLDER: &str = "io.swarmctl.lock.holder";
const LABEL_STATE: &str = "io.swarmctl.lock.state";
const LABEL_RENEWED: &str = "io.swarmctl.lock.renewed";
/// Where the holder runs: `<machine id>/<pid namespace>`, its PID there, and the PID's start
/// time (a PID is reused; with its start time it is not).
const LABEL_PLACE: &str = "io.swarmctl.lock.place";
const LABEL_PID: &str = "io.swarmctl.lock.pid";
const LABEL_STARTED: &str = "io.swarmctl.lock.started";

/// The lock and history of every stack on one swarm.
#[derive(Clone)]
pub struct ClusterStore {
    engine: Arc<dyn SwarmEngine>,
}

impl ClusterStore {
    pub fn new(engine: Arc<dyn SwarmEngine>) -> ClusterStore {
        ClusterStore { engine }
    }
}

fn lock_name(stack: &str) -> String {
    format!("swarmctl-lock.{stack}")
}

fn revision_name(stack: &str, number: u32) -> String {
    format!("swarmctl.{stack}.r{number}")
}

/// This machine and PID namespace: where a PID means one process.
fn place() -> Option<String> {
    let machine = std::fs::read_to_string("/etc/machine-id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", machine.trim(), namespace.display()))
}

/// When the process `pid` started (field 22 of its `stat`), if it runs.
fn started(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(19).map(str::to_string)
}

/// Labels naming this process, for [`holder_is_gone`].
fn this_process() -> BTreeMap<String, String> {
    let pid = std::process::id().to_string();
    [(LABEL_PLACE, place()), (LABEL_STARTED, started(&pid)), (LABEL_PID, Some(pid))]
        .into_iter()
        .filter_map(|(key, value)| Some((key.to_string(), value?)))
        .collect()
}

/// A holder that ran on this machine, in this PID namespace, and is gone.
fn holder_is_gone(labels: &BTreeMap<String, String>) -> bool {
    let (Some(holder_place), Some(pid), Some(holder_started)) = (labels.get(LABEL_PLACE), labels.get(LABEL_PID), labels.get(LABEL_STARTED)) else {
        return false;
    };
    place().as_ref() == Some(holder_place) && started(pid).as_ref() != Some(holder_started)
}

/// Who holds a lock: the process, its host and when it started, for the one who waits.
fn holder_note() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "a host".into());
    format!("pid {} on {host} since unix time {}", std::process::id(), super::lock::unix_now())
}

fn cluster_error(error: EngineError) -> StoreError {
    StoreError::Cluster(error)
}

#[async_trait::async_trait]
impl Store for ClusterStore {
    async fn lock(&self, stack: &str, timeout: Duration, on_wait: &(dyn for<'a> Fn(&'a str) + Sync)) -> Result<Box<dyn Held>, StoreError> {
        let name = lock_name(stack);
        let me = holder_note();
        let held_labels = |renewed: u64| -> BTreeMap<String, String> {
            let mut labels = this_process();
            labels.insert(LABEL_HOLDER.into(), me.clone());
            labels.insert(LABEL_STATE.into(), "held".into());
            labels.insert(LABEL_RENEWED.into(), renewed.to_string());
            labels
        };
        let deadline = Instant::now() + timeout;
        let mut told = false;
        // The version a holder last had, and since when (by our clock) it has not moved.
        let mut watching: Option<(u64, Instant)> = None;
        loop {
            let spec = ObjectSpec { name: name.clone(), labels: held_labels(0), data: FileContent::new("swarmctl deploy lock") };
            match self.engine.create_config(&spec).await {
                Ok(id) => return Ok(Box::new(Lease::start(self.engine.clone(), id, name, held_labels(0)).await)),
                Err(error) if error.is_conflict() => {}
                Err(error) => return Err(cluster_error(error)),
            }
            let Some(current) = self.engine.read_config(&name).await.map_err(cluster_error)? else { continue };
            let free = current.labels.get(LABEL_STATE).map(String::as_str) != Some("held");
            let expired = match watching {
                Some((version, since)) if version == current.version => since.elapsed() >= LEASE,
                _ => {
                    watching = Some((current.version, Instant::now()));
                    false
                }
            };
            if free || expired || holder_is_gone(&current.labels) {
                match self.engine.update_config_labels(&current.id, current.version, &name, &held_labels(0)).await {
                    Ok(()) => return Ok(Box::new(Lease::start(self.engine.clone(), current.id, name, held_labels(0)).await)),
                    // Someone else moved first: look again.
                    Err(error) if error.is_conflict() => continue,
                    Err(error) => return Err(cluster_error(error)),
                }
            }
            let holder = current.labels.get(LABEL_HOLDER).cloned().unwrap_or_else(|| "another swarmctl".into());
            if Instant::now() >= deadline {
                return Err(StoreError::Busy { stack: stack.to_string(), holder });
            }
            if !told {
                on_wait(&holder);
                told = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn record(&self, stack: &str, revision: NewRevision) -> Result<u32, StoreError> {
        let existing = self.engine.list_configs(LABEL_HISTORY, stack).await.map_err(cluster_error)?;
        let numbers: Vec<u32> = existing.iter().filter_map(|c| c.labels.get(LABEL_REVISION)?.parse().ok()).collect();
        let number = numbers.iter().max().map_or(1, |n| n + 1);
        let revision = Revision { number, unix_time: super::lock::unix_now(), content: revision };
        let json = serde_json::to_vec(&revision).map_err(|e| StoreError::Encode(e.to_string()))?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&json).map_err(|e| StoreError::Encode(e.to_string()))?;
        let data = gzip.finish().map_err(|e| StoreError::Encode(e.to_string()))?;
        if data.len() > MAX_REVISION_BYTES {
            return Err(StoreError::TooBig { bytes: data.len(), limit: MAX_REVISION_BYTES });
        }
        let labels = BTreeMap::from([(LABEL_HISTORY.to_string(), stack.to_string()), (LABEL_REVISION.to_string(), number.to_string())]);
        let spec = ObjectSpec { name: revision_name(stack, number), labels, data: FileContent::new(data) };
        self.engine.create_config(&spec).await.map_err(cluster_error)?;
        // Keep the newest revisions; the oldest go.
        let mut old: Vec<(u32, &String)> = existing.iter().filter_map(|c| Some((c.labels.get(LABEL_REVISION)?.parse().ok()?, &c.id))).collect();
        old.sort();
        let surplus = (old.len() + 1).saturating_sub(KEPT_REVISIONS);
        for (_, id) in old.into_iter().take(surplus) {
            self.engine.remove_config(id).await.map_err(cluster_error)?;
        }
        Ok(number)
    }

    async fn revisions(&self, stack: &str) -> Result<Vec<Revision>, StoreError> {
        let listed = self.engine.list_configs(LABEL_HISTORY, stack).await.map_err(cluster_error)?;
        let mut revisions = Vec::new();
        for config in listed {
            let Some(stored) = self.engine.read_config(&config.name).await.map_err(cluster_error)? else { continue };
            let mut json = Vec::new();
            let read = flate2::read::GzDecoder::new(stored.data.as_slice()).take(64 << 20).read_to_end(&mut json);
            // A revision that cannot be read back is skipped, as a damaged local file is.
            if let Some(revision) = read.ok().and_then(|_| serde_json::from_slice::<Revision>(&json).ok()) {
                revisions.push(revision);
            }
        }
        revisions.sort_by_key(|r| r.number);
        Ok(revisions)
    }

    async fn forget(&self, stack: &str) -> Result<(), StoreError> {
        self.forget_revisions(stack).await
    }
}

impl ClusterStore {
    /// Deletes the stack's revisions.
    async fn forget_revisions(&self, stack: &str) -> Result<(), StoreError> {
        for config in self.engine.list_configs(LABEL_HISTORY, stack).await.map_err(cluster_error)? {
            self.engine.remove_config(&config.id).await.map_err(cluster_error)?;
        }
        Ok(())
    }
}

/// A held lock: renewed in the background until released.
struct Lease {
    engine: Arc<dyn SwarmEngine>,
    id: String,
    name: String,
    labels: BTreeMap<String, String>,
    renewing: tokio::task::JoinHandle<()>,
}

impl Lease {
    async fn start(engine: Arc<dyn SwarmEngine>, id: String, name: String, labels: BTreeMap<String, String>) -> Lease {
        let (renew_engine, renew_id, renew_name, renew_labels) = (engine.clone(), id.clone(), name.clone(), labels.clone());
        let renewing = tokio::spawn(async move {
            let mut renewed = 0u64;
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                renewed += 1;
                let Ok(Some(current)) = renew_engine.read_config(&renew_name).await else { continue };
                if current.labels.get(LABEL_HOLDER) != renew_labels.get(LABEL_HOLDER) {
                    return; // taken over: this process stalled past the lease
                }
                let mut labels = renew_labels.clone();
                labels.insert(LABEL_RENEWED.into(), renewed.to_string());
                let _ = renew_engine.update_config_labels(&renew_id, current.version, &renew_name, &labels).await;
            }
        });
        Lease { engine, id, name, labels, renewing }
    }
}

#[async_trait::async_trait]
impl Held for Lease {
    async fn release(self: Box<Self>) {
        self.renewing.abort();
        // Only our own lease is freed: read it, and mark it free at the version we read.
        if let Ok(Some(current)) = self.engine.read_config(&self.name).await {
            if current.labels.get(LABEL_HOLDER) == self.labels.get(LABEL_HOLDER) {
                let free = BTreeMap::from([(LABEL_STATE.to_string(), "free".to_string())]);
                let _ = self.engine.update_config_labels(&self.id, current.version, &self.name, &free).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_gone_only_when_it_ran_here_and_its_process_is_not_the_same_any_more() {
        let me = this_process();
        assert!(!holder_is_gone(&me), "this process holds it and runs");
        let mut restarted = me.clone();
        restarted.insert(LABEL_STARTED.into(), "1".into());
        assert!(holder_is_gone(&restarted), "the PID now belongs to another process (or none)");
        let mut elsewhere = restarted.clone();
        elsewhere.insert(LABEL_PLACE.into(), "another-machine/pid:[1]".into());
        assert!(!holder_is_gone(&elsewhere), "a holder on another machine is waited out by its lease");
        assert!(!holder_is_gone(&BTreeMap::new()), "an older swarmctl's lock says nothing of its process");
    }
}
