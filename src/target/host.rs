//! One Docker engine, plain containers: what docker compose does.

use super::Target;
use crate::plan::placement::TaskCounts;
use crate::engine::{EngineError, HostEngine};
use crate::graph::DependencyGraph;
use crate::model::host::ObservedState;
use crate::model::stack::Stack;
use crate::plan::host::{self, HostOp, Plan};
use crate::plan::{PlanError, PlanOptions};
use crate::status::{self, Desired, StackStatus};
use crate::store::local::LocalStore;
use crate::store::Store;
use std::sync::Arc;

pub struct HostTarget {
    pub engine: Arc<dyn HostEngine>,
    pub store: LocalStore,
}

#[async_trait::async_trait]
impl Target for HostTarget {
    type Observed = ObservedState;
    type Op = HostOp;
    type Engine = dyn HostEngine;

    fn name(&self) -> &'static str {
        "host"
    }

    fn engine(&self) -> Arc<dyn HostEngine> {
        self.engine.clone()
    }

    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn observe(&self, name: &str, stack: Option<&Stack>) -> Result<ObservedState, EngineError> {
        let candidates = stack.map(host::candidate_names).unwrap_or_default();
        self.engine.observe(name, &candidates).await
    }

    fn plan(&self, stack: &Stack, graph: &DependencyGraph, observed: &ObservedState, options: &PlanOptions) -> Result<Plan, PlanError> {
        host::plan(stack, graph, observed, options)
    }

    fn plan_down(&self, name: &str, observed: &ObservedState, volumes: bool) -> Plan {
        host::plan_down(name, observed, volumes)
    }

    fn status(&self, name: &str, observed: &ObservedState, desired: Option<&Desired>, _predicted: Option<&TaskCounts>) -> StackStatus {
        status::host::from_containers(name, &observed.containers, desired)
    }
}
