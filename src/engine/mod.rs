//! The door to the Docker engine (placeholder until the engine lands).
