//! The transactional producer against the bundled broker: commit and
//! abort as `read_committed` and `read_uncommitted` consumers see them,
//! offsets committed with a transaction, zombie fencing, transactions the
//! broker times out, and lost EndTxn responses.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_broker::Cluster;
use kafka_client::Error;
use kafka_client::consumer::{
    Consumer, ConsumerRecord, ConsumerSettings, IsolationLevel, OffsetReset,
};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings, TopicPartition};
use kafka_client::protocol::{ApiKey, ErrorCode};
use support::{cluster, tp};

const TIMEOUT: Duration = Duration::from_secs(20);

fn transactional(cluster: &Cluster, id: &str) -> Producer {
    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.transactional_id = Some(id.into());
    settings.network.request_timeout = Duration::from_millis(1500);
    settings.retry_backoff = Duration::from_millis(20);
    settings.retry_backoff_max = Duration::from_millis(200);
    Producer::new(settings).expect("producer")
}

fn reader(cluster: &Cluster, isolation: IsolationLevel) -> Consumer {
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.isolation_level = isolation;
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.fetch_max_wait = Duration::from_millis(50);
    Consumer::new(settings).expect("consumer")
}

fn value(record: &ConsumerRecord) -> String {
    String::from_utf8(record.value.clone().unwrap_or_default().to_vec()).expect("utf-8")
}

/// Values readable from the start of `partitions` now: polls until two
/// polls in a row bring nothing new, at most `limit`.
async fn read_values(
    cluster: &Cluster,
    isolation: IsolationLevel,
    partitions: &[TopicPartition],
    expect_at_least: usize,
) -> Vec<String> {
    let mut consumer = reader(cluster, isolation);
    consumer.assign(partitions.iter().cloned());
    let mut values = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut quiet = 0;
    while tokio::time::Instant::now() < deadline && (values.len() < expect_at_least || quiet < 2) {
        let records = consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll");
        quiet = if records.is_empty() { quiet + 1 } else { 0 };
        values.extend(records.iter().map(value));
    }
    values
}

async fn send_values(producer: &Producer, topic: &str, partition: i32, values: &[&str]) {
    let mut deliveries = Vec::new();
    for v in values {
        deliveries.push(
            producer
                .send(
                    ProducerRecord::new(topic)
                        .partition(partition)
                        .value(v.to_string()),
                )
                .await
                .expect("queued"),
        );
    }
    for delivery in deliveries {
        delivery.await.expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_records_are_seen_only_by_read_uncommitted() {
    let cluster = cluster(2).await;
    cluster.create_topic("abort", 2).expect("topic");
    let producer = transactional(&cluster, "abort-1");
    producer.init_transactions(TIMEOUT).await.expect("init");

    producer.begin_transaction().expect("begin");
    send_values(&producer, "abort", 0, &["c1", "c2"]).await;
    send_values(&producer, "abort", 1, &["c3"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");

    producer.begin_transaction().expect("begin");
    send_values(&producer, "abort", 0, &["a1"]).await;
    send_values(&producer, "abort", 1, &["a2"]).await;
    producer.abort_transaction(TIMEOUT).await.expect("abort");

    producer.begin_transaction().expect("begin");
    send_values(&producer, "abort", 0, &["c4"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");

    let partitions = [tp("abort", 0), tp("abort", 1)];
    let mut committed = read_values(&cluster, IsolationLevel::ReadCommitted, &partitions, 4).await;
    committed.sort();
    assert_eq!(committed, ["c1", "c2", "c3", "c4"]);
    let mut everything =
        read_values(&cluster, IsolationLevel::ReadUncommitted, &partitions, 6).await;
    everything.sort();
    assert_eq!(everything, ["a1", "a2", "c1", "c2", "c3", "c4"]);
    producer.close(TIMEOUT).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_of_order_are_refused_and_records_outside_a_transaction_too() {
    let cluster = cluster(2).await;
    cluster.create_topic("states", 1).expect("topic");
    let producer = transactional(&cluster, "states-1");
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::InvalidState(_))
    ));
    producer.init_transactions(TIMEOUT).await.expect("init");
    let outside = producer
        .send(ProducerRecord::new("states").value("x"))
        .await;
    assert!(
        matches!(outside, Err(Error::InvalidState(_))),
        "{outside:?}"
    );
    assert!(matches!(
        producer.commit_transaction(TIMEOUT).await,
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        producer.init_transactions(TIMEOUT).await,
        Err(Error::InvalidState(_))
    ));
    producer.begin_transaction().expect("begin");
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::InvalidState(_))
    ));
    // An empty transaction commits without troubling the coordinator.
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    let plain = Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("p");
    assert!(matches!(
        plain.init_transactions(TIMEOUT).await,
        Err(Error::InvalidState(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producer_with_the_same_id_fences_the_old_one_for_good() {
    let cluster = cluster(2).await;
    cluster.create_topic("fence", 1).expect("topic");
    let zombie = transactional(&cluster, "fence-1");
    zombie.init_transactions(TIMEOUT).await.expect("init");
    zombie.begin_transaction().expect("begin");
    send_values(&zombie, "fence", 0, &["zombie-1"]).await;

    let successor = transactional(&cluster, "fence-1");
    successor
        .init_transactions(TIMEOUT)
        .await
        .expect("init fences the zombie and aborts its transaction");

    let commit = zombie.commit_transaction(TIMEOUT).await;
    let fenced = commit.expect_err("the zombie must not commit");
    assert!(fenced.is_fatal(), "{fenced}");
    assert_eq!(fenced.code(), Some(ErrorCode::ProducerFenced), "{fenced}");
    // Poisoned: every later call returns the same error.
    assert_eq!(zombie.begin_transaction(), Err(fenced.clone()));
    assert_eq!(zombie.abort_transaction(TIMEOUT).await, Err(fenced.clone()));
    assert_eq!(
        zombie
            .send(ProducerRecord::new("fence").value("late"))
            .await
            .err(),
        Some(fenced.clone())
    );

    successor.begin_transaction().expect("begin");
    send_values(&successor, "fence", 0, &["successor-1"]).await;
    successor.commit_transaction(TIMEOUT).await.expect("commit");
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("fence", 0)],
        1,
    )
    .await;
    assert_eq!(visible, ["successor-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_the_broker_timed_out_is_abortable_and_the_producer_goes_on() {
    let cluster = cluster(2).await;
    cluster.create_topic("expire", 1).expect("topic");
    let mut settings = ProducerSettings::new(&cluster.bootstrap_servers());
    settings.transactional_id = Some("expire-1".into());
    settings.transaction_timeout = Duration::from_millis(300);
    settings.retry_backoff = Duration::from_millis(20);
    let producer = Producer::new(settings).expect("producer");
    producer.init_transactions(TIMEOUT).await.expect("init");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "expire", 0, &["expired"]).await;

    // A plain record after the open transaction becomes readable under
    // read_committed only once the broker has aborted the transaction.
    let plain = Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("p");
    plain
        .send_and_wait(ProducerRecord::new("expire").partition(0).value("plain"))
        .await
        .expect("plain record");
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("expire", 0)],
        1,
    )
    .await;
    assert_eq!(visible, ["plain"], "the broker aborted the transaction");

    let commit = producer.commit_transaction(TIMEOUT).await;
    let error = commit.expect_err("a timed-out transaction cannot commit");
    assert!(error.is_abortable(), "{error}");
    assert_eq!(error.code(), Some(ErrorCode::InvalidProducerEpoch));
    producer
        .abort_transaction(TIMEOUT)
        .await
        .expect("abort after the broker's abort");

    producer.begin_transaction().expect("begin again");
    send_values(&producer, "expire", 0, &["after"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("expire", 0)],
        2,
    )
    .await;
    assert_eq!(visible, ["plain", "after"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_end_txn_response_was_lost_commits_once() {
    let cluster = cluster(2).await;
    cluster.create_topic("lost", 1).expect("topic");
    let producer = transactional(&cluster, "lost-1");
    producer.init_transactions(TIMEOUT).await.expect("init");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "lost", 0, &["once"]).await;
    let dropped = cluster.drop_responses(ApiKey::EndTxn, 1);
    producer
        .commit_transaction(TIMEOUT)
        .await
        .expect("the retried EndTxn finds the commit done");
    assert_eq!(dropped.hits(), 1, "the first EndTxn response was dropped");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "lost", 0, &["twice"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    let visible = read_values(&cluster, IsolationLevel::ReadCommitted, &[tp("lost", 0)], 2).await;
    assert_eq!(visible, ["once", "twice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_commit_only_with_it() {
    let cluster = cluster(2).await;
    cluster.create_topic("in", 1).expect("topic");
    cluster.create_topic("out", 1).expect("topic");
    let plain = Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("p");
    for i in 0..10 {
        plain
            .send_and_wait(ProducerRecord::new("in").partition(0).value(format!("{i}")))
            .await
            .expect("input");
    }
    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some("copier".into());
    settings.enable_auto_commit = false;
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.isolation_level = IsolationLevel::ReadCommitted;
    settings.heartbeat_interval = Duration::from_millis(100);
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["in"]).expect("subscribe");
    let mut input = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while input.len() < 10 && tokio::time::Instant::now() < deadline {
        input.extend(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .expect("poll"),
        );
    }
    assert_eq!(input.len(), 10);
    let offsets = BTreeMap::from([(tp("in", 0), 10)]);

    let producer = transactional(&cluster, "copier-1");
    producer.init_transactions(TIMEOUT).await.expect("init");
    producer.begin_transaction().expect("begin");
    for record in &input {
        producer
            .send(ProducerRecord::new("out").partition(0).value(value(record)))
            .await
            .expect("queued");
    }
    producer
        .send_offsets_to_transaction(&offsets, &consumer.group_metadata(), TIMEOUT)
        .await
        .expect("offsets");
    producer.abort_transaction(TIMEOUT).await.expect("abort");
    let committed = consumer.committed(&[tp("in", 0)]).await.expect("committed");
    assert_eq!(
        committed.get(&tp("in", 0)),
        None,
        "aborted offsets stay uncommitted"
    );

    producer.begin_transaction().expect("begin");
    for record in &input {
        producer
            .send(ProducerRecord::new("out").partition(0).value(value(record)))
            .await
            .expect("queued");
    }
    producer
        .send_offsets_to_transaction(&offsets, &consumer.group_metadata(), TIMEOUT)
        .await
        .expect("offsets");
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    // The offsets appear once the coordinator has written the markers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut committed = BTreeMap::new();
    while committed.get(&tp("in", 0)) != Some(&10) && tokio::time::Instant::now() < deadline {
        committed = consumer.committed(&[tp("in", 0)]).await.expect("committed");
    }
    assert_eq!(committed.get(&tp("in", 0)), Some(&10));
    let out = read_values(&cluster, IsolationLevel::ReadCommitted, &[tp("out", 0)], 10).await;
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(out, expected);

    // Offsets from a member that is no longer in the group are refused, and
    // the transaction must be aborted.
    let mut stale = consumer.group_metadata();
    stale.generation_id += 7;
    producer.begin_transaction().expect("begin");
    let refused = producer
        .send_offsets_to_transaction(&offsets, &stale, TIMEOUT)
        .await
        .expect_err("a stale generation is fenced");
    assert!(refused.is_abortable(), "{refused}");
    producer.abort_transaction(TIMEOUT).await.expect("abort");
    consumer.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_timed_out_resumes_when_called_again() {
    let cluster = cluster(2).await;
    cluster.create_topic("resume", 1).expect("topic");
    let producer = transactional(&cluster, "resume-1");
    producer.init_transactions(TIMEOUT).await.expect("init");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "resume", 0, &["late"]).await;
    let slow = cluster.delay_responses(ApiKey::EndTxn, Duration::from_millis(800));
    let first = producer
        .commit_transaction(Duration::from_millis(300))
        .await;
    assert!(
        matches!(first, Err(Error::Timeout(_))),
        "the commit times out: {first:?}"
    );
    // Only finishing the commit is allowed now.
    assert!(matches!(
        producer.begin_transaction(),
        Err(Error::InvalidState(_))
    ));
    assert!(matches!(
        producer.abort_transaction(TIMEOUT).await,
        Err(Error::InvalidState(_))
    ));
    slow.remove();
    producer
        .commit_transaction(TIMEOUT)
        .await
        .expect("the retried commit finishes the first");
    producer.begin_transaction().expect("begin the next");
    send_values(&producer, "resume", 0, &["next"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("resume", 0)],
        2,
    )
    .await;
    assert_eq!(visible, ["late", "next"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_makes_the_transaction_abortable_and_only_abort_is_allowed() {
    let cluster = cluster(2).await;
    cluster.create_topic("failing", 1).expect("topic");
    let producer = transactional(&cluster, "failing-1");
    producer.init_transactions(TIMEOUT).await.expect("init");
    producer.begin_transaction().expect("begin");
    let refused = cluster.inject_error(ApiKey::Produce, ErrorCode::InvalidRecord, 1);
    let delivery = producer
        .send(ProducerRecord::new("failing").partition(0).value("bad"))
        .await
        .expect("queued")
        .await;
    assert_eq!(refused.hits(), 1);
    assert_eq!(
        delivery.as_ref().err().and_then(Error::code),
        Some(ErrorCode::InvalidRecord)
    );
    let send = producer
        .send(ProducerRecord::new("failing").partition(0).value("more"))
        .await;
    let error = send.expect_err("no more sends in this transaction");
    assert!(error.is_abortable(), "{error}");
    let commit = producer.commit_transaction(TIMEOUT).await;
    assert_eq!(commit, Err(error.clone()));
    producer.abort_transaction(TIMEOUT).await.expect("abort");
    producer.begin_transaction().expect("a fresh transaction");
    send_values(&producer, "failing", 0, &["good"]).await;
    producer.commit_transaction(TIMEOUT).await.expect("commit");
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("failing", 0)],
        1,
    )
    .await;
    assert_eq!(visible, ["good"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_right_after_a_send_never_succeeds_when_the_batch_is_refused() {
    // The commit does not wait for the send's delivery: it must still learn
    // of the refusal, however the sender's and the committer's threads
    // interleave. Repeated, since only some interleavings went wrong: the
    // batch's memory was released (which the commit's flush waits for)
    // before the transaction was marked failed.
    let cluster = cluster(1).await;
    cluster.create_topic("refused-fast", 1).expect("topic");
    let producer = transactional(&cluster, "refused-fast");
    producer.init_transactions(TIMEOUT).await.expect("init");
    for round in 0..300 {
        producer.begin_transaction().expect("begin");
        let refusal = cluster.inject_error(ApiKey::Produce, ErrorCode::InvalidRecord, 1);
        let _delivery = producer
            .send(
                ProducerRecord::new("refused-fast")
                    .partition(0)
                    .value(format!("r{round}")),
            )
            .await
            .expect("queued");
        let commit = producer.commit_transaction(TIMEOUT).await;
        assert_eq!(refusal.hits(), 1, "round {round}");
        let Err(error) = commit else {
            panic!("round {round}: committed without its refused record");
        };
        assert!(error.is_abortable(), "round {round}: {error}");
        producer.abort_transaction(TIMEOUT).await.expect("abort");
    }
    let visible = read_values(
        &cluster,
        IsolationLevel::ReadCommitted,
        &[tp("refused-fast", 0)],
        0,
    )
    .await;
    assert!(visible.is_empty(), "{visible:?}");
}
