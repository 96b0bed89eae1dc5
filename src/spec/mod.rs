//! From the files a user wrote to a validated [`model::Stack`]. The phases, in order:
//!
//! 1. [`files`]: which files make the stack (root file, numbered layer folders, overlays).
//! 2. [`template`]: handlebars over each stack file's text, with [`values`] (Helm-like).
//! 3. [`yaml`]: a positioned tree per file, with safety budgets.
//! 4. [`interpolate`]: `${VAR}` on the tree's scalars, from the environment and [`dotenv`].
//! 5. [`merge`]: all files and overlay patches into one tree, by the compose merge rules;
//!    [`extends`]: services that extend others start from their base.
//! 6. [`schema`]: every key and type checked against the Compose Specification.
//! 7. [`convert`]: the typed model; [`validate`]: the semantic checks.
//!
//! Every problem is collected with its file and line; nothing stops at the first.

pub mod cluster;
pub mod convert;
pub mod dotenv;
pub mod emit;
pub mod extends;
pub mod files;
pub mod load;
pub mod merge;
pub mod read;
pub mod render;
pub mod validate;
pub mod interpolate;
pub mod schema;
pub mod source;
pub mod template;
pub mod values;
pub mod yaml;
mod yaml_halves;

pub use load::{load, stack_name, LoadFailure, LoadOptions, Loaded};
