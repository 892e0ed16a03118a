//! Re-captures the real-client fixtures under `tests/fixtures/` by pointing
//! real Kafka clients at the capture listener (`tests/support/capture.rs`).
//!
//! Ignored by default: it needs `kcat` (Debian package) and `kafka-python`
//! (+ `python-snappy`, `lz4`, `zstandard` for its codecs) installed. Run with
//!
//! ```text
//! cargo test -p kafka-protocol --test capture_fixtures -- --ignored --test-threads=1
//! ```
//!
//! Each test wipes and rewrites its client's fixture directory. The values
//! produced are the ones `tests/fixtures.rs` checks.

#[allow(dead_code)]
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::ApiKey;
use support::capture::{CaptureListener, Captured, Config};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn fixtures_dir(client: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(client)
}

/// The values a scenario produces: `fixture-<client>-<what>-0` .. `-9`.
fn values(client: &str, what: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("fixture-{client}-{what}-{i}"))
        .collect()
}

struct Output {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

/// Runs `timeout -s SIGNAL SECS program args..`, feeding `stdin`, and also
/// enforces the limit from this side (kill) in case `timeout` misbehaves.
fn run(program: &str, args: &[String], stdin: Option<&str>, secs: u64, signal: &str) -> Output {
    let mut child = Command::new("timeout")
        .arg("-s")
        .arg(signal)
        .arg(secs.to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs + 10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
        status,
    }
}

/// Starts a listener, lets `client` talk to it, stops it and returns what it
/// captured (after printing a summary and any listener notes).
fn session(
    label: &str,
    topics: &[&str],
    fetch_values: Vec<String>,
    client: impl FnOnce(&str) -> Output,
) -> (Vec<Captured>, Output) {
    let listener = CaptureListener::start(Config {
        topics: topics.iter().map(|t| t.to_string()).collect(),
        partitions: 1,
        fetch_values,
        deadline: Duration::from_secs(60),
    })
    .expect("listener starts");
    let output = client(&listener.bootstrap());
    let (captured, notes) = listener.stop();
    let summary: Vec<String> = captured
        .iter()
        .map(|c| {
            let name = c.api().map_or("?", ApiKey::name);
            format!("{name}v{}", c.api_version)
        })
        .collect();
    eprintln!(
        "== {label}: exit {:?}, {} requests: {}",
        output.status,
        captured.len(),
        summary.join(" ")
    );
    for note in &notes {
        eprintln!("   listener note: {note}");
    }
    assert!(
        !notes.iter().any(|n| n.contains("CODEC")),
        "{label}: the codec failed on a real request: {notes:?}\nclient stderr:\n{}",
        output.stderr
    );
    (captured, output)
}

/// Writes the `nth` request of `api` (among those matching `pick`) to
/// `<client>/<api>_v<version>[_<what>].bin`.
fn save(
    client: &str,
    captured: &[Captured],
    api: ApiKey,
    nth: usize,
    what: &str,
    pick: impl Fn(&Captured) -> bool,
) -> Option<PathBuf> {
    let found = captured
        .iter()
        .filter(|c| c.api() == Some(api) && pick(c))
        .nth(nth)?;
    let suffix = if what.is_empty() {
        String::new()
    } else {
        format!("_{what}")
    };
    let name = format!(
        "{}_v{}{suffix}.bin",
        support::snake_case(api),
        found.api_version
    );
    let path = fixtures_dir(client).join(name);
    std::fs::write(&path, &found.frame).expect("write fixture");
    eprintln!("   saved {}", path.display());
    Some(path)
}

fn must_save(
    client: &str,
    captured: &[Captured],
    api: ApiKey,
    nth: usize,
    what: &str,
    pick: impl Fn(&Captured) -> bool,
    output: &Output,
) {
    if save(client, captured, api, nth, what, pick).is_none() {
        panic!(
            "{client}: no {} request #{nth} ({what}) was captured.\nclient stdout:\n{}\nclient stderr:\n{}",
            api.name(),
            output.stdout,
            output.stderr
        );
    }
}

fn any(_: &Captured) -> bool {
    true
}

fn wipe(client: &str) {
    let dir = fixtures_dir(client);
    std::fs::create_dir_all(&dir).expect("fixture dir");
    for entry in std::fs::read_dir(&dir).expect("read fixture dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "bin") {
            std::fs::remove_file(path).expect("remove old fixture");
        }
    }
}

fn kcat(bootstrap: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-b".into(),
        bootstrap.into(),
        "-X".into(),
        "client.id=fixture-kcat".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
#[ignore = "needs kcat installed; re-captures tests/fixtures/kcat"]
fn capture_kcat() {
    const C: &str = "kcat";
    wipe(C);

    // Metadata listing: ApiVersions + Metadata for a named topic.
    let topic = "fixture-kcat-metadata";
    let (captured, out) = session("kcat -L", &[topic], vec![], |b| {
        run("kcat", &kcat(b, &["-L", "-t", topic]), None, 20, "TERM")
    });
    assert!(
        out.stdout.contains(topic),
        "kcat -L lists the topic: {}",
        out.stdout
    );
    must_save(C, &captured, ApiKey::ApiVersions, 0, "", any, &out);
    must_save(
        C,
        &captured,
        ApiKey::Metadata,
        0,
        "",
        |c| c.contains(topic.as_bytes()),
        &out,
    );

    // Produce, once per codec.
    for codec in CODECS {
        let topic = format!("fixture-kcat-{codec}");
        let lines = values(C, codec, 10).join("\n") + "\n";
        let (captured, out) = session(&format!("kcat -P {codec}"), &[], vec![], |b| {
            let args = kcat(
                b,
                &[
                    "-P",
                    "-t",
                    &topic,
                    "-p",
                    "0",
                    "-X",
                    &format!("compression.codec={codec}"),
                    "-X",
                    "linger.ms=200",
                ],
            );
            run("kcat", &args, Some(&lines), 20, "TERM")
        });
        must_save(C, &captured, ApiKey::Produce, 0, codec, any, &out);
    }

    // Plain consume: ListOffsets (-o beginning) + Fetch, 3 stored records.
    let topic = "fixture-kcat-consume";
    let stored = values(C, "stored", 3);
    let (captured, out) = session("kcat -C", &[topic], stored.clone(), |b| {
        let args = kcat(b, &["-C", "-t", topic, "-p", "0", "-o", "beginning", "-e"]);
        run("kcat", &args, None, 20, "TERM")
    });
    for value in &stored {
        assert!(
            out.stdout.contains(value.as_str()),
            "kcat -C printed {value}: {}",
            out.stdout
        );
    }
    must_save(C, &captured, ApiKey::ListOffsets, 0, "", any, &out);
    must_save(C, &captured, ApiKey::Fetch, 0, "", any, &out);

    // Group consume: FindCoordinator, JoinGroup (twice: KIP-394), SyncGroup,
    // OffsetFetch, then on SIGINT OffsetCommit + LeaveGroup.
    let topic = "fixture-kcat-group-topic";
    let (captured, out) = session("kcat -G", &[topic], values(C, "stored", 3), |b| {
        let args = kcat(
            b,
            &[
                "-G",
                "fixture-kcat-group",
                topic,
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "heartbeat.interval.ms=500",
            ],
        );
        run("kcat", &args, None, 6, "INT")
    });
    must_save(C, &captured, ApiKey::FindCoordinator, 0, "", any, &out);
    must_save(C, &captured, ApiKey::JoinGroup, 0, "", any, &out);
    let _ = save(C, &captured, ApiKey::JoinGroup, 1, "rejoin", any);
    // The leader's SyncGroup that assigns the topic (kafka-python first syncs
    // an empty assignment before it has the topic's metadata, then rejoins).
    let assigns = |c: &Captured| c.contains(topic.as_bytes());
    must_save(C, &captured, ApiKey::SyncGroup, 0, "", assigns, &out);
    must_save(C, &captured, ApiKey::OffsetFetch, 0, "", any, &out);
    let _ = save(C, &captured, ApiKey::Heartbeat, 0, "", any);
    let _ = save(C, &captured, ApiKey::OffsetCommit, 0, "", any);
    let _ = save(C, &captured, ApiKey::LeaveGroup, 0, "", any);

    // Idempotent produce: InitProducerId, then a Produce with producer id 1000.
    let topic = "fixture-kcat-idempotent";
    let lines = values(C, "idempotent", 10).join("\n") + "\n";
    let (captured, out) = session("kcat -P idempotent", &[], vec![], |b| {
        let args = kcat(
            b,
            &[
                "-P",
                "-t",
                topic,
                "-p",
                "0",
                "-X",
                "enable.idempotence=true",
                "-X",
                "linger.ms=200",
            ],
        );
        run("kcat", &args, Some(&lines), 20, "TERM")
    });
    must_save(
        C,
        &captured,
        ApiKey::InitProducerId,
        0,
        "idempotent",
        any,
        &out,
    );
    must_save(C, &captured, ApiKey::Produce, 0, "idempotent", any, &out);

    // Transactional produce.
    let topic = "fixture-kcat-transactional";
    let lines = values(C, "transactional", 10).join("\n") + "\n";
    let (captured, out) = session("kcat -P transactional", &[], vec![], |b| {
        let args = kcat(
            b,
            &[
                "-P",
                "-t",
                topic,
                "-p",
                "0",
                "-X",
                "transactional.id=fixture-kcat-txn",
                "-X",
                "linger.ms=200",
            ],
        );
        run("kcat", &args, Some(&lines), 20, "TERM")
    });
    let txn = |c: &Captured| c.contains(b"fixture-kcat-txn");
    must_save(
        C,
        &captured,
        ApiKey::FindCoordinator,
        0,
        "transaction",
        txn,
        &out,
    );
    must_save(
        C,
        &captured,
        ApiKey::InitProducerId,
        0,
        "transactional",
        any,
        &out,
    );
    must_save(C, &captured, ApiKey::AddPartitionsToTxn, 0, "", any, &out);
    must_save(C, &captured, ApiKey::Produce, 0, "transactional", any, &out);
    must_save(C, &captured, ApiKey::EndTxn, 0, "", any, &out);
}

/// One script for every kafka-python scenario: `python3 -c SCRIPT mode bootstrap topic`.
const PYTHON: &str = r#"
import sys
from kafka import KafkaProducer, KafkaConsumer, TopicPartition
mode, bootstrap, topic = sys.argv[1:4]
common = dict(bootstrap_servers=bootstrap, client_id='fixture-kafka-python',
              request_timeout_ms=8000)

def values(what):
    return ['fixture-kafka-python-%s-%d' % (what, i) for i in range(10)]

def produce(what, **config):
    producer = KafkaProducer(linger_ms=200, max_block_ms=10000, **config, **common)
    if config.get('transactional_id'):
        producer.init_transactions()
        producer.begin_transaction()
    for value in values(what):
        producer.send(topic, value=value.encode(), partition=0)
    if config.get('transactional_id'):
        producer.commit_transaction()
    producer.flush(timeout=10)
    producer.close(timeout=5)

if mode == 'metadata':
    consumer = KafkaConsumer(**common)
    print(sorted(consumer.topics()))
    consumer.close()
    producer = KafkaProducer(max_block_ms=10000, **common)
    print(producer.partitions_for(topic))
    producer.close(timeout=5)
elif mode.startswith('produce-'):
    codec = mode.split('-', 1)[1]
    produce(codec, compression_type=None if codec == 'none' else codec, enable_idempotence=False)
elif mode == 'idempotent':
    produce('idempotent', enable_idempotence=True)
elif mode == 'transactional':
    produce('transactional', transactional_id='fixture-kafka-python-txn')
elif mode == 'consume':
    consumer = KafkaConsumer(auto_offset_reset='earliest', enable_auto_commit=False,
                             consumer_timeout_ms=3000, **common)
    consumer.assign([TopicPartition(topic, 0)])
    for message in consumer:
        print(message.value.decode())
    consumer.close()
elif mode == 'group':
    consumer = KafkaConsumer(topic, group_id='fixture-kafka-python-group',
                             auto_offset_reset='earliest', consumer_timeout_ms=5000,
                             heartbeat_interval_ms=500, **common)
    for message in consumer:
        print(message.value.decode())
    consumer.commit()
    consumer.close()
else:
    raise SystemExit('unknown mode ' + mode)
"#;

fn python(bootstrap: &str, mode: &str, topic: &str) -> Output {
    let args = vec![
        "-c".to_string(),
        PYTHON.to_string(),
        mode.to_string(),
        bootstrap.to_string(),
        topic.to_string(),
    ];
    let out = run("python3", &args, None, 30, "TERM");
    if out.status != Some(0) {
        eprintln!("python3 {mode} exited {:?}:\n{}", out.status, out.stderr);
    }
    out
}

#[test]
#[ignore = "needs kafka-python installed; re-captures tests/fixtures/kafka_python"]
fn capture_kafka_python() {
    const C: &str = "kafka_python";
    wipe(C);

    let topic = "fixture-kafka-python-metadata";
    let (captured, out) = session("python metadata", &[topic], vec![], |b| {
        python(b, "metadata", topic)
    });
    assert!(
        out.stdout.contains(topic),
        "topics() lists the topic: {}",
        out.stdout
    );
    must_save(C, &captured, ApiKey::ApiVersions, 0, "", any, &out);
    must_save(
        C,
        &captured,
        ApiKey::Metadata,
        0,
        "",
        |c| c.contains(topic.as_bytes()),
        &out,
    );

    for codec in CODECS {
        let topic = format!("fixture-kafka-python-{codec}");
        let (captured, out) = session(&format!("python produce {codec}"), &[], vec![], |b| {
            python(b, &format!("produce-{codec}"), &topic)
        });
        must_save(C, &captured, ApiKey::Produce, 0, codec, any, &out);
    }

    let topic = "fixture-kafka-python-consume";
    let stored = values("kafka-python", "stored", 3);
    let (captured, out) = session("python consume", &[topic], stored.clone(), |b| {
        python(b, "consume", topic)
    });
    for value in &stored {
        assert!(
            out.stdout.contains(value.as_str()),
            "consumer printed {value}: {}",
            out.stdout
        );
    }
    must_save(C, &captured, ApiKey::ListOffsets, 0, "", any, &out);
    must_save(C, &captured, ApiKey::Fetch, 0, "", any, &out);

    let topic = "fixture-kafka-python-group-topic";
    let (captured, out) = session("python group", &[topic], stored.clone(), |b| {
        python(b, "group", topic)
    });
    must_save(C, &captured, ApiKey::FindCoordinator, 0, "", any, &out);
    must_save(C, &captured, ApiKey::JoinGroup, 0, "", any, &out);
    let _ = save(C, &captured, ApiKey::JoinGroup, 1, "rejoin", any);
    // The leader's SyncGroup that assigns the topic (kafka-python first syncs
    // an empty assignment before it has the topic's metadata, then rejoins).
    let assigns = |c: &Captured| c.contains(topic.as_bytes());
    must_save(C, &captured, ApiKey::SyncGroup, 0, "", assigns, &out);
    must_save(C, &captured, ApiKey::OffsetFetch, 0, "", any, &out);
    let _ = save(C, &captured, ApiKey::Heartbeat, 0, "", any);
    let _ = save(C, &captured, ApiKey::OffsetCommit, 0, "", any);
    let _ = save(C, &captured, ApiKey::LeaveGroup, 0, "", any);

    let topic = "fixture-kafka-python-idempotent";
    let (captured, out) = session("python idempotent", &[], vec![], |b| {
        python(b, "idempotent", topic)
    });
    must_save(
        C,
        &captured,
        ApiKey::InitProducerId,
        0,
        "idempotent",
        any,
        &out,
    );
    must_save(C, &captured, ApiKey::Produce, 0, "idempotent", any, &out);

    let topic = "fixture-kafka-python-transactional";
    let (captured, out) = session("python transactional", &[], vec![], |b| {
        python(b, "transactional", topic)
    });
    let txn = |c: &Captured| c.contains(b"fixture-kafka-python-txn");
    must_save(
        C,
        &captured,
        ApiKey::FindCoordinator,
        0,
        "transaction",
        txn,
        &out,
    );
    must_save(
        C,
        &captured,
        ApiKey::InitProducerId,
        0,
        "transactional",
        any,
        &out,
    );
    must_save(C, &captured, ApiKey::AddPartitionsToTxn, 0, "", any, &out);
    must_save(C, &captured, ApiKey::Produce, 0, "transactional", any, &out);
    must_save(C, &captured, ApiKey::EndTxn, 0, "", any, &out);
}
