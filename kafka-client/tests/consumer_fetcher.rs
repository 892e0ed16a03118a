//! The fetcher against the bundled broker: fetching ahead while the
//! application works, answers made stale by a seek or a reassignment
//! dropped, and buffered data bounded by the fetch limits.

mod support;

use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster, FaultAction, FaultScope};
use kafka_client::consumer::{Consumer, ConsumerRecord, ConsumerSettings, OffsetReset};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::protocol::{ApiKey, ErrorCode};
use support::tp;

async fn fill(cluster: &Cluster, topic: &str, partitions: i32, per_partition: usize) {
    let producer = Producer::new(
        ProducerConfig::from_properties([
            ("bootstrap.servers", cluster.bootstrap_servers().as_str()),
            ("batch.size", "2000"),
            ("linger.ms", "5"),
        ])
        .and_then(|c| c.build())
        .expect("producer config"),
    )
    .expect("producer");
    let mut deliveries = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            deliveries.push(
                producer
                    .send(
                        ProducerRecord::new(topic)
                            .partition(p)
                            .value(format!("{p}-{i}-{}", "x".repeat(80))),
                    )
                    .await
                    .expect("queued"),
            );
        }
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

fn consumer(cluster: &Cluster, max_poll_records: usize) -> Consumer {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.max_poll_records = max_poll_records;
    Consumer::new(settings).expect("consumer")
}

/// Polls until a record arrives (10 s at most).
async fn next_poll(consumer: &mut Consumer) -> Vec<ConsumerRecord> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        let records = consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll");
        if !records.is_empty() {
            return records;
        }
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_while_fetching_ahead_delivers_from_the_seek_offset_only() {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic("seeks", 1).expect("topic");
    fill(&cluster, "seeks", 1, 2000).await;
    let mut consumer = consumer(&cluster, 50);
    let p0 = tp("seeks", 0);
    consumer.assign([p0.clone()]);
    // Every poll sends the next fetch before returning; each seek lands
    // while it is in flight (or just answered), and what follows must start
    // exactly at the seek offset and go on without gaps or repeats.
    for (round, target) in [1500, 3, 1800, 700, 0, 1200, 1201, 42]
        .into_iter()
        .enumerate()
    {
        let before = next_poll(&mut consumer).await;
        assert!(!before.is_empty(), "round {round}: records before the seek");
        consumer.seek(&p0, target).expect("seek");
        assert_eq!(consumer.position(&p0), Some(target));
        let mut after = Vec::new();
        while after.len() < 120.min(2000 - target as usize) {
            let records = next_poll(&mut consumer).await;
            assert!(
                !records.is_empty(),
                "round {round}: records after seeking to {target}"
            );
            after.extend(records);
        }
        let offsets: Vec<i64> = after.iter().map(|r| r.offset).collect();
        let expected: Vec<i64> = (target..target + offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "round {round}: from {target} on, in order, once"
        );
        assert_eq!(consumer.position(&p0), Some(target + offsets.len() as i64));
    }
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_taken_away_while_fetching_ahead_is_not_handed_out() {
    let cluster = Cluster::start(BrokerConfig {
        brokers: 2,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster");
    cluster.create_topic("moves", 2).expect("topic");
    fill(&cluster, "moves", 2, 1000).await;
    let mut consumer = consumer(&cluster, 30);
    let (p0, p1) = (tp("moves", 0), tp("moves", 1));
    consumer.assign([p0.clone(), p1.clone()]);
    let mut read = Vec::new();
    while !read.iter().any(|r: &ConsumerRecord| r.partition == 1) {
        let records = next_poll(&mut consumer).await;
        assert!(!records.is_empty(), "both partitions are read");
        read.extend(records);
    }
    // Drop p1 right after a poll (its next fetch is in flight or buffered).
    consumer.assign([p0.clone()]);
    assert_eq!(consumer.position(&p1), None);
    let mut later = Vec::new();
    while consumer.position(&p0) != Some(1000) {
        let records = next_poll(&mut consumer).await;
        assert!(!records.is_empty(), "p0 goes on");
        later.extend(records);
    }
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .is_empty(),
        "nothing more"
    );
    assert!(
        later.iter().all(|r| r.partition == 0),
        "nothing of the partition no longer assigned"
    );
    let p0_offsets: Vec<i64> = read
        .iter()
        .chain(&later)
        .filter(|r| r.partition == 0)
        .map(|r| r.offset)
        .collect();
    assert_eq!(p0_offsets, (0..1000).collect::<Vec<_>>());
    // Taken back, it starts where it is told to.
    consumer.assign([p0.clone(), p1.clone()]);
    consumer.seek(&p1, 500).expect("seek");
    let mut back = Vec::new();
    while !back.iter().any(|r: &ConsumerRecord| r.partition == 1) {
        let records = next_poll(&mut consumer).await;
        assert!(!records.is_empty(), "p1 is read again");
        back.extend(records);
    }
    let first_p1 = back.iter().find(|r| r.partition == 1).map(|r| r.offset);
    assert_eq!(first_p1, Some(500));
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_data_stays_within_the_fetch_limits() {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic("bounded", 3).expect("topic");
    fill(&cluster, "bounded", 3, 3000).await;
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.max_poll_records = 40;
    settings.max_partition_fetch_bytes = 8 * 1024;
    settings.fetch_max_bytes = 16 * 1024;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign((0..3).map(|p| tp("bounded", p)));
    // At most one response (fetch.max.bytes, or one batch beyond it) on
    // top of the fetch.max.bytes that stop fetching ahead.
    let bound = 2 * 16 * 1024 + 2100;
    let mut read = 0;
    let mut peak = 0;
    let mut next = [0i64; 3];
    while read < 9000 {
        let records = next_poll(&mut consumer).await;
        assert!(!records.is_empty(), "read {read} of 9000");
        assert!(records.len() <= 40, "max.poll.records");
        for r in &records {
            let p = r.partition as usize;
            assert_eq!(r.offset, next[p], "partition {p} in order, once");
            next[p] += 1;
        }
        read += records.len();
        let buffered = consumer.stats().buffered_bytes;
        peak = peak.max(buffered);
        assert!(
            buffered <= bound,
            "{buffered} bytes buffered, bound {bound}"
        );
    }
    assert!(peak > 0, "something was fetched ahead");
    consumer.close().await.expect("close");
}

/// Counts the ListOffsets requests the cluster receives from now on (a
/// rule that delays nothing).
fn count_list_offsets(cluster: &Cluster) -> kafka_broker::FaultHandle {
    cluster.faults().add(
        FaultScope::api(ApiKey::ListOffsets),
        FaultAction::Delay(Duration::ZERO),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_are_looked_up_with_one_request_per_leader() {
    let cluster = support::cluster(3).await;
    cluster.create_topic("wide", 12).expect("topic");
    fill(&cluster, "wide", 12, 3).await;
    let partitions: Vec<_> = (0..12).map(|p| tp("wide", p)).collect();
    let mut consumer = consumer(&cluster, 500);
    let lookups = count_list_offsets(&cluster);
    consumer.assign(partitions.clone());
    let mut read = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while read < 36 && tokio::time::Instant::now() < deadline {
        read += next_poll(&mut consumer).await.len();
    }
    assert_eq!(read, 36, "every record of the 12 partitions");
    assert!(
        (1..=3).contains(&lookups.hits()),
        "12 positions from the 3 leaders took {} ListOffsets",
        lookups.hits()
    );
    let before = lookups.hits();
    let ends = consumer
        .end_offsets(&partitions)
        .await
        .expect("end offsets");
    assert_eq!(ends.values().copied().collect::<Vec<_>>(), vec![3; 12]);
    assert!(
        lookups.hits() - before <= 3,
        "end_offsets: one request per leader"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_to_the_beginning_outlives_a_failed_offset_lookup() {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic("rewind", 1).expect("topic");
    fill(&cluster, "rewind", 1, 5).await;
    let p0 = tp("rewind", 0);
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Latest;
    settings.retry_backoff = Duration::from_millis(20);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign([p0.clone()]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while consumer.position(&p0).is_none() && tokio::time::Instant::now() < deadline {
        consumer
            .poll(Duration::from_millis(50))
            .await
            .expect("poll");
    }
    assert_eq!(
        consumer.position(&p0),
        Some(5),
        "latest: the end of the log"
    );
    // The leader says it is not the leader for the next two lookups.
    let refused = cluster.faults().add(
        FaultScope::api(ApiKey::ListOffsets).times(2),
        FaultAction::Error(ErrorCode::NotLeaderOrFollower),
    );
    consumer.seek_to_beginning(std::slice::from_ref(&p0));
    let records = next_poll(&mut consumer).await;
    refused.remove();
    assert_eq!(
        records.first().map(|r| r.offset),
        Some(0),
        "the seek is kept until a lookup succeeds, not replaced by auto.offset.reset"
    );
    // A lookup the consumer is asked for directly is retried as well.
    cluster.faults().add(
        FaultScope::api(ApiKey::ListOffsets).times(1),
        FaultAction::Error(ErrorCode::NotLeaderOrFollower),
    );
    let starts = consumer
        .beginning_offsets(std::slice::from_ref(&p0))
        .await
        .expect("retried past NOT_LEADER_OR_FOLLOWER");
    assert_eq!(starts.get(&p0), Some(&0));
}
