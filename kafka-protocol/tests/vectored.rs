//! `encode_vectored` writes exactly what `encode` writes, with large records
//! fields referenced rather than copied, and queued parts spliced in.

use bytes::Bytes;
use kafka_protocol::frame::{write_size_prefixed, write_size_prefixed_vectored};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchResponse, FetchSnapshotResponse, ProduceRequest, ShareFetchResponse,
};
use kafka_protocol::primitives::random::{Random, RandomValue};
use kafka_protocol::vectored::{EncodeVectored, VectoredBuf};
use kafka_protocol::{Encode, EncodeError, Message};
use proptest::prelude::*;

fn vectored<M: EncodeVectored>(value: &M, version: i16) -> Result<Vec<Bytes>, EncodeError> {
    let mut buf = VectoredBuf::new();
    value.encode_vectored(&mut buf, version)?;
    buf.into_chunks()
}

fn same_as_encode<M: Message + EncodeVectored>(value: &M, version: i16) -> Result<(), String> {
    let plain = value.to_bytes(version);
    let chunks = vectored(value, version);
    match (plain, chunks) {
        (Ok(plain), Ok(chunks)) if chunks.concat() == plain => Ok(()),
        (Ok(_), Ok(_)) => Err(format!("{} v{version}: bytes differ", M::NAME)),
        (Err(a), Err(b)) if a == b => Ok(()),
        (a, b) => Err(format!(
            "{} v{version}: encode {:?}, vectored {:?}",
            M::NAME,
            a.map(|b| b.len()),
            b.map(|c| c.len())
        )),
    }
}

/// A records value above the size that is referenced, so both paths run.
fn large(seed: u8, len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i as u8) ^ seed).collect::<Vec<u8>>())
}

fn check_all_versions<M: Message + EncodeVectored + RandomValue>(
    seed: u64,
    enlarge: impl Fn(&mut M),
) -> Result<(), TestCaseError> {
    for version in M::VERSIONS.min..=M::VERSIONS.max {
        let mut r = Random::new(seed ^ (version as u64).wrapping_mul(0x9e37_79b9));
        let mut value = M::random(&mut r, version);
        same_as_encode(&value, version).map_err(TestCaseError::fail)?;
        enlarge(&mut value);
        same_as_encode(&value, version).map_err(TestCaseError::fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn vectored_encoding_is_byte_for_byte_the_plain_one(seed in any::<u64>()) {
        check_all_versions::<FetchResponse>(seed, |m| {
            for (i, p) in m.responses.iter_mut().flat_map(|t| &mut t.partitions).enumerate() {
                if p.records.is_some() {
                    p.records = Some(large(i as u8, 1024 + i * 37));
                }
            }
        })?;
        check_all_versions::<ProduceRequest>(seed, |m| {
            for (i, p) in m.topic_data.iter_mut().flat_map(|t| &mut t.partition_data).enumerate() {
                if p.records.is_some() {
                    p.records = Some(large(i as u8, 5000 - i));
                }
            }
        })?;
        check_all_versions::<ShareFetchResponse>(seed, |_| {})?;
        check_all_versions::<FetchSnapshotResponse>(seed, |_| {})?;
    }
}

fn fetch_response(records: Vec<Option<Bytes>>) -> FetchResponse {
    FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "orders".into(),
            partitions: records
                .into_iter()
                .enumerate()
                .map(|(i, records)| PartitionData {
                    partition_index: i as i32,
                    high_watermark: 10,
                    records,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn large_records_go_out_as_themselves_and_small_ones_are_copied() {
    let big = large(1, 64 * 1024);
    let small = large(2, 100);
    let response = fetch_response(vec![Some(big.clone()), Some(small.clone())]);
    for version in [4, 11, 12, 16] {
        let chunks = vectored(&response, version).unwrap();
        assert!(
            chunks
                .iter()
                .any(|c| c.as_ptr() == big.as_ptr() && c.len() == big.len())
        );
        assert!(!chunks.iter().any(|c| c.as_ptr() == small.as_ptr()));
        assert_eq!(chunks.concat(), response.to_bytes(version).unwrap());
    }
}

#[test]
fn queued_parts_are_spliced_into_the_placeholders_in_encode_order() {
    let parts = [
        vec![large(3, 2000), large(4, 10), large(5, 3000)],
        vec![],
        vec![large(6, 1500)],
    ];
    let placeholders = fetch_response(vec![Some(Bytes::new()), None, Some(Bytes::new())]);
    let expected = fetch_response(vec![
        Some(parts[0].concat().into()),
        Some(Bytes::new()),
        Some(parts[2].concat().into()),
    ]);
    for version in [4, 12, 15] {
        let mut buf = VectoredBuf::new();
        for p in &parts {
            buf.queue_records(p.clone());
        }
        write_size_prefixed_vectored(&mut buf, |buf| placeholders.encode_vectored(buf, version))
            .unwrap();
        let total = buf.encoded_len();
        let chunks = buf.into_chunks().unwrap();
        let mut plain = bytes::BytesMut::new();
        write_size_prefixed(&mut plain, |buf| expected.encode(buf, version)).unwrap();
        assert_eq!(total, plain.len());
        assert_eq!(chunks.concat(), plain);
        // The large parts are referenced, the 10-byte one was copied.
        for part in [&parts[0][0], &parts[0][2], &parts[2][0]] {
            assert!(chunks.iter().any(|c| c.as_ptr() == part.as_ptr()));
        }
    }
}

#[test]
fn queued_parts_that_do_not_match_the_message_are_errors() {
    let mut buf = VectoredBuf::new();
    buf.queue_records(vec![large(7, 2000)]);
    let filled = fetch_response(vec![Some(large(8, 10))]);
    assert!(matches!(
        filled.encode_vectored(&mut buf, 12),
        Err(EncodeError::QueuedRecords { .. })
    ));

    let mut buf = VectoredBuf::new();
    buf.queue_records(vec![]);
    buf.queue_records(vec![]);
    fetch_response(vec![Some(Bytes::new())])
        .encode_vectored(&mut buf, 12)
        .unwrap();
    assert!(matches!(
        buf.into_chunks(),
        Err(EncodeError::QueuedRecords { .. })
    ));
}

#[test]
fn a_produce_request_references_its_batches() {
    let batch = large(9, 16 * 1024);
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    for version in 3..=ProduceRequest::VERSIONS.max {
        let chunks = vectored(&request, version).unwrap();
        assert!(chunks.iter().any(|c| c.as_ptr() == batch.as_ptr()));
        assert_eq!(chunks.concat(), request.to_bytes(version).unwrap());
    }
}

#[test]
fn a_chunk_buf_reads_its_chunks_in_order_across_partial_advances() {
    use bytes::Buf;
    let chunks = vec![
        Bytes::from_static(b"abc"),
        Bytes::new(),
        Bytes::from_static(b"defgh"),
        Bytes::from_static(b"i"),
    ];
    let mut buf = kafka_protocol::vectored::ChunkBuf::new(chunks);
    assert_eq!(buf.remaining(), 9);
    let mut slices = [std::io::IoSlice::new(&[]); 8];
    assert_eq!(buf.chunks_vectored(&mut slices), 3);
    buf.advance(4);
    assert_eq!(buf.chunk(), b"efgh");
    let mut out = Vec::new();
    while buf.has_remaining() {
        let n = buf.chunk().len().min(2);
        out.extend_from_slice(&buf.chunk()[..n]);
        buf.advance(n);
    }
    assert_eq!(out, b"efghi");
    // Advancing past the end stops there.
    buf.advance(10);
    assert_eq!(buf.remaining(), 0);
}
