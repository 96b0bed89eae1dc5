//! The host target's store: a state directory per engine and stack (`SWARMCTL_STATE_DIR`, else
//! `$XDG_STATE_HOME/swarmctl`, else `~/.local/state/swarmctl`), holding a `flock` lock and the
//! revision files, all private to the user (0700 / 0600).

use super::{history, lock, Held, NewRevision, Revision, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Local files for the stacks of one engine.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// `<root>/<engine id>`.
    engine_dir: PathBuf,
}

impl LocalStore {
    /// The store of the engine with ID `engine_id`, under the state root found through `lookup`
    /// (the process environment, injected).
    pub fn new(engine_id: &str, lookup: impl Fn(&str) -> Option<String>) -> LocalStore {
        LocalStore { engine_dir: state_root(lookup).join(safe(engine_id)) }
    }

    /// The directory of one stack, created (0700) if missing.
    fn stack_dir(&self, stack: &str) -> Result<PathBuf, StoreError> {
        let dir = self.engine_dir.join(safe(stack));
        let io = |error| StoreError::Io { what: "use the state directory", path: dir.clone(), error };
        std::fs::create_dir_all(&dir).map_err(io)?;
        super::set_mode(&dir, 0o700).map_err(io)?;
        Ok(dir)
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn lock(&self, stack: &str, timeout: Duration, on_wait: &(dyn for<'a> Fn(&'a str) + Sync)) -> Result<Box<dyn Held>, StoreError> {
        let dir = self.stack_dir(stack)?;
        match lock::acquire(&dir, timeout, on_wait).await {
            Ok(held) => Ok(Box::new(held)),
            Err(lock::LockError::Busy { holder }) => Err(StoreError::Busy { stack: stack.to_string(), holder }),
            Err(lock::LockError::Io(error)) => Err(StoreError::Io { what: "take the deploy lock in", path: dir, error }),
        }
    }

    async fn record(&self, stack: &str, revision: NewRevision) -> Result<u32, StoreError> {
        let dir = self.stack_dir(stack)?;
        history::record(&dir, revision).map_err(|error| StoreError::Io { what: "record the revision in", path: dir, error })
    }

    async fn revisions(&self, stack: &str) -> Result<Vec<Revision>, StoreError> {
        Ok(history::list(&self.stack_dir(stack)?))
    }

    async fn forget(&self, stack: &str) -> Result<(), StoreError> {
        let dir = self.stack_dir(stack)?;
        history::forget(&dir).map_err(|error| StoreError::Io { what: "delete the revisions in", path: dir, error })
    }
}

#[async_trait::async_trait]
impl Held for lock::DeployLock {
    async fn release(self: Box<Self>) {}
}

/// `$SWARMCTL_STATE_DIR`, else `$XDG_STATE_HOME/swarmctl`, else `~/.local/state/swarmctl`.
pub fn state_root(lookup: impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = lookup("SWARMCTL_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = lookup("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&dir).join("swarmctl");
    }
    let home = lookup("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".local/state/swarmctl")
}

/// A file-name-safe form of an engine ID or stack name.
fn safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
