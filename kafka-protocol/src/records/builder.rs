//! Building v2 record batches straight into wire bytes.

use bytes::{Bytes, BytesMut};

use crate::EncodeError;

use super::batch::{ATTRIBUTES_OFFSET, RECORD_BATCH_OVERHEAD, TimestampType};
use super::compression::Compression;
use super::record::{Header, PackedRecord, record_body_len, record_len, write_record};

/// Appends records in their wire form to one buffer, then fills in the
/// header, compresses and checksums in [`finish`](Self::finish).
///
/// Appending allocates nothing per record: each record's size is computed
/// first so its varint length prefix can be written before its fields. The
/// builder tracks the uncompressed size so a producer can close a batch at
/// `batch.size`; the first record is always accepted, however large, as in
/// the Java client.
///
/// ```
/// use kafka_protocol::records::{BatchBuilder, Compression, RecordBatch};
///
/// let mut builder = BatchBuilder::new(16 * 1024);
/// builder.set_compression(Compression::Lz4);
/// assert!(builder.try_append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[]).unwrap());
/// let wire = builder.finish().unwrap();
/// let records = RecordBatch::from_bytes(wire).unwrap().to_records().unwrap();
/// assert_eq!(records[0].value.as_deref(), Some(&b"value"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    buf: BytesMut,
    size_limit: usize,
    compression: Compression,
    compression_level: Option<i32>,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
}

impl BatchBuilder {
    /// An empty builder that reports itself full at `size_limit` bytes
    /// (the producer's `batch.size`).
    pub fn new(size_limit: usize) -> Self {
        // Preallocate for the common case without trusting a huge limit.
        let capacity = size_limit.clamp(RECORD_BATCH_OVERHEAD + 64, 1024 * 1024);
        let mut buf = BytesMut::with_capacity(capacity);
        buf.resize(RECORD_BATCH_OVERHEAD, 0);
        Self {
            buf,
            size_limit,
            compression: Compression::None,
            compression_level: None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            base_offset: 0,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            base_timestamp: -1,
            max_timestamp: -1,
            record_count: 0,
        }
    }

    /// The codec applied by `finish`. Default none.
    pub fn set_compression(&mut self, compression: Compression) -> &mut Self {
        self.compression = compression;
        self
    }

    /// The codec's level (`compression.gzip.level`, `compression.zstd.level`);
    /// `None` for the codec's default.
    pub fn set_compression_level(&mut self, level: Option<i32>) -> &mut Self {
        self.compression_level = level;
        self
    }

    /// The timestamp type bit. Default create time.
    pub fn set_timestamp_type(&mut self, timestamp_type: TimestampType) -> &mut Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn set_transactional(&mut self, transactional: bool) -> &mut Self {
        self.transactional = transactional;
        self
    }

    /// Marks the batch as a control batch (see [`super::control`]).
    pub fn set_control(&mut self, control: bool) -> &mut Self {
        self.control = control;
        self
    }

    /// The base offset. Producers leave it 0; the broker assigns it.
    pub fn set_base_offset(&mut self, base_offset: i64) -> &mut Self {
        self.base_offset = base_offset;
        self
    }

    /// The partition leader epoch. Default -1; set by the broker.
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) -> &mut Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// The idempotent producer's id, epoch and the sequence number of the
    /// first record. Default -1 for each (not idempotent).
    pub fn set_producer(&mut self, producer_id: i64, epoch: i16, base_sequence: i32) -> &mut Self {
        self.producer_id = producer_id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Records appended so far.
    pub fn record_count(&self) -> usize {
        self.record_count as usize
    }

    /// True before the first append.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The batch size so far without compression: an upper bound for what
    /// `finish` returns in all but pathological (incompressible) cases.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// The size limit given to [`new`](Self::new).
    pub fn size_limit(&self) -> usize {
        self.size_limit
    }

    /// The timestamp delta of the next record: the first sets the base.
    #[inline(always)]
    fn timestamp_delta(&self, timestamp: i64) -> i64 {
        if self.record_count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        }
    }

    fn next_record_len(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<(usize, i64), EncodeError> {
        let delta = self.timestamp_delta(timestamp);
        let body = record_body_len(delta, self.record_count, key, value, headers)?;
        Ok((body, delta))
    }

    /// The packed form of the next record, when it has one (no headers, small fields).
    #[inline(always)]
    fn packed(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Option<PackedRecord> {
        if !headers.is_empty() {
            return None;
        }
        PackedRecord::new(
            self.timestamp_delta(timestamp),
            self.record_count,
            key,
            value,
        )
    }

    /// Whether a record would fit within the size limit. An empty builder
    /// accepts any record.
    pub fn would_fit(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> bool {
        if self.record_count == 0 {
            return true;
        }
        match self.next_record_len(timestamp, key, value, headers) {
            Ok((body, _)) => self.buf.len() + record_len(body) <= self.size_limit,
            Err(_) => false,
        }
    }

    /// Appends a record if it fits within the size limit (always, into an
    /// empty builder); `Ok(false)` means the batch is full and should be closed.
    pub fn try_append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<bool, EncodeError> {
        if let Some(record) = self.packed(timestamp, key, value, headers) {
            if self.record_count > 0 && self.buf.len() + record.record_len() > self.size_limit {
                return Ok(false);
            }
            record.write(&mut self.buf, key, value);
            self.appended(timestamp);
            return Ok(true);
        }
        let (body, delta) = self.next_record_len(timestamp, key, value, headers)?;
        if self.record_count > 0 && self.buf.len() + record_len(body) > self.size_limit {
            return Ok(false);
        }
        write_record(
            &mut self.buf,
            body,
            delta,
            self.record_count,
            key,
            value,
            headers,
        );
        self.appended(timestamp);
        Ok(true)
    }

    /// Appends a record regardless of the size limit, returning its offset delta.
    #[inline]
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<i32, EncodeError> {
        let offset_delta = self.record_count;
        if let Some(record) = self.packed(timestamp, key, value, headers) {
            record.write(&mut self.buf, key, value);
        } else {
            let (body, delta) = self.next_record_len(timestamp, key, value, headers)?;
            write_record(
                &mut self.buf,
                body,
                delta,
                offset_delta,
                key,
                value,
                headers,
            );
        }
        self.appended(timestamp);
        Ok(offset_delta)
    }

    /// Counts a record just written and folds its timestamp into the header's.
    #[inline(always)]
    fn appended(&mut self, timestamp: i64) {
        if self.record_count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else if timestamp > self.max_timestamp {
            self.max_timestamp = timestamp;
        }
        self.record_count += 1;
    }

    fn attributes(&self) -> i16 {
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 0x08;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        attributes
    }

    /// Fills in the header, compresses the records section if a codec is set,
    /// computes the CRC and returns the batch's wire bytes.
    pub fn finish(self) -> Result<Bytes, EncodeError> {
        let attributes = self.attributes();
        let mut buf = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[RECORD_BATCH_OVERHEAD..];
                let mut out = BytesMut::with_capacity(
                    RECORD_BATCH_OVERHEAD + codec.output_capacity(records.len()),
                );
                out.extend_from_slice(&self.buf[..RECORD_BATCH_OVERHEAD]);
                codec.compress(records, self.compression_level, &mut out)?;
                out
            }
        };
        let batch_length = i32::try_from(buf.len() - 12)
            .map_err(|_| EncodeError::TooLong { length: buf.len() })?;
        let last_offset_delta = (self.record_count - 1).max(0);
        let header = &mut buf[..RECORD_BATCH_OVERHEAD];
        header[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        header[8..12].copy_from_slice(&batch_length.to_be_bytes());
        header[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        header[16] = 2;
        header[21..23].copy_from_slice(&attributes.to_be_bytes());
        header[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        header[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        header[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        header[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        header[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        header[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        header[57..61].copy_from_slice(&self.record_count.to_be_bytes());
        let crc = crate::records::crc32c(&buf[ATTRIBUTES_OFFSET..]);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::RecordBatch;

    #[test]
    fn first_record_always_fits_then_the_limit_applies() {
        let mut builder = BatchBuilder::new(100);
        let big = [7u8; 500];
        assert!(builder.would_fit(0, None, Some(&big), &[]));
        assert!(builder.try_append(0, None, Some(&big), &[]).unwrap());
        assert!(!builder.would_fit(0, None, Some(b"x"), &[]));
        assert!(!builder.try_append(0, None, Some(b"x"), &[]).unwrap());
        assert_eq!(builder.record_count(), 1);
    }

    #[test]
    fn estimated_size_is_the_uncompressed_wire_size() {
        let mut builder = BatchBuilder::new(1 << 20);
        for i in 0..10 {
            builder
                .append(1000 + i, Some(b"k"), Some(&[0u8; 100]), &[])
                .unwrap();
        }
        let estimate = builder.estimated_size();
        assert_eq!(builder.finish().unwrap().len(), estimate);
    }

    #[test]
    fn header_fields_are_filled_in() {
        let mut builder = BatchBuilder::new(1 << 20);
        builder
            .set_producer(9, 2, 40)
            .set_transactional(true)
            .set_base_offset(1000)
            .set_partition_leader_epoch(5);
        builder.append(50, None, Some(b"a"), &[]).unwrap();
        builder.append(30, None, Some(b"b"), &[]).unwrap();
        builder.append(70, None, Some(b"c"), &[]).unwrap();
        let batch = RecordBatch::from_bytes(builder.finish().unwrap()).unwrap();
        let h = batch.header();
        assert_eq!(
            (
                h.base_offset,
                h.partition_leader_epoch,
                h.last_offset_delta,
                h.record_count
            ),
            (1000, 5, 2, 3)
        );
        assert_eq!((h.base_timestamp, h.max_timestamp), (50, 70));
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (9, 2, 40)
        );
        assert!(h.is_transactional() && !h.is_control());
        let timestamps: Vec<i64> = batch
            .to_records()
            .unwrap()
            .iter()
            .map(|r| r.timestamp)
            .collect();
        assert_eq!(timestamps, [50, 30, 70]);
    }
}
