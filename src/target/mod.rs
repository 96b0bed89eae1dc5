//! A target is a kind of place a stack is deployed to. Host and swarm are siblings: each brings
//! its own observed state, its own step type, its own planner, its own engine and its own store,
//! and the deploy procedure ([`crate::deploy`]) runs any of them the same way.

pub mod host;
pub mod swarm;

use crate::apply::Execute;
use crate::engine::EngineError;
use crate::graph::DependencyGraph;
use crate::model::stack::Stack;
use crate::plan::placement::TaskCounts;
use crate::plan::{Op, Plan, PlanError, PlanOptions};
use crate::status::{Desired, StackStatus};
use crate::store::Store;
use std::sync::Arc;

#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// What the engine holds of a stack.
    type Observed: Send + Sync;
    /// One step of this target's plans.
    type Op: Op;
    /// What runs the steps.
    type Engine: Execute<Self::Op> + ?Sized + 'static;

    /// `host` or `swarm`, for messages.
    fn name(&self) -> &'static str;

    fn engine(&self) -> Arc<Self::Engine>;

    fn store(&self) -> &dyn Store;

    /// What exists of the stack called `name`. With the stack's files at hand (`stack`), also
    /// which of the names it would create are taken by objects it does not own.
    async fn observe(&self, name: &str, stack: Option<&Stack>) -> Result<Self::Observed, EngineError>;

    /// The steps from `observed` to `stack`; pure.
    fn plan(&self, stack: &Stack, graph: &DependencyGraph, observed: &Self::Observed, options: &PlanOptions) -> Result<Plan<Self::Op>, PlanError>;

    /// The steps that remove the stack (and its volumes when `volumes`); pure.
    fn plan_down(&self, name: &str, observed: &Self::Observed, volumes: bool) -> Plan<Self::Op>;

    /// Per service: kind, desired replicas and how many are ready, and where the tasks run
    /// against where the last deploy `predicted` them; pure.
    fn status(&self, name: &str, observed: &Self::Observed, desired: Option<&Desired>, predicted: Option<&TaskCounts>) -> StackStatus;
}
