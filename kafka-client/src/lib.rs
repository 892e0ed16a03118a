//! Async Kafka client: an idempotent and transactional producer, a
//! consumer with group membership and `read_committed`, and
//! [`worker::TransactionalWorker`] for exactly-once consume-transform-produce.

pub use kafka_protocol as protocol;

pub mod admin;
mod by_topic;
pub mod consumer;
pub mod error;
pub mod network;
pub mod producer;
mod properties;
pub mod properties_file;
pub mod serializer;
mod topic_partition;
pub mod worker;

pub use error::{Error, Result};
pub use topic_partition::TopicPartition;
