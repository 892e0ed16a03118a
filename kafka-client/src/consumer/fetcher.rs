//! The fetcher's buffer: fetched data kept as undecoded batches, decoded a
//! record at a time when handed out, and the fetches in flight.
//!
//! A fetch response's records for one partition become a [`Chunk`]: a
//! zero-copy slice of the response frame, framed into batches and decoded
//! (CRC checked with `check.crcs`, decompressed one batch at a time) only
//! as records are handed out. Each chunk keeps its next record decoded
//! ("peeked"), so that `position()` and "is a record ready" are answered
//! exactly as when every record was decoded up front: the offset of the
//! next record `poll` will hand out, after any control batches and aborted
//! transactions in between.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::records::{Batches, DecodeOptions, Records, TimestampType};

use super::ConsumerRecord;
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// One partition's records from one fetch response, not yet handed out.
#[derive(Debug)]
pub(super) struct Chunk {
    tp: TopicPartition,
    /// Batches not framed yet: a slice of the response.
    batches: Batches,
    /// The batch being decoded.
    current: Option<Current>,
    /// The next record to hand out; a chunk without one is dropped.
    next: Option<ConsumerRecord>,
    /// The offset after the last record decoded (or batch skipped): where
    /// fetching resumes if decoding fails.
    decoded_to: i64,
    /// The offset after the chunk's last complete batch: where the next
    /// fetch of the partition starts.
    end: i64,
    /// read_committed: aborted transactions of the response, by first
    /// offset, not yet met; and producers whose aborted data is being
    /// skipped.
    aborted: Vec<(i64, i64)>,
    skipping: Vec<i64>,
}

#[derive(Debug)]
struct Current {
    records: Records,
    next_offset: i64,
    leader_epoch: i32,
    timestamp_type: TimestampType,
    /// Its wire size, counted as buffered until it is done.
    raw_len: usize,
}

impl Chunk {
    /// The records of `tp` fetched from `start` on: `Ok(None)` when none
    /// of them is for the application (all before `start`, control
    /// records or aborted), with the offset to fetch next. An error means
    /// the first batch is bad; fetching should stay at `start`.
    pub(super) fn new(
        tp: TopicPartition,
        records: Bytes,
        start: i64,
        mut aborted: Vec<(i64, i64)>,
        check_crcs: bool,
    ) -> Result<(Option<Chunk>, i64)> {
        // Framing reads only the headers: cheap, and it gives the next
        // fetch offset before anything is decoded. CRCs are checked when
        // each batch is decoded.
        let scan = DecodeOptions {
            verify_crc: false,
            ..DecodeOptions::default()
        };
        let mut end = start;
        for batch in Batches::with_options(records.clone(), scan) {
            match batch {
                Ok(batch) => end = end.max(batch.next_offset()),
                // The bad batch is met (and reported) when decoding.
                Err(_) => break,
            }
        }
        aborted.sort_by_key(|(_, first)| *first);
        let options = DecodeOptions {
            verify_crc: check_crcs,
            ..DecodeOptions::default()
        };
        let mut chunk = Chunk {
            tp,
            batches: Batches::with_options(records, options),
            current: None,
            next: None,
            decoded_to: start,
            end,
            aborted,
            skipping: Vec::new(),
        };
        chunk.next = chunk.decode_next()?;
        let end = chunk.end;
        Ok((chunk.next.is_some().then_some(chunk), end))
    }

    /// Undecoded bytes still held (the batch being decoded included).
    pub(super) fn bytes(&self) -> usize {
        self.batches.remaining().len() + self.current.as_ref().map_or(0, |c| c.raw_len)
    }

    fn fail(&self, e: impl std::fmt::Display) -> Error {
        Error::Protocol(format!("{}-{}: {e}", self.tp.topic, self.tp.partition))
    }

    /// Decodes up to the next record for the application, skipping what
    /// is before the fetch offset, control batches and aborted
    /// transactions (as the Java consumer does).
    fn decode_next(&mut self) -> Result<Option<ConsumerRecord>> {
        loop {
            if let Some(current) = &mut self.current {
                match current.records.next() {
                    Some(Ok(record)) => {
                        if record.offset < self.decoded_to {
                            continue;
                        }
                        self.decoded_to = record.offset + 1;
                        return Ok(Some(ConsumerRecord {
                            topic: self.tp.topic.clone(),
                            partition: self.tp.partition,
                            offset: record.offset,
                            timestamp: record.timestamp,
                            key: record.key,
                            value: record.value,
                            headers: record.headers,
                            leader_epoch: current.leader_epoch,
                            timestamp_type: current.timestamp_type,
                        }));
                    }
                    Some(Err(e)) => return Err(self.fail(e)),
                    None => {
                        self.decoded_to = self.decoded_to.max(current.next_offset);
                        self.current = None;
                    }
                }
            }
            let Some(batch) = self.batches.next() else {
                self.decoded_to = self.decoded_to.max(self.end);
                return Ok(None);
            };
            let batch = batch.map_err(|e| self.fail(e))?;
            let header = *batch.header();
            if batch.next_offset() <= self.decoded_to {
                continue;
            }
            if batch.is_transactional() && !batch.is_control() {
                // An aborted transaction's data starts at its first offset.
                if let Some(i) = self.aborted.iter().position(|(pid, first)| {
                    *pid == header.producer_id && header.base_offset >= *first
                }) {
                    self.aborted.remove(i);
                    self.skipping.push(header.producer_id);
                }
            }
            if batch.is_control() {
                self.skipping.retain(|p| *p != header.producer_id);
                self.decoded_to = batch.next_offset();
                continue;
            }
            if batch.is_transactional() && self.skipping.contains(&header.producer_id) {
                self.decoded_to = batch.next_offset();
                continue;
            }
            let records = batch.records().map_err(|e| self.fail(e))?;
            self.current = Some(Current {
                records,
                next_offset: batch.next_offset(),
                leader_epoch: header.partition_leader_epoch,
                timestamp_type: header.timestamp_type(),
                raw_len: batch.as_bytes().len(),
            });
        }
    }
}

/// A decoding failure met while handing out: the partition's buffered
/// data is dropped and fetching resumes at `resume`, so the next fetch
/// meets (and reports) the same bad batch, as Java's consumer keeps
/// failing at a corrupt record until the application seeks past it.
#[derive(Debug)]
pub(super) struct DecodeFailure {
    pub(super) tp: TopicPartition,
    pub(super) resume: i64,
    pub(super) error: Error,
}

/// Everything fetched and not handed out, chunk by chunk in the order the
/// fetches were answered (so per partition in offset order).
#[derive(Debug, Default)]
pub(super) struct Buffer {
    chunks: VecDeque<Chunk>,
}

impl Buffer {
    pub(super) fn push(&mut self, chunk: Chunk) {
        self.chunks.push_back(chunk);
    }

    /// The offset of the next record buffered for `tp`.
    pub(super) fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.chunks
            .iter()
            .find(|c| &c.tp == tp)
            .and_then(|c| c.next.as_ref())
            .map(|r| r.offset)
    }

    /// Whether a record of a partition not paused is buffered.
    pub(super) fn has_ready(&self, paused: &BTreeSet<TopicPartition>) -> bool {
        if paused.is_empty() {
            !self.chunks.is_empty()
        } else {
            self.chunks.iter().any(|c| !paused.contains(&c.tp))
        }
    }

    /// Drops what is buffered for partitions not kept.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&TopicPartition) -> bool) {
        self.chunks.retain(|c| keep(&c.tp));
    }

    /// Drops everything buffered for `tp`.
    pub(super) fn discard(&mut self, tp: &TopicPartition) {
        self.retain(|t| t != tp);
    }

    /// How many chunks are buffered.
    pub(super) fn len(&self) -> usize {
        self.chunks.len()
    }

    pub(super) fn clear(&mut self) {
        self.chunks.clear();
    }

    /// Undecoded bytes buffered, in all and for each partition.
    pub(super) fn bytes(&self) -> (usize, HashMap<&TopicPartition, usize>) {
        let mut per_partition: HashMap<&TopicPartition, usize> = HashMap::new();
        let mut total = 0;
        for c in &self.chunks {
            let bytes = c.bytes();
            total += bytes;
            *per_partition.entry(&c.tp).or_default() += bytes;
        }
        (total, per_partition)
    }

    /// Moves up to `max` records of partitions not paused into `out`, in
    /// order, decoding as it goes. A failure to decode ends it (the records
    /// before it are in `out`); the failed partition's chunks are dropped.
    pub(super) fn take(
        &mut self,
        max: usize,
        paused: &BTreeSet<TopicPartition>,
        out: &mut Vec<ConsumerRecord>,
    ) -> Option<DecodeFailure> {
        while out.len() < max {
            let found = if paused.is_empty() {
                (!self.chunks.is_empty()).then_some(0)
            } else {
                self.chunks.iter().position(|c| !paused.contains(&c.tp))
            };
            let i = found?;
            let chunk = &mut self.chunks[i];
            while out.len() < max {
                let Some(record) = chunk.next.take() else {
                    break;
                };
                out.push(record);
                match chunk.decode_next() {
                    Ok(next) => chunk.next = next,
                    Err(error) => {
                        let tp = chunk.tp.clone();
                        let resume = chunk.decoded_to;
                        self.discard(&tp);
                        return Some(DecodeFailure { tp, resume, error });
                    }
                }
            }
            if self.chunks[i].next.is_none() {
                self.chunks.remove(i);
            }
        }
        None
    }
}

/// What a fetch task answers: the response and how long it took.
pub(super) type FetchAnswer = Result<(FetchResponse, Duration)>;

/// A fetch request in flight to one broker.
#[derive(Debug)]
pub(super) struct InFlight {
    pub(super) task: tokio::task::JoinHandle<FetchAnswer>,
    /// The partitions asked for and their fetch offsets. A partition whose
    /// buffered data is dropped (seek, reset, revocation, reassignment) is
    /// taken out, and its part of the answer ignored.
    pub(super) sent: HashMap<TopicPartition, i64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // A fetch nobody will read (the consumer dropped or closed) stops
        // here rather than holding the connection's response.
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{BatchBuilder, Compression};

    fn tp() -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        }
    }

    /// `batches` lz4 batches of `per_batch` records each, offsets from 0.
    fn batches(batches: i64, per_batch: i64) -> Bytes {
        let mut out = Vec::new();
        for b in 0..batches {
            let mut builder = BatchBuilder::new(1 << 20);
            builder
                .set_compression(Compression::Lz4)
                .set_base_offset(b * per_batch);
            for i in 0..per_batch {
                let value = format!("value-{}", b * per_batch + i);
                builder
                    .append(0, None, Some(value.as_bytes()), &[])
                    .expect("append");
            }
            out.extend_from_slice(&builder.finish().expect("batch"));
        }
        Bytes::from(out)
    }

    fn offsets(records: &[ConsumerRecord]) -> Vec<i64> {
        records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn records_carry_their_batch_timestamp_type() {
        let mut data = Vec::new();
        for (base, kind) in [
            (0, TimestampType::CreateTime),
            (2, TimestampType::LogAppendTime),
        ] {
            let mut builder = BatchBuilder::new(1 << 20);
            builder.set_base_offset(base).set_timestamp_type(kind);
            builder.append(100, None, Some(b"a"), &[]).expect("append");
            builder.append(300, None, Some(b"b"), &[]).expect("append");
            data.extend_from_slice(&builder.finish().expect("batch"));
        }
        let (chunk, _) = Chunk::new(tp(), Bytes::from(data), 0, Vec::new(), true).expect("chunk");
        let mut buffer = Buffer::default();
        buffer.push(chunk.expect("records"));
        let mut out = Vec::new();
        assert!(buffer.take(10, &BTreeSet::new(), &mut out).is_none());
        let seen: Vec<(i64, TimestampType)> = out
            .iter()
            .map(|r| (r.timestamp, r.timestamp_type))
            .collect();
        // Log append time: the batch's max timestamp stands for every record.
        assert_eq!(
            seen,
            [
                (100, TimestampType::CreateTime),
                (300, TimestampType::CreateTime),
                (300, TimestampType::LogAppendTime),
                (300, TimestampType::LogAppendTime),
            ]
        );
    }

    #[test]
    fn compressed_batches_are_handed_out_max_records_at_a_time() {
        let data = batches(4, 25);
        let total = data.len();
        let (chunk, end) = Chunk::new(tp(), data, 0, Vec::new(), true).expect("chunk");
        assert_eq!(end, 100, "the next fetch starts after the last batch");
        let mut buffer = Buffer::default();
        buffer.push(chunk.expect("records"));
        assert_eq!(buffer.bytes().0, total);
        let none = BTreeSet::new();
        let mut seen = Vec::new();
        for poll in 0..15 {
            let mut out = Vec::new();
            assert!(buffer.take(7, &none, &mut out).is_none());
            let expected = if poll < 14 { 7 } else { 2 };
            assert_eq!(out.len(), expected, "poll {poll}");
            seen.extend(out);
            let next = seen.len() as i64;
            assert_eq!(buffer.position(&tp()), (next < 100).then_some(next));
            assert!(buffer.bytes().0 <= total);
        }
        assert_eq!(offsets(&seen), (0..100).collect::<Vec<_>>());
        assert_eq!(buffer.bytes().0, 0, "nothing held once handed out");
        assert!(!buffer.has_ready(&none));
    }

    #[test]
    fn records_before_the_fetch_offset_are_skipped() {
        let (chunk, end) = Chunk::new(tp(), batches(2, 10), 13, Vec::new(), true).expect("chunk");
        let mut buffer = Buffer::default();
        buffer.push(chunk.expect("records"));
        assert_eq!((buffer.position(&tp()), end), (Some(13), 20));
        let mut out = Vec::new();
        assert!(buffer.take(100, &BTreeSet::new(), &mut out).is_none());
        assert_eq!(offsets(&out), (13..20).collect::<Vec<_>>());
    }

    #[test]
    fn a_bad_crc_stops_at_its_batch_after_the_good_ones() {
        let good = batches(1, 10);
        let mut data = good.to_vec();
        let mut second = batches(2, 10).slice(good.len()..).to_vec();
        let last = second.len() - 1;
        second[last] ^= 0xff;
        data.extend_from_slice(&second);
        let (chunk, end) = Chunk::new(tp(), Bytes::from(data), 0, Vec::new(), true).expect("chunk");
        assert_eq!(end, 20);
        let mut buffer = Buffer::default();
        buffer.push(chunk.expect("records"));
        let mut out = Vec::new();
        let failure = buffer
            .take(100, &BTreeSet::new(), &mut out)
            .expect("the second batch's CRC fails");
        assert_eq!(offsets(&out), (0..10).collect::<Vec<_>>());
        assert_eq!(failure.resume, 10, "fetching resumes at the bad batch");
        assert!(
            failure.error.to_string().contains("t-0"),
            "{}",
            failure.error
        );
        assert!(!buffer.has_ready(&BTreeSet::new()));
    }

    #[test]
    fn paused_partitions_stay_buffered() {
        let other = TopicPartition {
            topic: "t".into(),
            partition: 1,
        };
        let mut buffer = Buffer::default();
        let (a, _) = Chunk::new(tp(), batches(1, 5), 0, Vec::new(), true).expect("chunk");
        let (b, _) = Chunk::new(other.clone(), batches(1, 5), 0, Vec::new(), true).expect("chunk");
        buffer.push(a.expect("records"));
        buffer.push(b.expect("records"));
        let paused = BTreeSet::from([tp()]);
        let mut out = Vec::new();
        assert!(buffer.take(100, &paused, &mut out).is_none());
        assert!(out.iter().all(|r| r.partition == 1) && out.len() == 5);
        assert!(!buffer.has_ready(&paused));
        assert_eq!(buffer.position(&tp()), Some(0));
        buffer.discard(&tp());
        assert_eq!(buffer.position(&tp()), None);
    }
}
