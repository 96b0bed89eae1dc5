//! Graph cases: `tests/fixtures/graph/<case>/` loads through the real `spec::load`; its text,
//! DOT and Mermaid drawings are snapshots, and the properties the planner relies on (waves only
//! depend on earlier waves, layers wait for earlier layers through barrier nodes, the critical
//! path is a real chain) are asserted directly.

mod spec_support;

use spec_support as support;
use swarmctl::graph::{barrier_name, DependencyGraph, NodeKind};
use swarmctl::model::stack::Condition;

fn graph(case: &str) -> DependencyGraph {
    let loaded = support::load_case(&support::fixture("graph", case)).unwrap_or_else(|f| panic!("{case}:\n{}", support::render_failure(&f)));
    // `links` and `volumes_from` order the graph but are otherwise not acted on yet (a warning).
    let unexpected: Vec<_> = loaded.warnings.0.iter().filter(|w| !w.message.contains("is accepted but not acted on yet")).collect();
    assert!(unexpected.is_empty(), "{case}: {}", support::render_warnings(&loaded));
    loaded.graph
}

fn wave_of(graph: &DependencyGraph, name: &str) -> usize {
    graph.waves().iter().position(|w| w.iter().any(|n| n == name)).unwrap_or_else(|| panic!("`{name}` is in no wave"))
}

/// Every node waits only for nodes of earlier waves.
fn assert_waves_are_topological(graph: &DependencyGraph) {
    for wave in graph.waves() {
        for name in &wave {
            for (dependency, _) in graph.dependencies(name) {
                assert!(wave_of(graph, dependency) < wave_of(graph, name), "`{name}` waits for `{dependency}` in the same or a later wave");
            }
        }
    }
}

/// Consecutive critical-path nodes are real dependencies, and no chain is longer.
fn assert_critical_path_is_a_longest_chain(graph: &DependencyGraph) {
    let path = graph.critical_path();
    for pair in path.windows(2) {
        assert!(graph.dependencies(&pair[1]).iter().any(|(d, _)| *d == pair[0]), "{} does not wait for {}", pair[1], pair[0]);
    }
    assert_eq!(path.len(), graph.waves().len(), "the critical path spans every wave");
}

#[test]
fn diamond_drawings() {
    let graph = graph("diamond");
    assert_waves_are_topological(&graph);
    assert_critical_path_is_a_longest_chain(&graph);
    assert_eq!(graph.critical_path(), ["db", "migrate", "api", "web"]);
    assert_eq!(
        graph.dependencies("api"),
        [("cache", Condition::ServiceStarted), ("db", Condition::ServiceHealthy), ("migrate", Condition::ServiceCompletedSuccessfully)]
    );
    support::snapshot("graph__diamond-text", &graph.to_text());
    support::snapshot("graph__diamond-dot", &graph.to_dot());
    support::snapshot("graph__diamond-mermaid", &graph.to_mermaid());
}

#[test]
fn later_layers_wait_for_earlier_layers_through_barriers() {
    let graph = graph("layers");
    assert_waves_are_topological(&graph);
    assert_critical_path_is_a_longest_chain(&graph);
    let barrier = |layer: &str| barrier_name(layer);
    for node in graph.nodes().filter(|n| n.name.starts_with("layer:")) {
        assert_eq!(node.kind, NodeKind::Barrier);
    }
    // Each layer's services feed its barrier; the next non-empty layer waits for it.
    assert_eq!(graph.dependencies(&barrier("00-prerequisites")), [("config-seed", Condition::ServiceStarted)]);
    for service in ["db", "queue"] {
        assert!(graph.dependencies(service).contains(&(barrier("00-prerequisites").as_str(), Condition::ServiceStarted)), "{service}");
    }
    for service in ["api", "worker"] {
        assert!(graph.dependencies(service).contains(&(barrier("01-storage").as_str(), Condition::ServiceStarted)), "{service}");
    }
    // An empty layer gets no barrier, nor does the last layer (nothing waits for it); a
    // root-file service belongs to no layer and waits for none.
    assert!(graph.nodes().all(|n| n.name != barrier("02-empty") && n.name != barrier("03-apps")));
    assert_eq!(graph.dependencies("proxy"), []);
    assert_eq!(wave_of(&graph, "proxy"), 0);
    assert!(wave_of(&graph, "worker") > wave_of(&graph, "db"));
    support::snapshot("graph__layers-text", &graph.to_text());
    support::snapshot("graph__layers-dot", &graph.to_dot());
    support::snapshot("graph__layers-mermaid", &graph.to_mermaid());
}

#[test]
fn similar_names_stay_distinct_nodes_in_mermaid() {
    let graph = graph("similar-names");
    let mermaid = graph.to_mermaid();
    support::snapshot("graph__similar-names-mermaid", &mermaid);
    let node_lines: Vec<&str> = mermaid.lines().filter(|l| l.contains("[\"")).collect();
    let ids: std::collections::BTreeSet<&str> = node_lines.iter().map(|l| l.trim().split('[').next().unwrap_or("")).collect();
    assert_eq!(ids.len(), 3, "{mermaid}");
}

#[test]
fn links_volumes_from_and_service_namespaces_imply_dependencies() {
    let graph = graph("implicit-dependencies");
    let started = Condition::ServiceStarted;
    assert_eq!(graph.dependencies("app"), [("cache", started), ("db", started)]);
    assert_eq!(graph.dependencies("sidecar"), [("app", started)]);
    // A written condition wins over the implied one; `container:…` is not a service.
    assert_eq!(graph.dependencies("backup"), [("app", Condition::ServiceHealthy), ("db", started)]);
    support::snapshot("graph__implicit-dependencies-text", &graph.to_text());
}

#[test]
fn drawings_are_deterministic() {
    let first = graph("diamond");
    for _ in 0..5 {
        let again = graph("diamond");
        assert_eq!(again.to_text(), first.to_text());
        assert_eq!(again.to_dot(), first.to_dot());
        assert_eq!(again.to_mermaid(), first.to_mermaid());
    }
}

#[test]
fn a_long_cycle_is_found_and_printed_whole_without_deep_recursion() {
    // A 100,000-service ring: a recursive walk would overflow the stack of a test thread.
    let count = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("services:\n");
    for i in 0..count {
        text.push_str(&format!("  s{i:06}: {{image: busybox, depends_on: [s{:06}]}}\n", (i + 1) % count));
    }
    std::fs::write(dir.path().join("stack.yaml"), text).unwrap();
    let options = swarmctl::spec::LoadOptions { path: dir.path().to_path_buf(), ..Default::default() };
    let failure = support::load_with(&options, &[]).expect_err("a cycle");
    let cycle = failure.diagnostics.0.iter().find(|d| d.message.starts_with("dependency cycle")).expect("a cycle error");
    let names: Vec<&str> = cycle.message.trim_start_matches("dependency cycle: ").split(" -> ").collect();
    assert_eq!(names.len(), count + 1);
    assert_eq!((names[0], names[1], names[count]), ("s000000", "s000001", "s000000"));
}
