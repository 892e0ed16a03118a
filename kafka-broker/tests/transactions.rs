//! Transactions over the raw protocol: commit and abort as seen by
//! read_committed and read_uncommitted readers, transactional offsets,
//! zombie fencing, timeouts, the state rules of EndTxn, and the
//! PrepareCommit / PrepareAbort window (held open with the fault API).

mod support;

use std::time::Duration;

use bytes::Bytes;
use kafka_broker::protocol::ErrorCode;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::records::{BatchBuilder, Batches};
use support::RawClient;

const TOPIC: &str = "txn-topic";

struct Txn {
    id: String,
    producer_id: i64,
    epoch: i16,
}

/// How long a test waits for the coordinator to write held-back markers.
const COMPLETION_LIMIT: Duration = Duration::from_secs(10);

/// The pause between retries of a CONCURRENT_TRANSACTIONS answer, as a
/// client's `retry.backoff.ms`.
const RETRY_BACKOFF: Duration = Duration::from_millis(5);

/// One InitProducerId, as it is answered.
async fn init_once(client: &mut RawClient, id: &str, timeout_ms: i32) -> m::InitProducerIdResponse {
    let ResponseKind::InitProducerId(r) = client
        .call(
            &RequestKind::InitProducerId(m::InitProducerIdRequest {
                transactional_id: Some(id.into()),
                transaction_timeout_ms: timeout_ms,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not InitProducerId")
    };
    r
}

/// InitProducerId, retried on CONCURRENT_TRANSACTIONS as clients do.
async fn init(client: &mut RawClient, id: &str, timeout_ms: i32) -> Txn {
    let r = tokio::time::timeout(COMPLETION_LIMIT, async {
        loop {
            let r = init_once(client, id, timeout_ms).await;
            if r.error_code != ErrorCode::ConcurrentTransactions.code() {
                return r;
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    })
    .await
    .expect("InitProducerId stops answering CONCURRENT_TRANSACTIONS");
    assert_eq!(r.error_code, 0, "InitProducerId");
    Txn {
        id: id.into(),
        producer_id: r.producer_id,
        epoch: r.producer_epoch,
    }
}

async fn add_partition(client: &mut RawClient, txn: &Txn, partition: i32) -> i16 {
    let ResponseKind::AddPartitionsToTxn(r) = client
        .call(
            &RequestKind::AddPartitionsToTxn(m::AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: txn.id.clone(),
                v3_and_below_producer_id: txn.producer_id,
                v3_and_below_producer_epoch: txn.epoch,
                v3_and_below_topics: vec![
                    m::add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                        name: TOPIC.into(),
                        partitions: vec![partition],
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not AddPartitionsToTxn")
    };
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn produce(
    client: &mut RawClient,
    txn: &Txn,
    partition: i32,
    sequence: i32,
    values: &[&str],
) -> i16 {
    let mut builder = BatchBuilder::new(1 << 20);
    builder
        .set_producer(txn.producer_id, txn.epoch, sequence)
        .set_transactional(true);
    // Now: older timestamps would fall to the 7-day retention.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    for v in values {
        builder
            .append(now, None, Some(v.as_bytes()), &[])
            .expect("append");
    }
    let ResponseKind::Produce(r) = client
        .call(
            &RequestKind::Produce(m::ProduceRequest {
                transactional_id: Some(txn.id.clone()),
                acks: -1,
                timeout_ms: 1000,
                topic_data: vec![m::produce_request::TopicProduceData {
                    name: TOPIC.into(),
                    partition_data: vec![m::produce_request::PartitionProduceData {
                        index: partition,
                        records: Some(builder.finish().expect("batch")),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            9,
        )
        .await
    else {
        panic!("not Produce")
    };
    r.responses[0].partition_responses[0].error_code
}

async fn end(client: &mut RawClient, txn: &Txn, commit: bool) -> i16 {
    let ResponseKind::EndTxn(r) = client
        .call(
            &RequestKind::EndTxn(m::EndTxnRequest {
                transactional_id: txn.id.clone(),
                producer_id: txn.producer_id,
                producer_epoch: txn.epoch,
                committed: commit,
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not EndTxn")
    };
    r.error_code
}

/// EndTxn answered with success, then retried until the coordinator has
/// written the markers: a retry answers CONCURRENT_TRANSACTIONS while they
/// are pending and success once the transaction is complete.
async fn finish(client: &mut RawClient, txn: &Txn, commit: bool) {
    assert_eq!(end(client, txn, commit).await, 0, "EndTxn");
    completed(client, txn, commit).await;
}

/// Retries an EndTxn that was answered until the transaction is complete.
async fn completed(client: &mut RawClient, txn: &Txn, commit: bool) {
    tokio::time::timeout(COMPLETION_LIMIT, async {
        loop {
            match end(client, txn, commit).await {
                0 => return,
                code => assert_eq!(
                    code,
                    ErrorCode::ConcurrentTransactions.code(),
                    "a retried EndTxn"
                ),
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    })
    .await
    .expect("the transaction completes");
}

async fn add_offsets(client: &mut RawClient, txn: &Txn, group: &str) -> i16 {
    let ResponseKind::AddOffsetsToTxn(r) = client
        .call(
            &RequestKind::AddOffsetsToTxn(m::AddOffsetsToTxnRequest {
                transactional_id: txn.id.clone(),
                producer_id: txn.producer_id,
                producer_epoch: txn.epoch,
                group_id: group.into(),
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not AddOffsetsToTxn")
    };
    r.error_code
}

/// A partition's (high watermark, last stable offset), from a
/// read_committed fetch.
async fn watermarks(client: &mut RawClient, partition: i32) -> (i64, i64) {
    let ResponseKind::Fetch(r) = client
        .call(
            &RequestKind::Fetch(m::FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                max_bytes: 1 << 20,
                isolation_level: 1,
                topics: vec![m::fetch_request::FetchTopic {
                    topic: TOPIC.into(),
                    partitions: vec![m::fetch_request::FetchPartition {
                        partition,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            12,
        )
        .await
    else {
        panic!("not Fetch")
    };
    let data = &r.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    (data.high_watermark, data.last_stable_offset)
}

/// Values visible from offset 0, with the aborted-transaction list, at
/// the given isolation level (1 = read_committed).
async fn read(client: &mut RawClient, partition: i32, isolation: i8) -> (Vec<String>, Vec<i64>) {
    let ResponseKind::Fetch(r) = client
        .call(
            &RequestKind::Fetch(m::FetchRequest {
                replica_id: -1,
                max_wait_ms: 0,
                max_bytes: 1 << 20,
                isolation_level: isolation,
                topics: vec![m::fetch_request::FetchTopic {
                    topic: TOPIC.into(),
                    partitions: vec![m::fetch_request::FetchPartition {
                        partition,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            12,
        )
        .await
    else {
        panic!("not Fetch")
    };
    let data = &r.responses[0].partitions[0];
    assert_eq!(data.error_code, 0);
    let mut listed: Vec<(i64, i64)> = data
        .aborted_transactions
        .iter()
        .flatten()
        .map(|t| (t.producer_id, t.first_offset))
        .collect();
    let aborted: Vec<i64> = listed.iter().map(|(p, _)| *p).collect();
    let mut values = Vec::new();
    // What a read_committed consumer does: from each aborted transaction's
    // first offset, skip that producer's data until its ABORT marker.
    let mut skipping: Vec<i64> = Vec::new();
    for batch in Batches::new(data.records.clone().unwrap_or_default()) {
        let batch = batch.expect("batch");
        let h = *batch.header();
        if isolation == 1 && !batch.is_control() {
            // Each listed transaction starts skipping once, at its first offset.
            if let Some(i) = listed
                .iter()
                .position(|(pid, first)| *pid == h.producer_id && h.base_offset >= *first)
            {
                listed.remove(i);
                skipping.push(h.producer_id);
            }
        }
        if batch.is_control() {
            skipping.retain(|p| *p != h.producer_id);
            continue;
        }
        if isolation == 1 && batch.is_transactional() && skipping.contains(&h.producer_id) {
            continue;
        }
        for record in batch.records().expect("records") {
            let value: Bytes = record.expect("record").value.expect("value");
            values.push(String::from_utf8(value.to_vec()).expect("utf-8"));
        }
    }
    (values, aborted)
}

async fn txn_offset_commit(client: &mut RawClient, txn: &Txn, group: &str, offset: i64) -> i16 {
    let ResponseKind::TxnOffsetCommit(r) = client
        .call(
            &RequestKind::TxnOffsetCommit(m::TxnOffsetCommitRequest {
                transactional_id: txn.id.clone(),
                group_id: group.into(),
                producer_id: txn.producer_id,
                producer_epoch: txn.epoch,
                generation_id: -1,
                topics: vec![m::txn_offset_commit_request::TxnOffsetCommitRequestTopic {
                    name: "input".into(),
                    partitions: vec![
                        m::txn_offset_commit_request::TxnOffsetCommitRequestPartition {
                            partition_index: 0,
                            committed_offset: offset,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not TxnOffsetCommit")
    };
    r.topics[0].partitions[0].error_code
}

/// The offset `group` has committed for input-0, as OffsetFetch v8 says.
async fn committed_offset(client: &mut RawClient, group: &str) -> Option<i64> {
    let request = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        groups: vec![m::offset_fetch_request::OffsetFetchRequestGroup {
            group_id: group.into(),
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    });
    match client.call(&request, 8).await {
        ResponseKind::OffsetFetch(r) => r.groups[0]
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.committed_offset)
            .next(),
        other => panic!("unexpected {other:?}"),
    }
}

async fn setup() -> (kafka_broker::Cluster, RawClient) {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic(TOPIC, 2).expect("topic");
    let client = RawClient::connect(&cluster.bootstrap_servers()).await;
    (cluster, client)
}

#[tokio::test]
async fn committed_data_and_offsets_appear_only_at_commit() {
    let (_cluster, mut client) = setup().await;
    let txn = init(&mut client, "committer", 60_000).await;
    assert_eq!(add_partition(&mut client, &txn, 0).await, 0);
    assert_eq!(produce(&mut client, &txn, 0, 0, &["a", "b"]).await, 0);
    assert_eq!(
        read(&mut client, 0, 1).await.0,
        Vec::<String>::new(),
        "read_committed waits"
    );
    assert_eq!(
        read(&mut client, 0, 0).await.0,
        ["a", "b"],
        "read_uncommitted sees it"
    );
    // Offsets in the same transaction.
    assert_eq!(add_offsets(&mut client, &txn, "eos-group").await, 0);
    assert_eq!(
        txn_offset_commit(&mut client, &txn, "eos-group", 42).await,
        0
    );
    assert_eq!(
        committed_offset(&mut client, "eos-group").await,
        None,
        "pending until commit"
    );
    finish(&mut client, &txn, true).await;
    assert_eq!(read(&mut client, 0, 1).await.0, ["a", "b"]);
    assert_eq!(committed_offset(&mut client, "eos-group").await, Some(42));
    // A retried commit succeeds; an abort after it does not.
    assert_eq!(end(&mut client, &txn, true).await, 0);
    assert_eq!(
        end(&mut client, &txn, false).await,
        ErrorCode::InvalidTxnState.code()
    );
}

#[tokio::test]
async fn aborted_data_is_listed_for_read_committed_readers() {
    let (_cluster, mut client) = setup().await;
    let txn = init(&mut client, "aborter", 60_000).await;
    add_partition(&mut client, &txn, 1).await;
    produce(&mut client, &txn, 1, 0, &["x", "y"]).await;
    finish(&mut client, &txn, false).await;
    let (committed, aborted) = read(&mut client, 1, 1).await;
    assert!(committed.is_empty(), "{committed:?}");
    assert_eq!(aborted, [txn.producer_id]);
    assert_eq!(
        read(&mut client, 1, 0).await.0,
        ["x", "y"],
        "read_uncommitted still sees them"
    );
}

#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let (_cluster, mut client) = setup().await;
    let zombie = init(&mut client, "worker-1", 60_000).await;
    add_partition(&mut client, &zombie, 0).await;
    produce(&mut client, &zombie, 0, 0, &["zombie"]).await;
    // As in Kafka: the first call fences the zombie and aborts its
    // transaction under a bumped epoch, answering CONCURRENT_TRANSACTIONS;
    // the retry bumps the epoch once more.
    assert_eq!(
        init_once(&mut client, "worker-1", 60_000).await.error_code,
        ErrorCode::ConcurrentTransactions.code()
    );
    let fresh = init(&mut client, "worker-1", 60_000).await;
    assert_eq!(fresh.producer_id, zombie.producer_id);
    assert_eq!(fresh.epoch, zombie.epoch + 2);
    assert_eq!(
        add_partition(&mut client, &zombie, 0).await,
        ErrorCode::ProducerFenced.code()
    );
    assert_eq!(
        produce(&mut client, &zombie, 0, 1, &["late"]).await,
        ErrorCode::ProducerFenced.code()
    );
    assert_eq!(
        end(&mut client, &zombie, true).await,
        ErrorCode::ProducerFenced.code()
    );
    // The zombie's open transaction was aborted: nothing of it is committed.
    add_partition(&mut client, &fresh, 0).await;
    assert_eq!(produce(&mut client, &fresh, 0, 0, &["fresh"]).await, 0);
    finish(&mut client, &fresh, true).await;
    assert_eq!(read(&mut client, 0, 1).await.0, ["fresh"]);
}

#[tokio::test]
async fn a_stalled_transaction_is_aborted_on_timeout() {
    let (_cluster, mut client) = setup().await;
    let txn = init(&mut client, "stalled", 200).await;
    add_partition(&mut client, &txn, 0).await;
    produce(&mut client, &txn, 0, 0, &["never"]).await;
    let mut aborted = Vec::new();
    for _ in 0..50 {
        aborted = read(&mut client, 0, 1).await.1;
        if !aborted.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(aborted, [txn.producer_id], "aborted by the coordinator");
    // The producer learns it on its next call: abortable, not fatal.
    assert_eq!(
        end(&mut client, &txn, true).await,
        ErrorCode::InvalidProducerEpoch.code()
    );
    assert_eq!(end(&mut client, &txn, false).await, 0);
    assert!(read(&mut client, 0, 1).await.0.is_empty());
}

#[tokio::test]
async fn the_rules_of_the_transactional_apis_are_enforced() {
    let (_cluster, mut client) = setup().await;
    // A bad timeout.
    let ResponseKind::InitProducerId(r) = client
        .call(
            &RequestKind::InitProducerId(m::InitProducerIdRequest {
                transactional_id: Some("bad".into()),
                transaction_timeout_ms: 0,
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not InitProducerId")
    };
    assert_eq!(r.error_code, ErrorCode::InvalidTransactionTimeout.code());
    let txn = init(&mut client, "rules", 60_000).await;
    // Producing before adding the partition.
    assert_eq!(
        produce(&mut client, &txn, 0, 0, &["early"]).await,
        ErrorCode::InvalidTxnState.code()
    );
    // Ending what never began.
    assert_eq!(
        end(&mut client, &txn, true).await,
        ErrorCode::InvalidTxnState.code()
    );
    // An unknown id.
    let stranger = Txn {
        id: "nobody".into(),
        producer_id: 1,
        epoch: 0,
    };
    assert_eq!(
        add_partition(&mut client, &stranger, 0).await,
        ErrorCode::InvalidProducerIdMapping.code()
    );
    // A partition that does not exist.
    assert_eq!(
        add_partition(&mut client, &txn, 9).await,
        ErrorCode::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn a_held_commit_answers_concurrent_transactions_until_its_markers_are_written() {
    let (cluster, mut client) = setup().await;
    let txn = init(&mut client, "held-commit", 60_000).await;
    assert_eq!(add_partition(&mut client, &txn, 0).await, 0);
    assert_eq!(produce(&mut client, &txn, 0, 0, &["a", "b"]).await, 0);
    assert_eq!(add_offsets(&mut client, &txn, "held-group").await, 0);
    assert_eq!(
        txn_offset_commit(&mut client, &txn, "held-group", 42).await,
        0
    );
    let hold = cluster.hold_txn_completion("held-commit");
    assert_eq!(
        end(&mut client, &txn, true).await,
        0,
        "EndTxn is answered at PrepareCommit"
    );
    assert_eq!(hold.hits(), 1, "the hold kept one transaction");

    let concurrent = ErrorCode::ConcurrentTransactions.code();
    assert_eq!(
        end(&mut client, &txn, true).await,
        concurrent,
        "EndTxn(commit) retried while preparing"
    );
    assert_eq!(
        end(&mut client, &txn, false).await,
        ErrorCode::InvalidTxnState.code(),
        "EndTxn(abort) while the commit is prepared"
    );
    assert_eq!(add_partition(&mut client, &txn, 1).await, concurrent);
    assert_eq!(
        add_offsets(&mut client, &txn, "held-group").await,
        concurrent
    );
    assert_eq!(
        init_once(&mut client, "held-commit", 60_000)
            .await
            .error_code,
        concurrent
    );
    assert!(
        read(&mut client, 0, 1).await.0.is_empty(),
        "read_committed sees nothing of a prepared commit"
    );
    assert_eq!(
        committed_offset(&mut client, "held-group").await,
        None,
        "offsets wait for the markers"
    );

    hold.remove();
    completed(&mut client, &txn, true).await;
    assert_eq!(read(&mut client, 0, 1).await.0, ["a", "b"]);
    assert_eq!(committed_offset(&mut client, "held-group").await, Some(42));
    assert_eq!(
        end(&mut client, &txn, false).await,
        ErrorCode::InvalidTxnState.code(),
        "an abort after the commit completed"
    );
    // The refused InitProducerId bumped nothing: the next transaction goes on
    // under the same epoch.
    assert_eq!(add_partition(&mut client, &txn, 1).await, 0);
    assert_eq!(produce(&mut client, &txn, 1, 0, &["next"]).await, 0);
    finish(&mut client, &txn, true).await;
    assert_eq!(read(&mut client, 1, 1).await.0, ["next"]);
}

#[tokio::test]
async fn the_last_stable_offset_stays_at_a_preparing_transactions_first_offset() {
    let (cluster, mut client) = setup().await;
    let held = init(&mut client, "lso-held", 60_000).await;
    let other = init(&mut client, "lso-other", 60_000).await;
    assert_eq!(add_partition(&mut client, &held, 0).await, 0);
    assert_eq!(produce(&mut client, &held, 0, 0, &["held"]).await, 0);
    assert_eq!(add_partition(&mut client, &other, 0).await, 0);
    assert_eq!(produce(&mut client, &other, 0, 0, &["other"]).await, 0);
    assert_eq!(watermarks(&mut client, 0).await, (2, 0), "both open");

    let hold = cluster.hold_txn_completion("lso-held");
    assert_eq!(end(&mut client, &held, true).await, 0);
    // The other transaction commits fully (its marker at offset 2) while the
    // first is still preparing: the LSO must not move past offset 0.
    finish(&mut client, &other, true).await;
    assert_eq!(
        watermarks(&mut client, 0).await,
        (3, 0),
        "(high watermark, LSO) while the first transaction prepares"
    );
    assert!(read(&mut client, 0, 1).await.0.is_empty());

    hold.remove();
    completed(&mut client, &held, true).await;
    assert_eq!(
        watermarks(&mut client, 0).await,
        (4, 4),
        "(high watermark, LSO) once both markers are written"
    );
    assert_eq!(read(&mut client, 0, 1).await.0, ["held", "other"]);
}

#[tokio::test]
async fn a_fencing_init_producer_id_waits_for_the_abort_it_started() {
    let (cluster, mut client) = setup().await;
    let zombie = init(&mut client, "fenced-held", 60_000).await;
    assert_eq!(add_partition(&mut client, &zombie, 0).await, 0);
    assert_eq!(produce(&mut client, &zombie, 0, 0, &["zombie"]).await, 0);

    let hold = cluster.hold_txn_completion("fenced-held");
    let concurrent = ErrorCode::ConcurrentTransactions.code();
    for attempt in 0..2 {
        assert_eq!(
            init_once(&mut client, "fenced-held", 60_000)
                .await
                .error_code,
            concurrent,
            "InitProducerId attempt {attempt} while the fenced transaction aborts"
        );
    }
    assert_eq!(hold.hits(), 1, "one abort held");
    assert_eq!(
        end(&mut client, &zombie, true).await,
        ErrorCode::ProducerFenced.code(),
        "the zombie is fenced from the first attempt on"
    );
    assert_eq!(
        watermarks(&mut client, 0).await,
        (1, 0),
        "the aborting transaction still bounds the LSO"
    );

    hold.remove();
    let fresh = init(&mut client, "fenced-held", 60_000).await;
    assert_eq!(fresh.epoch, zombie.epoch + 2);
    assert_eq!(watermarks(&mut client, 0).await, (2, 2));
    let (values, aborted) = read(&mut client, 0, 1).await;
    assert!(values.is_empty(), "{values:?}");
    assert_eq!(aborted, [zombie.producer_id]);
}

#[tokio::test]
async fn a_timeout_abort_held_in_prepare_abort_answers_the_late_producer_retriably() {
    let (cluster, mut client) = setup().await;
    let txn = init(&mut client, "stalled-held", 200).await;
    let hold = cluster.hold_txn_completion("stalled-held");
    assert_eq!(add_partition(&mut client, &txn, 0).await, 0);
    assert_eq!(produce(&mut client, &txn, 0, 0, &["never"]).await, 0);
    // The coordinator's timer starts the abort; the hold counts it.
    tokio::time::timeout(COMPLETION_LIMIT, async {
        while hold.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stalled transaction is aborted on timeout");
    assert_eq!(
        end(&mut client, &txn, false).await,
        ErrorCode::ConcurrentTransactions.code(),
        "the producer's own abort while the coordinator's is prepared"
    );
    assert_eq!(
        end(&mut client, &txn, true).await,
        ErrorCode::InvalidProducerEpoch.code(),
        "a commit is refused as abortable"
    );
    assert_eq!(watermarks(&mut client, 0).await, (1, 0));

    hold.remove();
    completed(&mut client, &txn, false).await;
    assert_eq!(watermarks(&mut client, 0).await, (2, 2));
    let (values, aborted) = read(&mut client, 0, 1).await;
    assert!(values.is_empty(), "{values:?}");
    assert_eq!(aborted, [txn.producer_id]);
}

/// Waits until the partition's last stable offset reaches its high
/// watermark: every transaction on it has ended.
async fn settled(client: &mut RawClient, partition: i32) {
    tokio::time::timeout(COMPLETION_LIMIT, async {
        loop {
            let (high, stable) = watermarks(client, partition).await;
            if stable == high {
                return;
            }
            tokio::time::sleep(RETRY_BACKOFF).await;
        }
    })
    .await
    .expect("the open transactions end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_open_by_a_killed_disk_mode_broker_is_aborted_on_restart() {
    let dir = std::env::temp_dir().join(format!("kafka-broker-orphan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--brokers",
        "1",
        "--default-partitions",
        "1",
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
    ];
    let broker = support::BrokerProcess::start(&args);
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let create = RequestKind::CreateTopics(m::CreateTopicsRequest {
        topics: vec![m::create_topics_request::CreatableTopic {
            name: TOPIC.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    });
    let ResponseKind::CreateTopics(created) = client.call(&create, 7).await else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(created.topics[0].error_code, 0);
    let committed = init(&mut client, "orphan-committed", 60_000).await;
    assert_eq!(add_partition(&mut client, &committed, 0).await, 0);
    assert_eq!(produce(&mut client, &committed, 0, 0, &["kept"]).await, 0);
    finish(&mut client, &committed, true).await;
    let open = init(&mut client, "orphan-open", 60_000).await;
    assert_eq!(add_partition(&mut client, &open, 0).await, 0);
    assert_eq!(
        produce(&mut client, &open, 0, 0, &["never", "committed"]).await,
        0
    );
    assert_eq!(add_offsets(&mut client, &open, "orphan-group").await, 0);
    assert_eq!(
        txn_offset_commit(&mut client, &open, "orphan-group", 5).await,
        0
    );
    let (high, stable) = watermarks(&mut client, 0).await;
    assert!(stable < high, "the open transaction holds back the LSO");
    drop(client);
    broker.kill();

    // The recovered coordinator aborts it, as on a timeout, and drops the
    // offsets it sent to the group.
    let broker = support::BrokerProcess::start(&args);
    let mut client = RawClient::connect(&broker.bootstrap).await;
    settled(&mut client, 0).await;
    let (values, aborted) = read(&mut client, 0, 1).await;
    assert_eq!(values, ["kept"]);
    assert_eq!(aborted, [open.producer_id]);
    assert_eq!(committed_offset(&mut client, "orphan-group").await, None);
    let (values, _) = read(&mut client, 0, 0).await;
    assert_eq!(values, ["kept", "never", "committed"]);

    // Its producer is told as after a timeout (abortable, not fatal), its
    // abort is accepted, and its transactional id keeps its producer id.
    assert_eq!(
        add_partition(&mut client, &open, 0).await,
        ErrorCode::InvalidProducerEpoch.code()
    );
    assert_eq!(end(&mut client, &open, false).await, 0, "the late abort");
    let again = init(&mut client, "orphan-open", 60_000).await;
    assert_eq!(again.producer_id, open.producer_id);
    assert!(again.epoch > open.epoch, "{} > {}", again.epoch, open.epoch);
    assert_eq!(add_partition(&mut client, &again, 0).await, 0);
    assert_eq!(produce(&mut client, &again, 0, 0, &["after"]).await, 0);
    finish(&mut client, &again, true).await;
    assert_eq!(read(&mut client, 0, 1).await.0, ["kept", "after"]);
    // The committed producer's id carries on too.
    let committed_again = init(&mut client, "orphan-committed", 60_000).await;
    assert_eq!(committed_again.producer_id, committed.producer_id);
    drop(client);
    drop(broker);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// EndTxn(commit) is answered once the decision is stored, not once the
/// markers are written: a broker that stops in between commits on restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_answered_before_its_markers_were_written_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("kafka-broker-decided-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = kafka_broker::BrokerConfig {
        data_dir: Some(dir.clone()),
        ..Default::default()
    };
    let cluster = kafka_broker::Cluster::start(config.clone())
        .await
        .expect("cluster");
    cluster.create_topic(TOPIC, 2).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let txn = init(&mut client, "decided", 60_000).await;
    for partition in [0, 1] {
        assert_eq!(add_partition(&mut client, &txn, partition).await, 0);
    }
    assert_eq!(produce(&mut client, &txn, 0, 0, &["committed"]).await, 0);
    assert_eq!(produce(&mut client, &txn, 1, 0, &["as well"]).await, 0);
    assert_eq!(add_offsets(&mut client, &txn, "decided-group").await, 0);
    assert_eq!(
        txn_offset_commit(&mut client, &txn, "decided-group", 11).await,
        0
    );
    let held = cluster.hold_txn_completion("decided");
    assert_eq!(end(&mut client, &txn, true).await, 0, "EndTxn(commit)");
    let (high, stable) = watermarks(&mut client, 0).await;
    assert!(stable < high, "no marker is written while held");
    assert_eq!(held.hits(), 1);
    drop(client);
    drop(cluster);

    let cluster = kafka_broker::Cluster::start(config)
        .await
        .expect("restarted");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    for (partition, value) in [(0, "committed"), (1, "as well")] {
        settled(&mut client, partition).await;
        let (values, aborted) = read(&mut client, partition, 1).await;
        assert_eq!((values, aborted), (vec![value.to_owned()], vec![]));
    }
    // The offsets it sent to the group are committed with it.
    assert_eq!(
        committed_offset(&mut client, "decided-group").await,
        Some(11)
    );
    // The retried EndTxn of a producer that missed the answer succeeds.
    completed(&mut client, &txn, true).await;
    drop(client);
    drop(cluster);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
