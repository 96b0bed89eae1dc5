//! Revisions: each deploy that changed something is recorded with the resolved stack (secrets as
//! keyed hashes), the result and the time, one JSON file per revision.

use super::{lock::unix_now, write_private};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Revision {
    pub number: u32,
    pub unix_time: u64,
    /// `converged`, `failed`, `interrupted`.
    pub result: String,
    pub steps: usize,
    pub failed_steps: usize,
    pub seconds: f64,
    /// The resolved Compose document, secrets redacted.
    pub document: serde_json::Value,
}

/// All revisions, oldest first.
pub fn list(dir: &Path) -> Vec<Revision> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut revisions: Vec<Revision> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("revision-"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    revisions.sort_by_key(|r| r.number);
    revisions
}

/// Records the next revision and returns its number.
pub fn record(dir: &Path, result: &str, steps: usize, failed_steps: usize, seconds: f64, document: serde_json::Value) -> std::io::Result<u32> {
    let number = list(dir).last().map_or(1, |r| r.number + 1);
    let revision = Revision { number, unix_time: unix_now(), result: result.into(), steps, failed_steps, seconds, document };
    let json = serde_json::to_vec_pretty(&revision).map_err(std::io::Error::other)?;
    write_private(&dir.join(format!("revision-{number:06}.json")), &json)?;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn revisions_number_up_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(record(dir.path(), "converged", 3, 0, 1.5, serde_json::json!({})).unwrap(), 1);
        assert_eq!(record(dir.path(), "failed", 2, 1, 0.5, serde_json::json!({})).unwrap(), 2);
        let revisions = list(dir.path());
        assert_eq!(revisions.iter().map(|r| r.number).collect::<Vec<_>>(), vec![1, 2]);
        let mode = std::fs::metadata(dir.path().join("revision-000001.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
