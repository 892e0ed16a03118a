//! franz-go (github.com/twmb/franz-go v1.22.3), a Go client written by
//! others, against the bundled broker beside this SDK's client: an
//! idempotent franz-go producer read by both clients' groups, and a
//! franz-go transactional consume-process-produce loop with aborts read by
//! both clients' read_committed consumers. Then the other way round: this
//! SDK's client against franz-go's kfake (`pkg/kfake`), an in-memory fake
//! Kafka broker written by others, as a third-party broker.
//!
//! The Go programs are `interop/go/cmd/franzpeer` (the twin of
//! `interop/java/src/JavaPeer.java`) and `interop/go/cmd/kfakebroker` (the
//! contract of `interop/librdkafka-mock/mock_cluster.py`), built by
//! `interop/go/build.sh` into a cache. Without Go or that cache, `cargo
//! test` skips these with a note; in CI (`CI` set) they must run.
//!
//! What kfake does, as relied on here (seen by hand and in its source):
//! it checks every produced batch's CRC and writes its transaction markers
//! with valid ones (so, unlike librdkafka's mock, no `check.crcs=false`);
//! it keeps batches as produced, whatever the codec, and checks idempotent
//! sequences; for read_committed fetches it answers the last stable offset
//! and the aborted transactions, so aborted records are filtered; it stages
//! TxnOffsetCommit offsets, checking the member and generation (KIP-447),
//! applies them when the transaction commits and drops them when it aborts.
//! What it does not do: replicate (one copy per partition, no ISR to
//! shrink), throttle, or serve from follower replicas; none is asserted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kafka_sdk::client::producer::{ProducerRecord, TopicPartition};
use support::{
    CODECS, ChildBroker, consumer, fact, in_key_order, producer, read, records, run_peer, text,
    three_brokers,
};
use tokio::process::Command;

/// Runs a franzpeer command; its output lines.
async fn franz(peer: &Path, args: &[&str]) -> Vec<String> {
    let mut command = Command::new(peer.join("franzpeer"));
    command.args(args);
    run_peer(command, &format!("franzpeer {args:?}")).await
}

/// A 3-broker kfake cluster with `topics`.
async fn kfake(peer: &Path, topics: &[(&str, i32)]) -> ChildBroker {
    let mut command = Command::new(peer.join("kfakebroker"));
    command.args(["--brokers", "3"]);
    ChildBroker::start(command, "kfakebroker", topics).await
}

/// The built programs' directory (`franzpeer` and `kfakebroker`), if built.
fn peer() -> Option<PathBuf> {
    let cache = std::env::var_os("KAFKA_SDK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kafka-sdk")))?;
    let dir = cache.join("go-peer");
    let go_on_path = std::process::Command::new("go")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if go_on_path && dir.join("franzpeer").is_file() && dir.join("kfakebroker").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the franz-go peer is not built; .ci/run runs interop/go/build.sh"
    );
    eprintln!("skipped: no Go or no franz-go peer (bash interop/go/build.sh builds it)");
    None
}

/// A franz-go idempotent producer's records, read by our group consumer
/// and by a franz-go group consumer (range balancer, commits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn franz_go_producer_and_consumer_against_the_bundled_broker() {
    let Some(peer) = peer() else { return };
    let cluster = three_brokers().await;
    cluster.create_topic("f-orders", 6).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let produced = franz(&peer, &["produce", &bootstrap, "f-orders", "1000"]).await;
    assert_eq!(fact(&produced, "produced"), "1000");

    let mut ours = consumer(&bootstrap, &[("group.id", "ours")]);
    ours.subscribe(&["f-orders"]).expect("subscribe");
    let read_by_us: Vec<(String, String)> = read(&mut ours, 1000, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| (text(&r.key), text(&r.value)))
        .collect();
    ours.close().await.expect("close");
    assert_eq!(read_by_us.len(), 1000);
    let values: BTreeSet<&str> = read_by_us.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values.len(), 1000, "every franz-go record once");
    assert!(in_key_order(&read_by_us));

    let consumed = franz(
        &peer,
        &["consume", &bootstrap, "f-orders", "theirs", "1000"],
    )
    .await;
    assert_eq!(fact(&consumed, "consumed"), "1000");
    let read_by_franz = records(&consumed);
    assert!(in_key_order(&read_by_franz));
    let franz_values: BTreeSet<&str> = read_by_franz.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(franz_values, values, "both clients read the same records");
}

/// Our producer writes the input; franz-go copies it in transactions
/// (GroupTransactSession: offsets in the committed transactions), aborting
/// every third transaction and re-reading its input; read_committed
/// readers of both clients then see each input record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn franz_go_transactions_with_aborts_read_committed_by_both_clients() {
    let Some(peer) = peer() else { return };
    let cluster = three_brokers().await;
    cluster.create_topic("f-in", 3).expect("topic");
    cluster.create_topic("f-out", 3).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let input = producer(&bootstrap, &[]);
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let record = ProducerRecord::new("f-in")
            .key(format!("k{}", i % 7))
            .value(i.to_string());
        deliveries.push(input.send(record).await.expect("queued"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    input.close(Duration::from_secs(5)).await.expect("close");

    let copied = franz(
        &peer,
        &[
            "copy", &bootstrap, "f-in", "f-out", "f-copier", "f-txn", "300", "3",
        ],
    )
    .await;
    let summary = fact(&copied, "copied");
    assert!(summary.starts_with("300 in "), "{summary}");
    assert!(
        !summary.ends_with(" 0 aborted"),
        "some transactions aborted: {summary}"
    );

    let franz_read = franz(&peer, &["read-committed", &bootstrap, "f-out", "300"]).await;
    let pairs = records(&franz_read);
    let values: BTreeSet<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        pairs.len(),
        300,
        "no aborted copy is visible: {}",
        fact(&franz_read, "read")
    );
    assert_eq!(values.len(), 300, "no duplicates");
    assert!(in_key_order(&pairs));

    let mut ours = consumer(&bootstrap, &[("isolation.level", "read_committed")]);
    ours.assign((0..3).map(|p| TopicPartition::new("f-out", p)));
    let ours_read: Vec<String> = read(&mut ours, 300, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| text(&r.value))
        .collect();
    let expected: BTreeSet<String> = (0..300).map(|i| format!("copied-{i}")).collect();
    assert_eq!(
        ours_read.len(),
        300,
        "our read_committed consumer: no aborted copy"
    );
    assert_eq!(
        ours_read.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "our read_committed consumer sees the same"
    );
    ours.close().await.expect("close");
}

/// Our idempotent producer writes 2,000 keyed records with each codec to
/// kfake and our group consumer reads them all back, each key's records in
/// the order sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_produce_and_group_consume_with_every_codec_on_kfake() {
    const RECORDS: usize = 2_000;
    let Some(peer) = peer() else { return };
    let topics: Vec<String> = CODECS.iter().map(|c| format!("codec-{c}")).collect();
    let specs: Vec<(&str, i32)> = topics.iter().map(|t| (t.as_str(), 3)).collect();
    let kfake = kfake(&peer, &specs).await;
    for (codec, topic) in CODECS.iter().zip(&topics) {
        let producer = producer(
            &kfake.bootstrap,
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
                .unwrap_or_else(|e| panic!("kfake {codec}: {e}"));
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("close");

        let mut consumer = consumer(&kfake.bootstrap, &[("group.id", &format!("g-{codec}"))]);
        consumer.subscribe(&[topic.as_str()]).expect("subscribe");
        let records = read(&mut consumer, RECORDS, Duration::from_secs(60)).await;
        consumer.close().await.expect("close");
        assert_eq!(records.len(), RECORDS, "kfake {codec}: every record, once");
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
                "kfake {codec}: {key} in the order sent"
            );
        }
        let distinct: BTreeSet<usize> = by_key.values().flatten().copied().collect();
        assert_eq!(distinct.len(), RECORDS, "kfake {codec}: no duplicates");
    }
}

/// A transaction that commits and one that aborts, both with offsets sent
/// to the transaction, on kfake: the group keeps the committed
/// transaction's offset only, a read_uncommitted reader sees both
/// transactions' records (so the aborted ones are in the log), and a
/// read_committed reader only the committed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_abort_on_kfake() {
    let Some(peer) = peer() else { return };
    let kfake = kfake(&peer, &[("txn-in", 1), ("txn-out", 1)]).await;
    let plain = producer(&kfake.bootstrap, &[]);
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

    // A live member, so that kfake's generation check on the offsets
    // (KIP-447) has something to check.
    let mut input = consumer(
        &kfake.bootstrap,
        &[("group.id", "txn-group"), ("enable.auto.commit", "false")],
    );
    input.subscribe(&["txn-in"]).expect("subscribe");
    let read_in = read(&mut input, 10, Duration::from_secs(30)).await;
    assert_eq!(read_in.len(), 10);

    let txn_in_0 = TopicPartition::new("txn-in", 0);
    let txn = producer(&kfake.bootstrap, &[("transactional.id", "kfake-txn")]);
    let timeout = Duration::from_secs(20);
    txn.init_transactions(timeout)
        .await
        .expect("init_transactions");
    for (prefix, processed, commit) in [("kept", 5i64, true), ("aborted", 10, false)] {
        txn.begin_transaction().expect("begin");
        for i in 0..5 {
            txn.send(
                ProducerRecord::new("txn-out")
                    .partition(0)
                    .value(format!("{prefix}-{i}")),
            )
            .await
            .expect("queued");
        }
        let offsets = BTreeMap::from([(txn_in_0.clone(), processed)]);
        txn.send_offsets_to_transaction(&offsets, &input.group_metadata(), timeout)
            .await
            .expect("send_offsets_to_transaction");
        if commit {
            txn.commit_transaction(timeout).await.expect("commit");
        } else {
            // Written before the abort, so the log holds them ahead of its marker.
            txn.flush().await.expect("flush");
            txn.abort_transaction(timeout).await.expect("abort");
        }
    }
    txn.close(Duration::from_secs(5)).await.expect("close");
    input.close().await.expect("close");

    // Past the abort marker: a reader that got this has seen all before it.
    plain
        .send(ProducerRecord::new("txn-out").partition(0).value("after"))
        .await
        .expect("queued")
        .await
        .expect("delivered");
    plain.close(Duration::from_secs(5)).await.expect("close");

    let mut check = consumer(&kfake.bootstrap, &[("group.id", "txn-group")]);
    check.assign([txn_in_0.clone()]);
    let committed = check.committed(&[txn_in_0]).await.expect("committed");
    assert_eq!(
        committed.values().copied().collect::<Vec<_>>(),
        [5],
        "the committed transaction's offset; the aborted one's dropped"
    );
    check.close().await.expect("close");

    let kept: Vec<String> = (0..5).map(|i| format!("kept-{i}")).collect();
    let aborted: Vec<String> = (0..5).map(|i| format!("aborted-{i}")).collect();
    let after = ["after".to_owned()];
    for (isolation, expected) in [
        (
            "read_uncommitted",
            [&kept[..], &aborted[..], &after[..]].concat(),
        ),
        ("read_committed", [&kept[..], &after[..]].concat()),
    ] {
        let mut reader = consumer(&kfake.bootstrap, &[("isolation.level", isolation)]);
        reader.assign([TopicPartition::new("txn-out", 0)]);
        let values: Vec<String> = read(&mut reader, expected.len(), Duration::from_secs(30))
            .await
            .iter()
            .map(|r| text(&r.value))
            .collect();
        reader.close().await.expect("close");
        assert_eq!(values, expected, "{isolation}, markers skipped");
    }
}
