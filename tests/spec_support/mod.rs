//! Shared by the spec test binaries: where fixtures live, how a case is loaded (with a fixed,
//! injected environment, so results do not depend on the machine), and how diagnostics are
//! rendered for snapshots (colour off, exactly as the CLI prints them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use swarmctl::spec::{load, LoadFailure, LoadOptions, Loaded};

/// `cases! { test_name => "case-dir", … }`: one test per case directory, each calling the test
/// file's own `check(dir)`, and `CASES`, the list [`assert_every_case_listed`] checks.
#[allow(unused_macros)]
macro_rules! cases {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                check($dir);
            }
        )*
        const CASES: &[&str] = &[$($dir),*];
    };
}

/// The environment every fixture sees instead of the process environment.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("FIXTURE_USER", "alice"),
    ("FIXTURE_EMPTY", ""),
    ("FIXTURE_TAG", "1.25"),
    ("HOME", "/home/fixture"),
];

pub fn fixture_root() -> PathBuf {
    Path::new("tests").join("fixtures")
}

pub fn fixture(category: &str, case: &str) -> PathBuf {
    fixture_root().join(category).join(case)
}

/// Case directories of a category, sorted.
pub fn case_dirs(category: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(fixture_root().join(category)) else { return Vec::new() };
    let mut dirs: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    dirs.sort();
    dirs
}

/// Fails the test for a case directory of `category` that `listed` (the cases `test_file` runs)
/// leaves out: a fixture nobody runs proves nothing.
pub fn assert_every_case_listed(category: &str, listed: &[&str], test_file: &str) {
    for dir in case_dirs(category) {
        assert!(listed.contains(&dir.as_str()), "tests/fixtures/{category}/{dir} has no test in {test_file}");
    }
}

/// A temporary stack directory holding `files` (relative paths, folders made as needed).
pub fn stack_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

pub fn fixed_environment(name: &str) -> Option<String> {
    ENVIRONMENT.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string())
}

/// Options for a case directory: the directory itself, plus what its `args` file says.
pub fn options_for(dir: &Path) -> LoadOptions {
    let mut options = LoadOptions { path: dir.to_path_buf(), ..LoadOptions::default() };
    let Ok(text) = std::fs::read_to_string(dir.join("args")) else { return options };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (flag, value) = line.split_once(' ').unwrap_or((line, ""));
        let value = value.trim().to_string();
        match flag {
            "--overlay" => options.overlays.push(dir.join(value)),
            "--values" => options.values_files.push(dir.join(value)),
            "--set" => options.set.push(value),
            "--profile" => options.profiles.push(value),
            "--name" => options.name = Some(value),
            "--stack" => options.path = dir.join(value),
            other => panic!("{}: unknown option `{other}` in args", dir.display()),
        }
    }
    options
}

pub fn load_case(dir: &Path) -> Result<Loaded, LoadFailure> {
    load(&options_for(dir), &fixed_environment)
}

pub fn load_with(options: &LoadOptions, environment: &[(&str, &str)]) -> Result<Loaded, LoadFailure> {
    let lookup = |name: &str| environment.iter().find(|(key, _)| *key == name).map(|(_, value)| value.to_string());
    load(options, &lookup)
}

/// Every diagnostic of a failed load, as `swarmctl validate` prints it without colour.
pub fn render_failure(failure: &LoadFailure) -> String {
    failure.diagnostics.0.iter().map(|d| d.render(&failure.sources, false)).collect()
}

pub fn render_warnings(loaded: &Loaded) -> String {
    loaded.warnings.0.iter().map(|d| d.render(&loaded.sources, false)).collect()
}

/// The first line of each diagnostic: `path:line:col: severity: message`.
pub fn headlines(failure: &LoadFailure) -> Vec<String> {
    failure.diagnostics.0.iter().map(|d| d.render(&failure.sources, false).lines().next().unwrap_or("").to_string()).collect()
}

/// An insta snapshot under `tests/snapshots/`, named without the test module.
pub fn snapshot(name: &str, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    let text = text.replace(env!("CARGO_MANIFEST_DIR"), "[ROOT]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}
