//! `swarmctl plan --cluster FILE`: the swarm plan and its placement against the hypothetical
//! nodes of a cluster file, with no engine anywhere (DOCKER_HOST points at nothing). The data
//! platform's two example cluster files fit; its default layout and the production sizes do
//! not, and the plan says on which node and why, exit 2.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn plan(args: &[&str]) -> Output {
    let stack = repository().join("stacks/data-platform");
    Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .arg("plan")
        .arg(&stack)
        .args(args)
        .current_dir(repository())
        .env("DOCKER_HOST", "unix:///nonexistent/no-engine-here.sock")
        .env("NO_COLOR", "1")
        .output()
        .expect("swarmctl runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

const SHARED_TIERS: &str = "stacks/data-platform/shared-tiers.values.yaml";

#[test]
fn the_recommended_four_nodes_fit_and_the_table_shows_every_service_on_every_node() {
    let out = plan(&["--values", SHARED_TIERS, "--cluster", "stacks/data-platform/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("target: swarm, the nodes of stacks/data-platform/cluster.yaml (no engine contacted)"), "{stdout}");
    assert!(stdout.contains("create service   data-platform_nginx (missing)"), "{stdout}");
    assert!(stdout.contains("SERVICE                 node-1  node-2  node-3  node-4  PLACED"), "{stdout}");
    assert!(stdout.contains("node-exporter (global)       1       1       1       1     4/4"), "{stdout}");
    assert!(stdout.contains("nginx (global)               1       1       -       -     2/2"), "the lb runs on the two edge nodes: {stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("node-4") && l.contains("of 8") && l.contains("of 16GiB")), "what remains per node: {stdout}");
}

#[test]
fn the_minimum_three_nodes_fit_with_one_replica_of_each_ha_service_per_node() {
    let out = plan(&["--values", SHARED_TIERS, "--cluster", "stacks/data-platform/cluster-minimum.yaml", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(json["cluster"], "stacks/data-platform/cluster-minimum.yaml");
    let placement = &json["plan"]["placement"];
    assert!(placement["problems"].as_array().unwrap().is_empty(), "{placement}");
    for service in ["api-gateway", "data-api", "redis-sentinel", "flink-taskmanager"] {
        let row = placement["services"].as_array().unwrap().iter().find(|s| s["service"] == service).unwrap_or_else(|| panic!("{service}"));
        assert_eq!(row["nodes"], serde_json::json!({"node-1": 1, "node-2": 1, "node-3": 1}), "{service}: {row}");
    }
}

#[test]
fn the_default_layout_needs_a_node_per_tier_and_says_so_per_node() {
    let out = plan(&["--cluster", "stacks/data-platform/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data-api: 3 of 3 tasks cannot be placed: node-1, node-2, node-3, node-4: constraint node.labels.tier == app not met (no label `tier`)"), "{stderr}");
    assert!(stderr.contains("03-applications/data-api.yaml:"), "each at its file and line: {stderr}");
    assert!(out.stdout.is_empty(), "no plan is printed: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn production_sizes_do_not_fit_on_four_servers_and_the_plan_says_where_and_why() {
    let out = plan(&["--values", SHARED_TIERS, "--overlay", "overlays/production", "--cluster", "stacks/data-platform/cluster.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot be placed"), "{stderr}");
    assert!(stderr.contains("memory reserved of 16GiB, needs"), "the node's resources are the reason: {stderr}");
}

#[test]
fn a_bad_cluster_file_or_flag_is_refused_with_the_reason() {
    let missing = plan(&["--cluster", "no/such/cluster.yaml"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("cannot read cluster file `no/such/cluster.yaml`"), "{}", text(&missing));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.yaml");
    std::fs::write(&file, "nodes:\n  n1: {role: leader, cpus: 4}\n").unwrap();
    let bad = plan(&["--cluster", file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("cluster.yaml:2:") && text(&bad).contains("`leader`, not one of manager, worker"), "{}", text(&bad));

    let host = plan(&["--cluster", "stacks/data-platform/cluster.yaml", "--target", "host"]);
    assert_eq!(host.status.code(), Some(2), "{}", text(&host));
    assert!(text(&host).contains("cannot be used with"), "{}", text(&host));
}

