//! Generated messages (placeholder until the generator runs).
