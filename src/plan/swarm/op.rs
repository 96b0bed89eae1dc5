//! The swarm target's steps: each one call of the
//! [`SwarmEngine`](crate::engine::swarm::SwarmEngine), or a wait on one service.

use super::super::{Op, StepId};
use crate::model::objects::NetworkSpec;
use crate::model::service::{ObjectSpec, ServiceSpec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// An object that exists now (by ID), or the one an earlier step creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ObjectRef {
    Existing(String),
    CreatedBy(StepId),
}

impl ObjectRef {
    fn resolve(&self, created: &BTreeMap<StepId, String>) -> String {
        match self {
            ObjectRef::Existing(id) => id.clone(),
            ObjectRef::CreatedBy(step) => created.get(step).cloned().unwrap_or_default(),
        }
    }

    /// The ID once [`Op::resolve`] has run.
    pub fn id(&self) -> &str {
        match self {
            ObjectRef::Existing(id) => id,
            ObjectRef::CreatedBy(_) => "",
        }
    }
}

/// The objects a service spec refers to by ID, filled in by [`Op::resolve`]: `networks[i]` is
/// `spec.networks[i]`, `configs[i]` / `secrets[i]` the container's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct References {
    pub networks: Vec<ObjectRef>,
    pub configs: Vec<ObjectRef>,
    pub secrets: Vec<ObjectRef>,
}

impl References {
    fn fill(&self, spec: &ServiceSpec, created: &BTreeMap<StepId, String>) -> Box<ServiceSpec> {
        let mut spec = spec.clone();
        for (network, reference) in spec.networks.iter_mut().zip(&self.networks) {
            network.network_id = reference.resolve(created);
        }
        for (config, reference) in spec.container.configs.iter_mut().zip(&self.configs) {
            config.object_id = reference.resolve(created);
        }
        for (secret, reference) in spec.container.secrets.iter_mut().zip(&self.secrets) {
            secret.object_id = reference.resolve(created);
        }
        Box::new(spec)
    }

    fn resolved(&self, created: &BTreeMap<StepId, String>) -> References {
        let resolve = |refs: &[ObjectRef]| refs.iter().map(|r| ObjectRef::Existing(r.resolve(created))).collect();
        References { networks: resolve(&self.networks), configs: resolve(&self.configs), secrets: resolve(&self.secrets) }
    }
}

/// What a wait on a service waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Until {
    /// Every expected task's container started (compose `service_started`).
    Started,
    /// Every expected task running — healthy, where the service has a health check — and
    /// still so after the stability window.
    Running,
    /// A job's tasks all completed successfully.
    Completed,
}

/// How many tasks a wait expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Replicas(u64),
    /// One per eligible node (global services): as many as Swarm desires.
    EveryNode,
    Completions(u64),
}

/// A wait on one service's tasks: those running the spec whose hash is `spec_hash`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceWait {
    pub service: ObjectRef,
    pub name: String,
    pub until: Until,
    pub expect: Expect,
    pub spec_hash: String,
    /// Running tasks must have been up this long (`deploy --stable`).
    pub stable: Duration,
    pub timeout: Duration,
}

/// One engine call on a swarm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SwarmOp {
    CreateNetwork { spec: NetworkSpec },
    RemoveNetwork { id: String, name: String },
    CreateConfig { spec: ObjectSpec },
    RemoveConfig { id: String, name: String },
    CreateSecret { spec: ObjectSpec },
    RemoveSecret { id: String, name: String },
    CreateService { spec: Box<ServiceSpec>, references: References },
    /// `version`: the index the service had when observed; a stale one is a race.
    UpdateService { id: String, version: u64, spec: Box<ServiceSpec>, references: References },
    RemoveService { id: String, name: String },
    WaitService(ServiceWait),
    /// Until the tasks of removed services are gone (their networks go with them).
    WaitTasksGone { service_ids: Vec<String>, name: String, timeout: Duration },
    /// A statefulset ordinal that cannot run: the node holding its volumes is down, drained or
    /// gone. Nothing is sent; the step fails with `reason`, so the deploy does not converge and
    /// what waits for the ordinal is skipped, instead of moving it away from its data or waiting
    /// on a task that cannot start.
    Unavailable { name: String, reason: String },
}

impl Op for SwarmOp {
    fn is_mutation(&self) -> bool {
        !matches!(self, SwarmOp::WaitService(_) | SwarmOp::WaitTasksGone { .. } | SwarmOp::Unavailable { .. })
    }

    fn verb(&self) -> &'static str {
        match self {
            SwarmOp::CreateNetwork { .. } => "create network",
            SwarmOp::RemoveNetwork { .. } => "remove network",
            SwarmOp::CreateConfig { .. } => "create config",
            SwarmOp::RemoveConfig { .. } => "remove config",
            SwarmOp::CreateSecret { .. } => "create secret",
            SwarmOp::RemoveSecret { .. } => "remove secret",
            SwarmOp::CreateService { .. } => "create service",
            SwarmOp::UpdateService { .. } => "update service",
            SwarmOp::RemoveService { .. } => "remove service",
            SwarmOp::WaitService(wait) => match wait.until {
                Until::Started => "wait started",
                Until::Running if !wait.stable.is_zero() => "wait stable",
                Until::Running => "wait running",
                Until::Completed => "wait completed",
            },
            SwarmOp::WaitTasksGone { .. } => "wait tasks gone",
            SwarmOp::Unavailable { .. } => "unavailable",
        }
    }

    fn object(&self) -> String {
        match self {
            SwarmOp::CreateNetwork { spec } => spec.name.clone(),
            SwarmOp::CreateConfig { spec } | SwarmOp::CreateSecret { spec } => spec.name.clone(),
            SwarmOp::CreateService { spec, .. } | SwarmOp::UpdateService { spec, .. } => spec.name.clone(),
            SwarmOp::WaitService(wait) => wait.name.clone(),
            SwarmOp::RemoveNetwork { name, .. }
            | SwarmOp::RemoveConfig { name, .. }
            | SwarmOp::RemoveSecret { name, .. }
            | SwarmOp::RemoveService { name, .. }
            | SwarmOp::WaitTasksGone { name, .. }
            | SwarmOp::Unavailable { name, .. } => name.clone(),
        }
    }

    fn resolve(&self, created: &BTreeMap<StepId, String>) -> SwarmOp {
        match self {
            SwarmOp::CreateService { spec, references } => {
                SwarmOp::CreateService { spec: references.fill(spec, created), references: references.resolved(created) }
            }
            SwarmOp::UpdateService { id, version, spec, references } => SwarmOp::UpdateService {
                id: id.clone(),
                version: *version,
                spec: references.fill(spec, created),
                references: references.resolved(created),
            },
            SwarmOp::WaitService(wait) => SwarmOp::WaitService(ServiceWait { service: ObjectRef::Existing(wait.service.resolve(created)), ..wait.clone() }),
            other => other.clone(),
        }
    }
}
