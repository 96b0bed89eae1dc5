//! Deployments, and a daemonset's one replica on one host: interchangeable replicas, counted
//! rather than named.
//!
//! Everything is one rollout from the replicas that exist to `desired` current ones, in the
//! batches [`rollout::steps`] computes (Kubernetes' arithmetic within `max_surge` /
//! `max_unavailable`, or recreate): a cold start is one batch of starts, a scale-up a batch of
//! starts, a scale-down a batch of stops, a changed spec the rolling sequence. Batches are
//! paired slot by slot: an old replica stops once the new one that replaces it is ready
//! (healthy, or running) and has stayed so for `min_ready`, and a new one starts once the old
//! one whose slot it takes has stopped and the whole batch before it is ready, so the total
//! never exceeds `desired + max_surge` and availability never drops below `desired -
//! max_unavailable`. The first batch's containers are created up front, each later batch's
//! while the batch before it starts (creates stay off the critical path); only starts are
//! gated. A batch that fails stops the rollout where it is: later batches are skipped, the old
//! replicas that remain keep serving.
//!
//! Names: replica `n` is `<stack>-<service>-<n>`. Stop-first (no surge), a new replica takes the
//! number of the old one it replaces, and its anonymous volumes, as compose's recreate does
//! (it is made under its incomplete name and takes the name once the old one is gone). With a
//! surge the old ones still hold their numbers, so new ones take the lowest free numbers and
//! start with fresh anonymous volumes: two copies must not share one data directory.

use super::container::container_name;
use super::{remove_container, ContainerRef, HostOp, Plan, Ready, ReplicaMaker};
use crate::model::host::{ContainerState, HealthState, ObservedContainer};
use crate::model::labels::LABEL_REPLICA;
use crate::model::stack::Kind;
use crate::plan::rollout::{self, Batch, Replicas, Strategy};
use crate::plan::{Cause, ServiceRollout, StepId};
use std::collections::{BTreeSet, VecDeque};

pub(super) fn plan(maker: &ReplicaMaker<'_>, existing: &[&ObservedContainer], losing_networks: &BTreeSet<String>, plan: &mut Plan) -> Ready {
    let service = maker.service;
    let name = service.name.as_str();
    let desired = if service.kind == Kind::Daemonset { 1 } else { service.replicas };
    let (current, mut old): (Vec<&ObservedContainer>, Vec<&ObservedContainer>) = existing.iter().partition(|c| maker.is_current(c, losing_networks));
    // Kept: ready ones first, then by number; the rest is surplus, stopped first.
    let mut current = current;
    current.sort_by_key(|c| (!available(c), number(c)));
    let keep = current.len().min(desired as usize);
    let mut surplus = current.split_off(keep);
    surplus.sort_by_key(|c| (available(c), std::cmp::Reverse(number(c))));
    let mut surplus: VecDeque<&ObservedContainer> = surplus.into();
    // Old replicas go unavailable first, then from the highest number down.
    old.sort_by_key(|c| (available(c), std::cmp::Reverse(number(c))));
    let mut old: VecDeque<&ObservedContainer> = old.into();

    let (strategy, note) = strategy(maker, desired);
    let start = Replicas {
        old: old.len() as u32,
        old_available: old.iter().filter(|c| available(c)).count() as u32,
        new: (current.len() + surplus.len()) as u32,
        new_available: current.iter().chain(surplus.iter()).filter(|c| available(c)).count() as u32,
        stopping: 0,
    };
    let rolling = !old.is_empty();
    if rolling {
        let table = rollout::table(&strategy, &start);
        plan.rollouts.push(ServiceRollout { service: name.to_string(), table, notes: note.into_iter().collect() });
    }
    let change = old.front().map(|c| maker.change(c));
    let timeout = if rolling { maker.options.timeout.min(service.rollout.progress_deadline) } else { maker.options.timeout };

    // Kept replicas that are stopped start again; those not ready yet are waited for. The first
    // batch goes after them.
    let mut ready = Ready::default();
    let mut previous: Vec<StepId> = Vec::new();
    for container in &current {
        let reference = ContainerRef::Existing(container.id.clone());
        let stopped = matches!(container.state, ContainerState::Created | ContainerState::Exited { .. } | ContainerState::Dead);
        let start = stopped.then(|| maker.start(plan, reference.clone(), &container.name, maker.dependencies.clone(), Cause::NotRunning));
        ready.started.extend(start);
        if start.is_some() || not_ready(container) {
            let wait = maker.wait(plan, &reference, &container.name, start.into_iter().collect(), timeout);
            maker.check_stable(plan, &reference, &container.name, wait);
            previous.push(wait);
        }
    }

    let surge = strategy.bounds().max_surge() > 0;
    let mut taken: BTreeSet<u32> = existing.iter().map(|c| number(c)).collect();
    let mut freed: VecDeque<(&ObservedContainer, StepId)> = VecDeque::new();
    let had = start.new;
    // A later batch's containers are made while the batch before it starts and gets healthy:
    // made all at once up front, they would hold up the first batch's start.
    let mut made_after: Vec<StepId> = Vec::new();
    // Slots (see the module doc): `batch_ready` is the readiness of the last batch of starts or
    // of the replicas kept; `stops`, the old replicas stopped since. `pair_stops`: the next stops
    // are the first after a batch of starts, the i-th pairing with its i-th new replica; the
    // i-th start pairs with the i-th stop. So a batch's stops do not wait for its slowest
    // replica, and their engine clean-up overlaps it.
    let (mut batch_ready, mut pair_stops, mut stops) = (previous, false, Vec::<StepId>::new());
    for row in rollout::steps(&strategy, &start) {
        match row.batch {
            Batch::StartNew { count } => {
                let mut starts = Vec::new();
                let waits = (0..count)
                    .map(|slot| {
                        let cause = change.clone().unwrap_or(if had == 0 { Cause::Missing } else { Cause::Scaled { from: had, to: desired } });
                        // Stop-first takes the number of the replica it replaces, once that is gone.
                        let (replica, inherit, complete_after) = match if surge { None } else { freed.pop_front() } {
                            Some((old, removed)) => (number(old), Some(old), vec![removed]),
                            None => {
                                let replica = (1..).find(|n| !taken.contains(n)).unwrap_or(u32::MAX);
                                (replica, None, Vec::new())
                            }
                        };
                        taken.insert(replica);
                        let container = container_name(maker.stack, service, replica);
                        let made = maker.create(plan, replica, inherit, made_after.clone(), complete_after, &cause);
                        let reference = ContainerRef::CreatedBy(made.create);
                        let mut after = batch_ready.clone();
                        match stops.get(slot as usize) {
                            Some(&stopped) => {
                                after.retain(|ready| !plan.steps[stopped].after.contains(ready));
                                after.push(stopped);
                            }
                            None => after.extend(&stops),
                        }
                        after.extend(&maker.dependencies);
                        after.push(made.complete);
                        let start = maker.start(plan, reference.clone(), &container, after, cause);
                        ready.started.push(start);
                        starts.push(start);
                        let wait = maker.wait(plan, &reference, &container, vec![start], timeout);
                        maker.check_stable(plan, &reference, &container, wait);
                        match service.rollout.min_ready {
                            min_ready if rolling && !min_ready.is_zero() => {
                                let op = HostOp::WaitMinReady { container: reference, name: container, min_ready };
                                plan.push(op, Cause::Readiness, vec![wait], Some(name))
                            }
                            _ => wait,
                        }
                    })
                    .collect();
                made_after = starts;
                (batch_ready, pair_stops, stops) = (waits, true, Vec::new());
            }
            Batch::StopOld { count, .. } => {
                let all: Vec<StepId> = batch_ready.iter().chain(&stops).copied().collect();
                for slot in 0..count as usize {
                    let Some(container) = old.pop_front() else { break };
                    let after = match batch_ready.get(slot) {
                        Some(&replacement) if pair_stops => vec![replacement],
                        _ => all.clone(),
                    };
                    let (stopped, removed) = stop(plan, container, change.clone().unwrap_or(Cause::Orphaned), after, maker);
                    freed.push_back((container, removed));
                    stops.push(stopped);
                }
                pair_stops = false;
            }
            Batch::StopNew { count, .. } => {
                let all: Vec<StepId> = batch_ready.iter().chain(&stops).copied().collect();
                let stopped = (0..count)
                    .filter_map(|_| surplus.pop_front())
                    .map(|container| stop(plan, container, Cause::Scaled { from: had, to: desired }, all.clone(), maker).0)
                    .collect();
                (batch_ready, pair_stops, stops) = (stopped, false, Vec::new());
            }
            Batch::StopOrdinal { .. } | Batch::StartOrdinal { .. } => {}
        }
    }
    ready.healthy = batch_ready.into_iter().chain(stops).collect();
    ready
}

/// The service's rollout strategy on one host, and why it differs from the one written: a
/// replica that publishes a fixed host port, or has a fixed `container_name`, cannot have a
/// second copy beside it.
fn strategy(maker: &ReplicaMaker<'_>, desired: u32) -> (Strategy, Option<String>) {
    let service = maker.service;
    match rollout::strategy_for(service.kind, &service.rollout, desired) {
        Strategy::Rolling(bounds) => {
            let ports: Vec<u16> = service.ports.iter().filter_map(|p| p.published).collect();
            let fitted = rollout::fit_fixed_host_ports(&service.name, &ports, bounds);
            if let (Some(fixed), None, true) = (&service.container_name, &fitted.note, bounds.max_surge() > 0) {
                let bounds = rollout::Bounds::new(desired, 0, bounds.max_unavailable().max(1));
                let note = format!(
                    "{} has the fixed name `{fixed}`: cannot start a second copy beside the first; rolling stop-first, {} at a time",
                    service.name,
                    bounds.max_unavailable()
                );
                return (Strategy::Rolling(bounds), Some(note));
            }
            (Strategy::Rolling(fitted.bounds), fitted.note)
        }
        other => (other, None),
    }
}

/// Stop, then remove; the stop is what the next batch waits for (a stopping replica counts
/// until it has stopped), the removal frees the name.
fn stop(plan: &mut Plan, container: &ObservedContainer, cause: Cause, after: Vec<StepId>, maker: &ReplicaMaker<'_>) -> (StepId, StepId) {
    let service = &maker.service.name;
    let removed = remove_container(plan, container, cause, after, Some(service), maker.service.stop_grace_period, false);
    let stopped = plan.steps[removed].after.iter().copied().find(|s| matches!(plan.steps[*s].op, HostOp::StopContainer { .. }));
    (stopped.unwrap_or(removed), removed)
}

/// The replica number a container carries (its label; else its name's last part).
fn number(container: &ObservedContainer) -> u32 {
    container
        .labels
        .get(LABEL_REPLICA)
        .and_then(|n| n.parse().ok())
        .or_else(|| container.name.rsplit('-').next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Running, and healthy where it has a health check.
fn available(container: &ObservedContainer) -> bool {
    container.state == ContainerState::Running && !not_ready(container)
}

fn not_ready(container: &ObservedContainer) -> bool {
    matches!(container.health, Some(HealthState::Starting | HealthState::Unhealthy))
}
