//! Partition logs: record batches kept as the wire bytes they arrived in.
//!
//! A produced batch is validated, its base offset and leader epoch are
//! rewritten in place (both outside the CRC), and it is stored whole. Fetch
//! answers with those bytes unchanged. The log also keeps what idempotence
//! and transactions need: per-producer sequence state, the first offset of
//! each open transaction (which bounds the last stable offset) and the
//! ranges of aborted transactions.

mod disk;
mod producer;

use std::collections::{BTreeMap, HashMap, VecDeque};

use bytes::{Bytes, BytesMut};
use kafka_protocol::ErrorCode;
use kafka_protocol::records::{
    Batches, DecodeOptions, RecordBatch, TimestampType, TransactionMarker, set_base_offset,
    set_partition_leader_epoch,
};

use disk::DiskLog;
pub(crate) use disk::partition_dir;
pub(crate) use producer::{ProducerCheck, ProducerStates};

/// One stored batch and the facts reads need without parsing it again.
#[derive(Debug, Clone)]
pub(crate) struct StoredBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: Bytes,
}

/// A transaction that was aborted: its data in `first_offset..=last_offset`
/// from `producer_id` must be skipped by `read_committed` consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Why an append was refused, with Kafka's code for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppendError {
    pub code: ErrorCode,
    pub message: String,
}

impl AppendError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// What a successful append reports back to the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub base_offset: i64,
    pub log_start_offset: i64,
}

/// The result of a read: batches to send as they are, and the transaction
/// ranges a `read_committed` reader must drop.
#[derive(Debug, Default)]
pub(crate) struct ReadResult {
    pub chunks: Vec<Bytes>,
    pub bytes: usize,
    pub aborted: Vec<AbortedTxn>,
}

/// A batch that passed validation and is ready to be appended.
pub(crate) struct ValidBatch {
    bytes: BytesMut,
    record_count: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
}

impl ValidBatch {
    /// Checks one produced partition's records: exactly one v2 batch, its CRC
    /// and size, as Kafka does for produce requests of version 3 and up.
    pub(crate) fn parse(records: &Bytes, max_bytes: usize) -> Result<Self, AppendError> {
        if records.len() > max_bytes {
            return Err(AppendError::new(
                ErrorCode::MessageTooLarge,
                format!(
                    "batch of {} bytes exceeds message.max.bytes {max_bytes}",
                    records.len()
                ),
            ));
        }
        let options = DecodeOptions {
            reject_truncated: true,
            ..DecodeOptions::default()
        };
        let mut batches = Batches::with_options(records.clone(), options);
        let batch: RecordBatch = match batches.next() {
            Some(Ok(batch)) => batch,
            Some(Err(kafka_protocol::DecodeError::CrcMismatch { stored, computed })) => {
                return Err(AppendError::new(
                    ErrorCode::CorruptMessage,
                    format!("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"),
                ));
            }
            Some(Err(e)) => return Err(AppendError::new(ErrorCode::CorruptMessage, e.to_string())),
            None => {
                return Err(AppendError::new(
                    ErrorCode::InvalidRecord,
                    "produce request without a record batch",
                ));
            }
        };
        if batches.next().is_some() {
            return Err(AppendError::new(
                ErrorCode::InvalidRecord,
                "produce requests must carry exactly one batch per partition",
            ));
        }
        let header = batch.header();
        if header.magic != 2 {
            return Err(AppendError::new(
                ErrorCode::UnsupportedForMessageFormat,
                format!("magic {} batches are not accepted", header.magic),
            ));
        }
        if header.compression().is_err() {
            return Err(AppendError::new(
                ErrorCode::CorruptMessage,
                "unknown compression codec",
            ));
        }
        if header.record_count <= 0 || header.last_offset_delta != header.record_count - 1 {
            return Err(AppendError::new(
                ErrorCode::InvalidRecord,
                format!(
                    "record count {} does not match last offset delta {}",
                    header.record_count, header.last_offset_delta
                ),
            ));
        }
        Ok(Self {
            record_count: i64::from(header.record_count),
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            transactional: header.is_transactional(),
            control: header.is_control(),
            bytes: BytesMut::from(&batch.as_bytes()[..]),
        })
    }

    /// The producer id (-1 when not idempotent) and epoch.
    pub(crate) fn producer(&self) -> (i64, i16) {
        (self.producer_id, self.producer_epoch)
    }

    /// Whether the batch belongs to a transaction.
    pub(crate) fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Whether the batch is a control batch (never accepted from producers).
    pub(crate) fn is_control(&self) -> bool {
        self.control
    }
}

/// One partition's log, in memory.
#[derive(Debug)]
pub(crate) struct PartitionLog {
    batches: VecDeque<StoredBatch>,
    log_start_offset: i64,
    next_offset: i64,
    size_bytes: usize,
    leader_epoch: i32,
    producers: ProducerStates,
    /// First offset of every open transaction, by that offset.
    open_txns: BTreeMap<i64, i64>,
    /// Producer id -> first offset of its open transaction here.
    open_by_producer: HashMap<i64, i64>,
    aborted: Vec<AbortedTxn>,
    /// The segment files, in disk mode.
    disk: Option<DiskLog>,
}

impl PartitionLog {
    /// An empty in-memory log.
    pub(crate) fn new(leader_epoch: i32) -> Self {
        Self {
            batches: VecDeque::new(),
            log_start_offset: 0,
            next_offset: 0,
            size_bytes: 0,
            leader_epoch,
            producers: ProducerStates::default(),
            open_txns: BTreeMap::new(),
            open_by_producer: HashMap::new(),
            aborted: Vec::new(),
            disk: None,
        }
    }

    /// A log kept in `dir`, recovered from what is there: torn or corrupt
    /// tails are cut, and producer and transaction state is rebuilt from the
    /// batches.
    pub(crate) fn open(dir: std::path::PathBuf, leader_epoch: i32) -> std::io::Result<Self> {
        let (disk, recovered) = DiskLog::open(dir)?;
        if recovered.truncated_bytes > 0 {
            tracing::warn!(
                bytes = recovered.truncated_bytes,
                "recovery dropped a torn or corrupt tail"
            );
        }
        let mut log = Self::new(leader_epoch);
        for batch in recovered.batches {
            log.restore(batch);
        }
        // DeleteRecords may have moved the start inside a batch, or past
        // batches whose segment is still the active one: the checkpoint
        // says where the log really starts. Past the recovered end (a lost
        // tail) the log continues from there, as Kafka's does.
        if let Some(start) = disk.saved_log_start()
            && start > log.log_start_offset
        {
            log.next_offset = log.next_offset.max(start);
            log.drop_before(start);
        }
        log.disk = Some(disk);
        Ok(log)
    }

    /// Replays one recovered batch into the in-memory state.
    fn restore(&mut self, batch: RecordBatch) {
        let header = *batch.header();
        let base_offset = header.base_offset;
        if base_offset < self.next_offset {
            tracing::warn!(
                base_offset,
                next = self.next_offset,
                "recovered batch overlaps; skipped"
            );
            return;
        }
        if self.batches.is_empty() {
            self.log_start_offset = base_offset;
        }
        if header.producer_id >= 0 {
            if header.is_control() {
                let marker = batch
                    .records()
                    .ok()
                    .and_then(|mut records| records.next())
                    .and_then(Result::ok)
                    .and_then(|record| TransactionMarker::from_record(&record).ok().flatten());
                if let Some(marker) = marker {
                    self.end_txn(header.producer_id, marker.commit, base_offset);
                }
                self.producers
                    .bump_epoch_floor(header.producer_id, header.producer_epoch);
            } else {
                if header.is_transactional() {
                    self.open_by_producer
                        .entry(header.producer_id)
                        .or_insert_with(|| {
                            self.open_txns.insert(base_offset, header.producer_id);
                            base_offset
                        });
                }
                self.producers.record(
                    header.producer_id,
                    header.producer_epoch,
                    header.base_sequence,
                    i64::from(header.record_count),
                    base_offset,
                );
            }
        }
        let bytes = batch.into_bytes();
        self.size_bytes += bytes.len();
        self.next_offset = header.last_offset() + 1;
        self.batches.push_back(StoredBatch {
            base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            bytes,
        });
    }

    fn end_txn(&mut self, producer_id: i64, commit: bool, marker_offset: i64) {
        if let Some(first) = self.open_by_producer.remove(&producer_id) {
            self.open_txns.remove(&first);
            if !commit {
                self.aborted.push(AbortedTxn {
                    producer_id,
                    first_offset: first,
                    last_offset: marker_offset,
                });
            }
        }
    }

    /// Ends with an ABORT marker every transaction a recovered log left
    /// open that the recovered transaction coordinator will not end itself
    /// (`coordinator_will_end`), returning how many. Without the
    /// coordinator's state (a data directory written before it was kept)
    /// nothing else would ever end them, and the last stable offset would
    /// stay behind them for good: read_committed consumers would stall.
    pub(crate) fn abort_orphaned_transactions(
        &mut self,
        timestamp: i64,
        coordinator_will_end: impl Fn(i64) -> bool,
    ) -> usize {
        let orphans: Vec<(i64, i16)> = self
            .open_by_producer
            .keys()
            .filter(|&&id| !coordinator_will_end(id))
            .map(|&id| (id, self.producers.epoch(id).unwrap_or(0)))
            .collect();
        let mut aborted = 0;
        for (producer_id, epoch) in orphans {
            match self.write_marker(producer_id, epoch, false, 0, timestamp) {
                Ok(_) => aborted += 1,
                Err(e) => {
                    tracing::error!(
                        producer_id,
                        error = e.message,
                        "could not abort an orphaned transaction"
                    );
                }
            }
        }
        aborted
    }

    /// Removes the log's files, in disk mode (topic deletion).
    pub(crate) fn delete_files(&mut self) {
        if let Some(disk) = self.disk.take()
            && let Err(e) = disk.delete_all()
        {
            tracing::warn!(error = %e, "could not delete a partition's files");
        }
    }

    /// The offset of the next record written: the high watermark, since the
    /// leader is the only replica.
    pub(crate) fn high_watermark(&self) -> i64 {
        self.next_offset
    }

    /// The earliest offset still stored.
    pub(crate) fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The first offset of the oldest open transaction, or the high
    /// watermark; never below the log start offset (DeleteRecords may remove
    /// the start of an open transaction, and Kafka then bounds the last
    /// stable offset by the log start, not by data that is gone).
    pub(crate) fn last_stable_offset(&self) -> i64 {
        self.open_txns
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_offset)
            .max(self.log_start_offset)
    }

    /// DeleteRecords: makes `offset` (-1: the high watermark) the log start
    /// offset, dropping the batches wholly before it. Returns the new log
    /// start offset (the response's low watermark). An offset at or below
    /// the current start changes nothing; one beyond the high watermark is
    /// OFFSET_OUT_OF_RANGE, as Kafka's `Partition.deleteRecordsOnLeader`.
    pub(crate) fn delete_records(&mut self, offset: i64) -> Result<i64, ErrorCode> {
        let target = if offset == -1 {
            self.next_offset
        } else {
            offset
        };
        if target < 0 || target > self.next_offset {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        if target > self.log_start_offset {
            self.drop_before(target);
            self.persist_start();
        }
        Ok(self.log_start_offset)
    }

    /// Sets the log start offset to `start` and forgets what lies wholly
    /// before it: batches, their bytes, aborted ranges.
    fn drop_before(&mut self, start: i64) {
        while let Some(oldest) = self.batches.front() {
            if oldest.last_offset >= start {
                break;
            }
            self.size_bytes -= oldest.bytes.len();
            self.batches.pop_front();
        }
        self.log_start_offset = start;
        self.aborted.retain(|t| t.last_offset >= start);
    }

    /// In disk mode, deletes segments wholly before the log start offset
    /// and checkpoints it, so a restart starts the log there too.
    fn persist_start(&mut self) {
        let start = self.log_start_offset;
        if let Some(disk) = self.disk.as_mut() {
            if let Err(e) = disk.save_log_start(start) {
                tracing::error!(error = %e, "could not checkpoint the log start offset");
            }
            if let Err(e) = disk.delete_before(start) {
                tracing::warn!(error = %e, "could not delete old segments");
            }
        }
    }

    /// Bytes stored.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn size_bytes(&self) -> usize {
        self.size_bytes
    }

    /// Sets the epoch written into appended batches (on leader change).
    pub(crate) fn set_leader_epoch(&mut self, epoch: i32) {
        self.leader_epoch = epoch;
    }

    /// Appends a validated producer batch, applying idempotence and
    /// transaction bookkeeping. A retried batch that is already in the log
    /// is answered with its original offset and not stored again.
    pub(crate) fn append(&mut self, batch: ValidBatch) -> Result<Appended, AppendError> {
        if batch.producer_id >= 0 {
            match self.producers.check(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                batch.record_count,
            )? {
                ProducerCheck::Duplicate { base_offset } => {
                    return Ok(Appended {
                        base_offset,
                        log_start_offset: self.log_start_offset,
                    });
                }
                ProducerCheck::Fresh => {}
            }
        }
        let base_offset = self.next_offset;
        self.push(batch.bytes, batch.record_count, batch.max_timestamp)?;
        if batch.producer_id >= 0 {
            self.producers.record(
                batch.producer_id,
                batch.producer_epoch,
                batch.base_sequence,
                batch.record_count,
                base_offset,
            );
        }
        if batch.transactional && batch.producer_id >= 0 {
            self.open_by_producer
                .entry(batch.producer_id)
                .or_insert_with(|| {
                    self.open_txns.insert(base_offset, batch.producer_id);
                    base_offset
                });
        }
        Ok(Appended {
            base_offset,
            log_start_offset: self.log_start_offset,
        })
    }

    /// Stores a batch at the end of the log (and on disk, before anything
    /// else sees it), returning its base offset.
    fn push(
        &mut self,
        mut bytes: BytesMut,
        record_count: i64,
        max_timestamp: i64,
    ) -> Result<i64, AppendError> {
        let base_offset = self.next_offset;
        // Both fields lie outside the CRC; the batch was checked to be v2.
        set_base_offset(&mut bytes, base_offset)
            .and_then(|()| set_partition_leader_epoch(&mut bytes, self.leader_epoch))
            .map_err(|e| AppendError::new(ErrorCode::CorruptMessage, e.to_string()))?;
        let bytes = bytes.freeze();
        if let Some(disk) = self.disk.as_mut() {
            disk.append(base_offset, &bytes).map_err(|e| {
                tracing::error!(error = %e, "log write failed");
                AppendError::new(ErrorCode::KafkaStorageError, e.to_string())
            })?;
        }
        self.size_bytes += bytes.len();
        self.next_offset = base_offset + record_count;
        self.batches.push_back(StoredBatch {
            base_offset,
            last_offset: self.next_offset - 1,
            max_timestamp,
            bytes,
        });
        Ok(base_offset)
    }

    /// Ends `producer_id`'s transaction here with a COMMIT or ABORT marker.
    /// Returns the marker's offset.
    pub(crate) fn write_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        timestamp: i64,
    ) -> Result<i64, AppendError> {
        let marker = TransactionMarker {
            commit,
            coordinator_epoch,
        };
        let wire = marker
            .encode_batch(producer_id, producer_epoch, timestamp)
            .map_err(|e| AppendError::new(ErrorCode::UnknownServerError, e.to_string()))?;
        let offset = self.push(BytesMut::from(&wire[..]), 1, timestamp)?;
        self.end_txn(producer_id, commit, offset);
        self.producers.bump_epoch_floor(producer_id, producer_epoch);
        Ok(offset)
    }

    /// Reads whole batches from `offset`, up to `max_bytes` (but at least
    /// one batch when `min_one`), stopping before `upper` (the high watermark
    /// or, for `read_committed`, the last stable offset).
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        upper: i64,
    ) -> Result<ReadResult, ErrorCode> {
        if offset < self.log_start_offset || offset > self.next_offset {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        let start = self.batches.partition_point(|b| b.last_offset < offset);
        let mut result = ReadResult::default();
        for batch in self.batches.range(start..) {
            if batch.base_offset >= upper {
                break;
            }
            let len = batch.bytes.len();
            if result.bytes + len > max_bytes && !(min_one && result.chunks.is_empty()) {
                break;
            }
            result.bytes += len;
            result.chunks.push(batch.bytes.clone());
        }
        if let Some(last) = self
            .batches
            .get(start + result.chunks.len().saturating_sub(1))
            && !result.chunks.is_empty()
        {
            let end = last.last_offset;
            result.aborted = self
                .aborted
                .iter()
                .filter(|t| t.last_offset >= offset && t.first_offset <= end)
                .copied()
                .collect();
        }
        Ok(result)
    }

    /// ListOffsets: -2 earliest, -1 latest (bounded by `upper`), -3 the
    /// record with the largest timestamp, else the first record whose
    /// timestamp is at or after `timestamp`. `None` when no record qualifies.
    pub(crate) fn offset_for(&self, timestamp: i64, upper: i64) -> Option<(i64, i64)> {
        match timestamp {
            -2 => Some((-1, self.log_start_offset)),
            -1 => Some((-1, upper)),
            -3 => {
                let mut best: Option<(i64, i64)> = None;
                for batch in &self.batches {
                    if best.is_none_or(|(ts, _)| batch.max_timestamp > ts) {
                        best = self.find_in_batch(batch, |ts| ts == batch.max_timestamp);
                    }
                }
                best
            }
            target => self
                .batches
                .iter()
                .filter(|b| b.max_timestamp >= target)
                .find_map(|b| self.find_in_batch(b, |ts| ts >= target)),
        }
    }

    fn find_in_batch(
        &self,
        batch: &StoredBatch,
        wanted: impl Fn(i64) -> bool,
    ) -> Option<(i64, i64)> {
        let parsed = RecordBatch::from_bytes(batch.bytes.clone()).ok()?;
        if parsed.is_control() {
            return None;
        }
        let log_append = parsed.header().timestamp_type() == TimestampType::LogAppendTime;
        parsed
            .records()
            .ok()?
            .filter_map(Result::ok)
            .map(|r| (r.timestamp, r.offset))
            .find(|&(ts, offset)| offset >= self.log_start_offset && (log_append || wanted(ts)))
    }

    /// Drops whole batches older than `retention_ms` (by max timestamp) or
    /// beyond `retention_bytes`, never the active end of the log. Returns
    /// how many were dropped.
    pub(crate) fn apply_retention(
        &mut self,
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    ) -> usize {
        let mut dropped = 0;
        while self.batches.len() > 1 {
            let Some(oldest) = self.batches.front() else {
                break;
            };
            let too_old = retention_ms >= 0 && now_ms - oldest.max_timestamp > retention_ms;
            let too_big = retention_bytes >= 0 && self.size_bytes as i64 > retention_bytes;
            // Data of open transactions stays until they end.
            let open = self
                .open_txns
                .keys()
                .next()
                .is_some_and(|&first| first <= oldest.last_offset);
            if !(too_old || too_big) || open {
                break;
            }
            let next_start = oldest.last_offset + 1;
            self.drop_before(next_start);
            dropped += 1;
        }
        if dropped > 0 {
            self.persist_start();
        }
        dropped
    }
}

#[cfg(test)]
mod tests;
