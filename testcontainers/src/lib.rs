//! Start a Kafka cluster in an integration test with one line: in this
//! process (the default, milliseconds, no Docker), as a child process of
//! the `kafka-broker` binary (for tests that `kill -9` the broker), or as a
//! Docker container (feature `docker`: Apache Kafka in KRaft mode, or this
//! project's broker image).
//!
//! ```
//! use std::time::Duration;
//! use kafka_client::producer::ProducerRecord;
//! use kafka_testcontainers::{KafkaCluster, collect_records, unique_group, unique_topic};
//!
//! #[tokio::test]
//! # async fn never() {}
//! async fn orders_are_consumed() -> Result<(), Box<dyn std::error::Error>> {
//!     let topic = unique_topic("orders");
//!     let cluster = KafkaCluster::new().topic(&topic, 3).start().await?;
//!
//!     let producer = cluster.producer()?;
//!     producer.send_and_wait(ProducerRecord::new(&topic).key("o-1").value("3 apples")).await?;
//!
//!     let mut consumer = cluster.consumer(&unique_group("billing"), &[&topic])?;
//!     let records = collect_records(&mut consumer, 1, Duration::from_secs(10)).await?;
//!     assert_eq!(records[0].value.as_deref(), Some(&b"3 apples"[..]));
//!     Ok(())
//! }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(orders_are_consumed()).unwrap();
//! ```
//!
//! # One cluster per test, or one for the whole binary
//!
//! `cargo test` runs the tests of one binary in parallel threads, each
//! `#[tokio::test]` on its own runtime. Both ways work:
//!
//! - **A cluster per test** (simplest, fully isolated): call
//!   [`KafkaCluster::start`] in the test. An in-process cluster costs a
//!   few milliseconds and a few hundred kilobytes; every cluster has its own
//!   OS-chosen ports, and dropping it at the end of the test frees them.
//!   Fault injection affects only that test. Use this whenever a test
//!   injects faults, stops brokers or counts offsets.
//! - **A shared cluster** for many tests (cheaper when a suite has hundreds
//!   of tests): start it once with [`KafkaCluster::start_blocking`], which
//!   runs it on a runtime of its own (a test's runtime ends with the test,
//!   and would take the brokers' tasks with it), and give every test its
//!   own topics and groups with [`unique_topic`] and [`unique_group`].
//!   Never inject faults into a shared cluster: every test would see them.
//!
//! ```
//! use std::sync::OnceLock;
//! use kafka_testcontainers::{KafkaCluster, RunningCluster, unique_topic};
//!
//! /// One 3-broker cluster for every test of this binary, gone when the
//! /// test process exits.
//! fn shared() -> &'static RunningCluster {
//!     static CLUSTER: OnceLock<RunningCluster> = OnceLock::new();
//!     CLUSTER.get_or_init(|| KafkaCluster::new().brokers(3).start_blocking().expect("cluster"))
//! }
//!
//! #[tokio::test]
//! # async fn never() {}
//! async fn payments_are_accepted() {
//!     let topic = unique_topic("payments"); // no other test uses it
//!     shared().create_topic(&topic, 3).await.expect("topic");
//!     // ... produce and consume on `topic` with a `unique_group`
//! }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
//! #     .block_on(payments_are_accepted());
//! ```
//!
//! Keep a shared cluster in-process: a child process held in a `static` is
//! never dropped, so nothing would kill it when the tests end.
//!
//! # Modes and what works in each
//!
//! | | in-process | child process | Docker |
//! | --- | --- | --- | --- |
//! | produce, consume, groups, transactions | yes | yes | yes |
//! | [`create_topic`](RunningCluster::create_topic) | yes | yes (CreateTopics) | yes (CreateTopics) |
//! | drop / delay / error responses, hold transactions, move leaders | yes | [`Error::Unsupported`] | [`Error::Unsupported`] |
//! | [`stop_broker`](RunningCluster::stop_broker) / [`restart_broker`](RunningCluster::restart_broker) | yes | [`Error::Unsupported`] | [`Error::Unsupported`] |
//! | [`kill`](RunningCluster::kill) (SIGKILL) / [`restart`](RunningCluster::restart) | [`Error::Unsupported`] | yes | [`Error::Unsupported`] |
//!
//! There is no admin client in kafka-client yet, so there are no
//! ready-made admin settings: [`RunningCluster::create_topic`] speaks
//! CreateTopics itself.

#![warn(missing_docs)]

mod apache_kafka;
mod cluster;
#[cfg(feature = "docker")]
pub mod docker;
mod error;
mod helpers;
mod process;
mod security;
mod wire;

pub use kafka_broker as broker;
pub use kafka_broker::{FaultAction, FaultHandle, FaultScope, Faults};
pub use kafka_protocol::{ApiKey, ErrorCode};

pub use apache_kafka::{DEFAULT_KAFKA_VERSION, KAFKA_CACHE_ENV, java, kafka_libs};
pub use cluster::{KafkaCluster, Mode, RunningCluster, Storage, TopicSpec};
pub use error::{Error, Result};
pub use helpers::{
    collect_records, unique_group, unique_name, unique_topic, wait_for, wait_for_value,
};
pub use kafka_broker::SaslMechanism;
pub use process::{BROKER_BIN_ENV, broker_binary};
pub use security::{ClusterSecurity, TEST_PASSWORD, TEST_USER};

/// Whether Docker can be used here: `Ok` when a Docker daemon socket
/// answers, else why not. Docker tests call it first and return early,
/// printing the reason, so they pass (skipped) on machines without Docker.
///
/// ```
/// if let Err(why) = kafka_testcontainers::docker_available() {
///     eprintln!("skipped: {why}");
///     return;
/// }
/// ```
pub fn docker_available() -> std::result::Result<(), String> {
    #[cfg(feature = "docker")]
    {
        docker::available()
    }
    #[cfg(not(feature = "docker"))]
    {
        Err("kafka-testcontainers was built without the `docker` feature".to_owned())
    }
}
