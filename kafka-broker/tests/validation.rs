//! What the broker refuses and how it waits, over the raw protocol: bad
//! CRCs, oversized batches, bad topic names, idempotent sequence checks,
//! fetch long polling, and the delay, close-connection and dropped-response
//! faults.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::records::{BatchBuilder, Batches};
use kafka_broker::protocol::{ApiKey, ErrorCode};
use kafka_broker::{BrokerConfig, Cluster, FaultAction, FaultScope};
use support::RawClient;

const TOPIC: &str = "checked";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// A batch of `values`; idempotent when `producer` is (id, epoch, base sequence).
fn batch(values: &[&[u8]], producer: Option<(i64, i16, i32)>) -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    if let Some((id, epoch, sequence)) = producer {
        builder.set_producer(id, epoch, sequence);
    }
    for value in values {
        builder
            .append(now_ms(), None, Some(value), &[])
            .expect("append");
    }
    builder.finish().expect("batch")
}

fn produce_request(partition: i32, records: Bytes) -> RequestKind {
    RequestKind::Produce(m::ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![m::produce_request::PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// The partition's answer: (error code, base offset, error message).
fn produce_result(response: ResponseKind) -> (i16, i64, String) {
    match response {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            (
                p.error_code,
                p.base_offset,
                p.error_message.clone().unwrap_or_default(),
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

async fn produce(client: &mut RawClient, records: Bytes) -> (i16, i64, String) {
    produce_result(client.call(&produce_request(0, records), 9).await)
}

fn fetch_request(offset: i64, max_wait_ms: i32, min_bytes: i32) -> RequestKind {
    RequestKind::Fetch(m::FetchRequest {
        replica_id: -1,
        max_wait_ms,
        min_bytes,
        max_bytes: 1 << 20,
        topics: vec![m::fetch_request::FetchTopic {
            topic: TOPIC.into(),
            partitions: vec![m::fetch_request::FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// The values in partition 0 of a fetch response, and its high watermark.
fn fetched(response: ResponseKind) -> (Vec<String>, i64) {
    let ResponseKind::Fetch(r) = response else {
        panic!("not Fetch: {response:?}")
    };
    let data = &r.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch error");
    let mut values = Vec::new();
    for batch in Batches::new(data.records.clone().unwrap_or_default()) {
        for record in batch.expect("batch").records().expect("records") {
            let value = record.expect("record").value.expect("value");
            values.push(String::from_utf8(value.to_vec()).expect("utf-8"));
        }
    }
    (values, data.high_watermark)
}

async fn high_watermark(client: &mut RawClient) -> i64 {
    fetched(client.call(&fetch_request(0, 0, 0), 12).await).1
}

async fn setup(config: BrokerConfig) -> (Cluster, RawClient) {
    let cluster = Cluster::start(config).await.expect("cluster");
    cluster.create_topic(TOPIC, 1).expect("topic");
    let client = RawClient::connect(&cluster.bootstrap_servers()).await;
    (cluster, client)
}

#[tokio::test]
async fn a_batch_with_a_bad_crc_is_refused_as_corrupt() {
    let (_cluster, mut client) = setup(BrokerConfig::default()).await;
    let good = batch(&[b"kept"], None);
    let mut bad = good.to_vec();
    // The CRC field: base offset (8), length (4), leader epoch (4), magic (1).
    bad[17] ^= 0xff;
    let (code, offset, message) = produce(&mut client, Bytes::from(bad)).await;
    assert_eq!(
        (code, offset),
        (ErrorCode::CorruptMessage.code(), -1),
        "{message}"
    );
    assert!(message.contains("CRC"), "the message says why: {message}");
    assert_eq!(high_watermark(&mut client).await, 0, "nothing stored");
    assert_eq!(produce(&mut client, good).await.0, 0);
    assert_eq!(
        fetched(client.call(&fetch_request(0, 0, 0), 12).await).0,
        ["kept"]
    );
}

#[tokio::test]
async fn a_batch_over_message_max_bytes_is_refused_as_too_large() {
    let config = BrokerConfig {
        message_max_bytes: 1024,
        ..BrokerConfig::default()
    };
    let (_cluster, mut client) = setup(config).await;
    let large = vec![b'x'; 4096];
    let (code, offset, message) = produce(&mut client, batch(&[&large], None)).await;
    assert_eq!(
        (code, offset),
        (ErrorCode::MessageTooLarge.code(), -1),
        "{message}"
    );
    assert_eq!(high_watermark(&mut client).await, 0, "nothing stored");
    assert_eq!(produce(&mut client, batch(&[b"small"], None)).await.0, 0);
}

#[tokio::test]
async fn create_topics_refuses_invalid_names_and_creates_the_valid_one() {
    let (_cluster, mut client) = setup(BrokerConfig::default()).await;
    let too_long = "t".repeat(250);
    let names = ["bad name!", "..", "", too_long.as_str(), "fine.name_1-x"];
    let request = RequestKind::CreateTopics(m::CreateTopicsRequest {
        topics: names
            .iter()
            .map(|name| m::create_topics_request::CreatableTopic {
                name: (*name).into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            })
            .collect(),
        timeout_ms: 1000,
        ..Default::default()
    });
    let ResponseKind::CreateTopics(r) = client.call(&request, 7).await else {
        panic!("not CreateTopics")
    };
    let codes: Vec<(String, i16)> = r
        .topics
        .iter()
        .map(|t| (t.name.clone(), t.error_code))
        .collect();
    let invalid = ErrorCode::InvalidTopicException.code();
    assert_eq!(
        codes,
        [
            ("bad name!".to_owned(), invalid),
            ("..".to_owned(), invalid),
            (String::new(), invalid),
            (too_long.clone(), invalid),
            ("fine.name_1-x".to_owned(), 0),
        ]
    );
    let ResponseKind::Metadata(metadata) = client
        .call(
            &RequestKind::Metadata(m::MetadataRequest {
                topics: None,
                ..Default::default()
            }),
            12,
        )
        .await
    else {
        panic!("not Metadata")
    };
    let mut listed: Vec<String> = metadata
        .topics
        .iter()
        .filter_map(|t| t.name.clone())
        .collect();
    listed.sort();
    assert_eq!(listed, [TOPIC, "fine.name_1-x"], "only valid topics exist");
}

#[tokio::test]
async fn an_idempotent_producer_gets_original_offsets_for_retries_and_an_error_for_gaps() {
    let (_cluster, mut client) = setup(BrokerConfig::default()).await;
    let ResponseKind::InitProducerId(init) = client
        .call(
            &RequestKind::InitProducerId(m::InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            }),
            4,
        )
        .await
    else {
        panic!("not InitProducerId")
    };
    assert_eq!(init.error_code, 0);
    let producer = |sequence| Some((init.producer_id, init.producer_epoch, sequence));
    let first = batch(&[b"a", b"b", b"c"], producer(0));
    let second = batch(&[b"d", b"e"], producer(3));
    assert_eq!(produce(&mut client, first.clone()).await.0, 0);
    assert_eq!(produce(&mut client, second.clone()).await.1, 3);
    // Retries of the last batch and of an older one still remembered.
    for (what, retried, original) in [("second", second, 3), ("first", first, 0)] {
        let (code, offset, message) = produce(&mut client, retried).await;
        assert_eq!(
            (code, offset),
            (0, original),
            "retry of the {what} batch: {message}"
        );
    }
    assert_eq!(high_watermark(&mut client).await, 5, "no retry was stored");
    // Sequence 5 is next; 7 leaves a gap.
    let (code, _, message) = produce(&mut client, batch(&[b"gap"], producer(7))).await;
    assert_eq!(
        code,
        ErrorCode::OutOfOrderSequenceNumber.code(),
        "{message}"
    );
    assert_eq!(high_watermark(&mut client).await, 5);
    assert_eq!(produce(&mut client, batch(&[b"f"], producer(5))).await.1, 5);
    assert_eq!(
        fetched(client.call(&fetch_request(0, 0, 0), 12).await).0,
        ["a", "b", "c", "d", "e", "f"]
    );
}

#[tokio::test]
async fn a_fetch_waits_for_min_bytes_and_a_produce_wakes_it() {
    let (cluster, mut waiting) = setup(BrokerConfig::default()).await;
    let mut producer = RawClient::connect(&cluster.bootstrap_servers()).await;
    let max_wait = Duration::from_secs(20);
    let started = Instant::now();
    let id = waiting
        .send(&fetch_request(0, max_wait.as_millis() as i32, 1), 12)
        .await;
    // Nothing to read: the broker holds the fetch rather than answer empty.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), waiting.receive_frame(max_wait))
            .await
            .is_err(),
        "a fetch with min_bytes=1 on an empty partition was answered at once"
    );
    assert_eq!(produce(&mut producer, batch(&[b"wake"], None)).await.0, 0);
    let frame = waiting
        .receive_frame(max_wait)
        .await
        .expect("the fetch is answered");
    let elapsed = started.elapsed();
    let (header, body) =
        kafka_broker::protocol::frame::decode_response(frame, ApiKey::Fetch, 12).expect("decode");
    assert_eq!(header.correlation_id, id);
    assert_eq!(fetched(body).0, ["wake"]);
    assert!(
        elapsed < max_wait / 2,
        "answered after {elapsed:?}: the produce should have woken it, not max_wait_ms"
    );
}

#[tokio::test]
async fn a_fetch_with_no_data_is_answered_when_max_wait_expires() {
    let (_cluster, mut client) = setup(BrokerConfig::default()).await;
    let max_wait = Duration::from_millis(300);
    let started = Instant::now();
    let response = client
        .call(&fetch_request(0, max_wait.as_millis() as i32, 1), 12)
        .await;
    let elapsed = started.elapsed();
    assert_eq!(fetched(response), (Vec::new(), 0), "an empty answer");
    assert!(elapsed >= max_wait, "answered after {elapsed:?}");
    assert!(
        elapsed < Duration::from_secs(10),
        "answered after {elapsed:?}"
    );
}

/// Metadata for every topic.
async fn metadata(client: &mut RawClient) -> ResponseKind {
    client
        .call(
            &RequestKind::Metadata(m::MetadataRequest {
                topics: None,
                ..Default::default()
            }),
            12,
        )
        .await
}

#[tokio::test]
async fn a_delayed_response_arrives_after_the_delay() {
    let (cluster, mut client) = setup(BrokerConfig::default()).await;
    let delay = Duration::from_millis(300);
    let handle = cluster.delay_responses(ApiKey::Metadata, delay);
    let started = Instant::now();
    assert_eq!(metadata(&mut client).await.api_key(), ApiKey::Metadata);
    let elapsed = started.elapsed();
    assert!(elapsed >= delay, "answered after {elapsed:?}");
    assert_eq!(handle.hits(), 1);
    // The rule is for Metadata only: other APIs pass it by.
    client
        .call(&RequestKind::ApiVersions(Default::default()), 3)
        .await;
    assert_eq!(handle.hits(), 1, "ApiVersions was not delayed");
    handle.remove();
    metadata(&mut client).await;
    assert_eq!(handle.hits(), 0, "removed");
}

#[tokio::test]
async fn a_close_fault_closes_the_connection_and_the_next_one_works() {
    let (cluster, mut client) = setup(BrokerConfig::default()).await;
    let handle = cluster.faults().add(
        FaultScope::api(ApiKey::Metadata).times(1),
        FaultAction::CloseConnection,
    );
    client
        .send(&RequestKind::Metadata(m::MetadataRequest::default()), 12)
        .await;
    assert!(
        client
            .receive_frame(Duration::from_secs(10))
            .await
            .is_none(),
        "the broker closes the connection instead of answering"
    );
    assert_eq!(handle.hits(), 1);
    let mut next = RawClient::connect(&cluster.bootstrap_servers()).await;
    let ResponseKind::Metadata(r) = metadata(&mut next).await else {
        panic!("not Metadata")
    };
    assert!(
        r.topics.iter().any(|t| t.name.as_deref() == Some(TOPIC)),
        "{r:?}"
    );
    // The rule was for one request only.
    assert_eq!(metadata(&mut next).await.api_key(), ApiKey::Metadata);
}

#[tokio::test]
async fn a_dropped_response_silences_its_connection_and_nothing_after_it_is_applied() {
    let (cluster, mut client) = setup(BrokerConfig::default()).await;
    let dropped = cluster.drop_responses(ApiKey::Produce, 1);
    // Pipelined: the first is applied and unanswered; the ones behind it
    // arrive on a connection that has gone silent.
    client
        .send(&produce_request(0, batch(&[b"applied"], None)), 9)
        .await;
    client
        .send(&produce_request(0, batch(&[b"behind it"], None)), 9)
        .await;
    client
        .send(&RequestKind::ApiVersions(Default::default()), 3)
        .await;
    let silence = tokio::time::timeout(
        Duration::from_millis(500),
        client.receive_frame(Duration::from_secs(30)),
    )
    .await;
    assert!(silence.is_err(), "nothing is answered: {silence:?}");
    assert_eq!(dropped.hits(), 1);

    let mut next = RawClient::connect(&cluster.bootstrap_servers()).await;
    let (values, high_watermark) = fetched(next.call(&fetch_request(0, 0, 0), 12).await);
    assert_eq!(
        (values, high_watermark),
        (vec!["applied".to_owned()], 1),
        "only the request whose response was dropped took effect"
    );
    // The rule was for one request: the new connection is answered.
    assert_eq!(
        produce(&mut next, batch(&[b"later"], None)).await.0,
        0,
        "produced on a new connection"
    );
}
