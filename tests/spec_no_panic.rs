//! No input makes the loader panic: arbitrary bytes, and every fixture mutated the ways hand
//! edits and hostile files go wrong (cut, duplicated and swapped lines, stray YAML and template
//! punctuation, shifted indentation), fed to `spec::load` as the stack file, its `values.yaml`
//! and its `.env`. Whatever comes back — a stack, or diagnostics — is also rendered (document,
//! graph drawings, every diagnostic with its excerpt), since printing is where a bad position
//! would panic.

mod spec_support;

use proptest::prelude::*;
use spec_support as support;
use std::path::{Path, PathBuf};
use swarmctl::spec::{load, render, LoadOptions};

/// Loads the stack in `dir` and renders everything a command could print.
fn load_and_print(dir: &Path) {
    let options = LoadOptions { path: dir.to_path_buf(), set: vec!["web.replicas=2".into()], ..LoadOptions::default() };
    let environment = |name: &str| match name {
        "TAG" => Some("1.0".to_string()),
        "EMPTY" => Some(String::new()),
        _ => None,
    };
    match load(&options, &environment) {
        Ok(loaded) => {
            let document = render::document(&loaded);
            let _ = render::to_yaml(&document);
            let _ = loaded.graph.to_text();
            let _ = loaded.graph.to_dot();
            let _ = loaded.graph.to_mermaid();
            for warning in &loaded.warnings.0 {
                let _ = warning.render(&loaded.sources, true);
            }
        }
        Err(failure) => {
            for diagnostic in &failure.diagnostics.0 {
                let _ = diagnostic.render(&failure.sources, true);
                let _ = diagnostic.render(&failure.sources, false);
            }
        }
    }
}

/// Every YAML file of the fixtures, as seeds for mutation.
fn seeds() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") && path.metadata().is_ok_and(|m| m.len() < 64 * 1024) {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&support::fixture_root(), &mut paths);
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
    Dedent(usize),
    Insert(usize, String),
    Truncate(usize),
    /// The file ends without its last line break (a block scalar's last line then ends the input).
    NoFinalLineBreak,
}

/// What hand edits and hostile files add: YAML indicators, template and interpolation syntax.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            ":", ": ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: *a", "!reset ", "!override ", "!", "!!str", "\\", "|", ">", "|+", "'", "\"", "#", "%", "@", "`",
            "\t", "\n", "\n  ", "---\n", "{{", "}}", "{{#each values.x}}", "{{/each}}", "{{ values.web.replicas }}", "{{else}}", "{{.Task.Slot}}",
            "{{ toYaml values }}", "$", "${", "${TAG", "${TAG:-${EMPTY:?x}}", "$$", "\u{feff}", "\u{E001}", "é", "🦀", "\r\n", "~", "null", "-1",
            "0x", "1e999", "99999999999999999999", "depends_on: [web]", "x-kind: job", "replicas: -3", "file: ../../etc/passwd",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let line = 0usize..200;
    prop_oneof![
        line.clone().prop_map(Mutation::DeleteLine),
        line.clone().prop_map(Mutation::DuplicateLine),
        (line.clone(), line.clone()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (line.clone(), 1usize..6).prop_map(|(l, n)| Mutation::Indent(l, n)),
        line.clone().prop_map(Mutation::Dedent),
        (0usize..4000, fragment()).prop_map(|(at, text)| Mutation::Insert(at, text)),
        (0usize..4000).prop_map(Mutation::Truncate),
        Just(Mutation::NoFinalLineBreak),
    ]
}

fn apply(text: &str, mutation: &Mutation) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len().max(1);
    match mutation {
        Mutation::DeleteLine(i) => {
            if !lines.is_empty() {
                lines.remove(i % n.min(lines.len()));
            }
        }
        Mutation::DuplicateLine(i) => {
            let line = lines.get(i % n).cloned().unwrap_or_default();
            lines.insert(i % n, line);
        }
        Mutation::SwapLines(a, b) => {
            let len = lines.len();
            if len > 1 {
                lines.swap(a % len, b % len);
            }
        }
        Mutation::Indent(i, by) => {
            if let Some(line) = lines.get_mut(i % n) {
                line.insert_str(0, &" ".repeat(*by));
            }
        }
        Mutation::Dedent(i) => {
            if let Some(line) = lines.get_mut(i % n) {
                *line = line.trim_start().to_string();
            }
        }
        Mutation::Insert(at, fragment) => {
            let joined = lines.join("\n");
            let at = (0..=joined.len().min(*at)).rev().find(|i| joined.is_char_boundary(*i)).unwrap_or(0);
            return format!("{}{fragment}{}", &joined[..at], &joined[at..]);
        }
        Mutation::Truncate(at) => {
            let joined = lines.join("\n");
            let at = (0..=joined.len().min(*at)).rev().find(|i| joined.is_char_boundary(*i)).unwrap_or(0);
            return joined[..at].to_string();
        }
        Mutation::NoFinalLineBreak => return lines.join("\n").trim_end_matches(['\n', '\r']).to_string(),
    }
    lines.join("\n")
}

fn cases() -> u32 {
    std::env::var("SWARMCTL_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), &bytes).unwrap();
        load_and_print(dir.path());
    }

    #[test]
    fn mutated_fixtures_never_panic(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
        values_mutations in prop::collection::vec(mutation(), 0..3),
        dotenv in "([A-Z_]{1,6}=[ -~]{0,10}\n){0,4}[ -~]{0,20}",
    ) {
        let seeds = seeds();
        let original = &seeds[seed.index(seeds.len())];
        let stack = mutations.iter().fold(original.clone(), |text, m| apply(&text, m));
        let values = values_mutations.iter().fold("web:\n  replicas: 2\n  tag: '1'\nx: [a, b]\n".to_string(), |text, m| apply(&text, m));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("stack.yaml"), stack).unwrap();
        std::fs::write(dir.path().join("values.yaml"), values).unwrap();
        std::fs::write(dir.path().join(".env"), dotenv).unwrap();
        load_and_print(dir.path());
    }
}

/// YAML syntax a parser must scan to its end: block scalars of every style, quoted scalars with
/// escapes, flow collections with tags, anchors, merges and a directive.
const SYNTAX: &str = r#"%YAML 1.2
---
x-base: &base {image: "nginx:1.27", labels: [!!str a=1, 'b=it''s']}
x-tags: [!, e, !!str , f]
services:
  web:
    <<: *base
    command: ["sh", "-c", "echo \"\u00e9\t\x41\" \
      done"]
    environment: {A: !!str 1, ? B : c}
    entrypoint: |
      one
    healthcheck:
      test: >-
        folded
        lines
    configs: [{source: c, target: /c}]
configs:
  c:
    content: |+2
        kept

x-last: >
  cut
  here"#;

/// Every prefix of `SYNTAX` (a file cut anywhere: mid-escape, mid-tag, inside a block scalar whose
/// last line then ends the input) loads or fails without a panic; the published libyaml-safer
/// panicked on several (vendor/libyaml-safer/PATCHES.md).
#[test]
fn yaml_cut_anywhere_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    for end in (0..=SYNTAX.len()).filter(|end| SYNTAX.is_char_boundary(*end)) {
        std::fs::write(dir.path().join("stack.yaml"), &SYNTAX[..end]).unwrap();
        load_and_print(dir.path());
    }
}

#[test]
fn every_fixture_loads_and_prints_without_panicking() {
    // The unmutated seeds themselves, each as a whole stack directory where it has one.
    for category in ["valid", "invalid", "warnings", "real-world", "graph", "overlay"] {
        for case in support::case_dirs(category) {
            load_and_print(&support::fixture(category, &case));
        }
    }
}

/// A number and a unit as a user might type one, sane or not.
fn duration_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![any::<u64>().prop_map(|n| n.to_string()), any::<f64>().prop_map(|f| f.abs().to_string()), "[0-9]{1,40}(\\.[0-9]{0,20})?"];
    let unit = prop_oneof![Just("h"), Just("m"), Just("s"), Just("ms"), Just("us"), Just("ns"), Just(""), Just("x")];
    proptest::collection::vec((number, unit), 1..4).prop_map(|parts| parts.into_iter().map(|(n, u)| format!("{n}{u}")).collect())
}

proptest! {
    // Failures are saved in tests/spec_no_panic.proptest-regressions and replayed first.
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A duration either parses to at most the limit or is an error; it never panics, however
    /// large or odd the number.
    #[test]
    fn any_duration_is_a_value_within_the_limit_or_an_error(text in duration_text()) {
        match swarmctl::spec::schema::parse_duration(&text) {
            Ok(duration) => prop_assert!(duration <= swarmctl::spec::schema::MAX_DURATION, "{text} gave {duration:?}"),
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    /// Any replica count, timeout or grace period written in a stack loads within its limits or
    /// is refused with a diagnostic pointing at it.
    #[test]
    fn any_count_or_duration_in_a_stack_is_loaded_within_limits_or_refused(replicas in any::<i64>(), grace in duration_text()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("stack.yaml"),
            format!("name: limits\nservices:\n  web:\n    image: nginx\n    stop_grace_period: \"{grace}\"\n    deploy:\n      replicas: {replicas}\n"),
        )
        .unwrap();
        match load(&LoadOptions { path: dir.path().to_path_buf(), ..LoadOptions::default() }, &|_: &str| None::<String>) {
            Ok(loaded) => {
                let web = &loaded.stack.services["web"];
                prop_assert!(web.replicas <= swarmctl::spec::validate::MAX_REPLICAS);
                prop_assert!(web.stop_grace_period.is_none_or(|d| d <= swarmctl::spec::schema::MAX_DURATION));
            }
            Err(failure) => prop_assert!(failure.diagnostics.0.iter().filter(|d| d.is_error()).all(|d| d.pos.is_some()), "{:?}", failure.diagnostics.0),
        }
    }
}
