//! What the root interop tests share: clients configured by Kafka property
//! names, reading until a count, the peers' one-fact-per-line output, and
//! third-party brokers run as child processes that print their bootstrap
//! servers. Each test binary uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_sdk::client::consumer::{Consumer, ConsumerConfig, ConsumerRecord};
use kafka_sdk::client::producer::{Producer, ProducerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Skips (or, in CI, fails) when a peer is missing.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what} is not installed; .ci/run installs it"
    );
    eprintln!("skipped: {what} is not installed (bash .ci/run installs it)");
    None
}

pub async fn three_brokers() -> Cluster {
    Cluster::start(BrokerConfig {
        brokers: 3,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster")
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut config = ProducerConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .expect("bootstrap");
    for (name, value) in extra {
        config.set(name, value).expect("producer property");
    }
    Producer::new(config.build().expect("producer config")).expect("producer")
}

/// A consumer from the earliest offset, with `extra` properties.
pub fn consumer(bootstrap: &str, extra: &[(&str, &str)]) -> Consumer {
    let mut config = ConsumerConfig::new();
    config.bootstrap_servers(bootstrap).expect("bootstrap");
    config.set("auto.offset.reset", "earliest").expect("reset");
    for (name, value) in extra {
        config.set(name, value).expect("consumer property");
    }
    Consumer::new(config.build().expect("consumer config")).expect("consumer")
}

/// Polls until `count` records arrived or `limit` passed.
pub async fn read(consumer: &mut Consumer, count: usize, limit: Duration) -> Vec<ConsumerRecord> {
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

pub fn text(bytes: &Option<bytes::Bytes>) -> String {
    String::from_utf8(bytes.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

/// Whether each key's values, in the order seen, ascend (per-partition
/// order); values may carry a `copied-` prefix.
pub fn in_key_order(pairs: &[(String, String)]) -> bool {
    let mut by_key: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (k, v) in pairs {
        let n = v.trim_start_matches("copied-").parse().expect("number");
        by_key.entry(k).or_default().push(n);
    }
    by_key.values().all(|v| v.windows(2).all(|w| w[0] < w[1]))
}

/// Runs a peer program to completion (at most 120 s) and returns its
/// output lines; panics with its stderr if it fails.
pub async fn run_peer(mut command: Command, what: &str) -> Vec<String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} starts: {e}"));
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} finishes within 120 s"))
        .expect("peer output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{what} failed: {}",
        stderr.lines().rev().take(30).collect::<Vec<_>>().join("\n")
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The value of the first `name value...` line of a peer's output.
pub fn fact<'a>(lines: &'a [String], name: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no `{name}` line in {lines:?}"))
}

/// (key, value) of every `record PARTITION OFFSET key=value` line.
pub fn records(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("record "))
        .map(|rest| {
            let kv = rest.splitn(3, ' ').nth(2).expect("key=value");
            let (k, v) = kv.split_once('=').expect("=");
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// A third-party broker in a child process that prints its bootstrap
/// servers on one line and serves until its stdin closes (dropping this);
/// killed if it does not.
pub struct ChildBroker {
    _child: Child,
    pub bootstrap: String,
}

impl ChildBroker {
    /// Starts `command` with `--topic NAME:PARTITIONS` for each of
    /// `topics` and waits (at most 20 s) for its bootstrap line.
    pub async fn start(mut command: Command, what: &str, topics: &[(&str, i32)]) -> Self {
        for (name, partitions) in topics {
            command.arg("--topic").arg(format!("{name}:{partitions}"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{what} starts: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(20),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .unwrap_or_else(|_| panic!("{what} prints its bootstrap servers within 20 s"))
        .expect("read the bootstrap line");
        let bootstrap = line.trim().to_owned();
        assert!(
            bootstrap.starts_with("127.0.0.1:"),
            "bootstrap: {bootstrap:?}"
        );
        Self {
            _child: child,
            bootstrap,
        }
    }
}
