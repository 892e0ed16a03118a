//! librdkafka (through `kcat`) against the bundled broker: metadata,
//! produce and consume with every codec, and an idempotent producer whose
//! responses get lost.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_broker::protocol::ApiKey;
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(120);

fn kcat(bootstrap: &str) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", bootstrap, "-X", "broker.address.family=v4"]);
    command
}

async fn produce(bootstrap: &str, topic: &str, extra: &[&str], lines: &[String]) {
    let input = lines.join("\n") + "\n";
    let mut command = kcat(bootstrap);
    command.args(["-P", "-t", topic]).args(extra);
    support::run(&mut command, Some(input.as_bytes()), LIMIT).await;
}

/// Every value in the topic, read from the beginning to the end.
async fn consume(bootstrap: &str, topic: &str) -> Vec<String> {
    let mut command = kcat(bootstrap);
    command.args([
        "-C",
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%s\n",
    ]);
    let output = support::run(&mut command, None, LIMIT).await;
    String::from_utf8(output.stdout)
        .expect("utf-8 values")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many times each value occurs.
fn counts(values: &[String]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for v in values {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_lists_metadata_of_every_broker_and_topic() {
    if support::tool("kcat").is_none() {
        return;
    }
    let broker = support::BrokerProcess::start(&["--brokers", "3", "--default-partitions", "5"]);
    // Producing one message auto-creates the topic with the default partitions.
    produce(&broker.bootstrap, "listed", &[], &["hello".to_owned()]).await;
    let mut command = kcat(&broker.bootstrap);
    command.args(["-L"]);
    let output = support::run(&mut command, None, LIMIT).await;
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(listing.contains("3 brokers:"), "{listing}");
    assert!(
        listing.contains("topic \"listed\" with 5 partitions"),
        "{listing}"
    );
    for (id, addr) in broker.bootstrap.split(',').enumerate() {
        assert!(
            listing.contains(&format!("broker {id} at {addr}")),
            "broker {id} missing:\n{listing}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trips_ten_thousand_messages_with_every_codec() {
    if support::tool("kcat").is_none() {
        return;
    }
    let broker = support::BrokerProcess::start(&["--brokers", "3", "--default-partitions", "3"]);
    let bootstrap = broker.bootstrap.clone();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        let values: Vec<String> = (0..10_000)
            .map(|i| format!("{codec}-message-{i:05}"))
            .collect();
        produce(&bootstrap, &topic, &["-z", codec], &values).await;
        let mut seen = consume(&bootstrap, &topic).await;
        assert_eq!(seen.len(), values.len(), "{codec}: count");
        seen.sort();
        assert_eq!(seen, values, "{codec}: values");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_kcat_producer_leaves_no_duplicates_when_responses_are_lost() {
    if support::tool("kcat").is_none() {
        return;
    }
    // Three brokers: kcat gives up when every broker connection is down at once,
    // and librdkafka closes the connection of a timed-out request.
    let cluster = support::cluster(3, 2).await;
    let bootstrap = cluster.bootstrap_servers();
    // The broker appends these produce requests but never answers them, so
    // librdkafka times them out and retries the same batches.
    let dropped = cluster.drop_responses(ApiKey::Produce, 3);
    let values: Vec<String> = (0..2_000).map(|i| format!("idempotent-{i:04}")).collect();
    produce(
        &bootstrap,
        "idempotent",
        &[
            "-X",
            "enable.idempotence=true",
            "-X",
            "socket.timeout.ms=2000",
            "-X",
            "request.timeout.ms=2000",
            "-X",
            "message.timeout.ms=60000",
            "-X",
            "linger.ms=5",
            "-X",
            "batch.num.messages=200",
        ],
        &values,
    )
    .await;
    assert_eq!(dropped.hits(), 3, "all three drops were used");
    let seen = consume(&bootstrap, "idempotent").await;
    let counts = counts(&seen);
    let duplicates: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        duplicates.is_empty(),
        "{} values duplicated, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    assert_eq!(counts.len(), values.len(), "every message arrived");
}
