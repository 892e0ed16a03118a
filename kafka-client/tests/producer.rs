//! The producer end to end against the bundled broker and its faults.

mod support;

use std::time::Duration;

use kafka_broker::Cluster;
use kafka_client::Error;
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord, ProducerSettings};
use kafka_client::protocol::ApiKey;
use kafka_client::protocol::messages::FetchRequest;
use kafka_client::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_client::protocol::records::{Batches, Record, RecordBatch};
use support::cluster;

fn settings(cluster: &Cluster) -> ProducerSettings {
    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.network.request_timeout = Duration::from_millis(1500);
    settings.retry_backoff = Duration::from_millis(20);
    settings.retry_backoff_max = Duration::from_millis(200);
    settings.network.reconnect_backoff = Duration::from_millis(20);
    settings.network.reconnect_backoff_max = Duration::from_millis(200);
    settings
}

/// Every record of a partition, read with raw fetches from its leader.
async fn read_all(cluster: &Cluster, topic: &str, partition: i32) -> Vec<Record> {
    read_batches(cluster, topic, partition)
        .await
        .iter()
        .flat_map(|b| b.to_records().expect("records"))
        .collect()
}

/// Every batch of a partition.
async fn read_batches(cluster: &Cluster, topic: &str, partition: i32) -> Vec<RecordBatch> {
    let network = Network::new(NetworkConfig::new(vec![
        cluster
            .bootstrap_servers()
            .split(',')
            .next()
            .expect("a broker")
            .to_owned(),
    ]))
    .expect("network");
    let mut records = Vec::new();
    let mut offset = 0;
    for _ in 0..10_000 {
        let metadata = network.refresh().await.expect("metadata");
        network.track(&[topic]);
        let Some(leader) = metadata.leader(topic, partition).map(|b| b.id) else {
            let _ = network.metadata_for(topic).await;
            continue;
        };
        let connection = network.broker(leader).await.expect("leader");
        let response = connection
            .send(&FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                max_bytes: 1 << 20,
                topics: vec![FetchTopic {
                    topic: topic.into(),
                    // Fetch v13+ names topics by id only (KIP-516).
                    topic_id: metadata.topic_id(topic).expect("topic id"),
                    partitions: vec![FetchPartition {
                        partition,
                        fetch_offset: offset,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .await
            .expect("fetch");
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch error");
        let bytes = data.records.clone().unwrap_or_default();
        if bytes.is_empty() {
            return records;
        }
        for batch in Batches::new(bytes) {
            let batch = batch.expect("batch");
            offset = batch.next_offset();
            records.push(batch);
        }
    }
    panic!("reading {topic}-{partition} never reached the end")
}

fn values(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).expect("utf-8"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_arrive_in_order_with_their_headers_and_timestamps() {
    let cluster = cluster(3).await;
    cluster.create_topic("ordered", 3).expect("topic");
    let producer = Producer::new(settings(&cluster)).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..900 {
        let record = ProducerRecord::new("ordered")
            .partition(i % 3)
            .key(format!("k{i}"))
            .value(format!("v{i}"))
            .header("n", i.to_string())
            .timestamp(1_000_000 + i64::from(i));
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    let mut offsets = [Vec::new(), Vec::new(), Vec::new()];
    for delivery in deliveries {
        let meta = delivery.await.expect("delivered");
        offsets[meta.partition as usize].push(meta.offset);
    }
    for (partition, offsets) in offsets.iter().enumerate() {
        assert_eq!(
            *offsets,
            (0..300).collect::<Vec<i64>>(),
            "partition {partition}"
        );
    }
    for partition in 0..3 {
        let records = read_all(&cluster, "ordered", partition).await;
        let expected: Vec<String> = (0..900)
            .filter(|i| i % 3 == partition)
            .map(|i| format!("v{i}"))
            .collect();
        assert_eq!(values(&records), expected);
        let first = &records[0];
        assert_eq!(first.timestamp, 1_000_000 + i64::from(partition));
        assert_eq!(
            first
                .headers
                .last("n")
                .and_then(|h| h.value().cloned())
                .as_deref(),
            Some(partition.to_string().as_bytes())
        );
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_responses_are_retried_without_duplicates() {
    let cluster = cluster(1).await;
    cluster.create_topic("ambiguous", 1).expect("topic");
    let producer = Producer::new(settings(&cluster)).expect("producer");
    let dropped = cluster.drop_responses(ApiKey::Produce, 3);
    let mut deliveries = Vec::new();
    for i in 0..500 {
        deliveries.push(
            producer
                .send(
                    ProducerRecord::new("ambiguous")
                        .partition(0)
                        .value(format!("v{i}")),
                )
                .await
                .expect("queued"),
        );
    }
    for delivery in deliveries {
        delivery.await.expect("delivered despite lost responses");
    }
    assert_eq!(dropped.hits(), 3);
    let stats = producer.stats();
    assert_eq!(stats.records_sent, 500);
    assert!(stats.retries >= 1, "{stats:?}");
    assert_eq!(
        (stats.errors, stats.in_flight_requests),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.buffer_available, 32 * 1024 * 1024);
    let expected: Vec<String> = (0..500).map(|i| format!("v{i}")).collect();
    assert_eq!(
        values(&read_all(&cluster, "ambiguous", 0).await),
        expected,
        "exactly once, in order"
    );
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_and_a_restarted_broker_lose_and_duplicate_nothing() {
    let cluster = cluster(2).await;
    cluster.create_topic("moving", 1).expect("topic");
    let producer = Producer::new(settings(&cluster)).expect("producer");
    let mut deliveries = Vec::new();
    let send = |i: usize| {
        ProducerRecord::new("moving")
            .partition(0)
            .value(format!("v{i}"))
    };
    for i in 0..200 {
        deliveries.push(producer.send(send(i)).await.expect("queued"));
    }
    // Leadership moves to the other broker mid-stream.
    let metadata = Network::new(NetworkConfig::new(vec![
        cluster
            .bootstrap_servers()
            .split(',')
            .next()
            .expect("a broker")
            .to_owned(),
    ]))
    .expect("network");
    metadata.track(&["moving"]);
    let current = metadata
        .refresh()
        .await
        .expect("metadata")
        .leader("moving", 0)
        .expect("leader")
        .id;
    cluster.move_leader("moving", 0, 1 - current).expect("move");
    for i in 200..400 {
        deliveries.push(producer.send(send(i)).await.expect("queued"));
    }
    // And the new leader restarts.
    cluster.stop_broker(1 - current).expect("stop");
    for i in 400..600 {
        deliveries.push(producer.send(send(i)).await.expect("queued"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart_broker(1 - current).await.expect("restart");
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    let expected: Vec<String> = (0..600).map(|i| format!("v{i}")).collect();
    assert_eq!(values(&read_all(&cluster, "moving", 0).await), expected);
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_timeout_fails_records_that_cannot_be_sent() {
    let cluster = cluster(1).await;
    cluster.create_topic("stuck", 1).expect("topic");
    let mut settings = settings(&cluster);
    settings.delivery_timeout = Duration::from_millis(800);
    settings.network.request_timeout = Duration::from_millis(300);
    let producer = Producer::new(settings).expect("producer");
    // Metadata first, so the send itself does not block on it.
    producer
        .send_and_wait(ProducerRecord::new("stuck").partition(0).value("warm-up"))
        .await
        .expect("warm-up");
    cluster.stop_broker(0).expect("stop");
    let started = std::time::Instant::now();
    let delivery = producer
        .send(ProducerRecord::new("stuck").partition(0).value("late"))
        .await
        .expect("queued");
    let result = delivery.await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_buffer_memory_blocks_then_fails_and_oversized_records_fail_at_once() {
    let cluster = cluster(1).await;
    cluster.create_topic("full", 1).expect("topic");
    let mut settings = settings(&cluster);
    settings.buffer_memory = 4096;
    settings.max_block = Duration::from_millis(300);
    settings.linger = Duration::from_secs(60);
    settings.batch_size = 1 << 20;
    let producer = Producer::new(settings).expect("producer");
    // linger.ms is a minute: flush sends the warm-up record at once.
    let warm_up = producer
        .send(ProducerRecord::new("full").partition(0).value("warm-up"))
        .await
        .expect("queued");
    producer.flush().await.expect("flush");
    warm_up.await.expect("warm-up");
    // Responses delayed: the queued records hold the memory.
    let _slow = cluster.delay_responses(ApiKey::Produce, Duration::from_secs(30));
    let mut queued = Vec::new();
    let started = std::time::Instant::now();
    let mut blocked = None;
    for i in 0..100 {
        match producer
            .send(
                ProducerRecord::new("full")
                    .partition(0)
                    .value(vec![b'x'; 500]),
            )
            .await
        {
            Ok(delivery) => queued.push(delivery),
            Err(e) => {
                blocked = Some((i, e));
                break;
            }
        }
    }
    let (i, error) = blocked.expect("buffer.memory ran out");
    assert!(
        i > 0 && matches!(error, Error::Timeout(_)),
        "{i}: {error:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(280));
    let oversized = producer
        .send(
            ProducerRecord::new("full")
                .partition(0)
                .value(vec![0u8; 2 << 20]),
        )
        .await;
    assert!(
        matches!(
            oversized,
            Err(Error::RecordTooLarge {
                limit_name: "max.request.size",
                ..
            })
        ),
        "{oversized:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_producers_leave_no_tasks_behind() {
    let cluster = cluster(1).await;
    cluster.create_topic("churn", 1).expect("topic");
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    for i in 0..20 {
        let producer = Producer::new(settings(&cluster)).expect("producer");
        producer
            .send_and_wait(
                ProducerRecord::new("churn")
                    .partition(0)
                    .value(format!("v{i}")),
            )
            .await
            .expect("sent");
        producer.close(Duration::from_secs(5)).await.expect("close");
    }
    let mut alive = metrics.num_alive_tasks();
    for _ in 0..200 {
        if alive <= before + 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        alive = metrics.num_alive_tasks();
    }
    // The broker's own connection tasks wind down too; allow a little slack.
    assert!(alive <= before + 2, "{alive} tasks alive, {before} before");
    assert_eq!(read_all(&cluster, "churn", 0).await.len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_lost_our_sequence_state_gets_a_bumped_epoch() {
    lost_state_bumps_the_epoch(kafka_client::protocol::ErrorCode::OutOfOrderSequenceNumber).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_forgot_our_producer_id_gets_a_bumped_epoch() {
    lost_state_bumps_the_epoch(kafka_client::protocol::ErrorCode::UnknownProducerId).await;
}

/// The broker answers the second batch with `code` (it lost our state): the
/// producer bumps its epoch and resends it, once, first in its new epoch.
async fn lost_state_bumps_the_epoch(code: kafka_client::protocol::ErrorCode) {
    let cluster = cluster(1).await;
    cluster.create_topic("bumped", 1).expect("topic");
    let producer = Producer::new(settings(&cluster)).expect("producer");
    producer
        .send_and_wait(ProducerRecord::new("bumped").partition(0).value("v0"))
        .await
        .expect("first");
    let injected = cluster.inject_error(ApiKey::Produce, code, 1);
    producer
        .send_and_wait(ProducerRecord::new("bumped").partition(0).value("v1"))
        .await
        .expect("delivered after an epoch bump");
    assert_eq!(injected.hits(), 1);
    let records = read_all(&cluster, "bumped", 0).await;
    assert_eq!(values(&records), ["v0", "v1"]);
    // The second batch went under the next epoch, starting its sequence again.
    let headers: Vec<(i16, i32)> = read_batches(&cluster, "bumped", 0)
        .await
        .iter()
        .map(|b| (b.header().producer_epoch, b.header().base_sequence))
        .collect();
    assert_eq!(headers, [(0, 0), (1, 0)]);
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_batch_does_not_block_later_ones() {
    let cluster = cluster(1).await;
    cluster.create_topic("gap", 1).expect("topic");
    let mut settings = settings(&cluster);
    settings.delivery_timeout = Duration::from_millis(600);
    settings.network.request_timeout = Duration::from_millis(200);
    let producer = Producer::new(settings).expect("producer");
    producer
        .send_and_wait(ProducerRecord::new("gap").partition(0).value("before"))
        .await
        .expect("first");
    // Its responses never come: the batch's sequence numbers are used, then it expires.
    let lost = cluster.faults().add(
        kafka_broker::FaultScope::api(ApiKey::Produce),
        kafka_broker::FaultAction::CloseConnection,
    );
    let expired = producer
        .send_and_wait(ProducerRecord::new("gap").partition(0).value("lost"))
        .await;
    assert!(matches!(expired, Err(Error::Timeout(_))), "{expired:?}");
    lost.remove();
    producer
        .send_and_wait(ProducerRecord::new("gap").partition(0).value("after"))
        .await
        .expect("a later record goes through under a bumped epoch");
    assert_eq!(
        values(&read_all(&cluster, "gap", 0).await),
        ["before", "after"]
    );
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_requests_in_flight_keep_sequences_in_order_without_retries() {
    let cluster = cluster(1).await;
    cluster.create_topic("pipelined", 4).expect("topic");
    let mut settings = settings(&cluster);
    settings.batch_size = 2048;
    settings.linger = Duration::from_millis(1);
    let producer = Producer::new(settings).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..20_000 {
        let record = ProducerRecord::new("pipelined")
            .partition(i % 4)
            .value(format!("{i:08}"));
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    let stats = producer.stats();
    assert!(stats.requests_sent >= 40, "{stats:?}");
    // Requests leave in drain order, so the broker never sees a sequence gap.
    assert_eq!(stats.retries, 0, "{stats:?}");
    for partition in 0..4 {
        let expected: Vec<String> = (0..20_000)
            .filter(|i| i % 4 == partition)
            .map(|i| format!("{i:08}"))
            .collect();
        assert_eq!(
            values(&read_all(&cluster, "pipelined", partition).await),
            expected
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_the_java_client_puts_them() {
    let cluster = cluster(2).await;
    cluster.create_topic("keyed", 50).expect("topic");
    let producer = Producer::new(settings(&cluster)).expect("producer");
    // Java: toPositive(murmur2("foobar")) % 50 == 16 (Kafka's UtilsTest vector).
    let meta = producer
        .send_and_wait(ProducerRecord::new("keyed").key("foobar").value("v"))
        .await
        .expect("sent");
    assert_eq!(meta.partition, 16);
    for key in ["21", "abc", "a-little-bit-long-string", "customer-7"] {
        let meta = producer
            .send_and_wait(ProducerRecord::new("keyed").key(key).value("v"))
            .await
            .expect("sent");
        assert_eq!(
            meta.partition,
            kafka_client::producer::partitioner::partition_for_key(key.as_bytes(), 50),
            "{key}"
        );
    }
    // Keyless records stick to one partition per batch, so they spread over
    // several partitions in runs rather than one record each.
    let mut settings = settings(&cluster);
    settings.batch_size = 1024;
    let sticky = Producer::new(settings).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..2000 {
        deliveries.push(
            sticky
                .send(ProducerRecord::new("keyed").value(format!("{i:032}")))
                .await
                .expect("queued"),
        );
    }
    let mut partitions = Vec::new();
    for delivery in deliveries {
        partitions.push(delivery.await.expect("delivered").partition);
    }
    let switches = partitions.windows(2).filter(|w| w[0] != w[1]).count();
    let distinct: std::collections::BTreeSet<i32> = partitions.iter().copied().collect();
    assert!(distinct.len() > 5, "spread: {distinct:?}");
    assert!(
        switches < 200,
        "{switches} switches for 2000 records: not sticky"
    );
}

/// A non-idempotent producer for the two tests below (one record per
/// batch, two requests in flight, a short request timeout), after a first
/// record written to partition 0 of a new `topic`.
async fn unordered_producer(cluster: &Cluster, topic: &str) -> Producer {
    cluster.create_topic(topic, 1).expect("topic");
    let mut settings = settings(cluster);
    settings.idempotence = false;
    settings.acks = 1;
    settings.max_in_flight = 2;
    settings.batch_size = 1;
    settings.linger = Duration::ZERO;
    settings.retry_backoff = Duration::from_millis(200);
    settings.network.request_timeout = Duration::from_millis(300);
    let producer = Producer::new(settings).expect("producer");
    producer
        .send_and_wait(to_partition_0(topic, "warm-up"))
        .await
        .expect("warm-up");
    producer
}

fn to_partition_0(topic: &str, value: &str) -> ProducerRecord {
    ProducerRecord::new(topic.to_owned())
        .partition(0)
        .value(value.to_owned())
}

/// Without idempotence, a batch whose response was lost is appended again
/// when it is retried: the broker has no sequence number to recognise it by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotence_a_lost_response_duplicates_the_batch() {
    let cluster = cluster(1).await;
    let producer = unordered_producer(&cluster, "duplicated").await;
    let record = |value: &str| to_partition_0("duplicated", value);
    let dropped = cluster.drop_responses(ApiKey::Produce, 1);
    producer
        .send_and_wait(record("A"))
        .await
        .expect("A acknowledged after its retry");
    assert_eq!(dropped.hits(), 1);
    assert!(producer.stats().retries >= 1, "{:?}", producer.stats());
    let log = values(&read_all(&cluster, "duplicated", 0).await);
    assert_eq!(log, ["warm-up", "A", "A"], "appended twice");
}

/// Without idempotence, a batch retried after an error lands after the
/// batch that was in flight with it: the documented cost of
/// `enable.idempotence=false` with more than one request in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_idempotence_a_retry_can_reorder() {
    use kafka_broker::{FaultAction, FaultScope};
    use kafka_client::protocol::ErrorCode;
    let cluster = cluster(1).await;
    let producer = unordered_producer(&cluster, "unordered").await;
    let record = |value: &str| to_partition_0("unordered", value);
    // The first batch is refused with a retriable error, not appended; the
    // second, sent while the first waits out its backoff, is appended.
    let refused = cluster.faults().add(
        FaultScope::api(ApiKey::Produce).times(1),
        FaultAction::Error(ErrorCode::NotEnoughReplicas),
    );
    let first = producer.send(record("A")).await.expect("queued");
    let second = producer.send(record("B")).await.expect("queued");
    second.await.expect("B acknowledged");
    first.await.expect("A acknowledged after its retry");
    assert_eq!(refused.hits(), 1);
    let log = values(&read_all(&cluster, "unordered", 0).await);
    assert_eq!(log, ["warm-up", "B", "A"], "A's retry after B");
}

/// KIP-360 without duplicates: a batch whose response was lost is retried
/// under the epoch it was written with before the epoch is bumped for
/// another partition's expired batch. Re-signed under the new epoch, the
/// broker could not recognise it and would append it a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_bump_waits_for_batches_whose_outcome_is_unknown() {
    use kafka_broker::{FaultAction, FaultScope};
    let cluster = cluster(2).await;
    cluster.create_topic("unresolved", 2).expect("topic");
    cluster
        .move_leader("unresolved", 0, 0)
        .expect("p0 on broker 0");
    cluster
        .move_leader("unresolved", 1, 1)
        .expect("p1 on broker 1");
    let mut settings = settings(&cluster);
    settings.network.request_timeout = Duration::from_millis(1000);
    settings.delivery_timeout = Duration::from_millis(3000);
    let producer = Producer::new(settings).expect("producer");
    let record = |partition: i32, value: &str| {
        ProducerRecord::new("unresolved")
            .partition(partition)
            .value(value.to_owned())
    };
    for p in 0..2 {
        producer
            .send_and_wait(record(p, "warm"))
            .await
            .expect("warm-up delivered");
    }

    // p1's leader goes away: its next batch can only expire, which leaves a
    // sequence gap and calls for an epoch bump.
    cluster.stop_broker(1).expect("stop broker 1");
    let doomed = producer.send(record(1, "doomed")).await.expect("queued");
    // Spacing, not synchronisation: the p0 batch below must outlive the
    // doomed one by long enough to be retried after the bump is due.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // p0's batch is written but its answer is lost, and its leader stops
    // before the retry can tell.
    let lost = cluster.faults().add(
        FaultScope::api(ApiKey::Produce).on_broker(0).times(1),
        FaultAction::DropResponse,
    );
    let ambiguous = producer.send(record(0, "ambiguous")).await.expect("queued");
    let written = async {
        while lost.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), written)
        .await
        .expect("the p0 batch reached its leader");
    cluster.stop_broker(0).expect("stop broker 0");

    let failed = tokio::time::timeout(Duration::from_secs(10), doomed)
        .await
        .expect("the doomed batch ends within its delivery timeout");
    assert!(
        matches!(failed, Err(Error::Timeout(_))),
        "the doomed record times out: {failed:?}"
    );
    cluster.restart_broker(0).await.expect("restart broker 0");
    cluster.restart_broker(1).await.expect("restart broker 1");
    tokio::time::timeout(Duration::from_secs(10), ambiguous)
        .await
        .expect("the ambiguous batch ends")
        .expect("the ambiguous batch is acknowledged");
    for p in 0..2 {
        producer
            .send_and_wait(record(p, "after"))
            .await
            .expect("sending goes on after the bump");
    }
    assert_eq!(
        values(&read_all(&cluster, "unresolved", 0).await),
        ["warm", "ambiguous", "after"],
        "the ambiguous batch is in the log once"
    );
    assert_eq!(
        values(&read_all(&cluster, "unresolved", 1).await),
        ["warm", "after"]
    );
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// A producer built from Kafka property names writes batches compressed
/// with the configured codec, and the broker hands the values back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_from_kafka_properties_compresses_with_the_configured_codec() {
    use kafka_client::protocol::records::Compression;
    let cluster = cluster(1).await;
    let bootstrap = cluster.bootstrap_servers();
    for (name, codec) in [
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let topic = format!("codec-{name}");
        cluster.create_topic(&topic, 1).expect("topic");
        let settings = ProducerConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("compression.type", name),
            ("linger.ms", "20"),
            ("client.id", "codec-test"),
        ])
        .and_then(|config| config.build())
        .expect("valid properties");
        let producer = Producer::new(settings).expect("producer");
        let mut deliveries = Vec::new();
        for i in 0..200 {
            let record = ProducerRecord::new(topic.clone())
                .partition(0)
                .value(format!("{name} value {i} {}", "x".repeat(i % 50)));
            deliveries.push(producer.send(record).await.expect("queued"));
        }
        for delivery in deliveries {
            delivery.await.expect("delivered");
        }
        producer.close(Duration::from_secs(5)).await.expect("close");
        let batches = read_batches(&cluster, &topic, 0).await;
        assert!(!batches.is_empty());
        for batch in &batches {
            assert_eq!(
                batch.header().compression().expect("known codec"),
                codec,
                "{name}"
            );
        }
        let expected: Vec<String> = (0..200)
            .map(|i| format!("{name} value {i} {}", "x".repeat(i % 50)))
            .collect();
        let records: Vec<Record> = batches
            .iter()
            .flat_map(|b| b.to_records().expect("records"))
            .collect();
        assert_eq!(values(&records), expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_metadata_ends_at_max_block_ms_even_if_a_broker_never_answers() {
    // Accepts connections and reads nothing: ApiVersions would wait out
    // request.timeout.ms (10 s here), far past max.block.ms.
    let (addr, accepting) = support::unanswering_broker().await;
    let mut settings = ProducerSettings::new(&addr);
    settings.network.request_timeout = Duration::from_secs(10);
    settings.max_block = Duration::from_millis(800);
    let producer = Producer::new(settings).expect("producer");
    let started = std::time::Instant::now();
    let sent = producer
        .send(ProducerRecord::new("nowhere").value("x"))
        .await;
    let took = started.elapsed();
    assert!(matches!(sent, Err(Error::Timeout(_))), "{:?}", sent.err());
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(3),
        "took {took:?} for max.block.ms 800 ms"
    );
    accepting.abort();
}
