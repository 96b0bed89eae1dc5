//! Placement: which node each task of a stack lands on, predicted before anything changes.
//!
//! Swarm users find out that a service cannot be placed only after the fact, as tasks stuck in
//! Pending with a vague reason ("no suitable node (scheduling constraints not satisfied on 3
//! nodes)", moby/moby#33807, #32999). This module answers it first, for the observed nodes of a
//! Swarm or the hypothetical nodes of a cluster file, and says *per node* why a task cannot go
//! there. It is pure arithmetic: nodes and demands in, a [`PlacementPlan`] out.
//!
//! # The algorithm is swarmkit's
//!
//! The prediction is only worth something if it is what Swarm will do, so this follows
//! swarmkit's scheduler step by step (read at moby/swarmkit 3e72cb6, Aug 2026):
//!
//! - **Filters** (`manager/scheduler/filter.go`, `pipeline.go`): a node takes a task only when it
//!   is ready and active (`ReadyFilter`), the task's reservation fits what remains
//!   (`ResourceFilter`), the constraints match (`ConstraintFilter`, [`constraint`]), its
//!   host-mode ports are free (`HostPortFilter`) and the service is below
//!   `max_replicas_per_node` there (`MaxReplicasFilter`).
//! - **Node order** (`scheduler.go`, `nodeLess`): fewest tasks *of this service* first, then
//!   fewest tasks in total. Swarm breaks the remaining ties at random (Go map order); here the
//!   node listed first wins, so the plan is deterministic.
//! - **Spread preferences** (`nodeset.go` `tree`, `decision_tree.go`): the nodes form a tree, one
//!   level per preference in order, one branch per label value; nodes *without* the label form
//!   their own branch (value `""`). Only `node.labels.*` and `engine.labels.*` spread; other
//!   descriptors are skipped. Each leaf keeps only the best `replicas` nodes that passed the
//!   filters when the tree was built.
//! - **Splitting tasks over branches** (`scheduler.go`, `scheduleNTasksOnSubtree`): each branch
//!   gets `remaining / branches` tasks, the first `remaining % branches` branches one more; a
//!   branch that cannot take its share is marked full and the rest is split again over the others.
//!   Swarm visits branches in random order (Go map iteration); here the branch holding the best
//!   node goes first, then label-value order — one of the orders Swarm may take, and the one
//!   that predicts the usual outcome.
//! - **Filling a leaf** (`scheduleNTasksOnNodes`): the first pass keeps giving tasks to the
//!   current node until the next one is better, later passes go round robin; a node that fails
//!   the filters is skipped for the rest of the leaf.
//! - **Global services** (`manager/orchestrator/global/global.go`): one task per node that meets
//!   the constraints and is neither drained, paused nor down; the scheduler then checks that task
//!   against its node (`processPreassignedTasks`), so one that does not fit stays Pending.
//!
//! swarmkit schedules the pending tasks of several services in one tick in random order;
//! swarmctl creates services wave by wave, so the caller passes the order (see [`wave_order`]).
//!
//! A statefulset ordinal is its own one-replica Swarm service `<service>-<ordinal>`; once its
//! volume exists on a node it is pinned there ([`Demand::for_ordinal`]). Ordinals count
//! together for `max_replicas_per_node`, spread and node order ([`Demand::group`]), as the
//! replicas of one service would.
//!
//! # Worked example
//!
//! Three racks holding 1, 2 and 3 nodes, six replicas spread over `node.labels.rack`: each rack
//! gets two; rack `a`'s one node takes both of its own, rack `c`'s two tasks go to its first two
//! nodes.
//!
//! ```
//! use swarmctl::model::node::Node;
//! use swarmctl::plan::placement::{plan_placement, Demand};
//! let nodes: Vec<Node> = [("a1", "a"), ("b1", "b"), ("b2", "b"), ("c1", "c"), ("c2", "c"), ("c3", "c")]
//!     .iter()
//!     .map(|(name, rack)| {
//!         let mut node = Node::new(name);
//!         node.labels.insert("rack".into(), rack.to_string());
//!         node
//!     })
//!     .collect();
//! let mut web = Demand::replicated("web", 6);
//! web.spread = vec!["node.labels.rack".parse().unwrap()];
//! let plan = plan_placement(&nodes, &[web]).unwrap();
//! let counts: Vec<u32> = nodes.iter().map(|n| plan.count("web", &n.id)).collect();
//! assert_eq!(counts, [2, 1, 1, 1, 1, 0]);
//! assert!(plan.problems.is_empty());
//! ```
//!
//! Why the branch order matters: a branch whose nodes all refuse (say a drained rack) is found
//! full only after its share was handed out, and swarmkit then splits that share again without
//! counting what the other branches already got. Four replicas over racks `a`, `b` and a
//! drained `c` end up 3 / 1 or 2 / 2 in Swarm, by map order; visiting the emptier branch first
//! predicts 2 / 2. And with a fixed order a one-replica service (each statefulset ordinal)
//! would always go to the first branch: three ordinals spread over three zones would all land
//! in zone `a`.

use crate::graph::DependencyGraph;
use crate::model::node::{format_bytes, format_cpus, Availability, HostPort, Node, State, NANO_CPUS_PER_CPU};
use crate::model::stack::{Kind, Service, Stack};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write};
use std::str::FromStr;

pub use constraint::{Constraint, ConstraintError, Operator};

/// Placement constraints exactly as swarmkit parses and matches them
/// (`manager/constraint/constraint.go`).
///
/// An expression is `key == value` or `key != value`. Keys are checked against
/// `^(?i)[a-z_][a-z0-9\-_.]+$`, values against `^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$`,
/// after trimming. `==` is looked for before `!=`. Keys and values compare case-insensitively;
/// label *names* are case-sensitive. A missing label, an unreported platform and an absent
/// hostname all read as `""`, which `!=` matches. A key swarmkit does not know parses fine and
/// then matches no node, with either operator — such a service stays Pending forever, so the
/// planner says so.
///
/// ```
/// use swarmctl::plan::placement::Constraint;
/// let c: Constraint = "node.labels.tier == data".parse().unwrap();
/// assert_eq!(c.key(), "node.labels.tier");
/// assert!("node.role = manager".parse::<Constraint>().is_err());
/// ```
pub mod constraint {
    use crate::model::node::Node;
    use serde::Serialize;
    use std::fmt;
    use std::net::IpAddr;
    use std::str::FromStr;

    /// `==` or `!=`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
    pub enum Operator {
        #[serde(rename = "==")]
        Equal,
        #[serde(rename = "!=")]
        NotEqual,
    }

    /// What a constraint's key reads from a node.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    #[serde(rename_all = "snake_case", tag = "kind", content = "name")]
    pub enum Target {
        NodeId,
        Hostname,
        /// `node.ip`: an address or a CIDR subnet.
        Ip,
        Role,
        Os,
        Architecture,
        NodeLabel(String),
        EngineLabel(String),
        /// A key swarmkit does not know: it matches no node.
        Unknown,
    }

    /// One parsed constraint.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub struct Constraint {
        /// As written, trimmed.
        pub expression: String,
        key: String,
        pub operator: Operator,
        pub value: String,
        pub target: Target,
    }

    /// Why swarmkit's parser (and so `docker service create`) refuses an expression.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    pub enum ConstraintError {
        #[error("expected one operator from ==, !=")]
        NoOperator,
        #[error("key `{0}` is invalid")]
        InvalidKey(String),
        #[error("value `{0}` is invalid")]
        InvalidValue(String),
    }

    impl ConstraintError {
        /// How to write it instead.
        pub fn hint(&self) -> &'static str {
            match self {
                ConstraintError::NoOperator => "write `KEY == VALUE` or `KEY != VALUE`, e.g. `node.labels.tier == data`",
                ConstraintError::InvalidKey(_) => "keys are node.id, node.hostname, node.ip, node.role, node.platform.os, node.platform.arch, node.labels.NAME or engine.labels.NAME",
                ConstraintError::InvalidValue(_) => "values use letters, digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | / only (no quotes, `=`, `!`, `<`, `>`, `,`)",
            }
        }
    }

    const NODE_LABEL_PREFIX: &str = "node.labels.";
    const ENGINE_LABEL_PREFIX: &str = "engine.labels.";

    /// The keys swarmkit matches, for "did you mean".
    pub const KNOWN_KEYS: [&str; 8] =
        ["node.id", "node.hostname", "node.ip", "node.role", "node.platform.os", "node.platform.arch", "node.labels.NAME", "engine.labels.NAME"];

    impl FromStr for Constraint {
        type Err = ConstraintError;

        /// swarmkit's `constraint.Parse` for one expression.
        fn from_str(expression: &str) -> Result<Constraint, ConstraintError> {
            for (operator, text) in [(Operator::Equal, "=="), (Operator::NotEqual, "!=")] {
                let Some((key, value)) = expression.split_once(text) else { continue };
                let key = key.trim();
                if !valid_key(key) {
                    return Err(ConstraintError::InvalidKey(key.to_string()));
                }
                let value = value.trim();
                if !valid_value(value) {
                    return Err(ConstraintError::InvalidValue(value.to_string()));
                }
                let target = target_of(key);
                return Ok(Constraint { expression: expression.trim().to_string(), key: key.to_string(), operator, value: value.to_string(), target });
            }
            Err(ConstraintError::NoOperator)
        }
    }

    impl fmt::Display for Constraint {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(&self.expression)
        }
    }

    impl Constraint {
        pub fn key(&self) -> &str {
            &self.key
        }

        /// swarmkit's `NodeMatches` for this one constraint.
        pub fn matches(&self, node: &Node) -> bool {
            match &self.target {
                Target::NodeId => self.compare(&node.id),
                Target::Hostname => self.compare(&node.hostname),
                Target::Role => self.compare(node.role.as_str()),
                Target::Os => self.compare(&node.platform.os),
                Target::Architecture => self.compare(&node.platform.architecture),
                Target::NodeLabel(name) => self.compare(node.labels.get(name).map_or("", String::as_str)),
                Target::EngineLabel(name) => self.compare(node.engine_labels.get(name).map_or("", String::as_str)),
                Target::Ip => self.matches_ip(node.addr.as_deref()),
                Target::Unknown => false,
            }
        }

        /// What the node has where this constraint looks, for messages: `tier is `app``.
        pub fn what_node_has(&self, node: &Node) -> String {
            let shown = |what: &str, value: &str| {
                if value.is_empty() {
                    format!("no {what}")
                } else {
                    format!("{what} is `{value}`")
                }
            };
            match &self.target {
                Target::NodeId => shown("id", &node.id),
                Target::Hostname => shown("hostname", &node.hostname),
                Target::Role => shown("role", node.role.as_str()),
                Target::Os => shown("os", &node.platform.os),
                Target::Architecture => shown("arch", &node.platform.architecture),
                Target::NodeLabel(name) => match node.labels.get(name) {
                    Some(value) => format!("{name} is `{value}`"),
                    None => format!("no label `{name}`"),
                },
                Target::EngineLabel(name) => match node.engine_labels.get(name) {
                    Some(value) => format!("engine label {name} is `{value}`"),
                    None => format!("no engine label `{name}`"),
                },
                Target::Ip => match (&node.addr, ip_or_subnet(&self.value)) {
                    (_, None) => format!("`{}` is neither an IP address nor a CIDR subnet, so no node matches", self.value),
                    (Some(addr), _) => format!("address is `{addr}`"),
                    (None, _) => "no known address".to_string(),
                },
                Target::Unknown => format!("`{}` is not a key Swarm knows, so no node matches", self.key),
            }
        }

        /// `Constraint.Match`: case-insensitive equality, negated by `!=`.
        fn compare(&self, what: &str) -> bool {
            equal_fold(&self.value, what) == (self.operator == Operator::Equal)
        }

        /// `node.ip == 10.0.0.2`, `node.ip != 10.0.0.0/24`; anything else matches nothing.
        fn matches_ip(&self, addr: Option<&str>) -> bool {
            let node_ip = addr.and_then(|a| a.parse::<IpAddr>().ok()).map(|ip| ip.to_canonical());
            let inside = match ip_or_subnet(&self.value) {
                None => return false,
                Some(Subnet { ip, prefix: None }) => node_ip == Some(ip),
                Some(subnet) => node_ip.is_some_and(|node_ip| subnet.contains(node_ip)),
            };
            inside == (self.operator == Operator::Equal)
        }
    }

    struct Subnet {
        ip: IpAddr,
        prefix: Option<u8>,
    }

    impl Subnet {
        fn contains(&self, ip: IpAddr) -> bool {
            let prefix = u32::from(self.prefix.unwrap_or(128));
            match (self.ip, ip) {
                (IpAddr::V4(net), IpAddr::V4(ip)) => {
                    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix.min(32)) };
                    u32::from(net) & mask == u32::from(ip) & mask
                }
                (IpAddr::V6(net), IpAddr::V6(ip)) => {
                    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix.min(128)) };
                    u128::from(net) & mask == u128::from(ip) & mask
                }
                _ => false,
            }
        }
    }

    /// `net.ParseIP`, then `net.ParseCIDR`.
    fn ip_or_subnet(text: &str) -> Option<Subnet> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Subnet { ip: ip.to_canonical(), prefix: None });
        }
        let (ip, prefix) = text.split_once('/')?;
        let ip = ip.parse::<IpAddr>().ok()?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let prefix: u8 = prefix.parse().ok()?;
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        (prefix <= bits).then_some(Subnet { ip, prefix: Some(prefix) })
    }

    fn target_of(key: &str) -> Target {
        let is = |known: &str| equal_fold(key, known);
        let label = |prefix: &str| {
            key.get(..prefix.len()).filter(|head| key.len() > prefix.len() && equal_fold(head, prefix)).map(|_| key[prefix.len()..].to_string())
        };
        if is("node.id") {
            Target::NodeId
        } else if is("node.hostname") {
            Target::Hostname
        } else if is("node.ip") {
            Target::Ip
        } else if is("node.role") {
            Target::Role
        } else if is("node.platform.os") {
            Target::Os
        } else if is("node.platform.arch") {
            Target::Architecture
        } else if let Some(name) = label(NODE_LABEL_PREFIX) {
            Target::NodeLabel(name)
        } else if let Some(name) = label(ENGINE_LABEL_PREFIX) {
            Target::EngineLabel(name)
        } else {
            Target::Unknown
        }
    }

    /// A letter for Go's `(?i)[a-z]`: ASCII letters, and the two non-ASCII characters whose
    /// case folding reaches one (U+212A KELVIN SIGN → k, U+017F LONG S → s).
    fn folds_to_letter(c: char) -> bool {
        c.is_ascii_alphabetic() || c == '\u{212A}' || c == '\u{17F}'
    }

    fn valid_key(key: &str) -> bool {
        let mut chars = key.chars();
        let first_ok = chars.next().is_some_and(|c| folds_to_letter(c) || c == '_');
        let rest: Vec<char> = chars.collect();
        first_ok && !rest.is_empty() && rest.iter().all(|&c| folds_to_letter(c) || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    }

    fn valid_value(value: &str) -> bool {
        !value.is_empty()
            && value.chars().all(|c| {
                folds_to_letter(c)
                    || c.is_ascii_digit()
                    // Go's `\s`: tab, newline, form feed, carriage return, space.
                    || matches!(c, '\t' | '\n' | '\x0C' | '\r' | ' ')
                    || matches!(c, ':' | '-' | '_' | '.' | '*' | '(' | ')' | '?' | '+' | '[' | ']' | '\\' | '^' | '$' | '|' | '/')
            })
    }

    /// Go's `strings.EqualFold` (simple Unicode case folding), close enough: per character,
    /// equal after lowercasing, with the two folds that reach ASCII from outside it.
    pub fn equal_fold(a: &str, b: &str) -> bool {
        fn fold(c: char) -> char {
            match c {
                '\u{212A}' => 'k',
                '\u{17F}' => 's',
                c if c.is_ascii() => c.to_ascii_lowercase(),
                c => {
                    let mut lower = c.to_lowercase();
                    match (lower.next(), lower.next()) {
                        (Some(single), None) => single,
                        _ => c,
                    }
                }
            }
        }
        a.chars().count() == b.chars().count() && a.chars().zip(b.chars()).all(|(x, y)| fold(x) == fold(y))
    }
}

/// A spread preference: `node.labels.rack` spreads tasks evenly over the values of `rack`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spread {
    /// As written.
    pub descriptor: String,
    /// What it reads; `None` for descriptors Swarm skips (anything but node or engine labels).
    pub label: Option<SpreadLabel>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum SpreadLabel {
    Node(String),
    Engine(String),
}

impl FromStr for Spread {
    type Err = std::convert::Infallible;

    fn from_str(descriptor: &str) -> Result<Spread, Self::Err> {
        Ok(Spread::new(descriptor))
    }
}

impl Spread {
    /// `nodeset.go`: a `node.labels.` or `engine.labels.` prefix (any case) and a name; anything
    /// else is accepted and skipped, as Swarm does.
    pub fn new(descriptor: &str) -> Spread {
        let descriptor = descriptor.trim();
        let label = |prefix: &str| {
            descriptor
                .get(..prefix.len())
                .filter(|head| descriptor.len() > prefix.len() && head.eq_ignore_ascii_case(prefix))
                .map(|_| descriptor[prefix.len()..].to_string())
        };
        let label = label("node.labels.").map(SpreadLabel::Node).or_else(|| label("engine.labels.").map(SpreadLabel::Engine));
        Spread { descriptor: descriptor.to_string(), label }
    }

    /// The node's value for this preference; `""` for a node without the label.
    fn value_of<'n>(&self, node: &'n Node) -> Option<&'n str> {
        match &self.label {
            Some(SpreadLabel::Node(name)) => Some(node.labels.get(name).map_or("", String::as_str)),
            Some(SpreadLabel::Engine(name)) => Some(node.engine_labels.get(name).map_or("", String::as_str)),
            None => None,
        }
    }
}

/// Replicated (a number of interchangeable tasks) or global (one per eligible node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Mode {
    Replicated { replicas: u32 },
    Global,
}

/// What one Swarm service asks of the cluster: the planner's input, built from a stack
/// [`Service`] ([`Demand::from_service`], [`Demand::for_ordinal`]) or by hand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Demand {
    /// The Swarm service's name: the stack service's, or `<service>-<ordinal>`. What the table's
    /// rows and [`TaskCounts`] name.
    pub service: String,
    /// The stack's service it comes from.
    pub stack_service: String,
    /// Whose tasks `max_replicas_per_node`, spread and node order count (swarmkit: the
    /// service's). The service itself, except for statefulset ordinals: their stack service, so
    /// ordinals keep apart as the replicas of one service do. That holds on Swarm only if each
    /// new ordinal is created pinned to its planned node (left free, Swarm counts every ordinal
    /// alone and may stack them on one node); set it to `service` to predict that.
    pub group: String,
    pub mode: Mode,
    pub constraints: Vec<Constraint>,
    pub spread: Vec<Spread>,
    /// `None`: no limit (Swarm reads 0 the same way).
    pub max_replicas_per_node: Option<u32>,
    /// Per task.
    pub reserve_nano_cpus: u64,
    pub reserve_memory_bytes: u64,
    /// A statefulset ordinal whose volume lives on a node: that node's id or hostname.
    pub pinned_to: Option<String>,
    /// Ports published in host mode: two tasks holding one cannot share a node.
    pub host_ports: Vec<HostPort>,
}

/// A service whose placement cannot even be asked about.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DemandError {
    #[error("service `{service}`: placement constraint `{expression}` is invalid: {reason}")]
    InvalidConstraint { service: String, expression: String, reason: ConstraintError },
    #[error("service `{service}`: CPU reservation `{cpus}` is not a number of CPUs")]
    InvalidCpus { service: String, cpus: f64 },
    #[error("the placement order names `{0}`, which is not a service of the stack")]
    UnknownService(String),
    #[error("service `{service}`: {replicas} replicas, more than the {MAX_TASKS} a plan takes")]
    TooManyReplicas { service: String, replicas: u32 },
}

impl DemandError {
    /// How to fix it.
    pub fn hint(&self) -> &'static str {
        match self {
            DemandError::InvalidConstraint { reason, .. } => reason.hint(),
            DemandError::InvalidCpus { .. } => "write `deploy.resources.reservations.cpus` as a positive number, e.g. `0.5`",
            DemandError::UnknownService(_) => "pass the stack's own service names, e.g. from `wave_order`",
            DemandError::TooManyReplicas { .. } => "check `deploy.replicas`: a cluster of a few nodes runs hundreds of tasks, not millions",
        }
    }
}

impl Demand {
    /// A replicated demand with nothing else set; fill in the fields you need.
    pub fn replicated(service: &str, replicas: u32) -> Demand {
        Demand {
            service: service.to_string(),
            stack_service: service.to_string(),
            group: service.to_string(),
            mode: Mode::Replicated { replicas },
            constraints: Vec::new(),
            spread: Vec::new(),
            max_replicas_per_node: None,
            reserve_nano_cpus: 0,
            reserve_memory_bytes: 0,
            pinned_to: None,
            host_ports: Vec::new(),
        }
    }

    /// A global demand (one task per eligible node).
    pub fn global(service: &str) -> Demand {
        Demand { mode: Mode::Global, ..Demand::replicated(service, 0) }
    }

    /// The Swarm services a stack service becomes: one for a deployment or a job, one global for
    /// a daemonset, one per ordinal (`db-0`, `db-1`, unpinned) for a statefulset. Every invalid
    /// constraint is reported, not just the first.
    pub fn from_service(service: &Service) -> Result<Vec<Demand>, Vec<DemandError>> {
        let base = Demand::base(service)?;
        Ok(match service.kind {
            Kind::Daemonset => vec![Demand { mode: Mode::Global, ..base }],
            Kind::Job if service.swarm.global_job => vec![Demand { mode: Mode::Global, ..base }],
            Kind::Deployment | Kind::Job => vec![Demand { mode: Mode::Replicated { replicas: service.replicas }, ..base }],
            Kind::Statefulset => (0..service.replicas).map(|ordinal| base.ordinal(ordinal, None)).collect(),
        })
    }

    /// One statefulset ordinal, `<service>-<ordinal>`, one replica, counted with its siblings
    /// ([`Demand::group`]); `pinned_to` is the node (id or hostname) that holds its volume, if
    /// it has one already.
    pub fn for_ordinal(service: &Service, ordinal: u32, pinned_to: Option<&str>) -> Result<Demand, Vec<DemandError>> {
        Ok(Demand::base(service)?.ordinal(ordinal, pinned_to))
    }

    fn ordinal(&self, ordinal: u32, pinned_to: Option<&str>) -> Demand {
        Demand {
            service: format!("{}-{ordinal}", self.stack_service),
            group: self.stack_service.clone(),
            mode: Mode::Replicated { replicas: 1 },
            pinned_to: pinned_to.map(str::to_string),
            ..self.clone()
        }
    }

    fn base(service: &Service) -> Result<Demand, Vec<DemandError>> {
        let mut errors = Vec::new();
        let mut constraints = Vec::new();
        for expression in &service.placement.constraints {
            match expression.parse::<Constraint>() {
                Ok(constraint) => constraints.push(constraint),
                Err(reason) => errors.push(DemandError::InvalidConstraint { service: service.name.clone(), expression: expression.clone(), reason }),
            }
        }
        let reserve_nano_cpus = match service.resources.reserve_cpus {
            None => 0,
            Some(cpus) if (0.0..=1e9).contains(&cpus) => (cpus * NANO_CPUS_PER_CPU as f64).round() as u64,
            Some(cpus) => {
                errors.push(DemandError::InvalidCpus { service: service.name.clone(), cpus });
                0
            }
        };
        if u64::from(service.replicas) > MAX_TASKS {
            errors.push(DemandError::TooManyReplicas { service: service.name.clone(), replicas: service.replicas });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Demand {
            service: service.name.clone(),
            stack_service: service.name.clone(),
            group: service.name.clone(),
            mode: Mode::Replicated { replicas: service.replicas },
            constraints,
            spread: service.placement.spread.iter().map(|descriptor| Spread::new(descriptor)).collect(),
            max_replicas_per_node: service.placement.max_replicas_per_node.filter(|&max| max > 0),
            reserve_nano_cpus,
            reserve_memory_bytes: service.resources.reserve_memory.unwrap_or(0),
            pinned_to: None,
            host_ports: Vec::new(),
        })
    }
}

/// The demands of a whole stack, in `order` (stack service names; services it leaves out follow
/// by name). `pins` maps an ordinal's service name (`db-0`) to the node holding its volume.
/// Collects every error of every service.
pub fn stack_demands(stack: &Stack, order: &[String], pins: &BTreeMap<String, String>) -> Result<Vec<Demand>, Vec<DemandError>> {
    let mut errors = Vec::new();
    let mut names: Vec<&str> = Vec::with_capacity(stack.services.len());
    let mut seen = BTreeSet::new();
    for name in order {
        if !stack.services.contains_key(name) {
            errors.push(DemandError::UnknownService(name.clone()));
        } else if seen.insert(name.as_str()) {
            names.push(name);
        }
    }
    names.extend(stack.services.keys().map(String::as_str).filter(|name| !seen.contains(name)));
    let mut demands = Vec::new();
    for name in names {
        let service = &stack.services[name];
        match Demand::from_service(service) {
            Ok(expanded) => demands.extend(expanded.into_iter().map(|mut demand| {
                demand.pinned_to = pins.get(&demand.service).cloned().filter(|_| service.kind == Kind::Statefulset);
                demand
            })),
            Err(found) => errors.extend(found),
        }
    }
    if errors.is_empty() {
        Ok(demands)
    } else {
        Err(errors)
    }
}

/// The order swarmctl creates services in: the dependency graph's waves, by name within a wave
/// (layer barriers left out).
pub fn wave_order(stack: &Stack, graph: &DependencyGraph) -> Vec<String> {
    graph.waves().into_iter().flatten().filter(|name| stack.services.contains_key(name)).collect()
}

/// Tasks one plan places at most (replicas summed over services): placement costs time per
/// task, and no cluster swarmctl is for runs a million.
pub const MAX_TASKS: u64 = 1_000_000;

/// Spread levels one service may have: each is a level of the tree (and of recursion). Real
/// services use one or two.
pub const MAX_SPREAD_PREFERENCES: usize = 32;

/// Refused input: the same node or service twice, or an absurd number of spread levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementInputError {
    #[error("node id `{0}` is listed twice")]
    DuplicateNode(String),
    #[error("service `{0}` is listed twice")]
    DuplicateService(String),
    #[error("service `{service}` has {count} spread preferences, more than {MAX_SPREAD_PREFERENCES}")]
    TooManySpreadPreferences { service: String, count: usize },
    #[error("the services ask for {tasks} tasks, more than the {MAX_TASKS} a plan takes")]
    TooManyTasks { tasks: u64 },
}

/// The predicted placement: counts per service and node, what remains per node, the problems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlacementPlan {
    /// In the order given.
    pub nodes: Vec<NodeSummary>,
    /// In placement order.
    pub services: Vec<ServicePlacement>,
    /// Services not fully placed, each with the reason per node.
    pub problems: Vec<Unplaced>,
    /// Things that are not errors but change what Swarm does (a skipped spread descriptor, a
    /// constraint key Swarm does not know, a global service no node takes).
    pub notes: Vec<String>,
}

/// A node after placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeSummary {
    pub id: String,
    /// How tables name it: the hostname, with the id when two nodes share a hostname.
    pub name: String,
    pub total_nano_cpus: u64,
    pub total_memory_bytes: u64,
    /// Held by tasks outside the planned stack.
    pub reserved_nano_cpus: u64,
    pub reserved_memory_bytes: u64,
    /// Reserved by the planned tasks.
    pub planned_nano_cpus: u64,
    pub planned_memory_bytes: u64,
    pub planned_tasks: u32,
    /// Still reservable after the plan (negative when already over-reserved by others).
    pub remaining_nano_cpus: i64,
    pub remaining_memory_bytes: i64,
}

/// Where one service's tasks go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServicePlacement {
    pub service: String,
    pub stack_service: String,
    pub global: bool,
    /// Replicas asked for; for a global service, the nodes that should run it.
    pub wanted: u32,
    pub placed: u32,
    /// Node id → tasks; nodes without tasks are left out.
    pub nodes: BTreeMap<String, u32>,
}

/// A service with tasks that would stay Pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unplaced {
    pub service: String,
    pub wanted: u32,
    pub placed: u32,
    /// Why each node takes no (more) tasks, in node order.
    pub reasons: Vec<NodeRefusal>,
}

/// One node's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeRefusal {
    pub node: String,
    pub reason: Refusal,
    /// The reason in words, as [`fmt::Display`] prints it.
    pub message: String,
}

/// Why a node takes no more tasks of a service, in the order a user would fix them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Refusal {
    /// Paused or drained.
    Unavailable { availability: Availability },
    /// Down, unknown or disconnected.
    NotReady { state: State },
    /// A constraint does not match; `detail` says what the node has instead.
    Constraint { expression: String, detail: String },
    /// A statefulset ordinal whose volume is on another node.
    PinnedElsewhere { pinned_to: String },
    MaxReplicasPerNode { max: u32 },
    HostPort { port: HostPort },
    Cpu { reserved_nano_cpus: i64, total_nano_cpus: u64, needs_nano_cpus: u64 },
    Memory { reserved_bytes: i64, total_bytes: u64, needs_bytes: u64 },
    /// Fits, but the spread preference handed its share to other branches.
    NotChosen,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Unavailable { availability: Availability::Drain } => f.write_str("drained"),
            Refusal::Unavailable { availability } => write!(f, "availability {availability}, takes no new tasks"),
            Refusal::NotReady { state } => write!(f, "{state}, takes no tasks"),
            Refusal::Constraint { expression, detail } => write!(f, "constraint {expression} not met ({detail})"),
            Refusal::PinnedElsewhere { pinned_to } => write!(f, "pinned to {pinned_to}, where its volume is"),
            Refusal::MaxReplicasPerNode { max } => write!(f, "max_replicas_per_node {max} reached"),
            Refusal::HostPort { port } => write!(f, "host port {port} already taken"),
            Refusal::Cpu { reserved_nano_cpus, total_nano_cpus, needs_nano_cpus } => write!(
                f,
                "{} CPUs reserved of {}, needs {}",
                format_cpus(*reserved_nano_cpus),
                format_cpus(clamp(*total_nano_cpus)),
                format_cpus(clamp(*needs_nano_cpus))
            ),
            Refusal::Memory { reserved_bytes, total_bytes, needs_bytes } => write!(
                f,
                "{} memory reserved of {}, needs {}",
                format_bytes(*reserved_bytes),
                format_bytes(clamp(*total_bytes)),
                format_bytes(clamp(*needs_bytes))
            ),
            Refusal::NotChosen => f.write_str("fits, but the spread preference gave its share to other nodes"),
        }
    }
}

impl Unplaced {
    /// `web: 1 of 3 replicas cannot be placed: node-3: …; node-2: …`. Nodes with the same reason
    /// are named together.
    pub fn describe(&self) -> String {
        let missing = self.wanted - self.placed;
        let what = if self.wanted == 1 { "task" } else { "tasks" };
        let mut grouped: Vec<(Vec<&str>, &str)> = Vec::new();
        for refusal in &self.reasons {
            match grouped.iter_mut().find(|(_, message)| *message == refusal.message) {
                Some((nodes, _)) => nodes.push(&refusal.node),
                None => grouped.push((vec![&refusal.node], &refusal.message)),
            }
        }
        let reasons: Vec<String> = grouped.iter().map(|(nodes, message)| format!("{}: {message}", nodes.join(", "))).collect();
        let reasons = if reasons.is_empty() { "no nodes".to_string() } else { reasons.join("; ") };
        format!("{}: {missing} of {} {what} cannot be placed: {reasons}", self.service, self.wanted)
    }
}

impl fmt::Display for Unplaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::error::Error for Unplaced {}

impl PlacementPlan {
    /// Tasks of `service` on the node with id `node`.
    pub fn count(&self, service: &str, node: &str) -> u32 {
        self.services.iter().find(|s| s.service == service).and_then(|s| s.nodes.get(node)).copied().unwrap_or(0)
    }

    /// Per service, per node id: the form an observed placement is compared in ([`compare`]).
    pub fn counts(&self) -> TaskCounts {
        TaskCounts(self.services.iter().filter(|s| !s.nodes.is_empty()).map(|s| (s.service.clone(), s.nodes.clone())).collect())
    }

    /// `Err` with every problem when something cannot be placed.
    pub fn check(&self) -> Result<(), Vec<Unplaced>> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems.clone())
        }
    }

    /// The stable text form: services × nodes, then what remains per node, then problems and
    /// notes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let placed: u32 = self.services.iter().map(|s| s.placed).sum();
        let wanted: u32 = self.services.iter().map(|s| s.wanted).sum();
        let _ = writeln!(out, "placement: {placed} of {wanted} tasks on {} nodes", self.nodes.len());
        let rows: Vec<(String, Vec<u32>, String)> = self
            .services
            .iter()
            .map(|s| {
                let name = if s.global { format!("{} (global)", s.service) } else { s.service.clone() };
                let counts = self.nodes.iter().map(|n| s.nodes.get(&n.id).copied().unwrap_or(0)).collect();
                let mark = if s.placed < s.wanted { " !" } else { "" };
                (name, counts, format!("{}/{}{mark}", s.placed, s.wanted))
            })
            .collect();
        let columns: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        out.push_str(&count_table(&columns, &rows, "PLACED"));
        out.push('\n');
        let mut table = vec![["NODE".to_string(), "CPUS FREE".to_string(), "MEMORY FREE".to_string(), "TASKS".to_string()]];
        for node in &self.nodes {
            table.push([
                node.name.clone(),
                format!("{} of {}", format_cpus(node.remaining_nano_cpus), format_cpus(clamp(node.total_nano_cpus))),
                format!("{} of {}", format_bytes(node.remaining_memory_bytes), format_bytes(clamp(node.total_memory_bytes))),
                node.planned_tasks.to_string(),
            ]);
        }
        out.push_str(&aligned(&table));
        if !self.problems.is_empty() {
            out.push_str("\ncannot place:\n");
            for problem in &self.problems {
                let _ = writeln!(out, "  {}", problem.describe());
            }
        }
        if !self.notes.is_empty() {
            out.push_str("\nnotes:\n");
            for note in &self.notes {
                let _ = writeln!(out, "  {note}");
            }
        }
        out
    }
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Rows of `name, counts…, last` under `SERVICE, columns…, last_header`; zeros print as `-`.
fn count_table(columns: &[&str], rows: &[(String, Vec<u32>, String)], last_header: &str) -> String {
    // A thousand services on fifty nodes are fifty thousand cells: written straight into one
    // string, in the layout of [`aligned`], rather than made a string each.
    let digits = |count: u32| count.checked_ilog10().map_or(1, |log| log as usize + 1);
    let first = rows.iter().map(|(name, _, _)| name.chars().count()).chain(["SERVICE".len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns.len())
        .map(|c| rows.iter().map(|(_, counts, _)| digits(counts.get(c).copied().unwrap_or(0))).chain([columns[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let last = rows.iter().map(|(_, _, last)| last.chars().count()).chain([last_header.chars().count()]).max().unwrap_or(0);
    let mut out = String::with_capacity((rows.len() + 1) * (first + last + widths.iter().map(|w| w + 2).sum::<usize>() + 3));
    let _ = write!(out, "{:<first$}", "SERVICE");
    for (column, width) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {column:>width$}");
    }
    let _ = writeln!(out, "  {last_header:>last$}");
    for (name, counts, total) in rows {
        let _ = write!(out, "{name:<first$}");
        for (&count, width) in counts.iter().zip(&widths) {
            let _ = match count {
                0 => write!(out, "  {:>width$}", "-"),
                count => write!(out, "  {count:>width$}"),
            };
        }
        let _ = writeln!(out, "  {total:>last$}");
    }
    out
}

/// Left-aligned first column, right-aligned others, two spaces apart, no trailing spaces.
fn aligned<R: AsRef<[String]>>(table: &[R]) -> String {
    let columns = table.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> =
        (0..columns).map(|c| table.iter().filter_map(|r| r.as_ref().get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.as_ref().iter().enumerate() {
            if c == 0 {
                let _ = write!(line, "{cell:<width$}", width = widths[0]);
            } else {
                let _ = write!(line, "  {cell:>width$}", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Tasks per service per node id, predicted or observed. Zero counts are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TaskCounts(pub BTreeMap<String, BTreeMap<String, u32>>);

impl TaskCounts {
    /// Adds tasks (an observed running task, say); zero adds nothing.
    pub fn add(&mut self, service: &str, node: &str, tasks: u32) {
        if tasks > 0 {
            *self.0.entry(service.to_string()).or_default().entry(node.to_string()).or_insert(0) += tasks;
        }
    }

    pub fn get(&self, service: &str, node: &str) -> u32 {
        self.0.get(service).and_then(|nodes| nodes.get(node)).copied().unwrap_or(0)
    }

    pub fn total(&self, service: &str) -> u32 {
        self.0.get(service).map_or(0, |nodes| nodes.values().sum())
    }

    /// A services × nodes table; `nodes` name the columns (id → shown name), node ids not among
    /// them get a column of their own.
    pub fn render(&self, nodes: &[NodeSummary]) -> String {
        let mut columns: Vec<(String, String)> = nodes.iter().map(|n| (n.id.clone(), n.name.clone())).collect();
        let known: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        let extra: BTreeSet<&String> = self.0.values().flat_map(|m| m.keys()).filter(|id| !known.contains(id.as_str())).collect();
        columns.extend(extra.into_iter().map(|id| (id.clone(), id.clone())));
        let rows: Vec<(String, Vec<u32>, String)> = self
            .0
            .iter()
            .map(|(service, per_node)| {
                let counts = columns.iter().map(|(id, _)| per_node.get(id).copied().unwrap_or(0)).collect();
                (service.clone(), counts, per_node.values().sum::<u32>().to_string())
            })
            .collect();
        let names: Vec<&str> = columns.iter().map(|(_, name)| name.as_str()).collect();
        count_table(&names, &rows, "TOTAL")
    }
}

/// How an observed placement differs from the predicted one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Services whose number of tasks differs: tasks Pending, or more than planned. Worth a
    /// warning.
    pub totals: Vec<TotalDifference>,
    /// Per service and node where the counts differ. With equal totals this is usually Swarm
    /// breaking a tie another way (it picks among equal nodes at random), not a fault.
    pub nodes: Vec<NodeDifference>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotalDifference {
    pub service: String,
    pub predicted: u32,
    pub observed: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeDifference {
    pub service: String,
    pub node: String,
    pub predicted: u32,
    pub observed: u32,
}

/// Compares predicted and observed counts, service by service, node by node (sorted).
///
/// ```
/// use swarmctl::plan::placement::{compare, TaskCounts};
/// let mut predicted = TaskCounts::default();
/// predicted.add("web", "n1", 1);
/// predicted.add("web", "n2", 1);
/// let mut observed = TaskCounts::default();
/// observed.add("web", "n1", 2);
/// let diff = compare(&predicted, &observed);
/// assert!(diff.totals.is_empty());
/// assert_eq!(diff.nodes.len(), 2);
/// ```
pub fn compare(predicted: &TaskCounts, observed: &TaskCounts) -> Comparison {
    let services: BTreeSet<&String> = predicted.0.keys().chain(observed.0.keys()).collect();
    let mut comparison = Comparison::default();
    for service in services {
        let (p, o) = (predicted.total(service), observed.total(service));
        if p != o {
            comparison.totals.push(TotalDifference { service: service.clone(), predicted: p, observed: o });
        }
        let nodes: BTreeSet<&String> =
            predicted.0.get(service).into_iter().chain(observed.0.get(service)).flat_map(|m| m.keys()).collect();
        for node in nodes {
            let (p, o) = (predicted.get(service, node), observed.get(service, node));
            if p != o {
                comparison.nodes.push(NodeDifference { service: service.clone(), node: node.clone(), predicted: p, observed: o });
            }
        }
    }
    comparison
}

impl Comparison {
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty() && self.nodes.is_empty()
    }

    /// The differences in words, then both tables (for `status`). Empty when they agree.
    pub fn render(&self, nodes: &[NodeSummary], predicted: &TaskCounts, observed: &TaskCounts) -> String {
        if self.is_empty() {
            return String::new();
        }
        let name = |id: &str| nodes.iter().find(|n| n.id == id).map_or(id.to_string(), |n| n.name.clone());
        let mut out = String::new();
        for total in &self.totals {
            let _ = writeln!(out, "{}: {} tasks placed, {} predicted", total.service, total.observed, total.predicted);
        }
        for difference in &self.nodes {
            let _ = writeln!(out, "{} on {}: {} tasks, {} predicted", difference.service, name(&difference.node), difference.observed, difference.predicted);
        }
        out.push_str("\npredicted:\n");
        out.push_str(&predicted.render(nodes));
        out.push_str("\nobserved:\n");
        out.push_str(&observed.render(nodes));
        out
    }
}

/// Plans `demands` in order onto `nodes`. Never fails on what it cannot place (that is in
/// [`PlacementPlan::problems`]); refuses only ambiguous input.
pub fn plan_placement(nodes: &[Node], demands: &[Demand]) -> Result<PlacementPlan, PlacementInputError> {
    let mut ids = BTreeSet::new();
    for node in nodes {
        if !ids.insert(node.id.as_str()) {
            return Err(PlacementInputError::DuplicateNode(node.id.clone()));
        }
    }
    let tasks: u64 = demands.iter().map(|d| if let Mode::Replicated { replicas } = d.mode { u64::from(replicas) } else { nodes.len() as u64 }).sum();
    if tasks > MAX_TASKS {
        return Err(PlacementInputError::TooManyTasks { tasks });
    }
    let mut services = BTreeSet::new();
    for demand in demands {
        if !services.insert(demand.service.as_str()) {
            return Err(PlacementInputError::DuplicateService(demand.service.clone()));
        }
        if demand.spread.len() > MAX_SPREAD_PREFERENCES {
            return Err(PlacementInputError::TooManySpreadPreferences { service: demand.service.clone(), count: demand.spread.len() });
        }
    }
    let mut planner = Planner::new(nodes);
    let mut plan = PlacementPlan { nodes: Vec::new(), services: Vec::new(), problems: Vec::new(), notes: Vec::new() };
    for demand in demands {
        plan.notes.extend(notes_for(demand));
        let (placement, problem) = planner.place(demand);
        if placement.global && placement.wanted == 0 {
            plan.notes.push(format!("{}: global, but no node meets its constraints and takes tasks: it runs nowhere", demand.service));
        }
        plan.services.push(placement);
        plan.problems.extend(problem);
    }
    plan.nodes = planner.summaries();
    Ok(plan)
}

/// What Swarm would silently do differently from what the demand seems to say.
fn notes_for(demand: &Demand) -> Vec<String> {
    let mut notes = Vec::new();
    for spread in demand.spread.iter().filter(|s| s.label.is_none()) {
        notes.push(format!(
            "{}: spread `{}` is skipped by Swarm: only node.labels.NAME and engine.labels.NAME spread",
            demand.service, spread.descriptor
        ));
    }
    for constraint in demand.constraints.iter().filter(|c| c.target == constraint::Target::Unknown) {
        let key = constraint.key();
        let suggestion = key
            .rsplit_once('.')
            .and_then(|(head, name)| {
                crate::spec::schema::did_you_mean(head, ["node.labels", "engine.labels"]).map(|prefix| format!("{prefix}.{name}"))
            })
            .or_else(|| crate::spec::schema::did_you_mean(key, constraint::KNOWN_KEYS).map(str::to_string));
        let hint = suggestion.map_or(String::new(), |s| format!(" (did you mean `{s}`?)"));
        notes.push(format!("{}: constraint `{constraint}`: `{key}` is not a key Swarm knows{hint}; no node will ever match it", demand.service));
    }
    notes
}

/// What placement has taken from a node so far.
#[derive(Debug, Clone)]
struct NodeState {
    free_nano_cpus: i64,
    free_memory_bytes: i64,
    /// Every task on the node (others' and planned): the tie-breaker.
    tasks: u32,
    host_ports: BTreeSet<HostPort>,
    planned_nano_cpus: u64,
    planned_memory_bytes: u64,
    planned_tasks: u32,
}

/// A spread tree (`decisionTree`): branches by label value, or (without branches) a leaf with
/// its best nodes; `tasks` counts the group's tasks on all the subtree's nodes when the tree
/// was built.
#[derive(Default)]
struct Tree<'n> {
    tasks: u32,
    /// By the label values of the nodes, borrowed.
    branches: BTreeMap<&'n str, Tree<'n>>,
    leaf: Vec<usize>,
}

struct Planner<'a> {
    nodes: &'a [Node],
    state: Vec<NodeState>,
    /// Tasks per node of each counting group ([`Demand::group`]) placed so far.
    groups: BTreeMap<String, Vec<u32>>,
}

/// One service being placed: its static verdict per node, its group's tasks per node (what
/// swarmkit calls the service's tasks) and its own.
struct Placing<'d> {
    demand: &'d Demand,
    /// What placement cannot change (readiness, constraints, pin); `None` when the node passes.
    static_block: Vec<Option<Blocked>>,
    /// The group's tasks, this demand's included: what max_replicas_per_node, spread and node
    /// order count.
    tasks: Vec<u32>,
    /// This demand's own tasks.
    own: Vec<u32>,
}

/// Which filter refuses a node: cheap to compute for every node and service, put in words
/// ([`Refusal`]) only when a service cannot be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    Unavailable,
    NotReady,
    /// The index of the first constraint that does not match.
    Constraint(usize),
    Pinned,
    MaxReplicas,
    /// The index of the demand's host port already taken.
    HostPort(usize),
    Cpu,
    Memory,
}

impl<'a> Planner<'a> {
    fn new(nodes: &'a [Node]) -> Planner<'a> {
        let state = nodes
            .iter()
            .map(|node| NodeState {
                free_nano_cpus: node.free_nano_cpus(),
                free_memory_bytes: node.free_memory_bytes(),
                tasks: node.reserved.tasks,
                host_ports: node.reserved.host_ports.iter().cloned().collect(),
                planned_nano_cpus: 0,
                planned_memory_bytes: 0,
                planned_tasks: 0,
            })
            .collect();
        Planner { nodes, state, groups: BTreeMap::new() }
    }

    fn summaries(&self) -> Vec<NodeSummary> {
        let mut hostnames: BTreeMap<&str, usize> = BTreeMap::new();
        for node in self.nodes {
            *hostnames.entry(node.hostname.as_str()).or_default() += 1;
        }
        self.nodes
            .iter()
            .zip(&self.state)
            .map(|(node, state)| NodeSummary {
                id: node.id.clone(),
                name: if hostnames[node.hostname.as_str()] > 1 || node.hostname.is_empty() {
                    format!("{} ({})", node.hostname, node.id.chars().take(12).collect::<String>())
                } else {
                    node.hostname.clone()
                },
                total_nano_cpus: node.resources.nano_cpus,
                total_memory_bytes: node.resources.memory_bytes,
                reserved_nano_cpus: node.reserved.nano_cpus,
                reserved_memory_bytes: node.reserved.memory_bytes,
                planned_nano_cpus: state.planned_nano_cpus,
                planned_memory_bytes: state.planned_memory_bytes,
                planned_tasks: state.planned_tasks,
                remaining_nano_cpus: state.free_nano_cpus,
                remaining_memory_bytes: state.free_memory_bytes,
            })
            .collect()
    }

    fn place(&mut self, demand: &Demand) -> (ServicePlacement, Option<Unplaced>) {
        let static_block = self.nodes.iter().map(|node| static_block(node, demand)).collect();
        let tasks = self.groups.remove(&demand.group).unwrap_or_else(|| vec![0; self.nodes.len()]);
        let mut placing = Placing { demand, static_block, tasks, own: vec![0; self.nodes.len()] };
        let (wanted, placed, reasons) = match demand.mode {
            Mode::Global => self.place_global(&mut placing),
            Mode::Replicated { replicas } => {
                let placed = if replicas == 0 {
                    0
                } else {
                    let mut tree = self.tree(&placing, replicas);
                    self.schedule_on_subtree(&mut placing, replicas, &mut tree)
                };
                let reasons = if placed < replicas { self.refusals(&placing) } else { Vec::new() };
                (replicas, placed, reasons)
            }
        };
        let nodes = self.nodes.iter().zip(&placing.own).filter(|(_, &n)| n > 0).map(|(node, &n)| (node.id.clone(), n)).collect();
        self.groups.insert(demand.group.clone(), placing.tasks);
        let placement = ServicePlacement {
            service: demand.service.clone(),
            stack_service: demand.stack_service.clone(),
            global: demand.mode == Mode::Global,
            wanted,
            placed,
            nodes,
        };
        let problem = (placed < wanted).then(|| Unplaced { service: demand.service.clone(), wanted, placed, reasons });
        (placement, problem)
    }

    /// The global orchestrator creates a task on each node that meets the constraints and is
    /// neither drained, paused nor down; the scheduler then checks it against that node.
    fn place_global(&mut self, placing: &mut Placing) -> (u32, u32, Vec<NodeRefusal>) {
        let (mut wanted, mut placed, mut reasons) = (0, 0, Vec::new());
        for index in 0..self.nodes.len() {
            let node = &self.nodes[index];
            let gets_task = placing.demand.constraints.iter().all(|c| c.matches(node))
                && !matches!(node.availability, Availability::Drain | Availability::Pause)
                && node.state != State::Down;
            if !gets_task {
                continue;
            }
            wanted += 1;
            match self.blocked(placing, index) {
                None => {
                    self.assign(placing, index);
                    placed += 1;
                }
                Some(blocked) => reasons.push(self.node_refusal(placing, index, Some(blocked))),
            }
        }
        (wanted, placed, reasons)
    }

    /// `nodeSet.tree`: one level per spread preference Swarm reads, one branch per value, every
    /// level counting the group's tasks below it; each leaf keeps the best `replicas` nodes that
    /// pass the filters now.
    fn tree(&self, placing: &Placing, replicas: u32) -> Tree<'a> {
        let levels: Vec<&Spread> = placing.demand.spread.iter().filter(|s| s.label.is_some()).collect();
        let mut root = Tree::default();
        for (index, node) in self.nodes.iter().enumerate() {
            let tasks = placing.tasks[index];
            let mut tree = &mut root;
            for spread in &levels {
                tree.tasks += tasks;
                let value = spread.value_of(node).unwrap_or("");
                tree = tree.branches.entry(value).or_default();
            }
            tree.tasks += tasks;
            if self.blocked(placing, index).is_none() {
                tree.leaf.push(index);
            }
        }
        let keep = replicas as usize;
        fn trim(tree: &mut Tree<'_>, keep: usize, order: &dyn Fn(&usize) -> (u32, u32, usize)) {
            tree.leaf.sort_by_key(order);
            tree.leaf.truncate(keep);
            tree.branches.values_mut().for_each(|t| trim(t, keep, order));
        }
        trim(&mut root, keep, &|&i| self.order_key(placing, i));
        root
    }

    /// `scheduleNTasksOnSubtree`: even shares per branch (counting the tasks each already had
    /// when the tree was built), re-split when a branch is full.
    fn schedule_on_subtree(&mut self, placing: &mut Placing, n: u32, tree: &mut Tree<'_>) -> u32 {
        if tree.branches.is_empty() {
            return self.schedule_on_nodes(placing, n, &mut tree.leaf);
        }
        let mut subtrees: Vec<&mut Tree<'_>> = tree.branches.values_mut().collect();
        let count = subtrees.len();
        let mut no_room = vec![false; count];
        let mut full = 0;
        let mut scheduled = 0u32;
        // As in swarmkit, a branch's `tasks` stays what it was when the tree was built.
        let mut tasks_in_usable_branches = tree.tasks;
        let mut converging = true;
        while scheduled != n && full != count && converging {
            let usable = (count - full) as u32;
            let remaining = tasks_in_usable_branches + n - scheduled;
            let desired = remaining / usable;
            let mut remainder = remaining % usable;
            converging = false;
            for index in self.branch_order(placing, &subtrees) {
                if no_room[index] {
                    continue;
                }
                let subtree_tasks = subtrees[index].tasks;
                if subtree_tasks < desired || (subtree_tasks == desired && remainder > 0) {
                    converging = true;
                    let mut to_assign = desired - subtree_tasks;
                    if remainder > 0 {
                        to_assign += 1;
                    }
                    // swarmkit runs out of tasks to hand out at this point.
                    let to_assign = to_assign.min(n - scheduled);
                    let got = self.schedule_on_subtree(placing, to_assign, &mut *subtrees[index]);
                    if got < to_assign {
                        no_room[index] = true;
                        full += 1;
                        tasks_in_usable_branches = tasks_in_usable_branches.saturating_sub(subtree_tasks);
                    } else {
                        // A branch that took its extra task used up one of the remainder.
                        remainder = remainder.saturating_sub(1);
                    }
                    scheduled += got;
                    if scheduled == n {
                        break;
                    }
                }
            }
        }
        scheduled
    }

    /// The order branches are visited in. Swarm ranges over a Go map: a random order each pass.
    /// Any order is one Swarm may take; the branch holding the best node (by [`Self::less`])
    /// first, then by label value, predicts the usual outcome rather than an unlucky one — the
    /// replicas of one-replica services (statefulset ordinals) spread instead of all going to
    /// the first zone in alphabetical order.
    fn branch_order(&self, placing: &Placing, subtrees: &[&mut Tree<'_>]) -> Vec<usize> {
        let best = |tree: &Tree<'_>| {
            let mut best = (u32::MAX, u32::MAX);
            let mut stack = vec![tree];
            while let Some(tree) = stack.pop() {
                for &i in tree.leaf.iter().filter(|&&i| self.blocked(placing, i).is_none()) {
                    best = best.min((placing.tasks[i], self.state[i].tasks));
                }
                stack.extend(tree.branches.values());
            }
            best
        };
        let mut order: Vec<((u32, u32), usize)> = subtrees.iter().enumerate().map(|(index, tree)| (best(tree), index)).collect();
        order.sort();
        order.into_iter().map(|(_, index)| index).collect()
    }

    /// `scheduleNTasksOnNodes`: best node first; stay on a node until the next is better, then
    /// round robin; skip nodes that stop fitting.
    fn schedule_on_nodes(&mut self, placing: &mut Placing, n: u32, leaf: &mut Vec<usize>) -> u32 {
        // `orderedNodes`: drop nodes that stopped fitting since the tree was built, best first.
        leaf.retain(|&i| self.blocked(placing, i).is_none());
        leaf.sort_by_key(|&i| self.order_key(placing, i));
        let count = leaf.len();
        if count == 0 || n == 0 {
            return 0;
        }
        let mut failed = vec![false; count];
        let mut iter = 0usize;
        let mut scheduled = 0u32;
        loop {
            let node = leaf[iter % count];
            self.assign(placing, node);
            scheduled += 1;
            if scheduled == n {
                return scheduled;
            }
            if iter + 1 < count {
                // First pass: fill this node until the next one is better.
                if self.less(placing, leaf[(iter + 1) % count], node) {
                    iter += 1;
                }
            } else {
                iter += 1;
            }
            let start = iter;
            while failed[iter % count] || self.blocked(placing, leaf[iter % count]).is_some() {
                failed[iter % count] = true;
                iter += 1;
                if iter - start == count {
                    return scheduled;
                }
            }
        }
    }

    /// `nodeLess`: fewer tasks of this service, then fewer tasks in all.
    fn less(&self, placing: &Placing, a: usize, b: usize) -> bool {
        (placing.tasks[a], self.state[a].tasks) < (placing.tasks[b], self.state[b].tasks)
    }

    /// [`Self::less`] with the node's position as the last tie-breaker (Swarm: random).
    fn order_key(&self, placing: &Placing, index: usize) -> (u32, u32, usize) {
        (placing.tasks[index], self.state[index].tasks, index)
    }

    fn assign(&mut self, placing: &mut Placing, index: usize) {
        let demand = placing.demand;
        let state = &mut self.state[index];
        state.free_nano_cpus = state.free_nano_cpus.saturating_sub(clamp(demand.reserve_nano_cpus));
        state.free_memory_bytes = state.free_memory_bytes.saturating_sub(clamp(demand.reserve_memory_bytes));
        state.planned_nano_cpus = state.planned_nano_cpus.saturating_add(demand.reserve_nano_cpus);
        state.planned_memory_bytes = state.planned_memory_bytes.saturating_add(demand.reserve_memory_bytes);
        state.tasks = state.tasks.saturating_add(1);
        state.planned_tasks += 1;
        state.host_ports.extend(demand.host_ports.iter().cloned());
        placing.tasks[index] += 1;
        placing.own[index] += 1;
    }

    /// The first filter that keeps the node from taking one more task of this service.
    fn blocked(&self, placing: &Placing, index: usize) -> Option<Blocked> {
        if let Some(blocked) = placing.static_block[index] {
            return Some(blocked);
        }
        let demand = placing.demand;
        let state = &self.state[index];
        if demand.max_replicas_per_node.is_some_and(|max| placing.tasks[index] >= max) {
            return Some(Blocked::MaxReplicas);
        }
        if let Some(port) = demand.host_ports.iter().position(|p| state.host_ports.contains(p)) {
            return Some(Blocked::HostPort(port));
        }
        // swarmkit's `ResourceFilter` (a task reserving nothing always fits).
        if clamp(demand.reserve_nano_cpus) > state.free_nano_cpus && demand.reserve_nano_cpus > 0 {
            return Some(Blocked::Cpu);
        }
        if clamp(demand.reserve_memory_bytes) > state.free_memory_bytes && demand.reserve_memory_bytes > 0 {
            return Some(Blocked::Memory);
        }
        None
    }

    /// Every node's reason, for a service that could not be fully placed.
    fn refusals(&self, placing: &Placing) -> Vec<NodeRefusal> {
        (0..self.nodes.len()).map(|index| self.node_refusal(placing, index, self.blocked(placing, index))).collect()
    }

    fn node_refusal(&self, placing: &Placing, index: usize, blocked: Option<Blocked>) -> NodeRefusal {
        let node = &self.nodes[index];
        let demand = placing.demand;
        let state = &self.state[index];
        let reason = match blocked {
            None => Refusal::NotChosen,
            Some(Blocked::Unavailable) => Refusal::Unavailable { availability: node.availability },
            Some(Blocked::NotReady) => Refusal::NotReady { state: node.state },
            Some(Blocked::Constraint(i)) => {
                let constraint = &demand.constraints[i];
                Refusal::Constraint { expression: constraint.expression.clone(), detail: constraint.what_node_has(node) }
            }
            Some(Blocked::Pinned) => Refusal::PinnedElsewhere { pinned_to: demand.pinned_to.clone().unwrap_or_default() },
            Some(Blocked::MaxReplicas) => Refusal::MaxReplicasPerNode { max: demand.max_replicas_per_node.unwrap_or(0) },
            Some(Blocked::HostPort(i)) => Refusal::HostPort { port: demand.host_ports[i].clone() },
            Some(Blocked::Cpu) => Refusal::Cpu {
                reserved_nano_cpus: clamp(node.resources.nano_cpus) - state.free_nano_cpus,
                total_nano_cpus: node.resources.nano_cpus,
                needs_nano_cpus: demand.reserve_nano_cpus,
            },
            Some(Blocked::Memory) => Refusal::Memory {
                reserved_bytes: clamp(node.resources.memory_bytes) - state.free_memory_bytes,
                total_bytes: node.resources.memory_bytes,
                needs_bytes: demand.reserve_memory_bytes,
            },
        };
        let name = if node.hostname.is_empty() { node.id.clone() } else { node.hostname.clone() };
        NodeRefusal { node: name, message: reason.to_string(), reason }
    }
}

/// What placement cannot change: availability and state, constraints, the pin.
fn static_block(node: &Node, demand: &Demand) -> Option<Blocked> {
    if node.availability != Availability::Active {
        return Some(Blocked::Unavailable);
    }
    if node.state != State::Ready {
        return Some(Blocked::NotReady);
    }
    if let Some(failed) = demand.constraints.iter().position(|c| !c.matches(node)) {
        return Some(Blocked::Constraint(failed));
    }
    if let Some(pin) = &demand.pinned_to {
        if node.id != *pin && node.hostname != *pin {
            return Some(Blocked::Pinned);
        }
    }
    None
}
#[cfg(test)]
mod tests {
    use super::constraint::{equal_fold, Target};
    use super::*;

    fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        text.parse()
    }

    #[test]
    fn constraints_parse_as_swarmkit_parses_them() {
        let c = parse(" node.labels.tier == data ").unwrap();
        assert_eq!((c.key(), c.operator, c.value.as_str()), ("node.labels.tier", Operator::Equal, "data"));
        assert_eq!(c.target, Target::NodeLabel("tier".into()));
        assert_eq!(parse("node.role!=manager").unwrap().operator, Operator::NotEqual);
        assert_eq!(parse("Node.Hostname==a").unwrap().target, Target::Hostname);
        assert_eq!(parse("ENGINE.LABELS.Disk==ssd").unwrap().target, Target::EngineLabel("Disk".into()));
        assert_eq!(parse("node.labels.==x").unwrap().target, Target::Unknown);
        assert_eq!(parse("node.lables.tier==x").unwrap().target, Target::Unknown);
        assert_eq!(parse("node.role = manager"), Err(ConstraintError::NoOperator));
        assert_eq!(parse("node.role"), Err(ConstraintError::NoOperator));
        assert_eq!(parse("x==y"), Err(ConstraintError::InvalidKey("x".into())), "keys have two characters at least");
        assert_eq!(parse("1node==y"), Err(ConstraintError::InvalidKey("1node".into())));
        assert_eq!(parse("node.role=="), Err(ConstraintError::InvalidValue("".into())));
        assert_eq!(parse("node.role==a==b"), Err(ConstraintError::InvalidValue("a==b".into())));
        assert_eq!(parse("a!==b"), Err(ConstraintError::InvalidKey("a!".into())), "== is looked for first");
        assert_eq!(parse("node.labels.x == 'quoted'"), Err(ConstraintError::InvalidValue("'quoted'".into())));
        assert!(parse("node.labels.x == a b (c)|[d]*+?^$/\\:.").is_ok());
        assert!(parse("node.labels.\u{212A}ey == \u{17F}").is_ok(), "Go's (?i)[a-z] also takes K and ſ");
    }

    #[test]
    fn equal_fold_is_case_insensitive() {
        assert!(equal_fold("Manager", "MANAGER"));
        assert!(equal_fold("k", "\u{212A}"));
        assert!(equal_fold("Ünïcode", "üNÏCODE"));
        assert!(!equal_fold("a", "ab"));
    }

    #[test]
    fn node_ip_takes_addresses_and_subnets() {
        let mut node = Node::new("n");
        node.addr = Some("10.0.0.7".into());
        assert!(parse("node.ip==10.0.0.7").unwrap().matches(&node));
        assert!(parse("node.ip==10.0.0.0/24").unwrap().matches(&node));
        assert!(!parse("node.ip!=10.0.0.0/24").unwrap().matches(&node));
        assert!(parse("node.ip!=10.0.1.0/24").unwrap().matches(&node));
        assert!(!parse("node.ip==somewhere").unwrap().matches(&node));
        assert!(!parse("node.ip!=somewhere").unwrap().matches(&node), "a malformed address matches nothing");
        node.addr = None;
        assert!(parse("node.ip!=10.0.0.7").unwrap().matches(&node));
    }

    #[test]
    fn spread_reads_node_and_engine_labels_only() {
        let spread: Spread = "node.labels.zone".parse().unwrap();
        assert_eq!(spread.label, Some(SpreadLabel::Node("zone".into())));
        let spread: Spread = "Engine.Labels.disk".parse().unwrap();
        assert_eq!(spread.label, Some(SpreadLabel::Engine("disk".into())));
        let spread: Spread = "node.role".parse().unwrap();
        assert_eq!(spread.label, None);
    }
}
