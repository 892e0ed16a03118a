//! Transactions over the raw protocol: commit and abort as seen by
//! read_committed and read_uncommitted readers, transactional offsets,
//! zombie fencing, timeouts, and the state rules of EndTxn.

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

async fn init(client: &mut RawClient, id: &str, timeout_ms: i32) -> Txn {
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
    let ResponseKind::AddOffsetsToTxn(added) = client
        .call(
            &RequestKind::AddOffsetsToTxn(m::AddOffsetsToTxnRequest {
                transactional_id: txn.id.clone(),
                producer_id: txn.producer_id,
                producer_epoch: txn.epoch,
                group_id: "eos-group".into(),
                ..Default::default()
            }),
            3,
        )
        .await
    else {
        panic!("not AddOffsetsToTxn")
    };
    assert_eq!(added.error_code, 0);
    let ResponseKind::TxnOffsetCommit(committed) = client
        .call(
            &RequestKind::TxnOffsetCommit(m::TxnOffsetCommitRequest {
                transactional_id: txn.id.clone(),
                group_id: "eos-group".into(),
                producer_id: txn.producer_id,
                producer_epoch: txn.epoch,
                generation_id: -1,
                topics: vec![m::txn_offset_commit_request::TxnOffsetCommitRequestTopic {
                    name: "input".into(),
                    partitions: vec![
                        m::txn_offset_commit_request::TxnOffsetCommitRequestPartition {
                            partition_index: 0,
                            committed_offset: 42,
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
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetch_offset = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        groups: vec![m::offset_fetch_request::OffsetFetchRequestGroup {
            group_id: "eos-group".into(),
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    });
    let committed_offset = |r: ResponseKind| match r {
        ResponseKind::OffsetFetch(r) => r.groups[0]
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.committed_offset)
            .next(),
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        committed_offset(client.call(&fetch_offset, 8).await),
        None,
        "pending until commit"
    );
    assert_eq!(end(&mut client, &txn, true).await, 0);
    assert_eq!(read(&mut client, 0, 1).await.0, ["a", "b"]);
    assert_eq!(
        committed_offset(client.call(&fetch_offset, 8).await),
        Some(42)
    );
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
    assert_eq!(end(&mut client, &txn, false).await, 0);
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
    let fresh = init(&mut client, "worker-1", 60_000).await;
    assert_eq!(fresh.producer_id, zombie.producer_id);
    assert_eq!(fresh.epoch, zombie.epoch + 1);
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
    assert_eq!(end(&mut client, &fresh, true).await, 0);
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
