//! The consumer and topic ids (KIP-516) against the bundled broker, which
//! names topics by id from Fetch v13 on: a topic deleted and created again
//! under its name is a new topic (new id), read from its start; an
//! assigned topic deleted for good is an error of `poll`, not a silent
//! stall.

mod support;

use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::admin::{Admin, AdminSettings};
use kafka_client::consumer::{Consumer, ConsumerSettings, OffsetReset};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings};
use kafka_client::protocol::ErrorCode;
use support::tp;

async fn without_auto_creation() -> Cluster {
    Cluster::start(BrokerConfig {
        auto_create_topics: false,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster")
}

async fn produce(cluster: &Cluster, values: &[&str]) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    for v in values {
        producer
            .send_and_wait(
                ProducerRecord::new("reborn")
                    .partition(0)
                    .value(v.to_string()),
            )
            .await
            .expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

fn consumer(cluster: &Cluster) -> Consumer {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.fetch_max_wait = Duration::from_millis(50);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign([tp("reborn", 0)]);
    consumer
}

/// Values polled until `count` arrived, for at most 10 s.
async fn values(consumer: &mut Consumer, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < count && tokio::time::Instant::now() < deadline {
        for r in consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll")
        {
            out.push(String::from_utf8(r.value.unwrap_or_default().to_vec()).expect("utf-8"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_again_under_its_name_is_read_from_its_start() {
    let cluster = without_auto_creation().await;
    cluster.create_topic("reborn", 1).expect("topic");
    let old: Vec<String> = (0..10).map(|i| format!("old-{i}")).collect();
    produce(
        &cluster,
        &old.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let mut consumer = consumer(&cluster);
    assert_eq!(values(&mut consumer, 10).await, old);
    assert_eq!(consumer.position(&tp("reborn", 0)), Some(10));

    let admin = Admin::new(AdminSettings::new(&cluster.bootstrap_servers())).expect("admin");
    admin.delete_topics(&["reborn"]).await.expect("delete");
    cluster.create_topic("reborn", 1).expect("created again");
    let new: Vec<String> = (0..15).map(|i| format!("new-{i}")).collect();
    produce(
        &cluster,
        &new.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    // The position (10) is within the new topic, but it is the old topic's:
    // the new one (new id) is reset by auto.offset.reset and read from its
    // start, rather than from offset 10 with its first ten records skipped.
    assert_eq!(values(&mut consumer, 15).await, new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_topic_deleted_for_good_is_an_error_of_poll() {
    let cluster = without_auto_creation().await;
    cluster.create_topic("reborn", 1).expect("topic");
    produce(&cluster, &["a", "b"]).await;
    let mut consumer = consumer(&cluster);
    assert_eq!(values(&mut consumer, 2).await, ["a", "b"]);
    let admin = Admin::new(AdminSettings::new(&cluster.bootstrap_servers())).expect("admin");
    admin.delete_topics(&["reborn"]).await.expect("delete");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let error = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "poll reported nothing in 10 s"
        );
        match consumer.poll(Duration::from_millis(100)).await {
            Ok(records) => assert!(records.is_empty()),
            Err(e) => break e,
        }
    };
    assert_eq!(
        error.code(),
        Some(ErrorCode::UnknownTopicOrPartition),
        "{error}"
    );
}
