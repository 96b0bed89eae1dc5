//! Fixture-driven tests of the spec pipeline, through the real `spec::load`.
//!
//! - `tests/fixtures/invalid/<case>/`: a stack that must fail; the rendered diagnostics (colour
//!   off, exactly what `swarmctl validate` prints on stderr) are an insta snapshot.
//! - `tests/fixtures/warnings/<case>/`: a stack that loads, with the warnings it prints.
//! - `tests/fixtures/valid/<case>/`: a stack that loads with no diagnostic at all; `render` output
//!   is the snapshot.
//!
//! Each case is its own `#[test]` (listed in the macros below), and a guard test fails when a
//! fixture directory exists that no test names, so a new fixture cannot be silently skipped.
//! A case may hold an `args` file with one command-line option per line (`--profile debug`,
//! `--set web.replicas=3`, `--overlay overlay`, `--values more.yaml`, `--name other`); paths are
//! relative to the case directory.

mod spec_support;

use spec_support as support;
use support::{fixture, load_case, render_failure, render_warnings};
use swarmctl::spec::render;

macro_rules! invalid {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                let failure = match load_case(&fixture("invalid", $dir)) {
                    Ok(_) => panic!("{} loaded, but must fail", $dir),
                    Err(failure) => failure,
                };
                assert!(failure.diagnostics.has_errors(), "{}: a failure without errors", $dir);
                support::snapshot(&format!("invalid__{}", $dir), &render_failure(&failure));
            }
        )*
        const INVALID: &[&str] = &[$($dir),*];
    };
}

macro_rules! warnings {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                let loaded = load_case(&fixture("warnings", $dir)).unwrap_or_else(|f| panic!("{}:\n{}", $dir, render_failure(&f)));
                assert!(!loaded.warnings.0.is_empty(), "{}: expected warnings", $dir);
                support::snapshot(&format!("warnings__{}", $dir), &render_warnings(&loaded));
            }
        )*
        const WARNINGS: &[&str] = &[$($dir),*];
    };
}

macro_rules! valid {
    ($($name:ident => $dir:literal,)*) => {
        $(
            #[test]
            fn $name() {
                let loaded = load_case(&fixture("valid", $dir)).unwrap_or_else(|f| panic!("{}:\n{}", $dir, render_failure(&f)));
                assert_eq!(render_warnings(&loaded), "", "{}: a valid fixture loads without warnings", $dir);
                support::snapshot(&format!("valid__{}", $dir), &render::to_yaml(&render::document(&loaded)));
            }
        )*
        const VALID: &[&str] = &[$($dir),*];
    };
}

invalid! {
    yaml_syntax => "yaml-syntax",
    duplicate_key => "duplicate-key",
    unknown_keys_suggest_the_closest_name => "unknown-keys",
    dependency_cycle_is_printed_as_its_full_path => "dependency-cycle",
    unknown_dependency => "unknown-dependency",
    self_dependency => "self-dependency",
    unknown_condition => "unknown-condition",
    service_healthy_needs_a_healthcheck => "healthy-without-healthcheck",
    invalid_durations => "invalid-durations",
    negative_replicas => "negative-replicas",
    non_integer_replicas => "non-integer-replicas",
    container_name_with_replicas => "container-name-with-replicas",
    replicas_with_global_mode => "replicas-with-global-mode",
    replicas_with_global_job_mode => "replicas-with-global-job",
    undefined_networks_volumes_configs_secrets => "undefined-resources",
    rollout_with_max_surge_and_max_unavailable_zero => "rollout-both-zero",
    config_and_secret_files_outside_the_stack => "config-outside-directory",
    files_outside_the_stack_through_symlinks => "files-outside-through-symlink",
    env_file_and_build_context_outside_the_stack => "env-file-and-build-outside",
    billion_laughs => "billion-laughs",
    deep_nesting => "deep-nesting",
    deep_nesting_through_aliases => "deep-nesting-through-aliases",
    nested_interpolation => "nested-interpolation",
    unresolved_variables => "unresolved-variable",
    missing_template_value_points_at_the_template_line => "missing-template-value",
    mapping_rendered_without_to_yaml => "mapping-without-toyaml",
    yaml_error_after_a_template_expansion => "yaml-error-after-template-expansion",
    template_syntax => "template-syntax",
    many_errors_are_reported_in_one_run => "many-errors",
    service_defined_twice_across_layers => "service-defined-twice",
    wrong_types => "wrong-types",
    service_without_image_or_build => "no-image-no-build",
    invalid_ports => "invalid-ports",
    dotenv_syntax => "dotenv-syntax",
    stack_file_that_is_not_a_mapping => "not-a-mapping",
    two_yaml_documents => "two-documents",
    directory_without_a_stack_file => "no-stack-file",
    dependency_on_an_inactive_service => "inactive-dependency",
    extension_typos => "extension-typos",
    service_names_outside_the_compose_alphabet => "service-names",
    a_stack_without_services => "empty-stack",
    no_active_service => "all-profiles-inactive",
    replicas_over_the_limit => "huge-replicas",
    durations_over_the_limit => "duration-overflow",
    two_services_with_one_container_name => "duplicate-container-name",
    a_dotenv_that_is_a_directory => "dotenv-is-a-directory",
    a_dotenv_that_is_not_utf8 => "dotenv-not-utf8",
    external_name_and_name_that_differ => "external-name-conflict",
    mount_options_no_engine_takes => "mount-options",
}

warnings! {
    secret_looking_environment_values => "secret-in-environment",
    published_host_port_with_replicas => "published-port-with-replicas",
    keys_accepted_but_not_acted_on => "keys-not-acted-on",
    near_misses_of_our_extensions => "extension-near-misses",
    job_with_several_replicas => "job-with-replicas",
    pull_policies_other_than_never_and_missing => "pull-policy",
    a_dependency_restart_is_not_acted_on => "depends-on-restart",
    sub_keys_not_acted_on => "sub-keys-not-acted-on",
}

valid! {
    minimal => "minimal",
    full_stack => "full-stack",
    templated => "templated",
    interpolation_with_dotenv => "interpolation",
    layer_folders => "layered",
    anchors_and_merge_keys => "anchors-and-merge-keys",
    profiles => "profiles",
    extends => "extends",
    extends_from_a_subdirectory_rebases_its_paths => "extends-from-a-subdirectory",
    a_compose_file_as_the_stack => "compose-file",
}

#[test]
fn every_fixture_directory_has_a_test() {
    for (category, listed) in [("invalid", INVALID), ("warnings", WARNINGS), ("valid", VALID)] {
        support::assert_every_case_listed(category, listed, "tests/spec_fixtures.rs");
    }
}

/// Hostile inputs fail fast: the budgets in `spec::yaml`, `spec::interpolate` and
/// `spec::template` stop them before they cost time or memory. Unchecked, each would run for
/// minutes or exhaust memory; the 10 s bound leaves room for a debug build on a loaded machine.
#[test]
fn hostile_inputs_are_refused_by_their_budgets() {
    let quick = |dir: &std::path::Path, expected: &str| {
        let started = std::time::Instant::now();
        let failure = load_case(dir).err().unwrap_or_else(|| panic!("{} must fail", dir.display()));
        let elapsed = started.elapsed();
        let text = render_failure(&failure);
        assert!(text.contains(expected), "{}: expected {expected:?} in\n{text}", dir.display());
        assert!(elapsed < std::time::Duration::from_secs(10), "{} took {elapsed:?}", dir.display());
    };
    quick(&fixture("invalid", "billion-laughs"), "aliases expand to more than");
    quick(&fixture("invalid", "deep-nesting"), "nested deeper than");
    quick(&fixture("invalid", "deep-nesting-through-aliases"), "nested deeper than");
    quick(&fixture("invalid", "nested-interpolation"), "nest deeper than");

    // A huge file is refused by its size, before it is read.
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("stack.yaml")).unwrap();
    file.set_len(64 << 20).unwrap();
    quick(dir.path(), "over the limit of 16777216");

    // Files a stack names that are not regular files, or far too big, are refused without
    // blocking on them or reading them into memory.
    let mkfifo = |path: &std::path::Path| {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo reads a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), "services:\n  web:\n    image: nginx\n").unwrap();
    mkfifo(&dir.path().join(".env"));
    quick(dir.path(), ".env`: it is a FIFO, not a regular file");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), "services:\n  web:\n    image: nginx\n    secrets: [token, big]\nsecrets:\n  token: {file: ./token}\n  big: {file: ./big}\n").unwrap();
    mkfifo(&dir.path().join("token"));
    std::fs::File::create(dir.path().join("big")).unwrap().set_len(3 << 30).unwrap();
    quick(dir.path(), "it is a FIFO, not a regular file");
    quick(dir.path(), "it holds 3221225472 bytes, over the limit of 16777216");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), "services:\n  web:\n    image: nginx\n").unwrap();
    std::fs::File::create(dir.path().join("values.yaml")).unwrap().set_len(200 << 20).unwrap();
    quick(dir.path(), "values.yaml`: it holds 209715200 bytes");

    // Loops in templates that would expand a small file into gigabytes.
    let dir = tempfile::tempdir().unwrap();
    let items: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    std::fs::write(dir.path().join("values.yaml"), format!("a: [{}]\n", items.join(", "))).unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        "services:\n  web:\n    image: nginx\n    labels:\n{{#each values.a}}{{#each ../values.a}}      l{{@index}}: \"{{this}}xxxxxxxxxxxxxxxx\"\n{{/each}}{{/each}}\n",
    )
    .unwrap();
    quick(dir.path(), "renders to more than");
}
