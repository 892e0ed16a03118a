//! Exactly-once consume-transform-produce end to end on the bundled
//! broker: three transactional workers in one group are killed at random
//! points of their transactions, restarted, rebalanced, and see produce
//! and EndTxn responses lost; a `read_committed` reader of the output must
//! then see every input record's result exactly once, in input order per
//! key. And a stalled worker whose `transactional.id` was taken over is
//! fenced and adds nothing to the output.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_broker::{BrokerConfig, Cluster};
use kafka_client::consumer::{Consumer, ConsumerSettings, IsolationLevel, OffsetReset};
use kafka_client::network::{CoordinatorKind, Network, NetworkConfig, find_coordinator};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings, TopicPartition};
use kafka_client::protocol::messages::OffsetFetchRequest;
use kafka_client::protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_client::protocol::{ApiKey, ErrorCode};
use kafka_client::worker::{Round, TransactionalWorker};
use kafka_client::{Error, Result};
use support::tp;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const INPUT: &str = "eos-in";
const OUTPUT: &str = "eos-out";
const PARTITIONS: i32 = 6;
const RECORDS: usize = 100_000;
const KEYS: usize = 500;
const GROUP: &str = "eos-group";
const TIMEOUT: Duration = Duration::from_secs(30);
/// Numbers worker instances, for the `txn` header of output records.
static INSTANCES: AtomicU64 = AtomicU64::new(0);
/// Set once the chaos plan has run: until then workers pause briefly
/// between rounds, so that a fast run does not use up the input while the
/// controller still waits for a worker to reach a kill point.
static PLAN_DONE: AtomicBool = AtomicBool::new(false);

/// Where a worker is told to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillPoint {
    /// Records sent, offsets and commit not.
    AfterSend,
    /// While commit_transaction runs.
    DuringCommit,
    /// Right after a commit returned.
    AfterCommit,
}

/// The test's hold on one worker.
#[derive(Default)]
struct Control {
    kill_at: Mutex<Option<KillPoint>>,
    reached: Notify,
    /// Stop cleanly (close the consumer and producer).
    leave: AtomicBool,
}

/// One step of the test's chaos plan.
#[derive(Debug, Clone, Copy)]
enum Chaos {
    Kill(KillPoint),
    DropProduceResponses,
    DropEndTxnResponse,
    CleanRestart,
    /// The next Produce is refused (INVALID_RECORD, not applied): that
    /// worker's transaction becomes abortable, so it aborts and rewinds.
    RefuseProduce,
}

impl Control {
    /// Tells the controller the kill point is reached; for every point but
    /// `DuringCommit` the worker then waits to be killed.
    async fn checkpoint(&self, point: KillPoint) {
        let hit = {
            let mut kill_at = self.kill_at.lock().unwrap();
            if *kill_at == Some(point) {
                *kill_at = None;
                true
            } else {
                false
            }
        };
        if hit {
            self.reached.notify_one();
            if point != KillPoint::DuringCommit {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A cluster whose group coordinator accepts the short session timeouts
/// that make dead members leave quickly.
async fn start_cluster(brokers: u32) -> Cluster {
    let mut config = BrokerConfig {
        brokers,
        ..BrokerConfig::default()
    };
    config
        .set("group.min.session.timeout.ms", "500")
        .expect("broker config");
    Cluster::start(config).await.expect("cluster")
}

/// A small deterministic generator, seeded per run and printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn consumer_settings(cluster: &Cluster) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some(GROUP.into());
    settings.isolation_level = IsolationLevel::ReadCommitted;
    settings.enable_auto_commit = false;
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_millis(1500);
    settings.max_poll_interval = Duration::from_secs(10);
    settings.fetch_max_wait = Duration::from_millis(50);
    settings.max_poll_records = 500;
    settings
}

fn producer_settings(cluster: &Cluster, transactional_id: &str) -> ProducerSettings {
    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.transactional_id = Some(transactional_id.into());
    settings.transaction_timeout = Duration::from_secs(10);
    settings.network.request_timeout = Duration::from_millis(1000);
    settings.retry_backoff = Duration::from_millis(20);
    settings.retry_backoff_max = Duration::from_millis(200);
    settings.network.reconnect_backoff = Duration::from_millis(20);
    settings.network.reconnect_backoff_max = Duration::from_millis(200);
    settings
}

/// The transform: the output of `key:seq` is `out:key:seq`, same key.
fn transform(value: &[u8]) -> Bytes {
    let mut out = b"out:".to_vec();
    out.extend_from_slice(value);
    Bytes::from(out)
}

/// Produces the input: record `i` has key `key-(i % KEYS)` and value
/// `key-(i % KEYS):(i / KEYS)`, so each key's values count up from 0.
/// Returns each partition's end offset.
async fn produce_input(cluster: &Cluster) -> BTreeMap<i32, i64> {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{key}:{}", i / KEYS);
        deliveries.push(
            producer
                .send(ProducerRecord::new(INPUT).key(key).value(value))
                .await
                .expect("queued"),
        );
    }
    let mut ends: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    for delivery in deliveries {
        let metadata = delivery.await.expect("delivered");
        let end = ends.entry(metadata.partition).or_default();
        *end = (*end).max(metadata.offset + 1);
    }
    producer.close(TIMEOUT).await.expect("close");
    ends
}

/// The group's committed offsets of the input, by raw OffsetFetch.
async fn committed_offsets(network: &Network) -> Result<BTreeMap<i32, i64>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let coordinator = find_coordinator(network, CoordinatorKind::Group, GROUP, deadline).await?;
    // Version 8 and later ask for several groups at once, in other fields.
    let version = coordinator.version_for::<OffsetFetchRequest>()?.min(7);
    let response = coordinator
        .call(
            &OffsetFetchRequest {
                group_id: GROUP.into(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: INPUT.into(),
                    partition_indexes: (0..PARTITIONS).collect(),
                    ..Default::default()
                }]),
                ..Default::default()
            },
            version,
        )
        .await?;
    let mut out = BTreeMap::new();
    for topic in &response.topics {
        for p in &topic.partitions {
            out.insert(p.partition_index, p.committed_offset.max(0));
        }
    }
    Ok(out)
}

/// Per output partition: (high watermark, last stable offset), from the
/// broker, for the report of a failed run.
async fn output_ends(network: &Network) -> Result<BTreeMap<i32, (i64, i64)>> {
    use kafka_client::protocol::messages::ListOffsetsRequest;
    use kafka_client::protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    network.track(&[OUTPUT]);
    let metadata = network.refresh().await?;
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let leader = metadata
            .leader(OUTPUT, partition)
            .map(|b| b.id)
            .ok_or_else(|| Error::Protocol(format!("no leader for {OUTPUT}-{partition}")))?;
        let connection = network.broker(leader).await?;
        let mut pair = [0i64; 2];
        for (slot, isolation) in pair.iter_mut().zip([0i8, 1]) {
            let response = connection
                .send(&ListOffsetsRequest {
                    replica_id: -1,
                    isolation_level: isolation,
                    topics: vec![ListOffsetsTopic {
                        name: OUTPUT.into(),
                        partitions: vec![ListOffsetsPartition {
                            partition_index: partition,
                            timestamp: -1,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .await?;
            *slot = response
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .map_or(-1, |p| p.offset);
        }
        ends.insert(partition, (pair[0], pair[1]));
    }
    Ok(ends)
}

/// What the workers did, for the report.
#[derive(Default)]
struct Tally {
    committed_transactions: AtomicU64,
    aborted_transactions: AtomicU64,
}

/// One worker's life: joins the group, then runs transactions until told
/// to stop. Killing it is aborting its task.
async fn worker(
    bootstrap: Arc<Cluster>,
    index: usize,
    control: Arc<Control>,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Result<()> {
    let cluster = bootstrap;
    let mut consumer = Consumer::new(consumer_settings(&cluster))?;
    consumer.subscribe(&[INPUT])?;
    let producer = Producer::new(producer_settings(&cluster, &format!("eos-worker-{index}")))?;
    producer.init_transactions(TIMEOUT).await?;
    let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
    let mut round = 0u64;
    let mut idle = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    let mut expected_next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    while !stop.load(Ordering::Acquire)
        && !control.leave.load(Ordering::Acquire)
        && tokio::time::Instant::now() < deadline
    {
        if !PLAN_DONE.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let records = consumer.poll(Duration::from_millis(100)).await?;
        if records.is_empty() {
            idle += 1;
            if idle.is_multiple_of(50) && std::env::var_os("EOS_TRACE").is_some() {
                let positions: Vec<String> = consumer
                    .assignment()
                    .iter()
                    .map(|tp| format!("p{}@{:?}", tp.partition, consumer.position(tp)))
                    .collect();
                eprintln!(
                    "trace w{index}/i{instance}: idle, positions {positions:?}, gen {}, stats {:?}",
                    consumer.group_metadata().generation_id,
                    consumer.stats()
                );
            }
            continue;
        }
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in &records {
            let tp = tp(&r.topic, r.partition);
            first.entry(tp.clone()).or_insert(r.offset);
            next.insert(tp, r.offset + 1);
        }
        for (tp, offset) in &first {
            if expected_next.get(tp) != Some(offset) {
                eprintln!(
                    "worker {index}: {}-{} from {offset} (gen {})",
                    tp.topic,
                    tp.partition,
                    consumer.group_metadata().generation_id
                );
            }
        }
        expected_next.extend(next.clone());
        round += 1;
        if std::env::var_os("EOS_TRACE").is_some() {
            let ranges: Vec<String> = first
                .iter()
                .map(|(tp, f)| format!("p{}[{f}..{})", tp.partition, next[tp]))
                .collect();
            eprintln!(
                "trace w{index}/i{instance}/r{round}/g{}: {}",
                consumer.group_metadata().generation_id,
                ranges.join(" ")
            );
        }
        let tag = format!(
            "w{index}/i{instance}/r{round}/g{}",
            consumer.group_metadata().generation_id
        );
        let attempt: Result<()> = async {
            producer.begin_transaction()?;
            for r in &records {
                let mut out = ProducerRecord::new(OUTPUT)
                    .value(transform(r.value.as_deref().unwrap_or_default()))
                    .header(
                        "txn",
                        format!("{tag}/{}-{}@{}", r.topic, r.partition, r.offset),
                    );
                if let Some(key) = &r.key {
                    out = out.key(key.clone());
                }
                producer.send(out).await?;
            }
            control.checkpoint(KillPoint::AfterSend).await;
            producer
                .send_offsets_to_transaction(&next, &consumer.group_metadata(), TIMEOUT)
                .await?;
            control.checkpoint(KillPoint::DuringCommit).await;
            producer.commit_transaction(TIMEOUT).await?;
            Ok(())
        }
        .await;
        match attempt {
            Ok(()) => {
                tally.committed_transactions.fetch_add(1, Ordering::Relaxed);
                control.checkpoint(KillPoint::AfterCommit).await;
            }
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                tally.aborted_transactions.fetch_add(1, Ordering::Relaxed);
                eprintln!("worker {index}: aborting: {e}");
                producer.abort_transaction(TIMEOUT).await?;
                for (tp, offset) in &first {
                    if consumer.assignment().contains(tp) {
                        consumer.seek(tp, *offset)?;
                    }
                }
            }
        }
    }
    consumer.close().await?;
    producer.close(TIMEOUT).await?;
    Ok(())
}

struct Slot {
    control: Arc<Control>,
    task: JoinHandle<Result<()>>,
}

fn spawn(cluster: &Arc<Cluster>, index: usize, stop: &Arc<AtomicBool>, tally: &Arc<Tally>) -> Slot {
    let control = Arc::new(Control::default());
    let task = tokio::spawn(worker(
        cluster.clone(),
        index,
        control.clone(),
        stop.clone(),
        tally.clone(),
    ));
    Slot { control, task }
}

/// Every output record by key, in the order a read_committed reader sees.
async fn read_output(
    cluster: &Cluster,
    expected: usize,
) -> (
    HashMap<String, Vec<u64>>,
    HashMap<(String, u64), Vec<String>>,
) {
    read_output_as(cluster, expected, IsolationLevel::ReadCommitted).await
}

async fn read_output_as(
    cluster: &Cluster,
    expected: usize,
    isolation: IsolationLevel,
) -> (
    HashMap<String, Vec<u64>>,
    HashMap<(String, u64), Vec<String>>,
) {
    let mut tags: HashMap<(String, u64), Vec<String>> = HashMap::new();
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.isolation_level = isolation;
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.fetch_max_wait = Duration::from_millis(50);
    let mut reader = Consumer::new(settings).expect("reader");
    reader.assign((0..PARTITIONS).map(|p| tp(OUTPUT, p)));
    let mut by_key: HashMap<String, Vec<u64>> = HashMap::new();
    let mut last_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let mut seen = 0;
    let mut quiet = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline && (seen < expected || quiet < 3) {
        let records = reader
            .poll(Duration::from_millis(200))
            .await
            .expect("poll output");
        quiet = if records.is_empty() { quiet + 1 } else { 0 };
        for r in records {
            seen += 1;
            last_offsets.insert(r.partition, r.offset);
            let value = String::from_utf8(r.value.unwrap_or_default().to_vec()).expect("utf-8");
            let rest = value.strip_prefix("out:").expect("transformed");
            let (key, seq) = rest.rsplit_once(':').expect("key:seq");
            let seq: u64 = seq.parse().expect("seq");
            by_key.entry(key.to_owned()).or_default().push(seq);
            let tag = r
                .headers
                .last("txn")
                .and_then(|h| h.value().map(|v| String::from_utf8_lossy(v).into_owned()))
                .unwrap_or_default();
            tags.entry((key.to_owned(), seq))
                .or_default()
                .push(format!("{tag} -> {}-{}@{}", r.topic, r.partition, r.offset));
        }
    }
    if seen < expected {
        eprintln!(
            "reader ({isolation:?}) saw {seen}; last offset read per partition {last_offsets:?}, \
             positions {:?}",
            (0..PARTITIONS)
                .map(|p| (p, reader.position(&tp(OUTPUT, p))))
                .collect::<Vec<_>>()
        );
    }
    (by_key, tags)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_killed_and_restarted_workers_produce_every_result_exactly_once() {
    let started = std::time::Instant::now();
    let seed = std::env::var("EOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    println!("EOS_SEED={seed}");
    let mut rng = Rng(seed);
    let cluster = Arc::new(start_cluster(3).await);
    cluster.create_topic(INPUT, PARTITIONS).expect("input");
    cluster.create_topic(OUTPUT, PARTITIONS).expect("output");
    let ends = produce_input(&cluster).await;
    assert_eq!(ends.values().sum::<i64>(), RECORDS as i64);

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut slots: Vec<Slot> = (0..3).map(|i| spawn(&cluster, i, &stop, &tally)).collect();
    let network = Network::new(NetworkConfig::new(vec![
        cluster
            .bootstrap_servers()
            .split(',')
            .next()
            .expect("a broker")
            .to_owned(),
    ]))
    .expect("network");

    // The chaos plan, one step per fortieth of the input committed.
    let plan = [
        Chaos::Kill(KillPoint::AfterSend),
        Chaos::DropProduceResponses,
        Chaos::Kill(KillPoint::DuringCommit),
        Chaos::DropEndTxnResponse,
        Chaos::Kill(KillPoint::AfterCommit),
        Chaos::CleanRestart,
        Chaos::RefuseProduce,
        Chaos::Kill(KillPoint::AfterSend),
        Chaos::Kill(KillPoint::DuringCommit),
        Chaos::Kill(KillPoint::AfterCommit),
    ];
    let mut kills: BTreeMap<&str, u32> = BTreeMap::new();
    let mut faults = 0;
    let mut refused = 0;
    let mut restarts_after_error = 0;
    let mut step = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the workers did not finish in time; committed {:?} of {ends:?}",
            committed_offsets(&network).await
        );
        // A worker that stopped on an error is restarted, as a supervisor would.
        for (index, slot) in slots.iter_mut().enumerate() {
            if slot.task.is_finished() {
                let outcome = (&mut slot.task).await;
                eprintln!("worker {index} stopped: {outcome:?}; restarting");
                restarts_after_error += 1;
                assert!(restarts_after_error < 30, "workers keep failing");
                *slot = spawn(&cluster, index, &stop, &tally);
            }
        }
        let committed = committed_offsets(&network).await.unwrap_or_default();
        if committed == ends {
            break;
        }
        let progress: i64 = committed.values().sum();
        // Every step is due by a quarter of the way, so that a fast run
        // still has input left for a retried kill to hit.
        let due = step < plan.len() && progress >= (step as i64 + 1) * RECORDS as i64 / 40;
        if !due {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        match plan[step] {
            Chaos::Kill(point) => {
                // The first worker (from a random one on) that reaches the
                // point dies there; one without partitions never does.
                let first = rng.below(3) as usize;
                let mut killed = false;
                for attempt in 0..3 {
                    let victim = (first + attempt) % 3;
                    let slot = &mut slots[victim];
                    *slot.control.kill_at.lock().unwrap() = Some(point);
                    let reached = tokio::time::timeout(
                        Duration::from_secs(2),
                        slot.control.reached.notified(),
                    )
                    .await;
                    if reached.is_err() {
                        *slot.control.kill_at.lock().unwrap() = None;
                        continue;
                    }
                    if point == KillPoint::DuringCommit {
                        for _ in 0..rng.below(64) {
                            tokio::task::yield_now().await;
                        }
                    }
                    slot.task.abort();
                    let _ = (&mut slot.task).await;
                    *kills.entry(point_name(point)).or_default() += 1;
                    *slot = spawn(&cluster, victim, &stop, &tally);
                    killed = true;
                    break;
                }
                if !killed {
                    // No worker got there (none had records, e.g. during a
                    // rebalance): try this step again.
                    continue;
                }
            }
            Chaos::DropProduceResponses => {
                cluster.drop_responses(ApiKey::Produce, 2);
                faults += 1;
            }
            Chaos::DropEndTxnResponse => {
                cluster.drop_responses(ApiKey::EndTxn, 1);
                faults += 1;
            }
            Chaos::RefuseProduce => {
                let aborted = tally.aborted_transactions.load(Ordering::Relaxed);
                let refusal = cluster.inject_error(ApiKey::Produce, ErrorCode::InvalidRecord, 1);
                // Due once a worker has met it and aborted; retried while no
                // worker sends (a rebalance, say).
                let met = tokio::time::timeout(Duration::from_secs(5), async {
                    while tally.aborted_transactions.load(Ordering::Relaxed) == aborted {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
                .await;
                if met.is_err() {
                    refusal.remove();
                    continue;
                }
                refused += 1;
            }
            Chaos::CleanRestart => {
                // LeaveGroup and a new member: a rebalance at once.
                let victim = rng.below(3) as usize;
                let slot = &mut slots[victim];
                slot.control.leave.store(true, Ordering::Release);
                let outcome = tokio::time::timeout(TIMEOUT, &mut slot.task).await;
                assert!(matches!(outcome, Ok(Ok(Ok(())))), "clean stop: {outcome:?}");
                *kills.entry("clean restart (rebalance)").or_default() += 1;
                *slot = spawn(&cluster, victim, &stop, &tally);
            }
        }
        step += 1;
        if step == plan.len() {
            PLAN_DONE.store(true, Ordering::Release);
        }
    }
    stop.store(true, Ordering::Release);
    for slot in slots {
        let outcome = tokio::time::timeout(Duration::from_secs(30), slot.task).await;
        assert!(
            matches!(outcome, Ok(Ok(Ok(())))),
            "a worker did not stop cleanly: {outcome:?}"
        );
    }

    let (by_key, tags) = read_output(&cluster, RECORDS).await;
    let mut shown = 0;
    for (record, copies) in &tags {
        if copies.len() > 1 && shown < 8 {
            shown += 1;
            eprintln!("duplicate {record:?}: {copies:?}");
        }
    }
    let per_key = (RECORDS / KEYS) as u64;
    let mut seen = 0usize;
    let mut duplicates = 0usize;
    let mut missing = 0usize;
    let mut out_of_order = 0usize;
    for k in 0..KEYS {
        let key = format!("key-{k}");
        let seqs = by_key.get(&key).cloned().unwrap_or_default();
        seen += seqs.len();
        let mut counts = vec![0u32; per_key as usize];
        for (i, seq) in seqs.iter().enumerate() {
            if let Some(c) = counts.get_mut(*seq as usize) {
                *c += 1;
            }
            if i > 0 && seqs[i - 1] >= *seq {
                out_of_order += 1;
            }
        }
        duplicates += counts
            .iter()
            .map(|c| c.saturating_sub(1) as usize)
            .sum::<usize>();
        missing += counts.iter().filter(|c| **c == 0).count();
    }
    if missing > 0 {
        eprintln!(
            "output (high watermark, last stable offset) per partition: {:?}",
            output_ends(&network).await
        );
        // Which of two failures: results written but never made visible (a
        // transaction left open holds back the last stable offset, or its
        // data was aborted while its offsets committed), or never written.
        let (written, tags) =
            read_output_as(&cluster, RECORDS * 2, IsolationLevel::ReadUncommitted).await;
        let mut reported = 0;
        for k in 0..KEYS {
            let key = format!("key-{k}");
            let visible = by_key.get(&key).cloned().unwrap_or_default();
            for seq in 0..per_key {
                if visible.contains(&seq) || reported >= 12 {
                    continue;
                }
                reported += 1;
                let copies = tags.get(&(key.clone(), seq)).cloned().unwrap_or_default();
                eprintln!(
                    "missing {key}:{seq}: written {} times (read_uncommitted): {copies:?}",
                    written
                        .get(&key)
                        .map_or(0, |s| s.iter().filter(|x| **x == seq).count())
                );
            }
        }
    }
    let committed = committed_offsets(&network)
        .await
        .expect("committed offsets");
    let elapsed = started.elapsed();
    println!(
        "exactly-once: expected {RECORDS}, seen {seen}, duplicates {duplicates}, missing {missing}, \
         out of order {out_of_order}; kills {kills:?}, dropped-response faults {faults}, \
         refused produces {refused}, restarts after errors {restarts_after_error}; \
         transactions committed {} aborted {}; \
         committed offsets {committed:?} (input ends {ends:?}); {elapsed:.1?}",
        tally.committed_transactions.load(Ordering::Relaxed),
        tally.aborted_transactions.load(Ordering::Relaxed),
    );
    assert_eq!(seen, RECORDS);
    assert_eq!(duplicates, 0);
    assert_eq!(missing, 0);
    assert_eq!(out_of_order, 0);
    assert_eq!(committed, ends);
    for point in [
        KillPoint::AfterSend,
        KillPoint::DuringCommit,
        KillPoint::AfterCommit,
    ] {
        assert!(
            kills.contains_key(point_name(point)),
            "no worker was {}: {kills:?}",
            point_name(point)
        );
    }
    assert_eq!(faults, 2, "dropped-response faults");
    assert_eq!(refused, 1, "refused produces");
    assert!(
        tally.aborted_transactions.load(Ordering::Relaxed) >= 1,
        "no worker aborted and rewound"
    );
}

fn point_name(point: KillPoint) -> &'static str {
    match point {
        KillPoint::AfterSend => "killed between send and commit",
        KillPoint::DuringCommit => "killed during commit",
        KillPoint::AfterCommit => "killed after commit",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_worker_whose_id_was_taken_over_is_fenced_and_adds_nothing() {
    let cluster = start_cluster(1).await;
    cluster.create_topic("fence-in", 2).expect("topic");
    cluster.create_topic("fence-out", 2).expect("topic");
    let input = Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("p");
    for i in 0..200 {
        input
            .send_and_wait(
                ProducerRecord::new("fence-in")
                    .key(format!("k{}", i % 7))
                    .value(format!("{i}")),
            )
            .await
            .expect("input");
    }
    let make_worker = |cluster: &Cluster| {
        let mut settings = consumer_settings(cluster);
        settings.group_id = Some("fence-group".into());
        settings.max_poll_interval = Duration::from_secs(2);
        settings.max_poll_records = 50;
        let mut consumer = Consumer::new(settings).expect("consumer");
        consumer.subscribe(&["fence-in"]).expect("subscribe");
        let producer = Producer::new(producer_settings(cluster, "fence-worker")).expect("producer");
        TransactionalWorker::new(consumer, producer).with_timeout(Duration::from_secs(10))
    };

    // A polls a batch, begins, and stalls inside processing.
    let stalled = Arc::new(Notify::new());
    let resume = Arc::new(Notify::new());
    let mut a = make_worker(&cluster);
    a.init().await.expect("init A");
    let (a_stalled, a_resume) = (stalled.clone(), resume.clone());
    let a_task = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "A never got records"
            );
            let (stalled, resume) = (a_stalled.clone(), a_resume.clone());
            let round = a
                .run_once(Duration::from_millis(100), |records| async move {
                    stalled.notify_one();
                    resume.notified().await;
                    records
                        .iter()
                        .map(|r| {
                            ProducerRecord::new("fence-out")
                                .key(r.key.clone().unwrap_or_default())
                                .value(transform(r.value.as_deref().unwrap_or_default()))
                        })
                        .collect()
                })
                .await;
            if !matches!(round, Ok(Round::Idle)) {
                return round;
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), stalled.notified())
        .await
        .expect("A started a transaction");

    // B takes over the transactional id (fencing A) and, once A has been
    // dropped from the group for not polling, all of the input.
    let mut b = make_worker(&cluster);
    b.init().await.expect("init B fences A");
    let mut processed = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while processed < 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B processed only {processed}"
        );
        let round = b
            .run_once(Duration::from_millis(100), |records| async move {
                records
                    .iter()
                    .map(|r| {
                        ProducerRecord::new("fence-out")
                            .key(r.key.clone().unwrap_or_default())
                            .value(transform(r.value.as_deref().unwrap_or_default()))
                    })
                    .collect()
            })
            .await
            .expect("B's round");
        if let Round::Committed { records } = round {
            processed += records;
        }
    }

    resume.notify_one();
    let a_outcome = tokio::time::timeout(Duration::from_secs(30), a_task)
        .await
        .expect("A finished")
        .expect("A's task");
    let error = a_outcome.expect_err("A must be fenced");
    assert!(error.is_fatal(), "{error}");
    assert_eq!(error.code(), Some(ErrorCode::ProducerFenced), "{error}");
    assert!(matches!(error, Error::Fatal(_)));

    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.isolation_level = IsolationLevel::ReadCommitted;
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.fetch_max_wait = Duration::from_millis(50);
    let mut reader = Consumer::new(settings).expect("reader");
    reader.assign([tp("fence-out", 0), tp("fence-out", 1)]);
    let mut values = Vec::new();
    let mut quiet = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline && (values.len() < 200 || quiet < 3) {
        let records = reader.poll(Duration::from_millis(100)).await.expect("poll");
        quiet = if records.is_empty() { quiet + 1 } else { 0 };
        values.extend(
            records
                .iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap_or_default().to_vec())),
        );
    }
    let mut values: Vec<String> = values.into_iter().map(|v| v.expect("utf-8")).collect();
    let seen = values.len();
    values.sort();
    values.dedup();
    println!(
        "fencing: expected 200, seen {seen}, distinct {}, duplicates {}",
        values.len(),
        seen - values.len()
    );
    assert_eq!(seen, 200);
    assert_eq!(values.len(), 200);
}
