//! Where keyless records go and what records carry, end to end: the
//! uniform sticky partitioner (KIP-794) moving a `send_and_wait` stream off
//! one partition, and headers with null values.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_client::consumer::{Consumer, ConsumerSettings, OffsetReset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use support::{cluster, tp};

/// 200 keyless 1 KB records sent one at a time, each acknowledged before
/// the next, so every batch leaves on linger.ms long before it is full.
/// KIP-480's sticky partitioner moved only when a batch filled, so all 200
/// landed on one partition; KIP-794 moves after twice batch.size (32 KB
/// with the default 16 KB), so about six moves are due here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_and_wait_stream_of_keyless_records_spreads_over_partitions() {
    let cluster = cluster(1).await;
    cluster.create_topic("spread", 6).expect("topic");
    let producer = Producer::new(
        ProducerConfig::from_properties([
            ("bootstrap.servers", cluster.bootstrap_servers().as_str()),
            ("linger.ms", "1"),
        ])
        .and_then(|c| c.build())
        .expect("config"),
    )
    .expect("producer");
    let mut per_partition: BTreeMap<i32, usize> = BTreeMap::new();
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for i in 0..200 {
        let value = format!("{i:04}{}", "x".repeat(1020));
        let delivered = producer
            .send_and_wait(ProducerRecord::new("spread").value(value))
            .await
            .expect("delivered");
        *per_partition.entry(delivered.partition).or_default() += 1;
        match runs.last_mut() {
            Some((p, n)) if *p == delivered.partition => *n += 1,
            _ => runs.push((delivered.partition, 1)),
        }
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
    assert!(
        per_partition.len() >= 3,
        "keyless records moved between partitions: {per_partition:?}"
    );
    // A record is about 1.1 KB on the wire: 30 of them pass 32 KB.
    assert!(
        runs.iter().all(|&(_, n)| n <= 32),
        "no partition took more than about 32 KB in a row: {runs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_with_a_null_value_round_trips() {
    let cluster = cluster(1).await;
    cluster.create_topic("headers", 1).expect("topic");
    let producer = Producer::new(
        ProducerConfig::from_properties([(
            "bootstrap.servers",
            cluster.bootstrap_servers().as_str(),
        )])
        .and_then(|c| c.build())
        .expect("config"),
    )
    .expect("producer");
    producer
        .send_and_wait(
            ProducerRecord::new("headers")
                .partition(0)
                .value("v")
                .null_header("trace")
                .header("empty", "")
                .header("set", "1"),
        )
        .await
        .expect("delivered");
    producer.close(Duration::from_secs(5)).await.expect("close");
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign([tp("headers", 0)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut records = Vec::new();
    while records.is_empty() && tokio::time::Instant::now() < deadline {
        records = consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll");
    }
    let headers: Vec<(String, Option<Vec<u8>>)> = records[0]
        .headers
        .iter()
        .map(|h| (h.key().to_owned(), h.value().map(|v| v.to_vec())))
        .collect();
    assert_eq!(
        headers,
        [
            ("trace".to_owned(), None),
            ("empty".to_owned(), Some(Vec::new())),
            ("set".to_owned(), Some(b"1".to_vec())),
        ]
    );
}
