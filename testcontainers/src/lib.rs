//! Start a Kafka cluster for integration tests.
//!
//! The cluster builder arrives in a later milestone; today this crate only
//! pins its dependency on the bundled broker.

pub use kafka_broker as broker;
