//! Async Kafka client: producer and consumer.
//!
//! The producer, consumer and network layer arrive in later milestones; today
//! this crate only re-exports the codec it is built on.

pub use kafka_protocol as protocol;
