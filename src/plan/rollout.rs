//! Rollout arithmetic (placeholder; filled in by the rollout work).
