//! Revision files: one JSON file (mode 0600) per revision in a stack's state directory.

use super::{lock::unix_now, write_private, NewRevision, Revision};
use std::path::Path;

/// All revisions, oldest first; an unreadable file is skipped.
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

/// Deletes every revision file.
pub fn forget(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        if entry.file_name().to_string_lossy().starts_with("revision-") {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Records the next revision and returns its number.
pub fn record(dir: &Path, content: NewRevision) -> std::io::Result<u32> {
    let number = list(dir).last().map_or(1, |r| r.number + 1);
    let revision = Revision { number, unix_time: unix_now(), content };
    let json = serde_json::to_vec_pretty(&revision).map_err(std::io::Error::other)?;
    write_private(&dir.join(format!("revision-{number:06}.json")), &json)?;
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn revision(result: &str) -> NewRevision {
        NewRevision { result: result.into(), steps: 3, failed_steps: 0, seconds: 1.5, stack: None, note: None, desired: Default::default(), placement: None }
    }

    #[test]
    fn revisions_number_up_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(record(dir.path(), revision("converged")).unwrap(), 1);
        assert_eq!(record(dir.path(), revision("failed")).unwrap(), 2);
        let revisions = list(dir.path());
        assert_eq!(revisions.iter().map(|r| r.number).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(revisions[1].content.result, "failed");
        let mode = std::fs::metadata(dir.path().join("revision-000001.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
