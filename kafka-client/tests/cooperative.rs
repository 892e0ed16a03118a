//! Incremental cooperative rebalancing (KIP-429) with the
//! `cooperative-sticky` assignor, end to end on the bundled broker: a
//! member that joins takes only what balance needs, the others revoke only
//! the partitions that move, keep reading the rest without losing their
//! positions, and no partition is ever owned by two members at once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_broker::Cluster;
use kafka_client::consumer::assignor::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor,
};
use kafka_client::consumer::{Consumer, ConsumerEvent, ConsumerSettings, OffsetReset};
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings};
use kafka_client::protocol::messages::{DescribeGroupsRequest, FindCoordinatorRequest};
use support::cluster;

const TOPIC: &str = "coop";
const PARTITIONS: i32 = 6;

fn settings(cluster: &Cluster, group: &str, assignors: Vec<Arc<dyn Assignor>>) -> ConsumerSettings {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some(group.into());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.enable_auto_commit = false;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    settings.assignors = assignors;
    settings
}

fn cooperative() -> Vec<Arc<dyn Assignor>> {
    vec![Arc::new(CooperativeStickyAssignor)]
}

/// `per_partition` records in each partition, values `{round}-{p}-{i}`.
async fn produce(cluster: &Cluster, round: &str, per_partition: usize) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    let mut deliveries = Vec::new();
    for i in 0..per_partition {
        for p in 0..PARTITIONS {
            deliveries.push(
                producer
                    .send(
                        ProducerRecord::new(TOPIC)
                            .partition(p)
                            .value(format!("{round}-{p}-{i}")),
                    )
                    .await
                    .expect("queued"),
            );
        }
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// What one member saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    /// (partition, offset) of each record handed out.
    Records(Vec<(i32, i64)>),
}

/// Everything the members share: who owns what (by their own events), and
/// every time a member saw something that contradicts single ownership.
#[derive(Debug, Default)]
struct Ledger {
    owner: BTreeMap<i32, String>,
    violations: Vec<String>,
}

struct Running {
    log: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Runs a member on `poll_events` until `stop`: commits after each batch
/// of records and on revocation, and checks every event against `ledger`.
fn run(
    name: &'static str,
    mut consumer: Consumer,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) -> Running {
    let log = Arc::new(Mutex::new(Vec::new()));
    let shared = log.clone();
    let task = tokio::spawn(async move {
        for _ in 0..20_000 {
            if stop.load(Ordering::Acquire) {
                break;
            }
            let event = consumer
                .poll_events(Duration::from_millis(50))
                .await
                .expect("poll_events");
            let seen = match event {
                ConsumerEvent::Records(records) if records.is_empty() => continue,
                ConsumerEvent::Records(records) => {
                    let read: Vec<(i32, i64)> =
                        records.iter().map(|r| (r.partition, r.offset)).collect();
                    {
                        let mut ledger = ledger.lock().expect("lock");
                        for (p, o) in &read {
                            if ledger.owner.get(p).map(String::as_str) != Some(name) {
                                let owner = ledger.owner.get(p).cloned();
                                ledger
                                    .violations
                                    .push(format!("{name} read {p}@{o} owned by {owner:?}"));
                            }
                        }
                    }
                    consumer.commit().await.expect("commit after processing");
                    Seen::Records(read)
                }
                ConsumerEvent::Revoked(partitions) => {
                    consumer.commit().await.expect("commit on revocation");
                    let ps: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
                    let mut ledger = ledger.lock().expect("lock");
                    for p in &ps {
                        if ledger.owner.remove(p).as_deref() != Some(name) {
                            ledger
                                .violations
                                .push(format!("{name} revoked {p}, which it did not own"));
                        }
                    }
                    Seen::Revoked(ps)
                }
                ConsumerEvent::Assigned(partitions) => {
                    let ps: Vec<i32> = partitions.iter().map(|tp| tp.partition).collect();
                    let mut ledger = ledger.lock().expect("lock");
                    for p in &ps {
                        if let Some(other) = ledger.owner.insert(*p, name.into()) {
                            ledger.violations.push(format!(
                                "{name} was assigned {p} while {other} still owned it"
                            ));
                        }
                    }
                    Seen::Assigned(ps)
                }
            };
            shared.lock().expect("lock").push(seen);
        }
        // Leaving rebalances the others; what it owned is theirs to take.
        ledger
            .lock()
            .expect("lock")
            .owner
            .retain(|_, owner| owner != name);
        consumer.close().await.expect("close");
    });
    Running { log, task }
}

/// The partitions a member holds according to its own events.
fn holding(log: &[Seen]) -> BTreeSet<i32> {
    let mut held = BTreeSet::new();
    for seen in log {
        match seen {
            Seen::Assigned(ps) => held.extend(ps),
            Seen::Revoked(ps) => ps.iter().for_each(|p| {
                held.remove(p);
            }),
            Seen::Records(_) => {}
        }
    }
    held
}

fn read(log: &[Seen]) -> Vec<(i32, i64)> {
    log.iter()
        .flat_map(|seen| match seen {
            Seen::Records(r) => r.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// Waits until `condition` holds, for up to 20 s; on timeout shows what
/// the members saw.
async fn until(what: &str, runs: &[&Running], mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        if tokio::time::Instant::now() >= deadline {
            let logs: Vec<Vec<Seen>> = runs
                .iter()
                .map(|r| {
                    snapshot(&r.log)
                        .into_iter()
                        .filter(|s| !matches!(s, Seen::Records(_)))
                        .collect()
                })
                .collect();
            panic!("timed out: {what}; rebalance events: {logs:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn snapshot(log: &Arc<Mutex<Vec<Seen>>>) -> Vec<Seen> {
    log.lock().expect("lock").clone()
}

/// Two cooperative-sticky members share six partitions, then a third
/// joins while records keep arriving. The first two each revoke exactly
/// the one partition that moves to the newcomer, never their whole
/// assignment; they keep reading the other two without re-reading a
/// record (their positions survive the rebalance); the newcomer gets the
/// moved partitions only in the follow-up rebalance, after they were
/// revoked; and across the group every record is read, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_member_takes_only_what_moves_and_the_rest_keep_reading() {
    let cluster = cluster(2).await;
    cluster.create_topic(TOPIC, PARTITIONS).expect("topic");
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let member = |name: &'static str| {
        let mut consumer =
            Consumer::new(settings(&cluster, "coop-group", cooperative())).expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        run(name, consumer, stop.clone(), ledger.clone())
    };
    let a = member("a");
    let b = member("b");
    until("a and b hold three partitions each", &[&a, &b], || {
        holding(&snapshot(&a.log)).len() == 3 && holding(&snapshot(&b.log)).len() == 3
    })
    .await;
    produce(&cluster, "one", 20).await;
    let total_read =
        |runs: &[&Running]| -> usize { runs.iter().map(|r| read(&snapshot(&r.log)).len()).sum() };
    until("a and b read the first round", &[&a, &b], || {
        total_read(&[&a, &b]) == 6 * 20
    })
    .await;
    let (a_before, b_before) = (snapshot(&a.log), snapshot(&b.log));

    // The third member joins while the second round is being written.
    let c = member("c");
    let writer = {
        let bootstrap = cluster.bootstrap_servers();
        tokio::spawn(async move {
            let producer = Producer::new(ProducerSettings::new(&bootstrap)).expect("producer");
            for i in 0..40 {
                for p in 0..PARTITIONS {
                    producer
                        .send_and_wait(
                            ProducerRecord::new(TOPIC)
                                .partition(p)
                                .value(format!("two-{p}-{i}")),
                        )
                        .await
                        .expect("delivered");
                }
            }
            producer.close(Duration::from_secs(5)).await.expect("close");
        })
    };
    until("every member holds two partitions", &[&a, &b, &c], || {
        [&a, &b, &c]
            .iter()
            .all(|r| holding(&snapshot(&r.log)).len() == 2)
    })
    .await;
    writer.await.expect("writer");
    produce(&cluster, "three", 10).await;
    let expected_total = 6 * (20 + 40 + 10);
    until("the group read all three rounds", &[&a, &b, &c], || {
        total_read(&[&a, &b, &c]) >= expected_total
    })
    .await;
    // Before anyone closes: a LeaveGroup would start another rebalance.
    let logs: Vec<(&str, Vec<Seen>)> = vec![
        ("a", snapshot(&a.log)),
        ("b", snapshot(&b.log)),
        ("c", snapshot(&c.log)),
    ];
    let violations = ledger.lock().expect("lock").violations.clone();
    stop.store(true, Ordering::Release);
    for r in [a, b, c] {
        r.task.await.expect("member");
    }
    assert!(violations.is_empty(), "{violations:?}\n{logs:?}");

    // What a and b revoked after c joined: one partition each, never all
    // they held, and exactly what c ended up with.
    let mut moved = BTreeSet::new();
    for ((name, log), before) in logs.iter().take(2).zip([&a_before, &b_before]) {
        let held_before = holding(before);
        let after = &log[before.len()..];
        let revoked: Vec<&Vec<i32>> = after
            .iter()
            .filter_map(|s| match s {
                Seen::Revoked(ps) => Some(ps),
                _ => None,
            })
            .collect();
        assert_eq!(revoked.len(), 1, "{name} revoked once: {after:?}");
        assert_eq!(
            revoked[0].len(),
            1,
            "{name} revoked one partition: {after:?}"
        );
        assert!(
            revoked[0].len() < held_before.len(),
            "{name} never revokes its whole assignment"
        );
        assert!(held_before.contains(&revoked[0][0]));
        let assigned_after: Vec<&Vec<i32>> = after
            .iter()
            .filter_map(|s| match s {
                Seen::Assigned(ps) => Some(ps),
                _ => None,
            })
            .collect();
        assert!(
            assigned_after.iter().all(|ps| ps.is_empty()),
            "{name} kept its other partitions without having them assigned again: {after:?}"
        );
        let held_after = holding(log);
        assert!(held_after.is_subset(&held_before), "{name} is sticky");
        moved.insert(revoked[0][0]);
    }
    let c_log = &logs[2].1;
    assert_eq!(holding(c_log), moved, "c holds what a and b gave up");
    // c's first generation gave it nothing: the moving partitions were
    // still owned; the follow-up one gave them.
    let c_assigned: Vec<&Vec<i32>> = c_log
        .iter()
        .filter_map(|s| match s {
            Seen::Assigned(ps) => Some(ps),
            _ => None,
        })
        .collect();
    assert_eq!(
        c_assigned.first().map(|ps| ps.len()),
        Some(0),
        "c's first assignment waits for the revocations: {c_log:?}"
    );

    // Every offset of every partition read, none twice, no gaps.
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (_, log) in &logs {
        for (p, o) in read(log) {
            per_partition.entry(p).or_default().push(o);
        }
    }
    for p in 0..PARTITIONS {
        let mut offsets = per_partition.remove(&p).unwrap_or_default();
        offsets.sort();
        let read_count = offsets.len();
        offsets.dedup();
        let duplicates = read_count - offsets.len();
        let expected: Vec<i64> = (0..70).collect();
        assert_eq!(offsets, expected, "partition {p}: every offset, no gaps");
        assert_eq!(duplicates, 0, "partition {p}: read twice");
    }
}

/// The protocol the coordinator chose for `group`.
async fn chosen_protocol(cluster: &Cluster, group: &str) -> String {
    let network = Network::new(NetworkConfig::new(
        cluster
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect(),
    ))
    .expect("network");
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
    described.groups[0].protocol_data.clone()
}

/// Polls `consumer` in its own task (a member's JoinGroup waits for the
/// others, so members cannot share one task) until `stop`, publishing how
/// many partitions it holds; hands the consumer back.
fn keep_polling(
    mut consumer: Consumer,
    stop: Arc<AtomicBool>,
) -> (Arc<Mutex<usize>>, tokio::task::JoinHandle<Consumer>) {
    let held = Arc::new(Mutex::new(0));
    let published = held.clone();
    let task = tokio::spawn(async move {
        for _ in 0..3000 {
            if stop.load(Ordering::Acquire) {
                break;
            }
            consumer
                .poll(Duration::from_millis(20))
                .await
                .expect("poll");
            *published.lock().expect("lock") = consumer.assignment().len();
        }
        consumer
    });
    (held, task)
}

/// Several strategies are offered in JoinGroup, preferred first, and the
/// coordinator picks one every member offers: `cooperative-sticky,range`
/// with `roundrobin,range` agree on range; with another
/// `cooperative-sticky,range` member on cooperative-sticky.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_agrees_on_a_strategy_every_member_offers() {
    let cluster = cluster(2).await;
    cluster.create_topic(TOPIC, PARTITIONS).expect("topic");
    let upgrade: Vec<Arc<dyn Assignor>> =
        vec![Arc::new(CooperativeStickyAssignor), Arc::new(RangeAssignor)];
    let old: Vec<Arc<dyn Assignor>> = vec![Arc::new(RoundRobinAssignor), Arc::new(RangeAssignor)];
    for (group, second, expected) in [
        ("mixed-strategies", old, "range"),
        ("upgraded", upgrade.clone(), "cooperative-sticky"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let mut polling = Vec::new();
        for assignors in [upgrade.clone(), second] {
            let mut consumer =
                Consumer::new(settings(&cluster, group, assignors)).expect("consumer");
            consumer.subscribe(&[TOPIC]).expect("subscribe");
            polling.push(keep_polling(consumer, stop.clone()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while polling
            .iter()
            .any(|(held, _)| *held.lock().expect("lock") != 3)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{group}: never settled at 3 partitions each"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(chosen_protocol(&cluster, group).await, expected, "{group}");
        stop.store(true, Ordering::Release);
        for (_, task) in polling {
            task.await.expect("member").close().await.expect("close");
        }
    }
}

/// What a kcat (librdkafka) member of the group holds, from the rebalance
/// lines it writes to stderr, with when each change was read.
#[derive(Debug, Default)]
struct KcatView {
    held: BTreeSet<i32>,
    /// (when read, assigned?, partitions) per rebalance line.
    changes: Vec<(tokio::time::Instant, bool, Vec<i32>)>,
}

/// The partitions of a kcat line such as `% Group g rebalanced: incremental
/// assignment of 2 partition(s) (memberid ..., COOPERATIVE rebalance
/// protocol): t [0], t [3]`.
fn kcat_partitions(line: &str) -> Vec<i32> {
    line.split_once("protocol):")
        .map(|(_, list)| {
            list.split(',')
                .filter_map(|tp| tp.split_once('[')?.1.split_once(']')?.0.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// This consumer and librdkafka (kcat) in one cooperative-sticky group,
/// with each of them leading a rebalance: ours leads when kcat joins (it
/// reads librdkafka's subscription and hands over half in two phases),
/// then, after ours left, librdkafka leads when another of ours joins (it
/// reads our subscription and withholds what it still owns). Revocations
/// are incremental on both sides and every record is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_group_shared_with_librdkafka_hands_over_in_two_phases() {
    use tokio::io::AsyncBufReadExt;
    let have_kcat = std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("IncrementalAssign"));
    if !have_kcat {
        assert!(
            std::env::var_os("CI").is_none(),
            "kcat with IncrementalAssign is not installed; .ci/run installs it"
        );
        eprintln!("skipped: kcat (librdkafka) with IncrementalAssign is not installed");
        return;
    }
    let cluster = cluster(2).await;
    cluster.create_topic(TOPIC, PARTITIONS).expect("topic");
    produce(&cluster, "one", 10).await;
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let ours = |name: &'static str, stop: &Arc<AtomicBool>| {
        let mut consumer =
            Consumer::new(settings(&cluster, "with-kcat", cooperative())).expect("consumer");
        consumer.subscribe(&[TOPIC]).expect("subscribe");
        run(name, consumer, stop.clone(), ledger.clone())
    };
    let stop_a = Arc::new(AtomicBool::new(false));
    let a = ours("a", &stop_a);
    until("a holds everything and read the first round", &[&a], || {
        let log = snapshot(&a.log);
        holding(&log).len() == 6 && read(&log).len() == 60
    })
    .await;

    let mut kcat = tokio::process::Command::new("kcat")
        .args(["-b", &cluster.bootstrap_servers(), "-G", "with-kcat"])
        .args(["-X", "partition.assignment.strategy=cooperative-sticky"])
        .args(["-X", "auto.offset.reset=earliest"])
        .args(["-X", "auto.commit.interval.ms=100"])
        .args(["-X", "heartbeat.interval.ms=100"])
        .args(["-X", "session.timeout.ms=6000"])
        // Unbuffered: lines must arrive while it runs, not at exit.
        .args(["-u", "-f", "%p %o\\n", TOPIC])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kcat");
    let view = Arc::new(Mutex::new(KcatView::default()));
    let kcat_read = Arc::new(Mutex::new(Vec::<(i32, i64)>::new()));
    let stderr_watch = {
        let view = view.clone();
        let mut lines = tokio::io::BufReader::new(kcat.stderr.take().expect("stderr")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let assigned = line.contains("incremental assignment");
                if !assigned && !line.contains("incremental revoke") {
                    continue;
                }
                let ps = kcat_partitions(&line);
                let mut view = view.lock().expect("lock");
                for p in &ps {
                    if assigned {
                        view.held.insert(*p);
                    } else {
                        view.held.remove(p);
                    }
                }
                view.changes
                    .push((tokio::time::Instant::now(), assigned, ps));
            }
        })
    };
    let stdout_watch = {
        let kcat_read = kcat_read.clone();
        let mut lines = tokio::io::BufReader::new(kcat.stdout.take().expect("stdout")).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut fields = line.split(' ').map(str::parse::<i64>);
                if let (Some(Ok(p)), Some(Ok(o))) = (fields.next(), fields.next()) {
                    kcat_read.lock().expect("lock").push((p as i32, o));
                }
            }
        })
    };
    let kcat_holds = |n: usize| view.lock().expect("lock").held.len() == n;
    until("a and kcat hold three each", &[&a], || {
        kcat_holds(3) && holding(&snapshot(&a.log)).len() == 3
    })
    .await;
    let a_seen = snapshot(&a.log);
    let kcat_held: BTreeSet<i32> = view.lock().expect("lock").held.clone();
    assert!(
        holding(&a_seen).is_disjoint(&kcat_held),
        "a {:?} and kcat {kcat_held:?} share nothing",
        holding(&a_seen)
    );
    // a revoked exactly what kcat got, once, and it was revoked before
    // kcat was given it (two phases; a leads).
    let revoked: Vec<Vec<i32>> = a_seen
        .iter()
        .filter_map(|s| match s {
            Seen::Revoked(ps) => Some(ps.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(revoked.len(), 1, "{a_seen:?}");
    assert_eq!(
        revoked[0].iter().copied().collect::<BTreeSet<i32>>(),
        kcat_held,
        "a revoked only what kcat now holds"
    );
    produce(&cluster, "two", 10).await;

    // a leaves; kcat takes everything, then leads when b joins.
    stop_a.store(true, Ordering::Release);
    let Running { log: a_log, task } = a;
    task.await.expect("a");
    let a_final = snapshot(&a_log);
    until("kcat holds everything after a left", &[], || kcat_holds(6)).await;
    let stop_b = Arc::new(AtomicBool::new(false));
    let b = ours("b", &stop_b);
    until("b and kcat hold three each", &[&b], || {
        kcat_holds(3) && holding(&snapshot(&b.log)).len() == 3
    })
    .await;
    produce(&cluster, "three", 10).await;
    let everything_read = || {
        let mut offsets: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
        for (p, o) in read(&a_final).into_iter().chain(read(&snapshot(&b.log))) {
            offsets.entry(p).or_default().insert(o);
        }
        for (p, o) in kcat_read.lock().expect("lock").iter() {
            offsets.entry(*p).or_default().insert(*o);
        }
        (0..PARTITIONS).all(|p| offsets.get(&p).is_some_and(|o| o.len() == 30))
    };
    until("every record read by someone", &[&b], everything_read).await;
    let b_log = snapshot(&b.log);
    let violations = ledger.lock().expect("lock").violations.clone();
    stop_b.store(true, Ordering::Release);
    b.task.await.expect("b");
    kcat.kill().await.expect("kill kcat");
    stderr_watch.abort();
    stdout_watch.abort();
    assert!(violations.is_empty(), "{violations:?}");
    // librdkafka led: b's first assignment was empty (what it would get
    // was still kcat's), b never revoked anything, and kcat's revocation
    // was incremental (three, not six).
    let b_assigned: Vec<&Vec<i32>> = b_log
        .iter()
        .filter_map(|s| match s {
            Seen::Assigned(ps) => Some(ps),
            _ => None,
        })
        .collect();
    assert_eq!(b_assigned.first().map(|ps| ps.len()), Some(0), "{b_log:?}");
    assert!(
        !b_log.iter().any(|s| matches!(s, Seen::Revoked(_))),
        "{b_log:?}"
    );
    let changes = view.lock().expect("lock").changes.clone();
    let kcat_revokes: Vec<usize> = changes
        .iter()
        .filter(|(_, assigned, ps)| !assigned && !ps.is_empty())
        .map(|(_, _, ps)| ps.len())
        .collect();
    assert_eq!(kcat_revokes, [3], "kcat revoked incrementally: {changes:?}");
}

/// A cooperative member that stops polling past `max.poll.interval.ms`
/// leaves; its partitions go to the other member at once (nobody claims
/// them any more). When it polls again it hears of it, then its partitions
/// are reported revoked as lost: the offsets it consumed but never
/// committed are dropped, so committing then cannot move the new owner's
/// committed offsets back. It rejoins owning nothing and gets its share in
/// two phases, like any new member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stopped_polling_loses_its_partitions_without_committing_them() {
    let cluster = cluster(2).await;
    cluster.create_topic("lost", 2).expect("topic");
    let produce_to = |round: &'static str| {
        let bootstrap = cluster.bootstrap_servers();
        async move {
            let producer = Producer::new(ProducerSettings::new(&bootstrap)).expect("producer");
            for i in 0..10 {
                for p in 0..2 {
                    producer
                        .send_and_wait(
                            ProducerRecord::new("lost")
                                .partition(p)
                                .value(format!("{round}-{i}")),
                        )
                        .await
                        .expect("delivered");
                }
            }
            producer.close(Duration::from_secs(5)).await.expect("close");
        }
    };
    produce_to("one").await;
    let mut slow_settings = settings(&cluster, "lost-group", cooperative());
    slow_settings.max_poll_interval = Duration::from_millis(600);
    let mut slow = Consumer::new(slow_settings).expect("consumer");
    slow.subscribe(&["lost"]).expect("subscribe");
    // It reads everything and commits nothing.
    let mut slow_read = 0;
    for _ in 0..400 {
        if let ConsumerEvent::Records(records) = slow
            .poll_events(Duration::from_millis(50))
            .await
            .expect("poll_events")
        {
            slow_read += records.len();
        }
        if slow_read == 20 {
            break;
        }
    }
    assert_eq!(slow_read, 20, "the slow member read the first round");
    let slow_held = slow.assignment();
    assert_eq!(slow_held.len(), 2);

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy =
        Consumer::new(settings(&cluster, "lost-group", cooperative())).expect("consumer");
    busy.subscribe(&["lost"]).expect("subscribe");
    let busy = run("busy", busy, stop.clone(), ledger.clone());
    until("busy took both partitions and read them", &[&busy], || {
        let log = snapshot(&busy.log);
        holding(&log).len() == 2 && read(&log).len() == 20
    })
    .await;
    produce_to("two").await;
    until("busy read and committed the second round", &[&busy], || {
        read(&snapshot(&busy.log)).len() == 40
    })
    .await;

    let error = slow
        .poll_events(Duration::from_millis(50))
        .await
        .expect_err("told it left");
    assert!(
        error.to_string().contains("max.poll.interval.ms"),
        "{error}"
    );
    match slow
        .poll_events(Duration::from_millis(50))
        .await
        .expect("poll_events")
    {
        ConsumerEvent::Revoked(partitions) => assert_eq!(partitions, slow_held),
        other => panic!("expected its partitions reported lost, got {other:?}"),
    }
    slow.commit().await.expect("nothing to commit");
    let committed = slow.committed(&slow_held).await.expect("committed");
    assert_eq!(
        committed.values().copied().collect::<Vec<i64>>(),
        [20, 20],
        "the new owner's commits stand: {committed:?}"
    );
    // It rejoins owning nothing: first nothing, then one partition busy
    // revoked for it.
    let mut assigned = Vec::new();
    for _ in 0..400 {
        if let ConsumerEvent::Assigned(partitions) = slow
            .poll_events(Duration::from_millis(50))
            .await
            .expect("poll_events")
        {
            assigned.push(partitions.len());
        }
        if slow.assignment().len() == 1 {
            break;
        }
    }
    // Two phases: nothing, then its share. When the first phase's SyncGroup
    // meets the follow-up rebalance (REBALANCE_IN_PROGRESS) the member joins
    // once more and hears only of the second; the ledger below still proves
    // that no partition had two owners at once.
    assert!(
        matches!(assigned.as_slice(), [0, 1] | [1]),
        "nothing, then its share: {assigned:?}"
    );
    until("busy gave one up", &[&busy], || {
        holding(&snapshot(&busy.log)).len() == 1
    })
    .await;
    let violations = ledger.lock().expect("lock").violations.clone();
    stop.store(true, Ordering::Release);
    busy.task.await.expect("busy");
    slow.close().await.expect("close");
    assert!(violations.is_empty(), "{violations:?}");
}
