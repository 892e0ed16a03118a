//! The client against brokers nobody here wrote: librdkafka's mock cluster
//! (`rdkafka_mock.h`), from Debian's librdkafka 2.0.2 and from the copy of
//! librdkafka 2.16 bundled in the `confluent-kafka` wheel, started by
//! `interop/librdkafka-mock/mock_cluster.py` with 3 brokers on 127.0.0.1.
//!
//! The two mocks differ from each other and from our broker: 2.0.2 offers
//! Metadata only up to v2 and ApiVersions v0 (old-broker paths), 2.16 offers
//! Fetch v16+ with topic ids (KIP-516). What the mocks do not do is written
//! where a test relies on it: neither filters aborted transactions for
//! read_committed readers, so that is not asserted here.
//!
//! Without python3 or either library, `cargo test` skips these with a
//! note; in CI (`CI` set) they must run.

#[allow(dead_code)] // the example's `main`
#[path = "../examples/console_consumer.rs"]
mod console_consumer;

#[allow(dead_code)] // the example's `main`
#[path = "../examples/console_producer.rs"]
mod console_producer;

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kafka_sdk::client::producer::ProducerRecord;
use support::{CODECS, ChildBroker, consumer, missing, producer, read, text};
use tokio::process::Command;

/// A 3-broker mock cluster of the librdkafka at `library`, with `topics`.
async fn mock_cluster(library: &Path, topics: &[(&str, i32)]) -> ChildBroker {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join("librdkafka-mock")
        .join("mock_cluster.py");
    let mut command = Command::new("python3");
    command.arg(harness).arg(library).args(["--brokers", "3"]);
    ChildBroker::start(command, "the librdkafka mock harness", topics).await
}

/// Debian's librdkafka (2.0.2 in bookworm), from `librdkafka-dev`.
fn debian_librdkafka() -> Option<PathBuf> {
    let found = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib",
    ]
    .iter()
    .map(|dir| Path::new(dir).join("librdkafka.so.1"))
    .find(|p| p.is_file());
    found.or_else(|| missing("librdkafka.so.1 (Debian's librdkafka-dev)"))
}

/// The librdkafka bundled in the confluent-kafka wheel (2.16).
fn wheel_librdkafka() -> Option<PathBuf> {
    let script = "import confluent_kafka, glob, os\n\
                  d = os.path.dirname(os.path.dirname(confluent_kafka.__file__))\n\
                  print(sorted(glob.glob(os.path.join(d, 'confluent_kafka.libs', 'librdkafka*')))[0])";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .stderr(Stdio::null())
        .output();
    match output {
        Ok(o) if o.status.success() => {
            Some(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        }
        _ => missing("the confluent-kafka wheel's librdkafka"),
    }
}

fn both_mocks() -> Vec<(&'static str, PathBuf)> {
    let mut libraries = Vec::new();
    if let Some(lib) = debian_librdkafka() {
        libraries.push(("librdkafka 2.0.2 (Debian)", lib));
    }
    if let Some(lib) = wheel_librdkafka() {
        libraries.push(("librdkafka 2.16 (confluent-kafka)", lib));
    }
    libraries
}

/// Our idempotent producer writes 10,000 keyed records with each codec and
/// our group consumer reads them all back, each key's records in the order
/// sent, from both mocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_produce_and_group_consume_with_every_codec() {
    const RECORDS: usize = 10_000;
    for (name, library) in both_mocks() {
        let topics: Vec<String> = CODECS.iter().map(|c| format!("codec-{c}")).collect();
        let specs: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 3)).collect();
        let mock = mock_cluster(&library, &specs).await;
        for (codec, topic) in CODECS.iter().zip(&topics) {
            let producer = producer(
                &mock.bootstrap,
                &[
                    ("enable.idempotence", "true"),
                    ("acks", "all"),
                    ("compression.type", codec),
                    ("linger.ms", "5"),
                ],
            );
            let mut deliveries = Vec::with_capacity(RECORDS);
            for i in 0..RECORDS {
                let record = ProducerRecord::new(topic.clone())
                    .key(format!("key-{}", i % 16))
                    .value(format!("{i}"));
                deliveries.push(producer.send(record).await.expect("queued"));
            }
            for delivery in deliveries {
                delivery
                    .await
                    .unwrap_or_else(|e| panic!("{name} {codec}: {e}"));
            }
            producer
                .close(Duration::from_secs(10))
                .await
                .expect("close");

            let mut consumer = consumer(&mock.bootstrap, &[("group.id", &format!("g-{codec}"))]);
            consumer.subscribe(&[topic.as_str()]).expect("subscribe");
            let records = read(&mut consumer, RECORDS, Duration::from_secs(60)).await;
            consumer.close().await.expect("close");
            assert_eq!(records.len(), RECORDS, "{name} {codec}: every record, once");
            let mut by_key: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for r in &records {
                by_key
                    .entry(text(&r.key))
                    .or_default()
                    .push(text(&r.value).parse().expect("a number"));
            }
            for (key, values) in &by_key {
                assert!(
                    values.windows(2).all(|w| w[0] < w[1]),
                    "{name} {codec}: {key} in the order sent"
                );
            }
            let total: usize = by_key.values().map(Vec::len).sum();
            assert_eq!(total, RECORDS, "{name} {codec}");
        }
    }
}

/// `console_producer` then `console_consumer --group` round-trip 10,000
/// lines in order on a one-partition topic, on both mocks, and the group's
/// committed offset is the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_tools_round_trip_ten_thousand_lines() {
    for (name, library) in both_mocks() {
        let mock = mock_cluster(&library, &[("lines", 1)]).await;
        let lines: Vec<String> = (0..10_000).map(|i| format!("line {i}")).collect();
        let input = lines.join("\n") + "\n";
        let args = console_producer::parse(
            ["--bootstrap-server", &mock.bootstrap, "--topic", "lines"]
                .iter()
                .map(|a| a.to_string()),
        )
        .expect("producer arguments");
        let failed = tokio::time::timeout(
            Duration::from_secs(60),
            console_producer::run(args, input.as_bytes()),
        )
        .await
        .expect("console_producer finishes")
        .expect("console_producer succeeds");
        assert_eq!(failed, 0, "{name}");

        let consume = |max: &str| {
            console_consumer::parse(
                [
                    "--bootstrap-server",
                    &mock.bootstrap,
                    "--topic",
                    "lines",
                    "--group",
                    "console",
                    "--from-beginning",
                    "--max-messages",
                    max,
                    "--timeout-ms",
                    "3000",
                ]
                .iter()
                .map(|a| a.to_string()),
            )
            .expect("consumer arguments")
        };
        let mut out = Vec::new();
        let printed = tokio::time::timeout(
            Duration::from_secs(60),
            console_consumer::run(&consume("10000"), &mut out, std::future::pending()),
        )
        .await
        .expect("console_consumer finishes")
        .expect("console_consumer succeeds");
        assert_eq!(printed, 10_000, "{name}");
        let got: Vec<&str> = std::str::from_utf8(&out).expect("utf-8").lines().collect();
        assert_eq!(got, lines, "{name}: every line, in order");

        // What it printed is the group's committed offset. (Read without
        // joining: after the tool's LeaveGroup, a new member's JoinGroup on
        // the 2.0.2 mock is held past request.timeout.ms.)
        let mut check = consumer(&mock.bootstrap, &[("group.id", "console")]);
        let lines_0 = kafka_sdk::client::producer::TopicPartition {
            topic: "lines".into(),
            partition: 0,
        };
        check.assign([lines_0.clone()]);
        let committed = check.committed(&[lines_0]).await.expect("committed");
        assert_eq!(
            committed.values().copied().collect::<Vec<_>>(),
            [10_000],
            "{name}"
        );
        check.close().await.expect("close");
    }
}

/// Transactions commit and abort against librdkafka 2.16's mock, with
/// offsets sent to the transaction. The mock writes the records and the
/// markers (the markers with a CRC of 0); it neither stores the offsets of TxnOffsetCommit nor is relied
/// on to filter aborted records, so the coordinator's answers and a
/// read_uncommitted read of the log (markers skipped) are what is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_on_the_2_16_mock() {
    let Some(library) = wheel_librdkafka() else {
        return;
    };
    let mock = mock_cluster(&library, &[("txn-in", 1), ("txn-out", 1)]).await;
    let plain = producer(&mock.bootstrap, &[]);
    for i in 0..10 {
        plain
            .send(
                ProducerRecord::new("txn-in")
                    .partition(0)
                    .value(format!("in-{i}")),
            )
            .await
            .expect("queued")
            .await
            .expect("delivered");
    }
    plain.close(Duration::from_secs(5)).await.expect("close");

    let mut input = consumer(
        &mock.bootstrap,
        &[("group.id", "txn-group"), ("enable.auto.commit", "false")],
    );
    input.subscribe(&["txn-in"]).expect("subscribe");
    let read_in = read(&mut input, 10, Duration::from_secs(30)).await;
    assert_eq!(read_in.len(), 10);

    let txn = producer(&mock.bootstrap, &[("transactional.id", "mock-txn")]);
    let timeout = Duration::from_secs(20);
    txn.init_transactions(timeout)
        .await
        .expect("init_transactions");
    txn.begin_transaction().expect("begin");
    for i in 0..5 {
        txn.send(
            ProducerRecord::new("txn-out")
                .partition(0)
                .value(format!("kept-{i}")),
        )
        .await
        .expect("queued");
    }
    let offsets = BTreeMap::from([(
        kafka_sdk::client::producer::TopicPartition {
            topic: "txn-in".into(),
            partition: 0,
        },
        10i64,
    )]);
    txn.send_offsets_to_transaction(&offsets, &input.group_metadata(), timeout)
        .await
        .expect("send_offsets_to_transaction");
    txn.commit_transaction(timeout).await.expect("commit");
    txn.begin_transaction().expect("begin");
    for i in 0..5 {
        txn.send(
            ProducerRecord::new("txn-out")
                .partition(0)
                .value(format!("aborted-{i}")),
        )
        .await
        .expect("queued");
    }
    // Written before the abort, so the log holds them ahead of its marker.
    txn.flush().await.expect("flush");
    txn.abort_transaction(timeout).await.expect("abort");
    txn.close(Duration::from_secs(5)).await.expect("close");

    // The mock answers TxnOffsetCommit without storing the offsets (seen:
    // the group's committed offsets stay empty), so they are not checked.
    input.close().await.expect("close");

    // The mock writes its transaction markers with a CRC of 0, which a
    // consumer checking CRCs (Java's default, and ours) refuses as corrupt.
    let mut reader = consumer(&mock.bootstrap, &[("check.crcs", "false")]);
    reader.assign([kafka_sdk::client::producer::TopicPartition {
        topic: "txn-out".into(),
        partition: 0,
    }]);
    let values: Vec<String> = read(&mut reader, 10, Duration::from_secs(30))
        .await
        .iter()
        .map(|r| text(&r.value))
        .collect();
    let expected: Vec<String> = (0..5)
        .map(|i| format!("kept-{i}"))
        .chain((0..5).map(|i| format!("aborted-{i}")))
        .collect();
    assert_eq!(
        values, expected,
        "both transactions' records, markers skipped"
    );
}
