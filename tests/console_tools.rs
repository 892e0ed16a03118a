//! The console tools of `examples/` against the in-process broker. Examples
//! are not dependencies of tests, so the example's source is compiled here
//! as a module and its `parse` and `run` are called directly, with a buffer
//! for stdout and a future for Ctrl-C.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/console_consumer.rs"]
mod console_consumer;

#[allow(dead_code)] // the example's `main`
#[path = "../examples/consumer_groups.rs"]
mod consumer_groups;

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_sdk::client::producer::{Producer, ProducerRecord, ProducerSettings};

async fn cluster_with(topic: &str, partitions: i32) -> Cluster {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic(topic, partitions).expect("topic");
    cluster
}

/// Produces `key-i` / `value-i` for i in 0..count, spread over partitions.
async fn produce(cluster: &Cluster, topic: &str, partitions: i32, count: i32) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(topic)
            .partition(i % partitions)
            .key(format!("key-{i}"))
            .value(format!("value-{i}"));
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// Runs the tool with these arguments (bounded by 20 s); its stdout lines.
async fn consume(args: &[&str]) -> (u64, Vec<String>) {
    let args = console_consumer::parse(args.iter().map(|a| a.to_string())).expect("arguments");
    let mut out = Vec::new();
    let count = tokio::time::timeout(
        Duration::from_secs(20),
        console_consumer::run(&args, &mut out, std::future::pending()),
    )
    .await
    .expect("the tool exits within 20 s")
    .expect("the tool succeeds");
    let text = String::from_utf8(out).expect("utf-8");
    (count, text.lines().map(str::to_owned).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_consumer_prints_every_partition_from_the_beginning() {
    let cluster = cluster_with("console", 3).await;
    produce(&cluster, "console", 3, 20).await;
    let bootstrap = cluster.bootstrap_servers();
    // Values only, one per line (the default format).
    let (count, lines) = consume(&[
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "console",
        "--from-beginning",
        "--max-messages",
        "20",
    ])
    .await;
    assert_eq!(count, 20);
    let expected: BTreeSet<String> = (0..20).map(|i| format!("value-{i}")).collect();
    assert_eq!(lines.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(lines.len(), 20, "no duplicates: {lines:?}");
    // Formatter properties: partition, offset, key, value, separated by `|`.
    let (_, lines) = consume(&[
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "console",
        "--from-beginning",
        "--max-messages",
        "20",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=|",
    ])
    .await;
    let mut per_partition = [Vec::new(), Vec::new(), Vec::new()];
    for line in &lines {
        let columns: Vec<&str> = line.split('|').collect();
        let [partition, offset, key, value] = columns[..] else {
            panic!("four columns expected: {line}");
        };
        let p: usize = partition
            .strip_prefix("Partition:")
            .and_then(|p| p.parse().ok())
            .expect(line);
        let o: i64 = offset
            .strip_prefix("Offset:")
            .and_then(|o| o.parse().ok())
            .expect(line);
        let i: i64 = key
            .strip_prefix("key-")
            .and_then(|i| i.parse().ok())
            .expect(line);
        assert_eq!(value, format!("value-{i}"), "{line}");
        assert_eq!(i as usize % 3, p, "produced to partition i % 3: {line}");
        per_partition[p].push(o);
    }
    for (p, offsets) in per_partition.iter().enumerate() {
        let n = if p < 2 { 7 } else { 6 };
        assert_eq!(offsets, &(0..n).collect::<Vec<i64>>(), "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_consumer_in_a_group_resumes_after_what_it_printed() {
    let cluster = cluster_with("console-group", 3).await;
    produce(&cluster, "console-group", 3, 20).await;
    let bootstrap = cluster.bootstrap_servers();
    let run = |max: &'static str| {
        let bootstrap = bootstrap.clone();
        async move {
            consume(&[
                "--bootstrap-server",
                &bootstrap,
                "--topic",
                "console-group",
                "--group",
                "console-readers",
                "--from-beginning",
                "--max-messages",
                max,
            ])
            .await
        }
    };
    let (first_count, first) = run("5").await;
    let (second_count, second) = run("15").await;
    assert_eq!((first_count, second_count), (5, 15));
    let mut all: Vec<String> = first.iter().chain(&second).cloned().collect();
    all.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(
        all, expected,
        "the second run starts after what the first printed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_consumer_exits_after_timeout_ms_without_records() {
    let cluster = cluster_with("console-idle", 2).await;
    let bootstrap = cluster.bootstrap_servers();
    let started = std::time::Instant::now();
    let (count, lines) = consume(&[
        "--bootstrap-server",
        &bootstrap,
        "--topic",
        "console-idle",
        "--max-messages",
        "5",
        "--timeout-ms",
        "300",
    ])
    .await;
    assert_eq!((count, lines.len()), (0, 0));
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the timeout: {:?}",
        started.elapsed()
    );
    // Bad arguments name themselves.
    let error = console_consumer::parse(
        ["--topic", "t", "--property", "print.colour=true"]
            .iter()
            .map(|a| a.to_string()),
    )
    .expect_err("unknown property");
    assert!(error.contains("print.colour"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_consumer_reads_a_secured_cluster_with_a_client_properties_file() {
    use kafka_testcontainers::{ClusterSecurity, KafkaCluster, SaslMechanism};
    let cluster = KafkaCluster::new()
        .security(ClusterSecurity::SaslSsl(SaslMechanism::ScramSha256))
        .topic("secured-console", 1)
        .start()
        .await
        .expect("cluster");
    let producer = cluster.producer().expect("producer");
    for i in 0..5 {
        producer
            .send_and_wait(ProducerRecord::new("secured-console").value(format!("secret-{i}")))
            .await
            .expect("sent");
    }
    // The client.properties a Java service would keep: a CA file, and the
    // credentials in a JAAS line continued over two lines.
    let dir = std::env::temp_dir().join(format!("console-secured-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cluster.ca_pem().expect("a TLS cluster")).expect("ca");
    let properties = dir.join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "# as handed out by ops\n\
             security.protocol=SASL_SSL\n\
             sasl.mechanism=SCRAM-SHA-256\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  \
             username=\"{}\" password=\"{}\";\n",
            ca.display(),
            kafka_testcontainers::TEST_USER,
            kafka_testcontainers::TEST_PASSWORD
        ),
    )
    .expect("properties");
    let (count, lines) = consume(&[
        "--bootstrap-server",
        cluster.bootstrap_servers(),
        "--topic",
        "secured-console",
        "--from-beginning",
        "--max-messages",
        "5",
        "--consumer.config",
        properties.to_str().expect("utf-8 path"),
    ])
    .await;
    assert_eq!(count, 5);
    let expected: Vec<String> = (0..5).map(|i| format!("secret-{i}")).collect();
    assert_eq!(lines, expected);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Runs `consumer_groups` with these arguments; its stdout lines.
async fn groups_tool(args: &[&str]) -> Result<Vec<String>, String> {
    let args = consumer_groups::parse(args.iter().map(|a| a.to_string()))?;
    let mut out = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        consumer_groups::run(&args, &mut out),
    )
    .await
    .expect("the tool exits within 20 s")?;
    let text = String::from_utf8(out).expect("utf-8");
    Ok(text.lines().map(str::to_owned).collect())
}

/// `consumer_groups` lists a group, describes its lag per partition and
/// the member that owns each, and deletes it once empty, in the columns
/// of Kafka's `kafka-consumer-groups --describe`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_lists_describes_lag_and_deletes() {
    use kafka_sdk::client::consumer::{Consumer, ConsumerSettings, OffsetReset};
    let cluster = cluster_with("lagged", 2).await;
    produce(&cluster, "lagged", 2, 10).await;
    let bootstrap = cluster.bootstrap_servers();
    let mut settings = ConsumerSettings::new(&bootstrap);
    settings.group_id = Some("laggards".into());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.enable_auto_commit = false;
    settings.max_poll_records = 3;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    settings.network.client_id = Some("lag-reader".into());
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["lagged"]).expect("subscribe");
    let mut read = 0;
    for _ in 0..100 {
        read += consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll")
            .len();
        if read > 0 {
            break;
        }
    }
    assert!(read > 0 && read <= 3, "read {read}");
    consumer.commit().await.expect("commit");

    let listed = groups_tool(&["--bootstrap-server", &bootstrap, "--list"])
        .await
        .expect("list");
    assert_eq!(listed, ["laggards"]);
    let described = groups_tool(&[
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--group",
        "laggards",
    ])
    .await
    .expect("describe");
    assert_eq!(
        described[0],
        "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"
    );
    assert_eq!(described.len(), 3, "{described:?}");
    let mut lag_total = 0;
    for (p, line) in described[1..].iter().enumerate() {
        let columns: Vec<&str> = line.split(' ').collect();
        assert_eq!(columns.len(), 9, "{line}");
        assert_eq!(
            &columns[..3],
            ["laggards", "lagged", &p.to_string()],
            "{line}"
        );
        let end: i64 = columns[4].parse().expect(line);
        assert_eq!(end, 5, "10 records over 2 partitions: {line}");
        if columns[3] != "-" {
            let current: i64 = columns[3].parse().expect(line);
            assert_eq!(columns[5], (end - current).to_string(), "{line}");
            lag_total += end - current;
        } else {
            assert_eq!(columns[5], "-", "{line}");
        }
        assert_eq!(columns[8], "lag-reader", "the owner: {line}");
    }
    assert!(lag_total > 0 && lag_total < 10, "{described:?}");

    let refused = groups_tool(&[
        "--bootstrap-server",
        &bootstrap,
        "--delete",
        "--group",
        "laggards",
    ])
    .await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("NON_EMPTY_GROUP")),
        "{refused:?}"
    );
    consumer.close().await.expect("close");
    let deleted = groups_tool(&[
        "--bootstrap-server",
        &bootstrap,
        "--delete",
        "--group",
        "laggards",
    ])
    .await
    .expect("delete");
    assert_eq!(
        deleted,
        ["Deletion of requested consumer groups ('laggards') was successful."]
    );
    let gone = groups_tool(&[
        "--bootstrap-server",
        &bootstrap,
        "--describe",
        "--group",
        "laggards",
    ])
    .await
    .expect("describe");
    assert_eq!(
        gone,
        ["Consumer group 'laggards' has no active members and no committed offsets."]
    );
    assert!(
        consumer_groups::parse(["--bootstrap-server", "h:1", "--describe"].map(String::from))
            .is_err(),
        "--describe needs --group"
    );
}
