//! `docs/compose-keys.md` against the code: its tables list exactly the keys the loader knows
//! (the schema in `spec::schema`, the single list the loader checks files against), and what
//! the service table says is a warning, a plan note or a refusal is what swarmctl does.

use std::collections::{BTreeMap, BTreeSet};
use swarmctl::engine::fake_swarm::FakeSwarmEngine;
use swarmctl::engine::SwarmEngine;
use swarmctl::plan::swarm::{candidate_names, plan};
use swarmctl::plan::PlanOptions;
use swarmctl::spec::schema::{Shape, TOP};
use swarmctl::spec::{load, LoadOptions};

const DOC: &str = "docs/compose-keys.md";

const SERVICES: &str = "Service keys";
const DEPLOY: &str = "`deploy` keys";
const TOP_LEVEL: &str = "Top-level keys";
const NETWORKS: &str = "`networks.<name>`";
const VOLUMES: &str = "`volumes.<name>`";
const FILES: &str = "`configs.<name>` and `secrets.<name>`";

/// What a target cell may start with (see the legend in the document).
const STATUSES: [&str; 6] = ["yes", "differs", "warning", "note", "silent", "error"];

fn doc() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One table row: the key in its first column and the other cells.
#[derive(Debug)]
struct Row {
    key: String,
    cells: Vec<String>,
}

/// The rows of every table, by the heading above it. A first cell that is not one backticked
/// key is a problem (tables under headings not checked here, such as the legend, are skipped).
fn tables(doc: &str, problems: &mut Vec<String>) -> BTreeMap<String, Vec<Row>> {
    let mut tables: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut heading = String::new();
    for (number, line) in doc.lines().enumerate() {
        if let Some(title) = line.strip_prefix('#') {
            heading = title.trim_start_matches('#').trim().to_string();
            continue;
        }
        if !line.starts_with('|') || !sections().iter().any(|(name, _)| *name == heading) {
            continue;
        }
        let cells: Vec<String> = line.trim().trim_matches('|').split('|').map(|c| c.trim().to_string()).collect();
        let first = &cells[0];
        if first == "key" || first.chars().all(|c| matches!(c, '-' | ':' | ' ')) {
            continue;
        }
        match first.strip_prefix('`').and_then(|k| k.strip_suffix('`')).filter(|k| !k.contains('`')) {
            Some(key) => tables.entry(heading.clone()).or_default().push(Row { key: key.to_string(), cells: cells[1..].to_vec() }),
            None => problems.push(format!("{DOC}:{}: the first column must be one `key`, not {first:?}", number + 1)),
        }
    }
    tables
}

// ---------------------------------------------------------------- the schema

/// The fields of the mapping a value of `shape` may be.
fn fields(shape: &'static Shape) -> &'static [(&'static str, Shape)] {
    match shape {
        Shape::Map(fields) => fields,
        Shape::Optional(inner) | Shape::List(inner) => fields(inner),
        Shape::OneOf(shapes) => shapes.iter().map(fields).find(|f| !f.is_empty()).unwrap_or(&[]),
        _ => &[],
    }
}

fn field(shape: &'static Shape, name: &str) -> Option<&'static Shape> {
    fields(shape).iter().find(|(key, _)| *key == name).map(|(_, shape)| shape)
}

/// The shape of each entry of a mapping with names of the user's choosing (`services:`).
fn entry(shape: &'static Shape) -> &'static Shape {
    match shape {
        Shape::Dict(value) => entry(value),
        Shape::Optional(inner) => entry(inner),
        other => other,
    }
}

fn top_entry(key: &str) -> &'static Shape {
    entry(field(&TOP, key).unwrap_or_else(|| panic!("the schema has no top-level `{key}`")))
}

/// Each checked section of the document and the schema mapping it lists.
fn sections() -> [(&'static str, &'static Shape); 6] {
    let service = top_entry("services");
    [
        (SERVICES, service),
        (DEPLOY, field(service, "deploy").expect("services have `deploy`")),
        (TOP_LEVEL, &TOP),
        (NETWORKS, top_entry("networks")),
        (VOLUMES, top_entry("volumes")),
        (FILES, top_entry("configs")),
    ]
}

/// Whether a dotted path (`resources.limits.cpus`) names a key of `shape`.
fn resolves(shape: &'static Shape, path: &str) -> bool {
    let mut current = shape;
    for segment in path.split('.') {
        match field(current, segment) {
            Some(next) => current = next,
            None => return false,
        }
    }
    true
}

fn keys(shape: &'static Shape) -> BTreeSet<&'static str> {
    fields(shape).iter().map(|(key, _)| *key).collect()
}

// ---------------------------------------------------------------- coverage

/// Everything wrong between the document's tables and the schema.
fn coverage_problems(doc: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let tables = tables(doc, &mut problems);
    let configs: BTreeSet<&str> = keys(top_entry("configs"));
    if configs != keys(top_entry("secrets")) {
        problems.push("configs and secrets no longer take the same keys: give secrets a table of its own".into());
    }
    for (section, shape) in sections() {
        let Some(rows) = tables.get(section) else {
            problems.push(format!("{DOC} has no table under the heading {section:?}"));
            continue;
        };
        let mut seen = BTreeSet::new();
        for row in rows {
            if !seen.insert(row.key.as_str()) {
                problems.push(format!("{section}: `{}` is listed twice", row.key));
            }
            if !resolves(shape, &row.key) {
                problems.push(format!("{section}: `{}` is not a key the loader knows", row.key));
            }
            if section == SERVICES && row.key.contains('.') {
                problems.push(format!("{section}: `{}`: sub-keys are described in the key's row", row.key));
            }
            if row.cells.len() < 2 {
                problems.push(format!("{section}: `{}` needs a host and a swarm column", row.key));
            }
            for (target, cell) in ["host", "swarm"].iter().zip(&row.cells) {
                if !STATUSES.contains(&status(cell)) {
                    problems.push(format!("{section}: `{}`: the {target} cell must start with one of {STATUSES:?}, not {cell:?}", row.key));
                }
            }
        }
        let listed: BTreeSet<&str> = rows.iter().map(|r| r.key.split('.').next().unwrap_or_default()).collect();
        for key in keys(shape).difference(&listed) {
            problems.push(format!("{section}: `{key}` is a key the loader knows, and it is missing from {DOC}"));
        }
    }
    problems
}

/// The word a cell starts with: `**differs**: …` → `differs`.
fn status(cell: &str) -> &str {
    cell.trim_start_matches('*').split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default()
}

#[test]
fn the_tables_list_every_key_the_loader_knows_and_no_other() {
    let problems = coverage_problems(&doc());
    assert!(problems.is_empty(), "{DOC} is out of date with src/spec/schema.rs:\n  {}", problems.join("\n  "));
}

#[test]
fn a_missing_row_and_an_unknown_key_are_caught() {
    let doc = doc();
    let without_tty: String = doc.lines().filter(|l| !l.starts_with("| `tty` |")).map(|l| format!("{l}\n")).collect();
    let problems = coverage_problems(&without_tty);
    assert!(problems.iter().any(|p| p.contains("`tty` is a key the loader knows")), "{problems:?}");
    let misspelt = doc.replace("| `uts` |", "| `utz` |").replace("| `resources.limits.pids` |", "| `resources.limits.pid` |");
    let problems = coverage_problems(&misspelt);
    assert!(problems.iter().any(|p| p.contains("`utz` is not a key")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("`resources.limits.pid` is not a key")), "{problems:?}");
    let problems = coverage_problems(&doc.replace("| **warning** | **warning** |", "| warned | **warning** |"));
    assert!(problems.iter().any(|p| p.contains("the host cell must start with")), "{problems:?}");
}

// ---------------------------------------------------------------- behaviour

const IMAGE: &str = "swarmctl-test/testapp:latest";

/// A value of `shape` that loads, as flow YAML.
fn sample(shape: &Shape) -> String {
    match shape {
        Shape::Any | Shape::Str | Shape::StrOrList => "x".into(),
        Shape::Int | Shape::Number => "1".into(),
        Shape::Bool => "true".into(),
        Shape::Duration => "1s".into(),
        Shape::Size => "1m".into(),
        Shape::List(_) => "[]".into(),
        Shape::ListOrDict | Shape::Map(_) | Shape::Dict(_) => "{}".into(),
        Shape::OneOf(shapes) => sample(&shapes[0]),
        Shape::Optional(inner) => sample(inner),
    }
}

/// What swarmctl does with one service key set to a sample value.
#[derive(Debug, Default, PartialEq)]
struct Observed {
    warned: bool,
    swarm_refused: bool,
    swarm_noted: bool,
}

async fn observe(key: &str, shape: &Shape) -> Observed {
    let value = match key {
        "image" => None,
        "build" => Some(".".to_string()),
        "extends" => Some("other".to_string()),
        "env_file" => Some("[{path: none.env, required: false}]".to_string()),
        // An empty list asks for nothing a swarm would refuse; one entry does.
        "devices" => Some("[/dev/fuse]".to_string()),
        "security_opt" => Some("[no-new-privileges:true]".to_string()),
        "volumes_from" => Some("[other]".to_string()),
        _ => Some(sample(shape)),
    };
    let line = value.map(|v| format!("    {key}: {v}\n")).unwrap_or_default();
    let yaml = format!("name: probe\nservices:\n  other:\n    image: {IMAGE}\n  s:\n    image: {IMAGE}\n{line}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), &yaml).unwrap();
    let options = LoadOptions { path: dir.path().to_path_buf(), ..LoadOptions::default() };
    let loaded = load(&options, &|_: &str| None::<String>)
        .unwrap_or_else(|f| panic!("`{key}` set to a sample value must load:\n{yaml}\n{:?}", f.diagnostics));
    let mentions = |message: &str| message.contains(&format!("`{key}`"));
    let warned = loaded.warnings.0.iter().any(|d| mentions(&d.message) && d.message.contains("accepted but not acted on"));
    let engine = FakeSwarmEngine::new();
    engine.add_image(IMAGE);
    let observed = engine.observe(&loaded.stack.name, &candidate_names(&loaded.stack)).await.unwrap();
    let (swarm_refused, swarm_noted) = match plan(&loaded.stack, &loaded.graph, &observed, &PlanOptions::default()) {
        Ok(planned) => (false, planned.notes.iter().any(|n| mentions(n))),
        Err(error) => (error.problems.iter().any(|d| mentions(&d.message)), false),
    };
    Observed { warned, swarm_refused, swarm_noted }
}

#[tokio::test]
async fn the_service_tables_warnings_notes_and_errors_are_what_swarmctl_does() {
    let mut problems = Vec::new();
    let tables = tables(&doc(), &mut problems);
    let rows: BTreeMap<&str, &Row> = tables.get(SERVICES).map(|rows| rows.iter().map(|r| (r.key.as_str(), r)).collect()).unwrap_or_default();
    for (key, shape) in fields(top_entry("services")) {
        let Some(row) = rows.get(key) else { continue }; // reported by the coverage test
        let (host, swarm) = (status(&row.cells[0]), status(&row.cells[1]));
        let said = Observed { warned: host == "warning", swarm_refused: swarm == "error", swarm_noted: swarm == "note" };
        if (host == "warning") != (swarm == "warning") {
            problems.push(format!("`{key}`: a load warning is the same on both targets, the table says host {host:?}, swarm {swarm:?}"));
        }
        let done = observe(key, shape).await;
        if said != done {
            problems.push(format!("`{key}`: the table says host {host:?}, swarm {swarm:?}; swarmctl does {done:?}"));
        }
    }
    assert!(problems.is_empty(), "{DOC} says otherwise than the code:\n  {}", problems.join("\n  "));
}
