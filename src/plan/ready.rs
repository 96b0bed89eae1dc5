//! What a dependent waits for: per `depends_on` condition, the steps after which a service
//! meets it. Both targets' planners fill one per service as they plan it.

use super::StepId;
use crate::model::stack::Condition;

/// Steps a dependent waits for, per condition.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ready {
    pub started: Vec<StepId>,
    /// Healthy, or running where there is no health check. (A swarm task with a health check
    /// is `running` only once it is healthy.)
    pub healthy: Vec<StepId>,
    pub completed: Vec<StepId>,
}

impl Ready {
    pub fn for_condition(&self, condition: Condition) -> &[StepId] {
        match condition {
            Condition::ServiceStarted => &self.started,
            Condition::ServiceHealthy => &self.healthy,
            Condition::ServiceCompletedSuccessfully => &self.completed,
        }
    }
}
