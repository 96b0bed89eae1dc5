//! Runs the loading phases in order over one stack and its overlays (see the [`super`] docs).

use super::convert::{convert, ConvertInput};
use super::files::{discover, normalize_name, StackFile};
use super::interpolate::{interpolate, InterpolationError, Lookup};
use super::model::Stack;
use super::source::{LineMap, Sources};
use super::yaml::{self, Entry, Limits, Node, Value};
use super::{dotenv, merge, schema, template, validate, values};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::graph::DependencyGraph;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What the user asked to load: the stack argument and the options every command shares.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A stack directory or a compose file.
    pub path: PathBuf,
    pub overlays: Vec<PathBuf>,
    pub values_files: Vec<PathBuf>,
    /// `key.path=value`, highest precedence.
    pub set: Vec<String>,
    pub profiles: Vec<String>,
    /// Overrides the stack name (like compose `-p`).
    pub name: Option<String>,
}

/// A stack that loaded, with what it was loaded from.
#[derive(Debug)]
pub struct Loaded {
    pub stack: Stack,
    pub graph: DependencyGraph,
    /// The merged, interpolated document (for `render`).
    pub document: Node,
    pub sources: Sources,
    /// Warnings only; errors make loading fail.
    pub warnings: Diagnostics,
}

/// Loading failed: every problem found, and the files they point into.
#[derive(Debug)]
pub struct LoadFailure {
    pub diagnostics: Diagnostics,
    pub sources: Sources,
}

/// Loads, merges, validates. `environment` is the process environment (injected for tests).
pub fn load(options: &LoadOptions, environment: &dyn Lookup) -> Result<Loaded, LoadFailure> {
    let mut sources = Sources::default();
    let mut out = Diagnostics::default();
    let result = load_into(options, environment, &mut sources, &mut out);
    match result {
        Some((stack, graph, document)) if !out.has_errors() => Ok(Loaded { stack, graph, document, sources, warnings: out.sorted() }),
        _ => Err(LoadFailure { diagnostics: out.sorted(), sources }),
    }
}

fn load_into(
    options: &LoadOptions,
    environment: &dyn Lookup,
    sources: &mut Sources,
    out: &mut Diagnostics,
) -> Option<(Stack, DependencyGraph, Node)> {
    let files = discover(&options.path).map_err(|d| out.push(d)).ok()?;
    let dir = files.dir.clone();

    // The name the stack calls itself picks overlay patches; --name only renames the deployment.
    let own_name = files.files.iter().find(|f| f.layer.is_none()).and_then(|f| declared_name(&f.path)).unwrap_or_else(|| files.default_name.clone());
    let name = options.name.clone().map(|n| normalize_name(&n)).unwrap_or_else(|| own_name.clone());

    let values = load_values(&dir, options, sources, out);
    let context = template::context(&values, &name);
    let variables = load_dotenv(&dir, environment, sources, out);
    let lookup = |key: &str| environment.get(key).or_else(|| variables.get(key).cloned());

    let mut document: Option<Node> = None;
    let mut service_layers: BTreeMap<String, String> = BTreeMap::new();
    let mut defined_at: BTreeMap<String, super::source::Pos> = BTreeMap::new();
    let mut layers: Vec<String> = Vec::new();
    for StackFile { path, layer } in &files.files {
        let Some(tree) = read_tree(path, &context, &lookup, sources, out) else { continue };
        for entry in tree.get("services").and_then(Node::as_map).unwrap_or(&[]) {
            if let Some(first) = defined_at.get(&entry.key) {
                out.error(entry.key_pos, format!("service `{}` is defined twice", entry.key)).hint =
                    Some(format!("it is also defined at {}; keep one definition (use an overlay to change it)", sources.locate(*first)));
                continue;
            }
            defined_at.insert(entry.key.clone(), entry.key_pos);
            if let Some(layer) = layer {
                service_layers.insert(entry.key.clone(), layer.name.clone());
            }
        }
        if let Some(layer) = layer {
            if !layers.contains(&layer.name) {
                layers.push(layer.name.clone());
            }
        }
        document = Some(match document {
            None => tree,
            Some(base) => merge::merge(base, tree, &[]),
        });
    }
    for overlay in &options.overlays {
        if !overlay.is_dir() {
            out.error(None, format!("overlay `{}` is not a directory", overlay.display()));
            continue;
        }
        for file_name in [format!("{own_name}.yaml"), format!("{own_name}.yml")] {
            let patch = overlay.join(&file_name);
            if patch.is_file() {
                if let Some(tree) = read_tree(&patch, &context, &lookup, sources, out) {
                    document = document.map(|base| merge::merge(base, tree, &[]));
                }
            }
        }
    }
    let mut document = document?;
    if out.has_errors() {
        return None;
    }
    schema::check(&document, &schema::TOP, "", out);
    set_name(&mut document, &name);
    let profiles: BTreeSet<String> = options.profiles.iter().cloned().collect();
    let input = ConvertInput { name: &name, dir: &dir, profiles: &profiles, template_context: &context, service_layers: &service_layers, layers: &layers };
    let stack = convert(&document, &input, sources, out);
    validate::validate(&stack, out);
    let graph = DependencyGraph::build(&stack).map_err(|d| out.push(d)).ok()?;
    Some((stack, graph, document))
}

/// A top-level `name:` read without rendering (it names the stack for templates and overlays).
fn declared_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("name:"))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty() && !v.contains("{{") && !v.contains('$'))
        .map(|v| normalize_name(&v))
}

fn set_name(document: &mut Node, name: &str) {
    let pos = document.pos;
    if let Value::Map(entries) = &mut document.value {
        entries.retain(|e| e.key != "name");
        entries.insert(0, Entry { key: "name".into(), key_pos: pos, value: Node::scalar(name, pos) });
    }
}

/// Reads one stack or patch file: template, YAML, interpolation.
fn read_tree(path: &Path, context: &serde_json::Value, lookup: &dyn Lookup, sources: &mut Sources, out: &mut Diagnostics) -> Option<Node> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            out.error(None, format!("cannot read `{}`: {e}", path.display()));
            return None;
        }
    };
    let file = sources.add(path, text.as_str());
    let rendered = match template::render(&text, file, context) {
        Ok(rendered) => rendered,
        Err(diagnostics) => {
            diagnostics.into_iter().for_each(|d| out.push(d));
            return None;
        }
    };
    let mut tree = match yaml::parse(&rendered.text, file, &rendered.lines, &Limits::default()) {
        Ok(Some(tree)) => tree,
        Ok(None) => return None,
        Err(diagnostic) => {
            out.push(diagnostic);
            return None;
        }
    };
    if tree.as_map().is_none() {
        out.error(tree.pos, format!("a stack file must be a mapping with `services:`, not {}", tree.kind_name()));
        return None;
    }
    interpolate_tree(&mut tree, lookup, out);
    Some(tree)
}

/// `${VAR}` in every scalar value (not keys), errors at the scalar's position.
fn interpolate_tree(node: &mut Node, lookup: &dyn Lookup, out: &mut Diagnostics) {
    match &mut node.value {
        Value::Scalar(scalar) => {
            if scalar.text.contains('$') {
                match interpolate(&scalar.text, lookup) {
                    Ok(text) => scalar.text = text,
                    Err(e) => {
                        let hint = match &e {
                            InterpolationError::Unset { name } => Some(format!("set `{name}` in the environment or the stack's `.env`, or write `${{{name}:-default}}`; `$$` is a literal `$`")),
                            _ => None,
                        };
                        out.push(Diagnostic { hint, ..Diagnostic::error(node.pos, e.to_string()) });
                    }
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| interpolate_tree(i, lookup, out)),
        Value::Map(entries) => entries
            .iter_mut()
            .filter(|e| !e.key.starts_with("x-") || e.key == "x-kind" || e.key == "x-rollout")
            .for_each(|e| interpolate_tree(&mut e.value, lookup, out)),
    }
}

/// values.yaml, overlays' values.yaml, --values, --set, each over the last.
fn load_values(dir: &Path, options: &LoadOptions, sources: &mut Sources, out: &mut Diagnostics) -> serde_json::Value {
    let mut merged = serde_json::json!({});
    let mut files: Vec<PathBuf> = vec![dir.join("values.yaml")];
    files.extend(options.overlays.iter().map(|o| o.join("values.yaml")));
    let explicit: Vec<PathBuf> = options.values_files.clone();
    for (path, required) in files.into_iter().map(|p| (p, false)).chain(explicit.into_iter().map(|p| (p, true))) {
        if !path.is_file() {
            if required {
                out.error(None, format!("values file `{}` does not exist", path.display()));
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            out.error(None, format!("cannot read values file `{}`", path.display()));
            continue;
        };
        let file = sources.add(&path, text.as_str());
        match yaml::parse(&text, file, &LineMap::identity(), &Limits::default()) {
            Ok(Some(tree)) if tree.as_map().is_some() => values::merge(&mut merged, tree.to_json()),
            Ok(None) => {}
            Ok(Some(tree)) => {
                out.error(tree.pos, "a values file must be a mapping");
            }
            Err(d) => out.push(d),
        }
    }
    for assignment in &options.set {
        match values::parse_set(assignment) {
            Ok(value) => values::merge(&mut merged, value),
            Err(why) => out.push(Diagnostic::error(None, why).with_hint("write `--set key.path=value`, e.g. `--set web.replicas=3`")),
        }
    }
    merged
}

fn load_dotenv(dir: &Path, environment: &dyn Lookup, sources: &mut Sources, out: &mut Diagnostics) -> BTreeMap<String, String> {
    let path = dir.join(".env");
    let Ok(text) = std::fs::read_to_string(&path) else { return BTreeMap::new() };
    match dotenv::parse(&text, environment) {
        Ok(vars) => vars,
        Err((line, why)) => {
            let file = sources.add(&path, text.as_str());
            out.error(super::source::Pos { file, line, col: 1 }, format!(".env: {why}"));
            BTreeMap::new()
        }
    }
}
