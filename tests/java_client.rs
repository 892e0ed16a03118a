//! The Java client (kafka-clients 4.1.1, the reference) against the bundled
//! broker, beside this SDK's client: an idempotent Java producer read by
//! both clients' groups, a transactional consume-process-produce loop with
//! aborts read by both clients' read_committed consumers, and the Java
//! admin client's topic, config and group calls.
//!
//! The Java program is `interop/java/src/JavaPeer.java`, compiled by
//! `interop/java/build.sh` into a cache. Without a JDK or that cache,
//! `cargo test` skips these with a note; in CI (`CI` set) they must run.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kafka_sdk::client::producer::{Producer, ProducerConfig, ProducerRecord};
use support::{consumer, fact, in_key_order, read, records, run_peer, text, three_brokers};
use tokio::process::Command;

const JAVA_CLIENT_VERSION: &str = "4.1.1";

/// The compiled peer's directory (`classes/` and `libs/`), if built.
fn peer() -> Option<PathBuf> {
    let cache = std::env::var_os("KAFKA_SDK_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kafka-sdk")))?;
    let dir = cache.join(format!("java-peer-{JAVA_CLIENT_VERSION}"));
    let java_on_path = std::process::Command::new("java")
        .arg("-version")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if java_on_path && dir.join("classes/JavaPeer.class").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the Java peer is not built; .ci/run runs interop/java/build.sh"
    );
    eprintln!("skipped: no JDK or no Java peer (bash interop/java/build.sh builds it)");
    None
}

/// Runs a JavaPeer command to completion (at most 120 s) and returns its
/// output lines; panics with its stderr if it fails.
async fn java(peer: &Path, args: &[&str]) -> Vec<String> {
    let classpath = format!("{}/classes:{}/libs/*", peer.display(), peer.display());
    let mut command = Command::new("java");
    command
        .args(["-Xmx256m", "-cp", &classpath, "JavaPeer"])
        .args(args);
    run_peer(command, &format!("JavaPeer {args:?}")).await
}

/// A Java idempotent producer's records, read by our group consumer and
/// by a Java group consumer; then the Java admin client creates, describes
/// and deletes a topic and describes the Java group and its offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_producer_consumer_and_admin_against_the_bundled_broker() {
    let Some(peer) = peer() else { return };
    let cluster = three_brokers().await;
    cluster.create_topic("j-orders", 6).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let produced = java(&peer, &["produce", &bootstrap, "j-orders", "1000"]).await;
    assert_eq!(fact(&produced, "produced"), "1000");

    let mut ours = consumer(&bootstrap, &[("group.id", "ours")]);
    ours.subscribe(&["j-orders"]).expect("subscribe");
    let read_by_us: Vec<(String, String)> = read(&mut ours, 1000, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| (text(&r.key), text(&r.value)))
        .collect();
    ours.close().await.expect("close");
    assert_eq!(read_by_us.len(), 1000);
    let values: BTreeSet<&str> = read_by_us.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values.len(), 1000, "every Java record once");
    assert!(in_key_order(&read_by_us));

    let consumed = java(
        &peer,
        &["consume", &bootstrap, "j-orders", "theirs", "1000"],
    )
    .await;
    assert_eq!(fact(&consumed, "consumed"), "1000");
    let read_by_java = records(&consumed);
    assert!(in_key_order(&read_by_java));
    let java_values: BTreeSet<&str> = read_by_java.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(java_values, values, "both clients read the same records");

    let admin = java(&peer, &["admin", &bootstrap, "j-admin", "theirs"]).await;
    assert_eq!(fact(&admin, "created"), "j-admin");
    assert_eq!(fact(&admin, "partitions"), "4");
    assert_eq!(fact(&admin, "topic-id-set"), "true");
    assert_eq!(fact(&admin, "retention.ms"), "3600000");
    assert_eq!(fact(&admin, "names"), "true");
    assert_eq!(fact(&admin, "group-state"), "Empty");
    assert_eq!(fact(&admin, "group-offsets-total"), "1000");
    assert_eq!(fact(&admin, "deleted"), "j-admin");
}

/// Our producer writes the input; the Java client copies it in
/// transactions with sendOffsetsToTransaction, aborting every third
/// transaction and re-reading its input; read_committed readers of both
/// clients then see each input record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_transactions_with_aborts_read_committed_by_both_clients() {
    let Some(peer) = peer() else { return };
    let cluster = three_brokers().await;
    cluster.create_topic("j-in", 3).expect("topic");
    cluster.create_topic("j-out", 3).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let producer = Producer::new(
        ProducerConfig::from_properties([("bootstrap.servers", bootstrap.as_str())])
            .and_then(|c| c.build())
            .expect("config"),
    )
    .expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..300 {
        let record = ProducerRecord::new("j-in")
            .key(format!("k{}", i % 7))
            .value(i.to_string());
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    for d in deliveries {
        d.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");

    let copied = java(
        &peer,
        &[
            "copy", &bootstrap, "j-in", "j-out", "j-copier", "j-txn", "300", "3",
        ],
    )
    .await;
    let summary = fact(&copied, "copied");
    assert!(summary.starts_with("300 in "), "{summary}");
    assert!(
        !summary.ends_with(" 0 aborted"),
        "some transactions aborted: {summary}"
    );

    let java_read = java(&peer, &["read-committed", &bootstrap, "j-out", "300"]).await;
    let pairs = records(&java_read);
    let values: BTreeSet<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        pairs.len(),
        300,
        "no aborted copy is visible: {}",
        fact(&java_read, "read")
    );
    assert_eq!(values.len(), 300, "no duplicates");
    assert!(in_key_order(&pairs));

    let mut ours = consumer(&bootstrap, &[("isolation.level", "read_committed")]);
    ours.assign((0..3).map(|p| kafka_sdk::client::producer::TopicPartition::new("j-out", p)));
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
