//! A Docker Swarm: services on overlay networks, what `docker stack deploy` does, with the
//! lock and the history kept in the cluster.

use super::Target;
use crate::plan::placement::TaskCounts;
use crate::engine::{EngineError, SwarmEngine};
use crate::graph::DependencyGraph;
use crate::model::stack::Stack;
use crate::model::swarm::ObservedSwarm;
use crate::plan::swarm::{self, Plan, SwarmOp};
use crate::plan::{PlanError, PlanOptions};
use crate::status::{self, Desired, StackStatus};
use crate::store::cluster::ClusterStore;
use crate::store::Store;
use std::sync::Arc;

pub struct SwarmTarget {
    pub engine: Arc<dyn SwarmEngine>,
    pub store: ClusterStore,
}

impl SwarmTarget {
    pub fn new(engine: Arc<dyn SwarmEngine>) -> SwarmTarget {
        SwarmTarget { store: ClusterStore::new(engine.clone()), engine }
    }
}

#[async_trait::async_trait]
impl Target for SwarmTarget {
    type Observed = ObservedSwarm;
    type Op = SwarmOp;
    type Engine = dyn SwarmEngine;

    fn name(&self) -> &'static str {
        "swarm"
    }

    fn engine(&self) -> Arc<dyn SwarmEngine> {
        self.engine.clone()
    }

    fn store(&self) -> &dyn Store {
        &self.store
    }

    async fn observe(&self, name: &str, stack: Option<&Stack>) -> Result<ObservedSwarm, EngineError> {
        let candidates = stack.map(swarm::candidate_names).unwrap_or_default();
        self.engine.observe(name, &candidates).await
    }

    fn plan(&self, stack: &Stack, graph: &DependencyGraph, observed: &ObservedSwarm, options: &PlanOptions) -> Result<Plan, PlanError> {
        swarm::plan(stack, graph, observed, options)
    }

    fn plan_down(&self, name: &str, observed: &ObservedSwarm, volumes: bool) -> Plan {
        swarm::plan_down(name, observed, volumes)
    }

    fn status(&self, name: &str, observed: &ObservedSwarm, desired: Option<&Desired>, predicted: Option<&TaskCounts>) -> StackStatus {
        status::swarm::from_observed(name, observed, desired, predicted)
    }
}
