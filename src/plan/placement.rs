//! Placement arithmetic (placeholder; filled in by the placement work).
