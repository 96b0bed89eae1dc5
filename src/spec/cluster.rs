//! Cluster files for `plan --cluster` (placeholder; filled in by the placement work).
