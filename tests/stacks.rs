//! The example stacks under `stacks/` with the overlays under `overlays/`: each combination
//! loads, renders to a Compose document that loads again (and that docker-compose accepts), and
//! keeps the structural facts that make it the system it describes.

use std::path::PathBuf;
use swarmctl::model::stack::{Condition, Kind, MountKind, Stack};
use swarmctl::spec::{load, render, LoadOptions, Loaded};

const STACKS: [&str; 4] = ["clickvisual", "db-gateway", "voicehelper", "data-platform"];
const OVERLAY_SETS: [&[&str]; 5] = [&[], &["production"], &["single-host"], &["offline"], &["single-host", "offline"]];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_with(stack: &str, overlays: &[&str]) -> Loaded {
    let options = LoadOptions {
        path: root().join("stacks").join(stack),
        overlays: overlays.iter().map(|o| root().join("overlays").join(o)).collect(),
        ..LoadOptions::default()
    };
    load(&options, &|_: &str| None::<String>).unwrap_or_else(|failure| {
        let messages: Vec<String> = failure.diagnostics.0.iter().map(|d| d.render(&failure.sources, false)).collect();
        panic!("{stack} with {overlays:?} does not load:\n{}", messages.join(""))
    })
}

fn depends(stack: &Stack, service: &str, on: &str, condition: Condition) -> bool {
    stack.services[service].depends_on.iter().any(|d| d.service == on && d.condition == condition)
}

#[test]
fn every_stack_loads_with_every_overlay_set() {
    for stack in STACKS {
        for overlays in OVERLAY_SETS {
            let loaded = load_with(stack, overlays);
            assert!(!loaded.stack.services.is_empty(), "{stack} {overlays:?}");
            assert!(loaded.warnings.0.iter().all(|w| !w.is_error()));
        }
    }
}

#[test]
fn rendered_stacks_load_again_unchanged() {
    for stack in STACKS {
        let loaded = load_with(stack, &["offline"]);
        let document = render::document(&loaded);
        // Beside the stack's own files, so relative config and secret files resolve and `.hbs`
        // configs render again with the same values.
        let file = tempfile::Builder::new().prefix(".rendered-").suffix(".yaml").tempfile_in(root().join("stacks").join(stack)).unwrap();
        std::fs::write(file.path(), render::to_yaml(&document)).unwrap();
        let options = LoadOptions { path: file.path().to_path_buf(), ..LoadOptions::default() };
        let again = load(&options, &|_: &str| None::<String>).unwrap_or_else(|f| panic!("{stack}: rendered output does not load: {:?}", f.diagnostics));
        assert_eq!(again.stack.services.keys().collect::<Vec<_>>(), loaded.stack.services.keys().collect::<Vec<_>>(), "{stack}");
        for (name, service) in &loaded.stack.services {
            let reloaded = &again.stack.services[name];
            assert_eq!(reloaded.environment, service.environment, "{stack}/{name}: environment changed in the round trip");
            assert_eq!(reloaded.command, service.command, "{stack}/{name}: command changed in the round trip");
            assert_eq!(reloaded.replicas, service.replicas, "{stack}/{name}");
        }
    }
}

/// docker-compose (Debian's 1.29, which CI installs) is an independent judge of the Compose
/// format. It predates the top-level `name:`, so that key is dropped and a `version:` added.
#[test]
fn docker_compose_accepts_every_rendered_stack() {
    if std::process::Command::new("docker-compose").arg("version").output().is_err() {
        panic!("docker-compose is not installed: run `apt-get install docker-compose` (CI does)");
    }
    for stack in STACKS {
        let loaded = load_with(stack, &["single-host", "offline"]);
        let mut document = render::document(&loaded);
        let object = document.as_object_mut().unwrap();
        object.remove("name");
        object.insert("version".into(), "3.9".into());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker-compose.yml");
        std::fs::write(&file, render::to_yaml(&document)).unwrap();
        let out = std::process::Command::new("docker-compose").arg("-f").arg(&file).args(["config", "-q"]).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{stack}: docker-compose rejects the rendered stack:\n{}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("variable is not set"), "{stack}: a literal `$` was not escaped as `$$`:\n{stderr}");
    }
}

#[test]
fn every_stateful_service_has_a_volume_per_replica() {
    for stack in STACKS {
        let loaded = load_with(stack, &[]);
        for service in loaded.stack.services.values().filter(|s| s.kind == Kind::Statefulset) {
            let named = service.volumes.iter().any(|m| m.kind == MountKind::Volume && !m.source.is_empty() && loaded.stack.volumes.contains_key(&m.source));
            assert!(named, "{stack}/{}: a statefulset needs a named volume (one per ordinal)", service.name);
        }
    }
}

#[test]
fn clickvisual_waits_for_its_stores_the_way_the_chart_does() {
    let stack = load_with("clickvisual", &[]).stack;
    assert!(depends(&stack, "kafka", "zookeeper", Condition::ServiceHealthy), "Kafka waits for a healthy Zookeeper");
    for job in ["wait-for-mysql", "wait-for-clickhouse"] {
        assert_eq!(stack.services[job].kind, Kind::Job);
        assert!(depends(&stack, "clickvisual", job, Condition::ServiceCompletedSuccessfully), "ClickVisual's init job {job} gates it");
    }
    assert!(stack.services["clickvisual"].depends_on.iter().any(|d| d.service == "redis"), "multi-replica ClickVisual needs Redis");
    assert_eq!(stack.services["fluent-bit"].kind, Kind::Daemonset, "Fluent-bit runs one per node");
    assert!(stack.services["fluent-bit"].volumes.iter().any(|m| m.source.contains("/var/lib/docker/containers")));
    for store in ["mysql", "redis", "clickhouse", "zookeeper", "kafka"] {
        assert_eq!(stack.services[store].kind, Kind::Statefulset, "{store}");
    }
    let clickvisual = &stack.services["clickvisual"];
    assert!(clickvisual.ports.iter().any(|p| p.target == 19001 && p.published.is_some()), "the UI/API on 19001");
    let expose = clickvisual.extra.get("expose").map(|e| e.to_string()).unwrap_or_default();
    assert!(expose.contains("19011"), "the governor port 19011 stays inside the stack: {expose}");
    let production = load_with("clickvisual", &["production"]).stack;
    assert!(production.services["clickvisual"].replicas > 1 && production.services["kafka"].replicas >= 3);
}

#[test]
fn db_gateway_reaches_postgres_only_through_haproxy() {
    let stack = load_with("db-gateway", &["offline"]).stack;
    assert!(stack.services["postgres"].ports.iter().all(|p| p.published.is_none()), "postgres publishes no host port");
    assert!(depends(&stack, "haproxy", "postgres", Condition::ServiceHealthy));
    assert!(stack.services["haproxy"].ports.iter().any(|p| p.target == 5432 && p.published.is_some()));
    for client in ["webui-backend", "host-api"] {
        let service = &stack.services[client];
        assert!(depends(&stack, client, "haproxy", Condition::ServiceHealthy), "{client}");
        assert!(service.depends_on.iter().all(|d| d.service != "postgres"), "{client} must not reach postgres directly");
        assert_eq!(service.environment.get("PG_HOST").cloned().flatten().as_deref(), Some("haproxy"), "{client}");
        let shared: Vec<&String> = service.networks.keys().filter(|n| stack.services["postgres"].networks.contains_key(*n)).collect();
        assert!(shared.is_empty(), "{client} shares network {shared:?} with postgres");
    }
}

#[test]
fn voicehelper_layers_start_in_the_order_of_its_kubernetes_tree() {
    let loaded = load_with("voicehelper", &[]);
    let layers: Vec<&String> = loaded.stack.layers.iter().map(|(l, _)| l).collect();
    let mut sorted = layers.clone();
    sorted.sort();
    assert_eq!(layers, sorted);
    assert!(layers.len() >= 6, "{layers:?}");
    let waves = loaded.graph.waves();
    let wave_of = |name: &str| waves.iter().position(|w| w.iter().any(|n| n == name)).unwrap();
    for pair in loaded.stack.layers.windows(2) {
        let (earlier, later) = (&pair[0].1, &pair[1].1);
        for (a, b) in earlier.iter().flat_map(|a| later.iter().map(move |b| (a, b))) {
            assert!(wave_of(a) < wave_of(b), "{b} (layer {}) must start after {a} (layer {})", pair[1].0, pair[0].0);
        }
    }
    assert!(loaded.stack.services.values().any(|s| s.name.contains("postgres")));
}

#[test]
fn data_platform_places_data_on_data_nodes_and_spreads_ha_services() {
    let stack = load_with("data-platform", &[]).stack;
    let data_layer = stack.layers.iter().find(|(l, _)| l.contains("data")).expect("a data layer");
    for name in &data_layer.1 {
        let placement = &stack.services[name].placement;
        assert!(placement.constraints.iter().any(|c| c.replace(' ', "") == "node.labels.tier==data"), "{name}: {placement:?}");
    }
    for service in stack.services.values().filter(|s| s.replicas == 3 && s.kind != Kind::Job) {
        assert!(!service.placement.spread.is_empty(), "{}: HA replicas spread across nodes", service.name);
    }
    let single = load_with("data-platform", &["single-host"]).stack;
    for service in single.services.values() {
        assert!(service.placement.constraints.is_empty(), "{}: single-host drops node constraints", service.name);
        assert!(service.replicas <= 1, "{}: one replica on one host", service.name);
    }
}

#[test]
fn the_offline_overlay_uses_only_images_built_here() {
    for stack in STACKS {
        let loaded = load_with(stack, &["single-host", "offline"]);
        for service in loaded.stack.services.values() {
            let image = service.image.as_deref().unwrap_or("");
            assert!(image.starts_with("swarmctl-test/"), "{stack}/{}: `{image}` cannot be had offline", service.name);
        }
    }
}
