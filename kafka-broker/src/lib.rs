//! The bundled Kafka-compatible broker, for tests and local development.
//!
//! [`Cluster::start`] runs one or more brokers in this process, each on its
//! own TCP listener, speaking the Kafka protocol well enough for real
//! clients (librdkafka, kafka-python, the Java client, this SDK) to work
//! against it unchanged. The `kafka-broker` binary does the same from the
//! command line.
//!
//! What it keeps: record batches exactly as produced (offsets assigned by
//! rewriting the batch header), idempotent-producer state, consumer groups
//! and their committed offsets, in memory by default. A [`Faults`] API lets tests
//! drop or delay responses, close connections, stop and restart brokers,
//! move partition leaders and hold a transaction's markers back.
//!
//! With a data dir, partition logs are append-only segment files, and
//! committed offsets and the transaction coordinator's state are snapshot
//! files, all recovered at start-up: a commit that was answered survives a
//! crash, and a transaction still open at the crash is aborted.
//!
//! Listeners are PLAINTEXT unless [`BrokerConfig::tls`] (SSL) or
//! [`BrokerConfig::sasl`] (SASL_PLAINTEXT; both: SASL_SSL) say otherwise;
//! see [`security`].

pub use kafka_protocol as protocol;

mod cluster;
mod config;
mod connection;
pub mod coordinator;
mod faults;
mod fetch_sessions;
mod handlers;
mod log;
mod offsets_store;
mod release;
#[rustfmt::skip]
mod releases;
pub mod security;
mod state;
mod topic_config_names;
mod txn_store;

pub use cluster::{Broker, Cluster, ClusterError};
pub use config::{BrokerConfig, ConfigError};
pub use faults::{FaultAction, FaultHandle, FaultScope, Faults};
pub use fetch_sessions::FetchSessionStats;
pub use release::KafkaRelease;
pub use security::{SaslMechanism, SaslSettings, SecurityError, TlsIdentity};
