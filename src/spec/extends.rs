//! Compose `extends`: a service starts from another service (of this stack, or of another file
//! inside the stack directory) and overrides it with the compose merge rules.
//!
//! Real compose files use it to share a base definition (`extends: {file: common.yml, service:
//! base}`), often with the image only in the base, so it must be resolved before the schema and
//! the model see the service — otherwise a valid file would fail "neither image nor build".
//! Resolution runs on the merged tree, bases first; a chain that loops is an error naming it.
//! As compose documents, `depends_on` and `volumes_from` are never inherited: dependencies are
//! always written where they apply. Relative paths in another file (`build`, `env_file`, bind
//! mounts, its own `extends.file`) are relative to that file, so they are rebased when it is read.

use super::files::resolve_inside;
use super::merge;
use super::schema::did_you_mean;
use super::yaml::{Entry, Node, Value};
use crate::diagnostics::Diagnostics;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Reads another compose file (template, YAML, interpolation) for `extends: {file: …}`.
pub type ReadFile<'a> = dyn FnMut(&Path) -> Option<Node> + 'a;

/// Replaces every service that has `extends` by its base merged with it; removes `extends`.
pub fn resolve(document: &mut Node, dir: &Path, read_file: &mut ReadFile<'_>, out: &mut Diagnostics) {
    let Some(services) = services_mut(document) else { return };
    if !services.iter().any(|e| e.value.get("extends").is_some()) {
        return;
    }
    let mut resolver = Resolver { dir, read_file, out, files: BTreeMap::new() };
    let names: Vec<String> = services.iter().map(|e| e.key.clone()).collect();
    let mut done: BTreeMap<String, Node> = BTreeMap::new();
    for name in &names {
        let mut chain = Vec::new();
        resolver.resolve_local("", services, name, &mut done, &mut chain);
    }
    for entry in services.iter_mut() {
        if let Some(resolved) = done.remove(&entry.key) {
            entry.value = resolved;
        }
    }
}

fn services_mut(document: &mut Node) -> Option<&mut Vec<Entry>> {
    let Value::Map(top) = &mut document.value else { return None };
    let services = top.iter_mut().find(|e| e.key == "services")?;
    match &mut services.value.value {
        Value::Map(entries) => Some(entries),
        _ => None,
    }
}

struct Resolver<'a, 'b> {
    dir: &'a Path,
    read_file: &'a mut ReadFile<'b>,
    out: &'a mut Diagnostics,
    /// Services of other files, read once each.
    files: BTreeMap<PathBuf, Option<Node>>,
}

impl Resolver<'_, '_> {
    /// The service `name` of `services` (the stack's when `scope` is empty, else those of the file
    /// `scope`) with its `extends` chain applied; `chain` detects loops, also across files.
    fn resolve_local(&mut self, scope: &str, services: &[Entry], name: &str, done: &mut BTreeMap<String, Node>, chain: &mut Vec<String>) -> Option<Node> {
        if let Some(resolved) = done.get(name) {
            return Some(resolved.clone());
        }
        let service = services.iter().find(|e| e.key == name)?.value.clone();
        let resolved = self.apply(scope, services, name, service, done, chain);
        done.insert(name.to_string(), resolved.clone());
        Some(resolved)
    }

    /// Merges `service` onto the base its `extends` names (if any).
    fn apply(&mut self, scope: &str, services: &[Entry], name: &str, service: Node, done: &mut BTreeMap<String, Node>, chain: &mut Vec<String>) -> Node {
        let Some(extends) = service.get("extends").cloned() else { return service };
        let own = without_extends(service);
        let (base_name, file) = match (&extends.value, extends.as_text()) {
            (Value::Scalar(_), Some(base)) => (base.to_string(), None),
            (Value::Map(_), _) => match extends.get("service").and_then(Node::as_text) {
                Some(base) => (base.to_string(), extends.get("file").and_then(Node::as_text).map(str::to_string)),
                None => {
                    self.out.error(extends.pos, format!("service `{name}`: `extends` needs `service:`"));
                    return own;
                }
            },
            _ => {
                self.out.error(extends.pos, format!("service `{name}`: `extends` is a service name or {{service, file}}"));
                return own;
            }
        };
        let link = if scope.is_empty() { name.to_string() } else { format!("{scope}:{name}") };
        if chain.contains(&link) {
            chain.push(link);
            self.out.error(extends.pos, format!("`extends` loops: {}", chain.join(" -> "))).hint =
                Some("a service cannot extend itself, directly or through others".into());
            return own;
        }
        chain.push(link);
        let base = match file {
            None => {
                let found = services.iter().any(|e| e.key == base_name);
                if !found {
                    let known = services.iter().map(|e| e.key.as_str());
                    let diagnostic = self.out.error(extends.pos, format!("service `{name}` extends unknown service `{base_name}`"));
                    diagnostic.hint = did_you_mean(&base_name, known).map(|s| format!("did you mean `{s}`?"));
                }
                self.resolve_local(scope, services, &base_name, done, chain)
            }
            Some(file) => self.base_from_file(name, &file, &base_name, &extends, chain),
        };
        chain.pop();
        match base {
            Some(base) => merge::merge(not_inherited_removed(base), own, &["services", name]),
            None => own,
        }
    }

    /// A service of another file, with that file's own `extends` applied.
    fn base_from_file(&mut self, name: &str, file: &str, base_name: &str, extends: &Node, chain: &mut Vec<String>) -> Option<Node> {
        let path = match resolve_inside(self.dir, file) {
            Ok(path) => path,
            Err(why) => {
                let pos = extends.get("file").map_or(extends.pos, |f| f.pos);
                self.out.error(pos, format!("service `{name}`: extends {why}")).hint = Some("keep extended files inside the stack directory".into());
                return None;
            }
        };
        if !self.files.contains_key(&path) {
            let tree = (self.read_file)(&path);
            self.files.insert(path.clone(), tree);
        }
        let mut services: Vec<Entry> = self.files.get(&path)?.as_ref()?.get("services").and_then(Node::as_map).unwrap_or(&[]).to_vec();
        let file_dir = Path::new(file).parent().unwrap_or(Path::new(""));
        services.iter_mut().for_each(|entry| rebase_paths(&mut entry.value, file_dir));
        if !services.iter().any(|e| e.key == base_name) {
            let pos = extends.get("service").map_or(extends.pos, |s| s.pos);
            let diagnostic = self.out.error(pos, format!("service `{name}` extends `{base_name}`, which `{file}` does not define"));
            diagnostic.hint = did_you_mean(base_name, services.iter().map(|e| e.key.as_str())).map(|s| format!("did you mean `{s}`?"));
            return None;
        }
        // The other file's services are their own namespace: a separate `done` map.
        let mut done = BTreeMap::new();
        self.resolve_local(file, &services, base_name, &mut done, chain)
    }
}

/// Makes the relative paths of a service read from a file in `dir` (relative to the stack
/// directory) relative to the stack directory.
fn rebase_paths(service: &mut Node, dir: &Path) {
    if dir.as_os_str().is_empty() {
        return;
    }
    let Value::Map(entries) = &mut service.value else { return };
    for entry in entries {
        let value = &mut entry.value;
        match entry.key.as_str() {
            "build" => match value.value {
                Value::Scalar(_) => rebase_scalar(value, dir),
                _ => rebase_field(value, "context", dir),
            },
            "env_file" => for_each_item(value, |item| match item.value {
                Value::Scalar(_) => rebase_scalar(item, dir),
                _ => rebase_field(item, "path", dir),
            }),
            "volumes" => for_each_item(value, |item| {
                if item.get("type").and_then(Node::as_text) == Some("bind") {
                    return rebase_field(item, "source", dir);
                }
                // `./data:/data` is a bind mount; `data:/data` names a volume.
                if let Value::Scalar(scalar) = &mut item.value {
                    if scalar.text.starts_with('.') {
                        let (source, rest) = scalar.text.split_once(':').unwrap_or((&scalar.text, ""));
                        let rebased = rebase(dir, source);
                        scalar.text = if rest.is_empty() { rebased } else { format!("{rebased}:{rest}") };
                    }
                }
            }),
            "extends" => rebase_field(value, "file", dir),
            _ => {}
        }
    }
}

fn for_each_item(node: &mut Node, mut each: impl FnMut(&mut Node)) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(each),
        _ => each(node),
    }
}

fn rebase_field(node: &mut Node, key: &str, dir: &Path) {
    if let Value::Map(entries) = &mut node.value {
        if let Some(entry) = entries.iter_mut().find(|e| e.key == key) {
            rebase_scalar(&mut entry.value, dir);
        }
    }
}

fn rebase_scalar(node: &mut Node, dir: &Path) {
    if let Value::Scalar(scalar) = &mut node.value {
        scalar.text = rebase(dir, &scalar.text);
    }
}

/// `dir` joined with `path`, lexically: `sub` + `./app` → `./sub/app`, `sub` + `../x` → `./x`.
/// Absolute and `~` paths are left as they are.
fn rebase(dir: &Path, path: &str) -> String {
    if path.starts_with('/') || path.starts_with('~') {
        return path.to_string();
    }
    if dir.is_absolute() {
        return dir.join(path).display().to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    for component in dir.components().chain(Path::new(path).components()) {
        match component {
            Component::CurDir => {}
            Component::ParentDir if parts.last().is_some_and(|last| last != "..") => {
                parts.pop();
            }
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    // A leading `.` keeps `./sub/data:/data` a bind mount rather than a volume name.
    match parts.first().map(String::as_str) {
        None => ".".into(),
        Some("..") => parts.join("/"),
        Some(_) => format!("./{}", parts.join("/")),
    }
}

/// The base without the keys `extends` never passes on.
fn not_inherited_removed(mut base: Node) -> Node {
    if let Value::Map(entries) = &mut base.value {
        entries.retain(|e| e.key != "depends_on" && e.key != "volumes_from");
    }
    base
}

fn without_extends(mut service: Node) -> Node {
    if let Value::Map(entries) = &mut service.value {
        entries.retain(|e| e.key != "extends");
    }
    service
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::source::{FileId, LineMap};
    use crate::spec::yaml::{parse, Limits};

    fn tree(text: &str) -> Node {
        parse(text, FileId(0), &LineMap::identity(), &Limits::default()).unwrap().unwrap()
    }

    fn resolved(text: &str) -> (serde_json::Value, Diagnostics) {
        let mut document = tree(text);
        let mut out = Diagnostics::default();
        resolve(&mut document, Path::new("."), &mut |_: &Path| None, &mut out);
        (document.to_json()["services"].clone(), out)
    }

    #[test]
    fn a_service_starts_from_its_base_and_overrides_it() {
        let (services, out) = resolved(
            "services:\n  base: {image: app, environment: [A=1, B=2], command: [run]}\n  web:\n    extends: base\n    environment: {B: '3'}\n    command: [serve]\n",
        );
        assert!(out.0.is_empty(), "{out:?}");
        assert_eq!(services["web"], serde_json::json!({"image": "app", "environment": {"A": "1", "B": "3"}, "command": ["serve"]}));
    }

    #[test]
    fn depends_on_and_volumes_from_are_not_inherited() {
        let (services, _) = resolved("services:\n  base: {image: a, depends_on: [db], volumes_from: [data]}\n  web: {extends: base}\n  db: {image: d}\n  data: {image: d}\n");
        assert_eq!(services["web"], serde_json::json!({"image": "a"}));
    }

    #[test]
    fn chains_resolve_bases_first() {
        let (services, _) = resolved("services:\n  c: {extends: {service: b}, user: c}\n  b: {extends: a, hostname: b}\n  a: {image: a}\n");
        assert_eq!(services["c"], serde_json::json!({"image": "a", "hostname": "b", "user": "c"}));
    }

    #[test]
    fn loops_and_unknown_bases_are_errors() {
        let (_, out) = resolved("services:\n  a: {extends: b, image: x}\n  b: {extends: a}\n  c: {extends: bb}\n");
        let messages: Vec<&str> = out.0.iter().map(|d| d.message.as_str()).collect();
        assert!(messages.iter().any(|m| m.contains("loops: a -> b -> a")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("unknown service `bb`")), "{messages:?}");
    }
}
