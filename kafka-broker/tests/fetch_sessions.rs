//! Incremental fetch sessions (KIP-227) over the raw protocol, at Fetch v17
//! (topics by id) and v12 (by name): a full fetch opens a session, then
//! only changed partitions are sent and only partitions with news are
//! answered; forgotten partitions leave the session; a wrong epoch, an
//! unknown session and a full cache are answered as Kafka answers them.

mod support;

use bytes::Bytes;
use kafka_broker::protocol::ErrorCode;
use kafka_broker::protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::records::{BatchBuilder, Batches};
use kafka_broker::{BrokerConfig, Cluster};
use support::RawClient;
use uuid::Uuid;

const TOPIC: &str = "sessions";

async fn produce(client: &mut RawClient, partition: i32, value: &str) {
    let mut builder = BatchBuilder::new(1 << 16);
    builder
        .append(0, None, Some(value.as_bytes()), &[])
        .expect("append");
    let request = RequestKind::Produce(m::ProduceRequest {
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
    });
    let ResponseKind::Produce(r) = client.call(&request, 11).await else {
        panic!("not Produce")
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

async fn topic_id(client: &mut RawClient) -> Uuid {
    let request = RequestKind::Metadata(m::MetadataRequest {
        topics: Some(vec![m::metadata_request::MetadataRequestTopic {
            name: Some(TOPIC.into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let ResponseKind::Metadata(r) = client.call(&request, 12).await else {
        panic!("not Metadata")
    };
    r.topics[0].topic_id
}

/// A fetch of `partitions` (index, offset) in session `id` at `epoch`,
/// forgetting `forget`, answered at once.
fn fetch(
    id: i32,
    epoch: i32,
    topic_id: Uuid,
    partitions: &[(i32, i64)],
    forget: &[i32],
) -> RequestKind {
    RequestKind::Fetch(m::FetchRequest {
        replica_id: -1,
        max_bytes: 1 << 20,
        session_id: id,
        session_epoch: epoch,
        topics: if partitions.is_empty() {
            Vec::new()
        } else {
            vec![FetchTopic {
                topic: TOPIC.into(),
                topic_id,
                partitions: partitions
                    .iter()
                    .map(|&(partition, fetch_offset)| FetchPartition {
                        partition,
                        fetch_offset,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }]
        },
        forgotten_topics_data: if forget.is_empty() {
            Vec::new()
        } else {
            vec![ForgottenTopic {
                topic: TOPIC.into(),
                topic_id,
                partitions: forget.to_vec(),
                ..Default::default()
            }]
        },
        ..Default::default()
    })
}

/// (top-level error, session id, per answered partition: index and values).
async fn answer(
    client: &mut RawClient,
    request: &RequestKind,
    version: i16,
) -> (i16, i32, Vec<(i32, Vec<Bytes>)>) {
    let ResponseKind::Fetch(r) = client.call(request, version).await else {
        panic!("not Fetch")
    };
    let mut partitions = Vec::new();
    for topic in &r.responses {
        for data in &topic.partitions {
            assert_eq!(data.error_code, 0, "partition {}", data.partition_index);
            let mut values = Vec::new();
            for batch in Batches::new(data.records.clone().unwrap_or_default()) {
                for record in batch.expect("batch").records().expect("records") {
                    values.push(record.expect("record").value.expect("value"));
                }
            }
            partitions.push((data.partition_index, values));
        }
    }
    (r.error_code, r.session_id, partitions)
}

async fn a_session_answers_only_news(version: i16) {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic(TOPIC, 3).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    produce(&mut client, 0, "a0").await;
    produce(&mut client, 1, "b0").await;
    let id = if version >= 13 {
        topic_id(&mut client).await
    } else {
        Uuid::nil()
    };
    // Full, opening a session (epoch 0).
    let (error, session, parts) = answer(
        &mut client,
        &fetch(0, 0, id, &[(0, 0), (1, 0), (2, 0)], &[]),
        version,
    )
    .await;
    assert_eq!((error, parts.len()), (0, 3));
    assert_ne!(session, 0, "a session was opened");
    // The positions moved for 0 and 1: sent again, answered again.
    let (_, same, parts) = answer(
        &mut client,
        &fetch(session, 1, id, &[(0, 1), (1, 1)], &[]),
        version,
    )
    .await;
    assert_eq!(same, session);
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 1]);
    // Nothing changed: nothing sent, nothing answered.
    let (_, _, parts) = answer(&mut client, &fetch(session, 2, id, &[], &[]), version).await;
    assert!(parts.is_empty(), "no news: {parts:?}");
    // A record on partition 2 only: only partition 2 is answered.
    produce(&mut client, 2, "c0").await;
    let (_, _, parts) = answer(&mut client, &fetch(session, 3, id, &[], &[]), version).await;
    assert_eq!(parts, [(2, vec![Bytes::from_static(b"c0")])]);
    // Partition 0 forgotten: its new record is not sent in this session.
    produce(&mut client, 0, "a1").await;
    let (_, _, parts) = answer(
        &mut client,
        &fetch(session, 4, id, &[(2, 1)], &[0]),
        version,
    )
    .await;
    assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), [2]);
    let (_, _, parts) = answer(&mut client, &fetch(session, 5, id, &[], &[]), version).await;
    assert!(parts.is_empty(), "partition 0 left the session: {parts:?}");
    // A repeated epoch, and an unknown session.
    let (error, _, _) = answer(&mut client, &fetch(session, 5, id, &[], &[]), version).await;
    assert_eq!(error, ErrorCode::InvalidFetchSessionEpoch.code());
    let (error, _, _) = answer(
        &mut client,
        &fetch(session + 1000, 1, id, &[], &[]),
        version,
    )
    .await;
    assert_eq!(error, ErrorCode::FetchSessionIdNotFound.code());
    // Epoch -1 closes it: a full fetch without a session.
    let (error, closed, parts) = answer(
        &mut client,
        &fetch(session, -1, id, &[(0, 1)], &[]),
        version,
    )
    .await;
    assert_eq!((error, closed), (0, 0));
    assert_eq!(parts, [(0, vec![Bytes::from_static(b"a1")])]);
    let stats = cluster.fetch_session_stats();
    assert_eq!((stats.sessions, stats.incremental, stats.full), (0, 5, 2));
}

#[tokio::test]
async fn a_session_by_topic_id_answers_only_news() {
    a_session_answers_only_news(17).await;
}

#[tokio::test]
async fn a_session_by_topic_name_answers_only_news() {
    a_session_answers_only_news(12).await;
}

#[tokio::test]
async fn a_full_cache_opens_no_session_and_sessionless_fetches_stay_full() {
    let mut config = BrokerConfig::default();
    config
        .set("max.incremental.fetch.session.cache.slots", "1")
        .expect("slots");
    let cluster = Cluster::start(config).await.expect("cluster");
    cluster.create_topic(TOPIC, 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let id = topic_id(&mut client).await;
    let (_, first, _) = answer(&mut client, &fetch(0, 0, id, &[(0, 0)], &[]), 17).await;
    assert_ne!(first, 0);
    // The cache is full and its one session was just used: no new one.
    let (error, second, parts) = answer(&mut client, &fetch(0, 0, id, &[(0, 0)], &[]), 17).await;
    assert_eq!((error, second, parts.len()), (0, 0, 1));
    // Epoch -1 without a session: full, and no session either.
    let (_, none, parts) = answer(&mut client, &fetch(0, -1, id, &[(0, 0)], &[]), 17).await;
    assert_eq!((none, parts.len()), (0, 1));
}
