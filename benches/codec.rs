//! Codec throughput, side by side with the published `kafka-protocol` crate
//! (as `peer_kafka_protocol`) in the same run: a batch of 1,000 records of
//! 100-byte values, encoded and decoded uncompressed, with lz4 and with zstd,
//! and carried in a ProduceRequest v9 and a FetchResponse v12.
//!
//! `cargo bench --features bench --bench codec`

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{FetchResponse, ProduceRequest};
use kafka_protocol::records::{Compression, RecordBatch};
use kafka_protocol::vectored::{EncodeVectored, VectoredBuf};
use kafka_protocol::{Decode, Encode};
use peer::protocol::{Decodable as _, Encodable as _, StrBytes};
use peer::records::RecordBatchDecoder;
use peer_kafka_protocol as peer;

mod support;
use support::{RECORDS, VALUE_LEN, ours_batch, peer_batch, peer_records, values};

fn configure(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    group
        .throughput(Throughput::Bytes(bytes as u64))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

fn batches(c: &mut Criterion) {
    let values = values();
    let records = peer_records(&values);
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let name = compression.name();
        let ours = ours_batch(&values, compression);
        let theirs = peer_batch(&records, compression);
        // Both decoders read both encodings: a sanity check before timing.
        assert_eq!(
            RecordBatch::from_bytes(theirs.clone())
                .expect("ours reads peer")
                .to_records()
                .expect("records")
                .len(),
            RECORDS
        );
        assert_eq!(
            RecordBatchDecoder::decode(&mut ours.clone())
                .expect("peer reads ours")
                .records
                .len(),
            RECORDS
        );

        let mut group = c.benchmark_group(format!("batch_encode/{name}"));
        configure(&mut group, RECORDS * VALUE_LEN);
        group.bench_function("ours", |b| {
            b.iter(|| black_box(ours_batch(black_box(&values), compression)))
        });
        group.bench_function("peer", |b| {
            b.iter(|| black_box(peer_batch(black_box(&records), compression)))
        });
        group.finish();

        let mut group = c.benchmark_group(format!("batch_decode/{name}"));
        configure(&mut group, RECORDS * VALUE_LEN);
        group.bench_function("ours", |b| {
            b.iter(|| {
                let batch = RecordBatch::from_bytes(black_box(ours.clone())).expect("batch");
                let records = batch.to_records().expect("records");
                assert_eq!(records.len(), RECORDS);
                black_box(records)
            })
        });
        // What a consumer does: walk the records without collecting them.
        group.bench_function("ours_lazy", |b| {
            b.iter(|| {
                let batch = RecordBatch::from_bytes(black_box(ours.clone())).expect("batch");
                let mut bytes = 0;
                for record in batch.records().expect("records") {
                    bytes += black_box(record.expect("record"))
                        .value
                        .map_or(0, |v| v.len());
                }
                assert_eq!(bytes, RECORDS * VALUE_LEN);
            })
        });
        group.bench_function("peer", |b| {
            b.iter(|| {
                let set = RecordBatchDecoder::decode(&mut black_box(theirs.clone()))
                    .expect("peer decode");
                assert_eq!(set.records.len(), RECORDS);
                black_box(set)
            })
        });
        group.finish();
    }
}

fn messages(c: &mut Criterion) {
    let values = values();
    let batch = ours_batch(&values, Compression::None);
    let topic = "orders";

    let ours_produce = ProduceRequest {
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let peer_produce = peer::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            peer::messages::produce_request::TopicProduceData::default()
                .with_name(peer::messages::TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(vec![
                    peer::messages::produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch.clone())),
                ]),
        ]);
    let ours_fetch = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: topic.into(),
            partitions: vec![PartitionData {
                high_watermark: RECORDS as i64,
                last_stable_offset: RECORDS as i64,
                log_start_offset: 0,
                records: Some(batch.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let peer_fetch = peer::messages::FetchResponse::default().with_responses(vec![
        peer::messages::fetch_response::FetchableTopicResponse::default()
            .with_topic(peer::messages::TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(vec![
                peer::messages::fetch_response::PartitionData::default()
                    .with_high_watermark(RECORDS as i64)
                    .with_last_stable_offset(RECORDS as i64)
                    .with_log_start_offset(0)
                    .with_records(Some(batch.clone())),
            ]),
    ]);

    macro_rules! encode_decode {
        ($label:literal, $version:expr, $ours:expr, $ours_ty:ty, $peer:expr, $peer_ty:ty) => {{
            let version: i16 = $version;
            let mut ours_wire = BytesMut::new();
            $ours.encode(&mut ours_wire, version).expect("encode");
            let ours_wire = ours_wire.freeze();
            let mut peer_wire = BytesMut::new();
            $peer.encode(&mut peer_wire, version).expect("peer encode");
            let peer_wire = peer_wire.freeze();
            assert_eq!(ours_wire, peer_wire, "both codecs write the same bytes");
            let mut vectored = VectoredBuf::new();
            $ours
                .encode_vectored(&mut vectored, version)
                .expect("encode");
            assert_eq!(
                vectored.into_chunks().expect("chunks").concat(),
                &ours_wire[..],
                "the vectored form is the same bytes"
            );

            let mut group = c.benchmark_group(concat!($label, "/encode"));
            configure(&mut group, ours_wire.len());
            group.bench_function("ours", |b| {
                b.iter(|| {
                    let mut buf = BytesMut::with_capacity(ours_wire.len());
                    black_box(&$ours).encode(&mut buf, version).expect("encode");
                    black_box(buf)
                })
            });
            // What our client and broker send: the records field is
            // referenced, not copied, and written with the frame by writev.
            group.bench_function("ours_vectored", |b| {
                b.iter(|| {
                    let mut buf = VectoredBuf::new();
                    black_box(&$ours)
                        .encode_vectored(&mut buf, version)
                        .expect("encode");
                    black_box(buf.into_chunks().expect("chunks"))
                })
            });
            group.bench_function("peer", |b| {
                b.iter(|| {
                    let mut buf = BytesMut::with_capacity(peer_wire.len());
                    black_box(&$peer).encode(&mut buf, version).expect("encode");
                    black_box(buf)
                })
            });
            group.finish();

            let mut group = c.benchmark_group(concat!($label, "/decode"));
            configure(&mut group, ours_wire.len());
            group.bench_function("ours", |b| {
                b.iter(|| {
                    black_box(
                        <$ours_ty>::decode(&mut black_box(ours_wire.clone()), version)
                            .expect("decode"),
                    )
                })
            });
            group.bench_function("peer", |b| {
                b.iter(|| {
                    black_box(
                        <$peer_ty>::decode(&mut black_box(peer_wire.clone()), version)
                            .expect("decode"),
                    )
                })
            });
            group.finish();
        }};
    }
    encode_decode!(
        "produce_request_v9",
        9,
        ours_produce,
        ProduceRequest,
        peer_produce,
        peer::messages::ProduceRequest
    );
    encode_decode!(
        "fetch_response_v12",
        12,
        ours_fetch,
        FetchResponse,
        peer_fetch,
        peer::messages::FetchResponse
    );
}

criterion_group!(benches, batches, messages);
criterion_main!(benches);
