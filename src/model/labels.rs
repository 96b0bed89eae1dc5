//! The labels swarmctl puts on every object it owns, on both targets. Ownership is read from
//! them alone: nothing without `io.swarmctl.stack` is ever changed.

/// The stack an object belongs to.
pub const LABEL_STACK: &str = "io.swarmctl.stack";
/// The service a container (host) or service (swarm) belongs to.
pub const LABEL_SERVICE: &str = "io.swarmctl.service";
/// The hash of the spec that produced an object: equal hash, nothing to do.
pub const LABEL_HASH: &str = "io.swarmctl.spec-hash";
/// Per-field hashes (`image=1a2b3c4d,environment=…`), so a plan can name what changed.
pub const LABEL_FIELDS: &str = "io.swarmctl.field-hashes";
/// A container's replica number (a statefulset's ordinal).
pub const LABEL_REPLICA: &str = "io.swarmctl.replica";
/// The service's kind (`deployment`, `job`, …), for `status` without the stack files.
pub const LABEL_KIND: &str = "io.swarmctl.kind";
/// The services this one depends on (`db,cache`), so `down` stops dependents first.
pub const LABEL_DEPENDS_ON: &str = "io.swarmctl.depends-on";
