//! Tar archives the engine API consumes: delivered files and build contexts.
//!
//! Files go into a container as a tar upload at `/` between create and start, which works
//! against a remote engine too (no bind mounts of local paths). This module only builds bytes;
//! it never talks to the engine and never logs file contents.

use std::io;
use std::path::{Component, Path};

use crate::model::objects::FileDelivery;

/// Why an archive could not be built.
#[derive(Debug)]
pub(crate) enum ArchiveError {
    /// A delivered file's path is not absolute, or climbs with `..`.
    BadPath(String),
    /// A delivered file's content was redacted (deserialised from a saved plan).
    Redacted(String),
    /// Reading the build context failed.
    Io(io::Error),
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::BadPath(path) => {
                write!(formatter, "file path {path:?} must be absolute and must not contain `..`")
            }
            ArchiveError::Redacted(path) => write!(
                formatter,
                "the content of {path} is not available (it was redacted when the plan was saved); plan again"
            ),
            ArchiveError::Io(error) => write!(formatter, "{error}"),
        }
    }
}

/// A tar of `files`, to be extracted at `/` in the container. Entries carry each file's mode,
/// owner and group; missing parent directories are created by the engine (0755, root), and
/// existing ones are left alone (no directory entries, so `/tmp`'s mode is never clobbered).
pub(crate) fn files_archive(files: &[FileDelivery]) -> Result<Vec<u8>, ArchiveError> {
    let mut builder = tar::Builder::new(Vec::new());
    for file in files {
        let relative = relative_container_path(&file.path).ok_or_else(|| ArchiveError::BadPath(file.path.clone()))?;
        let bytes = file.content.bytes().ok_or_else(|| ArchiveError::Redacted(file.path.clone()))?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(bytes.len() as u64);
        header.set_mode(file.mode);
        header.set_uid(file.uid);
        header.set_gid(file.gid);
        header.set_mtime(0);
        builder.append_data(&mut header, &relative, bytes).map_err(ArchiveError::Io)?;
    }
    builder.into_inner().map_err(ArchiveError::Io)
}

/// `/run/secrets/x` → `run/secrets/x`; `None` for relative paths or paths with `..`.
fn relative_container_path(path: &str) -> Option<String> {
    let as_path = Path::new(path);
    if !as_path.is_absolute() {
        return None;
    }
    let mut parts = Vec::new();
    for component in as_path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part.to_str()?.to_string()),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

/// A tar of the build context directory. Symbolic links are stored as links, not followed,
/// so a context cannot smuggle in files from outside itself.
pub(crate) fn context_archive(context: &Path) -> Result<Vec<u8>, ArchiveError> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.append_dir_all(".", context).map_err(ArchiveError::Io)?;
    builder.into_inner().map_err(ArchiveError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::objects::FileContent;
    use std::io::Read;

    #[test]
    fn delivered_files_keep_path_mode_and_owner() {
        let files = vec![FileDelivery {
            path: "/run/secrets/token".into(),
            mode: 0o400,
            uid: 70,
            gid: 71,
            content: FileContent::new("abc"),
        }];
        let bytes = files_archive(&files).expect("archive");
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut entries = archive.entries().expect("entries");
        let mut entry = entries.next().expect("one entry").expect("readable entry");
        assert_eq!(entry.path().expect("path").to_str(), Some("run/secrets/token"));
        assert_eq!(entry.header().mode().expect("mode"), 0o400);
        assert_eq!(entry.header().uid().expect("uid"), 70);
        assert_eq!(entry.header().gid().expect("gid"), 71);
        let mut content = String::new();
        entry.read_to_string(&mut content).expect("content");
        assert_eq!(content, "abc");
        assert!(entries.next().is_none());
    }

    #[test]
    fn relative_or_climbing_paths_are_refused() {
        assert_eq!(relative_container_path("etc/x"), None);
        assert_eq!(relative_container_path("/etc/../x"), None);
        assert_eq!(relative_container_path("/"), None);
        assert_eq!(relative_container_path("/etc/./app.conf"), Some("etc/app.conf".into()));
    }
}
