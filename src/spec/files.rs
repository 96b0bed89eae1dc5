//! Which files make a stack: a single compose file, or a stack directory with a root file and
//! numbered layer folders (`00-prerequisites/`, `02-storage-services/`, …) mirroring a Kubernetes
//! manifest tree. Other files in the directory are data (config files, templates).

use crate::diagnostics::Diagnostic;
use std::path::{Path, PathBuf};

/// Root file names, in the order they are looked for.
pub const ROOT_FILES: [&str; 5] = ["stack.yaml", "compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];

/// The files of one stack, in merge order.
#[derive(Debug, Clone)]
pub struct StackFiles {
    /// The stack directory: relative paths resolve here and files may not escape it.
    pub dir: PathBuf,
    /// The name when neither `name:` nor `--name` says otherwise.
    pub default_name: String,
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
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        return Ok(StackFiles {
            default_name: directory_name(&dir),
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
    Ok(StackFiles { default_name: directory_name(path), dir: path.to_path_buf(), files })
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

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    for entry in read_dir_sorted(dir)? {
        if entry.is_dir() {
            collect_yaml(&entry, out)?;
        } else if entry.extension().is_some_and(|e| e == "yaml" || e == "yml") {
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
pub fn directory_name(dir: &Path) -> String {
    let absolute = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = absolute.file_name().and_then(|n| n.to_str()).unwrap_or("stack");
    normalize_name(raw)
}

pub fn normalize_name(raw: &str) -> String {
    raw.to_ascii_lowercase().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// Resolves `relative` inside `dir`, refusing paths that leave it (`..`, absolute paths, symlinks).
pub fn resolve_inside(dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let candidate = dir.join(relative);
    let root = std::fs::canonicalize(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    let resolved = std::fs::canonicalize(&candidate).map_err(|e| format!("`{relative}`: {e}"))?;
    if !resolved.starts_with(&root) {
        return Err(format!("`{relative}` resolves to `{}`, outside the stack directory `{}`", resolved.display(), dir.display()));
    }
    Ok(resolved)
}
