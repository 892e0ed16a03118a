//! The client's core scenarios against the bundled broker offering the API
//! versions of each Apache Kafka release users run (`kafka.version` 2.8,
//! 3.5, 3.9, 4.0): the oldest ceilings send Fetch by topic name (v12 on
//! 2.8) and Metadata v11, the newest by topic id (v17). Produce with each
//! codec, group consume with each assignor and commit, and a transactional
//! consume-process-produce round with `send_offsets_to_transaction`, an
//! abort and a read_committed reader.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster, KafkaRelease};
use kafka_client::consumer::{Consumer, ConsumerConfig, ConsumerRecord};
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord, TopicPartition};
use kafka_client::protocol::ApiKey;

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const ASSIGNORS: [&str; 3] = ["range", "roundrobin", "cooperative-sticky"];
const TIMEOUT: Duration = Duration::from_secs(20);

async fn cluster(release: KafkaRelease) -> Cluster {
    let mut config = BrokerConfig {
        brokers: 3,
        ..BrokerConfig::default()
    };
    config
        .set("kafka.version", release.name())
        .expect("kafka.version");
    Cluster::start(config).await.expect("cluster")
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut config = ProducerConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .expect("bootstrap");
    for (name, value) in extra {
        config.set(name, value).expect("property");
    }
    Producer::new(config.build().expect("config")).expect("producer")
}

fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut config = ConsumerConfig::new();
    config.bootstrap_servers(bootstrap).expect("bootstrap");
    config.set("auto.offset.reset", "earliest").expect("reset");
    for (name, value) in extra {
        config.set(name, value).expect("property");
    }
    Consumer::new(config.build().expect("config")).expect("consumer")
}

async fn read(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < count && tokio::time::Instant::now() < deadline {
        out.extend(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll"),
        );
    }
    out
}

fn text(b: &Option<bytes::Bytes>) -> String {
    String::from_utf8(b.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

/// The Fetch and Metadata versions the client negotiates with `bootstrap`.
async fn negotiated(bootstrap: &str) -> (Option<i16>, Option<i16>) {
    let servers = bootstrap.split(',').map(str::to_owned).collect();
    let network = Network::new(NetworkConfig::new(servers)).expect("network");
    let connection = network.any().await.expect("connection");
    let versions = (
        connection.negotiated(ApiKey::Fetch),
        connection.negotiated(ApiKey::Metadata),
    );
    network.close();
    versions
}

async fn produce_and_consume(bootstrap: &str, release: KafkaRelease) {
    for (i, codec) in CODECS.iter().enumerate() {
        let topic = format!("codec-{codec}");
        let producer = producer(
            bootstrap,
            &[("compression.type", codec), ("enable.idempotence", "true")],
        );
        let mut deliveries = Vec::new();
        for n in 0..300 {
            let record = ProducerRecord::new(topic.clone())
                .key(format!("k{}", n % 5))
                .value(n.to_string());
            deliveries.push(producer.send(record).await.expect("queued"));
        }
        for d in deliveries {
            d.await.unwrap_or_else(|e| panic!("{release} {codec}: {e}"));
        }
        producer.close(Duration::from_secs(5)).await.expect("close");

        let assignor = ASSIGNORS[i % ASSIGNORS.len()];
        let group = format!("g-{codec}");
        let mut group_consumer = consumer(
            bootstrap,
            &[
                ("group.id", &group),
                ("partition.assignment.strategy", assignor),
                ("enable.auto.commit", "false"),
            ],
        );
        group_consumer
            .subscribe(&[topic.as_str()])
            .expect("subscribe");
        let records = read(&mut group_consumer, 300).await;
        assert_eq!(records.len(), 300, "{release} {codec} {assignor}");
        let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for r in &records {
            by_key
                .entry(text(&r.key))
                .or_default()
                .push(text(&r.value).parse().expect("n"));
        }
        assert!(
            by_key.values().all(|v| v.windows(2).all(|w| w[0] < w[1])),
            "{release} {codec}: each key in order"
        );
        group_consumer.commit().await.expect("commit");
        let partitions: Vec<TopicPartition> = records
            .iter()
            .map(|r| TopicPartition::new(&r.topic, r.partition))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let committed = group_consumer
            .committed(&partitions)
            .await
            .expect("committed");
        let ends: i64 = committed.values().sum();
        assert_eq!(
            ends, 300,
            "{release} {codec}: the commit covers every record"
        );
        group_consumer.close().await.expect("close");
    }
}

async fn transactions(bootstrap: &str, release: KafkaRelease) {
    let plain = producer(bootstrap, &[]);
    for n in 0..20 {
        plain
            .send(
                ProducerRecord::new("t-in")
                    .partition(0)
                    .value(n.to_string()),
            )
            .await
            .expect("queued");
    }
    plain.close(Duration::from_secs(5)).await.expect("close");
    let mut input = consumer(
        bootstrap,
        &[("group.id", "t-group"), ("enable.auto.commit", "false")],
    );
    input.subscribe(&["t-in"]).expect("subscribe");
    let records = read(&mut input, 20).await;
    assert_eq!(records.len(), 20, "{release}");
    let txn = producer(bootstrap, &[("transactional.id", "t-worker")]);
    txn.init_transactions(TIMEOUT).await.expect("init");
    let in_0 = TopicPartition::new("t-in", 0);
    for (round, chunk) in records.chunks(10).enumerate() {
        txn.begin_transaction().expect("begin");
        for r in chunk {
            txn.send(
                ProducerRecord::new("t-out")
                    .partition(0)
                    .value(text(&r.value)),
            )
            .await
            .expect("queued");
        }
        let next = chunk.last().expect("a record").offset + 1;
        txn.send_offsets_to_transaction(
            &BTreeMap::from([(in_0.clone(), next)]),
            &input.group_metadata(),
            TIMEOUT,
        )
        .await
        .expect("send offsets");
        if round == 0 {
            txn.commit_transaction(TIMEOUT).await.expect("commit");
        } else {
            txn.flush().await.expect("flush");
            txn.abort_transaction(TIMEOUT).await.expect("abort");
        }
    }
    txn.close(Duration::from_secs(5)).await.expect("close");
    let committed = input
        .committed(std::slice::from_ref(&in_0))
        .await
        .expect("committed");
    assert_eq!(
        committed.get(&in_0),
        Some(&10),
        "{release}: only the committed offsets"
    );
    input.close().await.expect("close");

    let mut reader = consumer(bootstrap, &[("isolation.level", "read_committed")]);
    reader.assign([TopicPartition::new("t-out", 0)]);
    let seen: Vec<String> = read(&mut reader, 10)
        .await
        .iter()
        .map(|r| text(&r.value))
        .collect();
    let expected: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    assert_eq!(
        seen, expected,
        "{release}: read_committed sees the committed round only"
    );
    reader.close().await.expect("close");
}

async fn core_scenarios(release: KafkaRelease, fetch: i16, metadata: i16) {
    let cluster = cluster(release).await;
    for codec in CODECS {
        cluster
            .create_topic(&format!("codec-{codec}"), 3)
            .expect("topic");
    }
    cluster.create_topic("t-in", 1).expect("topic");
    cluster.create_topic("t-out", 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    assert_eq!(
        negotiated(&bootstrap).await,
        (Some(fetch), Some(metadata)),
        "{release}: the versions the client meets there"
    );
    produce_and_consume(&bootstrap, release).await;
    transactions(&bootstrap, release).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_2_8_ceilings() {
    core_scenarios(KafkaRelease::V2_8, 12, 11).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_3_5_ceilings() {
    core_scenarios(KafkaRelease::V3_5, 15, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_3_9_ceilings() {
    core_scenarios(KafkaRelease::V3_9, 17, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_4_0_ceilings() {
    core_scenarios(KafkaRelease::V4_0, 17, 12).await;
}
