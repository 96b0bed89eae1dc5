//! swarmctl: deploy Compose stacks to one Docker host or a Swarm.
//!
//! The pipeline, each stage its own module:
//!
//! ```text
//! files ─► spec::load ─► Stack (validated) ─► graph ─┐
//! target.observe ─► observed state (snapshot) ───────┤
//!                                                    ▼
//!            plan(stack, graph, observed, options) ─► Plan<Op>   pure, sync, deterministic
//!                                                    ▼
//!            apply(plan, engine) ─► ApplyReport                  executes steps, decides nothing
//! ```
//!
//! [`model`] is plain data; [`spec`] loads it; [`plan`] decides; [`apply`] executes any target's
//! plan; [`engine`] is the only door to the world; [`store`] keeps the lock and the history;
//! [`target`] ties one target's pieces together, and [`deploy`] is the procedure that runs them.

pub mod deploy;
pub mod diagnostics;
pub mod engine;
pub mod explain;
pub mod graph;
pub mod model;
pub mod apply;
pub mod plan;
pub mod spec;
pub mod status;
pub mod store;
pub mod target;
