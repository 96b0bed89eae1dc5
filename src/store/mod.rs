//! What outlives one command: the deploy lock and the revision history, behind one trait so each
//! target keeps them where its users look — local files for one host ([`local`]), the cluster
//! itself for a swarm. Nothing stored holds secret content (secrets appear as keyed hashes only).

pub mod cluster;
pub mod history;
pub mod local;
pub mod lock;
pub mod snapshot;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The lock and history of every stack on one target.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Takes the stack's deploy lock, waiting up to `timeout`; `on_wait` hears the holder once.
    async fn lock(&self, stack: &str, timeout: Duration, on_wait: &(dyn for<'a> Fn(&'a str) + Sync)) -> Result<Box<dyn Held>, StoreError>;

    /// Records the stack's next revision and returns its number.
    async fn record(&self, stack: &str, revision: NewRevision) -> Result<u32, StoreError>;

    /// The stack's revisions, oldest first.
    async fn revisions(&self, stack: &str) -> Result<Vec<Revision>, StoreError>;

    /// Deletes the stack's revisions (`down` without `--keep-history`).
    async fn forget(&self, stack: &str) -> Result<(), StoreError>;
}

/// A held lock; released by [`Held::release`], or by the holder's death.
#[async_trait::async_trait]
pub trait Held: Send {
    async fn release(self: Box<Self>);
}

/// One deploy, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Revision {
    pub number: u32,
    pub unix_time: u64,
    #[serde(flatten)]
    pub content: NewRevision,
}

/// What a deploy records; the store adds the number and the time.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewRevision {
    /// `converged`, `failed`, `interrupted`.
    pub result: String,
    pub steps: usize,
    pub failed_steps: usize,
    pub seconds: f64,
    /// The stack deployed, without secret contents: what `rollback` deploys again. Absent in
    /// revisions of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<snapshot::StackSnapshot>,
    /// How the deploy came about when it was not a plain deploy (`rollback to 2`, `web rolled
    /// back to 3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What each service asked for, so `status NAME` knows a missing replica.
    #[serde(default)]
    pub desired: crate::status::Desired,
    /// Swarm: the tasks per service and node the plan predicted, for `status` to compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<crate::plan::placement::TaskCounts>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another deploy or down of the stack held the lock for the whole timeout.
    #[error("another deploy of `{stack}` is running ({holder})")]
    Busy { stack: String, holder: String },
    #[error("cannot {what} {}: {error}", path.display())]
    Io { what: &'static str, path: PathBuf, error: std::io::Error },
    /// The cluster store's calls failed.
    #[error("{0}")]
    Cluster(crate::engine::EngineError),
    #[error("a revision cannot be encoded: {0}")]
    Encode(String),
    #[error("the revision is {bytes} bytes compressed, more than a swarm config holds ({limit}); the stack is too large to record in the cluster")]
    TooBig { bytes: usize, limit: usize },
}

pub(crate) fn set_mode(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a file atomically with mode 0600.
pub(crate) fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        // A full disk must not leave half a revision behind.
        let _ = std::fs::remove_file(&temporary);
    }
    written
}
