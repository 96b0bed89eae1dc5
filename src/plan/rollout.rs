//! Rollout arithmetic: when a service's spec changes, how many replicas to start or stop next,
//! worked out the way Kubernetes' controllers do it, for both targets.
//!
//! Why a module of its own: a rolling update is a small arithmetic problem with famous
//! fenceposts (percentages round up for the surge and down for unavailability; both zero means
//! one unavailable; unavailable old replicas go first), and users already know Kubernetes'
//! answers. Getting them right once, as pure functions over plain counts, lets three callers
//! agree: the host planner orchestrates replicas itself and turns the [`steps`] into a DAG; the
//! swarm planner hands the work to Swarm's updater and needs [`swarm_update_config`] to say it
//! in Swarm's words; `swarmctl plan` prints the [`Table`] before anything changes.
//!
//! The layers, each a free function:
//!
//! 1. *Resolve* a policy into [`Bounds`] (`desired`, `max_surge`, `max_unavailable`):
//!    [`resolve_deployment`], [`resolve_daemonset`], [`resolve_swarm_update`], or
//!    [`strategy_for`] from a service's kind and rollout policy. [`check_policy`] reports the
//!    policies Kubernetes rejects.
//! 2. *Step*: from the replicas that exist now, the next batch ([`next_rolling`],
//!    [`next_recreate`], [`next_ordinal`] for StatefulSets), or what the rollout waits for.
//! 3. *Sequence*: [`steps`] plays a whole rollout assuming each batch becomes available before
//!    the next, for the static plan and its display; [`table`] collects it.
//! 4. *Fit* the bounds to a single host when a replica publishes a fixed host port
//!    ([`fit_fixed_host_ports`]), and *map* them onto Swarm's `UpdateConfig`.
//!
//! Two deliberate differences from Kubernetes, both stricter:
//! - A replica that was told to stop counts toward `desired + max_surge` until it has stopped.
//!   Kubernetes does not count terminating pods, so during their grace period it can exceed
//!   the bound; on one host that extra copy is exactly what collides (a port, a volume, memory).
//! - `max_surge` is capped at `desired`: the new version never needs more room than that.
//!   Kubernetes keeps the raw number, which only differs when more old replicas exist than are
//!   desired (a scale-down with the update): Kubernetes may then start new ones before trimming.
//!
//! Everything here is total: no input panics (counts saturate), and every function is
//! deterministic.

use crate::model::stack::{IntOrPercent, Kind, Rollout};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use std::fmt;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

/// Which way a percentage of replicas rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    Up,
    Down,
}

/// `value` as a count out of `total`: an int as given, a percentage rounded `round`
/// (Kubernetes' `GetScaledValueFromIntOrPercent`).
///
/// ```
/// use swarmctl::plan::rollout::{scaled, Round};
/// use swarmctl::model::stack::IntOrPercent;
///
/// assert_eq!(scaled(IntOrPercent::Percent(25), 10, Round::Up), 3); // 2.5 → 3
/// assert_eq!(scaled(IntOrPercent::Percent(25), 10, Round::Down), 2); // 2.5 → 2
/// assert_eq!(scaled(IntOrPercent::Int(7), 10, Round::Down), 7);
/// ```
pub fn scaled(value: IntOrPercent, total: u32, round: Round) -> u32 {
    match value {
        IntOrPercent::Int(count) => count,
        IntOrPercent::Percent(percent) => {
            let product = u64::from(percent) * u64::from(total);
            let count = match round {
                Round::Up => product.div_ceil(100),
                Round::Down => product / 100,
            };
            u32::try_from(count).unwrap_or(u32::MAX)
        }
    }
}

/// The limits a rolling update keeps: at most `desired + max_surge` replicas exist at once
/// (stopping ones included) and a stop never leaves fewer than `desired - max_unavailable`
/// available.
///
/// Always sane, by construction: both limits are at most `desired`, and when `desired > 0` they
/// are never both zero (such a rollout could never move).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bounds {
    desired: u32,
    max_surge: u32,
    max_unavailable: u32,
}

impl Bounds {
    /// Bounds for `desired` replicas, made sane: each limit capped at `desired`, and
    /// `max_unavailable` 1 when both are zero (Kubernetes' rule for a policy that resolves to 0/0).
    ///
    /// ```
    /// use swarmctl::plan::rollout::Bounds;
    ///
    /// let b = Bounds::new(10, 3, 2);
    /// assert_eq!((b.max_total(), b.min_available()), (13, 8));
    /// assert_eq!(Bounds::new(2, 0, 0).max_unavailable(), 1); // both zero → one unavailable
    /// assert_eq!(Bounds::new(3, 9, 9).max_surge(), 3); // capped at desired
    /// ```
    pub fn new(desired: u32, max_surge: u32, max_unavailable: u32) -> Bounds {
        let max_surge = max_surge.min(desired);
        let mut max_unavailable = max_unavailable.min(desired);
        if desired > 0 && max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        Bounds { desired, max_surge, max_unavailable }
    }

    /// Replicas of the new version when the rollout is done.
    pub fn desired(&self) -> u32 {
        self.desired
    }

    /// Replicas allowed above `desired` while rolling.
    pub fn max_surge(&self) -> u32 {
        self.max_surge
    }

    /// Replicas allowed below `desired` in availability while rolling.
    pub fn max_unavailable(&self) -> u32 {
        self.max_unavailable
    }

    /// Most replicas that may exist at once, stopping ones included: `desired + max_surge`.
    pub fn max_total(&self) -> u32 {
        self.desired.saturating_add(self.max_surge)
    }

    /// Fewest available replicas a stop may leave: `desired - max_unavailable`.
    pub fn min_available(&self) -> u32 {
        self.desired - self.max_unavailable
    }
}

/// JSON carries the derived limits too, so a reader of `plan --output json` needs no arithmetic.
impl Serialize for Bounds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Bounds", 5)?;
        out.serialize_field("desired", &self.desired)?;
        out.serialize_field("max_surge", &self.max_surge)?;
        out.serialize_field("max_unavailable", &self.max_unavailable)?;
        out.serialize_field("max_total", &self.max_total())?;
        out.serialize_field("min_available", &self.min_available())?;
        out.end()
    }
}

/// Kubernetes' defaults for a Deployment's `maxSurge` and `maxUnavailable`: 25% each.
pub const DEPLOYMENT_DEFAULT_MAX_SURGE: IntOrPercent = IntOrPercent::Percent(25);
/// See [`DEPLOYMENT_DEFAULT_MAX_SURGE`].
pub const DEPLOYMENT_DEFAULT_MAX_UNAVAILABLE: IntOrPercent = IntOrPercent::Percent(25);
/// Kubernetes' defaults for a DaemonSet: no surge, one unavailable.
pub const DAEMONSET_DEFAULT_MAX_SURGE: IntOrPercent = IntOrPercent::Int(0);
/// See [`DAEMONSET_DEFAULT_MAX_SURGE`].
pub const DAEMONSET_DEFAULT_MAX_UNAVAILABLE: IntOrPercent = IntOrPercent::Int(1);

/// A Deployment's bounds, as Kubernetes' `ResolveFenceposts` computes them: the surge rounds
/// **up**, unavailability rounds **down**, both zero means one unavailable. Defaults are the
/// caller's (see [`DEPLOYMENT_DEFAULT_MAX_SURGE`]).
///
/// ```
/// use swarmctl::plan::rollout::resolve_deployment;
/// use swarmctl::model::stack::IntOrPercent::{Int, Percent};
///
/// let b = resolve_deployment(Percent(25), Percent(25), 10);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (3, 2));
/// let b = resolve_deployment(Percent(25), Percent(25), 3);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (1, 0)); // 0.75 rounds down to 0
/// let b = resolve_deployment(Percent(0), Percent(1), 2);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (0, 1)); // both 0 → unavailable 1
/// let b = resolve_deployment(Int(0), Int(1), 10);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (0, 1));
/// ```
pub fn resolve_deployment(max_surge: IntOrPercent, max_unavailable: IntOrPercent, desired: u32) -> Bounds {
    Bounds::new(desired, scaled(max_surge, desired, Round::Up), scaled(max_unavailable, desired, Round::Down))
}

/// A DaemonSet's bounds over the nodes it runs on: unlike a Deployment, unavailability rounds
/// **up** too; a non-zero surge percentage therefore gives at least 1; both zero means one
/// unavailable (the controller's fallback). Kubernetes defaults: [`DAEMONSET_DEFAULT_MAX_SURGE`],
/// [`DAEMONSET_DEFAULT_MAX_UNAVAILABLE`].
///
/// ```
/// use swarmctl::plan::rollout::resolve_daemonset;
/// use swarmctl::model::stack::IntOrPercent::{Int, Percent};
///
/// let b = resolve_daemonset(Int(0), Percent(25), 3);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (0, 1)); // 0.75 rounds up
/// let b = resolve_daemonset(Percent(10), Int(0), 5);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (1, 0)); // 0.5 rounds up to the minimum 1
/// ```
pub fn resolve_daemonset(max_surge: IntOrPercent, max_unavailable: IntOrPercent, nodes: u32) -> Bounds {
    // ceil(p × n / 100) ≥ 1 whenever p > 0 and n > 0: the "minimum of 1" needs no extra rule.
    Bounds::new(nodes, scaled(max_surge, nodes, Round::Up), scaled(max_unavailable, nodes, Round::Up))
}

/// Swarm's `update_config.order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop a slot's old task, then start its new one (Swarm's default).
    StopFirst,
    /// Start the new task beside the old one, then stop the old.
    StartFirst,
}

/// What Swarm's `update_config` means in bounds, for a stack without `x-rollout`: stop-first
/// with parallelism `p` is surge 0 / unavailable `p`; start-first is surge `p` / unavailable 0;
/// parallelism 0 updates every replica at once.
///
/// ```
/// use swarmctl::plan::rollout::{resolve_swarm_update, UpdateOrder};
///
/// let b = resolve_swarm_update(2, UpdateOrder::StopFirst, 6);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (0, 2));
/// let b = resolve_swarm_update(1, UpdateOrder::StartFirst, 6);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (1, 0));
/// let b = resolve_swarm_update(0, UpdateOrder::StartFirst, 6);
/// assert_eq!((b.max_surge(), b.max_unavailable()), (6, 0)); // all at once
/// ```
pub fn resolve_swarm_update(parallelism: u32, order: UpdateOrder, desired: u32) -> Bounds {
    let batch = if parallelism == 0 { desired } else { parallelism };
    match order {
        UpdateOrder::StopFirst => Bounds::new(desired, 0, batch),
        UpdateOrder::StartFirst => Bounds::new(desired, batch, 0),
    }
}

/// A rollout policy Kubernetes refuses (the resolvers never fail; this says what a validator
/// should report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyError {
    /// `max_surge` and `max_unavailable` are both 0 (or 0%): the rollout could never move.
    BothZero,
    /// A DaemonSet sets both: Kubernetes allows exactly one of them to be non-zero.
    SurgeWithUnavailable,
    /// A percentage above 100% where Kubernetes caps it.
    Over100Percent,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyError::BothZero => "max_surge and max_unavailable are both zero; a rollout could never progress",
            PolicyError::SurgeWithUnavailable => "a daemonset may set max_surge or max_unavailable, not both",
            PolicyError::Over100Percent => "a percentage above 100% is not allowed here",
        })
    }
}

/// Kubernetes' validation of a rollout policy for `kind`, on the values as written: both zero
/// is refused (a percentage that merely *rounds* to zero is not: it resolves to one
/// unavailable); a DaemonSet sets exactly one of the two; `max_unavailable` (and a DaemonSet's
/// surge) is at most 100%. StatefulSets and jobs have no such knobs: always `Ok`.
///
/// ```
/// use swarmctl::plan::rollout::{check_policy, PolicyError};
/// use swarmctl::model::stack::{IntOrPercent::{Int, Percent}, Kind};
///
/// assert_eq!(check_policy(Kind::Deployment, Percent(0), Int(0)), Err(PolicyError::BothZero));
/// assert_eq!(check_policy(Kind::Deployment, Percent(1), Int(0)), Ok(()));
/// assert_eq!(check_policy(Kind::Daemonset, Int(1), Int(1)), Err(PolicyError::SurgeWithUnavailable));
/// ```
pub fn check_policy(kind: Kind, max_surge: IntOrPercent, max_unavailable: IntOrPercent) -> Result<(), PolicyError> {
    let is_zero = |v: IntOrPercent| matches!(v, IntOrPercent::Int(0) | IntOrPercent::Percent(0));
    let over_100 = |v: IntOrPercent| matches!(v, IntOrPercent::Percent(p) if p > 100);
    match kind {
        Kind::Statefulset | Kind::Job => Ok(()),
        _ if is_zero(max_surge) && is_zero(max_unavailable) => Err(PolicyError::BothZero),
        Kind::Deployment if over_100(max_unavailable) => Err(PolicyError::Over100Percent),
        Kind::Deployment => Ok(()),
        Kind::Daemonset if over_100(max_surge) || over_100(max_unavailable) => Err(PolicyError::Over100Percent),
        Kind::Daemonset if !is_zero(max_surge) && !is_zero(max_unavailable) => Err(PolicyError::SurgeWithUnavailable),
        Kind::Daemonset => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// How a service's replicas are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "strategy", rename_all = "snake_case")]
pub enum Strategy {
    /// Kubernetes' RollingUpdate within the bounds (Deployment, DaemonSet). Step with [`next_rolling`].
    Rolling(Bounds),
    /// Every old replica stops before any new one starts. Step with [`next_recreate`].
    Recreate { desired: u32 },
    /// StatefulSet: one ordinal at a time from the highest down; ordinals below `partition`
    /// keep the old version. Step with [`next_ordinal`].
    Ordered { replicas: u32, partition: u32 },
}

impl Strategy {
    /// Replicas when the rollout is done.
    pub fn desired(&self) -> u32 {
        match *self {
            Strategy::Rolling(bounds) => bounds.desired(),
            Strategy::Recreate { desired } => desired,
            Strategy::Ordered { replicas, .. } => replicas,
        }
    }

    /// The bounds the strategy keeps: recreate is surge 0 / all unavailable, ordered is
    /// surge 0 / one unavailable.
    pub fn bounds(&self) -> Bounds {
        match *self {
            Strategy::Rolling(bounds) => bounds,
            Strategy::Recreate { desired } => Bounds::new(desired, 0, desired),
            Strategy::Ordered { replicas, .. } => Bounds::new(replicas, 0, 1),
        }
    }
}

/// The strategy for a service of `kind` with `desired` replicas and the loader's rollout
/// policy: deployments and daemonsets roll within their resolved bounds, statefulsets go by
/// ordinal, and jobs (which run to completion) are recreated.
///
/// ```
/// use std::time::Duration;
/// use swarmctl::plan::rollout::{strategy_for, Strategy, Bounds};
/// use swarmctl::model::stack::{IntOrPercent::Percent, Kind, Rollout};
///
/// let policy = Rollout {
///     max_surge: Percent(25), max_unavailable: Percent(25), min_ready: Duration::ZERO,
///     progress_deadline: Duration::from_secs(600), auto_rollback: false, partition: 1,
///     ..Rollout::default()
/// };
/// assert_eq!(strategy_for(Kind::Deployment, &policy, 10), Strategy::Rolling(Bounds::new(10, 3, 2)));
/// assert_eq!(strategy_for(Kind::Statefulset, &policy, 3), Strategy::Ordered { replicas: 3, partition: 1 });
/// ```
pub fn strategy_for(kind: Kind, rollout: &Rollout, desired: u32) -> Strategy {
    match kind {
        Kind::Deployment | Kind::Daemonset if rollout.recreate => Strategy::Recreate { desired },
        Kind::Deployment => Strategy::Rolling(resolve_deployment(rollout.max_surge, rollout.max_unavailable, desired)),
        Kind::Daemonset => Strategy::Rolling(resolve_daemonset(rollout.max_surge, rollout.max_unavailable, desired)),
        Kind::Statefulset => Strategy::Ordered { replicas: desired, partition: rollout.partition },
        Kind::Job => Strategy::Recreate { desired },
    }
}

// ---------------------------------------------------------------------------------------------
// Stepping a rollout of interchangeable replicas
// ---------------------------------------------------------------------------------------------

/// The replicas of one service right now, by version. Inconsistent counts are read leniently
/// (`old_available` above `old` counts as `old`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Replicas {
    /// Replicas of the old spec (not stopping).
    pub old: u32,
    /// Of `old`, those available (ready, for `min_ready`).
    pub old_available: u32,
    /// Replicas of the new spec (not stopping).
    pub new: u32,
    /// Of `new`, those available.
    pub new_available: u32,
    /// Replicas told to stop that still exist, of either version: they count toward
    /// `desired + max_surge` and never as available.
    pub stopping: u32,
}

impl Replicas {
    /// `old` replicas of the old spec, all available, and nothing else: where an update starts.
    pub fn old(old: u32) -> Replicas {
        Replicas { old, old_available: old, ..Replicas::default() }
    }

    /// Every replica that exists, stopping ones included.
    pub fn total(&self) -> u32 {
        self.old.saturating_add(self.new).saturating_add(self.stopping)
    }

    /// Available replicas of both versions.
    pub fn available(&self) -> u32 {
        self.old_available.min(self.old).saturating_add(self.new_available.min(self.new))
    }

    fn lenient(&self) -> Replicas {
        Replicas { old_available: self.old_available.min(self.old), new_available: self.new_available.min(self.new), ..*self }
    }
}

/// Which version a replica runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    Old,
    New,
}

/// One batch of a rollout: what to start or stop next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Batch {
    /// Start `count` replicas of the new spec.
    StartNew { count: u32 },
    /// Stop `count` old replicas: first `unavailable` ones that are not available, then
    /// available ones.
    StopOld { count: u32, unavailable: u32 },
    /// Stop `count` new replicas above `desired` (desired went down mid-rollout), the
    /// `unavailable` ones first.
    StopNew { count: u32, unavailable: u32 },
    /// StatefulSet: stop the old replica at `ordinal`.
    StopOrdinal { ordinal: u32 },
    /// StatefulSet: start the replica at `ordinal`, of `version` (the old one below the partition).
    StartOrdinal { ordinal: u32, version: Version },
}

/// What holds a rollout up until the world changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pending {
    /// Replicas still stopping (they hold their room in the surge bound).
    pub stopping: u32,
    /// New replicas not available yet.
    pub new_unavailable: u32,
}

/// The next move of a rollout of interchangeable replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Do this, then ask again.
    Batch(Batch),
    /// Nothing may move until a pending replica stops or becomes available.
    Wait(Pending),
    /// `desired` new replicas, all available; nothing old, nothing stopping.
    Done,
}

/// The next batch of a rolling update, as Kubernetes' deployment controller picks it: per call
/// either a scale-up (`NewRSNewReplicas`) or a scale-down (`reconcileOldReplicaSets`), never both.
///
/// - New replicas above `desired` (desired went down mid-rollout) are stopped first.
/// - Scale-up: as many new as fit under `desired + max_surge`, stopping replicas counted.
/// - Scale-down: old replicas that are *not* available go first (up to what keeps enough
///   replicas that could become available), then available ones down to
///   `desired - max_unavailable`.
/// - Otherwise wait, or done.
///
/// Invariants, for any input: a start never takes the total (stopping included) above
/// `desired + max_surge`; a stop never takes availability below `desired - max_unavailable`
/// (stops of unavailable replicas do not lower it at all). When nothing is stopping and every
/// new replica is available, the answer is a batch or [`Next::Done`], never a wait, so a rollout
/// ends as soon as its replicas do what they are told.
///
/// ```
/// use swarmctl::plan::rollout::{next_rolling, Batch, Bounds, Next, Pending, Replicas};
///
/// let bounds = Bounds::new(10, 3, 2);
/// // 10 old: start 3 new (13 = desired + surge).
/// assert_eq!(next_rolling(&bounds, &Replicas::old(10)), Next::Batch(Batch::StartNew { count: 3 }));
/// // The 3 are up but not ready: old may go only down to 8 available — 2 of them.
/// let now = Replicas { old: 10, old_available: 10, new: 3, new_available: 0, stopping: 0 };
/// assert_eq!(next_rolling(&bounds, &now), Next::Batch(Batch::StopOld { count: 2, unavailable: 0 }));
/// // Those 2 still stopping hold their room: nothing fits, wait.
/// let now = Replicas { old: 8, old_available: 8, new: 3, new_available: 0, stopping: 2 };
/// assert_eq!(next_rolling(&bounds, &now), Next::Wait(Pending { stopping: 2, new_unavailable: 3 }));
/// ```
pub fn next_rolling(bounds: &Bounds, now: &Replicas) -> Next {
    let now = now.lenient();
    let desired = bounds.desired();
    let new_unavailable = now.new - now.new_available;
    let old_unavailable = now.old - now.old_available;

    if now.new > desired {
        let count = now.new - desired;
        return Next::Batch(Batch::StopNew { count, unavailable: new_unavailable.min(count) });
    }

    let room = bounds.max_total().saturating_sub(now.total());
    let start = room.min(desired - now.new);
    if start > 0 {
        return Next::Batch(Batch::StartNew { count: start });
    }

    // Keep enough replicas that are, or may become, available: stopping ones never will.
    let min_available = bounds.min_available();
    let live = now.old.saturating_add(now.new);
    let max_scaled_down = live.saturating_sub(min_available).saturating_sub(new_unavailable);
    let unavailable = old_unavailable.min(max_scaled_down);
    let available = now.available().saturating_sub(min_available).min(now.old_available);
    let count = unavailable + available; // both are parts of `old`: no overflow
    if count > 0 {
        return Next::Batch(Batch::StopOld { count, unavailable });
    }

    if now.stopping > 0 || new_unavailable > 0 {
        return Next::Wait(Pending { stopping: now.stopping, new_unavailable });
    }
    // Nothing pending and no batch fits: with sane bounds this is only reached with 0 old and
    // `desired` new (a stall would need max_surge = max_unavailable = 0, which `Bounds` forbids).
    Next::Done
}

/// The next batch of a recreate: every old replica stops, and only when all have stopped do
/// the new ones start (all at once).
///
/// ```
/// use swarmctl::plan::rollout::{next_recreate, Batch, Next, Pending, Replicas};
///
/// assert_eq!(next_recreate(3, &Replicas::old(3)), Next::Batch(Batch::StopOld { count: 3, unavailable: 0 }));
/// let stopping = Replicas { stopping: 3, ..Replicas::default() };
/// assert_eq!(next_recreate(3, &stopping), Next::Wait(Pending { stopping: 3, new_unavailable: 0 }));
/// assert_eq!(next_recreate(3, &Replicas::default()), Next::Batch(Batch::StartNew { count: 3 }));
/// ```
pub fn next_recreate(desired: u32, now: &Replicas) -> Next {
    let now = now.lenient();
    let new_unavailable = now.new - now.new_available;
    if now.old > 0 {
        return Next::Batch(Batch::StopOld { count: now.old, unavailable: now.old - now.old_available });
    }
    if now.new > desired {
        let count = now.new - desired;
        return Next::Batch(Batch::StopNew { count, unavailable: new_unavailable.min(count) });
    }
    if now.stopping > 0 {
        return Next::Wait(Pending { stopping: now.stopping, new_unavailable });
    }
    if now.new < desired {
        return Next::Batch(Batch::StartNew { count: desired - now.new });
    }
    if new_unavailable > 0 {
        return Next::Wait(Pending { stopping: 0, new_unavailable });
    }
    Next::Done
}

// ---------------------------------------------------------------------------------------------
// Stepping a StatefulSet
// ---------------------------------------------------------------------------------------------

/// One StatefulSet ordinal right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum OrdinalState {
    /// No replica at this ordinal.
    Missing,
    /// Its replica was told to stop and still exists.
    Stopping,
    /// A replica of the old spec.
    Old { available: bool },
    /// A replica of the new spec.
    New { available: bool },
}

/// The next move of a StatefulSet rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum OrdinalNext {
    /// Start the replica at `ordinal`, of `version`.
    Start { ordinal: u32, version: Version },
    /// Stop the old replica at `ordinal`.
    Stop { ordinal: u32 },
    /// Wait until the replica at `ordinal` has stopped or become available.
    Wait { ordinal: u32 },
    /// Every ordinal at or above the partition runs the new spec; all are available.
    Done,
}

/// Ordinals a StatefulSet update replaces, in order: from the highest down to `partition`;
/// none when `partition >= replicas`.
///
/// ```
/// use swarmctl::plan::rollout::ordinal_order;
///
/// assert_eq!(ordinal_order(4, 0).collect::<Vec<_>>(), [3, 2, 1, 0]);
/// assert_eq!(ordinal_order(4, 2).collect::<Vec<_>>(), [3, 2]);
/// assert_eq!(ordinal_order(4, 9).count(), 0);
/// ```
pub fn ordinal_order(replicas: u32, partition: u32) -> std::iter::Rev<std::ops::Range<u32>> {
    (partition.min(replicas)..replicas).rev()
}

/// The next move of a StatefulSet rollout, as Kubernetes' StatefulSet controller picks it
/// (OrderedReady, RollingUpdate): first every ordinal, lowest first, must exist and be
/// available — a missing one is started (the new version at or above `partition`, the old one
/// below), a stopping or unready one is waited for; then the highest old ordinal at or above the
/// partition is stopped. One replica is unavailable at a time, and the total never exceeds the
/// number of ordinals.
///
/// Like Kubernetes, an old replica that never becomes available blocks the rollout (the
/// progress deadline reports it); it is not replaced out of order.
///
/// ```
/// use swarmctl::plan::rollout::{next_ordinal, OrdinalNext, OrdinalState::*, Version};
///
/// let ready = Old { available: true };
/// assert_eq!(next_ordinal(0, &[ready, ready, ready]), OrdinalNext::Stop { ordinal: 2 });
/// assert_eq!(next_ordinal(0, &[ready, ready, Missing]), OrdinalNext::Start { ordinal: 2, version: Version::New });
/// assert_eq!(next_ordinal(0, &[ready, ready, New { available: false }]), OrdinalNext::Wait { ordinal: 2 });
/// assert_eq!(next_ordinal(2, &[ready, ready, New { available: true }]), OrdinalNext::Done);
/// ```
pub fn next_ordinal(partition: u32, ordinals: &[OrdinalState]) -> OrdinalNext {
    let ordinal_of = |index: usize| u32::try_from(index).unwrap_or(u32::MAX);
    for (index, state) in ordinals.iter().enumerate() {
        let ordinal = ordinal_of(index);
        match state {
            OrdinalState::Missing => {
                let version = if ordinal >= partition { Version::New } else { Version::Old };
                return OrdinalNext::Start { ordinal, version };
            }
            OrdinalState::Stopping | OrdinalState::Old { available: false } | OrdinalState::New { available: false } => {
                return OrdinalNext::Wait { ordinal };
            }
            OrdinalState::Old { available: true } | OrdinalState::New { available: true } => {}
        }
    }
    for (index, state) in ordinals.iter().enumerate().rev() {
        let ordinal = ordinal_of(index);
        if ordinal < partition {
            break;
        }
        if matches!(state, OrdinalState::Old { .. }) {
            return OrdinalNext::Stop { ordinal };
        }
    }
    OrdinalNext::Done
}

// ---------------------------------------------------------------------------------------------
// The static sequence
// ---------------------------------------------------------------------------------------------

/// Old and new replicas at one point of a rollout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub old: u32,
    pub new: u32,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.old, self.new)
    }
}

/// One step of a static rollout: the batch and the counts once it has settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub batch: Batch,
    #[serde(flatten)]
    pub after: Counts,
}

/// The batches of a whole rollout from `start`, assuming each one settles before the next
/// (started replicas become available, stopped ones are gone): the plan's view, and what the
/// host planner turns into steps. Lazy, so its length costs nothing until read; a rolling or
/// recreate rollout has at most `start.old + start.new + desired` batches, an ordered one at
/// most two per ordinal.
///
/// Pending work in `start` settles first: stopping replicas are gone and new ones available;
/// old replicas that are not available stay so (and go first). For [`Strategy::Ordered`], the
/// top `start.new` ordinals are taken as already updated and every other ordinal as old.
///
/// ```
/// use swarmctl::plan::rollout::{steps, Bounds, Replicas, Strategy};
///
/// let rollout = Strategy::Rolling(Bounds::new(10, 3, 2));
/// let counts: Vec<String> = steps(&rollout, &Replicas::old(10)).map(|row| row.after.to_string()).collect();
/// assert_eq!(counts, ["10/3", "5/3", "5/8", "0/8", "0/10"]);
/// ```
pub fn steps(strategy: &Strategy, start: &Replicas) -> Steps {
    let inner = match *strategy {
        Strategy::Ordered { replicas, partition } => {
            let floor = partition.min(replicas);
            let updated = start.new.min(replicas - floor);
            StepsInner::Ordered { floor, next: replicas - updated, stopped: false, counts: Counts { old: replicas - updated, new: updated } }
        }
        _ => {
            let mut replicas = start.lenient();
            settle(&mut replicas);
            StepsInner::Counts { strategy: *strategy, replicas }
        }
    };
    Steps { inner, finished: false }
}

/// The rows of [`steps`], one at a time.
#[derive(Debug, Clone)]
pub struct Steps {
    inner: StepsInner,
    finished: bool,
}

#[derive(Debug, Clone)]
enum StepsInner {
    Counts { strategy: Strategy, replicas: Replicas },
    /// `next` is one above the ordinal being replaced; `stopped` says its old replica is gone.
    Ordered { floor: u32, next: u32, stopped: bool, counts: Counts },
}

impl Steps {
    /// Old and new replicas before the first row.
    pub fn start(&self) -> Counts {
        match &self.inner {
            StepsInner::Counts { replicas, .. } => Counts { old: replicas.old, new: replicas.new },
            StepsInner::Ordered { counts, .. } => *counts,
        }
    }
}

impl Iterator for Steps {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        if self.finished {
            return None;
        }
        let row = match &mut self.inner {
            StepsInner::Counts { strategy, replicas } => {
                let next = match strategy {
                    Strategy::Recreate { desired } => next_recreate(*desired, replicas),
                    Strategy::Rolling(bounds) => next_rolling(bounds, replicas),
                    Strategy::Ordered { .. } => Next::Done, // built as StepsInner::Ordered
                };
                match next {
                    Next::Batch(batch) => {
                        apply(replicas, batch);
                        settle(replicas);
                        Some(Row { batch, after: Counts { old: replicas.old, new: replicas.new } })
                    }
                    // Settled replicas never wait (see `next_rolling`); stop rather than spin.
                    Next::Wait(_) | Next::Done => None,
                }
            }
            StepsInner::Ordered { floor, next, stopped, counts } => {
                if *next <= *floor {
                    None
                } else if !*stopped {
                    *stopped = true;
                    counts.old = counts.old.saturating_sub(1);
                    Some(Row { batch: Batch::StopOrdinal { ordinal: *next - 1 }, after: *counts })
                } else {
                    *stopped = false;
                    *next -= 1;
                    counts.new = counts.new.saturating_add(1);
                    Some(Row { batch: Batch::StartOrdinal { ordinal: *next, version: Version::New }, after: *counts })
                }
            }
        };
        self.finished = row.is_none();
        row
    }
}

/// The static assumption: what was stopped is gone, what was started is available.
fn settle(replicas: &mut Replicas) {
    replicas.stopping = 0;
    replicas.new_available = replicas.new;
}

fn apply(replicas: &mut Replicas, batch: Batch) {
    match batch {
        Batch::StartNew { count } => replicas.new = replicas.new.saturating_add(count),
        Batch::StopOld { count, unavailable } => {
            replicas.old = replicas.old.saturating_sub(count);
            replicas.old_available = replicas.old_available.saturating_sub(count.saturating_sub(unavailable));
            replicas.stopping = replicas.stopping.saturating_add(count);
        }
        Batch::StopNew { count, .. } => {
            replicas.new = replicas.new.saturating_sub(count);
            replicas.stopping = replicas.stopping.saturating_add(count);
        }
        Batch::StopOrdinal { .. } | Batch::StartOrdinal { .. } => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Display
// ---------------------------------------------------------------------------------------------

/// A table longer than this is cut (`complete: false`); only a replica count in the thousands
/// gets near it.
pub const MAX_TABLE_ROWS: usize = 10_000;

/// A rollout as `swarmctl plan` shows it: the strategy with its resolved bounds and the
/// old/new counts after each batch. Its `Display` is the stable text form (two lines; `{:#}`
/// lists every batch); `Serialize` is the JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub strategy: Strategy,
    pub start: Counts,
    pub rows: Vec<Row>,
    /// False when the rows were cut at [`MAX_TABLE_ROWS`].
    pub complete: bool,
}

/// The [`steps`] of a rollout from `start`, collected for display.
///
/// ```
/// use swarmctl::plan::rollout::{table, Bounds, Replicas, Strategy};
///
/// let shown = table(&Strategy::Rolling(Bounds::new(10, 3, 2)), &Replicas::old(10));
/// assert_eq!(
///     shown.to_string(),
///     "rolling update of 10 replicas: max surge 3, max unavailable 2 (at most 13 at once, at least 8 available)\n\
///      10/0 → 10/3 → 5/3 → 5/8 → 0/8 → 0/10\n",
/// );
/// ```
pub fn table(strategy: &Strategy, start: &Replicas) -> Table {
    let mut steps = steps(strategy, start);
    let start = steps.start();
    let rows: Vec<Row> = steps.by_ref().take(MAX_TABLE_ROWS).collect();
    let complete = steps.next().is_none();
    Table { strategy: *strategy, start, rows, complete }
}

/// Show every state of a table up to this many; beyond it, the head and the tail.
const SHOW_ALL_UP_TO: usize = 32;
const SHOW_HEAD: usize = 12;
const SHOW_TAIL: usize = 6;

impl Table {
    /// Old and new replicas after the last row.
    pub fn end(&self) -> Counts {
        self.rows.last().map_or(self.start, |row| row.after)
    }

    /// The old/new counts from start to end: `10/0 → 10/3 → 5/3 → 5/8 → 0/8 → 0/10`. A long
    /// table shows its first 12 and last 6 states around `… N more …`.
    pub fn counts_line(&self) -> String {
        let states: Vec<String> =
            std::iter::once(self.start).chain(self.rows.iter().map(|row| row.after)).map(|counts| counts.to_string()).collect();
        let mut line = if states.len() <= SHOW_ALL_UP_TO {
            states.join(" → ")
        } else {
            let hidden = states.len() - SHOW_HEAD - SHOW_TAIL;
            format!(
                "{} → … {hidden} more … → {}",
                states[..SHOW_HEAD].join(" → "),
                states[states.len() - SHOW_TAIL..].join(" → ")
            )
        };
        if !self.complete {
            line.push_str(" → … (cut)");
        }
        line
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.strategy)?;
        if !f.alternate() {
            return writeln!(f, "{}", self.counts_line());
        }
        writeln!(f, "  start: {}", self.start)?;
        for row in &self.rows {
            writeln!(f, "  {}: {}", row.batch, row.after)?;
        }
        if !self.complete {
            writeln!(f, "  … (cut at {MAX_TABLE_ROWS} steps)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Strategy::Rolling(b) => write!(
                f,
                "rolling update of {}: max surge {}, max unavailable {} (at most {} at once, at least {} available)",
                replicas(b.desired()),
                b.max_surge(),
                b.max_unavailable(),
                b.max_total(),
                b.min_available()
            ),
            Strategy::Recreate { desired } => {
                write!(f, "recreate {}: every old replica stops before any new one starts", replicas(desired))
            }
            Strategy::Ordered { replicas: count, partition } => {
                write!(f, "ordered update of {}, highest ordinal first, one at a time", replicas(count))?;
                match partition.min(count) {
                    0 => Ok(()),
                    held if held == count => write!(f, "; partition {partition} holds every ordinal back: nothing is updated"),
                    1 => write!(f, "; partition 1 keeps ordinal 0 on the old spec"),
                    held => write!(f, "; partition {partition} keeps ordinals 0..={} on the old spec", held - 1),
                }
            }
        }
    }
}

/// `1 replica`, `3 replicas`.
fn replicas(count: u32) -> String {
    if count == 1 { "1 replica".to_string() } else { format!("{count} replicas") }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Batch::StartNew { count } => write!(f, "start {count} new"),
            Batch::StopOld { count, unavailable: 0 } => write!(f, "stop {count} old"),
            Batch::StopOld { count, unavailable } => write!(f, "stop {count} old ({unavailable} unavailable first)"),
            Batch::StopNew { count, unavailable: 0 } => write!(f, "stop {count} surplus new"),
            Batch::StopNew { count, unavailable } => write!(f, "stop {count} surplus new ({unavailable} unavailable first)"),
            Batch::StopOrdinal { ordinal } => write!(f, "stop #{ordinal}"),
            Batch::StartOrdinal { ordinal, version: Version::New } => write!(f, "start #{ordinal}"),
            Batch::StartOrdinal { ordinal, version: Version::Old } => write!(f, "start #{ordinal} (old spec, below the partition)"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One host, fixed host ports
// ---------------------------------------------------------------------------------------------

/// Bounds after fitting them to what a host can do, and why they changed (for the plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fitted {
    pub bounds: Bounds,
    /// Set when the bounds changed: one line the plan prints.
    pub note: Option<String>,
}

/// On one host, a replica that publishes a fixed host port cannot surge: a second copy cannot
/// bind the same port beside the first. With such ports the usable bounds are surge 0 and at
/// least one unavailable (stop-first); otherwise the bounds are returned unchanged.
///
/// ```
/// use swarmctl::plan::rollout::{fit_fixed_host_ports, Bounds};
///
/// let fitted = fit_fixed_host_ports("web", &[8080], Bounds::new(1, 1, 0));
/// assert_eq!(fitted.bounds, Bounds::new(1, 0, 1));
/// assert_eq!(
///     fitted.note.as_deref(),
///     Some("web publishes 8080 on the host: cannot start a second copy beside the first; rolling stop-first, 1 at a time"),
/// );
/// assert_eq!(fit_fixed_host_ports("web", &[], Bounds::new(1, 1, 0)).note, None);
/// ```
pub fn fit_fixed_host_ports(service: &str, host_ports: &[u16], bounds: Bounds) -> Fitted {
    if host_ports.is_empty() || bounds.max_surge() == 0 {
        return Fitted { bounds, note: None };
    }
    let fitted = Bounds::new(bounds.desired(), 0, bounds.max_unavailable().max(1));
    let mut ports = host_ports.to_vec();
    ports.sort_unstable();
    ports.dedup();
    let ports = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
    let note = format!(
        "{service} publishes {ports} on the host: cannot start a second copy beside the first; rolling stop-first, {} at a time",
        fitted.max_unavailable()
    );
    Fitted { bounds: fitted, note: Some(note) }
}

// ---------------------------------------------------------------------------------------------
// Swarm
// ---------------------------------------------------------------------------------------------

/// Swarm's `update_config.failure_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

/// What Swarm watches for after each batch, and what it does on failure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FailurePolicy {
    pub action: FailureAction,
    /// How long after a task starts its failure still counts against the update.
    pub monitor: Duration,
    /// Fraction of failed tasks tolerated (0 to 1).
    pub max_failure_ratio: f64,
}

/// Swarm's default `monitor`.
pub const SWARM_DEFAULT_MONITOR: Duration = Duration::from_secs(5);

impl FailurePolicy {
    /// Swarm's defaults: pause, monitor 5s, no failures tolerated.
    pub fn swarm_default() -> FailurePolicy {
        FailurePolicy { action: FailureAction::Pause, monitor: SWARM_DEFAULT_MONITOR, max_failure_ratio: 0.0 }
    }

    /// `x-rollout.auto_rollback`: roll back on failure, else pause; Swarm's other defaults.
    pub fn auto_rollback(enabled: bool) -> FailurePolicy {
        let action = if enabled { FailureAction::Rollback } else { FailureAction::Pause };
        FailurePolicy { action, ..FailurePolicy::swarm_default() }
    }
}

/// Swarm's `UpdateConfig`, every field explicit (the engine fills blanks with its own defaults,
/// and drops a zero `monitor` for 5s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SwarmUpdateConfig {
    pub parallelism: u32,
    pub delay: Duration,
    pub failure_action: FailureAction,
    pub monitor: Duration,
    pub max_failure_ratio: f64,
    pub order: UpdateOrder,
}

/// A Swarm update config and what the mapping had to approximate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwarmMapping {
    pub config: SwarmUpdateConfig,
    /// Lines the plan prints; empty when the mapping is exact.
    pub notes: Vec<String>,
}

/// The smallest monitor the engine keeps (it replaces zero by 5s).
const SMALLEST_MONITOR: Duration = Duration::from_nanos(1);

/// Bounds in Swarm's words: surge only → `start-first` with parallelism = surge; unavailability
/// only → `stop-first` with parallelism = unavailable; `min_ready` → `delay` (Swarm sleeps that
/// long after each batch is running). Swarm cannot express a surge *and* unavailability at once:
/// then start-first with parallelism = surge (never above the surge bound, never lowering
/// availability), and a note says so. A zero `monitor` goes out as 1ns, because the engine would
/// turn 0 into 5s; a ratio outside 0..=1 is clamped.
///
/// ```
/// use std::time::Duration;
/// use swarmctl::plan::rollout::{swarm_update_config, Bounds, FailurePolicy, UpdateOrder};
///
/// let mapped = swarm_update_config(&Bounds::new(4, 1, 0), Duration::from_secs(10), &FailurePolicy::auto_rollback(true));
/// assert_eq!((mapped.config.order, mapped.config.parallelism), (UpdateOrder::StartFirst, 1));
/// assert_eq!(mapped.config.delay, Duration::from_secs(10));
/// assert!(mapped.notes.is_empty());
///
/// let mapped = swarm_update_config(&Bounds::new(10, 3, 2), Duration::ZERO, &FailurePolicy::swarm_default());
/// assert_eq!((mapped.config.order, mapped.config.parallelism), (UpdateOrder::StartFirst, 3));
/// assert_eq!(mapped.notes.len(), 1);
/// ```
pub fn swarm_update_config(bounds: &Bounds, min_ready: Duration, failure: &FailurePolicy) -> SwarmMapping {
    let mut notes = Vec::new();
    let (order, parallelism) = match (bounds.max_surge(), bounds.max_unavailable()) {
        (0, 0) => (UpdateOrder::StopFirst, 1), // no replicas: nothing to update; Swarm's default
        (0, unavailable) => (UpdateOrder::StopFirst, unavailable),
        (surge, 0) => (UpdateOrder::StartFirst, surge),
        (surge, unavailable) => {
            notes.push(format!(
                "max surge {surge} with max unavailable {unavailable} has no exact Swarm equivalent: \
                 using start-first, {surge} at a time (never above the surge bound, never lowering availability)"
            ));
            (UpdateOrder::StartFirst, surge)
        }
    };
    let monitor = if failure.monitor.is_zero() {
        notes.push("monitor 0s would become the engine's default 5s: sending 1ns".to_string());
        SMALLEST_MONITOR
    } else {
        failure.monitor
    };
    let max_failure_ratio = if failure.max_failure_ratio.is_nan() { 0.0 } else { failure.max_failure_ratio.clamp(0.0, 1.0) };
    SwarmMapping {
        config: SwarmUpdateConfig { parallelism, delay: min_ready, failure_action: failure.action, monitor, max_failure_ratio, order },
        notes,
    }
}
