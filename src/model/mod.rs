//! Plain data shared by the planners of both targets: no engine, no async, no IO.

pub mod node;
