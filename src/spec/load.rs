//! Runs the loading phases in order over one stack and its overlays (see the [`super`] docs).

use super::convert::{convert, ConvertInput};
use super::files::{check_stack_name, discover, StackFile};
use super::interpolate::{interpolate, InterpolationError, Lookup};
use crate::model::stack::Stack;
use super::source::{LineMap, Sources};
use super::yaml::{self, Entry, Limits, Node, Value};
use super::{dotenv, extends, merge, schema, template, validate, values};
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

/// The name a stack deploys under, from its files' names alone: what `down` and `status` need,
/// also when the stack's files do not load any more.
pub fn stack_name(options: &LoadOptions) -> Result<String, Diagnostics> {
    let mut out = Diagnostics::default();
    let name = discover(&options.path).map_err(|d| out.push(d)).ok().and_then(|files| names(options, &files, &mut out));
    name.map(|(_, name)| name).filter(|_| !out.has_errors()).ok_or(out)
}

/// The name the stack calls itself (it picks overlay patches) and the name it deploys under
/// (`--name` only renames the deployment). A name someone wrote (`--name`, `name:`) must
/// already be valid; one derived from the directory is normalised, and a warning says so.
fn names(options: &LoadOptions, files: &super::files::StackFiles, out: &mut Diagnostics) -> Option<(String, String)> {
    let declared = files.files.iter().find(|f| f.layer.is_none()).and_then(|f| declared_name(&f.path));
    let own_name = match &declared {
        Some(declared) => declared.clone(),
        None => files.default_name.clone(),
    };
    let (name, written) = match (&options.name, &declared) {
        (Some(requested), _) => (requested.clone(), Some("--name")),
        (None, Some(declared)) => (declared.clone(), Some("name:")),
        (None, None) => (files.default_name.clone(), None),
    };
    if let Err(why) = check_stack_name(&name) {
        let message = match written {
            Some(source) => format!("`{source} {name}`: {why}"),
            None => format!("the stack at `{}` would be named `{name}`: {why}", options.path.display()),
        };
        out.push(Diagnostic::error(None, message).with_hint("stack names are lowercase letters, digits, `-` and `_`, starting with a letter or digit (compose's rule); pass a valid `--name NAME`"));
        return None;
    }
    if written.is_none() && files.raw_name != name {
        out.warning(None, format!("the stack is named `{name}`, from the directory name `{}`", files.raw_name)).hint =
            Some("stack names are lowercase letters, digits, `-` and `_`; pass `--name NAME` to choose another".into());
    }
    Some((own_name, name))
}

fn load_into(
    options: &LoadOptions,
    environment: &dyn Lookup,
    sources: &mut Sources,
    out: &mut Diagnostics,
) -> Option<(Stack, DependencyGraph, Node)> {
    let files = discover(&options.path).map_err(|d| out.push(d)).ok()?;
    let dir = files.dir.clone();

    let (own_name, name) = names(options, &files, out)?;

    let values = load_values(&dir, options, sources, out);
    let context = template::context(&values, &name);
    let variables = load_dotenv(&dir, environment, sources, out);
    let lookup = |key: &str| environment.get(key).or_else(|| variables.get(key).cloned());
    // Unresolved variables are reported, and loading goes on so every other problem is found too;
    // other errors at the very place of an unresolved variable are its consequences and dropped.
    let mut interpolation = Diagnostics::default();
    let mut unreadable = false;

    let mut document: Option<Node> = None;
    let mut service_layers: BTreeMap<String, String> = BTreeMap::new();
    let mut defined_at: BTreeMap<String, super::source::Pos> = BTreeMap::new();
    let mut layers: Vec<String> = Vec::new();
    for StackFile { path, layer } in &files.files {
        let Some(tree) = read_tree(path, &context, &lookup, sources, out, &mut interpolation) else {
            unreadable = true;
            continue;
        };
        let mut tree = tree;
        if let Value::Map(top) = &mut tree.value {
            if let Some(Value::Map(services)) = top.iter_mut().find(|e| e.key == "services").map(|e| &mut e.value.value) {
                services.retain(|entry| {
                    if let Some(first) = defined_at.get(&entry.key) {
                        out.error(entry.key_pos, format!("service `{}` is defined twice", entry.key)).hint =
                            Some(format!("it is also defined at {}; keep one definition (use an overlay to change it)", sources.locate(*first)));
                        return false;
                    }
                    defined_at.insert(entry.key.clone(), entry.key_pos);
                    if let Some(layer) = layer {
                        service_layers.insert(entry.key.clone(), layer.name.clone());
                    }
                    true
                });
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
                match read_tree(&patch, &context, &lookup, sources, out, &mut interpolation) {
                    Some(tree) => document = document.map(|base| merge::merge(base, tree, &[])),
                    None => unreadable = true,
                }
            }
        }
    }
    let finish = |out: &mut Diagnostics, interpolation: Diagnostics| {
        let failed: BTreeSet<super::source::Pos> = interpolation.0.iter().filter_map(|d| d.pos).collect();
        out.0.retain(|d| !(d.is_error() && d.pos.is_some_and(|p| failed.contains(&p))));
        out.extend(interpolation);
    };
    let Some(mut document) = document.filter(|_| !unreadable) else {
        finish(out, interpolation);
        return None;
    };
    let mut read_other = |path: &Path| read_tree(path, &context, &lookup, sources, out, &mut interpolation);
    let mut extends_out = Diagnostics::default();
    extends::resolve(&mut document, &dir, &mut read_other, &mut extends_out);
    out.extend(extends_out);
    schema::check_document(&document, &schema::TOP, out);
    set_name(&mut document, &name);
    let profiles: BTreeSet<String> = options.profiles.iter().cloned().collect();
    let input = ConvertInput {
        name: &name,
        dir: &dir,
        profiles: &profiles,
        template_context: &context,
        service_layers: &service_layers,
        layers: &layers,
        variables: &lookup,
    };
    let stack = convert(&document, &input, sources, out);
    if stack.services.is_empty() && stack.inactive.is_empty() {
        out.error(document.pos, "the stack defines no services").hint =
            Some("add services under a top-level `services:` key; to remove a deployed stack, use `swarmctl down`".into());
    } else if stack.services.is_empty() {
        out.error(document.pos, format!("no service is active: each has a profile ({}) and none is enabled", stack.inactive.iter().cloned().collect::<Vec<_>>().join(", "))).hint =
            Some("enable one with `--profile NAME`; to remove a deployed stack, use `swarmctl down`".into());
    }
    validate::validate(&stack, out);
    let graph = DependencyGraph::build(&stack).map_err(|d| out.push(d)).ok();
    finish(out, interpolation);
    Some((stack, graph?, document))
}

/// A top-level `name:` read without rendering (it names the stack for templates and overlays).
fn declared_name(path: &Path) -> Option<String> {
    let text = super::read::text(path).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("name:"))
        .map(|v| v.split(" #").next().unwrap_or(v).trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty() && !v.contains("{{") && !v.contains('$'))
}

fn set_name(document: &mut Node, name: &str) {
    let pos = document.pos;
    if let Value::Map(entries) = &mut document.value {
        entries.retain(|e| e.key != "name");
        entries.insert(0, Entry { key: "name".into(), key_pos: pos, value: Node::scalar(name, pos) });
    }
}

/// Reads one stack or patch file: template, YAML, interpolation (whose errors go to
/// `interpolation`; the tree is still returned). `None` when the file could not be parsed.
fn read_tree(
    path: &Path,
    context: &serde_json::Value,
    lookup: &dyn Lookup,
    sources: &mut Sources,
    out: &mut Diagnostics,
    interpolation: &mut Diagnostics,
) -> Option<Node> {
    let text = read_bounded(path, out)?;
    let file = sources.add(path, text.as_str());
    let rendered = match template::render(&text, file, context, template::Output::Yaml) {
        Ok(rendered) => rendered,
        Err(diagnostics) => {
            diagnostics.into_iter().for_each(|d| out.push(d));
            return None;
        }
    };
    let mut tree = match yaml::parse(&rendered.text, file, &rendered.lines, &Limits::default()) {
        Ok(Some(tree)) => tree,
        Ok(None) => Node { value: Value::Map(Vec::new()), pos: super::source::Pos { file, line: 1, col: 1 }, tag: None },
        Err(diagnostic) => {
            out.push(diagnostic);
            return None;
        }
    };
    if tree.as_map().is_none() {
        out.error(tree.pos, format!("a stack file must be a mapping with `services:`, not {}", tree.kind_name()));
        return None;
    }
    interpolate_tree(&mut tree, lookup, sources, interpolation);
    template::substitute_literals(&mut tree, &rendered.literals);
    Some(tree)
}

/// Reads a text file the stack is made of; every problem is a diagnostic.
fn read_bounded(path: &Path, out: &mut Diagnostics) -> Option<String> {
    match super::read::text(path) {
        Ok(text) => Some(text),
        Err(why) => {
            let hint = match why {
                super::read::ReadError::TooBig { .. } => "split the stack into several files, or remove generated content",
                _ => "stack, values and overlay files are regular UTF-8 text files",
            };
            out.push(Diagnostic::error(None, format!("cannot read `{}`: {why}", super::source::display_path(path).display())).with_hint(hint));
            None
        }
    }
}

/// `${VAR}` in every scalar value (not keys); an error points at the variable in the line.
fn interpolate_tree(node: &mut Node, lookup: &dyn Lookup, sources: &Sources, out: &mut Diagnostics) {
    match &mut node.value {
        Value::Scalar(scalar) => {
            if scalar.text.contains('$') {
                match interpolate(&scalar.text, lookup) {
                    Ok(text) => {
                        scalar.text = text;
                        // `KEY: ${EMPTY}` is an empty string, as compose reads it, not a null.
                        if scalar.typed() == super::yaml::Typed::Null {
                            scalar.plain = false;
                        }
                    }
                    Err(e) => {
                        let (pos, hint) = match &e {
                            InterpolationError::Unset { name } => (
                                variable_pos(sources, node.pos, name),
                                format!("set `{name}` in the environment or the stack's `.env`, or write `${{{name}:-default}}`; `$$` is a literal `$`"),
                            ),
                            InterpolationError::Required { name, .. } => {
                                (variable_pos(sources, node.pos, name), format!("set `{name}` in the environment or the stack's `.env`"))
                            }
                            InterpolationError::Syntax { .. } => {
                                (node.pos, "variables are `$NAME`, `${NAME}` or `${NAME:-default}`; write `$$` for a literal `$`".to_string())
                            }
                        };
                        out.push(Diagnostic::error(pos, e.to_string()).with_hint(hint));
                    }
                }
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| interpolate_tree(i, lookup, sources, out)),
        Value::Map(entries) => entries
            .iter_mut()
            .filter(|e| !e.key.starts_with("x-") || e.key == "x-kind" || e.key == "x-rollout")
            .for_each(|e| interpolate_tree(&mut e.value, lookup, sources, out)),
    }
}

/// Where `$name` / `${name` is written on the scalar's line, from the scalar's column on; the
/// scalar's own position when it cannot be found (a multi-line or templated value).
fn variable_pos(sources: &Sources, pos: super::source::Pos, name: &str) -> super::source::Pos {
    let line = sources.get(pos.file).line(pos.line);
    let from: usize = line.chars().take(pos.col.saturating_sub(1) as usize).map(char::len_utf8).sum();
    let rest = line.get(from..).unwrap_or("");
    let found = [format!("${{{name}"), format!("${name}")].iter().filter_map(|needle| {
        rest.match_indices(needle.as_str()).map(|(at, _)| at).find(|&at| {
            // `$$NAME` is a literal, not this variable; `$NAMES` is another variable.
            let escaped = rest[..at].ends_with('$') && !rest[..at].ends_with("$$");
            let after = rest[at + needle.len()..].chars().next();
            !escaped && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }).min();
    match found {
        Some(at) => super::source::Pos { col: pos.col + rest[..at].chars().count() as u32, ..pos },
        None => pos,
    }
}

/// values.yaml, overlays' values.yaml, --values, --set, each over the last.
fn load_values(dir: &Path, options: &LoadOptions, sources: &mut Sources, out: &mut Diagnostics) -> serde_json::Value {
    let mut merged = serde_json::json!({});
    let mut files: Vec<PathBuf> = vec![dir.join("values.yaml")];
    files.extend(options.overlays.iter().map(|o| o.join("values.yaml")));
    let explicit: Vec<PathBuf> = options.values_files.clone();
    for (path, required) in files.into_iter().map(|p| (p, false)).chain(explicit.into_iter().map(|p| (p, true))) {
        let text = match super::read::text(&path) {
            Ok(text) => text,
            Err(super::read::ReadError::Missing) if !required => continue,
            Err(why) => {
                out.error(None, format!("cannot read values file `{}`: {why}", path.display()));
                continue;
            }
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
    let text = match super::read::text(&path) {
        Ok(text) => text,
        Err(super::read::ReadError::Missing) => return BTreeMap::new(),
        Err(why) => {
            // Ignoring it would let every default apply without a word.
            out.error(None, format!("cannot read `{}`: {why}", super::source::display_path(&path).display())).hint =
                Some("make `.env` a readable UTF-8 file of `KEY=value` lines, or remove it".into());
            return BTreeMap::new();
        }
    };
    let parsed = dotenv::parse(&text, environment);
    if !parsed.errors.is_empty() {
        let file = sources.add_sensitive(&path, text.as_str());
        for (line, why) in parsed.errors {
            out.error(super::source::Pos { file, line, col: 1 }, format!(".env: {why}")).hint =
                Some("`.env` lines are `KEY=value`, `export KEY=value` or `# comment`".into());
        }
    }
    parsed.vars
}
