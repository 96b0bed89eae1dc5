//! Which files make a stack: a single compose file, or a stack directory with a root file and
//! numbered layer folders (`00-prerequisites/`, `02-storage-services/`, …) mirroring a Kubernetes
//! manifest tree. Other files in the directory are data (config files, templates).

use crate::diagnostics::Diagnostic;
use std::path::{Component, Path, PathBuf};

/// Root file names, in the order they are looked for.
pub const ROOT_FILES: [&str; 5] = ["stack.yaml", "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// The files of one stack, in merge order.
#[derive(Debug, Clone)]
pub struct StackFiles {
    /// The stack directory: relative paths resolve here and files may not escape it.
    pub dir: PathBuf,
    /// The name when neither `name:` nor `--name` says otherwise.
    pub default_name: String,
    /// The directory name `default_name` was made from.
    pub raw_name: String,
    pub files: Vec<StackFile>,
}

#[derive(Debug, Clone)]
pub struct StackFile {
    pub path: PathBuf,
    /// The layer folder this file is in; root files belong to no layer.
    pub layer: Option<Layer>,
}

/// A numbered layer folder.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    pub number: u32,
    pub name: String,
}

/// Finds the files of the stack at `path` (a directory or a compose file).
pub fn discover(path: &Path) -> Result<StackFiles, Diagnostic> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| Diagnostic::error(None, format!("cannot read stack `{}`: {e}", path.display())))?;
    if metadata.is_file() {
        let dir = absolute(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")));
        return Ok(StackFiles {
            default_name: normalize_name(&raw_directory_name(&dir)),
            raw_name: raw_directory_name(&dir),
            files: vec![StackFile { path: path.to_path_buf(), layer: None }],
            dir,
        });
    }
    let mut files = Vec::new();
    if let Some(root) = ROOT_FILES.iter().map(|name| path.join(name)).find(|p| p.is_file()) {
        files.push(StackFile { path: root, layer: None });
    }
    let mut layers: Vec<(Layer, PathBuf)> = read_dir_sorted(path)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| layer_of(&p).map(|layer| (layer, p)))
        .collect();
    layers.sort();
    for (layer, dir) in layers {
        let mut yaml = Vec::new();
        collect_yaml(&dir, &mut yaml)?;
        files.extend(yaml.into_iter().map(|path| StackFile { path, layer: Some(layer.clone()) }));
    }
    if files.is_empty() {
        return Err(Diagnostic::error(None, format!("`{}` has no stack file", path.display())).with_hint(format!(
            "add one of {} or numbered layer folders such as `00-base/`",
            ROOT_FILES.join(", ")
        )));
    }
    let raw_name = raw_directory_name(path);
    Ok(StackFiles { default_name: normalize_name(&raw_name), raw_name, dir: absolute(path), files })
}

/// `02-storage-services` → layer 2.
fn layer_of(dir: &Path) -> Option<Layer> {
    let name = dir.file_name()?.to_str()?;
    let (number, rest) = name.split_once('-')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty() {
        return None;
    }
    Some(Layer { number: number.parse().ok()?, name: name.to_string() })
}

/// YAML files under a layer folder, recursively. Symlinked directories are not followed: a link
/// back up the tree would recurse forever.
fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    for entry in read_dir_sorted(dir)? {
        let real_dir = std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir());
        if real_dir {
            collect_yaml(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") && entry.is_file() {
            out.push(entry);
        }
    }
    Ok(())
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::error(None, format!("cannot read directory `{}`: {e}", dir.display())))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

/// A compose project name from a directory: lowercase letters, digits, `-` and `_`.
/// The directory's own name, as written on disk.
fn raw_directory_name(dir: &Path) -> String {
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    absolute.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "stack".into())
}

/// The stack directory made absolute (and clean), so every path resolved against it is absolute
/// whatever the current directory is: the engine takes only absolute bind sources.
fn absolute(dir: &Path) -> PathBuf {
    clean(&std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// `path` without `.` components and with `..` applied, lexically (as Go's `filepath.Clean`,
/// which compose uses on bind sources); absolute when `path` is.
pub fn clean(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// A directory name made into a stack name, as compose makes a project name: lowercase, and
/// only letters, digits, `-` and `_`.
pub fn normalize_name(raw: &str) -> String {
    raw.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// A stack name longer than this could not name its objects (a Swarm service name is at most
/// 63 characters, and it starts with the stack's).
pub const MAX_STACK_NAME: usize = 40;

/// Compose's rule for a project name: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit; and at most [`MAX_STACK_NAME`] characters.
pub fn check_stack_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a stack name cannot be empty".into());
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err("a stack name may only hold lowercase letters, digits, `-` and `_`".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a stack name starts with a letter or digit".into());
    }
    if name.len() > MAX_STACK_NAME {
        return Err(format!("a stack name is at most {MAX_STACK_NAME} characters, this one has {}", name.len()));
    }
    Ok(())
}

/// Why a path written in the stack does not resolve to a file inside the stack directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// `..` or an absolute path leads out of the stack directory.
    Outside { written: String, dir: PathBuf },
    /// The path stays inside as written, but a symlink on the way leads out.
    Symlink { written: String, target: PathBuf, dir: PathBuf },
    Missing { written: String, dir: PathBuf },
    Unreadable { written: String, why: String },
}

impl Unresolved {
    pub fn is_outside(&self) -> bool {
        matches!(self, Unresolved::Outside { .. } | Unresolved::Symlink { .. })
    }
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Outside { written, dir } => write!(f, "`{written}` is outside the stack directory `{}`", super::source::display_path(dir).display()),
            Unresolved::Symlink { written, target, dir } => write!(
                f,
                "`{written}` leads through a symlink to `{}`, outside the stack directory `{}`",
                super::source::display_path(target).display(),
                super::source::display_path(dir).display()
            ),
            Unresolved::Missing { written, dir } => write!(f, "`{written}` does not exist in the stack directory `{}`", super::source::display_path(dir).display()),
            Unresolved::Unreadable { written, why } => write!(f, "`{written}`: {why}"),
        }
    }
}

/// Resolves `relative` inside `dir`, refusing paths that leave it: `..`, absolute paths
/// elsewhere, and symlinks pointing out (the file a stack ships must be part of the stack, so a
/// stack cannot read `~/.ssh/id_rsa` into a config).
pub fn resolve_inside(dir: &Path, relative: &str) -> Result<PathBuf, Unresolved> {
    let written = relative.to_string();
    let root = std::fs::canonicalize(dir).map_err(|e| Unresolved::Unreadable { written: dir.display().to_string(), why: e.to_string() })?;
    let candidate = Path::new(relative);
    let lexically_inside = if candidate.is_absolute() {
        normalize(candidate).starts_with(&root) || normalize(candidate).starts_with(normalize(dir))
    } else {
        stays_inside(candidate)
    };
    if !lexically_inside {
        return Err(Unresolved::Outside { written, dir: dir.to_path_buf() });
    }
    let resolved = std::fs::canonicalize(dir.join(candidate)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Unresolved::Missing { written: written.clone(), dir: dir.to_path_buf() },
        _ => Unresolved::Unreadable { written: written.clone(), why: e.to_string() },
    })?;
    if !resolved.starts_with(&root) {
        return Err(Unresolved::Symlink { written, target: resolved, dir: dir.to_path_buf() });
    }
    Ok(resolved)
}

/// Whether a relative path, read component by component, never climbs above its start.
fn stays_inside(path: &Path) -> bool {
    let mut depth = 0i64;
    for component in path.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth -= 1,
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// `a/./b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_may_not_leave_the_stack_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        std::fs::write(dir.path().join("conf/a.conf"), "a").unwrap();
        assert!(resolve_inside(dir.path(), "conf/a.conf").is_ok());
        assert!(resolve_inside(dir.path(), "./conf/../conf/a.conf").is_ok());
        let absolute = dir.path().join("conf/a.conf");
        assert!(resolve_inside(dir.path(), absolute.to_str().unwrap()).is_ok());
        assert!(matches!(resolve_inside(dir.path(), "../x"), Err(Unresolved::Outside { .. })));
        assert!(matches!(resolve_inside(dir.path(), "conf/../../x"), Err(Unresolved::Outside { .. })));
        assert!(matches!(resolve_inside(dir.path(), "/etc/hostname"), Err(Unresolved::Outside { .. })));
        assert!(matches!(resolve_inside(dir.path(), "conf/missing"), Err(Unresolved::Missing { .. })));
        std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
        assert!(matches!(resolve_inside(dir.path(), "etc/hostname"), Err(Unresolved::Symlink { .. })));
    }

    #[test]
    fn symlinked_directories_in_layers_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("00-base")).unwrap();
        std::fs::write(dir.path().join("00-base/a.yaml"), "services: {}\n").unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("00-base/up")).unwrap();
        let files = discover(dir.path()).unwrap();
        assert_eq!(files.files.len(), 1, "{:?}", files.files);
    }
}
