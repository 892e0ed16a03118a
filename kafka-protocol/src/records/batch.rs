//! Decoding record batches: the iterator over a buffer of batches (a Fetch
//! response's `records`, a Produce request's, a log segment) and the v2 header.
//!
//! Both the v2 batch and the legacy message share their first 17 bytes'
//! shape: offset i64, length i32, then (after 4 more bytes) the magic byte at
//! offset 16, so the iterator can frame any batch before knowing its version.

use bytes::Bytes;

use crate::DecodeError;

use super::compression::{Compression, DEFAULT_DECOMPRESSION_LIMIT};
use super::legacy;
use super::record::{MIN_RECORD_SIZE, Record, decode_record, decode_record_into};

/// Bytes of a v2 batch before its records.
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// The offset and length prefix every batch and legacy message starts with.
pub(crate) const LOG_OVERHEAD: usize = 12;
pub(crate) const MAGIC_OFFSET: usize = 16;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const CRC_OFFSET: usize = 17;
/// The CRC covers everything from the attributes on; the base offset and
/// partition leader epoch come before it so the broker can assign them
/// without recomputing it.
pub(crate) const ATTRIBUTES_OFFSET: usize = 21;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_FLAG: i16 = 0x08;
const TRANSACTIONAL_FLAG: i16 = 0x10;
const CONTROL_FLAG: i16 = 0x20;
const DELETE_HORIZON_FLAG: i16 = 0x40;

/// Who set record timestamps: attribute bit 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's create time.
    #[default]
    CreateTime,
    /// The broker's append time (`message.timestamp.type=LogAppendTime`): the
    /// batch's max timestamp applies to every record.
    LogAppendTime,
}

/// How batches are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The most bytes a compressed batch may inflate to.
    /// Default [`DEFAULT_DECOMPRESSION_LIMIT`].
    pub decompression_limit: usize,
    /// Check each batch's CRC as it is framed (the Java consumer's
    /// `check.crcs`). Default true.
    pub verify_crc: bool,
    /// Treat a partial batch at the end of the buffer as an error instead of
    /// skipping it. Fetch responses legitimately end with one, so the default
    /// is false; a broker reading a Produce request wants true.
    pub reject_truncated: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            decompression_limit: DEFAULT_DECOMPRESSION_LIMIT,
            verify_crc: true,
            reject_truncated: false,
        }
    }
}

/// The header of a batch. For legacy (magic 0 and 1) messages it is
/// synthesised: see [`RecordBatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// The offset of the first record (legacy: the message's own offset,
    /// which for a compressed wrapper is that of its last inner record).
    pub base_offset: i64,
    /// Bytes after this field to the end of the batch.
    pub batch_length: i32,
    /// The leader epoch of the broker that appended the batch; -1 if unset.
    pub partition_leader_epoch: i32,
    /// The format version: 2, or 0/1 for legacy messages.
    pub magic: i8,
    /// The stored checksum (CRC32C for v2, CRC32 for legacy).
    pub crc: u32,
    /// Codec, timestamp type, transactional, control and delete-horizon bits.
    pub attributes: i16,
    /// The last record's offset minus the base offset.
    pub last_offset_delta: i32,
    /// The first record's timestamp (or the delete horizon, see
    /// [`BatchHeader::has_delete_horizon`]).
    pub base_timestamp: i64,
    /// The largest record timestamp, or the log append time.
    pub max_timestamp: i64,
    /// The idempotent/transactional producer id; -1 if none.
    pub producer_id: i64,
    /// The producer epoch; -1 if none.
    pub producer_epoch: i16,
    /// The first record's sequence number; -1 if none.
    pub base_sequence: i32,
    /// How many records the batch claims (legacy compressed wrappers: -1,
    /// unknown until decompressed).
    pub record_count: i32,
}

impl BatchHeader {
    /// The codec of the records section.
    pub fn compression(&self) -> Result<Compression, DecodeError> {
        Compression::from_id((self.attributes & COMPRESSION_MASK) as u8)
    }

    /// Whether record timestamps are create or log append times.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction: `read_committed` consumers hold it until its marker.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// A control batch (transaction markers and the like), never handed to applications.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// The base timestamp holds the delete horizon set by log compaction (KIP-534).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG != 0
    }

    /// The offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset after the batch: where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    fn parse_v2(raw: &[u8]) -> Self {
        // Callers checked `raw.len() >= RECORD_BATCH_OVERHEAD`.
        let i16_at = |at: usize| i16::from_be_bytes([raw[at], raw[at + 1]]);
        let i32_at =
            |at: usize| i32::from_be_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[at..at + 8]);
            i64::from_be_bytes(b)
        };
        Self {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(PARTITION_LEADER_EPOCH_OFFSET),
            magic: raw[MAGIC_OFFSET] as i8,
            crc: i32_at(CRC_OFFSET) as u32,
            attributes: i16_at(ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        }
    }
}

/// One batch framed from a buffer: a v2 record batch or a legacy (magic 0/1)
/// message, which is a batch of one record or, when compressed, of its inner
/// messages. Both hand out the same [`Record`]s.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    raw: Bytes,
    options: DecodeOptions,
}

impl RecordBatch {
    /// Decodes one complete batch (exactly `raw`), checking its CRC.
    pub fn from_bytes(raw: Bytes) -> Result<Self, DecodeError> {
        Self::from_bytes_with_options(raw, DecodeOptions::default())
    }

    /// Decodes one complete batch (exactly `raw`) with the given options.
    pub fn from_bytes_with_options(
        raw: Bytes,
        options: DecodeOptions,
    ) -> Result<Self, DecodeError> {
        if raw.len() <= MAGIC_OFFSET {
            return Err(DecodeError::UnexpectedEof {
                needed: MAGIC_OFFSET + 1,
                remaining: raw.len(),
            });
        }
        let declared = i32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
        if i64::from(declared) != (raw.len() - LOG_OVERHEAD) as i64 {
            return Err(DecodeError::InvalidLength {
                length: i64::from(declared),
                remaining: raw.len() - LOG_OVERHEAD,
            });
        }
        let header = match raw[MAGIC_OFFSET] as i8 {
            2 => {
                if raw.len() < RECORD_BATCH_OVERHEAD {
                    return Err(DecodeError::UnexpectedEof {
                        needed: RECORD_BATCH_OVERHEAD,
                        remaining: raw.len(),
                    });
                }
                BatchHeader::parse_v2(&raw)
            }
            0 | 1 => legacy::parse_header(&raw)?,
            magic => return Err(DecodeError::UnsupportedMagic(magic)),
        };
        let batch = Self {
            header,
            raw,
            options,
        };
        if options.verify_crc {
            batch.verify_crc()?;
        }
        Ok(batch)
    }

    /// The header fields.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The format version: 2, or 0/1 for legacy messages.
    pub fn magic(&self) -> i8 {
        self.header.magic
    }

    /// The offset of the first record (see [`BatchHeader::base_offset`]).
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// The offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The offset after the batch.
    pub fn next_offset(&self) -> i64 {
        self.header.next_offset()
    }

    /// True for control batches (transaction markers).
    pub fn is_control(&self) -> bool {
        self.header.is_control()
    }

    /// True for transactional batches.
    pub fn is_transactional(&self) -> bool {
        self.header.is_transactional()
    }

    /// The batch exactly as it was on the wire.
    pub fn as_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The wire bytes, e.g. for a broker to store the batch as received.
    pub fn into_bytes(self) -> Bytes {
        self.raw
    }

    /// Checks the stored CRC against the bytes: CRC32C from the attributes
    /// on for v2, CRC32 (IEEE) from the magic byte on for legacy messages.
    pub fn verify_crc(&self) -> Result<(), DecodeError> {
        let computed = if self.header.magic >= 2 {
            crate::records::crc32c(&self.raw[ATTRIBUTES_OFFSET..])
        } else {
            crc32fast::hash(&self.raw[MAGIC_OFFSET..])
        };
        if computed != self.header.crc {
            return Err(DecodeError::CrcMismatch {
                stored: self.header.crc,
                computed,
            });
        }
        Ok(())
    }

    /// The records, decoded lazily. A compressed batch is inflated here, once,
    /// within the configured decompression limit; the records are then slices
    /// of the inflated buffer.
    pub fn records(&self) -> Result<Records, DecodeError> {
        self.records_with_limit(self.options.decompression_limit)
    }

    /// [`records`](Self::records) with an explicit decompression limit.
    pub fn records_with_limit(&self, limit: usize) -> Result<Records, DecodeError> {
        let header = &self.header;
        if header.magic < 2 {
            let records = legacy::decode_records(&self.raw, limit, self.options.verify_crc)?;
            return Ok(Records(Inner::Legacy(records.into_iter())));
        }
        if header.record_count < 0 {
            return Err(DecodeError::InvalidLength {
                length: i64::from(header.record_count),
                remaining: self.raw.len() - RECORD_BATCH_OVERHEAD,
            });
        }
        let body = self.raw.slice(RECORD_BATCH_OVERHEAD..);
        let buf = match header.compression()? {
            Compression::None => body,
            codec => codec.decompress(&body, limit)?,
        };
        let log_append_time = match header.timestamp_type() {
            TimestampType::LogAppendTime => Some(header.max_timestamp),
            TimestampType::CreateTime => None,
        };
        Ok(Records(Inner::V2 {
            buf,
            pos: 0,
            remaining: header.record_count as u32,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time,
        }))
    }

    /// Decodes every record into a `Vec`: one allocation for the `Vec`, its
    /// capacity bounded by the bytes present rather than the claimed count.
    pub fn to_records(&self) -> Result<Vec<Record>, DecodeError> {
        self.records()?.collect_vec()
    }
}

/// The records of one batch, decoded one at a time. Fused after an error.
#[derive(Debug, Clone)]
pub struct Records(Inner);

#[derive(Debug, Clone)]
enum Inner {
    V2 {
        buf: Bytes,
        pos: usize,
        remaining: u32,
        base_offset: i64,
        base_timestamp: i64,
        log_append_time: Option<i64>,
    },
    Legacy(std::vec::IntoIter<Record>),
}

impl Records {
    /// Collects the remaining records, allocating the `Vec` once.
    pub fn collect_vec(self) -> Result<Vec<Record>, DecodeError> {
        let mut out = Vec::with_capacity(self.size_hint().1.unwrap_or(0));
        match self.0 {
            // Straight into the `Vec`: the same records and errors as the
            // iterator, without wrapping each in `Option<Result<..>>`.
            Inner::V2 {
                buf,
                mut pos,
                remaining,
                base_offset,
                base_timestamp,
                log_append_time,
            } => {
                for _ in 0..remaining {
                    decode_record_into(
                        &buf,
                        &mut pos,
                        base_offset,
                        base_timestamp,
                        log_append_time,
                        &mut out,
                    )?;
                }
                if pos < buf.len() {
                    return Err(bytes_after_the_last_record());
                }
            }
            Inner::Legacy(records) => out.extend(records),
        }
        Ok(out)
    }
}

fn bytes_after_the_last_record() -> DecodeError {
    DecodeError::Malformed {
        what: "record batch",
        reason: "bytes left after the last record".into(),
    }
}

impl Iterator for Records {
    type Item = Result<Record, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Legacy(records) => records.next().map(Ok),
            Inner::V2 {
                buf,
                pos,
                remaining,
                base_offset,
                base_timestamp,
                log_append_time,
            } => {
                if *remaining == 0 {
                    if *pos >= buf.len() {
                        return None;
                    }
                    *buf = Bytes::new();
                    *pos = 0;
                    return Some(Err(bytes_after_the_last_record()));
                }
                *remaining -= 1;
                let result =
                    decode_record(buf, pos, *base_offset, *base_timestamp, *log_append_time);
                if result.is_err() {
                    *remaining = 0;
                    *buf = Bytes::new();
                    *pos = 0;
                }
                Some(result)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Inner::Legacy(records) => records.size_hint(),
            Inner::V2 {
                buf,
                pos,
                remaining,
                ..
            } => {
                // A hostile count must not size an allocation: the bytes bound it.
                let left = buf.len().saturating_sub(*pos);
                let bound = (*remaining as usize).min(left / MIN_RECORD_SIZE);
                (0, Some(bound))
            }
        }
    }
}

/// Iterates the batches in a buffer, dispatching on each one's magic byte.
///
/// A partial batch at the end (a Fetch response cut at `max.bytes`) ends the
/// iteration without an error, as in the Java client, unless
/// [`DecodeOptions::reject_truncated`] is set. After an error it is fused.
#[derive(Debug, Clone)]
pub struct Batches {
    buf: Bytes,
    options: DecodeOptions,
}

impl Batches {
    /// Batches of `buf` with the default options.
    pub fn new(buf: Bytes) -> Self {
        Self::with_options(buf, DecodeOptions::default())
    }

    /// Batches of `buf` with the given options.
    pub fn with_options(buf: Bytes, options: DecodeOptions) -> Self {
        Self { buf, options }
    }

    /// What has not been framed yet (after the end: the skipped partial batch).
    pub fn remaining(&self) -> &Bytes {
        &self.buf
    }

    fn fail(&mut self, error: DecodeError) -> Option<Result<RecordBatch, DecodeError>> {
        self.buf = Bytes::new();
        Some(Err(error))
    }
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let available = self.buf.len();
        if available < LOG_OVERHEAD {
            if self.options.reject_truncated && available > 0 {
                return self.fail(DecodeError::UnexpectedEof {
                    needed: LOG_OVERHEAD,
                    remaining: available,
                });
            }
            return None;
        }
        let length = i32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        if length < legacy::MIN_MESSAGE_SIZE as i32 {
            return self.fail(DecodeError::InvalidLength {
                length: i64::from(length),
                remaining: available - LOG_OVERHEAD,
            });
        }
        let total = LOG_OVERHEAD + length as usize;
        if total > available {
            if self.options.reject_truncated {
                return self.fail(DecodeError::UnexpectedEof {
                    needed: total,
                    remaining: available,
                });
            }
            return None;
        }
        let raw = self.buf.split_to(total);
        match RecordBatch::from_bytes_with_options(raw, self.options) {
            Ok(batch) => Some(Ok(batch)),
            Err(error) => self.fail(error),
        }
    }
}

fn check_v2_for_rewrite(batch: &[u8]) -> Result<(), DecodeError> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(DecodeError::UnexpectedEof {
            needed: RECORD_BATCH_OVERHEAD,
            remaining: batch.len(),
        });
    }
    match batch[MAGIC_OFFSET] as i8 {
        2 => Ok(()),
        magic => Err(DecodeError::UnsupportedMagic(magic)),
    }
}

/// Sets the base offset of an encoded v2 batch in place. The CRC does not
/// cover it, so the batch stays valid: this is how a broker assigns offsets.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), DecodeError> {
    check_v2_for_rewrite(batch)?;
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
    Ok(())
}

/// Sets the partition leader epoch of an encoded v2 batch in place; like the
/// base offset it is outside the CRC (KIP-101).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), DecodeError> {
    check_v2_for_rewrite(batch)?;
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Sets the producer id, epoch and base sequence of an encoded v2 batch in
/// place and recomputes its CRC (these fields are covered by it). An
/// idempotent producer does this when it bumps its epoch and sends queued
/// batches again under new sequence numbers (KIP-360).
pub fn set_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<(), DecodeError> {
    check_v2_for_rewrite(batch)?;
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crate::records::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::BatchBuilder;

    #[test]
    fn rewriting_the_producer_state_keeps_the_batch_valid() {
        let mut builder = BatchBuilder::new(1024);
        builder.set_producer(1, 0, 5);
        builder.append(1, None, Some(b"v"), &[]).unwrap();
        let mut wire = builder.finish().unwrap().to_vec();
        set_producer_state(&mut wire, 9, 3, 0).unwrap();
        let batch = RecordBatch::from_bytes(Bytes::from(wire)).unwrap();
        let h = batch.header();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 3, 0)
        );
        assert!(set_producer_state(&mut [0u8; 10], 1, 1, 1).is_err());
    }

    fn batch(values: &[&[u8]]) -> Bytes {
        let mut builder = BatchBuilder::new(1 << 20);
        for value in values {
            builder.append(10, None, Some(value), &[]).unwrap();
        }
        builder.finish().unwrap()
    }

    #[test]
    fn records_are_slices_of_the_input() {
        let wire = batch(&[b"abc", b"def"]);
        let range = wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len();
        let records = RecordBatch::from_bytes(wire.clone())
            .unwrap()
            .to_records()
            .unwrap();
        for record in records {
            let value = record.value.unwrap();
            assert!(range.contains(&(value.as_ptr() as usize)));
        }
    }

    #[test]
    fn rewriting_the_offset_and_epoch_keeps_the_crc_valid() {
        let mut wire = bytes::BytesMut::from(&batch(&[b"a", b"b"])[..]);
        set_base_offset(&mut wire, 500).unwrap();
        set_partition_leader_epoch(&mut wire, 7).unwrap();
        let batch = RecordBatch::from_bytes(wire.freeze()).unwrap();
        assert_eq!(
            (batch.base_offset(), batch.header().partition_leader_epoch),
            (500, 7)
        );
        let offsets: Vec<i64> = batch
            .to_records()
            .unwrap()
            .iter()
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, [500, 501]);
        assert_eq!(batch.next_offset(), 502);
        assert!(set_base_offset(&mut [0u8; 10], 1).is_err());
    }

    #[test]
    fn a_partial_trailing_batch_ends_iteration_unless_strict() {
        let whole = batch(&[b"one"]);
        let mut buf = whole.to_vec();
        buf.extend_from_slice(&whole[..whole.len() - 3]);
        let buf = Bytes::from(buf);
        let mut batches = Batches::new(buf.clone());
        assert!(batches.next().unwrap().is_ok());
        assert!(batches.next().is_none());
        assert_eq!(batches.remaining().len(), whole.len() - 3);
        let strict = DecodeOptions {
            reject_truncated: true,
            ..DecodeOptions::default()
        };
        let results: Vec<_> = Batches::with_options(buf, strict).collect();
        assert!(results[0].is_ok());
        assert!(matches!(results[1], Err(DecodeError::UnexpectedEof { .. })));
        assert_eq!(results.len(), 2);
    }

    #[test]
    fn a_hostile_record_count_is_an_error_not_an_allocation() {
        let mut wire = bytes::BytesMut::from(&batch(&[b"x"])[..]);
        wire[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let crc = crate::records::crc32c(&wire[ATTRIBUTES_OFFSET..]);
        wire[17..21].copy_from_slice(&crc.to_be_bytes());
        let batch = RecordBatch::from_bytes(wire.freeze()).unwrap();
        assert!(batch.records().unwrap().size_hint().1 <= Some(1));
        assert!(batch.to_records().is_err());
    }

    #[test]
    fn unknown_magic_is_an_error() {
        let mut wire = batch(&[b"x"]).to_vec();
        wire[MAGIC_OFFSET] = 3;
        assert_eq!(
            RecordBatch::from_bytes(Bytes::from(wire)).unwrap_err(),
            DecodeError::UnsupportedMagic(3)
        );
    }

    #[test]
    fn to_records_agrees_with_the_iterator_on_damaged_batches() {
        use crate::records::Header;
        let mut builder = BatchBuilder::new(1 << 20);
        let headers = [Header::from_static("h", Some(Bytes::from_static(b"v")))];
        builder
            .append(100, Some(b"key"), Some(b"one"), &headers)
            .unwrap();
        builder.append(40, None, Some(&[9u8; 300]), &[]).unwrap();
        builder.append(i64::MAX, Some(b""), None, &[]).unwrap();
        let wire = builder.finish().unwrap();
        let options = DecodeOptions {
            verify_crc: false,
            ..DecodeOptions::default()
        };
        let check = |raw: Vec<u8>| {
            let Ok(batch) = RecordBatch::from_bytes_with_options(Bytes::from(raw), options) else {
                return;
            };
            let (Ok(records), Ok(iterated)) = (batch.records(), batch.records()) else {
                return;
            };
            let iterated: Result<Vec<Record>, DecodeError> = iterated.collect();
            assert_eq!(records.collect_vec(), iterated);
        };
        check(wire.to_vec());
        for at in RECORD_BATCH_OVERHEAD..wire.len() {
            for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut raw = wire.to_vec();
                raw[at] = byte;
                check(raw);
            }
        }
        // A count below the records present leaves bytes after the last one.
        let mut raw = wire.to_vec();
        raw[57..61].copy_from_slice(&2i32.to_be_bytes());
        check(raw);
    }
}
