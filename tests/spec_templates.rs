//! Templates through the real loader: value precedence, Swarm placeholders left alone, block
//! helpers, `.hbs` config and secret files, and strict errors that point at the line the user
//! wrote even after multi-line expansions shifted the rendered text.

mod spec_support;

use spec_support as support;
use std::path::Path;
use swarmctl::spec::{LoadFailure, LoadOptions, Loaded};

fn options(dir: &Path) -> LoadOptions {
    LoadOptions { path: dir.join("stack"), ..LoadOptions::default() }
}

fn load(options: &LoadOptions) -> Loaded {
    support::load_with(options, &[]).unwrap_or_else(|f| panic!("{}", support::render_failure(&f)))
}

fn fail(options: &LoadOptions) -> LoadFailure {
    support::load_with(options, &[]).expect_err("must fail")
}

/// `(line, message)` of each error, file names dropped.
fn errors(failure: &LoadFailure) -> Vec<(u32, String)> {
    failure.diagnostics.0.iter().filter(|d| d.is_error()).map(|d| (d.pos.map_or(0, |p| p.line), d.message.clone())).collect()
}

#[test]
fn values_precedence_stack_then_overlays_then_values_files_then_set() {
    let dir = support::stack_with(&[
        (
            "stack/stack.yaml",
            "name: shop\nservices:\n  web:\n    image: nginx\n    environment:\n      A: \"{{ values.a }}\"\n      B: \"{{ values.b }}\"\n      C: \"{{ values.c }}\"\n      D: \"{{ values.d }}\"\n      E: \"{{ values.e }}\"\n      F: \"{{ values.nested.keep }}/{{ values.nested.change }}\"\n      G: \"{{ values.g }}\"\n",
        ),
        ("stack/values.yaml", "a: stack\nb: stack\nc: stack\nd: stack\ne: stack\ng: stack\nnested: {keep: stack, change: stack}\n"),
        ("overlay1/values.yaml", "b: overlay1\nc: overlay1\nd: overlay1\ne: overlay1\nnested: {change: overlay1}\n"),
        ("overlay2/values.yaml", "c: overlay2\nd: overlay2\ne: overlay2\n"),
        ("values1.yaml", "d: values1\ne: values1\ng: values1\n"),
        ("values2.yaml", "e: values2\ng: values2\n"),
    ]);
    let mut options = options(dir.path());
    options.overlays = vec![dir.path().join("overlay1"), dir.path().join("overlay2")];
    options.values_files = vec![dir.path().join("values1.yaml"), dir.path().join("values2.yaml")];
    options.set = vec!["e=set1".into(), "e=set2".into()];
    let loaded = load(&options);
    let env = &loaded.stack.services["web"].environment;
    let value = |k: &str| env[k].clone().unwrap_or_default();
    assert_eq!([value("A"), value("B"), value("C"), value("D"), value("E")], ["stack", "overlay1", "overlay2", "values1", "set2"].map(String::from));
    assert_eq!(value("F"), "stack/overlay1", "values merge deeply");
    assert_eq!(value("G"), "values2", "later --values files win");
}

#[test]
fn set_values_are_typed_like_helm() {
    let dir = support::stack_with(&[("stack/stack.yaml", "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: {{ values.replicas }}\n")]);
    let mut options = options(dir.path());
    options.set = vec!["replicas=4".into()];
    let loaded = load(&options);
    assert_eq!(loaded.stack.services["web"].replicas, 4);
    let rendered = swarmctl::spec::render::document(&loaded);
    assert_eq!(rendered["services"]["web"]["deploy"]["replicas"], serde_json::json!(4));
}

#[test]
fn swarm_and_go_placeholders_pass_through_untouched() {
    let dir = support::stack_with(&[(
        "stack/stack.yaml",
        "services:\n  web:\n    image: nginx:{{ values.tag }}\n    hostname: \"{{.Node.Hostname}}-{{.Task.Slot}}\"\n    logging:\n      options:\n        tag: \"{{ .ImageName }}|{{- .Name -}}|{{.ID}}\"\n    environment:\n      SLOT: \"{{.Task.Slot}}\"\n",
    )]);
    let mut options = options(dir.path());
    options.set = vec!["tag=1.27".into()];
    let loaded = load(&options);
    let web = &loaded.stack.services["web"];
    assert_eq!(web.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(web.hostname.as_deref(), Some("{{.Node.Hostname}}-{{.Task.Slot}}"));
    assert_eq!(web.environment["SLOT"].as_deref(), Some("{{.Task.Slot}}"));
    assert_eq!(web.extra["logging"]["options"]["tag"], "{{ .ImageName }}|{{- .Name -}}|{{.ID}}");
}

#[test]
fn block_helpers_each_if_else_and_no_html_escaping() {
    let dir = support::stack_with(&[
        (
            "stack/stack.yaml",
            "services:\n{{#each values.workers}}\n  worker-{{ @key }}:\n    image: example/worker\n    command: [\"run\", \"{{ this.queue }}\"]\n{{#if this.debug}}\n    environment: {DEBUG: \"1\"}\n{{else}}\n    environment: {DEBUG: \"0\"}\n{{/if}}\n{{/each}}\n  web:\n    image: nginx\n    command: [\"sh\", \"-c\", \"{{ values.shell }}\"]\n",
        ),
        ("stack/values.yaml", "workers:\n  a: {queue: fast, debug: true}\n  b: {queue: slow}\nshell: \"test 1 < 2 && echo '<ok>' > /dev/null\"\n"),
    ]);
    let loaded = load(&options(dir.path()));
    let services = &loaded.stack.services;
    assert_eq!(services.keys().collect::<Vec<_>>(), ["web", "worker-a", "worker-b"]);
    assert_eq!(services["worker-a"].environment["DEBUG"].as_deref(), Some("1"));
    assert_eq!(services["worker-b"].environment["DEBUG"].as_deref(), Some("0"));
    assert_eq!(services["worker-b"].command.as_ref().unwrap()[1], "slow");
    assert_eq!(services["web"].command.as_ref().unwrap()[2], "test 1 < 2 && echo '<ok>' > /dev/null");
}

#[test]
fn errors_after_multi_line_expansions_point_at_the_template_line() {
    // Lines 5-7 expand to many lines; every later line must still be reported where it is written.
    let template = "\
services:
  web:
    image: nginx
    environment:
{{#each values.env}}
      {{ @key }}: \"{{ this }}\"
{{/each}}
    labels:
      {{ toYaml values.labels indent=6 }}
    imgae: typo
    depends_on: [ghost]
    healthcheck:
      interval: 30
";
    let values = "env: {A: '1', B: '2', C: '3', D: '4', E: '5', F: '6'}\nlabels: {a: '1', b: '2', c: '3', d: '4'}\n";
    let dir = support::stack_with(&[("stack/stack.yaml", template), ("stack/values.yaml", values)]);
    let failure = fail(&options(dir.path()));
    let errors = errors(&failure);
    for (line, fragment) in [(10, "unknown key `imgae`"), (11, "unknown service `ghost`"), (13, "has no unit")] {
        assert!(errors.iter().any(|(l, m)| *l == line && m.contains(fragment)), "no error at line {line} with {fragment:?}: {errors:?}");
    }
    // Columns survive on lines the template did not change.
    let imgae = failure.diagnostics.0.iter().find(|d| d.message.contains("imgae")).unwrap();
    assert_eq!(imgae.pos.map(|p| p.col), Some(5));
}

#[test]
fn a_missing_value_names_the_key_and_the_line_after_expansions() {
    let template = "services:\n  web:\n    image: nginx\n    environment:\n{{#each values.env}}\n      {{ @key }}: \"{{ this }}\"\n{{/each}}\n    user: \"{{ values.user.name }}\"\n";
    let dir = support::stack_with(&[("stack/stack.yaml", template), ("stack/values.yaml", "env: {A: '1', B: '2', C: '3'}\nuser: {}\n")]);
    let failure = fail(&options(dir.path()));
    assert_eq!(errors(&failure), [(8, "missing value `values.user.name`".to_string())]);
    let hint = failure.diagnostics.0[0].hint.clone().unwrap_or_default();
    assert!(hint.contains("--set user.name="), "{hint}");
}

#[test]
fn a_mapping_rendered_without_to_yaml_is_an_error() {
    let dir = support::stack_with(&[("stack/stack.yaml", "services:\n  web:\n    image: nginx\n    labels: {{ values.labels }}\n"), ("stack/values.yaml", "labels: {a: b}\n")]);
    let failure = fail(&options(dir.path()));
    assert_eq!(errors(&failure), [(4, "a mapping or list is rendered as text".to_string())]);
}

#[test]
fn hbs_config_and_secret_files_render_with_values_and_secret_errors_show_no_content() {
    let dir = support::stack_with(&[
        (
            "stack/stack.yaml",
            "name: shop\nservices:\n  web:\n    image: nginx\n    configs: [site]\n    secrets: [creds]\nconfigs:\n  site:\n    file: ./templates/site.conf.hbs\nsecrets:\n  creds:\n    file: ./templates/creds.hbs\n",
        ),
        ("stack/values.yaml", "port: 8080\nuser: app\n"),
        ("stack/templates/site.conf.hbs", "listen {{ values.port }}; # {{ stack.name }}\n"),
        ("stack/templates/creds.hbs", "user={{ values.user }}\npassword=hunter2-{{ values.user }}\n"),
    ]);
    let loaded = load(&options(dir.path()));
    assert_eq!(String::from_utf8_lossy(&loaded.stack.configs["site"].content), "listen 8080; # shop\n");
    assert_eq!(String::from_utf8_lossy(&loaded.stack.secrets["creds"].content), "user=app\npassword=hunter2-app\n");

    std::fs::write(dir.path().join("stack/templates/creds.hbs"), "password=hunter2\nuser={{ values.missing }}\n").unwrap();
    let failure = fail(&options(dir.path()));
    let text = support::render_failure(&failure);
    assert!(text.contains("creds.hbs:2:"), "{text}");
    assert!(!text.contains("hunter2"), "a secret template's content was printed:\n{text}");
}

/// A value is data, never syntax: a `--set` newline cannot add keys, `$` is not interpolated,
/// and YAML punctuation stays inside the scalar it was inserted into.
#[test]
fn values_are_data_never_syntax() {
    let dir = support::stack_with(&[(
        "stack/stack.yaml",
        "services:\n  web:\n    image: nginx\n    environment:\n      PASSWORD: {{ values.password }}\n      NOTE: \"note: {{ values.note }}\"\n    labels: {size: {{ values.size }}}\n    deploy:\n      replicas: {{ values.replicas }}\n",
    )]);
    let mut options = options(dir.path());
    options.set = vec![
        "password=pa$$word$HOME\n    privileged: true".into(),
        "note=a # not a comment".into(),
        "size=1, extra: injected}".into(),
        "replicas=2".into(),
    ];
    let loaded = load(&options);
    let web = &loaded.stack.services["web"];
    assert_eq!(web.environment["PASSWORD"].as_deref(), Some("pa$$word$HOME\n    privileged: true"));
    assert_eq!(web.environment["NOTE"].as_deref(), Some("note: a # not a comment"));
    assert_eq!(web.labels.get("size").map(String::as_str), Some("1, extra: injected}"));
    assert!(!web.labels.contains_key("extra"), "{:?}", web.labels);
    assert!(!web.extra.contains_key("privileged"), "a value injected a key: {:?}", web.extra);
    assert_eq!(web.replicas, 2, "a number stays a number");
}

/// `quote`, `toYaml` and `toJson` write YAML on purpose; the strings inside them are still data.
#[test]
fn structural_helpers_escape_their_strings() {
    let dir = support::stack_with(&[
        (
            "stack/stack.yaml",
            "services:\n  web:\n    image: nginx\n    environment:\n      {{ toYaml values.env indent=6 }}\n    command: {{ toJson values.command }}\n    hostname: {{ quote values.host }}\n",
        ),
        ("stack/values.yaml", "env: {A: \"$HOME\", B: \"x\\ny: z\"}\ncommand: [\"sh\", \"-c\", \"echo $PATH\"]\nhost: \"a: b\"\n"),
    ]);
    let loaded = load(&options(dir.path()));
    let web = &loaded.stack.services["web"];
    assert_eq!(web.environment["A"].as_deref(), Some("$HOME"));
    assert_eq!(web.environment["B"].as_deref(), Some("x\ny: z"));
    assert_eq!(web.command.as_deref(), Some(&["sh".to_string(), "-c".into(), "echo $PATH".into()][..]));
    assert_eq!(web.hostname.as_deref(), Some("a: b"));
}

#[test]
fn to_yaml_indent_has_a_limit() {
    let dir = support::stack_with(&[("stack/stack.yaml", "services:\n  web:\n    image: nginx\n    labels:\n      {{ toYaml values.l indent=100000000000 }}\n"), ("stack/values.yaml", "l: {a: b}\n")]);
    let failure = fail(&options(dir.path()));
    assert!(errors(&failure).iter().any(|(line, m)| *line == 5 && m.contains("indent=100000000000 is more than the limit of 64")), "{:?}", errors(&failure));
}
