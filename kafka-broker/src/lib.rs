//! The bundled Kafka-compatible broker, for tests and local development.
//!
//! The broker itself arrives in a later milestone; today this crate only
//! pins its dependency on the codec.

pub use kafka_protocol as protocol;
