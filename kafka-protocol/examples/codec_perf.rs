//! The `ours` side of the root crate's `benches/codec.rs` batch cases in a
//! plain loop, for instruction counts and profiles without criterion or the
//! peer crate (which the root bench needs, and which take minutes to build):
//!
//! ```text
//! cargo build --profile bench -p kafka-protocol --example codec_perf
//! valgrind --tool=callgrind target/release/examples/codec_perf encode none 100
//! perf record target/release/examples/codec_perf decode lz4 20000
//! ```
//!
//! Arguments: `encode|decode|decode-lazy|deflate|inflate|inflate-streamed|crc|copy`, a codec name, an iteration count.
//! `deflate` and `inflate` time the codec alone; `crc` and `copy` the two floors of `encode none`: the CRC32C of
//! the batch and copying the values into one buffer.
use std::hint::black_box;

use bytes::Bytes;
use kafka_protocol::records::{BatchBuilder, Compression, RecordBatch};

const RECORDS: usize = 1_000;
const VALUE_LEN: usize = 100;
const BASE_TS: i64 = 1_700_000_000_000;

fn values() -> Vec<Vec<u8>> {
    (0..RECORDS)
        .map(|i| {
            let mut v = format!(
                "{{\"order\":{i},\"customer\":\"c-{}\",\"amount\":{}}}",
                i % 97,
                i * 7 % 1000
            )
            .into_bytes();
            v.resize(VALUE_LEN, b'.');
            v
        })
        .collect()
}

fn ours_batch(values: &[Vec<u8>], compression: Compression) -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    builder.set_compression(compression);
    for (i, value) in values.iter().enumerate() {
        builder
            .append(BASE_TS + i as i64, None, Some(value), &[])
            .expect("append");
    }
    builder.finish().expect("finish")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let op = args[1].as_str();
    let codec = Compression::from_name(&args[2]).unwrap();
    let n: usize = args[3].parse().unwrap();
    let values = values();
    let ours = ours_batch(&values, codec);
    match op {
        "encode" => {
            for _ in 0..n {
                black_box(ours_batch(black_box(&values), codec));
            }
        }
        "decode" => {
            for _ in 0..n {
                let batch = RecordBatch::from_bytes(black_box(ours.clone())).expect("batch");
                let records = batch.to_records().expect("records");
                assert_eq!(records.len(), RECORDS);
                black_box(records);
            }
        }
        "decode-lazy" => {
            // What a consumer does: walk the records without collecting them.
            for _ in 0..n {
                let batch = RecordBatch::from_bytes(black_box(ours.clone())).expect("batch");
                let mut bytes = 0;
                for record in batch.records().expect("records") {
                    bytes += black_box(record.expect("record"))
                        .value
                        .map_or(0, |v| v.len());
                }
                assert_eq!(bytes, RECORDS * VALUE_LEN);
            }
        }
        "inflate" => {
            // Only the decompression of the records section.
            for _ in 0..n {
                black_box(
                    codec
                        .decompress(black_box(&ours[61..]), 1 << 26)
                        .expect("inflate"),
                );
            }
        }
        "inflate-streamed" => {
            // zstd only: a frame streamed without a content size, as the
            // Java producer (and the peer crate) write it.
            let plain = ours_batch(&values, Compression::None);
            let frame = zstd::stream::encode_all(&plain[61..], 3).expect("zstd");
            for _ in 0..n {
                black_box(
                    codec
                        .decompress(black_box(&frame), 1 << 26)
                        .expect("inflate"),
                );
            }
        }
        "deflate" => {
            // Only the compression of the records section.
            let plain = ours_batch(&values, Compression::None);
            for _ in 0..n {
                let mut out = bytes::BytesMut::new();
                codec
                    .compress(black_box(&plain[61..]), None, &mut out)
                    .expect("deflate");
                black_box(out);
            }
        }
        "crc" => {
            for _ in 0..n {
                black_box(kafka_protocol::records::crc32c(black_box(&ours[21..])));
            }
        }
        "copy" => {
            for _ in 0..n {
                let mut out = bytes::BytesMut::with_capacity(1 << 20);
                for v in black_box(&values) {
                    out.extend_from_slice(v);
                }
                black_box(out);
            }
        }
        _ => panic!("op"),
    }
}
