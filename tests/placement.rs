//! The placement planner (swarmkit's scheduler, predicted) and cluster files.
//!
//! Table tests pin each rule to a case small enough to work out by hand; property tests check
//! the safety rules on random clusters; the cluster-file tests check the format and its errors;
//! the data-platform example is planned against its documented cluster file.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use swarmctl::diagnostics::Diagnostics;
use swarmctl::model::node::{Availability, HostPort, Node, Role, State, NANO_CPUS_PER_CPU};
use swarmctl::plan::placement::{
    compare, plan_placement, stack_demands, wave_order, Demand, DemandError, PlacementInputError, PlacementPlan, Refusal, Spread, TaskCounts,
};
use swarmctl::spec::cluster;
use swarmctl::spec::source::Sources;
use swarmctl::spec::{load, LoadOptions, Loaded};

const GIB: u64 = 1 << 30;

/// A ready, active worker with 4 CPUs and 8 GiB.
fn node(name: &str) -> Node {
    let mut node = Node::new(name);
    node.resources.nano_cpus = 4 * NANO_CPUS_PER_CPU;
    node.resources.memory_bytes = 8 * GIB;
    node.platform.os = "linux".into();
    node.platform.architecture = "x86_64".into();
    node
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> Node {
    let mut node = node(name);
    node.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    node
}

fn cpus(cpus: f64) -> u64 {
    (cpus * NANO_CPUS_PER_CPU as f64) as u64
}

fn with_constraints(mut demand: Demand, constraints: &[&str]) -> Demand {
    demand.constraints = constraints.iter().map(|c| c.parse().unwrap()).collect();
    demand
}

fn with_spread(mut demand: Demand, spread: &[&str]) -> Demand {
    demand.spread = spread.iter().map(|s| Spread::new(s)).collect();
    demand
}

fn plan(nodes: &[Node], demands: &[Demand]) -> PlacementPlan {
    plan_placement(nodes, demands).unwrap()
}

/// Tasks of `service` on each node, in node order.
fn counts(plan: &PlacementPlan, nodes: &[Node], service: &str) -> Vec<u32> {
    nodes.iter().map(|n| plan.count(service, &n.id)).collect()
}

/// Tasks of a stack service (all its statefulset ordinals) on each node.
fn stack_counts(plan: &PlacementPlan, nodes: &[Node], stack_service: &str) -> Vec<u32> {
    let services: Vec<&str> = plan.services.iter().filter(|s| s.stack_service == stack_service).map(|s| s.service.as_str()).collect();
    nodes.iter().map(|n| services.iter().map(|s| plan.count(s, &n.id)).sum()).collect()
}

fn reasons(plan: &PlacementPlan, service: &str) -> Vec<(String, String)> {
    plan.problems.iter().filter(|p| p.service == service).flat_map(|p| p.reasons.iter().map(|r| (r.node.clone(), r.message.clone()))).collect()
}

// ---------------------------------------------------------------- constraints

/// Three nodes that differ in everything a constraint can read.
fn constraint_nodes() -> Vec<Node> {
    let mut m1 = labelled("m1", &[("tier", "data")]);
    m1.id = "id-m1".into();
    m1.role = Role::Manager;
    m1.engine_labels.insert("disk".into(), "ssd".into());
    m1.addr = Some("10.0.0.1".into());
    let mut w1 = labelled("w1", &[("tier", "app")]);
    w1.engine_labels.insert("disk".into(), "hdd".into());
    w1.platform.architecture = "aarch64".into();
    w1.addr = Some("10.0.1.1".into());
    let mut w2 = node("w2");
    w2.platform.os = "windows".into();
    vec![m1, w1, w2]
}

#[test]
fn each_constraint_form_matches_as_swarmkit_matches() {
    let nodes = constraint_nodes();
    #[rustfmt::skip]
    let table: &[(&str, [u32; 3])] = &[
        ("node.role==manager", [1, 0, 0]),
        ("node.role != manager", [0, 1, 1]),
        ("node.role==MANAGER", [1, 0, 0]),
        ("node.role==worker", [0, 1, 1]),
        ("node.hostname==w1", [0, 1, 0]),
        ("node.hostname!=w1", [1, 0, 1]),
        ("node.id==id-m1", [1, 0, 0]),
        ("node.id!=id-m1", [0, 1, 1]),
        ("node.id==m1", [0, 0, 0]),
        ("node.labels.tier==data", [1, 0, 0]),
        ("node.labels.tier==DATA", [1, 0, 0]),
        ("node.labels.tier!=data", [0, 1, 1]),
        ("node.labels.TIER==data", [0, 0, 0]),
        ("Node.Labels.tier==data", [1, 0, 0]),
        ("engine.labels.disk==ssd", [1, 0, 0]),
        ("engine.labels.disk!=ssd", [0, 1, 1]),
        ("node.platform.os==linux", [1, 1, 0]),
        ("node.platform.os!=linux", [0, 0, 1]),
        ("node.platform.arch==aarch64", [0, 1, 0]),
        ("node.platform.arch!=aarch64", [1, 0, 1]),
        ("node.ip==10.0.0.1", [1, 0, 0]),
        ("node.ip==10.0.0.0/16", [1, 1, 0]),
        ("node.ip!=10.0.1.0/24", [1, 0, 1]),
        ("node.lables.tier==data", [0, 0, 0]),
        ("node.lables.tier!=data", [0, 0, 0]),
    ];
    for (expression, expected) in table {
        // Global: one task on each node the constraint lets in.
        let global = with_constraints(Demand::global("g"), &[expression]);
        let planned = plan(&nodes, &[global]);
        assert_eq!(counts(&planned, &nodes, "g"), expected, "global, {expression}");
        // Replicated, one replica per matching node at most: the same nodes.
        let wanted: u32 = expected.iter().sum();
        let mut replicated = with_constraints(Demand::replicated("r", wanted.max(1)), &[expression]);
        replicated.max_replicas_per_node = Some(1);
        let planned = plan(&nodes, &[replicated]);
        assert_eq!(counts(&planned, &nodes, "r"), expected, "replicated, {expression}");
        assert_eq!(planned.problems.is_empty(), wanted > 0, "{expression}: {}", planned.render());
    }
}

#[test]
fn all_constraints_must_hold() {
    let nodes = constraint_nodes();
    let demand = with_constraints(Demand::global("g"), &["node.platform.os==linux", "node.role==worker"]);
    assert_eq!(counts(&plan(&nodes, &[demand]), &nodes, "g"), [0, 1, 0]);
}

#[test]
fn unknown_constraint_keys_are_noted_with_a_suggestion() {
    let nodes = constraint_nodes();
    let demand = with_constraints(Demand::replicated("web", 1), &["node.lables.tier==data"]);
    let planned = plan(&nodes, &[demand]);
    assert_eq!(planned.problems.len(), 1);
    assert!(planned.notes[0].contains("did you mean `node.labels.tier`?"), "{:?}", planned.notes);
    assert!(planned.problems[0].reasons[0].message.contains("is not a key Swarm knows"), "{:?}", planned.problems);
}

// ---------------------------------------------------------------- spread

#[test]
fn spread_over_uneven_racks_gives_each_rack_its_share() {
    let nodes: Vec<Node> =
        [("a1", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c"), ("c2", "c"), ("c3", "c")].iter().map(|(n, r)| labelled(n, &[("rack", r)])).collect();
    #[rustfmt::skip]
    let table: &[(u32, [u32; 6])] = &[
        (1, [1, 0, 0, 0, 0, 0]),
        (3, [1, 1, 0, 1, 0, 0]),
        (5, [2, 1, 1, 1, 0, 0]),
        (6, [2, 1, 1, 1, 1, 0]),
        (9, [3, 2, 1, 1, 1, 1]),
    ];
    for (replicas, expected) in table {
        let demand = with_spread(Demand::replicated("web", *replicas), &["node.labels.rack"]);
        assert_eq!(counts(&plan(&nodes, &[demand]), &nodes, "web"), expected, "{replicas} replicas");
    }
}

#[test]
fn nodes_without_the_label_form_their_own_group() {
    let nodes = vec![labelled("a1", &[("rack", "a")]), labelled("b1", &[("rack", "b")]), node("x1"), node("x2")];
    let demand = with_spread(Demand::replicated("web", 6), &["node.labels.rack"]);
    assert_eq!(counts(&plan(&nodes, &[demand]), &nodes, "web"), [2, 2, 1, 1]);
}

#[test]
fn nested_spread_splits_within_each_group() {
    let nodes = vec![
        labelled("a-r1", &[("zone", "a"), ("rack", "r1")]),
        labelled("a-r2", &[("zone", "a"), ("rack", "r2")]),
        labelled("b-r3-1", &[("zone", "b"), ("rack", "r3")]),
        labelled("b-r3-2", &[("zone", "b"), ("rack", "r3")]),
    ];
    let demand = with_spread(Demand::replicated("web", 6), &["node.labels.zone", "node.labels.rack"]);
    // Zones 3 / 3; in zone a racks r1 / r2 take 2 / 1; rack r3's two nodes 2 / 1.
    assert_eq!(counts(&plan(&nodes, &[demand]), &nodes, "web"), [2, 1, 2, 1]);
    // The order of preferences matters: by rack first, three racks take 2 each.
    let by_rack = with_spread(Demand::replicated("web", 6), &["node.labels.rack", "node.labels.zone"]);
    assert_eq!(counts(&plan(&nodes, &[by_rack]), &nodes, "web"), [2, 2, 1, 1]);
}

#[test]
fn spread_over_engine_labels_and_skipped_descriptors() {
    let mut nodes = vec![node("n1"), node("n2"), node("n3")];
    nodes[0].engine_labels.insert("disk".into(), "ssd".into());
    let engine = with_spread(Demand::replicated("web", 4), &["engine.labels.disk"]);
    assert_eq!(counts(&plan(&nodes, &[engine]), &nodes, "web"), [2, 1, 1]);
    let skipped = with_spread(Demand::replicated("web", 3), &["node.role"]);
    let planned = plan(&nodes, &[skipped]);
    assert_eq!(counts(&planned, &nodes, "web"), [1, 1, 1]);
    assert!(planned.notes[0].contains("spread `node.role` is skipped by Swarm"), "{:?}", planned.notes);
}

#[test]
fn a_branch_with_no_room_hands_its_share_to_the_emptier_branch() {
    // Rack c is drained: its share is re-split without counting what a and b already have
    // (swarmkit); visiting the emptier branch first keeps it even.
    let mut nodes: Vec<Node> = [("a1", "a"), ("b1", "b"), ("c1", "c")].iter().map(|(n, r)| labelled(n, &[("rack", r)])).collect();
    nodes[2].availability = Availability::Drain;
    let demand = with_spread(Demand::replicated("web", 4), &["node.labels.rack"]);
    assert_eq!(counts(&plan(&nodes, &[demand]), &nodes, "web"), [2, 2, 0]);
}

#[test]
fn ordinals_count_together_unless_told_otherwise() {
    let nodes = vec![node("n1"), node("n2"), node("n3")];
    nodes_then(&nodes);
    fn nodes_then(nodes: &[Node]) {
        let ordinal = |i: u32, group: &str| {
            let mut demand = Demand::replicated(&format!("db-{i}"), 1);
            demand.stack_service = "db".into();
            demand.group = group.into();
            demand.max_replicas_per_node = Some(1);
            demand
        };
        // n1 is the emptiest node: counted as one service, the ordinals still keep apart.
        let mut nodes = nodes.to_vec();
        nodes[1].reserved.tasks = 1;
        nodes[2].reserved.tasks = 1;
        let grouped: Vec<Demand> = (0..3).map(|i| ordinal(i, "db")).collect();
        let planned = plan(&nodes, &grouped);
        assert_eq!(stack_counts(&planned, &nodes, "db"), [1, 1, 1]);
        // Counted alone (Swarm with unpinned ordinals), each goes to the emptiest node.
        nodes[1].reserved.tasks = 5;
        nodes[2].reserved.tasks = 5;
        let alone: Vec<Demand> = (0..3).map(|i| ordinal(i, &format!("db-{i}"))).collect();
        let planned = plan(&nodes, &alone);
        assert_eq!(stack_counts(&planned, &nodes, "db"), [3, 0, 0]);
    }
}

#[test]
fn one_replica_services_spread_over_the_emptiest_branch() {
    // Three ordinals of a statefulset, each its own one-replica service: one per zone.
    let nodes: Vec<Node> = [("a1", "a"), ("b1", "b"), ("c1", "c")].iter().map(|(n, z)| labelled(n, &[("zone", z)])).collect();
    let ordinals: Vec<Demand> = (0..3).map(|i| with_spread(Demand::replicated(&format!("db-{i}"), 1), &["node.labels.zone"])).collect();
    let planned = plan(&nodes, &ordinals);
    assert_eq!((0..3).map(|i| counts(&planned, &nodes, &format!("db-{i}"))).collect::<Vec<_>>(), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
}

// ---------------------------------------------------------------- node order

#[test]
fn emptier_nodes_go_first_and_ties_go_to_the_first_listed() {
    let mut nodes = vec![node("busy"), node("idle"), node("also-idle")];
    nodes[0].reserved.tasks = 5;
    let planned = plan(&nodes, &[Demand::replicated("one", 1), Demand::replicated("two", 2)]);
    assert_eq!(counts(&planned, &nodes, "one"), [0, 1, 0]);
    // `idle` now holds one task, `also-idle` none.
    assert_eq!(counts(&planned, &nodes, "two"), [0, 1, 1]);
    let planned = plan(&nodes, &[Demand::replicated("seven", 7)]);
    assert_eq!(counts(&planned, &nodes, "seven"), [2, 3, 2], "round robin after the first pass");
}

#[test]
fn the_first_pass_moves_on_when_the_next_node_has_fewer_tasks_in_all() {
    // swarmkit's `nodeLess` in the fill loop: equal tasks of the service, fewer tasks in all.
    let mut nodes = vec![node("a"), node("b")];
    nodes[1].reserved.tasks = 5;
    let first = Demand::replicated("first", 1);
    let mut second = Demand::replicated("second", 2);
    second.group = "first".into();
    let planned = plan(&nodes, &[first, second]);
    assert_eq!(counts(&planned, &nodes, "first"), [1, 0]);
    // b is tried first (none of the group's tasks); after one task there, a (one of the group's,
    // one in all) is better than b (one, six).
    assert_eq!(counts(&planned, &nodes, "second"), [1, 1]);
}

#[test]
fn services_are_placed_in_the_order_given() {
    let nodes = vec![node("n1"), node("n2")];
    let mut big = Demand::replicated("big", 1);
    big.reserve_nano_cpus = cpus(3.0);
    let mut small = Demand::replicated("small", 2);
    small.reserve_nano_cpus = cpus(2.5);
    // big first: n1 takes it, small's two land on n2 and… nowhere.
    let planned = plan(&nodes, &[big.clone(), small.clone()]);
    assert_eq!(counts(&planned, &nodes, "small"), [0, 1]);
    assert_eq!(planned.problems.len(), 1);
    // small first: one on each, then big fits nowhere.
    let planned = plan(&nodes, &[small, big]);
    assert_eq!(counts(&planned, &nodes, "small"), [1, 1]);
    assert_eq!(planned.problems[0].service, "big");
}

// ---------------------------------------------------------------- limits

#[test]
fn max_replicas_per_node_caps_each_node() {
    let nodes = vec![node("n1"), node("n2"), node("n3")];
    let mut demand = Demand::replicated("web", 5);
    demand.max_replicas_per_node = Some(2);
    assert_eq!(counts(&plan(&nodes, &[demand.clone()]), &nodes, "web"), [2, 2, 1]);
    demand.mode = swarmctl::plan::placement::Mode::Replicated { replicas: 7 };
    let planned = plan(&nodes, &[demand]);
    assert_eq!(counts(&planned, &nodes, "web"), [2, 2, 2]);
    assert_eq!(planned.problems[0].to_string(), "web: 1 of 7 tasks cannot be placed: n1, n2, n3: max_replicas_per_node 2 reached");
}

#[test]
fn reservations_that_do_not_fit_leave_tasks_pending() {
    let mut nodes = vec![node("n1"), node("n2")];
    nodes[0].resources.nano_cpus = cpus(2.0);
    nodes[1].resources.memory_bytes = 3 * GIB;
    nodes[1].reserved.memory_bytes = GIB;
    let mut demand = Demand::replicated("db", 5);
    demand.reserve_nano_cpus = cpus(1.0);
    demand.reserve_memory_bytes = GIB;
    let planned = plan(&nodes, &[demand]);
    assert_eq!(counts(&planned, &nodes, "db"), [2, 2]);
    assert_eq!(
        reasons(&planned, "db"),
        [("n1".to_string(), "2 CPUs reserved of 2, needs 1".to_string()), ("n2".to_string(), "3GiB memory reserved of 3GiB, needs 1GiB".to_string())]
    );
    let n1 = &planned.nodes[0];
    assert_eq!((n1.remaining_nano_cpus, n1.remaining_memory_bytes, n1.planned_tasks), (0, 6 * GIB as i64, 2));
    let n2 = &planned.nodes[1];
    assert_eq!((n2.remaining_nano_cpus, n2.remaining_memory_bytes), (cpus(2.0) as i64, 0));
}

#[test]
fn a_task_reserving_nothing_fits_an_over_reserved_node() {
    let mut nodes = vec![node("n1")];
    nodes[0].reserved.nano_cpus = cpus(6.0);
    let planned = plan(&nodes, &[Demand::replicated("web", 2)]);
    assert_eq!(counts(&planned, &nodes, "web"), [2]);
    assert_eq!(planned.nodes[0].remaining_nano_cpus, -(cpus(2.0) as i64));
}

#[test]
fn host_mode_ports_take_one_task_per_node() {
    let mut nodes = vec![node("n1"), node("n2")];
    nodes[1].reserved.host_ports.push(HostPort { protocol: "tcp".into(), port: 80 });
    let mut lb = Demand::replicated("lb", 2);
    lb.host_ports.push(HostPort { protocol: "tcp".into(), port: 80 });
    let planned = plan(&nodes, &[lb]);
    assert_eq!(counts(&planned, &nodes, "lb"), [1, 0]);
    assert_eq!(reasons(&planned, "lb")[1].1, "host port 80/tcp already taken");
}

// ---------------------------------------------------------------- node availability and state

#[test]
fn drained_paused_and_down_nodes_take_nothing_new() {
    #[rustfmt::skip]
    let table: &[(Availability, State, &str, u32)] = &[
        (Availability::Drain, State::Ready, "drained", 0),
        (Availability::Pause, State::Ready, "availability pause, takes no new tasks", 0),
        (Availability::Active, State::Down, "down, takes no tasks", 0),
        // The global orchestrator still creates a task for an unknown or disconnected node;
        // it stays Pending.
        (Availability::Active, State::Disconnected, "disconnected, takes no tasks", 1),
        (Availability::Active, State::Unknown, "unknown, takes no tasks", 1),
    ];
    for (availability, state, why, global_pending) in table {
        let mut nodes = vec![node("n1"), node("n2")];
        nodes[1].availability = *availability;
        nodes[1].state = *state;
        let planned = plan(&nodes, &[Demand::replicated("web", 3), Demand::global("agent")]);
        assert_eq!(counts(&planned, &nodes, "web"), [3, 0], "{why}");
        assert_eq!(counts(&planned, &nodes, "agent"), [1, 0], "{why}");
        let agent = planned.services.iter().find(|s| s.service == "agent").unwrap();
        assert_eq!(agent.wanted, 1 + global_pending, "{why}");
        let mut web = Demand::replicated("web", 1);
        web.max_replicas_per_node = Some(1);
        let mut too_many = web.clone();
        too_many.mode = swarmctl::plan::placement::Mode::Replicated { replicas: 2 };
        let planned = plan(&nodes, &[too_many]);
        assert_eq!(reasons(&planned, "web")[1], ("n2".to_string(), why.to_string()));
    }
}

#[test]
fn global_services_run_once_on_every_eligible_node() {
    let nodes = vec![labelled("n1", &[("tier", "lb")]), labelled("n2", &[("tier", "lb")]), labelled("n3", &[("tier", "app")])];
    let lb = with_constraints(Demand::global("nginx"), &["node.labels.tier==lb"]);
    let planned = plan(&nodes, &[lb]);
    assert_eq!(counts(&planned, &nodes, "nginx"), [1, 1, 0]);
    assert!(planned.problems.is_empty());
    let nowhere = with_constraints(Demand::global("edge"), &["node.labels.tier==edge"]);
    let planned = plan(&nodes, &[nowhere]);
    assert!(planned.notes[0].contains("edge: global, but no node meets its constraints"), "{:?}", planned.notes);
    // A global task that does not fit its node stays Pending there.
    let mut heavy = Demand::global("heavy");
    heavy.reserve_memory_bytes = 10 * GIB;
    let planned = plan(&nodes, &[heavy]);
    assert_eq!(planned.problems[0].to_string(), "heavy: 3 of 3 tasks cannot be placed: n1, n2, n3: 0B memory reserved of 8GiB, needs 10GiB");
}

// ---------------------------------------------------------------- statefulsets

#[test]
fn pinned_ordinals_go_only_where_their_volume_is() {
    let nodes = vec![node("n1"), node("n2"), node("n3")];
    let mut db0 = Demand::replicated("db-0", 1);
    db0.pinned_to = Some("n3".into());
    let mut db1 = Demand::replicated("db-1", 1);
    db1.pinned_to = Some("n3".into());
    let db2 = Demand::replicated("db-2", 1);
    let planned = plan(&nodes, &[db0, db1, db2]);
    assert_eq!(counts(&planned, &nodes, "db-0"), [0, 0, 1]);
    assert_eq!(counts(&planned, &nodes, "db-1"), [0, 0, 1], "a pin wins over node order");
    assert_eq!(counts(&planned, &nodes, "db-2"), [1, 0, 0]);
    // Pinned to a node that cannot take it: Pending, and the reason says where it must go.
    let mut nodes = nodes;
    nodes[2].availability = Availability::Drain;
    let mut db0 = Demand::replicated("db-0", 1);
    db0.pinned_to = Some("n3".into());
    let planned = plan(&nodes, &[db0]);
    assert_eq!(planned.problems[0].to_string(), "db-0: 1 of 1 task cannot be placed: n1, n2: pinned to n3, where its volume is; n3: drained");
}

// ---------------------------------------------------------------- impossible services

#[test]
fn an_impossible_service_says_why_on_each_node() {
    let mut nodes = vec![labelled("node-1", &[("tier", "app")]), labelled("node-2", &[("tier", "data")]), labelled("node-3", &[("tier", "data")])];
    nodes[1].resources.nano_cpus = cpus(2.0);
    nodes[1].reserved.nano_cpus = cpus(1.5);
    let mut db = with_constraints(Demand::replicated("db", 2), &["node.labels.tier==data"]);
    db.max_replicas_per_node = Some(1);
    db.reserve_nano_cpus = cpus(1.0);
    let planned = plan(&nodes, &[db]);
    assert_eq!(counts(&planned, &nodes, "db"), [0, 0, 1]);
    assert_eq!(
        planned.problems[0].to_string(),
        "db: 1 of 2 tasks cannot be placed: node-1: constraint node.labels.tier==data not met (tier is `app`); \
         node-2: 1.5 CPUs reserved of 2, needs 1; node-3: max_replicas_per_node 1 reached"
    );
    assert!(matches!(planned.problems[0].reasons[1].reason, Refusal::Cpu { .. }));
    assert!(planned.check().is_err());
}

#[test]
fn the_same_node_twice_is_refused() {
    let error = plan_placement(&[node("n1"), node("n1")], &[]).unwrap_err();
    assert_eq!(error, PlacementInputError::DuplicateNode("n1".into()));
    let error = plan_placement(&[node("n1")], &[Demand::replicated("a", 1), Demand::replicated("a", 1)]).unwrap_err();
    assert_eq!(error, PlacementInputError::DuplicateService("a".into()));
    let absurd = with_spread(Demand::replicated("a", 1), &["node.labels.x"; 1000]);
    let error = plan_placement(&[node("n1")], &[absurd]).unwrap_err();
    assert_eq!(error.to_string(), "service `a` has 1000 spread preferences, more than 32");
    let error = plan_placement(&[node("n1")], &[Demand::replicated("a", 600_000), Demand::replicated("b", 600_000)]).unwrap_err();
    assert_eq!(error.to_string(), "the services ask for 1200000 tasks, more than the 1000000 a plan takes");
}

// ---------------------------------------------------------------- output

fn small_plan() -> (Vec<Node>, PlacementPlan) {
    let mut nodes = vec![labelled("node-1", &[("zone", "a")]), labelled("node-2", &[("zone", "b")]), labelled("node-3", &[("zone", "b")])];
    nodes[0].role = Role::Manager;
    nodes[2].availability = Availability::Drain;
    let mut web = with_spread(Demand::replicated("web", 3), &["node.labels.zone"]);
    web.reserve_nano_cpus = cpus(0.5);
    web.reserve_memory_bytes = 512 << 20;
    let mut db = Demand::replicated("db", 3);
    db.max_replicas_per_node = Some(1);
    db.reserve_nano_cpus = cpus(2.0);
    let agent = Demand::global("agent");
    let planned = plan(&nodes, &[db, web, agent]);
    (nodes, planned)
}

#[test]
fn text_form_is_stable() {
    let (_, planned) = small_plan();
    let expected = "\
placement: 7 of 8 tasks on 3 nodes
SERVICE         node-1  node-2  node-3  PLACED
db                   1       1       -   2/3 !
web                  2       1       -     3/3
agent (global)       1       1       -     2/2

NODE    CPUS FREE     MEMORY FREE  TASKS
node-1     1 of 4    7GiB of 8GiB      4
node-2   1.5 of 4  7.5GiB of 8GiB      3
node-3     4 of 4    8GiB of 8GiB      0

cannot place:
  db: 1 of 3 tasks cannot be placed: node-1, node-2: max_replicas_per_node 1 reached; node-3: drained
";
    assert_eq!(planned.render(), expected);
}

#[test]
fn json_form_names_every_count_and_reason() {
    let (_, planned) = small_plan();
    let json = serde_json::to_value(&planned).unwrap();
    assert_eq!(json["services"][1]["service"], "web");
    assert_eq!(json["services"][1]["nodes"]["node-1"], 2);
    assert_eq!(json["nodes"][0]["remaining_nano_cpus"], 1_000_000_000i64);
    assert_eq!(json["problems"][0]["reasons"][2]["reason"]["kind"], "unavailable");
    assert_eq!(json["problems"][0]["reasons"][2]["message"], "drained");
}

#[test]
fn planning_is_deterministic() {
    let (nodes, first) = small_plan();
    for _ in 0..5 {
        assert_eq!(small_plan().1, first);
    }
    assert_eq!(first.nodes.len(), nodes.len());
}

#[test]
fn observed_placement_is_compared_service_by_service() {
    let (nodes, planned) = small_plan();
    let predicted = planned.counts();
    let mut observed = TaskCounts::default();
    observed.add("db", "node-1", 1);
    observed.add("db", "node-2", 1);
    observed.add("web", "node-1", 1);
    observed.add("web", "node-2", 2);
    observed.add("agent", "node-1", 1);
    observed.add("agent", "node-2", 1);
    let same_totals = compare(&predicted, &observed);
    assert!(same_totals.totals.is_empty());
    assert_eq!(same_totals.nodes.len(), 2);
    observed.add("web", "gone-node", 1);
    let comparison = compare(&predicted, &observed);
    assert_eq!(comparison.totals.len(), 1);
    assert_eq!((comparison.totals[0].predicted, comparison.totals[0].observed), (3, 4));
    let text = comparison.render(&planned.nodes, &predicted, &observed);
    assert!(text.starts_with("web: 4 tasks placed, 3 predicted\n"), "{text}");
    assert!(text.contains("web on node-2: 2 tasks, 1 predicted"), "{text}");
    assert!(text.contains("gone-node"), "an observed node outside the plan gets its own column:\n{text}");
    assert!(compare(&predicted, &predicted).is_empty());
    assert_eq!(nodes.len(), 3);
}

// ---------------------------------------------------------------- demands from a stack

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_stack(path: &Path, set: &[&str], overlays: &[&str]) -> Loaded {
    let options = LoadOptions {
        path: path.to_path_buf(),
        set: set.iter().map(|s| s.to_string()).collect(),
        overlays: overlays.iter().map(|o| root().join("overlays").join(o)).collect(),
        ..LoadOptions::default()
    };
    load(&options, &|_: &str| None::<String>).unwrap_or_else(|failure| {
        let messages: Vec<String> = failure.diagnostics.0.iter().map(|d| d.render(&failure.sources, false)).collect();
        panic!("{} does not load:\n{}", path.display(), messages.join(""))
    })
}

fn stack_from(yaml: &str) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    let loaded = load_stack(&dir.path().join("stack.yaml"), &[], &[]);
    (dir, loaded)
}

#[test]
fn invalid_constraints_are_errors_naming_service_and_expression() {
    let (_dir, loaded) = stack_from(
        "name: s\nservices:\n  web:\n    image: nginx\n    deploy:\n      placement:\n        constraints: [\"node.role = manager\", \"node.labels.ok==1\", \"x==y\"]\n  api:\n    image: nginx\n    deploy:\n      placement:\n        constraints: [\"node.labels.a==\\\"quoted\\\"\"]\n",
    );
    let errors = stack_demands(&loaded.stack, &[], &BTreeMap::new()).unwrap_err();
    let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        messages,
        [
            "service `api`: placement constraint `node.labels.a==\"quoted\"` is invalid: value `\"quoted\"` is invalid",
            "service `web`: placement constraint `node.role = manager` is invalid: expected one operator from ==, !=",
            "service `web`: placement constraint `x==y` is invalid: key `x` is invalid",
        ]
    );
    assert!(errors[1].hint().contains("KEY == VALUE"));
    let unknown = stack_demands(&loaded.stack, &["nope".to_string()], &BTreeMap::new()).unwrap_err();
    assert!(unknown.contains(&DemandError::UnknownService("nope".into())));
    // The loader refuses such a stack already; a hand-built one is refused here too.
    let mut huge = loaded.stack.services["web"].clone();
    huge.name = "db".into();
    huge.placement.constraints.clear();
    huge.replicas = 4_000_000_000;
    let errors = Demand::from_service(&huge).unwrap_err();
    assert_eq!(errors[0].to_string(), "service `db`: 4000000000 replicas, more than the 1000000 a plan takes");
}

#[test]
fn demands_follow_the_service_kind() {
    let (_dir, loaded) = stack_from(
        "name: s\nservices:\n  web:\n    image: nginx\n    deploy:\n      replicas: 3\n      placement:\n        constraints: [node.labels.tier==app]\n        preferences: [{spread: node.labels.zone}]\n        max_replicas_per_node: 2\n      resources:\n        reservations: {cpus: \"0.25\", memory: 512m}\n  agent:\n    image: nginx\n    deploy:\n      mode: global\n  db:\n    image: postgres\n    x-kind: statefulset\n    deploy:\n      replicas: 2\n",
    );
    let pins = BTreeMap::from([("db-1".to_string(), "node-2".to_string())]);
    let order = ["db".to_string(), "web".to_string()];
    let demands = stack_demands(&loaded.stack, &order, &pins).unwrap();
    let names: Vec<&str> = demands.iter().map(|d| d.service.as_str()).collect();
    assert_eq!(names, ["db-0", "db-1", "web", "agent"], "in the order given, the rest by name");
    assert_eq!((demands[0].pinned_to.as_deref(), demands[1].pinned_to.as_deref()), (None, Some("node-2")));
    assert_eq!(demands[1].stack_service, "db");
    let web = &demands[2];
    assert_eq!(web.mode, swarmctl::plan::placement::Mode::Replicated { replicas: 3 });
    assert_eq!((web.reserve_nano_cpus, web.reserve_memory_bytes, web.max_replicas_per_node), (cpus(0.25), 512 << 20, Some(2)));
    assert_eq!(web.constraints[0].expression, "node.labels.tier==app");
    assert_eq!(web.spread[0].descriptor, "node.labels.zone");
    assert_eq!(demands[3].mode, swarmctl::plan::placement::Mode::Global);
    let single = Demand::for_ordinal(&loaded.stack.services["db"], 7, Some("node-9")).unwrap();
    assert_eq!((single.service.as_str(), single.pinned_to.as_deref()), ("db-7", Some("node-9")));
}

// ---------------------------------------------------------------- cluster files

fn parse_cluster(text: &str) -> (Option<Vec<Node>>, Vec<String>) {
    let mut sources = Sources::default();
    let file = sources.add(Path::new("cluster.yaml"), text);
    let mut out = Diagnostics::default();
    let nodes = cluster::parse(text, file, &mut out);
    let rendered = out.sorted().0.iter().map(|d| format!("{}: {}{}", sources.locate(d.pos.unwrap()), d.message, d.hint.as_deref().map(|h| format!(" [{h}]")).unwrap_or_default())).collect();
    (nodes, rendered)
}

#[test]
fn a_valid_cluster_file_gives_its_nodes() {
    let text = "\
x-worker: &worker
  cpus: 4
  memory: 8GiB
nodes:
  node-1:
    <<: *worker
    role: manager
    labels: {zone: a, ssd: true, empty: }
  node-2:
    <<: *worker
    cpus: 0.5
    memory: 512M
    availability: drain
    state: down
    labels: [\"zone=b\", flag]
    engine_labels: {disk: hdd}
    platform: {os: linux, arch: aarch64}
    addr: 10.0.0.2
    id: abc123
    hostname: host-two
    reserved: {cpus: 0.25, memory: 128m, tasks: 3}
";
    let (nodes, problems) = parse_cluster(text);
    assert_eq!(problems, Vec::<String>::new());
    let nodes = nodes.unwrap();
    assert_eq!(nodes.len(), 2);
    let one = &nodes[0];
    assert_eq!((one.id.as_str(), one.hostname.as_str(), one.role), ("node-1", "node-1", Role::Manager));
    assert_eq!((one.resources.nano_cpus, one.resources.memory_bytes), (4 * NANO_CPUS_PER_CPU, 8 * GIB));
    assert_eq!(one.labels, BTreeMap::from([("zone".into(), "a".into()), ("ssd".into(), "true".into()), ("empty".into(), String::new())]));
    assert_eq!((one.platform.os.as_str(), one.platform.architecture.as_str()), ("linux", "x86_64"));
    let two = &nodes[1];
    assert_eq!((two.id.as_str(), two.hostname.as_str()), ("abc123", "host-two"));
    assert_eq!((two.availability, two.state), (Availability::Drain, State::Down));
    assert_eq!((two.resources.nano_cpus, two.resources.memory_bytes), (NANO_CPUS_PER_CPU / 2, 512 << 20));
    assert_eq!(two.labels, BTreeMap::from([("zone".into(), "b".into()), ("flag".into(), String::new())]));
    assert_eq!(two.engine_labels["disk"], "hdd");
    assert_eq!(two.platform.architecture, "aarch64");
    assert_eq!(two.addr.as_deref(), Some("10.0.0.2"));
    assert_eq!((two.reserved.nano_cpus, two.reserved.memory_bytes, two.reserved.tasks), (NANO_CPUS_PER_CPU / 4, 128 << 20, 3));
}

#[test]
fn bad_cluster_files_get_every_error_with_its_position() {
    let text = "\
nodez: {}
nodes:
  node-1:
    role: leader
    cpus: four
    memory: 8 parsecs
    lables: {zone: a}
    availability: drained
    platform: {os: linux, archh: arm64}
    addr: somewhere
    reserved: {cpus: 1, tasks: -1}
  node-2:
    labels: {zone: [a, b]}
    memory: 16
  bad name:
    cpus: 200000
    memory: 2048TiB
    hostname: node-1
";
    let (_, problems) = parse_cluster(text);
    assert_eq!(
        problems,
        [
            "cluster.yaml:1:1: unknown key `nodez` at the top level [did you mean `nodes`?]",
            "cluster.yaml:2:1: no node has `role: manager`; a Swarm needs at least one manager [add `role: manager` to one node (three for a manager quorum that survives one loss)]",
            "cluster.yaml:4:11: `role` in node `node-1` is `leader`, not one of manager, worker [write one of manager, worker]",
            "cluster.yaml:5:11: `cpus` in node `node-1` must be a number of CPUs, not `four` [write e.g. `cpus: 4` or `cpus: 0.5`]",
            "cluster.yaml:6:13: `memory` in node `node-1` must be a size, not `8 parsecs` [write bytes or a size with a unit (k, m, g, t; KiB, MiB, GiB, TiB), e.g. `memory: 16GiB`]",
            "cluster.yaml:7:5: unknown key `lables` in node `node-1` [did you mean `labels`?]",
            "cluster.yaml:8:19: `availability` in node `node-1` is `drained`, not one of active, pause, drain [did you mean `drain`?]",
            "cluster.yaml:9:27: unknown key `archh` in node `node-1`'s platform [did you mean `arch`?]",
            "cluster.yaml:10:11: `addr` in node `node-1` is `somewhere`, not an IP address [write the node's address, e.g. `addr: 10.0.0.11`]",
            "cluster.yaml:11:32: `tasks` in node `node-1`'s reserved must be a count of tasks (0 to 1000000), not `-1` [write how many tasks of other stacks run there, e.g. `tasks: 3`]",
            "cluster.yaml:12:3: node `node-2` has no `cpus` [every node says what it has, e.g. `cpus: 4` and `memory: 8GiB`, so reservations can be checked]",
            "cluster.yaml:13:20: label `zone` in node `node-2` must be a single value, not a list [label values are text, e.g. `zone: zone-a`]",
            "cluster.yaml:14:13: `memory` in node `node-2` is 16 bytes [sizes without a unit are bytes; did you mean `16GiB`?]",
            "cluster.yaml:15:3: node name `bad name` is not a host name [use letters, digits, `.`, `-` and `_` (at most 253), e.g. `node-1`]",
            "cluster.yaml:16:11: `cpus` in node `bad name` is 200000, outside 0 to 100000 [write the node's CPU count, e.g. `4` or `0.5`]",
            "cluster.yaml:17:13: `memory` in node `bad name` is more than 1PiB [write the node's memory, e.g. `16GiB`]",
            "cluster.yaml:18:15: node `bad name` has the hostname `node-1` of node `node-1` [give every node its own hostname]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
    );
}

#[test]
fn cluster_files_of_the_wrong_shape_say_what_they_should_be() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        ("", "cluster.yaml:1:1: the cluster file is empty"),
        ("- node-1\n", "cluster.yaml:1:1: a cluster file is a mapping with `nodes:`, not a list"),
        ("x-a: 1\n", "cluster.yaml:1:1: the cluster file has no `nodes:`"),
        ("nodes: [a, b]\n", "cluster.yaml:1:8: `nodes` must map node names to nodes, not be a list"),
        ("nodes: {}\n", "cluster.yaml:1:8: `nodes` lists no node"),
        ("nodes:\n  a: 4\n", "cluster.yaml:2:6: node `a` must be a mapping, not an integer"),
        ("nodes:\n  a: {cpus: 1, memory: 1g}\n  a: {cpus: 1, memory: 1g}\n", "cluster.yaml:3:3: duplicate key `a`"),
        ("nodes:\n  a: {cpus: 1, memory: [1g]}\n", "cluster.yaml:2:24: `memory` in node `a` must be a size, not a list"),
        ("nodes:\n  a: {cpus: 1, memory: 1g, id: x}\n  b: {cpus: 1, memory: 1g, id: x}\n", "cluster.yaml:3:32: node `b` has the id `x` of node `a`"),
    ];
    for (text, expected) in table {
        let (_, problems) = parse_cluster(text);
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{text:?}: expected {expected:?} in {problems:#?}");
    }
}

#[test]
fn absurd_cluster_files_are_refused_quickly() {
    let mut text = String::from("x-n: &n {cpus: 1, memory: 1g}\nnodes:\n");
    for i in 0..10_001 {
        text.push_str(&format!("  n{i}: *n\n"));
    }
    let started = std::time::Instant::now();
    let (nodes, problems) = parse_cluster(&text);
    assert!(nodes.is_none());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("cluster.yaml:2:1: `nodes` lists 10001 nodes, more than the 10000"), "{problems:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn loading_a_missing_cluster_file_is_an_error_not_a_panic() {
    let failure = cluster::load(Path::new("/nonexistent/cluster.yaml")).unwrap_err();
    assert_eq!(failure.diagnostics.0[0].message, "cannot read cluster file `/nonexistent/cluster.yaml`: it does not exist");
    let dir = tempfile::tempdir().unwrap();
    let failure = cluster::load(dir.path()).unwrap_err();
    assert!(failure.diagnostics.0[0].message.ends_with("it is a directory, not a regular file"), "{:?}", failure.diagnostics);
}

// ---------------------------------------------------------------- the data-platform example

const FOUR_NODE_SETS: [&str; 5] = [
    "platform.placement.lb=node.labels.lb==true",
    "platform.placement.app=node.labels.app==true",
    "platform.placement.data=node.labels.data==true",
    "platform.placement.messaging=node.labels.messaging==true",
    "platform.placement.monitoring=node.labels.monitoring==true",
];

fn plan_data_platform(set: &[&str], overlays: &[&str]) -> (Vec<Node>, PlacementPlan) {
    let stack_dir = root().join("stacks/data-platform");
    let cluster = cluster::load(&stack_dir.join("cluster.yaml")).unwrap_or_else(|f| panic!("{:?}", f.diagnostics));
    assert!(cluster.warnings.0.is_empty(), "{:?}", cluster.warnings);
    let loaded = load_stack(&stack_dir, set, overlays);
    let order = wave_order(&loaded.stack, &loaded.graph);
    let demands = stack_demands(&loaded.stack, &order, &BTreeMap::new()).unwrap();
    let planned = plan_placement(&cluster.nodes, &demands).unwrap();
    (cluster.nodes, planned)
}

#[test]
fn the_data_platform_fits_its_documented_four_nodes() {
    let (nodes, planned) = plan_data_platform(&FOUR_NODE_SETS, &[]);
    assert!(planned.problems.is_empty(), "{}", planned.render());
    assert_eq!(nodes.len(), 4);
    // HA services: three replicas, on three different nodes.
    for service in ["api-gateway", "data-api", "redis-sentinel", "flink-taskmanager", "kafka", "mongodb", "elasticsearch", "alertmanager"] {
        assert_eq!(stack_counts(&planned, &nodes, service).iter().filter(|&&c| c == 1).count(), 3, "{service}\n{}", planned.render());
    }
    assert_eq!(counts(&planned, &nodes, "nginx"), [1, 1, 0, 0], "the load balancer on the two edge nodes");
    assert_eq!(counts(&planned, &nodes, "node-exporter"), [1, 1, 1, 1]);
    // Data on the data nodes only.
    assert_eq!(stack_counts(&planned, &nodes, "mongodb")[0] + stack_counts(&planned, &nodes, "mysql")[0], 0);
    // Room to spare on every node, as the file's comment says.
    for node in &planned.nodes {
        assert!(node.remaining_nano_cpus >= cpus(1.5) as i64, "{}", planned.render());
        assert!(node.remaining_memory_bytes >= 3 * GIB as i64, "{}", planned.render());
    }
    println!("{}", planned.render());
}

#[test]
fn the_data_platform_defaults_need_tier_labels_the_four_nodes_do_not_have() {
    let (_, planned) = plan_data_platform(&[], &[]);
    let mysql = planned.problems.iter().find(|p| p.service == "mysql-0").expect("mysql-0 cannot be placed");
    assert!(mysql.to_string().contains("constraint node.labels.tier == data not met (no label `tier`)"), "{mysql}");
    println!("{}", planned.render());
}

#[test]
fn the_data_platform_at_production_sizes_does_not_fit_four_nodes() {
    let (_, planned) = plan_data_platform(&FOUR_NODE_SETS, &["production"]);
    assert!(!planned.problems.is_empty(), "{}", planned.render());
    assert!(planned.problems.iter().any(|p| p.reasons.iter().any(|r| matches!(r.reason, Refusal::Cpu { .. } | Refusal::Memory { .. }))), "{}", planned.render());
    println!("{}", planned.render());
}

// ---------------------------------------------------------------- speed

/// `cargo test --release --test placement -- --ignored --nocapture timing_probe`
#[test]
#[ignore = "timing probe: run by hand and report the figure"]
fn timing_probe_1000_services_on_50_nodes() {
    let nodes: Vec<Node> = (0..50)
        .map(|i| {
            let mut node = labelled(&format!("node-{i}"), &[("zone", ["a", "b", "c"][i % 3]), ("tier", ["app", "data"][i % 2])]);
            node.resources.nano_cpus = 64 * NANO_CPUS_PER_CPU;
            node.resources.memory_bytes = 256 * GIB;
            node
        })
        .collect();
    let demands: Vec<Demand> = (0..1000)
        .map(|i| {
            let mut demand = Demand::replicated(&format!("svc-{i}"), 1 + (i % 5) as u32);
            if i % 2 == 0 {
                demand = with_spread(demand, &["node.labels.zone"]);
                demand.max_replicas_per_node = Some(2);
            }
            if i % 3 == 0 {
                demand = with_constraints(demand, &["node.labels.tier==app"]);
            }
            if i % 10 == 0 {
                demand = Demand::global(&format!("svc-{i}"));
            }
            demand.reserve_nano_cpus = cpus(0.1);
            demand.reserve_memory_bytes = 128 << 20;
            demand
        })
        .collect();
    let (mut best_plan, mut best_total) = (std::time::Duration::MAX, std::time::Duration::MAX);
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let planned = plan_placement(&nodes, &demands).unwrap();
        let planned_at = started.elapsed();
        let text = planned.render();
        best_plan = best_plan.min(planned_at);
        best_total = best_total.min(started.elapsed());
        assert!(planned.problems.is_empty() && !text.is_empty());
    }
    println!("1,000 services on 50 nodes, best of 5: placement {best_plan:?}, placement + text {best_total:?}");
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone)]
struct Case {
    nodes: Vec<Node>,
    demands: Vec<Demand>,
}

fn arbitrary_node(index: usize) -> impl Strategy<Value = Node> {
    (
        prop_oneof![4 => Just(Availability::Active), 1 => Just(Availability::Pause), 1 => Just(Availability::Drain)],
        prop_oneof![6 => Just(State::Ready), 1 => Just(State::Down), 1 => Just(State::Disconnected)],
        prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
        prop::option::of(prop::sample::select(vec!["app", "data"])),
        1u64..=8,
        1u64..=16,
        0u64..=2,
        0u32..=5,
        any::<bool>(),
    )
        .prop_map(move |(availability, state, rack, tier, cpus, memory, reserved_cpus, tasks, manager)| {
            let mut node = node(&format!("n{index}"));
            node.availability = availability;
            node.state = state;
            node.role = if manager { Role::Manager } else { Role::Worker };
            if let Some(rack) = rack {
                node.labels.insert("rack".into(), rack.into());
            }
            if let Some(tier) = tier {
                node.labels.insert("tier".into(), tier.into());
            }
            node.resources.nano_cpus = cpus * NANO_CPUS_PER_CPU;
            node.resources.memory_bytes = memory * GIB;
            node.reserved.nano_cpus = reserved_cpus.min(cpus) * NANO_CPUS_PER_CPU;
            node.reserved.tasks = tasks;
            node
        })
}

fn arbitrary_demand(index: usize) -> impl Strategy<Value = Demand> {
    (
        prop_oneof![5 => (0u32..=12).prop_map(Some), 1 => Just(None)],
        prop::option::of(1u32..=3),
        0u64..=8,
        0u64..=4,
        prop::sample::select(vec![vec![], vec!["node.labels.rack"], vec!["node.labels.tier", "node.labels.rack"]]),
        prop::sample::select(vec![vec![], vec!["node.labels.tier==app"], vec!["node.role!=manager"], vec!["node.labels.rack!=a", "node.labels.tier==data"]]),
    )
        .prop_map(move |(replicas, max, quarter_cpus, half_gib, spread, constraints)| {
            let name = format!("s{index}");
            let mut demand = match replicas {
                Some(replicas) => Demand::replicated(&name, replicas),
                None => Demand::global(&name),
            };
            demand.max_replicas_per_node = max;
            demand.reserve_nano_cpus = quarter_cpus * NANO_CPUS_PER_CPU / 4;
            demand.reserve_memory_bytes = half_gib * GIB / 2;
            demand = with_spread(demand, &spread);
            with_constraints(demand, &constraints)
        })
}

fn arbitrary_case() -> impl Strategy<Value = Case> {
    (1usize..=8, 1usize..=6)
        .prop_flat_map(|(nodes, demands)| {
            ((0..nodes).map(arbitrary_node).collect::<Vec<_>>(), (0..demands).map(arbitrary_demand).collect::<Vec<_>>())
        })
        .prop_map(|(nodes, demands)| Case { nodes, demands })
}

/// Ready, active nodes with every label a spread can read, and nothing reserved anywhere.
fn spread_case() -> impl Strategy<Value = (Vec<Node>, u32)> {
    (prop::collection::vec(prop::option::of(prop::sample::select(vec!["a", "b", "c", "d"])), 1..10), 0u32..40, prop::collection::vec(0u32..6, 10)).prop_map(
        |(racks, replicas, tasks)| {
            let nodes = racks
                .iter()
                .enumerate()
                .map(|(i, rack)| {
                    let mut node = node(&format!("n{i}"));
                    if let Some(rack) = rack {
                        node.labels.insert("rack".into(), rack.to_string());
                    }
                    node.reserved.tasks = tasks[i];
                    node
                })
                .collect();
            (nodes, replicas)
        },
    )
}

proptest! {
    // Failing cases are kept in proptest-regressions/ (the default would put them beside this
    // file, since tests/ has no lib.rs) and replayed first on every run.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/placement.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_more_than_max_replicas_per_node(case in arbitrary_case()) {
        let planned = plan(&case.nodes, &case.demands);
        for demand in &case.demands {
            if let Some(max) = demand.max_replicas_per_node {
                for node in &case.nodes {
                    prop_assert!(planned.count(&demand.service, &node.id) <= max);
                }
            }
        }
    }

    #[test]
    fn never_above_a_nodes_resources(case in arbitrary_case()) {
        let planned = plan(&case.nodes, &case.demands);
        for (node, summary) in case.nodes.iter().zip(&planned.nodes) {
            let cpus: u64 = case.demands.iter().map(|d| d.reserve_nano_cpus * u64::from(planned.count(&d.service, &node.id))).sum();
            let memory: u64 = case.demands.iter().map(|d| d.reserve_memory_bytes * u64::from(planned.count(&d.service, &node.id))).sum();
            prop_assert!(node.reserved.nano_cpus + cpus <= node.resources.nano_cpus || cpus == 0);
            prop_assert!(node.reserved.memory_bytes + memory <= node.resources.memory_bytes || memory == 0);
            prop_assert_eq!(summary.planned_nano_cpus, cpus);
            prop_assert_eq!(summary.remaining_nano_cpus, node.resources.nano_cpus as i64 - node.reserved.nano_cpus as i64 - cpus as i64);
        }
    }

    #[test]
    fn nothing_new_lands_on_nodes_that_take_no_tasks_and_counts_add_up(case in arbitrary_case()) {
        let planned = plan(&case.nodes, &case.demands);
        for service in &planned.services {
            prop_assert_eq!(service.nodes.values().sum::<u32>(), service.placed);
            prop_assert!(service.placed <= service.wanted);
            prop_assert_eq!(planned.problems.iter().any(|p| p.service == service.service), service.placed < service.wanted);
            for node in case.nodes.iter().filter(|n| !n.takes_new_tasks()) {
                prop_assert!(!service.nodes.contains_key(&node.id));
            }
        }
        for problem in &planned.problems {
            prop_assert_eq!(problem.reasons.is_empty(), false);
        }
    }

    #[test]
    fn global_services_run_exactly_once_on_every_eligible_node(case in arbitrary_case()) {
        let demands: Vec<Demand> = case.demands.iter().map(|d| Demand {
            mode: swarmctl::plan::placement::Mode::Global,
            reserve_nano_cpus: 0,
            reserve_memory_bytes: 0,
            ..d.clone()
        }).collect();
        let planned = plan(&case.nodes, &demands);
        for demand in &demands {
            for node in &case.nodes {
                let eligible = node.takes_new_tasks() && demand.constraints.iter().all(|c| c.matches(node));
                prop_assert_eq!(planned.count(&demand.service, &node.id), u32::from(eligible), "{} on {}", demand.service, node.id);
            }
        }
    }

    #[test]
    fn spread_is_even_within_one_when_nothing_else_constrains((nodes, replicas) in spread_case()) {
        let demand = with_spread(Demand::replicated("web", replicas), &["node.labels.rack"]);
        let planned = plan(&nodes, &[demand]);
        prop_assert!(planned.problems.is_empty());
        let mut per_group: BTreeMap<&str, u32> = BTreeMap::new();
        for node in &nodes {
            *per_group.entry(node.labels.get("rack").map_or("", String::as_str)).or_default() += planned.count("web", &node.id);
        }
        let (least, most) = (per_group.values().min().unwrap(), per_group.values().max().unwrap());
        prop_assert!(most - least <= 1, "{:?}", per_group);
        prop_assert_eq!(per_group.values().sum::<u32>(), replicas);
    }

    #[test]
    fn placement_is_deterministic(case in arbitrary_case()) {
        let first = plan(&case.nodes, &case.demands);
        let second = plan(&case.nodes, &case.demands);
        prop_assert_eq!(first.render(), second.render());
        prop_assert_eq!(first, second);
    }
}
