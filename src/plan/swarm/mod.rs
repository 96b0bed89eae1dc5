//! Planning for a swarm: desired services, overlay networks, configs and secrets against the
//! observed ones (placeholder: the planner lands next).

pub mod op;

pub use op::{Expect, ObjectRef, References, ServiceWait, SwarmOp, Until};

/// A plan for a swarm.
pub type Plan = super::Plan<SwarmOp>;
