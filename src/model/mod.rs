//! Plain data shared by the loader, the planners and the engines: the validated stack, what each
//! target observed, and what the engines are asked to create. Nothing here does IO, awaits or
//! knows bollard; every type is serialisable, so a plan's inputs and outputs can be printed,
//! saved and compared.

pub mod host;
pub mod labels;
pub mod node;
pub mod objects;
pub mod service;
pub mod stack;
pub mod swarm;
