//! Interpolation through the real loader: the process environment, the stack's `.env`, and the
//! compose edge cases (`$$`, set-but-empty, nested defaults) as they reach the model. The
//! operator rules themselves are unit-tested in `src/spec/interpolate.rs`.

mod spec_support;

use spec_support as support;
use std::path::Path;
use swarmctl::spec::{LoadOptions, Loaded};

fn load(dir: &Path, environment: &[(&str, &str)]) -> Loaded {
    let options = LoadOptions { path: dir.to_path_buf(), ..LoadOptions::default() };
    support::load_with(&options, environment).unwrap_or_else(|f| panic!("{}", support::render_failure(&f)))
}

fn env_of(loaded: &Loaded, service: &str, key: &str) -> Option<String> {
    loaded.stack.services[service].environment.get(key).cloned().flatten()
}

#[test]
fn the_process_environment_wins_over_dotenv() {
    let dir = support::stack_with(&[
        ("stack.yaml", "services:\n  web:\n    image: nginx:${TAG}\n    environment:\n      MODE: ${MODE}\n      ONLY_DOTENV: ${ONLY_DOTENV}\n"),
        (".env", "TAG=from-dotenv\nMODE=from-dotenv\nONLY_DOTENV=yes\n"),
    ]);
    let loaded = load(dir.path(), &[("TAG", "from-process"), ("MODE", "")]);
    assert_eq!(loaded.stack.services["web"].image.as_deref(), Some("nginx:from-process"));
    // Set-but-empty in the process environment is set: it wins, and is empty.
    assert_eq!(env_of(&loaded, "web", "MODE").as_deref(), Some(""));
    assert_eq!(env_of(&loaded, "web", "ONLY_DOTENV").as_deref(), Some("yes"));
}

#[test]
fn set_but_empty_is_not_unset() {
    let dir = support::stack_with(&[
        ("stack.yaml", "services:\n  web:\n    image: nginx\n    environment:\n      DASH: \"[${EMPTY-default}]\"\n      COLON_DASH: \"[${EMPTY:-default}]\"\n      PLUS: \"[${EMPTY+alt}]\"\n      COLON_PLUS: \"[${EMPTY:+alt}]\"\n      QUESTION: \"[${EMPTY?must be set}]\"\n      PLAIN: \"[${EMPTY}]\"\n"),
        (".env", "EMPTY=\n"),
    ]);
    let loaded = load(dir.path(), &[]);
    let expected = [("DASH", "[]"), ("COLON_DASH", "[default]"), ("PLUS", "[alt]"), ("COLON_PLUS", "[]"), ("QUESTION", "[]"), ("PLAIN", "[]")];
    for (key, value) in expected {
        assert_eq!(env_of(&loaded, "web", key).as_deref(), Some(value), "{key}");
    }
}

#[test]
fn dollar_dollar_is_a_literal_dollar_everywhere() {
    let dir = support::stack_with(&[(
        "stack.yaml",
        "services:\n  web:\n    image: nginx\n    command: [\"sh\", \"-c\", \"echo $$HOME $${NAME} $$$$\"]\n    labels:\n      auth: \"admin:$$apr1$$x\"\n",
    )]);
    let loaded = load(dir.path(), &[]);
    let web = &loaded.stack.services["web"];
    assert_eq!(web.command.as_ref().unwrap()[2], "echo $HOME ${NAME} $$");
    assert_eq!(web.labels["auth"], "admin:$apr1$x");
}

#[test]
fn dotenv_syntax_as_compose_reads_it() {
    let dotenv = "\
# comment line
export EXPORTED=1
SPACED = around equals
SINGLE='no ${EXPORTED} expansion # kept'
DOUBLE=\"line\\nbreak ${EXPORTED}\"
UNQUOTED=value # trailing comment
HASH=a#b
REFERENCE=${EXPORTED}-${FROM_PROCESS}
";
    let stack = "services:\n  web:\n    image: nginx\n    environment:\n      EXPORTED: $EXPORTED\n      SPACED: $SPACED\n      SINGLE: $SINGLE\n      DOUBLE: $DOUBLE\n      UNQUOTED: $UNQUOTED\n      HASH: $HASH\n      REFERENCE: $REFERENCE\n";
    let dir = support::stack_with(&[("stack.yaml", stack), (".env", dotenv)]);
    let loaded = load(dir.path(), &[("FROM_PROCESS", "p")]);
    let expected = [
        ("EXPORTED", "1"),
        ("SPACED", "around equals"),
        ("SINGLE", "no ${EXPORTED} expansion # kept"),
        ("DOUBLE", "line\nbreak 1"),
        ("UNQUOTED", "value"),
        ("HASH", "a#b"),
        ("REFERENCE", "1-p"),
    ];
    for (key, value) in expected {
        assert_eq!(env_of(&loaded, "web", key).as_deref(), Some(value), "{key}");
    }
}

#[test]
fn defaults_nest_and_may_hold_variables() {
    let dir = support::stack_with(&[(
        "stack.yaml",
        "services:\n  web:\n    image: \"${REGISTRY:-${MIRROR:-docker.io}}/nginx:${TAG:-1.27}\"\n    ports: [\"${PORT:-8080}:80\"]\n",
    )]);
    let loaded = load(dir.path(), &[("MIRROR", "mirror.local")]);
    let web = &loaded.stack.services["web"];
    assert_eq!(web.image.as_deref(), Some("mirror.local/nginx:1.27"));
    assert_eq!(web.ports[0].published, Some(8080));
}

#[test]
fn an_unresolved_variable_is_an_error_pointing_at_it_and_other_problems_still_show() {
    let dir = support::stack_with(&[("stack.yaml", "services:\n  web:\n    image: nginx:${MISSING_TAG}\n    depends_on: [ghost]\n")]);
    let options = LoadOptions { path: dir.path().to_path_buf(), ..LoadOptions::default() };
    let failure = support::load_with(&options, &[]).expect_err("must fail");
    let headlines = support::headlines(&failure);
    let errors: Vec<&String> = headlines.iter().filter(|h| h.contains(": error: ")).collect();
    assert!(errors[0].ends_with("stack.yaml:3:18: error: variable `MISSING_TAG` is not set and has no default"), "{headlines:?}");
    assert!(headlines.iter().any(|h| h.contains("unknown service `ghost`")), "{headlines:?}");
}

#[test]
fn config_and_secret_environment_sources_see_dotenv_and_the_process() {
    let dir = support::stack_with(&[
        ("stack.yaml", "services:\n  web:\n    image: nginx\n    configs: [settings]\n    secrets: [token]\nconfigs:\n  settings:\n    environment: SETTINGS\nsecrets:\n  token:\n    environment: TOKEN\n"),
        (".env", "SETTINGS=from-dotenv\nTOKEN=from-dotenv\n"),
    ]);
    let loaded = load(dir.path(), &[("TOKEN", "from-process")]);
    assert_eq!(loaded.stack.configs["settings"].content, b"from-dotenv");
    assert_eq!(loaded.stack.secrets["token"].content, b"from-process");
}
