//! The codec as an application sees it through the facade crate: a record
//! batch from the batch builder, inside a ProduceRequest, encoded and decoded
//! with nothing but `kafka_sdk::...` paths.

use kafka_sdk::protocol::frame::{FrameDecoder, decode_request, encode_request};
use kafka_sdk::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_sdk::protocol::messages::{ProduceRequest, RequestKind};
use kafka_sdk::protocol::records::{BatchBuilder, Batches, Compression, Header, Record};
use kafka_sdk::protocol::{Decode, Encode, Message};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TOPIC: &str = "orders";
const PARTITION: i32 = 3;
const PRODUCER_ID: i64 = 4_000;
const PRODUCER_EPOCH: i16 = 2;
const BASE_SEQUENCE: i32 = 17;
const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// Three records covering what a producer sends: a keyed record with a
/// header, a null key, and a tombstone (null value).
fn produce_request(compression: Compression) -> Result<ProduceRequest, Box<dyn std::error::Error>> {
    let mut builder = BatchBuilder::new(16 * 1024);
    builder
        .set_compression(compression)
        .set_transactional(true)
        .set_producer(PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE);
    let trace = [Header::new("trace-id", Some(b"t-1".to_vec().into()))];
    builder.append(
        BASE_TIMESTAMP,
        Some(b"order-1"),
        Some(b"{\"amount\":100}"),
        &trace,
    )?;
    builder.append(BASE_TIMESTAMP + 5, None, Some(b"unkeyed"), &[])?;
    builder.append(BASE_TIMESTAMP + 9, Some(b"order-1"), None, &[])?;
    Ok(ProduceRequest {
        transactional_id: Some("payments-tx".into()),
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![PartitionProduceData {
                index: PARTITION,
                records: Some(builder.finish()?),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// Checks the decoded request down to the records' bytes.
fn assert_records_came_back(request: &ProduceRequest, compression: Compression) -> TestResult {
    let codec = compression.name();
    assert_eq!(request.transactional_id.as_deref(), Some("payments-tx"));
    assert_eq!((request.acks, request.timeout_ms), (-1, 30_000));
    let [topic] = request.topic_data.as_slice() else {
        panic!("{codec}: expected one topic, got {:?}", request.topic_data);
    };
    assert_eq!(topic.name, TOPIC);
    let [partition] = topic.partition_data.as_slice() else {
        panic!(
            "{codec}: expected one partition, got {:?}",
            topic.partition_data
        );
    };
    assert_eq!(partition.index, PARTITION);

    let records = partition.records.clone().ok_or("records are null")?;
    let batches = Batches::new(records).collect::<Result<Vec<_>, _>>()?;
    let [batch] = batches.as_slice() else {
        panic!("{codec}: expected one batch, got {}", batches.len());
    };
    let header = batch.header();
    assert_eq!(header.compression()?, compression);
    assert!(
        header.is_transactional(),
        "{codec}: transactional flag lost"
    );
    assert_eq!(
        (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence
        ),
        (PRODUCER_ID, PRODUCER_EPOCH, BASE_SEQUENCE),
        "{codec}: producer state"
    );

    let records: Vec<Record> = batch.to_records()?;
    assert_eq!(records.len(), 3, "{codec}: record count");
    let seen: Vec<_> = records
        .iter()
        .map(|r| (r.offset, r.timestamp, r.key.as_deref(), r.value.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                0,
                BASE_TIMESTAMP,
                Some(&b"order-1"[..]),
                Some(&b"{\"amount\":100}"[..])
            ),
            (1, BASE_TIMESTAMP + 5, None, Some(&b"unkeyed"[..])),
            (2, BASE_TIMESTAMP + 9, Some(&b"order-1"[..]), None),
        ],
        "{codec}: (offset, timestamp, key, value)"
    );
    let headers: Vec<(String, Option<Vec<u8>>)> = records[0]
        .headers
        .iter()
        .map(|h| (h.key().to_owned(), h.value().map(|v| v.to_vec())))
        .collect();
    assert_eq!(
        headers,
        vec![("trace-id".to_owned(), Some(b"t-1".to_vec()))],
        "{codec}: headers"
    );
    assert!(records[1].headers.is_empty() && records[2].headers.is_empty());
    Ok(())
}

/// v3 is the first version carrying v2 batches and transactional ids, v9
/// the first flexible one (compact encodings, tagged fields).
fn versions() -> [i16; 3] {
    [3, 9, ProduceRequest::VERSIONS.max]
}

#[test]
fn produce_request_frame_round_trips_through_the_facade() -> TestResult {
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        for version in versions() {
            let request = produce_request(compression)?;
            let mut socket = Default::default();
            encode_request(&mut socket, 41, Some("facade-test"), version, &request)?;

            let frame = FrameDecoder::default()
                .decode(&mut socket)?
                .ok_or("the frame should be complete")?;
            assert!(socket.is_empty(), "one frame was written, one was read");
            let (header, body) = decode_request(frame)?;
            assert_eq!(
                (header.request_api_version, header.correlation_id),
                (version, 41)
            );
            assert_eq!(header.client_id.as_deref(), Some("facade-test"));
            let RequestKind::Produce(decoded) = body else {
                panic!("v{version}: expected a Produce request, got {body:?}");
            };
            assert_eq!(decoded, request, "{} v{version}", compression.name());
            assert_records_came_back(&decoded, compression)?;
        }
    }
    Ok(())
}

#[test]
fn produce_request_body_round_trips_with_the_message_traits() -> TestResult {
    let compression = Compression::Gzip;
    let request = produce_request(compression)?;
    for version in versions() {
        let wire = request.to_bytes(version)?;
        let mut input = wire.clone();
        let decoded = ProduceRequest::decode(&mut input, version)?;
        assert!(
            input.is_empty(),
            "v{version}: {} bytes left after decode",
            input.len()
        );
        assert_eq!(decoded.to_bytes(version)?, wire, "v{version}: re-encode");
        assert_records_came_back(&decoded, compression)?;
    }
    Ok(())
}
