//! The host target's steps: each one call of the [`HostEngine`](crate::engine::host::HostEngine)
//! (or a wait on one container).

use super::super::{Op, StepId};
use crate::model::objects::{BuildSpec, ContainerSpec, NetworkSpec, VolumeSpec};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// A container that exists now, or the one an earlier step creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum ContainerRef {
    Existing(String),
    CreatedBy(StepId),
}

/// A network that exists now (by ID), or the one an earlier step creates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum NetworkRef {
    Existing(String),
    CreatedBy(StepId),
}

/// One engine call on one host.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum HostOp {
    CreateNetwork { spec: NetworkSpec },
    RemoveNetwork { id: String, name: String },
    CreateVolume { spec: VolumeSpec },
    RemoveVolume { name: String },
    BuildImage { spec: BuildSpec },
    /// `networks[i]` fills `spec.networks[i].network_id`.
    CreateContainer { spec: Box<ContainerSpec>, networks: Vec<NetworkRef> },
    StartContainer { container: ContainerRef, name: String },
    StopContainer { id: String, name: String, grace: Option<Duration> },
    /// `anonymous_volumes`: also delete the volumes only it used (`down --volumes`).
    RemoveContainer { id: String, name: String, anonymous_volumes: bool },
    WaitRunning { container: ContainerRef, name: String, timeout: Duration },
    WaitHealthy { container: ContainerRef, name: String, timeout: Duration },
    WaitCompleted { container: ContainerRef, name: String, timeout: Duration },
}

impl Op for HostOp {
    fn is_mutation(&self) -> bool {
        !matches!(self, HostOp::WaitRunning { .. } | HostOp::WaitHealthy { .. } | HostOp::WaitCompleted { .. })
    }

    fn verb(&self) -> &'static str {
        match self {
            HostOp::CreateNetwork { .. } => "create network",
            HostOp::RemoveNetwork { .. } => "remove network",
            HostOp::CreateVolume { .. } => "create volume",
            HostOp::RemoveVolume { .. } => "remove volume",
            HostOp::BuildImage { .. } => "build image",
            HostOp::CreateContainer { .. } => "create container",
            HostOp::StartContainer { .. } => "start container",
            HostOp::StopContainer { .. } => "stop container",
            HostOp::RemoveContainer { .. } => "remove container",
            HostOp::WaitRunning { .. } => "wait running",
            HostOp::WaitHealthy { .. } => "wait healthy",
            HostOp::WaitCompleted { .. } => "wait completed",
        }
    }

    fn object(&self) -> &str {
        match self {
            HostOp::CreateNetwork { spec } => &spec.name,
            HostOp::CreateVolume { spec } => &spec.name,
            HostOp::BuildImage { spec } => &spec.tag,
            HostOp::CreateContainer { spec, .. } => &spec.name,
            HostOp::RemoveNetwork { name, .. }
            | HostOp::RemoveVolume { name }
            | HostOp::StartContainer { name, .. }
            | HostOp::StopContainer { name, .. }
            | HostOp::RemoveContainer { name, .. }
            | HostOp::WaitRunning { name, .. }
            | HostOp::WaitHealthy { name, .. }
            | HostOp::WaitCompleted { name, .. } => name,
        }
    }

    fn note(&self) -> Option<&'static str> {
        matches!(self, HostOp::RemoveContainer { anonymous_volumes: true, .. }).then_some("+anonymous volumes")
    }

    fn resolve(&self, created: &BTreeMap<StepId, String>) -> HostOp {
        let container = |c: &ContainerRef| match c {
            ContainerRef::Existing(id) => ContainerRef::Existing(id.clone()),
            ContainerRef::CreatedBy(step) => ContainerRef::Existing(created.get(step).cloned().unwrap_or_default()),
        };
        match self {
            HostOp::CreateContainer { spec, networks } => {
                let mut spec = spec.clone();
                for (attachment, network) in spec.networks.iter_mut().zip(networks) {
                    attachment.network_id = match network {
                        NetworkRef::Existing(id) => id.clone(),
                        NetworkRef::CreatedBy(step) => created.get(step).cloned().unwrap_or_default(),
                    };
                }
                HostOp::CreateContainer { spec, networks: Vec::new() }
            }
            HostOp::StartContainer { container: c, name } => HostOp::StartContainer { container: container(c), name: name.clone() },
            HostOp::WaitRunning { container: c, name, timeout } => HostOp::WaitRunning { container: container(c), name: name.clone(), timeout: *timeout },
            HostOp::WaitHealthy { container: c, name, timeout } => HostOp::WaitHealthy { container: container(c), name: name.clone(), timeout: *timeout },
            HostOp::WaitCompleted { container: c, name, timeout } => HostOp::WaitCompleted { container: container(c), name: name.clone(), timeout: *timeout },
            other => other.clone(),
        }
    }
}

impl ContainerRef {
    /// The container's ID once [`Op::resolve`] has run.
    pub fn id(&self) -> &str {
        match self {
            ContainerRef::Existing(id) => id,
            ContainerRef::CreatedBy(_) => "",
        }
    }
}
