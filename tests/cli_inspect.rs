//! The real `swarmctl` binary on `validate`, `render` and `graph`: exit codes, what goes to
//! stdout and stderr, colour, native types in JSON, flags that change the stack, and that a
//! secret's content never appears in any output.

use std::path::Path;
use std::process::{Command, Output};

const SECRET_FILE_CONTENT: &str = "file-secret-8c1f2e";
const SECRET_ENV_CONTENT: &str = "env-secret-5d7a90";
const SECRET_INLINE_CONTENT: &str = "inline-secret-3b4c11";
const SECRET_TEMPLATE_CONTENT: &str = "template-secret-77aa01";

fn swarmctl(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_swarmctl"));
    command.args(args).current_dir(dir).env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("swarmctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A stack with every kind of secret source, and services under profiles.
fn shop(dir: &Path) {
    write(
        dir,
        &[
            (
                "shop/stack.yaml",
                "name: shop\nservices:\n  web:\n    image: nginx:1.27\n    secrets: [from_file, from_env, inline, templated]\n    deploy:\n      replicas: 4\n      resources:\n        limits: {cpus: \"0.5\"}\n    environment:\n      WORKERS: 8\n      DEBUG: false\n    depends_on:\n      db: {condition: service_healthy}\n  db:\n    image: postgres:16\n    healthcheck: {test: pg_isready, interval: 5s}\n  debug:\n    image: busybox\n    profiles: [debug]\nsecrets:\n  from_file:\n    file: ./secret.txt\n  from_env:\n    environment: SHOP_TOKEN\n  inline:\n    content: inline-secret-3b4c11\n  templated:\n    file: ./secret.hbs\n",
            ),
            ("shop/secret.txt", SECRET_FILE_CONTENT),
            ("shop/secret.hbs", "password={{ values.prefix }}-template-secret-77aa01\n"),
            ("shop/values.yaml", "prefix: p\n"),
        ],
    );
}

const SHOP_ENV: &[(&str, &str)] = &[("SHOP_TOKEN", SECRET_ENV_CONTENT)];

fn assert_no_secret(text: &str, context: &str) {
    for secret in [SECRET_FILE_CONTENT, SECRET_ENV_CONTENT, SECRET_INLINE_CONTENT, SECRET_TEMPLATE_CONTENT] {
        assert!(!text.contains(secret), "{context}: secret `{secret}` printed:\n{text}");
    }
}

#[test]
fn validate_exits_0_on_a_valid_stack_and_2_on_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let ok = swarmctl(&["validate", "shop"], dir.path(), SHOP_ENV);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    assert_eq!(stdout(&ok), "stack `shop` is valid: 2 services, 0 networks, 0 volumes\n");

    write(dir.path(), &[("bad/stack.yaml", "services:\n  web:\n    image: nginx\n    depends_on: [ghost]\n    imgae: x\n")]);
    let bad = swarmctl(&["validate", "bad"], dir.path(), &[]);
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(stdout(&bad), "", "diagnostics go to stderr only");
    let err = stderr(&bad);
    assert!(err.starts_with("bad/stack.yaml:4:18: error: service `web` depends on unknown service `ghost`\n"), "{err}");
    assert!(err.contains("bad/stack.yaml:5:5: error: unknown key `imgae`"), "{err}");
    assert!(err.contains("  help: did you mean `image`?"), "{err}");
    assert!(err.ends_with("2 errors found; nothing was changed\n"), "{err}");
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    for args in [
        &["validate", "no-such-stack"][..],
        &["validate", "shop", "--overlay", "no-such-overlay"],
        &["validate", "shop", "--values", "no-such-values.yaml"],
        &["validate", "shop", "--set", "novalue"],
        &["render", "shop", "--output", "xml"],
        &["graph", "shop", "--format", "png"],
    ] {
        let out = swarmctl(args, dir.path(), SHOP_ENV);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn no_color_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("bad/stack.yaml", "services:\n  web:\n    imgae: nginx\n")]);
    let forced = swarmctl(&["validate", "bad"], dir.path(), &[("CLICOLOR_FORCE", "1")]);
    assert!(stderr(&forced).contains('\x1b'), "CLICOLOR_FORCE should colour:\n{}", stderr(&forced));
    let plain = swarmctl(&["validate", "bad"], dir.path(), &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!stderr(&plain).contains('\x1b'), "NO_COLOR must win:\n{}", stderr(&plain));
    let piped = swarmctl(&["validate", "bad"], dir.path(), &[]);
    assert!(!stderr(&piped).contains('\x1b'), "no colour into a pipe");
    // On a real terminal (util-linux `script` allocates one): colour by default, none with NO_COLOR.
    let on_tty = |no_color: &str| {
        let command = format!("{no_color} {} validate bad", env!("CARGO_BIN_EXE_swarmctl"));
        let out = Command::new("script").args(["-qec", &command, "/dev/null"]).current_dir(dir.path()).env_remove("NO_COLOR").output().expect("script runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(on_tty("").contains('\x1b'), "a terminal gets colour");
    assert!(!on_tty("NO_COLOR=1").contains('\x1b'), "NO_COLOR on a terminal");
}

#[test]
fn render_json_has_native_types_and_yaml_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let out = swarmctl(&["render", "shop", "--output", "json"], dir.path(), SHOP_ENV);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("\"replicas\": 4"), "{text}");
    let document: serde_json::Value = serde_json::from_str(&text).unwrap();
    let web = &document["services"]["web"];
    assert_eq!(web["deploy"]["replicas"], serde_json::json!(4));
    assert_eq!(web["deploy"]["resources"]["limits"]["cpus"], serde_json::json!("0.5"));
    assert_eq!(web["environment"]["WORKERS"], serde_json::json!("8"), "environment values are strings");
    assert_eq!(web["environment"]["DEBUG"], serde_json::json!("false"));
    assert_eq!(document["services"]["db"]["healthcheck"]["interval"], serde_json::json!("5s"));

    let yaml = swarmctl(&["render", "shop"], dir.path(), SHOP_ENV);
    assert_eq!(yaml.status.code(), Some(0));
    let from_yaml: serde_json::Value = serde_yaml::from_str(&stdout(&yaml)).unwrap();
    assert_eq!(from_yaml, document, "YAML and JSON render the same document");
}

#[test]
fn a_secret_never_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let commands: &[&[&str]] = &[
        &["validate", "shop"],
        &["render", "shop"],
        &["render", "shop", "--output", "json"],
        &["graph", "shop"],
        &["graph", "shop", "--format", "dot"],
        &["graph", "shop", "--format", "mermaid"],
    ];
    for args in commands {
        let out = swarmctl(args, dir.path(), SHOP_ENV);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_no_secret(&stdout(&out), &format!("{args:?} stdout"));
        assert_no_secret(&stderr(&out), &format!("{args:?} stderr"));
    }
    let rendered = stdout(&swarmctl(&["render", "shop"], dir.path(), SHOP_ENV));
    assert!(rendered.contains("content: \"<redacted, 20 bytes,"), "{rendered}");

    // Errors too: a broken secret template, a broken stack next to an inline secret, a bad .env.
    write(
        dir.path(),
        &[
            ("shop/secret.hbs", "password=template-secret-77aa01-{{ values.missing }}\n"),
            ("shop/.env", "SHOP_TOKEN=env-secret-5d7a90\nnot a line env-secret-5d7a90\n"),
        ],
    );
    let stack = std::fs::read_to_string(dir.path().join("shop/stack.yaml")).unwrap();
    write(dir.path(), &[("shop/stack.yaml", &stack.replace("    content: inline-secret-3b4c11\n", "    content: inline-secret-3b4c11\n    imgae: oops\n"))]);
    for args in commands {
        let out = swarmctl(args, dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_no_secret(&stdout(&out), &format!("{args:?} stdout (failing)"));
        assert_no_secret(&stderr(&out), &format!("{args:?} stderr (failing)"));
    }
}

#[test]
fn name_overrides_the_stack_name() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let out = swarmctl(&["render", "shop", "--name", "shop-staging"], dir.path(), SHOP_ENV);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("name: shop-staging\n"), "{}", stdout(&out));
    let validate = swarmctl(&["validate", "shop", "--name", "other"], dir.path(), SHOP_ENV);
    assert!(stdout(&validate).starts_with("stack `other` is valid"), "{}", stdout(&validate));
}

/// An explicit name is never rewritten: two different names must not land on one stack, and a
/// name that could not name its objects is refused before anything else happens.
#[test]
fn an_invalid_name_is_refused_and_a_directory_name_is_normalised_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let long = "a".repeat(300);
    for name in ["UPPER", "../../x", "a/b", "-x", "_x", long.as_str(), ""] {
        let out = swarmctl(&["validate", "shop", &format!("--name={name}")], dir.path(), SHOP_ENV);
        assert_eq!(out.status.code(), Some(2), "--name {name:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("--name"), "--name {name:?}: {}", stderr(&out));
    }
    write(dir.path(), &[("My Shop/stack.yaml", "services:\n  web:\n    image: nginx\n")]);
    let out = swarmctl(&["validate", "My Shop"], dir.path(), SHOP_ENV);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the stack is named `myshop`, from the directory name `My Shop`"), "{}", stderr(&out));
}

#[test]
fn profiles_activate_services_and_depending_on_an_inactive_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let without = stdout(&swarmctl(&["render", "shop", "--output", "json"], dir.path(), SHOP_ENV));
    let document: serde_json::Value = serde_json::from_str(&without).unwrap();
    assert!(document["services"].get("debug").is_none(), "an inactive service is not rendered");
    let with = stdout(&swarmctl(&["render", "shop", "--output", "json", "--profile", "debug"], dir.path(), SHOP_ENV));
    let document: serde_json::Value = serde_json::from_str(&with).unwrap();
    assert!(document["services"].get("debug").is_some());

    write(
        dir.path(),
        &[("profiled/stack.yaml", "services:\n  web:\n    image: nginx\n    depends_on: [tools]\n  tools:\n    image: busybox\n    profiles: [ops]\n")],
    );
    let out = swarmctl(&["validate", "profiled"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("profiled/stack.yaml:4:18: error: service `web` depends on `tools`, which is not active"), "{}", stderr(&out));
    let out = swarmctl(&["validate", "profiled", "--profile", "ops"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_plain_compose_file_is_a_stack() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("project/docker-compose.yml", "services:\n  app:\n    build: .\n    env_file: .env.app\n  cache:\n    image: redis:7\n"),
            ("project/Dockerfile", "FROM scratch\n"),
            ("project/.env.app", "A=1\n"),
            ("project/other.yaml", "services:\n  other:\n    image: busybox\n"),
        ],
    );
    let out = swarmctl(&["validate", "project/docker-compose.yml"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "stack `project` is valid: 2 services, 0 networks, 0 volumes\n");
    // Any file name works when named directly; the directory is the stack directory.
    let out = swarmctl(&["render", "other.yaml"], &dir.path().join("project"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("name: project\n"), "{}", stdout(&out));
}

#[test]
fn graph_formats() {
    let dir = tempfile::tempdir().unwrap();
    shop(dir.path());
    let text = stdout(&swarmctl(&["graph", "shop"], dir.path(), SHOP_ENV));
    assert_eq!(text, "wave 0:\n  db\nwave 1:\n  web <- db (service_healthy)\ncritical path: db -> web\n");
    let dot = stdout(&swarmctl(&["graph", "shop", "--format", "dot"], dir.path(), SHOP_ENV));
    assert!(dot.starts_with("digraph stack {") && dot.contains("\"db\" -> \"web\" [label=\"service_healthy\"];"), "{dot}");
    let mermaid = stdout(&swarmctl(&["graph", "shop", "--format", "mermaid"], dir.path(), SHOP_ENV));
    assert!(mermaid.starts_with("flowchart LR\n") && mermaid.contains("db -->|healthy| web"), "{mermaid}");
}

#[test]
fn warnings_print_and_do_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("warn/stack.yaml", "services:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n    deploy: {replicas: 2}\n    environment:\n      DB_PASSWORD: hunter2\n")]);
    let out = swarmctl(&["validate", "warn"], dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).ends_with("(2 warnings)\n"), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("warn/stack.yaml:4:13: warning: service `web` publishes host port 80 and has 2 replicas"), "{err}");
    assert!(err.contains("warn/stack.yaml:7:7: warning: service `web`: `DB_PASSWORD` looks like a secret"), "{err}");
    assert!(!err.contains("hunter2"), "the excerpt masks the value:\n{err}");
}
