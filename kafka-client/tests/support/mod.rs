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

/// A listener on 127.0.0.1 that accepts connections and never reads or
/// answers: a broker that hangs. Its address, and the task to abort.
pub async fn unanswering_broker() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("address").to_string();
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, accepting)
}
