//! One deploy of a stack at a time. The lock is an exclusive `flock` on a file in the stack's
//! state directory: the kernel releases it when the holder dies, however it dies, so a lock left
//! by a killed process is simply free. The file names the holder for the one who waits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held until dropped.
#[derive(Debug)]
pub struct DeployLock {
    _file: File,
}

#[derive(Debug)]
pub enum LockError {
    /// Still held by another process after the timeout; `holder` is what it wrote.
    Busy { holder: String },
    Io(std::io::Error),
}

/// Takes the lock, waiting up to `timeout`; `on_wait` is called once with the holder's note.
pub async fn acquire(dir: &Path, timeout: Duration, on_wait: &(dyn Fn(&str) + Sync + '_)) -> Result<DeployLock, LockError> {
    let path = dir.join("lock");
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path).map_err(LockError::Io)?;
    let deadline = Instant::now() + timeout;
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = holder(&mut file);
                if Instant::now() >= deadline {
                    return Err(LockError::Busy { holder });
                }
                if !told {
                    on_wait(&holder);
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
    }
    let note = format!("pid {} on {} since unix time {}", std::process::id(), hostname(), unix_now());
    file.set_len(0).map_err(LockError::Io)?;
    file.rewind().map_err(LockError::Io)?;
    file.write_all(note.as_bytes()).map_err(LockError::Io)?;
    file.sync_all().map_err(LockError::Io)?;
    Ok(DeployLock { _file: file })
}

fn holder(file: &mut File) -> String {
    let mut note = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut note);
    if note.trim().is_empty() { "another swarmctl process".into() } else { note.trim().to_string() }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "this host".into())
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_then_gives_up_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let _held = acquire(dir.path(), Duration::ZERO, &|_| {}).await.unwrap();
        let told = std::sync::Mutex::new(String::new());
        let second = acquire(dir.path(), Duration::from_millis(300), &|holder| *told.lock().unwrap() = holder.to_string()).await;
        match second {
            Err(LockError::Busy { holder }) => assert!(holder.contains(&format!("pid {}", std::process::id()))),
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(told.lock().unwrap().contains("pid"));
    }

    #[tokio::test]
    async fn the_lock_is_free_again_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        drop(acquire(dir.path(), Duration::ZERO, &|_| {}).await.unwrap());
        assert!(acquire(dir.path(), Duration::ZERO, &|_| {}).await.is_ok());
    }
}
