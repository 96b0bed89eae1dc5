//! The host target's steps: each one call of the [`HostEngine`](crate::engine::host::HostEngine)
//! (or a wait on one container).

use super::super::{Op, StepId};
use crate::model::objects::{BuildSpec, ContainerSpec, FileDelivery, NetworkAttachment, NetworkSpec, VolumeSpec};
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
    /// `network` fills `spec.network`'s ID.
    CreateContainer { spec: Box<ContainerSpec>, network: Option<NetworkRef> },
    /// `network` fills `attachment.network_id`; `name` is the container's (for messages).
    ConnectNetwork { container: ContainerRef, name: String, network: NetworkRef, network_name: String, attachment: NetworkAttachment },
    CopyFiles { container: ContainerRef, name: String, files: Vec<FileDelivery> },
    /// The last step of a container made in several calls: only a complete one has its name.
    RenameContainer { container: ContainerRef, from: String, to: String },
    StartContainer { container: ContainerRef, name: String },
    StopContainer { id: String, name: String, grace: Option<Duration> },
    /// `anonymous_volumes`: also delete the volumes only it used (`down --volumes`).
    RemoveContainer { id: String, name: String, anonymous_volumes: bool },
    WaitRunning { container: ContainerRef, name: String, timeout: Duration },
    WaitHealthy { container: ContainerRef, name: String, timeout: Duration },
    WaitCompleted { container: ContainerRef, name: String, timeout: Duration },
    /// Up for `stable` since it started, without exiting or restarting; gates nothing.
    WaitStable { container: ContainerRef, name: String, stable: Duration },
    /// A rollout's new replica stays ready for `min_ready` from now before the next batch.
    WaitMinReady { container: ContainerRef, name: String, min_ready: Duration },
}

impl Op for HostOp {
    fn is_mutation(&self) -> bool {
        !matches!(
            self,
            HostOp::WaitRunning { .. } | HostOp::WaitHealthy { .. } | HostOp::WaitCompleted { .. } | HostOp::WaitStable { .. } | HostOp::WaitMinReady { .. }
        )
    }

    fn verb(&self) -> &'static str {
        match self {
            HostOp::CreateNetwork { .. } => "create network",
            HostOp::RemoveNetwork { .. } => "remove network",
            HostOp::CreateVolume { .. } => "create volume",
            HostOp::RemoveVolume { .. } => "remove volume",
            HostOp::BuildImage { .. } => "build image",
            HostOp::CreateContainer { .. } => "create container",
            HostOp::ConnectNetwork { .. } => "connect network",
            HostOp::CopyFiles { .. } => "copy files",
            HostOp::RenameContainer { .. } => "rename container",
            HostOp::StartContainer { .. } => "start container",
            HostOp::StopContainer { .. } => "stop container",
            HostOp::RemoveContainer { .. } => "remove container",
            HostOp::WaitRunning { .. } => "wait running",
            HostOp::WaitHealthy { .. } => "wait healthy",
            HostOp::WaitCompleted { .. } => "wait completed",
            HostOp::WaitStable { .. } => "wait stable",
            HostOp::WaitMinReady { .. } => "wait min ready",
        }
    }

    fn object(&self) -> String {
        match self {
            HostOp::CreateNetwork { spec } => spec.name.clone(),
            HostOp::CreateVolume { spec } => spec.name.clone(),
            HostOp::BuildImage { spec } => spec.tag.clone(),
            HostOp::CreateContainer { spec, .. } => spec.name.clone(),
            HostOp::ConnectNetwork { name, network_name, .. } => format!("{network_name} to {name}"),
            HostOp::CopyFiles { name, files, .. } => format!("{name}: {}", files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>().join(", ")),
            HostOp::RenameContainer { from, to, .. } => format!("{from} to {to}"),
            HostOp::RemoveNetwork { name, .. }
            | HostOp::RemoveVolume { name }
            | HostOp::StartContainer { name, .. }
            | HostOp::StopContainer { name, .. }
            | HostOp::RemoveContainer { name, .. }
            | HostOp::WaitRunning { name, .. }
            | HostOp::WaitHealthy { name, .. }
            | HostOp::WaitCompleted { name, .. }
            | HostOp::WaitStable { name, .. }
            | HostOp::WaitMinReady { name, .. } => name.clone(),
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
        let network = |n: &NetworkRef| match n {
            NetworkRef::Existing(id) => id.clone(),
            NetworkRef::CreatedBy(step) => created.get(step).cloned().unwrap_or_default(),
        };
        match self {
            HostOp::CreateContainer { spec, network: Some(n) } => {
                let mut spec = spec.clone();
                if let Some(attachment) = spec.network.as_mut() {
                    attachment.network_id = network(n);
                }
                HostOp::CreateContainer { spec, network: None }
            }
            HostOp::ConnectNetwork { container: c, name, network: n, network_name, attachment } => HostOp::ConnectNetwork {
                container: container(c),
                name: name.clone(),
                network: NetworkRef::Existing(network(n)),
                network_name: network_name.clone(),
                attachment: NetworkAttachment { network_id: network(n), ..attachment.clone() },
            },
            HostOp::CopyFiles { container: c, name, files } => HostOp::CopyFiles { container: container(c), name: name.clone(), files: files.clone() },
            HostOp::RenameContainer { container: c, from, to } => HostOp::RenameContainer { container: container(c), from: from.clone(), to: to.clone() },
            HostOp::StartContainer { container: c, name } => HostOp::StartContainer { container: container(c), name: name.clone() },
            HostOp::WaitRunning { container: c, name, timeout } => HostOp::WaitRunning { container: container(c), name: name.clone(), timeout: *timeout },
            HostOp::WaitHealthy { container: c, name, timeout } => HostOp::WaitHealthy { container: container(c), name: name.clone(), timeout: *timeout },
            HostOp::WaitCompleted { container: c, name, timeout } => HostOp::WaitCompleted { container: container(c), name: name.clone(), timeout: *timeout },
            HostOp::WaitStable { container: c, name, stable } => HostOp::WaitStable { container: container(c), name: name.clone(), stable: *stable },
            HostOp::WaitMinReady { container: c, name, min_ready } => HostOp::WaitMinReady { container: container(c), name: name.clone(), min_ready: *min_ready },
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
