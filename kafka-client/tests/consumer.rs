//! The consumer (manual assignment) against the bundled broker: reading
//! from the start or the end, seeking, and read_committed.

mod support;

use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::consumer::{
    Consumer, ConsumerGroupMetadata, ConsumerRecord, ConsumerSettings, IsolationLevel,
    OffsetAndMetadata, OffsetReset,
};
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings};
use kafka_client::protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_client::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_client::protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest, ProduceRequest,
};
use kafka_client::protocol::records::BatchBuilder;
use support::{cluster, tp};

async fn produce(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    values: impl IntoIterator<Item = String>,
) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::new();
    for value in values {
        deliveries.push(
            producer
                .send(ProducerRecord::new(topic).partition(partition).value(value))
                .await
                .expect("queued"),
        );
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// Polls until `count` records arrived (or 10 s passed).
async fn collect(consumer: &mut Consumer, count: usize) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
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

fn value(r: &ConsumerRecord) -> String {
    String::from_utf8(r.value.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_partitions_are_read_in_order_from_the_start() {
    let cluster = cluster(2).await;
    cluster.create_topic("reads", 2).expect("topic");
    for p in 0..2 {
        produce(&cluster, "reads", p, (0..500).map(|i| format!("p{p}-{i}"))).await;
    }
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.max_poll_records = 100;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign([tp("reads", 0), tp("reads", 1)]);
    let first = consumer.poll(Duration::from_secs(5)).await.expect("poll");
    assert!(
        !first.is_empty() && first.len() <= 100,
        "max.poll.records: {}",
        first.len()
    );
    let mut records = first;
    records.extend(collect(&mut consumer, 1000 - records.len()).await);
    assert_eq!(records.len(), 1000);
    for p in 0..2 {
        let mine: Vec<&ConsumerRecord> = records.iter().filter(|r| r.partition == p).collect();
        assert_eq!(
            mine.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (0..500).collect::<Vec<_>>()
        );
        assert_eq!(value(mine[499]), format!("p{p}-499"));
    }
    assert_eq!(consumer.position(&tp("reads", 0)), Some(500));
    // Seeking back re-reads from there.
    consumer.seek(&tp("reads", 1), 490).expect("seek");
    let again = collect(&mut consumer, 10).await;
    assert_eq!(
        again
            .iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        (490..500).map(|o| (1, o)).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_skips_what_was_there_before() {
    let cluster = cluster(2).await;
    cluster.create_topic("latest", 1).expect("topic");
    produce(&cluster, "latest", 0, (0..10).map(|i| format!("old-{i}"))).await;
    let mut consumer =
        Consumer::new(ConsumerSettings::new(&cluster.bootstrap_servers())).expect("consumer");
    consumer.assign([tp("latest", 0)]);
    assert!(
        consumer
            .poll(Duration::from_millis(300))
            .await
            .expect("poll")
            .is_empty()
    );
    assert_eq!(consumer.position(&tp("latest", 0)), Some(10));
    produce(&cluster, "latest", 0, (0..3).map(|i| format!("new-{i}"))).await;
    let records = collect(&mut consumer, 3).await;
    assert_eq!(
        records.iter().map(value).collect::<Vec<_>>(),
        ["new-0", "new-1", "new-2"]
    );
}

/// Writes one transaction of `values` to `topic`-0 and commits or aborts it.
async fn transaction(network: &Network, id: &str, values: &[&str], commit: bool) {
    // The transaction APIs go to the transaction's coordinator, the
    // records to the partition's leader, as on a real cluster.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let connection = kafka_client::network::find_coordinator(
        network,
        kafka_client::network::CoordinatorKind::Transaction,
        id,
        deadline,
    )
    .await
    .expect("coordinator");
    let leader = network
        .metadata_for("txn")
        .await
        .expect("metadata")
        .leader("txn", 0)
        .map(|b| b.id)
        .expect("a leader");
    let leader = network.broker(leader).await.expect("leader");
    let init = connection
        .send(&InitProducerIdRequest {
            transactional_id: Some(id.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        })
        .await
        .expect("init");
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let added = connection
        .call(
            &AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: id.into(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                    name: "txn".into(),
                    partitions: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            },
            3,
        )
        .await
        .expect("add partitions");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut builder = BatchBuilder::new(1 << 20);
    builder.set_producer(pid, epoch, 0).set_transactional(true);
    for v in values {
        builder
            .append(now, None, Some(v.as_bytes()), &[])
            .expect("append");
    }
    let produced = leader
        .send(&ProduceRequest {
            transactional_id: Some(id.into()),
            acks: -1,
            timeout_ms: 5000,
            topic_data: vec![TopicProduceData {
                name: "txn".into(),
                partition_data: vec![PartitionProduceData {
                    index: 0,
                    records: Some(builder.finish().expect("batch")),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("produce");
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let ended = connection
        .call(
            &EndTxnRequest {
                transactional_id: id.into(),
                producer_id: pid,
                producer_epoch: epoch,
                committed: commit,
                ..Default::default()
            },
            3,
        )
        .await
        .expect("end");
    assert_eq!(ended.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_drops_aborted_records_and_control_records() {
    let cluster = cluster(2).await;
    cluster.create_topic("txn", 1).expect("topic");
    let network = Network::new(NetworkConfig::new(vec![
        cluster
            .bootstrap_servers()
            .split(',')
            .next()
            .expect("broker")
            .to_owned(),
    ]))
    .expect("network");
    transaction(&network, "a", &["kept-1", "kept-2"], true).await;
    transaction(&network, "b", &["dropped-1", "dropped-2"], false).await;
    transaction(&network, "c", &["kept-3"], true).await;
    let read = |isolation| {
        let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
        settings.auto_offset_reset = OffsetReset::Earliest;
        settings.isolation_level = isolation;
        settings
    };
    let mut committed = Consumer::new(read(IsolationLevel::ReadCommitted)).expect("consumer");
    committed.assign([tp("txn", 0)]);
    let records = collect(&mut committed, 3).await;
    assert_eq!(
        records.iter().map(value).collect::<Vec<_>>(),
        ["kept-1", "kept-2", "kept-3"]
    );
    let mut uncommitted = Consumer::new(read(IsolationLevel::ReadUncommitted)).expect("consumer");
    uncommitted.assign([tp("txn", 0)]);
    let records = collect(&mut uncommitted, 5).await;
    assert_eq!(
        records.iter().map(value).collect::<Vec<_>>(),
        ["kept-1", "kept-2", "dropped-1", "dropped-2", "kept-3"],
        "no control records either way"
    );
}

fn group_settings(cluster: &Cluster, group: &str) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some(group.into());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    settings
}

/// Polls and commits until told to stop; returns the values it read.
fn member(
    mut consumer: Consumer,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    assigned: std::sync::Arc<std::sync::Mutex<usize>>,
) -> tokio::task::JoinHandle<(Vec<String>, Consumer)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..1000 {
            if stop.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let records = consumer
                .poll(Duration::from_millis(50))
                .await
                .expect("poll");
            *assigned.lock().expect("lock") = consumer.assignment().len();
            seen.extend(records.iter().map(value));
            if !records.is_empty() {
                consumer.commit().await.expect("commit");
            }
        }
        (seen, consumer)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_splits_partitions_commits_and_resumes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let cluster = cluster(2).await;
    cluster.create_topic("grouped", 4).expect("topic");
    let stop = Arc::new(AtomicBool::new(false));
    let counts = [Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0))];
    let mut members = Vec::new();
    for count in &counts {
        let mut consumer = Consumer::new(group_settings(&cluster, "g1")).expect("consumer");
        consumer.subscribe(&["grouped"]).expect("subscribe");
        members.push(member(consumer, stop.clone(), count.clone()));
    }
    // Both members hold partitions: the group has settled.
    let settled = async {
        loop {
            let (a, b) = (
                *counts[0].lock().expect("lock"),
                *counts[1].lock().expect("lock"),
            );
            if a == 2 && b == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), settled)
        .await
        .expect("group settled with 2 partitions each");
    for p in 0..4 {
        produce(
            &cluster,
            "grouped",
            p,
            (0..50).map(|i| format!("first-{p}-{i}")),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Release);
    let mut all = Vec::new();
    for handle in members {
        let (seen, consumer) = handle.await.expect("member");
        assert!(!seen.is_empty(), "each member read its share");
        all.extend(seen);
        consumer.close().await.expect("leave");
    }
    all.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|p| (0..50).map(move |i| format!("first-{p}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(all, expected, "every record exactly once across the group");
    // A new member of the same group resumes from the commits.
    for p in 0..4 {
        produce(
            &cluster,
            "grouped",
            p,
            (0..5).map(|i| format!("second-{p}-{i}")),
        )
        .await;
    }
    let mut late = Consumer::new(group_settings(&cluster, "g1")).expect("consumer");
    late.subscribe(&["grouped"]).expect("subscribe");
    let records = collect(&mut late, 20).await;
    let mut values: Vec<String> = records.iter().map(value).collect();
    values.sort();
    assert_eq!(values.len(), 20);
    assert!(
        values.iter().all(|v| v.starts_with("second-")),
        "{values:?}"
    );
    late.close().await.expect("leave");
}

/// Polls until `stop`, publishing its assignment size and every value it
/// read.
fn reader(
    mut consumer: Consumer,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    assigned: std::sync::Arc<std::sync::Mutex<usize>>,
    read: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<Consumer> {
    tokio::spawn(async move {
        for _ in 0..2000 {
            if stop.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            let records = consumer
                .poll(Duration::from_millis(50))
                .await
                .expect("poll");
            *assigned.lock().expect("lock") = consumer.assignment().len();
            read.lock().expect("lock").extend(records.iter().map(value));
        }
        consumer
    })
}

/// Waits up to 15 s for `condition`.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Partitions added to a subscribed topic, and a subscribed topic created
/// after the group formed, are assigned and read: the leader sees the
/// partition counts change in the metadata it refreshes every
/// `metadata.max.age.ms` and rebalances, as Java's does. (Before, they
/// went unread until something else rebalanced the group.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_and_topics_that_appear_later_are_assigned_and_read() {
    appearing_partitions_are_read(Vec::new()).await;
}

/// The same with cooperative rebalancing (KIP-429), where the leader's
/// rejoin moves only what has to move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_that_appear_later_are_read_with_cooperative_sticky() {
    use kafka_client::consumer::assignor::CooperativeStickyAssignor;
    appearing_partitions_are_read(vec![std::sync::Arc::new(CooperativeStickyAssignor)]).await;
}

/// Two members subscribe to a topic that then grows from 2 to 4 partitions
/// and to one created afterwards; `assignors` empty for the default.
async fn appearing_partitions_are_read(
    assignors: Vec<std::sync::Arc<dyn kafka_client::consumer::assignor::Assignor>>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let cluster = cluster(2).await;
    cluster.create_topic("growing", 2).expect("topic");
    let stop = Arc::new(AtomicBool::new(false));
    let assigned = [Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0))];
    let read = Arc::new(Mutex::new(Vec::new()));
    let mut members = Vec::new();
    for count in &assigned {
        let mut settings = group_settings(&cluster, "growing-group");
        // metadata.max.age.ms and allow.auto.create.topics.
        settings.network.metadata_max_age = Duration::from_millis(300);
        settings.network.allow_auto_create_topics = false;
        if !assignors.is_empty() {
            settings.assignors = assignors.clone();
        }
        let mut consumer = Consumer::new(settings).expect("consumer");
        consumer
            .subscribe(&["growing", "created-later"])
            .expect("subscribe");
        members.push(reader(consumer, stop.clone(), count.clone(), read.clone()));
    }
    let held = |assigned: &[Arc<Mutex<usize>>; 2]| {
        (
            *assigned[0].lock().expect("lock"),
            *assigned[1].lock().expect("lock"),
        )
    };
    eventually("each member holds one partition", || {
        held(&assigned) == (1, 1)
    })
    .await;

    cluster.add_partitions("growing", 4).expect("partitions");
    eventually("the 4 partitions are shared", || held(&assigned) == (2, 2)).await;
    cluster.create_topic("created-later", 2).expect("topic");
    eventually("the new topic's partitions are shared too", || {
        held(&assigned) == (3, 3)
    })
    .await;

    let mut expected = Vec::new();
    for (topic, partitions) in [("growing", 4), ("created-later", 2)] {
        for p in 0..partitions {
            let values: Vec<String> = (0..10).map(|i| format!("{topic}-{p}-{i}")).collect();
            expected.extend(values.iter().cloned());
            produce(&cluster, topic, p, values).await;
        }
    }
    expected.sort();
    eventually("every record is read", || {
        read.lock().expect("lock").len() >= expected.len()
    })
    .await;
    stop.store(true, Ordering::Release);
    for member in members {
        member.await.expect("member").close().await.expect("close");
    }
    let mut all = read.lock().expect("lock").clone();
    all.sort();
    assert_eq!(all, expected, "every record once, from every partition");
}

/// This client and kafka-python in one group: the range assignment is
/// shared, and every record is read once across the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_shared_with_kafka_python_reads_everything_once() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncBufReadExt;
    let have_python = std::process::Command::new("python3")
        .args(["-c", "import kafka"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_python {
        assert!(
            std::env::var_os("CI").is_none(),
            "kafka-python is not installed; .ci/run installs it"
        );
        eprintln!("skipped: kafka-python is not installed (bash .ci/run installs it)");
        return;
    }
    // Kafka's own default initial rebalance delay (3 s; 1 s here) lets both
    // members' first metadata arrive before the first assignment: without
    // it a kafka-python 3.0 leader can assign from empty metadata, rejoin,
    // and lose track of that rejoin (see kafka-broker/tests/kafka_python.rs).
    let mut config = BrokerConfig {
        brokers: 2,
        ..BrokerConfig::default()
    };
    config.group.initial_rebalance_delay_ms = 1000;
    let cluster = Cluster::start(config).await.expect("cluster");
    cluster.create_topic("mixed", 4).expect("topic");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/group_member.py");
    let mut python = tokio::process::Command::new("python3")
        .args([script, &cluster.bootstrap_servers(), "mixed", "mixed-group"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python");
    let mut python_log = tokio::io::BufReader::new(python.stderr.take().expect("stderr")).lines();
    let python_assigned = Arc::new(Mutex::new(0usize));
    let watcher = {
        let python_assigned = python_assigned.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = python_log.next_line().await {
                if let Some(n) = line.strip_prefix("assigned ").and_then(|n| n.parse().ok()) {
                    *python_assigned.lock().expect("lock") = n;
                }
            }
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let ours_assigned = Arc::new(Mutex::new(0usize));
    let mut consumer = Consumer::new(group_settings(&cluster, "mixed-group")).expect("consumer");
    consumer.subscribe(&["mixed"]).expect("subscribe");
    let ours = member(consumer, stop.clone(), ours_assigned.clone());
    let settled = async {
        loop {
            let (a, b) = (
                *ours_assigned.lock().expect("lock"),
                *python_assigned.lock().expect("lock"),
            );
            if a == 2 && b == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), settled)
        .await
        .expect("the mixed group settled with 2 partitions each");
    // The admin client reads both members as the coordinator holds them,
    // kafka-python's assignment bytes included.
    let admin = kafka_client::admin::Admin::new(kafka_client::admin::AdminSettings::new(
        &cluster.bootstrap_servers(),
    ))
    .expect("admin");
    let described = admin
        .describe_consumer_groups(&["mixed-group"])
        .await
        .expect("describe")
        .all()
        .expect("described");
    let group = &described["mixed-group"];
    assert_eq!((group.state.as_str(), group.members.len()), ("Stable", 2));
    assert!(
        group
            .members
            .iter()
            .any(|m| m.client_id.starts_with("kafka-python")),
        "{:?}",
        group.members
    );
    let mut assigned: Vec<kafka_client::producer::TopicPartition> = group
        .members
        .iter()
        .flat_map(|m| m.assignment.iter().cloned())
        .collect();
    assigned.sort();
    assert_eq!(assigned, (0..4).map(|p| tp("mixed", p)).collect::<Vec<_>>());
    for p in 0..4 {
        produce(&cluster, "mixed", p, (0..25).map(|i| format!("m-{p}-{i}"))).await;
    }
    let output = tokio::time::timeout(Duration::from_secs(40), python.wait_with_output())
        .await
        .expect("python finished")
        .expect("python ran");
    assert!(output.status.success(), "python failed");
    let python_seen: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .trim()
        .trim_matches(['[', ']'])
        .split(", ")
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches('"').to_owned())
        .collect();
    stop.store(true, Ordering::Release);
    let (ours_seen, consumer) = ours.await.expect("member");
    consumer.close().await.expect("leave");
    watcher.abort();
    assert!(
        !python_seen.is_empty() && !ours_seen.is_empty(),
        "both read: python {}, ours {}",
        python_seen.len(),
        ours_seen.len()
    );
    let mut all: Vec<String> = python_seen.into_iter().chain(ours_seen).collect();
    all.sort();
    let mut expected: Vec<String> = (0..4)
        .flat_map(|p| (0..25).map(move |i| format!("m-{p}-{i}")))
        .collect();
    expected.sort();
    assert_eq!(all, expected, "every record once across the mixed group");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_seek_times_and_commits_behave_as_in_java() {
    let cluster = cluster(2).await;
    cluster.create_topic("controls", 2).expect("topic");
    for p in 0..2 {
        produce(
            &cluster,
            "controls",
            p,
            (0..10).map(|i| format!("c-{p}-{i}")),
        )
        .await;
    }
    let mut settings = group_settings(&cluster, "controls-group");
    settings.enable_auto_commit = false;
    settings.max_poll_records = 1;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["controls"]).expect("subscribe");
    // Fetches bring both partitions; poll hands out one record at a time.
    let first = collect(&mut consumer, 1).await;
    assert_eq!(first.len(), 1);
    let (kept, paused) = (first[0].partition, 1 - first[0].partition);
    // Paused partitions are neither fetched nor handed out.
    consumer.pause(&[tp("controls", paused)]);
    assert_eq!(consumer.paused(), [tp("controls", paused)]);
    let more = collect(&mut consumer, 9).await;
    assert_eq!(more.len(), 9);
    assert!(
        more.iter().all(|r| r.partition == kept),
        "nothing from the paused partition"
    );
    assert!(
        consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
            .is_empty()
    );
    consumer.resume(&[tp("controls", paused)]);
    let rest = collect(&mut consumer, 10).await;
    assert_eq!(rest.iter().filter(|r| r.partition == paused).count(), 10);
    // seek_to_beginning / seek_to_end.
    consumer.seek_to_beginning(&[tp("controls", 0)]);
    let again = collect(&mut consumer, 1).await;
    assert_eq!(
        again.iter().find(|r| r.partition == 0).map(|r| r.offset),
        Some(0)
    );
    consumer.seek_to_end(&[tp("controls", 0)]);
    let _ = consumer
        .poll(Duration::from_millis(100))
        .await
        .expect("poll");
    assert_eq!(consumer.position(&tp("controls", 0)), Some(10));
    // offsets_for_times: everything was produced just now.
    let found = consumer
        .offsets_for_times(&[(tp("controls", 1), 0), (tp("controls", 1), i64::MAX - 1)])
        .await
        .expect("times");
    assert_eq!(found[0].1.map(|(offset, _)| offset), Some(0));
    assert_eq!(found[1].1, None, "no record is that new");
    // Explicit commits and reading them back.
    let offsets =
        std::collections::BTreeMap::from([(tp("controls", 0), 7), (tp("controls", 1), 3)]);
    consumer.commit_offsets(&offsets).await.expect("commit");
    assert_eq!(
        consumer
            .committed(&[tp("controls", 0), tp("controls", 1)])
            .await
            .expect("committed"),
        offsets
    );
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_commits_what_poll_handed_out() {
    let cluster = cluster(2).await;
    cluster.create_topic("auto", 1).expect("topic");
    produce(&cluster, "auto", 0, (0..5).map(|i| format!("a-{i}"))).await;
    let mut settings = group_settings(&cluster, "auto-group");
    settings.enable_auto_commit = true;
    settings.auto_commit_interval = Duration::from_millis(100);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["auto"]).expect("subscribe");
    assert_eq!(collect(&mut consumer, 5).await.len(), 5);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let _ = consumer
        .poll(Duration::from_millis(50))
        .await
        .expect("poll");
    let committed = consumer
        .committed(&[tp("auto", 0)])
        .await
        .expect("committed");
    assert_eq!(committed.get(&tp("auto", 0)), Some(&5));
    consumer.close().await.expect("close");
}

/// `subscribe_pattern` as Java's `subscribe(Pattern)`: the whole name must
/// match, and a matching topic created later joins the subscription within
/// `metadata.max.age.ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_follows_matching_topics() {
    let cluster = cluster(1).await;
    cluster.create_topic("metrics-a", 1).expect("topic");
    cluster.create_topic("metrics", 1).expect("topic");
    cluster.create_topic("other", 1).expect("topic");
    let mut settings = group_settings(&cluster, "pattern-group");
    settings.network.metadata_max_age = Duration::from_millis(300);
    let mut consumer = Consumer::new(settings).expect("consumer");
    assert!(
        consumer.subscribe_pattern("metrics-(").is_err(),
        "not a regex"
    );
    consumer.subscribe_pattern("metrics-.*").expect("pattern");
    for topic in ["metrics-a", "metrics", "other"] {
        produce(&cluster, topic, 0, [format!("{topic}-first")]).await;
    }
    let first: Vec<String> = collect(&mut consumer, 1).await.iter().map(value).collect();
    assert_eq!(first, ["metrics-a-first"]);
    assert_eq!(consumer.assignment(), [tp("metrics-a", 0)]);

    cluster.create_topic("metrics-b", 1).expect("topic");
    produce(&cluster, "metrics-b", 0, ["metrics-b-first".to_owned()]).await;
    let later: Vec<String> = collect(&mut consumer, 1).await.iter().map(value).collect();
    assert_eq!(later, ["metrics-b-first"]);
    assert_eq!(
        consumer.assignment(),
        [tp("metrics-a", 0), tp("metrics-b", 0)]
    );
    consumer.close().await.expect("close");
}

/// `beginning_offsets` and `end_offsets` as Java's: the end is the high
/// watermark, or for `read_committed` the last stable offset, which an
/// open transaction holds back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beginning_and_end_offsets_follow_the_isolation_level() {
    let cluster = cluster(1).await;
    cluster.create_topic("ends", 1).expect("topic");
    produce(&cluster, "ends", 0, (0..5).map(|i| format!("e-{i}"))).await;
    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.transactional_id = Some("ends-txn".into());
    let producer = Producer::new(settings).expect("producer");
    producer
        .init_transactions(Duration::from_secs(10))
        .await
        .expect("init");
    producer.begin_transaction().expect("begin");
    for i in 0..2 {
        producer
            .send(
                ProducerRecord::new("ends")
                    .partition(0)
                    .value(format!("t-{i}")),
            )
            .await
            .expect("queued");
    }
    producer.flush().await.expect("flushed, not committed");

    let ends = [tp("ends", 0)];
    let consumer = |isolation| {
        let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
        settings.isolation_level = isolation;
        Consumer::new(settings).expect("consumer")
    };
    let uncommitted = consumer(IsolationLevel::ReadUncommitted);
    let committed = consumer(IsolationLevel::ReadCommitted);
    assert_eq!(
        uncommitted
            .beginning_offsets(&ends)
            .await
            .expect("beginning")[&ends[0]],
        0
    );
    assert_eq!(
        uncommitted.end_offsets(&ends).await.expect("end")[&ends[0]],
        7
    );
    assert_eq!(
        committed.end_offsets(&ends).await.expect("end")[&ends[0]],
        5,
        "the open transaction holds the last stable offset"
    );
    producer
        .commit_transaction(Duration::from_secs(10))
        .await
        .expect("commit");
    // The commit marker is the eighth record.
    assert_eq!(
        committed.end_offsets(&ends).await.expect("end")[&ends[0]],
        8
    );
    assert!(
        uncommitted.end_offsets(&[tp("ends", 3)]).await.is_err(),
        "no such partition"
    );
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// With `enable.auto.commit`, closing commits what poll handed out since
/// the last auto-commit, as Java's close does: the partition's next owner
/// starts after it instead of reading those records again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_commits_what_was_handed_out_with_auto_commit() {
    let cluster = cluster(2).await;
    cluster.create_topic("closing", 1).expect("topic");
    produce(&cluster, "closing", 0, (0..7).map(|i| format!("c-{i}"))).await;
    let mut settings = group_settings(&cluster, "closing-group");
    settings.enable_auto_commit = true;
    // Not due during the test: only close can commit.
    settings.auto_commit_interval = Duration::from_secs(600);
    let mut consumer = Consumer::new(settings.clone()).expect("consumer");
    consumer.subscribe(&["closing"]).expect("subscribe");
    assert_eq!(collect(&mut consumer, 7).await.len(), 7);
    consumer.close().await.expect("close");

    let mut next = Consumer::new(settings).expect("consumer");
    next.subscribe(&["closing"]).expect("subscribe");
    let committed = next
        .committed(&[tp("closing", 0)])
        .await
        .expect("committed");
    assert_eq!(committed.get(&tp("closing", 0)), Some(&7));
    produce(&cluster, "closing", 0, ["after".to_owned()]).await;
    let read: Vec<String> = collect(&mut next, 1).await.iter().map(value).collect();
    assert_eq!(read, ["after"], "the next member starts after the commit");
    next.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_hears_of_it() {
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};
    let cluster = cluster(2).await;
    cluster.create_topic("slow", 4).expect("topic");
    let settings = || {
        let mut s = group_settings(&cluster, "slow-group");
        s.max_poll_interval = Duration::from_millis(600);
        s
    };
    let mut slow = Consumer::new(settings()).expect("consumer");
    slow.subscribe(&["slow"]).expect("subscribe");
    let _ = slow
        .poll(Duration::from_millis(100))
        .await
        .expect("first poll joins");
    let stop = Arc::new(AtomicBool::new(false));
    let busy_assigned = Arc::new(Mutex::new(0usize));
    let mut busy = Consumer::new(settings()).expect("consumer");
    busy.subscribe(&["slow"]).expect("subscribe");
    let busy = member(busy, stop.clone(), busy_assigned.clone());
    // The slow member does not poll; the busy one ends up with everything.
    let took_over = async {
        while *busy_assigned.lock().expect("lock") != 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), took_over)
        .await
        .expect("the busy member took all partitions");
    let error = slow
        .poll(Duration::from_millis(100))
        .await
        .expect_err("told it left");
    assert!(
        error.to_string().contains("max.poll.interval.ms"),
        "{error}"
    );
    stop.store(true, std::sync::atomic::Ordering::Release);
    let (_, busy) = busy.await.expect("member");
    busy.close().await.expect("close");
    slow.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_spent_joining_inside_poll_is_not_time_between_polls() {
    let cluster = cluster(1).await;
    cluster.create_topic("join-time", 1).expect("topic");
    // Joining takes two JoinGroup answers (the first hands out the member
    // id), 800 ms in all: longer than max.poll.interval.ms, while each one
    // stays within the rebalance timeout (the same 600 ms).
    let slow_join = cluster.delay_responses(
        kafka_client::protocol::ApiKey::JoinGroup,
        Duration::from_millis(400),
    );
    let mut settings = group_settings(&cluster, "join-time-group");
    settings.max_poll_interval = Duration::from_millis(600);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["join-time"]).expect("subscribe");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut polls = 0;
    while consumer.assignment().is_empty() {
        polls += 1;
        assert!(polls < 100, "never assigned");
        consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("a slow join inside poll is no poll timeout");
    }
    // The poll right after the join is no late poll either.
    consumer
        .poll(Duration::from_millis(100))
        .await
        .expect("no poll timeout after the join");
    slow_join.remove();
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_metadata_is_javas_before_joining_and_the_coordinators_after() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let cluster = cluster(2).await;
    cluster.create_topic("meta", 2).expect("topic");
    let unjoined = |group_id: &str, instance: Option<&str>| ConsumerGroupMetadata {
        group_id: group_id.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: instance.map(str::to_owned),
    };
    // Without a group: Java's values, and no group id.
    let manual =
        Consumer::new(ConsumerSettings::new(&cluster.bootstrap_servers())).expect("consumer");
    assert_eq!(manual.group_metadata(), unjoined("", None));
    // Static members report their instance id before joining too.
    let mut settings = group_settings(&cluster, "meta-group");
    settings.group_instance_id = Some("meta-static".into());
    let static_member = Consumer::new(settings).expect("consumer");
    assert_eq!(
        static_member.group_metadata(),
        unjoined("meta-group", Some("meta-static"))
    );
    // Subscribed, not yet joined (the join happens in poll).
    let mut first = Consumer::new(group_settings(&cluster, "meta-group")).expect("consumer");
    first.subscribe(&["meta"]).expect("subscribe");
    assert_eq!(first.group_metadata(), unjoined("meta-group", None));
    let _ = first
        .poll(Duration::from_millis(100))
        .await
        .expect("poll joins");
    let joined = first.group_metadata();
    assert_eq!(joined.group_id, "meta-group");
    assert!(joined.generation_id >= 0, "{joined:?}");
    assert!(!joined.member_id.is_empty(), "{joined:?}");
    // A second member makes the group rebalance: a new generation.
    let stop = Arc::new(AtomicBool::new(false));
    let mut second = Consumer::new(group_settings(&cluster, "meta-group")).expect("consumer");
    second.subscribe(&["meta"]).expect("subscribe");
    let second = member(second, stop.clone(), Arc::new(Mutex::new(0)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while first.group_metadata().generation_id == joined.generation_id
        && tokio::time::Instant::now() < deadline
    {
        let _ = first.poll(Duration::from_millis(50)).await.expect("poll");
    }
    let rejoined = first.group_metadata();
    assert!(
        rejoined.generation_id > joined.generation_id,
        "before {joined:?}, after {rejoined:?}"
    );
    assert_eq!(
        rejoined.member_id, joined.member_id,
        "a rejoin keeps the member id"
    );
    stop.store(true, Ordering::Release);
    let (_, second) = second.await.expect("member");
    let other = second.group_metadata();
    assert_eq!(other.group_id, "meta-group");
    assert!(other.generation_id > joined.generation_id, "{other:?}");
    assert_ne!(other.member_id, joined.member_id, "members differ");
    second.close().await.expect("close");
    first.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_async_commits_in_order_and_committed_sees_it() {
    let cluster = cluster(2).await;
    cluster.create_topic("async-commits", 2).expect("topic");
    for p in 0..2 {
        produce(
            &cluster,
            "async-commits",
            p,
            (0..5).map(|i| format!("ac-{p}-{i}")),
        )
        .await;
    }
    let partitions = [tp("async-commits", 0), tp("async-commits", 1)];
    let mut settings = group_settings(&cluster, "async-group");
    settings.enable_auto_commit = false;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["async-commits"]).expect("subscribe");
    assert_eq!(collect(&mut consumer, 10).await.len(), 10);
    let everything = std::collections::BTreeMap::from([
        (tp("async-commits", 0), 5),
        (tp("async-commits", 1), 5),
    ]);
    // Awaited: the handle answers once the coordinator did.
    consumer.commit_async().await.expect("commit_async");
    assert_eq!(
        consumer.committed(&partitions).await.expect("committed"),
        everything
    );
    // A commit_async then a sync commit of older offsets: the later wins.
    let rewound = std::collections::BTreeMap::from([
        (tp("async-commits", 0), 1),
        (tp("async-commits", 1), 2),
    ]);
    let first = consumer.commit_async();
    consumer
        .commit_offsets(&rewound)
        .await
        .expect("commit_offsets");
    first.await.expect("the earlier commit_async succeeded too");
    assert_eq!(
        consumer.committed(&partitions).await.expect("committed"),
        rewound
    );
    // Two in a row, neither awaited nor kept: committed() waits for both.
    drop(consumer.commit_async());
    drop(consumer.commit_async());
    assert_eq!(
        consumer.committed(&partitions).await.expect("committed"),
        everything
    );
    // Polling after a commit_async is fine and the consumer goes on.
    let handle = consumer.commit_async();
    produce(&cluster, "async-commits", 0, ["ac-late".to_string()]).await;
    let late = collect(&mut consumer, 1).await;
    assert_eq!(late.iter().map(value).collect::<Vec<_>>(), ["ac-late"]);
    handle.await.expect("commit_async before the poll");
    consumer.close().await.expect("close");
    // Without a group the handle reports it.
    let mut manual =
        Consumer::new(ConsumerSettings::new(&cluster.bootstrap_servers())).expect("consumer");
    match manual.commit_async().await {
        Err(kafka_client::Error::Config { property, .. }) => assert_eq!(property, "group.id"),
        other => panic!("expected a group.id error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_yields_records_in_offset_order_and_keeps_the_rest() {
    let cluster = cluster(2).await;
    cluster.create_topic("streamed", 2).expect("topic");
    for p in 0..2 {
        produce(
            &cluster,
            "streamed",
            p,
            (0..300).map(|i| format!("s-{p}-{i}")),
        )
        .await;
    }
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.assign([tp("streamed", 0), tp("streamed", 1)]);
    let mut streamed = Vec::new();
    {
        let mut stream = consumer.stream();
        while streamed.len() < 250 {
            let next = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("a record within 10 s")
                .expect("the stream does not end");
            streamed.push(next.expect("record"));
        }
        // Dropping the stream keeps what it fetched but did not yield.
    }
    let rest = collect(&mut consumer, 600 - streamed.len()).await;
    for p in 0..2 {
        let offsets: Vec<i64> = streamed
            .iter()
            .chain(&rest)
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(
            offsets,
            (0..300).collect::<Vec<_>>(),
            "partition {p}: every offset once, in order"
        );
        assert_eq!(consumer.position(&tp("streamed", p)), Some(300));
    }
    assert_eq!(
        value(&streamed[0]),
        format!("s-{}-0", streamed[0].partition)
    );
    // The stream also works through futures' Stream trait.
    produce(&cluster, "streamed", 1, ["s-late".to_string()]).await;
    let mut stream = consumer.stream();
    let late = tokio::time::timeout(
        Duration::from_secs(10),
        std::future::poll_fn(|cx| {
            futures_core::Stream::poll_next(std::pin::Pin::new(&mut stream), cx)
        }),
    )
    .await
    .expect("a record within 10 s")
    .expect("the stream does not end")
    .expect("record");
    assert_eq!(
        (late.partition, late.offset, value(&late)),
        (1, 300, "s-late".into())
    );
}

/// The compression codecs of the batches stored for `topic`-0, read raw.
async fn stored_codecs(cluster: &Cluster, topic: &str) -> Vec<String> {
    use kafka_client::protocol::messages::FetchRequest;
    use kafka_client::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_client::protocol::records::Batches;
    let servers = cluster
        .bootstrap_servers()
        .split(',')
        .map(str::to_owned)
        .collect();
    let network = Network::new(NetworkConfig::new(servers)).expect("network");
    let metadata = network.metadata_for(topic).await.expect("metadata");
    let leader = metadata.leader(topic, 0).expect("leader").id;
    let response = network
        .broker(leader)
        .await
        .expect("leader connection")
        .send(&FetchRequest {
            replica_id: -1,
            max_bytes: 1 << 20,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.into(),
                // Fetch v13+ names topics by id only (KIP-516).
                topic_id: metadata.topic_id(topic).expect("topic id"),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("fetch");
    network.close();
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    Batches::new(records)
        .map(|b| {
            let b = b.expect("batch");
            b.header().compression().expect("codec").name().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_compression_codec_is_consumed() {
    use kafka_client::producer::ProducerConfig;
    let cluster = cluster(2).await;
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        cluster.create_topic(&topic, 1).expect("topic");
        let producer = Producer::new(
            ProducerConfig::from_properties([
                ("bootstrap.servers", cluster.bootstrap_servers().as_str()),
                ("compression.type", codec),
                ("linger.ms", "50"),
            ])
            .and_then(|c| c.build())
            .expect("producer config"),
        )
        .expect("producer");
        let expected: Vec<String> = (0..200)
            .map(|i| format!("{codec}-{i}-{}", "x".repeat(i % 40)))
            .collect();
        let mut deliveries = Vec::new();
        for v in &expected {
            deliveries.push(
                producer
                    .send(
                        ProducerRecord::new(topic.clone())
                            .partition(0)
                            .value(v.clone()),
                    )
                    .await
                    .expect("queued"),
            );
        }
        for d in deliveries {
            d.await.expect("delivered");
        }
        producer.close(Duration::from_secs(5)).await.expect("close");
        let codecs = stored_codecs(&cluster, &topic).await;
        assert!(
            !codecs.is_empty() && codecs.iter().all(|c| c == codec),
            "stored batches are {codec}: {codecs:?}"
        );
        let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
        settings.auto_offset_reset = OffsetReset::Earliest;
        let mut consumer = Consumer::new(settings).expect("consumer");
        consumer.assign([tp(&topic, 0)]);
        let records = collect(&mut consumer, expected.len()).await;
        assert_eq!(
            records.iter().map(value).collect::<Vec<_>>(),
            expected,
            "{codec}: values in order"
        );
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            (0..200).collect::<Vec<_>>()
        );
        consumer.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_out_of_range_position_resets_with_earliest_and_fails_with_none() {
    let cluster = cluster(2).await;
    cluster.create_topic("ranges", 1).expect("topic");
    produce(&cluster, "ranges", 0, (0..10).map(|i| format!("r-{i}"))).await;
    let consumer_with = |reset: OffsetReset| {
        let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
        settings.auto_offset_reset = reset;
        let mut consumer = Consumer::new(settings).expect("consumer");
        consumer.assign([tp("ranges", 0)]);
        consumer
    };
    // earliest: a position past the high watermark starts over at 0.
    let mut earliest = consumer_with(OffsetReset::Earliest);
    earliest.seek(&tp("ranges", 0), 1_000).expect("seek");
    let records = collect(&mut earliest, 10).await;
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>(),
        "reset to the earliest offset"
    );
    // none: a typed error, the position stays, and seeking back recovers.
    let mut none = consumer_with(OffsetReset::None);
    none.seek(&tp("ranges", 0), 1_000).expect("seek");
    let error = none
        .poll(Duration::from_secs(2))
        .await
        .expect_err("out of range with none");
    match &error {
        kafka_client::Error::Kafka { code, context } => {
            assert_eq!(
                *code,
                kafka_client::protocol::ErrorCode::OffsetOutOfRange,
                "{error}"
            );
            assert!(
                context.as_deref().is_some_and(|c| c.contains("ranges-0")),
                "{error}"
            );
        }
        other => panic!("expected OFFSET_OUT_OF_RANGE, got {other:?}"),
    }
    assert_eq!(none.position(&tp("ranges", 0)), Some(1_000));
    none.seek(&tp("ranges", 0), 7).expect("seek");
    let records = collect(&mut none, 3).await;
    assert_eq!(
        records.iter().map(value).collect::<Vec<_>>(),
        ["r-7", "r-8", "r-9"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_answers_holds_a_poll_for_the_coordinator_lookup_and_it_returns_nothing()
 {
    // Accepts connections and reads nothing: each request would wait out
    // request.timeout.ms (10 s here).
    let (addr, accepting) = support::unanswering_broker().await;
    let mut settings = kafka_client::consumer::ConsumerSettings::new(&addr);
    settings.group_id = Some("unanswered".into());
    settings.network.request_timeout = Duration::from_secs(10);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["t"]).expect("subscribe");
    let started = std::time::Instant::now();
    let polled = consumer.poll(Duration::from_millis(300)).await;
    let took = started.elapsed();
    // No records rather than an error, as in the Java client, after the
    // lookup's own 2 s bound rather than request.timeout.ms.
    assert!(
        matches!(&polled, Ok(records) if records.is_empty()),
        "{polled:?}"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");
    accepting.abort();
}

/// The same with a pattern subscription: listing the topics is bounded as
/// the coordinator lookup is, not by request.timeout.ms, and a failed
/// listing is not tried again at once by the next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pattern_subscription_against_a_broker_that_never_answers_returns_nothing_in_time() {
    let (addr, accepting) = support::unanswering_broker().await;
    let mut settings = kafka_client::consumer::ConsumerSettings::new(&addr);
    settings.group_id = Some("unanswered-pattern".into());
    settings.network.request_timeout = Duration::from_secs(10);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe_pattern("t.*").expect("pattern");
    for round in 0..2 {
        let started = std::time::Instant::now();
        let polled = consumer.poll(Duration::from_millis(300)).await;
        let took = started.elapsed();
        assert!(
            matches!(&polled, Ok(records) if records.is_empty()),
            "{polled:?}"
        );
        // The listing's 2 s, then the coordinator lookup's 2 s.
        assert!(took < Duration::from_secs(6), "poll {round} took {took:?}");
    }
    accepting.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_and_topics_are_described_as_in_java() {
    let cluster = Cluster::start(BrokerConfig {
        brokers: 3,
        auto_create_topics: false,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster");
    cluster.create_topic("listed", 3).expect("topic");
    cluster.create_topic("other", 1).expect("topic");
    let mut consumer = Consumer::new(group_settings(&cluster, "describers")).expect("consumer");
    let partitions = consumer.partitions_for("listed").await.expect("partitions");
    assert_eq!(
        partitions.iter().map(|p| p.partition).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for p in &partitions {
        let leader = p.leader.expect("a leader");
        assert!(
            p.replicas.contains(&leader) && p.isr.contains(&leader),
            "{p:?}"
        );
    }
    assert!(
        consumer
            .partitions_for("missing")
            .await
            .expect("asked")
            .is_empty(),
        "an unknown topic has no partitions, as in Java"
    );
    let topics = consumer.list_topics().await.expect("topics");
    assert_eq!(
        topics
            .iter()
            .map(|(name, partitions)| (name.as_str(), partitions.len()))
            .collect::<Vec<_>>(),
        [("listed", 3), ("other", 1)]
    );
    assert!(consumer.subscription().is_empty());
    consumer.subscribe(&["listed", "other"]).expect("subscribe");
    assert_eq!(consumer.subscription(), ["listed", "other"]);

    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.max_block = Duration::from_millis(300);
    let producer = Producer::new(settings).expect("producer");
    let described = producer.partitions_for("listed").await.expect("partitions");
    assert_eq!(described, partitions);
    let started = std::time::Instant::now();
    let missing = producer.partitions_for("missing").await;
    assert!(
        matches!(missing, Err(kafka_client::Error::Timeout(_))),
        "{missing:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "bounded by max.block.ms"
    );
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_carry_metadata_and_leader_epochs() {
    let cluster = cluster(1).await;
    cluster.create_topic("annotated", 2).expect("topic");
    let mut consumer = Consumer::new(group_settings(&cluster, "annotators")).expect("consumer");
    consumer.assign([tp("annotated", 0), tp("annotated", 1)]);
    let offsets = std::collections::BTreeMap::from([
        (
            tp("annotated", 0),
            OffsetAndMetadata {
                offset: 7,
                leader_epoch: Some(3),
                metadata: "checkpoint a".into(),
            },
        ),
        (tp("annotated", 1), OffsetAndMetadata::new(2)),
    ]);
    consumer
        .commit_offsets_with_metadata(&offsets)
        .await
        .expect("commit");
    let both = [tp("annotated", 0), tp("annotated", 1)];
    let read = consumer
        .committed_with_metadata(&both)
        .await
        .expect("committed");
    assert_eq!(read, offsets);
    // The admin client reads the same from the coordinator.
    let admin = kafka_client::admin::Admin::new(kafka_client::admin::AdminSettings::new(
        &cluster.bootstrap_servers(),
    ))
    .expect("admin");
    let listed = admin
        .list_consumer_group_offsets("annotators", None)
        .await
        .expect("offsets");
    assert_eq!(listed, offsets);
    // A plain commit replaces the metadata with none.
    consumer
        .commit_offsets(&std::collections::BTreeMap::from([(tp("annotated", 0), 8)]))
        .await
        .expect("commit");
    let read = consumer
        .committed_with_metadata(&both)
        .await
        .expect("committed");
    assert_eq!(read[&tp("annotated", 0)], OffsetAndMetadata::new(8));
    assert_eq!(consumer.committed(&both).await.expect("committed").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_partitions_start_at_the_groups_commits_and_auto_commit_to_it() {
    let cluster = cluster(1).await;
    cluster.create_topic("manual", 2).expect("topic");
    produce(&cluster, "manual", 0, (0..10).map(|i| format!("a{i}"))).await;
    produce(&cluster, "manual", 1, (0..10).map(|i| format!("b{i}"))).await;
    let both = [tp("manual", 0), tp("manual", 1)];
    let mut settings = group_settings(&cluster, "by-hand");
    settings.auto_offset_reset = OffsetReset::Latest;
    settings.enable_auto_commit = false;
    let mut first = Consumer::new(settings.clone()).expect("consumer");
    first.assign(both.clone());
    first
        .commit_offsets(&std::collections::BTreeMap::from([(tp("manual", 0), 4)]))
        .await
        .expect("a commit without joining the group");
    first.close().await.expect("close");

    settings.enable_auto_commit = true;
    settings.auto_commit_interval = Duration::from_millis(100);
    let mut second = Consumer::new(settings).expect("consumer");
    second.assign(both.clone());
    let read = collect(&mut second, 6).await;
    assert_eq!(
        read.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        (4..10).map(|o| (0, o)).collect::<Vec<_>>(),
        "partition 0 from its committed offset, partition 1 (nothing committed) from the end"
    );
    assert_eq!(second.position(&tp("manual", 1)), Some(10));
    produce(&cluster, "manual", 1, ["b10".to_owned()]).await;
    let later = collect(&mut second, 1).await;
    assert_eq!(
        later.first().map(|r| (r.partition, r.offset)),
        Some((1, 10))
    );
    second
        .close()
        .await
        .expect("close commits what was handed out");

    let mut third = Consumer::new(group_settings(&cluster, "by-hand")).expect("consumer");
    third.assign(both.clone());
    let committed = third.committed(&both).await.expect("committed");
    assert_eq!(
        committed,
        std::collections::BTreeMap::from([(tp("manual", 0), 10), (tp("manual", 1), 11)])
    );
    // Subscribing afterwards makes it a member: the group assigns both
    // partitions, which start at the commits.
    third.subscribe(&["manual"]).expect("subscribe");
    produce(&cluster, "manual", 0, ["a10".to_owned()]).await;
    let after = collect(&mut third, 1).await;
    assert_eq!(
        after.first().map(|r| (r.partition, r.offset)),
        Some((0, 10))
    );
    assert_eq!(third.assignment().len(), 2);
    third.close().await.expect("close");
}
