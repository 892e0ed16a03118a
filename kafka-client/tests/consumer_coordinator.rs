//! The consumer against a group coordinator that fails, moves or is slow
//! to load, and static membership (KIP-345), on the bundled broker.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_broker::{BrokerConfig, Cluster, FaultAction, FaultScope};
use kafka_client::consumer::{Consumer, ConsumerRecord, ConsumerSettings, OffsetReset};
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings, TopicPartition};
use kafka_client::protocol::messages::{DescribeGroupsRequest, FindCoordinatorRequest};
use kafka_client::protocol::{ApiKey, ErrorCode};
use support::{cluster, tp};

fn settings(cluster: &Cluster, group: &str, reset: OffsetReset) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some(group.into());
    settings.auto_offset_reset = reset;
    settings.enable_auto_commit = false;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    settings
}

async fn produce(cluster: &Cluster, topic: &str, partition: i32, count: usize) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    for i in 0..count {
        producer
            .send_and_wait(
                ProducerRecord::new(topic)
                    .partition(partition)
                    .value(format!("{topic}-{partition}-{i}")),
            )
            .await
            .expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// Polls until `count` records arrived or `limit` passed.
async fn collect(consumer: &mut Consumer, count: usize, limit: Duration) -> Vec<ConsumerRecord> {
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    while records.len() < count && tokio::time::Instant::now() < deadline {
        records.extend(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll"),
        );
    }
    records
}

/// A consumer of `group` subscribed to `topic`, not yet joined.
fn member(cluster: &Cluster, group: &str, topic: &str) -> Consumer {
    let mut consumer =
        Consumer::new(settings(cluster, group, OffsetReset::Earliest)).expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// A consumer of `group` that joined and holds its partitions (records
/// polled on the way are dropped).
async fn joined(cluster: &Cluster, group: &str, topic: &str) -> Consumer {
    let mut consumer = member(cluster, group, topic);
    for _ in 0..100 {
        consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll");
        if !consumer.assignment().is_empty() {
            return consumer;
        }
    }
    panic!("{group} never got an assignment")
}

/// The group's generation and member ids, asked of its coordinator.
async fn describe(cluster: &Cluster, group: &str) -> (String, Vec<String>) {
    let network = Network::new(NetworkConfig::new(
        cluster
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect(),
    ))
    .expect("network");
    // v3: one key, answered in the top-level fields.
    let found = network
        .any()
        .await
        .expect("a broker")
        .call(
            &FindCoordinatorRequest {
                key: group.into(),
                ..Default::default()
            },
            3,
        )
        .await
        .expect("FindCoordinator");
    assert_eq!(found.error_code, 0, "FindCoordinator");
    let described = network
        .connect(&format!("{}:{}", found.host, found.port))
        .await
        .expect("coordinator")
        .send(&DescribeGroupsRequest {
            groups: vec![group.into()],
            ..Default::default()
        })
        .await
        .expect("DescribeGroups");
    let group = &described.groups[0];
    let mut members: Vec<String> = group.members.iter().map(|m| m.member_id.clone()).collect();
    members.sort();
    (group.group_state.clone(), members)
}

/// A coordinator still loading its offsets must not read as "nothing
/// committed": with `auto.offset.reset=latest` that would skip every
/// record committed but not yet read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loading_coordinator_delays_the_committed_offsets_instead_of_losing_them() {
    let cluster = cluster(2).await;
    cluster.create_topic("loading", 1).expect("topic");
    produce(&cluster, "loading", 0, 10).await;
    let mut first = joined(&cluster, "loading-group", "loading").await;
    first
        .commit_offsets(&BTreeMap::from([(tp("loading", 0), 4)]))
        .await
        .expect("commit");
    first.close().await.expect("close");

    let loading =
        cluster.inject_error(ApiKey::OffsetFetch, ErrorCode::CoordinatorLoadInProgress, 3);
    let mut consumer =
        Consumer::new(settings(&cluster, "loading-group", OffsetReset::Latest)).expect("consumer");
    consumer.subscribe(&["loading"]).expect("subscribe");
    let records = collect(&mut consumer, 6, Duration::from_secs(15)).await;
    assert_eq!(
        loading.hits(),
        3,
        "the consumer asked again after each error"
    );
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        [4, 5, 6, 7, 8, 9],
        "resumed from the committed offset"
    );
    consumer.close().await.expect("close");
}

/// Commits ride out a coordinator that moved (NOT_COORDINATOR) and one that
/// is briefly unavailable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_retry_on_a_moved_or_unavailable_coordinator() {
    let cluster = cluster(2).await;
    cluster.create_topic("moved", 1).expect("topic");
    produce(&cluster, "moved", 0, 3).await;
    let mut consumer = joined(&cluster, "moved-group", "moved").await;
    for code in [
        ErrorCode::NotCoordinator,
        ErrorCode::CoordinatorNotAvailable,
    ] {
        let injected = cluster.inject_error(ApiKey::OffsetCommit, code, 2);
        let offset = if code == ErrorCode::NotCoordinator {
            2
        } else {
            3
        };
        consumer
            .commit_offsets(&BTreeMap::from([(tp("moved", 0), offset)]))
            .await
            .unwrap_or_else(|e| panic!("commit despite {code}: {e}"));
        assert_eq!(injected.hits(), 2, "{code} was answered twice");
        let committed = consumer
            .committed(&[tp("moved", 0)])
            .await
            .expect("committed");
        assert_eq!(committed.get(&tp("moved", 0)), Some(&offset), "{code}");
    }
    // A code that is not retriable is the caller's to see.
    let denied = cluster.inject_error(ApiKey::OffsetCommit, ErrorCode::GroupAuthorizationFailed, 1);
    let error = consumer
        .commit_offsets(&BTreeMap::from([(tp("moved", 0), 3)]))
        .await
        .expect_err("not retried");
    assert!(!error.retriable(), "{error}");
    assert_eq!(denied.hits(), 1);
    consumer.close().await.expect("close");
}

/// What a member polling in its own task last showed.
#[derive(Debug, Default, Clone)]
struct Polled {
    assignment: Vec<TopicPartition>,
    /// Joins completed (`ConsumerStats::rebalances`).
    rebalances: u64,
}

/// Polls `consumer` in its own task (a member's JoinGroup waits for the
/// others, so members cannot share one task) and publishes its assignment
/// and rebalance count, until `stop`; hands the consumer back.
fn keep_polling(
    mut consumer: Consumer,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<Polled>>, tokio::task::JoinHandle<Consumer>) {
    let seen = Arc::new(Mutex::new(Polled::default()));
    let published = seen.clone();
    let task = tokio::spawn(async move {
        for _ in 0..3000 {
            if stop.load(Ordering::Acquire) {
                break;
            }
            consumer
                .poll(Duration::from_millis(20))
                .await
                .expect("poll");
            *published.lock().expect("lock") = Polled {
                assignment: consumer.assignment(),
                rebalances: consumer.stats().rebalances,
            };
        }
        consumer
    });
    (seen, task)
}

fn polled(member: &Arc<Mutex<Polled>>) -> Polled {
    member.lock().expect("lock").clone()
}

/// Waits until `condition` holds, for up to 15 s.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn static_member(cluster: &Cluster, instance: &str) -> Consumer {
    let mut settings = settings(cluster, "static-group", OffsetReset::Earliest);
    settings.group_instance_id = Some(instance.into());
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["static"]).expect("subscribe");
    consumer
}

/// A heartbeat that fails because the connection broke or the coordinator
/// moved, is unavailable or loading is not a rebalance: the members find
/// the coordinator again and go on in the same generation, as Java's do.
/// (Rejoining at once, as this client did, made every blip a rebalance of
/// the whole group.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_that_fail_briefly_do_not_rebalance_the_group() {
    let cluster = cluster(2).await;
    cluster.create_topic("blip", 2).expect("topic");
    let stop = Arc::new(AtomicBool::new(false));
    let (a, a_task) = keep_polling(member(&cluster, "blip-group", "blip"), stop.clone());
    let (b, b_task) = keep_polling(member(&cluster, "blip-group", "blip"), stop.clone());
    until("both hold a partition", || {
        polled(&a).assignment.len() == 1 && polled(&b).assignment.len() == 1
    })
    .await;
    let (state, members) = describe(&cluster, "blip-group").await;
    assert_eq!((state.as_str(), members.len()), ("Stable", 2));
    let rebalances = (polled(&a).rebalances, polled(&b).rebalances);
    for fault in [
        FaultAction::CloseConnection,
        FaultAction::Error(ErrorCode::NotCoordinator),
        FaultAction::Error(ErrorCode::CoordinatorNotAvailable),
        FaultAction::Error(ErrorCode::CoordinatorLoadInProgress),
    ] {
        let failing = cluster
            .faults()
            .add(FaultScope::api(ApiKey::Heartbeat).times(4), fault);
        until("the failing heartbeats were sent", || failing.hits() == 4).await;
        // Counts the heartbeats after the failures (served normally).
        let answered = cluster.faults().add(
            FaultScope::api(ApiKey::Heartbeat),
            FaultAction::Delay(Duration::ZERO),
        );
        until("heartbeats go on", || answered.hits() >= 6).await;
        answered.remove();
        assert_eq!(
            (polled(&a).rebalances, polled(&b).rebalances),
            rebalances,
            "no member rejoined after {fault:?}"
        );
        assert_eq!(
            describe(&cluster, "blip-group").await,
            ("Stable".to_owned(), members.clone()),
            "after {fault:?}"
        );
    }
    stop.store(true, Ordering::Release);
    for task in [a_task, b_task] {
        task.await.expect("member").close().await.expect("close");
    }
}

/// A member whose heartbeats go unanswered for a whole session timeout
/// takes its generation as over (the coordinator has removed it by then)
/// and rejoins; not sooner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_for_its_session_timeout_rejoins() {
    let mut config = BrokerConfig {
        brokers: 1,
        ..BrokerConfig::default()
    };
    config
        .set("group.min.session.timeout.ms", "1000")
        .expect("config");
    let cluster = Cluster::start(config).await.expect("cluster");
    cluster.create_topic("cut", 1).expect("topic");
    let session_timeout = Duration::from_millis(1500);
    let mut settings = settings(&cluster, "cut-group", OffsetReset::Earliest);
    settings.session_timeout = session_timeout;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["cut"]).expect("subscribe");
    let stop = Arc::new(AtomicBool::new(false));
    let (member, task) = keep_polling(consumer, stop.clone());
    until("it holds the partition", || {
        polled(&member).assignment.len() == 1
    })
    .await;
    let rebalances = polled(&member).rebalances;

    let cut = cluster.faults().add(
        FaultScope::api(ApiKey::Heartbeat),
        FaultAction::CloseConnection,
    );
    let cut_at = tokio::time::Instant::now();
    until("it rejoins", || polled(&member).rebalances > rebalances).await;
    let waited = cut_at.elapsed();
    assert!(cut.hits() >= 2, "heartbeats were retried: {}", cut.hits());
    // The last answered heartbeat was at most one interval (100 ms) before
    // the cut, so the session ended at least 1.4 s after it.
    assert!(
        waited >= session_timeout - Duration::from_millis(200),
        "rejoined {waited:?} after the cut, before its session timeout"
    );
    cut.remove();
    until("it holds the partition again", || {
        polled(&member).assignment.len() == 1
    })
    .await;
    stop.store(true, Ordering::Release);
    task.await.expect("member").close().await.expect("close");
}

/// `subscribe` called again by a member changes the topics of the same
/// membership: it rejoins at once with them, and the group never holds a
/// second member for it (which the coordinator would wait for until the
/// first one's session timed out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_again_changes_the_topics_of_the_same_member() {
    let cluster = cluster(2).await;
    cluster.create_topic("first-topic", 1).expect("topic");
    cluster.create_topic("second-topic", 1).expect("topic");
    produce(&cluster, "second-topic", 0, 3).await;
    let mut consumer = joined(&cluster, "resubscribe-group", "first-topic").await;
    let (_, members) = describe(&cluster, "resubscribe-group").await;
    assert_eq!(members.len(), 1);

    consumer
        .subscribe(&["first-topic", "second-topic"])
        .expect("subscribe");
    let started = tokio::time::Instant::now();
    let records = collect(&mut consumer, 3, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 3, "the added topic is read");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "rejoined in {:?}; the session timeout is 6 s",
        started.elapsed()
    );
    assert_eq!(
        consumer.assignment(),
        [tp("first-topic", 0), tp("second-topic", 0)]
    );
    assert_eq!(describe(&cluster, "resubscribe-group").await.1, members);

    consumer.subscribe(&["second-topic"]).expect("subscribe");
    for _ in 0..50 {
        consumer
            .poll(Duration::from_millis(50))
            .await
            .expect("poll");
        if consumer.assignment() == [tp("second-topic", 0)] {
            break;
        }
    }
    assert_eq!(consumer.assignment(), [tp("second-topic", 0)]);
    assert_eq!(describe(&cluster, "resubscribe-group").await.1, members);
    consumer.close().await.expect("close");
}

/// `unsubscribe` leaves the group at once (the other member takes every
/// partition without waiting for a session timeout) and leaves the
/// consumer usable with a manual assignment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_leaves_the_group_and_the_consumer_can_assign() {
    let cluster = cluster(2).await;
    cluster.create_topic("unsub", 2).expect("topic");
    let stop_a = Arc::new(AtomicBool::new(false));
    let stop_b = Arc::new(AtomicBool::new(false));
    let (a, a_task) = keep_polling(member(&cluster, "unsub-group", "unsub"), stop_a.clone());
    let (b, b_task) = keep_polling(member(&cluster, "unsub-group", "unsub"), stop_b.clone());
    until("both hold a partition", || {
        polled(&a).assignment.len() == 1 && polled(&b).assignment.len() == 1
    })
    .await;
    stop_a.store(true, Ordering::Release);
    let mut leaving = a_task.await.expect("a");
    let started = tokio::time::Instant::now();
    leaving.unsubscribe().await.expect("unsubscribe");
    assert!(leaving.assignment().is_empty());
    until("the other member holds both partitions", || {
        polled(&b).assignment.len() == 2
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}; the session timeout is 6 s",
        started.elapsed()
    );
    let (_, members) = describe(&cluster, "unsub-group").await;
    assert_eq!(members.len(), 1);

    produce(&cluster, "unsub", 1, 2).await;
    leaving.assign([tp("unsub", 1)]);
    let records = collect(&mut leaving, 2, Duration::from_secs(10)).await;
    assert_eq!(records.len(), 2, "read by manual assignment");
    leaving.close().await.expect("close");
    stop_b.store(true, Ordering::Release);
    b_task.await.expect("b").close().await.expect("close");
}

/// A static member (`group.instance.id`) that closes and comes back within
/// its session timeout neither leaves nor rebalances the group: it takes its
/// old membership back under a new member id, and the other member is not
/// disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_restarts_without_a_rebalance() {
    let cluster = cluster(2).await;
    cluster.create_topic("static", 2).expect("topic");
    let stop_a = Arc::new(AtomicBool::new(false));
    let stop_b = Arc::new(AtomicBool::new(false));
    let (a, a_task) = keep_polling(static_member(&cluster, "instance-a"), stop_a.clone());
    let (b, b_task) = keep_polling(static_member(&cluster, "instance-b"), stop_b.clone());
    let len = |m: &Arc<Mutex<Polled>>| polled(m).assignment.len();
    until("both hold a partition", || len(&a) == 1 && len(&b) == 1).await;
    let a_partitions = polled(&a).assignment;
    let b_partitions = polled(&b).assignment;
    let (state, before) = describe(&cluster, "static-group").await;
    assert_eq!((state.as_str(), before.len()), ("Stable", 2));

    stop_a.store(true, Ordering::Release);
    a_task.await.expect("a").close().await.expect("close a");
    let (state, after_close) = describe(&cluster, "static-group").await;
    assert_eq!(
        (state.as_str(), &after_close),
        ("Stable", &before),
        "closing a static member leaves the group as it was"
    );

    let stop_again = Arc::new(AtomicBool::new(false));
    let (again, again_task) =
        keep_polling(static_member(&cluster, "instance-a"), stop_again.clone());
    until("the restarted member holds a partition", || {
        len(&again) == 1
    })
    .await;
    assert_eq!(
        polled(&again).assignment,
        a_partitions,
        "the same partitions"
    );
    let (state, after_restart) = describe(&cluster, "static-group").await;
    assert_eq!(state, "Stable");
    assert_eq!(after_restart.len(), 2);
    assert_ne!(after_restart, before, "instance-a holds a new member id");
    assert_eq!(polled(&b).assignment, b_partitions, "b was not rebalanced");
    for (stop, task) in [(stop_again, again_task), (stop_b, b_task)] {
        stop.store(true, Ordering::Release);
        task.await.expect("member").close().await.expect("close");
    }
}

/// At-least-once across crashes: a member that dies (no LeaveGroup) after
/// committing part of what it read hands the rest to the next member, which
/// reads exactly the uncommitted records again; after a commit of
/// everything handed out, a crash repeats nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_repeats_exactly_the_uncommitted_records() {
    let cluster = cluster(2).await;
    cluster.create_topic("crash", 1).expect("topic");
    produce(&cluster, "crash", 0, 10).await;
    let offsets = |records: &[ConsumerRecord]| records.iter().map(|r| r.offset).collect::<Vec<_>>();

    // Processed and committed 6 of the 10 it read, then crashed.
    let mut first = member(&cluster, "crash-group", "crash");
    let read = collect(&mut first, 10, Duration::from_secs(10)).await;
    assert_eq!(offsets(&read), (0..10).collect::<Vec<i64>>());
    first
        .commit_offsets(&BTreeMap::from([(tp("crash", 0), 6)]))
        .await
        .expect("commit");
    drop(first);

    // The next member gets the partition once the dead one's session
    // expires, and starts at the commit: 6..9 again, nothing before.
    let mut second = member(&cluster, "crash-group", "crash");
    let again = collect(&mut second, 4, Duration::from_secs(20)).await;
    assert_eq!(
        offsets(&again),
        [6, 7, 8, 9],
        "the uncommitted records, once more"
    );
    second.commit().await.expect("commit what was handed out");
    drop(second);

    produce(&cluster, "crash", 0, 2).await;
    let mut third = member(&cluster, "crash-group", "crash");
    let after = collect(&mut third, 2, Duration::from_secs(20)).await;
    assert_eq!(offsets(&after), [10, 11], "nothing committed is read again");
    third.close().await.expect("close");
}

/// What a group member of the test below saw: every value handed to it,
/// and the values whose commit failed (a rebalance took the partition
/// first), which the next owner may read again.
#[derive(Default)]
struct Seen {
    values: Vec<String>,
    uncommitted: Vec<String>,
}

/// Polls and commits after every poll until `stop` (leaving the group) or
/// `kill` (dropping the consumer as a crash would: no LeaveGroup).
fn worker(
    mut consumer: Consumer,
    seen: Arc<Mutex<Seen>>,
    assigned: Arc<Mutex<usize>>,
    stop: Arc<AtomicBool>,
    kill: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for _ in 0..5000 {
            if kill.load(Ordering::Acquire) {
                drop(consumer);
                return;
            }
            if stop.load(Ordering::Acquire) {
                break;
            }
            let records = consumer
                .poll(Duration::from_millis(20))
                .await
                .expect("poll");
            *assigned.lock().expect("lock") = consumer.assignment().len();
            if records.is_empty() {
                continue;
            }
            let values: Vec<String> = records
                .iter()
                .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into())
                .collect();
            let committed = consumer.commit().await.is_ok();
            let mut seen = seen.lock().expect("lock");
            if !committed {
                seen.uncommitted.extend(values.iter().cloned());
            }
            seen.values.extend(values);
        }
        consumer.close().await.expect("close");
    })
}

/// Issue #5's group proof: three members over twelve partitions; one is
/// killed (no LeaveGroup) and its partitions move to the others after its
/// session times out; a replacement joins and takes its share back. Every
/// record is read; a record is read twice only if a rebalance beat its
/// commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_loses_nothing_and_a_replacement_rejoins() {
    let cluster = cluster(2).await;
    cluster.create_topic("twelve", 12).expect("topic");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let start = |kill: &Arc<AtomicBool>| {
        let assigned = Arc::new(Mutex::new(0usize));
        let task = worker(
            member(&cluster, "twelve-group", "twelve"),
            seen.clone(),
            assigned.clone(),
            stop.clone(),
            kill.clone(),
        );
        (assigned, task)
    };
    let alive = Arc::new(AtomicBool::new(false));
    let doomed = Arc::new(AtomicBool::new(false));
    let (a, a_task) = start(&alive);
    let (b, b_task) = start(&alive);
    let (c, c_task) = start(&doomed);
    let count = |m: &Arc<Mutex<usize>>| *m.lock().expect("lock");
    until("4 partitions each", || {
        (count(&a), count(&b), count(&c)) == (4, 4, 4)
    })
    .await;

    let first = produce_round(&cluster, "first").await;
    let all_read = |n: usize| {
        let seen = seen.clone();
        // Distinct values: a duplicate must not stand in for a record
        // still to come.
        move || {
            let seen = seen.lock().expect("lock");
            seen.values
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                >= n
        }
    };
    until("the first 240 records", all_read(240)).await;

    doomed.store(true, Ordering::Release);
    c_task.await.expect("killed member");
    let second = produce_round(&cluster, "second").await;
    until("the others took over", || count(&a) + count(&b) == 12).await;
    until("the second 240 records", all_read(480)).await;

    let revived = Arc::new(AtomicBool::new(false));
    let (c2, c2_task) = start(&revived);
    until("4 partitions each again", || {
        (count(&a), count(&b), count(&c2)) == (4, 4, 4)
    })
    .await;
    let third = produce_round(&cluster, "third").await;
    until("the third 240 records", all_read(720)).await;
    stop.store(true, Ordering::Release);
    for task in [a_task, b_task, c2_task] {
        task.await.expect("member");
    }

    let seen = seen.lock().expect("lock");
    let expected: std::collections::BTreeSet<String> =
        [first, second, third].into_iter().flatten().collect();
    let mut times: BTreeMap<&String, usize> = BTreeMap::new();
    for value in &seen.values {
        *times.entry(value).or_default() += 1;
    }
    let missing: Vec<&String> = expected.iter().filter(|v| !times.contains_key(v)).collect();
    let duplicates: Vec<&String> = times
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(v, _)| *v)
        .collect();
    let unexpected = times.keys().filter(|v| !expected.contains(**v)).count();
    println!(
        "expected {}, read {}, duplicates {}, missing {}, unexpected {unexpected}, uncommitted {}",
        expected.len(),
        seen.values.len(),
        duplicates.len(),
        missing.len(),
        seen.uncommitted.len()
    );
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(unexpected, 0);
    let unexplained: Vec<&&String> = duplicates
        .iter()
        .filter(|d| !seen.uncommitted.contains(**d))
        .collect();
    assert!(
        unexplained.is_empty(),
        "read twice though committed: {unexplained:?}"
    );
}

/// 20 records on each of the 12 partitions, values named after `round`.
async fn produce_round(cluster: &Cluster, round: &str) -> Vec<String> {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::new();
    let mut values = Vec::new();
    for p in 0..12 {
        for i in 0..20 {
            let value = format!("{round}-{p}-{i}");
            let record = ProducerRecord::new("twelve")
                .partition(p)
                .value(value.clone());
            deliveries.push(producer.send(record).await.expect("queued"));
            values.push(value);
        }
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
    values
}

/// `poll_events` reports a rebalance in order: the first member hears of
/// its assignment, then, when a second member joins, of the revocation
/// (and commits then, still a member of the old generation), then of its
/// new, smaller assignment. The second member starts where the first
/// committed: nothing is read twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_events_reports_revocation_before_the_new_assignment() {
    use kafka_client::consumer::ConsumerEvent;
    let cluster = cluster(2).await;
    cluster.create_topic("events", 2).expect("topic");
    produce(&cluster, "events", 0, 5).await;
    produce(&cluster, "events", 1, 5).await;

    /// Calls poll_events until `stop`, logging events and record offsets.
    fn run(
        mut consumer: Consumer,
        stop: Arc<AtomicBool>,
        log: Arc<Mutex<Vec<String>>>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            for _ in 0..3000 {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let event = consumer
                    .poll_events(Duration::from_millis(20))
                    .await
                    .expect("poll_events");
                let entry = match event {
                    ConsumerEvent::Records(records) if records.is_empty() => continue,
                    ConsumerEvent::Records(records) => {
                        let read: Vec<String> = records
                            .iter()
                            .map(|r| format!("{}@{}", r.partition, r.offset))
                            .collect();
                        consumer.commit().await.expect("commit after processing");
                        format!("records {}", read.join(" "))
                    }
                    ConsumerEvent::Revoked(partitions) => {
                        consumer.commit().await.expect("commit on revocation");
                        format!("revoked {}", partitions.len())
                    }
                    ConsumerEvent::Assigned(partitions) => {
                        format!("assigned {}", partitions.len())
                    }
                };
                log.lock().expect("lock").push(entry);
            }
            consumer.close().await.expect("close");
        })
    }

    let stop = Arc::new(AtomicBool::new(false));
    let first_log = Arc::new(Mutex::new(Vec::new()));
    let first = run(
        member(&cluster, "events-group", "events"),
        stop.clone(),
        first_log.clone(),
    );
    let read_count = |log: &Arc<Mutex<Vec<String>>>| -> usize {
        log.lock()
            .expect("lock")
            .iter()
            .filter_map(|e| e.strip_prefix("records "))
            .map(|r| r.split(' ').count())
            .sum()
    };
    until("the first member read all 10", || {
        read_count(&first_log) == 10
    })
    .await;

    let second_log = Arc::new(Mutex::new(Vec::new()));
    let second = run(
        member(&cluster, "events-group", "events"),
        stop.clone(),
        second_log.clone(),
    );
    let settled = |log: &Arc<Mutex<Vec<String>>>| {
        log.lock()
            .expect("lock")
            .last()
            .is_some_and(|e| e == "assigned 1")
    };
    until("both hold one partition", || {
        settled(&first_log) && settled(&second_log)
    })
    .await;
    produce(&cluster, "events", 0, 5).await;
    produce(&cluster, "events", 1, 5).await;
    until("the next 10 records", || {
        read_count(&first_log) + read_count(&second_log) == 20
    })
    .await;
    // As things stood before shutting down: the first member's LeaveGroup
    // on close rebalances the other one, which is not what is checked here.
    let first_log = first_log.lock().expect("lock").clone();
    let second_log = second_log.lock().expect("lock").clone();
    stop.store(true, Ordering::Release);
    first.await.expect("first");
    second.await.expect("second");
    let kinds = |log: &[String]| -> Vec<String> {
        let mut kinds: Vec<String> = log
            .iter()
            .map(|e| {
                if e.starts_with("records") {
                    "records".into()
                } else {
                    e.clone()
                }
            })
            .collect();
        kinds.dedup();
        kinds
    };
    assert_eq!(
        kinds(&first_log),
        [
            "assigned 2",
            "records",
            "revoked 2",
            "assigned 1",
            "records"
        ],
        "{first_log:?}"
    );
    assert_eq!(
        kinds(&second_log),
        ["assigned 1", "records"],
        "{second_log:?}"
    );
    // Offsets 0..10 of both partitions, each read once across the two.
    let mut read: Vec<String> = first_log
        .iter()
        .chain(&second_log)
        .filter_map(|e| e.strip_prefix("records "))
        .flat_map(|r| r.split(' ').map(str::to_owned))
        .collect();
    read.sort();
    let mut expected: Vec<String> = (0..2)
        .flat_map(|p| (0..10).map(move |o| format!("{p}@{o}")))
        .collect();
    expected.sort();
    assert_eq!(read, expected);
}

/// The consumer's counters: records and bytes handed out, fetches, lag
/// per partition from the high watermark, commits and rebalances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_records_lag_commits_and_rebalances() {
    let cluster = cluster(2).await;
    cluster.create_topic("counted", 1).expect("topic");
    produce(&cluster, "counted", 0, 10).await;
    let mut settings = settings(&cluster, "counted-group", OffsetReset::Earliest);
    settings.max_poll_records = 4;
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["counted"]).expect("subscribe");
    let read = collect(&mut consumer, 4, Duration::from_secs(10)).await;
    assert_eq!(read.len(), 4, "max.poll.records caps a poll");
    consumer.commit().await.expect("commit");
    let stats = consumer.stats();
    assert_eq!(stats.records_consumed, 4);
    let bytes: usize = read
        .iter()
        .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    assert_eq!(stats.bytes_consumed, bytes as u64);
    assert!(stats.fetch_requests >= 1, "{stats:?}");
    assert_eq!(stats.commits, 1);
    assert_eq!(stats.rebalances, 1);
    assert!(stats.rebalance_time > Duration::ZERO);
    assert_eq!(
        stats.lag.get(&tp("counted", 0)),
        Some(&6),
        "10 in the log, 4 handed out: {stats:?}"
    );
    consumer.close().await.expect("close");
}
