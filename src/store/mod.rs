//! Local state, one directory per engine and stack: the deploy lock and the revision history.
//! Files are mode 0600 and hold no secret content (secrets appear as keyed hashes only).

pub mod history;
pub mod lock;

use std::path::{Path, PathBuf};

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

/// The directory of one stack on one engine, created (0700) if missing.
pub fn stack_dir(root: &Path, engine_id: &str, stack: &str) -> std::io::Result<PathBuf> {
    let safe = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect::<String>();
    let dir = root.join(safe(engine_id)).join(safe(stack));
    std::fs::create_dir_all(&dir)?;
    set_mode(&dir, 0o700)?;
    Ok(dir)
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Writes a file atomically with mode 0600.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}
