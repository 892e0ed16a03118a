//! Async Kafka client: producer and consumer.
//!
//! Being built up in slices; see the project's issues for what is in place.

pub use kafka_protocol as protocol;

pub mod consumer;
pub mod error;
pub mod network;
pub mod producer;
mod properties;
pub mod serializer;

pub use error::{Error, Result};
