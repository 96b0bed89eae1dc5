//! The key/value store behind `/kv/<key>`: one file per key under `TESTAPP_DATA`.
//!
//! Tests use it to prove that a volume survives a container being replaced,
//! so a `PUT` is only acknowledged once the value is durable: written to a
//! temporary file, fsynced, renamed over the key, and the directory fsynced.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Store {
    dir: PathBuf,
}

/// Distinguishes temporary files of concurrent writers.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The value, or `None` if the key was never stored.
    pub fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.dir.join(key)) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores the value durably, creating the data directory if needed.
    pub fn put(&self, key: &str, value: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let temp = self.dir.join(format!(
            ".{key}.tmp-{}-{}",
            std::process::id(),
            NEXT_TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(value)?;
            file.sync_all()?;
            fs::rename(&temp, self.dir.join(key))?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// Keys become file names, so only a safe alphabet is allowed: letters,
/// digits, `.`, `_`, `-`; not starting with `.` (no `..`, no hidden temp files).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for good in ["a", "user-1", "v1.2_x"] {
            assert!(valid_key(good), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "a/b", "a b", "ä", &"k".repeat(201)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn put_then_get() {
        let dir = std::env::temp_dir().join(format!("testapp-kv-{}", std::process::id()));
        let store = Store::new(dir.join("nested"));
        assert_eq!(store.get("k").unwrap(), None);
        store.put("k", b"one").unwrap();
        store.put("k", b"two").unwrap();
        assert_eq!(store.get("k").unwrap(), Some(b"two".to_vec()));
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 1, "no temp files left");
        fs::remove_dir_all(dir).unwrap();
    }
}
