//! Helpers shared by the client's integration tests. Each test binary
//! compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::producer::TopicPartition;

/// An in-process cluster of `brokers` brokers on loopback, default config.
pub async fn cluster(brokers: u32) -> Cluster {
    Cluster::start(BrokerConfig {
        brokers,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster")
}

/// Partition `partition` of `topic`.
pub fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}
