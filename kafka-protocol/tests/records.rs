//! Record batches end to end: builder -> wire bytes -> batch iterator ->
//! records, for every codec, control batches, hostile and truncated input,
//! legacy message sets built by hand from the format description, and the
//! Java client's xerial snappy framing.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::DecodeError;
use kafka_protocol::records::{
    BatchBuilder, Batches, Compression, DecodeOptions, Header, Record, RecordBatch, TimestampType,
    TransactionMarker, set_base_offset,
};
use proptest::prelude::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A few records covering null keys, null values, empty values and headers.
fn sample_batch(codec: Compression, base_timestamp: i64) -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    builder.set_compression(codec);
    let headers = [
        Header::new("trace-id", Some(Bytes::from_static(b"abc"))),
        Header::from_static("empty", Some(Bytes::new())),
        Header::from_static("null", None),
    ];
    builder
        .append(base_timestamp, Some(b"key-0"), Some(b"value-0"), &headers)
        .unwrap();
    builder
        .append(base_timestamp + 5, None, Some(b"no key"), &[])
        .unwrap();
    builder
        .append(base_timestamp - 3, Some(b"tombstone"), None, &[])
        .unwrap();
    builder
        .append(base_timestamp + 1, Some(b""), Some(b""), &headers[2..])
        .unwrap();
    builder.finish().unwrap()
}

fn check_sample(records: &[Record], base_offset: i64, base_timestamp: i64) {
    assert_eq!(records.len(), 4);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (base_offset..base_offset + 4).collect::<Vec<_>>());
    let timestamps: Vec<i64> = records
        .iter()
        .map(|r| r.timestamp - base_timestamp)
        .collect();
    assert_eq!(timestamps, [0, 5, -3, 1]);
    assert_eq!(records[0].key.as_deref(), Some(&b"key-0"[..]));
    assert_eq!(records[0].value.as_deref(), Some(&b"value-0"[..]));
    let headers = records[0].headers.to_vec();
    let keys: Vec<&str> = headers.iter().map(Header::key).collect();
    assert_eq!(keys, ["trace-id", "empty", "null"]);
    assert_eq!(headers[0].value().map(|v| &v[..]), Some(&b"abc"[..]));
    assert_eq!(headers[1].value().map(|v| &v[..]), Some(&b""[..]));
    assert_eq!(headers[2].value(), None);
    assert_eq!(records[1].key, None);
    assert!(records[1].headers.is_empty());
    assert_eq!(records[2].value, None);
    assert_eq!(records[3].key.as_deref(), Some(&b""[..]));
    assert_eq!(records[3].headers.len(), 1);
}

/// Replaces a v2 batch's attributes and records section, fixing the length and CRC.
fn rebuild_v2(batch: &[u8], attributes: i16, body: &[u8]) -> Bytes {
    let mut out = BytesMut::from(&batch[..61]);
    out.put_slice(body);
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

#[test]
fn every_codec_round_trips_through_the_batch_iterator() {
    let mut wire = BytesMut::new();
    for (i, codec) in CODECS.into_iter().enumerate() {
        let mut batch = BytesMut::from(&sample_batch(codec, 1_000 * i as i64)[..]);
        set_base_offset(&mut batch, 4 * i as i64).unwrap();
        wire.extend_from_slice(&batch);
    }
    let batches: Vec<RecordBatch> = Batches::new(wire.freeze()).map(Result::unwrap).collect();
    assert_eq!(batches.len(), CODECS.len());
    for (i, (batch, codec)) in batches.iter().zip(CODECS).enumerate() {
        assert_eq!(batch.header().compression().unwrap(), codec);
        assert_eq!(batch.magic(), 2);
        assert_eq!(batch.header().record_count, 4);
        assert_eq!(batch.last_offset(), 4 * i as i64 + 3);
        assert_eq!(batch.header().max_timestamp, 1_000 * i as i64 + 5);
        check_sample(&batch.to_records().unwrap(), 4 * i as i64, 1_000 * i as i64);
        // The lazy iterator and the collecting one agree.
        let lazy: Vec<Record> = batch.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(lazy, batch.to_records().unwrap(), "{}", codec.name());
    }
}

#[test]
fn compression_levels_are_accepted() {
    for (codec, level) in [
        (Compression::Gzip, 9),
        (Compression::Zstd, 19),
        (Compression::Gzip, 1),
    ] {
        let mut builder = BatchBuilder::new(1 << 20);
        builder
            .set_compression(codec)
            .set_compression_level(Some(level));
        builder.append(0, None, Some(&[b'x'; 1000]), &[]).unwrap();
        let batch = RecordBatch::from_bytes(builder.finish().unwrap()).unwrap();
        assert_eq!(
            batch.to_records().unwrap()[0].value.as_ref().unwrap().len(),
            1000
        );
    }
}

#[test]
fn log_append_time_batches_stamp_every_record_with_the_max_timestamp() {
    let mut builder = BatchBuilder::new(1 << 20);
    builder.set_timestamp_type(TimestampType::LogAppendTime);
    builder.append(10, None, Some(b"a"), &[]).unwrap();
    builder.append(99, None, Some(b"b"), &[]).unwrap();
    let batch = RecordBatch::from_bytes(builder.finish().unwrap()).unwrap();
    assert_eq!(
        batch.header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    let timestamps: Vec<i64> = batch
        .to_records()
        .unwrap()
        .iter()
        .map(|r| r.timestamp)
        .collect();
    assert_eq!(timestamps, [99, 99]);
}

#[test]
fn control_batches_carry_commit_and_abort_markers() {
    let commit = TransactionMarker {
        commit: true,
        coordinator_epoch: 3,
    };
    let abort = TransactionMarker {
        commit: false,
        coordinator_epoch: 4,
    };
    let mut wire = BytesMut::new();
    wire.extend_from_slice(&sample_batch(Compression::None, 0));
    wire.extend_from_slice(&commit.encode_batch(1, 0, 10).unwrap());
    wire.extend_from_slice(&abort.encode_batch(2, 1, 20).unwrap());
    let batches: Vec<RecordBatch> = Batches::new(wire.freeze()).map(Result::unwrap).collect();
    assert!(!batches[0].is_control());
    assert_eq!(batches[0].transaction_marker().unwrap(), None);
    assert!(batches[1].is_control() && batches[1].is_transactional());
    assert_eq!(batches[1].transaction_marker().unwrap(), Some(commit));
    assert_eq!(batches[2].transaction_marker().unwrap(), Some(abort));
    let record = &batches[2].to_records().unwrap()[0];
    assert_eq!(record.key.as_deref(), Some(&[0, 0, 0, 0][..]));
    assert_eq!(record.value.as_deref(), Some(&[0, 0, 0, 0, 0, 4][..]));
    assert_eq!(TransactionMarker::from_record(record).unwrap(), Some(abort));
}

#[test]
fn a_flipped_byte_is_a_crc_mismatch() {
    for codec in CODECS {
        let wire = sample_batch(codec, 0);
        // Every byte the CRC covers: from the attributes to the end.
        for at in [21, 30, 60, wire.len() / 2 + 30, wire.len() - 1] {
            let mut bad = wire.to_vec();
            bad[at] ^= 0x01;
            let result = Batches::new(Bytes::from(bad)).next().unwrap();
            assert!(
                matches!(result, Err(DecodeError::CrcMismatch { .. })),
                "{} byte {at}: {result:?}",
                codec.name()
            );
        }
        // The base offset and leader epoch are outside it.
        let mut outside = wire.to_vec();
        outside[3] ^= 0xff;
        outside[14] ^= 0xff;
        assert!(RecordBatch::from_bytes(Bytes::from(outside)).is_ok());
    }
}

#[test]
fn crc_checking_can_be_turned_off() {
    let mut bad = sample_batch(Compression::None, 0).to_vec();
    bad[17] ^= 0xff;
    let options = DecodeOptions {
        verify_crc: false,
        ..DecodeOptions::default()
    };
    let batch = Batches::with_options(Bytes::from(bad), options)
        .next()
        .unwrap()
        .unwrap();
    assert!(matches!(
        batch.verify_crc(),
        Err(DecodeError::CrcMismatch { .. })
    ));
    check_sample(&batch.to_records().unwrap(), 0, 0);
}

#[test]
fn a_truncated_trailing_batch_is_skipped() {
    let first = sample_batch(Compression::Lz4, 0);
    let second = sample_batch(Compression::None, 0);
    for cut in [1, 11, 12, 17, 61, second.len() - 1] {
        let mut wire = first.to_vec();
        wire.extend_from_slice(&second[..cut]);
        let results: Vec<_> = Batches::new(Bytes::from(wire)).collect();
        assert_eq!(results.len(), 1, "cut at {cut}");
        assert!(results[0].is_ok());
    }
    assert_eq!(Batches::new(Bytes::new()).count(), 0);
}

#[test]
fn a_batch_length_below_the_minimum_is_an_error() {
    let mut wire = sample_batch(Compression::None, 0).to_vec();
    wire[8..12].copy_from_slice(&3i32.to_be_bytes());
    let result = Batches::new(Bytes::from(wire)).next().unwrap();
    assert!(matches!(
        result,
        Err(DecodeError::InvalidLength { length: 3, .. })
    ));
}

#[test]
fn decompression_beyond_the_limit_is_an_error() {
    let zeros = vec![0u8; 4 * 1024 * 1024];
    for codec in [
        Compression::Gzip,
        Compression::Zstd,
        Compression::Lz4,
        Compression::Snappy,
    ] {
        let mut builder = BatchBuilder::new(1 << 20);
        builder.set_compression(codec);
        builder.append(0, None, Some(&zeros), &[]).unwrap();
        let wire = builder.finish().unwrap();
        if matches!(codec, Compression::Gzip | Compression::Zstd) {
            assert!(
                wire.len() < 64 * 1024,
                "{}: {} bytes",
                codec.name(),
                wire.len()
            );
        }
        let options = DecodeOptions {
            decompression_limit: 1024 * 1024,
            ..DecodeOptions::default()
        };
        let batch = Batches::with_options(wire.clone(), options)
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            batch.records().unwrap_err(),
            DecodeError::DecompressionLimit { limit: 1024 * 1024 },
            "{}",
            codec.name()
        );
        // The default limit is generous enough for the same batch.
        let value = RecordBatch::from_bytes(wire).unwrap().to_records().unwrap()[0]
            .value
            .clone();
        assert_eq!(value.unwrap().len(), zeros.len());
    }
}

/// The Java client's snappy output: xerial header, then `[i32 length][raw block]`.
fn xerial(input: &[u8], block: usize) -> Vec<u8> {
    let mut out = vec![
        0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
    ];
    let mut encoder = snap::raw::Encoder::new();
    for chunk in input.chunks(block) {
        let compressed = encoder.compress_vec(chunk).unwrap();
        out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

#[test]
fn snappy_batches_in_xerial_framing_and_raw_are_read() {
    let plain = sample_batch(Compression::None, 0);
    let records = &plain[61..];
    for body in [
        xerial(records, 16),
        xerial(records, 1 << 15),
        snap::raw::Encoder::new().compress_vec(records).unwrap(),
    ] {
        let wire = rebuild_v2(&plain, 2, &body);
        let batch = RecordBatch::from_bytes(wire).unwrap();
        assert_eq!(batch.header().compression().unwrap(), Compression::Snappy);
        check_sample(&batch.to_records().unwrap(), 0, 0);
    }
    // What we write is the xerial framing.
    let ours = sample_batch(Compression::Snappy, 0);
    assert_eq!(
        &ours[61..69],
        &[0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0]
    );
}

/// A legacy entry: offset, size, then crc (CRC32 of the rest), magic,
/// attributes, timestamp (v1), key and value with i32 lengths.
fn legacy_entry(
    offset: i64,
    magic: i8,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Vec<u8> {
    let mut message = BytesMut::new();
    message.put_i8(magic);
    message.put_i8(attributes);
    if magic == 1 {
        message.put_i64(timestamp);
    }
    for field in [key, value] {
        match field {
            None => message.put_i32(-1),
            Some(bytes) => {
                message.put_i32(bytes.len() as i32);
                message.put_slice(bytes);
            }
        }
    }
    let mut entry = BytesMut::new();
    entry.put_i64(offset);
    entry.put_i32(4 + message.len() as i32);
    entry.put_u32(crc32fast::hash(&message));
    entry.put_slice(&message);
    entry.to_vec()
}

fn gzip(input: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Compression::Gzip.compress(input, None, &mut out).unwrap();
    out.to_vec()
}

fn all_records(wire: Vec<u8>) -> Vec<Record> {
    Batches::new(Bytes::from(wire))
        .flat_map(|batch| batch.unwrap().to_records().unwrap())
        .collect()
}

#[test]
fn a_magic_0_message_set_is_read() {
    let inner = [
        legacy_entry(7, 0, 0, 0, None, Some(b"c1")),
        legacy_entry(8, 0, 0, 0, Some(b"k"), Some(b"c2")),
    ]
    .concat();
    let wire = [
        legacy_entry(5, 0, 0, 0, Some(b"key"), Some(b"v0")),
        legacy_entry(6, 0, 0, 0, None, None),
        // Magic 0 compressed wrappers hold absolute inner offsets.
        legacy_entry(8, 0, 1, 0, None, Some(&gzip(&inner))),
    ]
    .concat();
    let batches: Vec<RecordBatch> = Batches::new(Bytes::from(wire.clone()))
        .map(Result::unwrap)
        .collect();
    assert_eq!(batches.len(), 3);
    assert_eq!(batches[0].magic(), 0);
    assert_eq!(
        batches[2].header().compression().unwrap(),
        Compression::Gzip
    );
    assert_eq!(batches[2].last_offset(), 8);
    let records = all_records(wire);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [5, 6, 7, 8]);
    assert!(
        records
            .iter()
            .all(|r| r.timestamp == -1 && r.headers.is_empty())
    );
    assert_eq!(records[0].key.as_deref(), Some(&b"key"[..]));
    assert_eq!(records[1].value, None);
    assert_eq!(records[3].value.as_deref(), Some(&b"c2"[..]));
}

#[test]
fn a_magic_1_message_set_is_read_with_relative_inner_offsets() {
    // Inner offsets 0..3 are relative; the wrapper holds the last absolute offset.
    let inner = [
        legacy_entry(0, 1, 0, 1_000, None, Some(b"a")),
        legacy_entry(1, 1, 0, 1_001, None, Some(b"b")),
        legacy_entry(2, 1, 0, 1_002, Some(b"k"), Some(b"c")),
    ]
    .concat();
    let wire = [
        legacy_entry(99, 1, 0, 900, Some(b"plain"), Some(b"v")),
        legacy_entry(102, 1, 1, 1_002, None, Some(&gzip(&inner))),
        // Log append time (bit 3): the wrapper's timestamp applies to all.
        legacy_entry(105, 1, 0x08 | 1, 5_000, None, Some(&gzip(&inner))),
    ]
    .concat();
    let records = all_records(wire);
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [99, 100, 101, 102, 103, 104, 105]);
    let timestamps: Vec<i64> = records.iter().map(|r| r.timestamp).collect();
    assert_eq!(timestamps, [900, 1_000, 1_001, 1_002, 5_000, 5_000, 5_000]);
    assert_eq!(records[3].key.as_deref(), Some(&b"k"[..]));
}

#[test]
fn legacy_and_v2_batches_mix_in_one_buffer() {
    let mut wire = legacy_entry(0, 1, 0, 7, None, Some(b"old"));
    let mut v2 = BytesMut::from(&sample_batch(Compression::Zstd, 0)[..]);
    set_base_offset(&mut v2, 1).unwrap();
    wire.extend_from_slice(&v2);
    let records = all_records(wire);
    assert_eq!(records.len(), 5);
    assert_eq!(records[0].value.as_deref(), Some(&b"old"[..]));
    check_sample(&records[1..], 1, 0);
}

#[test]
fn a_corrupt_legacy_message_is_a_crc_mismatch() {
    let mut wire = legacy_entry(0, 1, 0, 7, None, Some(b"old"));
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let result = Batches::new(Bytes::from(wire)).next().unwrap();
    assert!(matches!(result, Err(DecodeError::CrcMismatch { .. })));
}

#[test]
fn builder_closes_at_the_size_limit() {
    let mut builder = BatchBuilder::new(1_000);
    let value = [1u8; 100];
    let mut appended = 0;
    while builder.try_append(0, None, Some(&value), &[]).unwrap() {
        appended += 1;
    }
    assert!(appended > 1 && builder.estimated_size() <= 1_000);
    let wire = builder.finish().unwrap();
    assert!(wire.len() <= 1_000);
    assert_eq!(
        RecordBatch::from_bytes(wire)
            .unwrap()
            .to_records()
            .unwrap()
            .len(),
        appended
    );
}

/// Decodes everything reachable from `input`, discarding the results: the
/// only requirement is not to panic.
fn decode_everything(input: Bytes) {
    for verify_crc in [true, false] {
        let options = DecodeOptions {
            verify_crc,
            decompression_limit: 1 << 20,
            ..DecodeOptions::default()
        };
        for batch in Batches::with_options(input.clone(), options).flatten() {
            let _ = batch.header().compression();
            let _ = batch.transaction_marker();
            let _ = batch.to_records();
            if let Ok(records) = batch.records() {
                for record in records.flatten() {
                    for header in record.headers.iter() {
                        let _ = (header.key(), header.value());
                    }
                    let _ = TransactionMarker::from_record(&record);
                }
            }
        }
        let _ = RecordBatch::from_bytes_with_options(input.clone(), options);
    }
}

fn valid_inputs() -> Vec<Vec<u8>> {
    let mut inputs: Vec<Vec<u8>> = CODECS
        .iter()
        .map(|&c| sample_batch(c, 0).to_vec())
        .collect();
    let marker = TransactionMarker {
        commit: true,
        coordinator_epoch: 1,
    };
    inputs.push(marker.encode_batch(1, 1, 1).unwrap().to_vec());
    let inner = [
        legacy_entry(0, 1, 0, 1, None, Some(b"a")),
        legacy_entry(1, 1, 0, 2, Some(b"k"), Some(b"b")),
    ]
    .concat();
    inputs.push(legacy_entry(1, 1, 1, 2, None, Some(&gzip(&inner))));
    inputs.push(legacy_entry(3, 0, 0, 0, Some(b"k"), Some(b"v")));
    inputs.push(
        rebuild_v2(
            &sample_batch(Compression::None, 0),
            2,
            &xerial(&sample_batch(Compression::None, 0)[61..], 20),
        )
        .to_vec(),
    );
    inputs
}

proptest! {
    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        decode_everything(Bytes::from(input));
    }

    #[test]
    fn random_records_behind_a_valid_header_never_panic(
        attributes in 0i16..0x80,
        count in -2i32..40,
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut header = sample_batch(Compression::None, 0)[..61].to_vec();
        header[57..61].copy_from_slice(&count.to_be_bytes());
        decode_everything(rebuild_v2(&header, attributes, &body));
    }

    #[test]
    fn mutated_valid_batches_never_panic(
        which in 0usize..9,
        mutations in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
        fix_crc in any::<bool>(),
    ) {
        let inputs = valid_inputs();
        let mut input = inputs[which % inputs.len()].clone();
        for (at, byte) in mutations {
            let at = at % input.len();
            input[at] = byte;
        }
        // Re-sign v2 batches so mutations reach the record decoder with the CRC on.
        if fix_crc && input.len() >= 61 && input[16] == 2 {
            let crc = crc32c::crc32c(&input[21..]);
            input[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        input.truncate(input.len() - cut % (input.len() / 4 + 1));
        decode_everything(Bytes::from(input));
    }
}

proptest! {
    /// The batch checksum against the `crc32c` crate, an implementation of
    /// its own, at every length and alignment up to a few blocks.
    #[test]
    fn the_batch_checksum_is_crc32c(
        data in proptest::collection::vec(any::<u8>(), 0..5000),
        skip in 0usize..64,
    ) {
        let data = &data[skip.min(data.len())..];
        prop_assert_eq!(kafka_protocol::records::crc32c(data), crc32c::crc32c(data));
    }
}
