//! A cluster node as the placement planner sees it (placeholder; filled in by the placement work).
