//! Overlay merge cases through the real `spec::load`: `tests/fixtures/overlay/<case>/` holds the
//! stack in `base/`, the overlay in `overlay/` (and a second one in `overlay2/`, applied after),
//! an optional `args` file (see `spec_support`), and `expected.yaml`: the document `render`
//! must produce. A case without `expected.yaml` must fail; its diagnostics are a snapshot.

#[macro_use]
mod spec_support;

use spec_support as support;
use std::path::Path;
use swarmctl::spec::{load, render, LoadOptions};

fn options(case: &str) -> LoadOptions {
    let dir = support::fixture("overlay", case);
    let mut options = support::options_for(&dir);
    if options.path == dir {
        options.path = dir.join("base");
    }
    let overlays: Vec<_> = ["overlay", "overlay2"].iter().map(|o| dir.join(o)).filter(|o| o.is_dir()).collect();
    options.overlays.splice(0..0, overlays);
    options
}

fn check(case: &str) {
    let dir = support::fixture("overlay", case);
    let result = load(&options(case), &support::fixed_environment);
    let expected_path = dir.join("expected.yaml");
    if !expected_path.exists() {
        let failure = match result {
            Ok(_) => panic!("{case}: loaded, but has no expected.yaml, so it must fail"),
            Err(failure) => failure,
        };
        support::snapshot(&format!("overlay__{case}"), &support::render_failure(&failure));
        return;
    }
    let loaded = result.unwrap_or_else(|f| panic!("{case}:\n{}", support::render_failure(&f)));
    let expected: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap();
    let actual = render::document(&loaded);
    assert_eq!(
        actual,
        expected,
        "{case}: render differs from expected.yaml\n--- actual ---\n{}",
        render::to_yaml(&actual)
    );
}

cases! {
    patch_merge_rules => "patch-merge-rules",
    reset_and_override => "reset-and-override",
    patch_chosen_by_declared_name_not_by_name_flag => "patch-chosen-by-declared-name",
    patch_chosen_by_directory_name => "patch-chosen-by-directory-name",
    overlays_in_order_and_values_precedence => "overlays-in-order-and-values-precedence",
    patch_on_a_layered_stack => "layered-stack-patch",
    errors_point_at_the_overlay => "errors-point-at-the-overlay",
}

#[test]
fn every_overlay_case_has_a_test() {
    support::assert_every_case_listed("overlay", CASES, "tests/spec_overlays.rs");
}

/// Provenance, spelled out: every error caused by the overlay names the overlay file and line.
#[test]
fn every_error_of_an_overlay_names_the_overlay_file_and_line() {
    let failure = load(&options("errors-point-at-the-overlay"), &support::fixed_environment).expect_err("must fail");
    let overlay = Path::new("tests/fixtures/overlay/errors-point-at-the-overlay/overlay/shop.yaml").display().to_string();
    let headlines = support::headlines(&failure);
    let expected = [
        (4, "replicas must not be negative"),
        (5, "unknown service `databse`"),
        (7, "unknown key `intervall`"),
        (9, "`services.db.image` must be a string"),
        (11, "variable `UNSET_IN_OVERLAY` is not set"),
    ];
    for (line, message) in expected {
        assert!(
            headlines.iter().any(|h| h.starts_with(&format!("{overlay}:{line}:")) && h.contains(message)),
            "no error at {overlay}:{line} containing {message:?}:\n{}",
            headlines.join("\n")
        );
    }
    assert!(headlines.iter().all(|h| h.starts_with(&overlay)), "{}", headlines.join("\n"));
}
