//! Compose files written the way public projects write them (`tests/fixtures/real-world/<name>/`)
//! must load: `version:` keys, anchors and `x-` blocks with `<<`, `build:`-only services,
//! `env_file`, long-syntax ports and volumes, `deploy:` blocks, CMD-SHELL healthchecks,
//! `extends`, profiles, `network_mode`, `platform`, `sysctls`. Warnings are allowed (and are a
//! snapshot, with the graph); errors are not.
//!
//! Two independent checks keep the fixtures and `render` honest: docker-compose 1.29 (which CI
//! installs) accepts every fixture that does not use a newer Compose Specification feature, and
//! the rendered document loads again into the same model.

#[macro_use]
mod spec_support;

use spec_support as support;
use std::path::{Path, PathBuf};
use swarmctl::spec::{load, render, LoadOptions, Loaded};

const COMPOSE_FILES: [&str; 5] = ["docker-compose.yml", "docker-compose.yaml", "compose.yaml", "compose.yml", "docker-stack.yml"];

/// Fixtures using what docker-compose 1.29 predates, and which feature.
const NEWER_THAN_COMPOSE_1: &[(&str, &str)] = &[
    ("ci-runner-tuning", "top-level `name:`"),
    ("keycloak-postgres", "inline config `content:`, secret `environment:`"),
    ("nextcloud-long-syntax", "long-syntax `host_ip`, `create_host_path`"),
    ("node-mongo-profiles", "`develop`, long-syntax `env_file`"),
    ("extends-common", "extending a service that has `depends_on`"),
];

fn compose_file(case: &str) -> PathBuf {
    let dir = support::fixture("real-world", case);
    COMPOSE_FILES.iter().map(|name| dir.join(name)).find(|p| p.is_file()).unwrap_or_else(|| panic!("{case}: no compose file"))
}

fn load_file(path: &Path) -> Loaded {
    let options = LoadOptions { path: path.to_path_buf(), ..LoadOptions::default() };
    load(&options, &|_: &str| None::<String>).unwrap_or_else(|f| panic!("{} must load:\n{}", path.display(), support::render_failure(&f)))
}

fn check(case: &str) {
    let loaded = load_file(&compose_file(case));
    let warnings: Vec<String> = loaded.warnings.0.iter().map(|d| d.render(&loaded.sources, false).lines().next().unwrap_or("").to_string()).collect();
    let report = format!("warnings:\n{}\n\n{}", warnings.join("\n"), loaded.graph.to_text());
    support::snapshot(&format!("real_world__{case}"), &report);
    renders_back_to_the_same_model(case, &loaded);
}

/// The rendered document, written next to a copy of the fixture's files, loads into the same
/// model: quoting, `$$` and native types survive the trip.
fn renders_back_to_the_same_model(case: &str, loaded: &Loaded) {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&support::fixture("real-world", case), copy.path());
    let rendered = copy.path().join("rendered.yaml");
    std::fs::write(&rendered, render::to_yaml(&render::document(loaded))).unwrap();
    let again = load_file(&rendered);
    assert_eq!(again.stack.services.keys().collect::<Vec<_>>(), loaded.stack.services.keys().collect::<Vec<_>>(), "{case}");
    for (name, service) in &loaded.stack.services {
        let other = &again.stack.services[name];
        let context = format!("{case}/{name} after a render round trip");
        assert_eq!(other.environment, service.environment, "{context}: environment");
        assert_eq!(other.command, service.command, "{context}: command");
        assert_eq!(other.entrypoint, service.entrypoint, "{context}: entrypoint");
        let ports = |s: &swarmctl::model::stack::Service| s.ports.iter().map(|p| (p.target, p.published, p.host_ip.clone(), p.protocol.clone(), p.ephemeral)).collect::<Vec<_>>();
        assert_eq!(ports(other), ports(service), "{context}: ports");
        assert_eq!(other.replicas, service.replicas, "{context}: replicas");
        assert_eq!(other.healthcheck, service.healthcheck, "{context}: healthcheck");
        assert_eq!(other.labels, service.labels, "{context}: labels");
        // Optional dependencies on services left out by their profile are not rendered.
        let active = |s: &swarmctl::model::stack::Service| {
            s.depends_on.iter().filter(|d| loaded.stack.services.contains_key(&d.service)).map(|d| (d.service.clone(), d.condition)).collect::<Vec<_>>()
        };
        assert_eq!(active(other), active(service), "{context}: depends_on");
        assert_eq!(other.extra, service.extra, "{context}: engine settings");
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().map(Result::unwrap) {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

cases! {
    django_postgres_redis_nginx => "django-postgres-redis",
    wordpress_mysql_with_secrets => "wordpress-mysql",
    traefik_reverse_proxy_labels => "traefik-whoami",
    prometheus_grafana_monitoring => "prometheus-grafana",
    elk_stack_version_2 => "elk-stack",
    kafka_zookeeper => "kafka-zookeeper",
    celery_rabbitmq_anchors => "celery-rabbitmq",
    ci_runner_platform_sysctls => "ci-runner-tuning",
    swarm_voting_app_deploy_blocks => "swarm-voting-app",
    nextcloud_long_syntax => "nextcloud-long-syntax",
    node_mongo_profiles_develop => "node-mongo-profiles",
    extends_across_files => "extends-common",
    minio_merge_key_lists => "minio-anchors",
    home_assistant_host_network_devices => "home-assistant",
    keycloak_postgres_inline_config => "keycloak-postgres",
    legacy_version_2_links => "legacy-v2-links",
}

#[test]
fn every_real_world_fixture_has_a_test() {
    support::assert_every_case_listed("real-world", CASES, "tests/spec_real_world.rs");
}

#[test]
fn extends_does_not_inherit_depends_on() {
    let loaded = load_file(&compose_file("extends-common"));
    let services = &loaded.stack.services;
    assert_eq!(services["web"].image.as_deref(), Some("example/webapp:latest"));
    assert_eq!(services["web"].environment.len(), 3, "lists merge: {:?}", services["web"].environment);
    assert_eq!(services["admin"].depends_on, [], "`depends_on` is never inherited");
    assert_eq!(services["admin"].ports.len(), 2, "ports append");
    assert_eq!(services["queue"].restart.as_deref(), Some("always"));
}

#[test]
fn docker_compose_accepts_the_fixtures_it_can_read() {
    let available = std::process::Command::new("docker-compose").arg("version").output().is_ok_and(|o| o.status.success());
    assert!(available, "docker-compose is not installed: run `apt-get install docker-compose` (CI does)");
    for case in CASES.iter().filter(|c| !NEWER_THAN_COMPOSE_1.iter().any(|(n, _)| n == *c)) {
        let file = compose_file(case);
        let out = std::process::Command::new("docker-compose")
            .arg("-f")
            .arg(file.file_name().unwrap())
            .args(["config", "-q"])
            .current_dir(file.parent().unwrap())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output()
            .unwrap();
        assert!(out.status.success(), "{case}: docker-compose rejects it:\n{}", String::from_utf8_lossy(&out.stderr));
    }
}
