//! The rollout arithmetic against Kubernetes' own cases (the reference notes' step tables,
//! rounding, the both-zero rule, partitions, recreate), the single-host and Swarm fittings, and
//! property tests that drive the steppers through random worlds (replicas that become available
//! late, stop slowly, or were broken from the start) and check the bounds at every step.

use proptest::prelude::*;
// Both preludes name a `Strategy`: proptest's is the value generator, ours the rollout kind.
use proptest::strategy::Strategy as Generator;
use std::time::Duration;
use swarmctl::plan::rollout::*;
use swarmctl::plan::rollout::Strategy;
use swarmctl::model::stack::IntOrPercent::{self, Int, Percent};
use swarmctl::model::stack::{Kind, Rollout};

fn counts_line(strategy: Strategy, old: u32) -> String {
    table(&strategy, &Replicas::old(old)).counts_line()
}

fn deployment(desired: u32, surge: IntOrPercent, unavailable: IntOrPercent) -> Strategy {
    Strategy::Rolling(resolve_deployment(surge, unavailable, desired))
}

fn actions(strategy: Strategy, old: u32) -> Vec<String> {
    steps(&strategy, &Replicas::old(old)).map(|row| row.batch.to_string()).collect()
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

#[test]
fn percentages_round_up_or_down_and_ints_stay() {
    assert_eq!(scaled(Percent(25), 10, Round::Up), 3);
    assert_eq!(scaled(Percent(25), 10, Round::Down), 2);
    assert_eq!(scaled(Percent(25), 4, Round::Up), 1);
    assert_eq!(scaled(Percent(25), 4, Round::Down), 1);
    assert_eq!(scaled(Percent(1), 2, Round::Up), 1);
    assert_eq!(scaled(Percent(1), 2, Round::Down), 0);
    assert_eq!(scaled(Percent(100), 7, Round::Down), 7);
    assert_eq!(scaled(Percent(0), 7, Round::Up), 0);
    assert_eq!(scaled(Percent(50), 0, Round::Up), 0);
    assert_eq!(scaled(Int(7), 3, Round::Up), 7);
    assert_eq!(scaled(Percent(u32::MAX), u32::MAX, Round::Up), u32::MAX, "saturates instead of overflowing");
}

/// Every row of the reference's step table: (replicas, maxSurge, maxUnavailable) → (surge, unavailable).
#[test]
fn deployment_resolution_matches_kubernetes() {
    let cases = [
        (10, Percent(25), Percent(25), (3, 2)),
        (4, Percent(25), Percent(25), (1, 1)),
        (3, Percent(25), Percent(25), (1, 0)),
        (1, Percent(25), Percent(25), (1, 0)),
        (10, Int(0), Int(1), (0, 1)),
        (10, Int(1), Int(0), (1, 0)),
        (5, Percent(30), Percent(30), (2, 1)),
        (2, Percent(0), Percent(1), (0, 1)), // both resolve to 0 → unavailable 1
        (10, Percent(50), Int(0), (5, 0)),
    ];
    for (desired, surge, unavailable, expected) in cases {
        let bounds = resolve_deployment(surge, unavailable, desired);
        assert_eq!((bounds.max_surge(), bounds.max_unavailable()), expected, "{desired} replicas, {surge:?}/{unavailable:?}");
        assert_eq!(bounds.desired(), desired);
    }
}

#[test]
fn deployment_resolution_clamps_to_sane_ranges() {
    let b = resolve_deployment(Int(50), Int(20), 5);
    assert_eq!((b.max_surge(), b.max_unavailable(), b.max_total(), b.min_available()), (5, 5, 10, 0));
    let b = resolve_deployment(Percent(25), Percent(25), 0);
    assert_eq!((b.max_surge(), b.max_unavailable()), (0, 0), "nothing desired: nothing to surge or lose");
    let b = resolve_deployment(Int(0), Int(0), 0);
    assert_eq!((b.max_surge(), b.max_unavailable()), (0, 0));
    let b = resolve_deployment(Int(0), Int(0), 1);
    assert_eq!((b.max_surge(), b.max_unavailable()), (0, 1), "both zero with replicas → one unavailable");
    let b = resolve_deployment(Percent(10), Percent(10), 3);
    assert_eq!((b.max_surge(), b.max_unavailable()), (1, 0), "the surge rounds up, so no forced unavailability");
}

#[test]
fn daemonset_rounds_unavailability_up() {
    let cases = [
        (3, Int(0), Percent(25), (0, 1)),  // 0.75 up to 1 (a deployment would floor it to 0)
        (10, Int(0), Percent(25), (0, 3)), // 2.5 up to 3 (a deployment: 2)
        (5, Percent(10), Int(0), (1, 0)),  // surge 0.5 up to the minimum of 1
        (4, Percent(50), Int(0), (2, 0)),
        (4, Int(0), Int(0), (0, 1)), // the controller's fallback
        (3, DAEMONSET_DEFAULT_MAX_SURGE, DAEMONSET_DEFAULT_MAX_UNAVAILABLE, (0, 1)),
        (0, Percent(10), Int(0), (0, 0)),
    ];
    for (nodes, surge, unavailable, expected) in cases {
        let bounds = resolve_daemonset(surge, unavailable, nodes);
        assert_eq!((bounds.max_surge(), bounds.max_unavailable()), expected, "{nodes} nodes, {surge:?}/{unavailable:?}");
    }
    let deployment = resolve_deployment(Int(0), Percent(25), 10);
    assert_eq!(deployment.max_unavailable(), 2, "the same policy floors for a deployment");
}

#[test]
fn policies_kubernetes_refuses() {
    use PolicyError::*;
    let cases = [
        (Kind::Deployment, Int(0), Int(0), Err(BothZero)),
        (Kind::Deployment, Percent(0), Int(0), Err(BothZero)),
        (Kind::Deployment, Int(0), Percent(0), Err(BothZero)),
        (Kind::Deployment, Percent(1), Percent(0), Ok(())), // rounds to 0 but is allowed: resolves to unavailable 1
        (Kind::Deployment, Percent(25), Percent(25), Ok(())),
        (Kind::Deployment, Percent(200), Int(0), Ok(())), // a surge may exceed 100%
        (Kind::Deployment, Int(1), Percent(101), Err(Over100Percent)),
        (Kind::Daemonset, Int(0), Int(0), Err(BothZero)),
        (Kind::Daemonset, Int(1), Int(1), Err(SurgeWithUnavailable)),
        (Kind::Daemonset, Percent(10), Int(0), Ok(())),
        (Kind::Daemonset, Percent(101), Int(0), Err(Over100Percent)),
        (Kind::Statefulset, Int(0), Int(0), Ok(())),
        (Kind::Job, Int(0), Int(0), Ok(())),
    ];
    for (kind, surge, unavailable, expected) in cases {
        assert_eq!(check_policy(kind, surge, unavailable), expected, "{kind:?} {surge:?}/{unavailable:?}");
    }
    assert!(BothZero.to_string().contains("both zero"));
}

#[test]
fn swarm_update_config_as_bounds() {
    let cases = [
        (1, UpdateOrder::StopFirst, 6, (0, 1)),
        (2, UpdateOrder::StopFirst, 6, (0, 2)),
        (2, UpdateOrder::StartFirst, 6, (2, 0)),
        (0, UpdateOrder::StopFirst, 6, (0, 6)), // all at once
        (0, UpdateOrder::StartFirst, 6, (6, 0)),
        (9, UpdateOrder::StopFirst, 4, (0, 4)), // capped at desired
        (1, UpdateOrder::StartFirst, 0, (0, 0)),
    ];
    for (parallelism, order, desired, expected) in cases {
        let bounds = resolve_swarm_update(parallelism, order, desired);
        assert_eq!((bounds.max_surge(), bounds.max_unavailable()), expected, "{parallelism} {order:?} of {desired}");
    }
}

#[test]
fn strategy_follows_the_kind() {
    let policy = Rollout {
        max_surge: Int(0),
        max_unavailable: Percent(25),
        min_ready: Duration::ZERO,
        progress_deadline: Duration::from_secs(600),
        auto_rollback: false,
        partition: 2,
        ..Rollout::default()
    };
    assert_eq!(strategy_for(Kind::Deployment, &policy, 10), Strategy::Rolling(Bounds::new(10, 0, 2)));
    assert_eq!(strategy_for(Kind::Daemonset, &policy, 10), Strategy::Rolling(Bounds::new(10, 0, 3)));
    assert_eq!(strategy_for(Kind::Statefulset, &policy, 5), Strategy::Ordered { replicas: 5, partition: 2 });
    assert_eq!(strategy_for(Kind::Job, &policy, 1), Strategy::Recreate { desired: 1 });
    assert_eq!(Strategy::Recreate { desired: 4 }.bounds(), Bounds::new(4, 0, 4));
    assert_eq!(Strategy::Ordered { replicas: 5, partition: 2 }.bounds(), Bounds::new(5, 0, 1));
}

// ---------------------------------------------------------------------------------------------
// The reference's step tables
// ---------------------------------------------------------------------------------------------

#[test]
fn step_tables_of_the_reference() {
    let cases = [
        (10, Percent(25), Percent(25), "10/0 → 10/3 → 5/3 → 5/8 → 0/8 → 0/10"),
        (4, Percent(25), Percent(25), "4/0 → 4/1 → 2/1 → 2/3 → 0/3 → 0/4"),
        (3, Percent(25), Percent(25), "3/0 → 3/1 → 2/1 → 2/2 → 1/2 → 1/3 → 0/3"),
        (1, Percent(25), Percent(25), "1/0 → 1/1 → 0/1"),
        (5, Percent(30), Percent(30), "5/0 → 5/2 → 2/2 → 2/5 → 0/5"),
        (2, Percent(0), Percent(1), "2/0 → 1/0 → 1/1 → 0/1 → 0/2"),
        (10, Percent(50), Int(0), "10/0 → 10/5 → 5/5 → 5/10 → 0/10"),
    ];
    for (replicas, surge, unavailable, expected) in cases {
        assert_eq!(counts_line(deployment(replicas, surge, unavailable), replicas), expected, "{replicas} {surge:?}/{unavailable:?}");
    }
}

#[test]
fn step_table_batches_of_ten_at_25_percent() {
    assert_eq!(
        actions(deployment(10, Percent(25), Percent(25)), 10),
        ["start 3 new", "stop 5 old", "start 5 new", "stop 5 old", "start 2 new"]
    );
}

#[test]
fn one_at_a_time_alternates_for_twenty_steps() {
    // 0/1: old−1, new+1 alternating; 1/0: new+1, old−1 alternating.
    let mut stop_first = vec!["10/0".to_string()];
    let mut start_first = vec!["10/0".to_string()];
    for i in 1..=10 {
        stop_first.push(format!("{}/{}", 10 - i, i - 1));
        stop_first.push(format!("{}/{}", 10 - i, i));
        start_first.push(format!("{}/{}", 11 - i, i));
        start_first.push(format!("{}/{}", 10 - i, i));
    }
    let stop_table = table(&deployment(10, Int(0), Int(1)), &Replicas::old(10));
    let start_table = table(&deployment(10, Int(1), Int(0)), &Replicas::old(10));
    assert_eq!(stop_table.rows.len(), 20);
    assert_eq!(start_table.rows.len(), 20);
    assert_eq!(stop_table.counts_line(), stop_first.join(" → "));
    assert_eq!(start_table.counts_line(), start_first.join(" → "));
}

#[test]
fn scaling_down_during_an_update() {
    // 12 old, 8 desired at 25%/25% → surge 2, unavailable 2: at most 10, at least 6 available.
    assert_eq!(counts_line(deployment(8, Percent(25), Percent(25)), 12), "12/0 → 6/0 → 6/4 → 2/4 → 2/8 → 0/8");
}

#[test]
fn scaling_up_during_an_update() {
    // 2 old, 6 desired at 25%/25% → surge 2, unavailable 1: at most 8, at least 5 available.
    assert_eq!(counts_line(deployment(6, Percent(25), Percent(25)), 2), "2/0 → 2/6 → 0/6");
}

#[test]
fn zero_desired_and_zero_replicas() {
    assert_eq!(counts_line(deployment(0, Percent(25), Percent(25)), 3), "3/0 → 0/0");
    assert_eq!(counts_line(deployment(0, Percent(25), Percent(25)), 0), "0/0");
    assert_eq!(counts_line(deployment(3, Percent(25), Percent(25)), 0), "0/0 → 0/3");
    assert_eq!(next_rolling(&Bounds::new(0, 0, 0), &Replicas::default()), Next::Done);
}

#[test]
fn resuming_an_interrupted_update() {
    let bounds = Bounds::new(10, 3, 2);
    let midway = Replicas { old: 5, old_available: 5, new: 3, new_available: 3, stopping: 0 };
    let shown = table(&Strategy::Rolling(bounds), &midway);
    assert_eq!(shown.counts_line(), "5/3 → 5/8 → 0/8 → 0/10");
}

#[test]
fn recreate_stops_everything_before_starting() {
    assert_eq!(counts_line(Strategy::Recreate { desired: 3 }, 3), "3/0 → 0/0 → 0/3");
    assert_eq!(counts_line(Strategy::Recreate { desired: 4 }, 2), "2/0 → 0/0 → 0/4");
    assert_eq!(counts_line(Strategy::Recreate { desired: 0 }, 2), "2/0 → 0/0");
    let stopping = Replicas { stopping: 1, ..Replicas::default() };
    assert_eq!(next_recreate(3, &stopping), Next::Wait(Pending { stopping: 1, new_unavailable: 0 }));
    let starting = Replicas { new: 3, new_available: 1, ..Replicas::default() };
    assert_eq!(next_recreate(3, &starting), Next::Wait(Pending { stopping: 0, new_unavailable: 2 }));
    let done = Replicas { new: 3, new_available: 3, ..Replicas::default() };
    assert_eq!(next_recreate(3, &done), Next::Done);
}

// ---------------------------------------------------------------------------------------------
// The stepper on live states
// ---------------------------------------------------------------------------------------------

#[test]
fn unavailable_old_replicas_go_first() {
    // 10 desired, 3/2; 4 of the 10 old are broken, the 3 new not ready yet: no room to start,
    // availability is already below 8, yet 2 broken ones may go (13 − 8 − 3 unready new).
    let bounds = Bounds::new(10, 3, 2);
    let now = Replicas { old: 10, old_available: 6, new: 3, new_available: 0, stopping: 0 };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopOld { count: 2, unavailable: 2 }));
    // With the new ones ready: the 4 broken and 1 available (9 available − 8).
    let now = Replicas { old: 10, old_available: 6, new: 3, new_available: 3, stopping: 0 };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopOld { count: 5, unavailable: 4 }));
}

#[test]
fn broken_old_replicas_do_not_stall_a_rollout() {
    let bounds = Bounds::new(3, 0, 1);
    let broken = Replicas { old: 3, old_available: 0, ..Replicas::default() };
    let shown = table(&Strategy::Rolling(bounds), &broken);
    assert!(shown.complete);
    assert_eq!(shown.end(), Counts { old: 0, new: 3 });
    assert_eq!(shown.rows[0].batch, Batch::StopOld { count: 1, unavailable: 1 });
}

#[test]
fn stopping_replicas_hold_their_room() {
    let bounds = Bounds::new(4, 1, 0);
    // One old is stopping: 3 old + 1 new + 1 stopping = 5 = max; nothing may start.
    let now = Replicas { old: 3, old_available: 3, new: 1, new_available: 1, stopping: 1 };
    assert_eq!(next_rolling(&bounds, &now), Next::Wait(Pending { stopping: 1, new_unavailable: 0 }));
    // Once it has stopped, one new starts.
    let now = Replicas { stopping: 0, ..now };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StartNew { count: 1 }));
}

#[test]
fn unready_new_replicas_hold_old_ones() {
    let bounds = Bounds::new(4, 1, 0);
    let now = Replicas { old: 4, old_available: 4, new: 1, new_available: 0, stopping: 0 };
    assert_eq!(next_rolling(&bounds, &now), Next::Wait(Pending { stopping: 0, new_unavailable: 1 }));
    let now = Replicas { new_available: 1, ..now };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopOld { count: 1, unavailable: 0 }));
}

#[test]
fn surplus_new_replicas_are_trimmed_unavailable_first() {
    let bounds = Bounds::new(3, 1, 1);
    let now = Replicas { old: 0, old_available: 0, new: 5, new_available: 3, stopping: 0 };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopNew { count: 2, unavailable: 2 }));
    let now = Replicas { new_available: 5, ..now };
    assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopNew { count: 2, unavailable: 0 }));
}

#[test]
fn inconsistent_counts_are_read_leniently() {
    let bounds = Bounds::new(2, 1, 0);
    let odd = Replicas { old: 1, old_available: 9, new: 0, new_available: 7, stopping: 0 };
    assert_eq!(next_rolling(&bounds, &odd), Next::Batch(Batch::StartNew { count: 2 }));
    assert_eq!(odd.available(), 1);
}

#[test]
fn extreme_counts_do_not_panic() {
    let bounds = Bounds::new(u32::MAX, u32::MAX, u32::MAX);
    let now = Replicas { old: u32::MAX, old_available: u32::MAX, new: u32::MAX, new_available: 0, stopping: u32::MAX };
    let _ = next_rolling(&bounds, &now);
    let _ = next_recreate(u32::MAX, &now);
    assert_eq!(bounds.max_total(), u32::MAX);
    let shown = table(&Strategy::Rolling(Bounds::new(u32::MAX, 0, 1)), &Replicas::old(u32::MAX));
    assert!(!shown.complete);
    assert_eq!(shown.rows.len(), MAX_TABLE_ROWS);
    assert!(shown.counts_line().ends_with("→ … (cut)"));
    let shown = table(&Strategy::Ordered { replicas: u32::MAX, partition: 0 }, &Replicas::default());
    assert_eq!(shown.rows.len(), MAX_TABLE_ROWS);
}

// ---------------------------------------------------------------------------------------------
// StatefulSet
// ---------------------------------------------------------------------------------------------

#[test]
fn ordinal_order_and_partition() {
    assert_eq!(ordinal_order(3, 0).collect::<Vec<_>>(), [2, 1, 0]);
    assert_eq!(ordinal_order(5, 3).collect::<Vec<_>>(), [4, 3]);
    assert_eq!(ordinal_order(5, 5).count(), 0);
    assert_eq!(ordinal_order(5, 6).count(), 0, "partition above replicas: nothing updates");
    assert_eq!(ordinal_order(0, 0).count(), 0);
}

#[test]
fn statefulset_tables() {
    let ordered = |replicas, partition| Strategy::Ordered { replicas, partition };
    assert_eq!(counts_line(ordered(3, 0), 3), "3/0 → 2/0 → 2/1 → 1/1 → 1/2 → 0/2 → 0/3");
    assert_eq!(actions(ordered(3, 0), 3), ["stop #2", "start #2", "stop #1", "start #1", "stop #0", "start #0"]);
    assert_eq!(counts_line(ordered(3, 1), 3), "3/0 → 2/0 → 2/1 → 1/1 → 1/2");
    assert_eq!(counts_line(ordered(3, 3), 3), "3/0");
    assert_eq!(counts_line(ordered(3, 7), 3), "3/0");
    // Resuming: ordinal 2 already updated.
    let resumed = table(&ordered(3, 0), &Replicas { old: 2, old_available: 2, new: 1, new_available: 1, stopping: 0 });
    assert_eq!(resumed.counts_line(), "2/1 → 1/1 → 1/2 → 0/2 → 0/3");
    assert_eq!(resumed.rows[0].batch, Batch::StopOrdinal { ordinal: 1 });
}

#[test]
fn statefulset_stepper_follows_the_controller() {
    use OrdinalState::*;
    let ready_old = Old { available: true };
    let ready_new = New { available: true };
    // Highest old ordinal first.
    assert_eq!(next_ordinal(0, &[ready_old, ready_old, ready_old]), OrdinalNext::Stop { ordinal: 2 });
    // Its replacement starts once it is gone; the predecessor waits for it to be ready.
    assert_eq!(next_ordinal(0, &[ready_old, ready_old, Stopping]), OrdinalNext::Wait { ordinal: 2 });
    assert_eq!(next_ordinal(0, &[ready_old, ready_old, Missing]), OrdinalNext::Start { ordinal: 2, version: Version::New });
    assert_eq!(next_ordinal(0, &[ready_old, ready_old, New { available: false }]), OrdinalNext::Wait { ordinal: 2 });
    assert_eq!(next_ordinal(0, &[ready_old, ready_old, ready_new]), OrdinalNext::Stop { ordinal: 1 });
    // An unready lower ordinal blocks, as OrderedReady does.
    assert_eq!(next_ordinal(0, &[Old { available: false }, ready_old, ready_old]), OrdinalNext::Wait { ordinal: 0 });
    // Below the partition: never stopped; recreated on the old spec when missing.
    assert_eq!(next_ordinal(1, &[ready_old, ready_new, ready_new]), OrdinalNext::Done);
    assert_eq!(next_ordinal(1, &[Missing, ready_new, ready_new]), OrdinalNext::Start { ordinal: 0, version: Version::Old });
    assert_eq!(next_ordinal(5, &[ready_old, ready_old]), OrdinalNext::Done);
    assert_eq!(next_ordinal(0, &[]), OrdinalNext::Done);
}

// ---------------------------------------------------------------------------------------------
// One host, fixed ports
// ---------------------------------------------------------------------------------------------

#[test]
fn a_fixed_host_port_rolls_stop_first() {
    let fitted = fit_fixed_host_ports("web", &[8080], resolve_deployment(Percent(25), Percent(25), 1));
    assert_eq!(fitted.bounds, Bounds::new(1, 0, 1));
    assert_eq!(
        fitted.note.as_deref(),
        Some("web publishes 8080 on the host: cannot start a second copy beside the first; rolling stop-first, 1 at a time")
    );
    assert_eq!(counts_line(Strategy::Rolling(fitted.bounds), 1), "1/0 → 0/0 → 0/1");

    let fitted = fit_fixed_host_ports("api", &[8443, 8080, 8443], Bounds::new(4, 2, 2));
    assert_eq!(fitted.bounds, Bounds::new(4, 0, 2), "the allowed unavailability is kept");
    assert_eq!(
        fitted.note.as_deref(),
        Some("api publishes 8080, 8443 on the host: cannot start a second copy beside the first; rolling stop-first, 2 at a time")
    );
}

#[test]
fn bounds_without_surge_or_ports_are_left_alone() {
    assert_eq!(fit_fixed_host_ports("web", &[8080], Bounds::new(3, 0, 1)), Fitted { bounds: Bounds::new(3, 0, 1), note: None });
    assert_eq!(fit_fixed_host_ports("web", &[], Bounds::new(3, 1, 0)), Fitted { bounds: Bounds::new(3, 1, 0), note: None });
    assert_eq!(fit_fixed_host_ports("web", &[8080], Bounds::new(0, 0, 0)).note, None);
}

// ---------------------------------------------------------------------------------------------
// Swarm
// ---------------------------------------------------------------------------------------------

#[test]
fn swarm_mapping_cases() {
    let ten = Duration::from_secs(10);
    let defaults = FailurePolicy::swarm_default();

    let surge_only = swarm_update_config(&Bounds::new(4, 2, 0), ten, &defaults);
    assert_eq!(
        surge_only.config,
        SwarmUpdateConfig {
            parallelism: 2,
            delay: ten,
            failure_action: FailureAction::Pause,
            monitor: Duration::from_secs(5),
            max_failure_ratio: 0.0,
            order: UpdateOrder::StartFirst,
        }
    );
    assert!(surge_only.notes.is_empty());

    let unavailable_only = swarm_update_config(&Bounds::new(4, 0, 3), Duration::ZERO, &FailurePolicy::auto_rollback(true));
    assert_eq!((unavailable_only.config.order, unavailable_only.config.parallelism), (UpdateOrder::StopFirst, 3));
    assert_eq!(unavailable_only.config.failure_action, FailureAction::Rollback);
    assert_eq!(unavailable_only.config.delay, Duration::ZERO);
    assert!(unavailable_only.notes.is_empty());

    let both = swarm_update_config(&Bounds::new(10, 3, 2), Duration::ZERO, &defaults);
    assert_eq!((both.config.order, both.config.parallelism), (UpdateOrder::StartFirst, 3));
    assert_eq!(
        both.notes,
        ["max surge 3 with max unavailable 2 has no exact Swarm equivalent: using start-first, 3 at a time \
          (never above the surge bound, never lowering availability)"]
    );

    let nothing = swarm_update_config(&Bounds::new(0, 0, 0), Duration::ZERO, &defaults);
    assert_eq!((nothing.config.order, nothing.config.parallelism), (UpdateOrder::StopFirst, 1));

    let odd = FailurePolicy { action: FailureAction::Continue, monitor: Duration::ZERO, max_failure_ratio: 7.5 };
    let mapped = swarm_update_config(&Bounds::new(2, 0, 1), Duration::ZERO, &odd);
    assert_eq!(mapped.config.monitor, Duration::from_nanos(1), "0 would become 5s in the engine");
    assert_eq!(mapped.config.max_failure_ratio, 1.0);
    assert_eq!(mapped.config.failure_action, FailureAction::Continue);
    assert_eq!(mapped.notes.len(), 1);
    let nan = FailurePolicy { max_failure_ratio: f64::NAN, ..defaults };
    assert_eq!(swarm_update_config(&Bounds::new(2, 0, 1), Duration::ZERO, &nan).config.max_failure_ratio, 0.0);
    assert_eq!(FailurePolicy::auto_rollback(false).action, FailureAction::Pause);
}

#[test]
fn swarm_update_config_round_trips() {
    for order in [UpdateOrder::StopFirst, UpdateOrder::StartFirst] {
        for parallelism in 1..=5 {
            let bounds = resolve_swarm_update(parallelism, order, 5);
            let config = swarm_update_config(&bounds, Duration::ZERO, &FailurePolicy::swarm_default()).config;
            assert_eq!((config.order, config.parallelism), (order, parallelism));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Display and JSON
// ---------------------------------------------------------------------------------------------

#[test]
fn text_forms() {
    let rolling = table(&deployment(4, Percent(25), Percent(25)), &Replicas::old(4));
    assert_eq!(
        rolling.to_string(),
        "rolling update of 4 replicas: max surge 1, max unavailable 1 (at most 5 at once, at least 3 available)\n\
         4/0 → 4/1 → 2/1 → 2/3 → 0/3 → 0/4\n"
    );
    assert_eq!(
        format!("{rolling:#}"),
        "rolling update of 4 replicas: max surge 1, max unavailable 1 (at most 5 at once, at least 3 available)\n\
         \x20 start: 4/0\n\
         \x20 start 1 new: 4/1\n\
         \x20 stop 2 old: 2/1\n\
         \x20 start 2 new: 2/3\n\
         \x20 stop 2 old: 0/3\n\
         \x20 start 1 new: 0/4\n"
    );
    assert_eq!(
        Strategy::Rolling(Bounds::new(1, 1, 0)).to_string(),
        "rolling update of 1 replica: max surge 1, max unavailable 0 (at most 2 at once, at least 1 available)"
    );
    assert_eq!(
        Strategy::Recreate { desired: 2 }.to_string(),
        "recreate 2 replicas: every old replica stops before any new one starts"
    );
    let ordered = |replicas, partition| Strategy::Ordered { replicas, partition }.to_string();
    assert_eq!(ordered(3, 0), "ordered update of 3 replicas, highest ordinal first, one at a time");
    assert_eq!(ordered(3, 1), "ordered update of 3 replicas, highest ordinal first, one at a time; partition 1 keeps ordinal 0 on the old spec");
    assert_eq!(ordered(5, 3), "ordered update of 5 replicas, highest ordinal first, one at a time; partition 3 keeps ordinals 0..=2 on the old spec");
    assert_eq!(ordered(3, 4), "ordered update of 3 replicas, highest ordinal first, one at a time; partition 4 holds every ordinal back: nothing is updated");
    assert_eq!(Batch::StopOld { count: 3, unavailable: 1 }.to_string(), "stop 3 old (1 unavailable first)");
    assert_eq!(Batch::StopNew { count: 2, unavailable: 0 }.to_string(), "stop 2 surplus new");
    assert_eq!(Batch::StartOrdinal { ordinal: 0, version: Version::Old }.to_string(), "start #0 (old spec, below the partition)");
}

#[test]
fn long_tables_show_head_and_tail() {
    let line = counts_line(deployment(100, Int(0), Int(1)), 100);
    assert_eq!(
        line,
        "100/0 → 99/0 → 99/1 → 98/1 → 98/2 → 97/2 → 97/3 → 96/3 → 96/4 → 95/4 → 95/5 → 94/5 → … 183 more … \
         → 2/97 → 2/98 → 1/98 → 1/99 → 0/99 → 0/100"
    );
    let shown = table(&deployment(100, Int(0), Int(1)), &Replicas::old(100));
    assert_eq!(shown.rows.len(), 200);
    assert!(shown.complete);
}

#[test]
fn json_form() {
    let shown = table(&deployment(1, Percent(25), Percent(25)), &Replicas::old(1));
    let json = serde_json::to_value(&shown).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "strategy": {"strategy": "rolling", "desired": 1, "max_surge": 1, "max_unavailable": 0, "max_total": 2, "min_available": 1},
            "start": {"old": 1, "new": 0},
            "rows": [
                {"action": "start_new", "count": 1, "old": 1, "new": 1},
                {"action": "stop_old", "count": 1, "unavailable": 0, "old": 0, "new": 1},
            ],
            "complete": true,
        })
    );
    let ordered = serde_json::to_value(table(&Strategy::Ordered { replicas: 1, partition: 0 }, &Replicas::old(1))).unwrap();
    assert_eq!(ordered["strategy"], serde_json::json!({"strategy": "ordered", "replicas": 1, "partition": 0}));
    assert_eq!(ordered["rows"][1], serde_json::json!({"action": "start_ordinal", "ordinal": 0, "version": "new", "old": 0, "new": 1}));
    let mapped = serde_json::to_value(swarm_update_config(&Bounds::new(2, 0, 1), Duration::ZERO, &FailurePolicy::swarm_default())).unwrap();
    assert_eq!(mapped["config"]["order"], "stop-first");
    assert_eq!(mapped["config"]["failure_action"], "pause");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// A small deterministic random source for the simulated worlds (proptest picks the seed).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0..=max.
    fn upto(&mut self, max: u32) -> u32 {
        (self.next() % (u64::from(max) + 1)) as u32
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

/// Small ints (one at a time: the longest rollouts) as often as any int or any percentage.
fn int_or_percent() -> impl Generator<Value = IntOrPercent> {
    prop_oneof![(0u32..=3).prop_map(Int), (0u32..=250).prop_map(Int), (0u32..=100).prop_map(Percent)]
}

/// A world of replicas the stepper drives: new replicas start unready and become ready late;
/// stops take a while; some old replicas start broken (and may or may not recover).
#[derive(Debug, Clone, Copy)]
struct World {
    old_ready: u32,
    old_broken: u32,
    new_ready: u32,
    new_unready: u32,
    stopping: u32,
}

impl World {
    fn replicas(&self) -> Replicas {
        Replicas {
            old: self.old_ready + self.old_broken,
            old_available: self.old_ready,
            new: self.new_ready + self.new_unready,
            new_available: self.new_ready,
            stopping: self.stopping,
        }
    }

    fn total(&self) -> u32 {
        self.replicas().total()
    }

    fn available(&self) -> u32 {
        self.old_ready + self.new_ready
    }

    /// Time passes: some unready new replicas become ready, some stops finish, perhaps a broken
    /// old replica recovers. `force` makes at least one pending thing happen.
    fn progress(&mut self, dice: &mut Dice, force: bool) {
        let mut ready = dice.upto(self.new_unready);
        let mut stopped = dice.upto(self.stopping);
        if force && ready == 0 && stopped == 0 {
            if self.new_unready > 0 {
                ready = 1;
            } else {
                stopped = self.stopping.min(1);
            }
        }
        self.new_unready -= ready;
        self.new_ready += ready;
        self.stopping -= stopped;
        if self.old_broken > 0 && dice.chance(8) {
            self.old_broken -= 1;
            self.old_ready += 1;
        }
    }

    /// Applies a batch, checking that it asks only for replicas that exist.
    fn apply(&mut self, batch: Batch) -> Result<(), TestCaseError> {
        match batch {
            Batch::StartNew { count } => {
                prop_assert!(count > 0);
                self.new_unready += count;
            }
            Batch::StopOld { count, unavailable } => {
                prop_assert!(count > 0 && unavailable <= count);
                prop_assert!(unavailable <= self.old_broken, "stops {unavailable} unavailable of {}", self.old_broken);
                prop_assert!(count - unavailable <= self.old_ready);
                self.old_broken -= unavailable;
                self.old_ready -= count - unavailable;
                self.stopping += count;
            }
            Batch::StopNew { count, unavailable } => {
                prop_assert!(count > 0 && unavailable <= count);
                prop_assert!(unavailable <= self.new_unready && count - unavailable <= self.new_ready);
                self.new_unready -= unavailable;
                self.new_ready -= count - unavailable;
                self.stopping += count;
            }
            Batch::StopOrdinal { .. } | Batch::StartOrdinal { .. } => prop_assert!(false, "ordinal batch from a count stepper"),
        }
        Ok(())
    }
}

fn world() -> impl Generator<Value = (World, u64)> {
    (0u32..=200, 0u32..=40, 0u32..=40, 0u32..=20, 0u32..=10, any::<u64>()).prop_map(
        |(old_ready, old_broken, new_ready, new_unready, stopping, seed)| {
            (World { old_ready, old_broken, new_ready, new_unready, stopping }, seed)
        },
    )
}

/// Drives a count stepper through a random world to the end, checking each step.
fn drive(
    mut world: World,
    seed: u64,
    bounds: Bounds,
    recreate: bool,
) -> Result<(), TestCaseError> {
    let mut dice = Dice(seed);
    let start = world.replicas();
    let total_held = world.total() <= bounds.max_total();
    let availability_held = world.available() >= bounds.min_available();
    // Every batch starts or stops at least one replica, and nothing is started twice.
    let batch_limit = u64::from(start.old + start.new + bounds.desired());
    let mut batches = 0u64;
    // Each wait is followed by at least one event; events are bounded by the replicas there are.
    let tick_limit = 4 * (batch_limit + u64::from(start.stopping) + u64::from(start.new)) + 64;
    for _ in 0..tick_limit {
        let now = world.replicas();
        let next = if recreate { next_recreate(bounds.desired(), &now) } else { next_rolling(&bounds, &now) };
        match next {
            Next::Done => {
                prop_assert_eq!(world.old_ready + world.old_broken, 0);
                prop_assert_eq!(world.new_ready, bounds.desired());
                prop_assert_eq!(world.new_unready + world.stopping, 0);
                return Ok(());
            }
            Next::Wait(pending) => {
                prop_assert!(pending.stopping + pending.new_unavailable > 0, "waits for nothing at {:?}", now);
                prop_assert_eq!(pending.stopping, world.stopping);
                prop_assert_eq!(pending.new_unavailable, world.new_unready);
                world.progress(&mut dice, true);
            }
            Next::Batch(batch) => {
                batches += 1;
                prop_assert!(batches <= batch_limit, "more than {} batches", batch_limit);
                let available_before = world.available();
                world.apply(batch)?;
                match batch {
                    Batch::StartNew { .. } => {
                        prop_assert!(world.replicas().new <= bounds.desired(), "starts beyond desired");
                        prop_assert!(world.total() <= bounds.max_total(), "start exceeds {} at {:?}", bounds.max_total(), world);
                        if recreate {
                            prop_assert_eq!(world.old_ready + world.old_broken + world.stopping, 0, "recreate starts early");
                        }
                    }
                    Batch::StopOld { count, unavailable } if count > unavailable && !recreate => {
                        prop_assert!(world.available() >= bounds.min_available(), "stop leaves {} available", world.available());
                    }
                    Batch::StopNew { count, unavailable } if count > unavailable => {
                        prop_assert!(world.available() >= bounds.min_available().min(available_before));
                    }
                    _ => {}
                }
                if dice.chance(2) {
                    world.progress(&mut dice, false);
                }
            }
        }
        if total_held {
            prop_assert!(world.total() <= bounds.max_total(), "total {} above {}", world.total(), bounds.max_total());
        }
        if availability_held && !recreate {
            prop_assert!(world.available() >= bounds.min_available(), "available {} below {}", world.available(), bounds.min_available());
        }
    }
    prop_assert!(false, "no end after {} ticks", tick_limit);
    Ok(())
}

proptest! {
    // Each case is a few hundred steps of arithmetic: cheap, so many.
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn resolved_bounds_are_sane(desired in 0u32..=200, surge in int_or_percent(), unavailable in int_or_percent()) {
        for bounds in [resolve_deployment(surge, unavailable, desired), resolve_daemonset(surge, unavailable, desired)] {
            prop_assert!(bounds.max_surge() <= desired && bounds.max_unavailable() <= desired);
            prop_assert_eq!(bounds.desired() > 0, bounds.max_surge() + bounds.max_unavailable() > 0);
            prop_assert_eq!(bounds.max_total(), desired + bounds.max_surge());
            prop_assert_eq!(bounds.min_available(), desired - bounds.max_unavailable());
        }
        let up = scaled(surge, desired, Round::Up);
        let down = scaled(surge, desired, Round::Down);
        prop_assert!(up == down || up == down + 1);
    }

    /// The static sequence reaches 0 old / desired new within its bounds.
    #[test]
    fn static_rollouts_end_within_bounds(
        desired in 0u32..=200, old in 0u32..=250, new in 0u32..=60,
        surge in int_or_percent(), unavailable in int_or_percent(),
    ) {
        let bounds = resolve_deployment(surge, unavailable, desired);
        for strategy in [Strategy::Rolling(bounds), Strategy::Recreate { desired }] {
            let start = Replicas { old, old_available: old, new, new_available: new, stopping: 0 };
            let shown = table(&strategy, &start);
            prop_assert!(shown.complete);
            prop_assert_eq!(shown.end(), Counts { old: 0, new: desired });
            prop_assert!(shown.rows.len() as u64 <= u64::from(old + new + desired));
            let max_total = strategy.bounds().max_total().max(old + new);
            let mut before = shown.start;
            for row in &shown.rows {
                prop_assert!(row.after.old + row.after.new <= max_total);
                if let (Strategy::Rolling(b), Batch::StopOld { .. }) = (strategy, row.batch) {
                    prop_assert!(row.after.old + row.after.new >= b.min_available().min(before.old + before.new));
                }
                before = row.after;
            }
        }
    }

    /// Live rolling updates in a random world keep both bounds at every step and finish.
    #[test]
    fn rolling_updates_keep_their_bounds(
        (world, seed) in world(), desired in 0u32..=200,
        surge in int_or_percent(), unavailable in int_or_percent(),
    ) {
        drive(world, seed, resolve_deployment(surge, unavailable, desired), false)?;
    }

    #[test]
    fn daemonset_updates_keep_their_bounds(
        (world, seed) in world(), nodes in 0u32..=50,
        surge in int_or_percent(), unavailable in int_or_percent(),
    ) {
        drive(world, seed, resolve_daemonset(surge, unavailable, nodes), false)?;
    }

    #[test]
    fn recreates_never_overlap_and_finish((world, seed) in world(), desired in 0u32..=200) {
        drive(world, seed, Bounds::new(desired, 0, desired), true)?;
    }

    /// StatefulSets in a random world: highest ordinal first, one replica down at a time, the
    /// partition respected, and an end once replicas become ready.
    #[test]
    fn statefulset_updates_go_down_one_at_a_time(
        initial in proptest::collection::vec(0u8..6, 0..=30), partition in 0u32..=35, seed in any::<u64>(),
    ) {
        use OrdinalState::*;
        let mut dice = Dice(seed);
        let mut ordinals: Vec<OrdinalState> = initial.iter().map(|code| match code {
            0 => Missing,
            1 => Stopping,
            2 => Old { available: false },
            3 => New { available: false },
            4 => New { available: true },
            _ => Old { available: true },
        }).collect();
        let count = ordinals.len() as u32;
        let mut last_stop = u32::MAX;
        let mut batches = 0u32;
        let mut done = false;
        let mut waited_before: Option<u32> = None;
        for _ in 0..(12 * count + 8) {
            match next_ordinal(partition, &ordinals) {
                OrdinalNext::Done => {
                    for (k, state) in ordinals.iter().enumerate() {
                        let k = k as u32;
                        if k >= partition {
                            prop_assert_eq!(*state, New { available: true }, "ordinal {} at the end", k);
                        } else {
                            prop_assert!(matches!(state, Old { available: true } | New { available: true }), "held ordinal {} not ready: {:?}", k, state);
                        }
                    }
                    done = true;
                    break;
                }
                OrdinalNext::Stop { ordinal } => {
                    batches += 1;
                    prop_assert!(ordinal >= partition);
                    prop_assert!(ordinal < last_stop, "stop #{} after #{}", ordinal, last_stop);
                    last_stop = ordinal;
                    prop_assert!(matches!(ordinals[ordinal as usize], Old { .. }), "stops #{} which is not old", ordinal);
                    let others_ready = ordinals.iter().enumerate().all(|(k, s)| {
                        k == ordinal as usize || matches!(s, Old { available: true } | New { available: true })
                    });
                    prop_assert!(others_ready, "stops #{} while another ordinal is down", ordinal);
                    ordinals[ordinal as usize] = Stopping;
                }
                OrdinalNext::Start { ordinal, version } => {
                    batches += 1;
                    prop_assert_eq!(ordinals[ordinal as usize], Missing);
                    prop_assert_eq!(version == Version::New, ordinal >= partition);
                    ordinals[ordinal as usize] = match version {
                        Version::New => New { available: false },
                        Version::Old => Old { available: false },
                    };
                }
                OrdinalNext::Wait { ordinal } => {
                    let state = &mut ordinals[ordinal as usize];
                    prop_assert!(matches!(state, Stopping | Old { available: false } | New { available: false }), "waits on a ready #{}", ordinal);
                    // Time passes: the waited-for replica gets there now or on the next wait.
                    let patience_over = waited_before == Some(ordinal);
                    waited_before = Some(ordinal);
                    if patience_over || dice.chance(2) {
                        waited_before = None;
                        *state = match *state {
                            Stopping => Missing,
                            Old { .. } => Old { available: true },
                            _ => New { available: true },
                        };
                    }
                }
            }
            prop_assert!(batches <= 2 * count, "{} batches for {} ordinals", batches, count);
        }
        prop_assert!(done, "no end after {} ticks", 12 * count + 8);
    }

    /// The static StatefulSet table is exactly what the stepper does when replicas are ready at once.
    #[test]
    fn statefulset_table_matches_the_stepper(replicas in 0u32..=40, partition in 0u32..=45) {
        let mut ordinals = vec![OrdinalState::Old { available: true }; replicas as usize];
        let mut played = Vec::new();
        loop {
            match next_ordinal(partition, &ordinals) {
                OrdinalNext::Stop { ordinal } => {
                    ordinals[ordinal as usize] = OrdinalState::Missing;
                    played.push(Batch::StopOrdinal { ordinal });
                }
                OrdinalNext::Start { ordinal, version } => {
                    ordinals[ordinal as usize] = OrdinalState::New { available: true };
                    played.push(Batch::StartOrdinal { ordinal, version });
                }
                OrdinalNext::Wait { .. } | OrdinalNext::Done => break,
            }
        }
        let shown = table(&Strategy::Ordered { replicas, partition }, &Replicas::old(replicas));
        let batches: Vec<Batch> = shown.rows.iter().map(|row| row.batch).collect();
        prop_assert_eq!(batches, played);
        let updated = replicas - partition.min(replicas);
        prop_assert_eq!(shown.end(), Counts { old: replicas - updated, new: updated });
        let order: Vec<u32> = shown.rows.iter().filter_map(|row| match row.batch {
            Batch::StopOrdinal { ordinal } => Some(ordinal),
            _ => None,
        }).collect();
        prop_assert_eq!(order, ordinal_order(replicas, partition).collect::<Vec<_>>());
    }

    /// Swarm's config never lets more start at once than the surge, nor more go down than allowed.
    #[test]
    fn swarm_mapping_stays_inside_the_bounds(desired in 0u32..=200, surge in int_or_percent(), unavailable in int_or_percent()) {
        let bounds = resolve_deployment(surge, unavailable, desired);
        let mapped = swarm_update_config(&bounds, Duration::ZERO, &FailurePolicy::swarm_default());
        prop_assert!(mapped.config.parallelism >= 1);
        match mapped.config.order {
            UpdateOrder::StartFirst => prop_assert_eq!(mapped.config.parallelism, bounds.max_surge()),
            UpdateOrder::StopFirst => {
                prop_assert_eq!(bounds.max_surge(), 0);
                prop_assert_eq!(mapped.config.parallelism, bounds.max_unavailable().max(1));
            }
        }
        prop_assert_eq!(mapped.notes.is_empty(), bounds.max_surge() == 0 || bounds.max_unavailable() == 0);
        prop_assert!(mapped.config.monitor > Duration::ZERO);
    }
}
