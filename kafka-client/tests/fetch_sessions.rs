//! The consumer's incremental fetch sessions (KIP-227) against the bundled
//! broker: a consumer of many partitions opens one session per broker and
//! then fetches incrementally; sessions lost to eviction are opened again
//! without losing or repeating records; without room for sessions the
//! consumer goes on with full fetches.

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::consumer::{Consumer, ConsumerSettings, OffsetReset};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings, TopicPartition};

async fn cluster(brokers: u32, slots: &str, eviction_ms: &str) -> Cluster {
    let mut config = BrokerConfig {
        brokers,
        ..BrokerConfig::default()
    };
    config
        .set("max.incremental.fetch.session.cache.slots", slots)
        .expect("slots");
    config
        .set("min.incremental.fetch.session.eviction.ms", eviction_ms)
        .expect("eviction");
    Cluster::start(config).await.expect("cluster")
}

/// Writes `per_partition` records to each partition, in rounds, so that
/// consumers fetching meanwhile see them arrive a little at a time.
async fn produce(cluster: &Cluster, topic: &str, partitions: i32, per_partition: i32) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::new();
    for round in 0..per_partition {
        for partition in 0..partitions {
            let record = ProducerRecord::new(topic)
                .partition(partition)
                .value(format!("{topic}-{partition}-{round}"));
            deliveries.push(producer.send(record).await.expect("queued"));
        }
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// A consumer of every partition of `topic` whose fetches bring one batch
/// each (the broker's least), so that reading takes many fetches.
fn consumer(cluster: &Cluster, topic: &str, partitions: i32) -> Consumer {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.fetch_max_wait = Duration::from_millis(20);
    settings.fetch_max_bytes = 1;
    settings.max_partition_fetch_bytes = 1;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign((0..partitions).map(|p| TopicPartition::new(topic, p)));
    consumer
}

/// Every value read until `count` arrived (at most 30 s); panics on a
/// repeat.
async fn read_all(consumers: &mut [&mut Consumer], count: usize) -> BTreeSet<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = BTreeSet::new();
    while seen.len() < count && tokio::time::Instant::now() < deadline {
        for consumer in consumers.iter_mut() {
            for r in consumer
                .poll(Duration::from_millis(20))
                .await
                .expect("poll")
            {
                let value = String::from_utf8(r.value.unwrap_or_default().to_vec()).expect("utf-8");
                assert!(seen.insert(value.clone()), "{value} read twice");
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_of_many_partitions_fetches_incrementally() {
    let cluster = cluster(3, "1000", "120000").await;
    cluster.create_topic("wide", 30).expect("topic");
    let mut consumer = consumer(&cluster, "wide", 30);
    let reader = tokio::spawn(async move {
        let seen = read_all(&mut [&mut consumer], 600).await;
        (seen, consumer)
    });
    produce(&cluster, "wide", 30, 20).await;
    let (seen, consumer) = reader.await.expect("reader");
    assert_eq!(seen.len(), 600, "every record once");
    let stats = cluster.fetch_session_stats();
    assert_eq!(stats.sessions, 3, "one session per broker: {stats:?}");
    // Per broker, at most a sessionless first fetch (before the connection
    // was up) and the one that opened the session are full.
    assert!(
        stats.full <= 6 && stats.incremental >= 20,
        "fetches after the first of each broker are incremental: {stats:?}"
    );
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_evicted_by_each_other_are_opened_again_without_loss() {
    // One slot, evictable at once: two consumers take it from each other,
    // so each keeps finding its session gone (FETCH_SESSION_ID_NOT_FOUND).
    let cluster = cluster(1, "1", "0").await;
    cluster.create_topic("left", 4).expect("topic");
    cluster.create_topic("right", 4).expect("topic");
    produce(&cluster, "left", 4, 50).await;
    produce(&cluster, "right", 4, 50).await;
    let mut left = consumer(&cluster, "left", 4);
    let mut right = consumer(&cluster, "right", 4);
    let seen = read_all(&mut [&mut left, &mut right], 400).await;
    assert_eq!(seen.len(), 400, "every record once");
    let stats = cluster.fetch_session_stats();
    assert!(stats.evicted > 0, "the sessions were evicted: {stats:?}");
    left.close().await.expect("close");
    right.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_room_for_sessions_fetches_stay_full() {
    let cluster = cluster(1, "0", "120000").await;
    cluster.create_topic("narrow", 3).expect("topic");
    produce(&cluster, "narrow", 3, 30).await;
    let mut consumer = consumer(&cluster, "narrow", 3);
    assert_eq!(read_all(&mut [&mut consumer], 90).await.len(), 90);
    let stats = cluster.fetch_session_stats();
    assert_eq!((stats.sessions, stats.incremental), (0, 0), "{stats:?}");
    consumer.close().await.expect("close");
}
