//! The client against real Apache Kafka (a KRaft node in a child JVM, from
//! the classpath `interop/kafka/fetch.sh` caches): the broker users run,
//! which shares none of our assumptions.
//!
//! Without a JDK or the cached classpath, `cargo test` skips these with a
//! note; in CI (`CI` set) they must run.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_client::consumer::{Consumer, ConsumerRecord};
use kafka_client::producer::{Producer, ProducerRecord, TopicPartition};
use kafka_client::{Error, protocol::ErrorCode};
use kafka_testcontainers::{DEFAULT_KAFKA_VERSION, KafkaCluster, RunningCluster};

/// The Kafka release under test: `KAFKA_VERSION`, else the default.
fn version() -> String {
    std::env::var("KAFKA_VERSION").unwrap_or_else(|_| DEFAULT_KAFKA_VERSION.to_owned())
}

/// Whether real Kafka can run here; in CI it must.
fn available() -> bool {
    let missing = kafka_testcontainers::java()
        .and_then(|_| kafka_testcontainers::kafka_libs(&version()))
        .err();
    match missing {
        None => true,
        Some(e) => {
            assert!(std::env::var_os("CI").is_none(), "{e}; .ci/run fetches it");
            eprintln!("skipped: {e}");
            false
        }
    }
}

/// Three nodes (topics replicated three times, min.insync.replicas 2)
/// shared by the tests of this binary (distinct topics and groups per
/// test); started once, on a runtime of its own.
fn shared() -> &'static RunningCluster {
    static CLUSTER: OnceLock<RunningCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        KafkaCluster::new()
            .apache_kafka(version())
            .brokers(3)
            .replication_factor(3)
            .default_partitions(3)
            .broker_property("auto.create.topics.enable", "false")
            .broker_property("min.insync.replicas", "2")
            .start_blocking()
            .expect("Apache Kafka starts")
    })
}

fn producer(cluster: &RunningCluster, extra: &[(&str, &str)]) -> Producer {
    let mut config = cluster.producer_config().expect("config");
    for (name, value) in extra {
        config.set(name, value).expect("producer property");
    }
    Producer::new(config.build().expect("settings")).expect("producer")
}

fn consumer(cluster: &RunningCluster, group: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut config = cluster.consumer_config(group).expect("config");
    config.set("auto.offset.reset", "earliest").expect("reset");
    for (name, value) in extra {
        config.set(name, value).expect("consumer property");
    }
    Consumer::new(config.build().expect("settings")).expect("consumer")
}

fn text(bytes: &Option<bytes::Bytes>) -> String {
    String::from_utf8(bytes.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

async fn read(consumer: &mut Consumer, count: usize, limit: Duration) -> Vec<ConsumerRecord> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut records = Vec::new();
    while records.len() < count && tokio::time::Instant::now() < deadline {
        records.extend(
            consumer
                .poll(Duration::from_millis(200))
                .await
                .expect("poll"),
        );
    }
    records
}

async fn send_all(producer: &Producer, records: impl IntoIterator<Item = ProducerRecord>) {
    let mut deliveries = Vec::new();
    for record in records {
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
}

/// Idempotent produce with each codec, read back by a group consumer with
/// each assignor, every key in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_each_codec_and_consume_with_each_assignor() {
    if !available() {
        return;
    }
    let cluster = shared();
    let assignors = ["range", "roundrobin", "cooperative-sticky"];
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        let topic = format!("codec-{codec}");
        cluster.create_topic(&topic, 3).await.expect("create topic");
        let producer = producer(
            cluster,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("compression.type", codec),
            ],
        );
        send_all(
            &producer,
            (0..2_000).map(|n| {
                ProducerRecord::new(topic.clone())
                    .key(format!("k{}", n % 7))
                    .value(n.to_string())
            }),
        )
        .await;
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");

        let assignor = assignors[i % assignors.len()];
        let mut consumer = consumer(
            cluster,
            &format!("g-{codec}"),
            &[("partition.assignment.strategy", assignor)],
        );
        consumer.subscribe(&[topic.as_str()]).expect("subscribe");
        let records = read(&mut consumer, 2_000, Duration::from_secs(60)).await;
        consumer.commit().await.expect("commit");
        consumer.close().await.expect("close");
        assert_eq!(
            records.len(),
            2_000,
            "{codec} with {assignor}: each record once"
        );
        let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for r in &records {
            by_key
                .entry(text(&r.key))
                .or_default()
                .push(text(&r.value).parse().expect("n"));
        }
        assert_eq!(by_key.len(), 7);
        for (key, values) in by_key {
            assert!(
                values.windows(2).all(|w| w[0] < w[1]),
                "{codec}: {key} in order"
            );
        }
    }
}

/// Consume-process-produce in transactions with the offsets sent to each:
/// a read_committed reader sees the committed transaction only, the group
/// resumes at the committed offset, and a second producer with the same
/// transactional.id fences the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_offsets_read_committed_and_fencing() {
    if !available() {
        return;
    }
    let cluster = shared();
    cluster.create_topic("txn-in", 1).await.expect("topic");
    cluster.create_topic("txn-out", 1).await.expect("topic");
    let plain = producer(cluster, &[]);
    send_all(
        &plain,
        (0..20).map(|n| {
            ProducerRecord::new("txn-in")
                .partition(0)
                .value(format!("in-{n}"))
        }),
    )
    .await;
    plain.close(Duration::from_secs(5)).await.expect("close");

    let timeout = Duration::from_secs(30);
    let mut input = consumer(cluster, "txn-worker", &[("enable.auto.commit", "false")]);
    input.subscribe(&["txn-in"]).expect("subscribe");
    let first = read(&mut input, 20, Duration::from_secs(60)).await;
    assert_eq!(first.len(), 20);

    let worker = producer(cluster, &[("transactional.id", "worker-1")]);
    worker.init_transactions(timeout).await.expect("init");
    let in_0 = TopicPartition {
        topic: "txn-in".into(),
        partition: 0,
    };
    // Committed: the first ten, with their offsets.
    worker.begin_transaction().expect("begin");
    for r in &first[..10] {
        worker
            .send(
                ProducerRecord::new("txn-out")
                    .partition(0)
                    .value(format!("out-{}", text(&r.value))),
            )
            .await
            .expect("queued");
    }
    let offsets = BTreeMap::from([(in_0.clone(), first[9].offset + 1)]);
    worker
        .send_offsets_to_transaction(&offsets, &input.group_metadata(), timeout)
        .await
        .expect("send offsets");
    worker.commit_transaction(timeout).await.expect("commit");
    // Aborted: the next ten.
    worker.begin_transaction().expect("begin");
    for r in &first[10..] {
        worker
            .send(
                ProducerRecord::new("txn-out")
                    .partition(0)
                    .value(format!("out-{}", text(&r.value))),
            )
            .await
            .expect("queued");
    }
    worker.flush().await.expect("flush");
    let offsets = BTreeMap::from([(in_0.clone(), first[19].offset + 1)]);
    worker
        .send_offsets_to_transaction(&offsets, &input.group_metadata(), timeout)
        .await
        .expect("send offsets");
    worker.abort_transaction(timeout).await.expect("abort");

    let committed = input
        .committed(std::slice::from_ref(&in_0))
        .await
        .expect("committed");
    assert_eq!(
        committed.get(&in_0),
        Some(&10),
        "the aborted offsets are not the group's"
    );
    input.close().await.expect("close");

    let out_0 = TopicPartition {
        topic: "txn-out".into(),
        partition: 0,
    };
    let mut committed_reader = consumer(
        cluster,
        "reader-rc",
        &[("isolation.level", "read_committed")],
    );
    committed_reader.assign([out_0.clone()]);
    let seen: Vec<String> = read(&mut committed_reader, 10, Duration::from_secs(30))
        .await
        .iter()
        .map(|r| text(&r.value))
        .collect();
    let expected: Vec<String> = (0..10).map(|n| format!("out-in-{n}")).collect();
    assert_eq!(
        seen, expected,
        "read_committed sees the committed transaction only"
    );
    // Nothing more arrives: the aborted ten stay hidden.
    assert!(
        read(&mut committed_reader, 1, Duration::from_secs(2))
            .await
            .is_empty()
    );
    committed_reader.close().await.expect("close");
    let mut uncommitted_reader = consumer(cluster, "reader-ru", &[]);
    uncommitted_reader.assign([out_0]);
    assert_eq!(
        read(&mut uncommitted_reader, 20, Duration::from_secs(30))
            .await
            .len(),
        20
    );
    uncommitted_reader.close().await.expect("close");

    // A new instance fences the old one.
    worker.begin_transaction().expect("begin");
    worker
        .send(ProducerRecord::new("txn-out").partition(0).value("zombie"))
        .await
        .expect("queued");
    let successor = producer(cluster, &[("transactional.id", "worker-1")]);
    successor
        .init_transactions(timeout)
        .await
        .expect("successor init");
    let fenced = worker.commit_transaction(timeout).await;
    let code = fenced.as_ref().err().and_then(Error::code);
    assert!(
        matches!(
            code,
            Some(ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch)
        ),
        "the zombie's commit is fenced: {fenced:?}"
    );
    assert!(
        fenced.as_ref().is_err_and(Error::is_fatal),
        "and fatal: {fenced:?}"
    );
    successor
        .close(Duration::from_secs(5))
        .await
        .expect("close");
}

/// SIGKILL of the node mid-stream and a restart on the same storage: the
/// idempotent producer's records all arrive once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_produce_survives_a_killed_and_restarted_broker() {
    if !available() {
        return;
    }
    let mut cluster = KafkaCluster::new()
        .apache_kafka(version())
        .topic("survive", 1)
        .start()
        .await
        .expect("Apache Kafka starts");
    let producer = producer(
        &cluster,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("delivery.timeout.ms", "120000"),
        ],
    );
    send_all(
        &producer,
        (0..500).map(|n| {
            ProducerRecord::new("survive")
                .partition(0)
                .value(n.to_string())
        }),
    )
    .await;
    cluster.kill().await.expect("kill -9");
    let mut pending = Vec::new();
    for n in 500..1_000 {
        let record = ProducerRecord::new("survive")
            .partition(0)
            .value(n.to_string());
        pending.push(producer.send(record).await.expect("queued while down"));
    }
    cluster.restart().await.expect("restart");
    for delivery in pending {
        delivery.await.expect("delivered after the restart");
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    let mut reader = consumer(&cluster, "survive-reader", &[]);
    reader.assign([TopicPartition {
        topic: "survive".into(),
        partition: 0,
    }]);
    let values: Vec<u32> = read(&mut reader, 1_000, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| text(&r.value).parse().expect("n"))
        .collect();
    assert_eq!(
        values,
        (0..1_000).collect::<Vec<_>>(),
        "each record once, in order"
    );
    reader.close().await.expect("close");
    cluster.shutdown().await.expect("shutdown");
}

/// On a LogAppendTime topic the broker stamps each batch; the producer
/// reports that stamp (Java's RecordMetadata.timestamp), which is also
/// what a consumer reads, not the create time sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_append_time_is_the_timestamp_the_producer_reports() {
    if !available() {
        return;
    }
    let cluster = shared();
    cluster
        .create_topic_spec(
            kafka_testcontainers::TopicSpec::new("appended", 1)
                .config("message.timestamp.type", "LogAppendTime"),
        )
        .await
        .expect("topic");
    let producer = producer(cluster, &[]);
    let created = 1_000_000; // 1970: far from any append time
    let delivered = producer
        .send_and_wait(
            ProducerRecord::new("appended")
                .partition(0)
                .timestamp(created)
                .value("v"),
        )
        .await
        .expect("delivered");
    producer.close(Duration::from_secs(5)).await.expect("close");
    assert!(
        delivered.timestamp > created + 1_000_000_000_000,
        "the broker's append time, not the create time: {}",
        delivered.timestamp
    );
    let mut reader = consumer(cluster, "appended-reader", &[]);
    reader.assign([TopicPartition {
        topic: "appended".into(),
        partition: 0,
    }]);
    let records = read(&mut reader, 1, Duration::from_secs(30)).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].timestamp, delivered.timestamp);
    reader.close().await.expect("close");
}

/// Three nodes, a topic replicated three times with min.insync.replicas 2:
/// the leader of the partition an idempotent producer writes to is killed
/// with SIGKILL mid-stream and started again; every record arrives once,
/// in order, and a group consumer reads them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_produce_survives_a_killed_leader_of_three() {
    if !available() {
        return;
    }
    let mut cluster = KafkaCluster::new()
        .apache_kafka(version())
        .brokers(3)
        .replication_factor(3)
        .broker_property("min.insync.replicas", "2")
        .topic("failover", 1)
        .start()
        .await
        .expect("Apache Kafka starts");
    let producer = producer(
        &cluster,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("delivery.timeout.ms", "120000"),
        ],
    );
    let leader = producer
        .partitions_for("failover")
        .await
        .expect("partitions")[0]
        .leader
        .expect("a leader");
    send_all(
        &producer,
        (0..500).map(|n| {
            ProducerRecord::new("failover")
                .partition(0)
                .value(n.to_string())
        }),
    )
    .await;
    cluster.kill_node(leader).await.expect("kill -9 the leader");
    send_all(
        &producer,
        (500..1_000).map(|n| {
            ProducerRecord::new("failover")
                .partition(0)
                .value(n.to_string())
        }),
    )
    .await;
    let moved = producer
        .partitions_for("failover")
        .await
        .expect("partitions")[0]
        .leader;
    assert!(
        moved.is_some_and(|l| l != leader),
        "a new leader: {moved:?}"
    );
    cluster
        .restart_node(leader)
        .await
        .expect("restart the old leader");
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");

    let mut reader = consumer(&cluster, "failover-group", &[]);
    reader.subscribe(&["failover"]).expect("subscribe");
    let values: Vec<u32> = read(&mut reader, 1_000, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| text(&r.value).parse().expect("n"))
        .collect();
    assert_eq!(
        values,
        (0..1_000).collect::<Vec<_>>(),
        "each record once, in order"
    );
    reader.close().await.expect("close");
    cluster.shutdown().await.expect("shutdown");
}
