//! swarmctl: deploy Compose stacks to one Docker host or a Swarm.
//!
//! The pipeline, each stage its own module:
//!
//! ```text
//! files ─► spec::load ─► Stack (validated) ─► graph ─┐
//! engine.observe ─► ObservedState (snapshot) ────────┤
//!                                                    ▼
//!            plan(stack, graph, observed, input) ─► Plan     pure, sync, deterministic
//!                                                    ▼
//!            apply(plan, engine) ─► ApplyReport              executes steps, decides nothing
//! ```
//!
//! Only [`engine`] touches the world; everything before the plan is pure.

pub mod diagnostics;
pub mod engine;
pub mod graph;
pub mod model;
pub mod apply;
pub mod plan;
pub mod spec;
pub mod store;
