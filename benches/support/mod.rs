//! The batch both benches time, built by each codec: 1,000 records of
//! 100-byte values, and the same records in the peer crate's form.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{BatchBuilder, Compression};
use peer::records::{RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use peer_kafka_protocol as peer;

pub const RECORDS: usize = 1_000;
pub const VALUE_LEN: usize = 100;
const BASE_TS: i64 = 1_700_000_000_000;

/// Moderately compressible values: JSON-ish text with a counter, padded to 100 bytes.
pub fn values() -> Vec<Vec<u8>> {
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

pub fn ours_batch(values: &[Vec<u8>], compression: Compression) -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    builder.set_compression(compression);
    for (i, value) in values.iter().enumerate() {
        builder
            .append(BASE_TS + i as i64, None, Some(value), &[])
            .expect("append");
    }
    builder.finish().expect("finish")
}

pub fn peer_records(values: &[Vec<u8>]) -> Vec<peer::records::Record> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| peer::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The peer keeps records in one batch only while offset - sequence is constant.
            sequence: i as i32,
            timestamp: BASE_TS + i as i64,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        })
        .collect()
}

fn peer_compression(c: Compression) -> peer::records::Compression {
    match c {
        Compression::None => peer::records::Compression::None,
        Compression::Lz4 => peer::records::Compression::Lz4,
        Compression::Zstd => peer::records::Compression::Zstd,
        Compression::Gzip => peer::records::Compression::Gzip,
        Compression::Snappy => peer::records::Compression::Snappy,
    }
}

pub fn peer_batch(records: &[peer::records::Record], compression: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: peer_compression(compression),
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).expect("peer encode");
    buf.freeze()
}
