//! The record accumulator: per-partition batches written straight into wire
//! bytes, closed at `batch.size` or after `linger.ms`, with every queued
//! byte counted against `buffer.memory`.
//!
//! `send` appends under a short lock and never waits on the network. The
//! sender task asks which partitions are ready, drains their oldest batch,
//! and puts a batch back at the front of its queue when it must be retried,
//! so a partition's batches leave in order.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::{BatchBuilder, Compression, Header};
use tokio::sync::Notify;

use super::hash::FxHashMap;
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp: the broker's append time on a `LogAppendTime` topic
    /// (as the Java client reports it), else the create time as sent.
    pub timestamp: i64,
}

/// The outcome of one batch, shared by the delivery futures of all its
/// records: set once, to the base offset or the error, when the batch is
/// acknowledged or fails. One allocation per batch instead of a channel per
/// record; each future adds its record's offset delta to the base offset.
#[derive(Debug, Default)]
struct BatchOutcome {
    /// The base offset and the broker's log append time (-1 unless the
    /// topic uses LogAppendTime), or the error.
    result: OnceLock<Result<(i64, i64)>>,
    /// Tasks waiting for the result. Usually one (an application awaiting
    /// its records in order), so a `Vec` scanned for the same waker.
    wakers: Mutex<Vec<Waker>>,
}

impl BatchOutcome {
    fn wakers(&self) -> MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the result, unless one is set already, and wakes the waiters.
    fn set(&self, result: Result<(i64, i64)>) {
        if self.result.set(result).is_ok() {
            let wakers = std::mem::take(&mut *self.wakers());
            for waker in wakers {
                waker.wake();
            }
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<&Result<(i64, i64)>> {
        if let Some(result) = self.result.get() {
            return Poll::Ready(result);
        }
        let mut wakers = self.wakers();
        // `set` stores the result before it takes the wakers under this
        // lock: either it is visible now, or `set` will see this waker.
        if let Some(result) = self.result.get() {
            return Poll::Ready(result);
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The pending delivery of one record: resolves to where it landed, or to
/// the error that ended its delivery.
#[derive(Debug)]
pub struct DeliveryFuture {
    outcome: Arc<BatchOutcome>,
    partition: i32,
    /// The record's position in its batch (its offset delta).
    index: i32,
    timestamp: i64,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.outcome.poll(cx).map(|result| match result {
            Ok((base_offset, log_append_time)) => Ok(RecordMetadata {
                partition: this.partition,
                // acks=0: the offset is unknown (-1), as in the Java client.
                offset: if *base_offset < 0 {
                    -1
                } else {
                    base_offset + i64::from(this.index)
                },
                timestamp: if *log_append_time >= 0 {
                    *log_append_time
                } else {
                    this.timestamp
                },
            }),
            Err(e) => Err(e.clone()),
        })
    }
}

/// The settings the accumulator uses.
#[derive(Debug, Clone)]
pub struct AccumulatorConfig {
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `buffer.memory`.
    pub buffer_memory: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `compression.level` for the codec.
    pub compression_level: Option<i32>,
    /// Batches carry the transactional flag (`transactional.id` is set).
    pub transactional: bool,
}

/// A batch being filled or in flight.
#[derive(Debug)]
pub struct ProducerBatch {
    /// Where it goes.
    pub tp: TopicPartition,
    builder: Option<BatchBuilder>,
    /// The finished wire bytes, once drained (kept for retries).
    pub wire: Option<Bytes>,
    /// Completes the records' delivery futures; a batch dropped without an
    /// outcome completes them with [`Error::Closed`].
    outcome: Arc<BatchOutcome>,
    /// When the first record was appended.
    pub created: Instant,
    /// Bytes reserved from `buffer.memory`.
    reserved: usize,
    /// Send attempts so far.
    pub attempts: u32,
    /// Not to be sent again before this instant (retry backoff).
    pub retry_after: Option<Instant>,
    /// The idempotent base sequence, once assigned.
    pub base_sequence: Option<i32>,
    /// The producer id and epoch the batch was signed with.
    pub producer: Option<(i64, i16)>,
    /// A send attempt ended without telling whether the broker appended the
    /// batch (lost response, closed connection, request timeout). Until a
    /// later attempt under the same epoch settles it, re-signing the batch
    /// under a new epoch could write it twice.
    pub outcome_unknown: bool,
    records: usize,
}

impl ProducerBatch {
    /// Signed, sent, and not known to be appended or not.
    fn is_unresolved(&self) -> bool {
        self.outcome_unknown && self.producer.is_some()
    }

    /// Records in the batch.
    pub fn record_count(&self) -> usize {
        self.records
    }

    /// Closes the batch: writes the header with the producer's id, epoch
    /// and base sequence (-1s when not idempotent), compresses and checksums.
    /// Later calls return the same bytes.
    pub fn finish(&mut self, producer: Option<(i64, i16, i32)>) -> Result<Bytes> {
        if let Some(wire) = &self.wire {
            return Ok(wire.clone());
        }
        let mut builder = self
            .builder
            .take()
            .ok_or_else(|| Error::Protocol("batch finished twice".into()))?;
        if let Some((id, epoch, sequence)) = producer {
            builder.set_producer(id, epoch, sequence);
            self.base_sequence = Some(sequence);
            self.producer = Some((id, epoch));
        }
        let wire = builder.finish().map_err(|e| {
            Error::Protocol(format!(
                "encoding a batch for {}-{}: {e}",
                self.tp.topic, self.tp.partition
            ))
        })?;
        self.wire = Some(wire.clone());
        Ok(wire)
    }

    /// Signs an already finished batch again with a new producer id, epoch
    /// and base sequence (after an epoch bump); the records are unchanged.
    pub fn resign(&mut self, producer_id: i64, epoch: i16, sequence: i32) -> Result<Bytes> {
        let wire = self
            .wire
            .as_ref()
            .ok_or_else(|| Error::Protocol("re-signing a batch that was never finished".into()))?;
        let mut bytes = wire.to_vec();
        kafka_protocol::records::set_producer_state(&mut bytes, producer_id, epoch, sequence)
            .map_err(|e| Error::Protocol(format!("re-signing a batch: {e}")))?;
        let wire = Bytes::from(bytes);
        self.wire = Some(wire.clone());
        self.base_sequence = Some(sequence);
        self.producer = Some((producer_id, epoch));
        Ok(wire)
    }

    /// Completes every record: offsets are the base offset plus each
    /// record's position (-1 for all when the base offset is unknown);
    /// timestamps are `log_append_time` when the broker set one (>= 0).
    pub fn complete(self, base_offset: i64, log_append_time: i64) {
        self.outcome.set(Ok((base_offset, log_append_time)));
    }

    /// Fails every record with `error`.
    pub fn fail(self, error: Error) {
        self.outcome.set(Err(error));
    }

    fn is_full(&self, batch_size: usize) -> bool {
        self.builder
            .as_ref()
            .is_none_or(|b| b.estimated_size() >= batch_size)
    }
}

impl Drop for ProducerBatch {
    fn drop(&mut self) {
        // A no-op after `complete` or `fail`.
        self.outcome.set(Err(Error::Closed));
    }
}

#[derive(Debug, Default)]
struct Queues {
    batches: FxHashMap<TopicPartition, VecDeque<ProducerBatch>>,
    used_memory: usize,
    /// A flush is pending: every batch is ready regardless of linger.
    flushing: usize,
    closed: bool,
}

/// The accumulator, shared by `send` and the sender task.
#[derive(Debug)]
pub struct Accumulator {
    config: AccumulatorConfig,
    queues: Mutex<Queues>,
    /// Woken when memory is released.
    memory_freed: Notify,
    /// Woken when a batch may have become ready.
    pub data_ready: Notify,
}

/// What an append did, for the sticky partitioner and the sender.
#[derive(Debug)]
pub struct Appended {
    /// The record's delivery.
    pub delivery: DeliveryFuture,
    /// A new batch was started for the partition.
    pub new_batch: bool,
    /// The partition's last batch is full: the sender may send it now.
    pub batch_full: bool,
    /// The record did not fit the partition's open batch, so that batch
    /// was closed and a new one started (the sticky partitioner's cue).
    pub rolled_over: bool,
}

/// What [`Accumulator::try_append`] did.
#[derive(Debug)]
pub enum TryAppend {
    /// The record was appended.
    Appended(Appended),
    /// The record does not fit the partition's open batch and was not
    /// appended, as asked.
    NeedsNewBatch,
    /// `buffer.memory` has no room for the record now.
    NoMemory,
}

/// The encoded size of a record, as counted against `buffer.memory` and
/// `max.request.size`: its fields plus the varint framing and batch overhead.
pub fn record_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
    let fields = key.map_or(0, <[u8]>::len)
        + value.map_or(0, <[u8]>::len)
        + headers
            .iter()
            .map(|h| h.key().len() + h.value().map_or(0, |v| v.len()) + 10)
            .sum::<usize>();
    fields + 21 + kafka_protocol::records::RECORD_BATCH_OVERHEAD
}

impl Accumulator {
    /// An empty accumulator.
    pub fn new(config: AccumulatorConfig) -> Self {
        Self {
            config,
            queues: Mutex::new(Queues::default()),
            memory_freed: Notify::new(),
            data_ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `size` bytes of `buffer.memory`, waiting up to `max_block`
    /// for batches in flight to release some.
    pub async fn reserve(&self, size: usize, max_block: Duration) -> Result<()> {
        if size > self.config.buffer_memory {
            return Err(Error::RecordTooLarge {
                size,
                limit_name: "buffer.memory",
                limit: self.config.buffer_memory,
            });
        }
        let deadline = tokio::time::Instant::now() + max_block;
        loop {
            let freed = self.memory_freed.notified();
            {
                let mut queues = self.lock();
                if queues.closed {
                    return Err(Error::Closed);
                }
                if queues.used_memory + size <= self.config.buffer_memory {
                    queues.used_memory += size;
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Error::Timeout(format!(
                    "buffer.memory ({} bytes) stayed full for max.block.ms ({max_block:?})",
                    self.config.buffer_memory
                )));
            }
        }
    }

    /// Returns memory reserved for a record that was not appended.
    pub fn unreserve(&self, size: usize) {
        let mut queues = self.lock();
        queues.used_memory = queues.used_memory.saturating_sub(size);
        drop(queues);
        self.memory_freed.notify_waiters();
    }

    /// Appends a record whose size was reserved, to the partition's last
    /// batch or a new one.
    pub fn append(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        reserved: usize,
    ) -> Result<Appended> {
        match self.try_append(tp, timestamp, key, value, headers, reserved, true, false)? {
            TryAppend::Appended(appended) => Ok(appended),
            _ => Err(Error::Protocol(
                "append declined without being asked to".into(),
            )),
        }
    }

    /// Appends a record of `size` bytes (see [`record_size`]) to the
    /// partition's last batch or a new one, under one lock.
    ///
    /// Unless `reserved` (the caller already holds `size` bytes of
    /// `buffer.memory` from [`reserve`](Self::reserve)), the memory is
    /// reserved here, and [`TryAppend::NoMemory`] says there is not enough
    /// free now: the caller waits in `reserve`, then calls again with
    /// `reserved`. With `abort_for_new_batch`, a record that does not fit
    /// the partition's open batch is not appended
    /// ([`TryAppend::NeedsNewBatch`]): a sticky partitioner then moves on
    /// and the record goes to the new partition instead, as in the Java
    /// client. Nothing is reserved by a call that does not append.
    #[allow(clippy::too_many_arguments)]
    pub fn try_append(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        size: usize,
        reserved: bool,
        abort_for_new_batch: bool,
    ) -> Result<TryAppend> {
        let mut guard = self.lock();
        let queues = &mut *guard;
        if queues.closed {
            return Err(Error::Closed);
        }
        if !reserved && queues.used_memory + size > self.config.buffer_memory {
            return Ok(TryAppend::NoMemory);
        }
        // Looked up by reference: the key is cloned once per queue, not
        // once per record.
        if !queues.batches.contains_key(tp) {
            queues.batches.insert(tp.clone(), VecDeque::new());
        }
        let Some(queue) = queues.batches.get_mut(tp) else {
            return Err(Error::Protocol("batch queue vanished".into()));
        };
        let mut had_open = false;
        let mut appended_to_open = false;
        if let Some(batch) = queue.back_mut()
            && let Some(builder) = batch.builder.as_mut()
        {
            had_open = true;
            // One size computation decides the fit and writes the record.
            appended_to_open = builder
                .try_append(timestamp, key, value, headers)
                .map_err(|e| Error::Protocol(format!("encoding a record: {e}")))?;
        }
        let new_batch = !appended_to_open;
        if new_batch {
            if abort_for_new_batch && had_open {
                return Ok(TryAppend::NeedsNewBatch);
            }
            let mut builder = BatchBuilder::new(self.config.batch_size);
            builder
                .set_compression(self.config.compression)
                .set_compression_level(self.config.compression_level)
                .set_transactional(self.config.transactional);
            builder
                .append(timestamp, key, value, headers)
                .map_err(|e| Error::Protocol(format!("encoding a record: {e}")))?;
            queue.push_back(ProducerBatch {
                tp: tp.clone(),
                builder: Some(builder),
                wire: None,
                outcome: Arc::default(),
                created: Instant::now(),
                reserved: 0,
                attempts: 0,
                retry_after: None,
                base_sequence: None,
                producer: None,
                outcome_unknown: false,
                records: 0,
            });
        }
        let Some(batch) = queue.back_mut() else {
            return Err(Error::Protocol("batch queue is empty after a push".into()));
        };
        let index = batch.records;
        batch.reserved += size;
        batch.records += 1;
        let batch_full = batch.is_full(self.config.batch_size);
        let delivery = DeliveryFuture {
            outcome: batch.outcome.clone(),
            partition: tp.partition,
            index: i32::try_from(index).unwrap_or(i32::MAX),
            timestamp,
        };
        if !reserved {
            queues.used_memory += size;
        }
        drop(guard);
        if batch_full || new_batch {
            self.data_ready.notify_one();
        }
        Ok(TryAppend::Appended(Appended {
            delivery,
            new_batch,
            batch_full,
            rolled_over: new_batch && had_open,
        }))
    }

    /// Partitions whose first batch may be sent now (full, lingered long
    /// enough, flushing or closing, and not in retry backoff), and when the
    /// next one becomes ready.
    pub fn ready(&self, now: Instant) -> (Vec<TopicPartition>, Option<Instant>) {
        let queues = self.lock();
        let hurry = queues.flushing > 0 || queues.closed;
        let mut ready = Vec::new();
        let mut next: Option<Instant> = None;
        for (tp, queue) in &queues.batches {
            let Some(first) = queue.front() else { continue };
            let at = match first.retry_after {
                Some(at) => at,
                None if hurry || queue.len() > 1 || first.is_full(self.config.batch_size) => now,
                None => first.created + self.config.linger,
            };
            if at <= now {
                ready.push(tp.clone());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        ready.sort();
        (ready, next)
    }

    /// Takes the first batch of a partition.
    pub fn drain(&self, tp: &TopicPartition) -> Option<ProducerBatch> {
        let mut queues = self.lock();
        let queue = queues.batches.get_mut(tp)?;
        let batch = queue.pop_front();
        if queue.is_empty() {
            queues.batches.remove(tp);
        }
        batch
    }

    /// Puts a batch back near the front of its partition's queue for a
    /// retry after `backoff`: before every batch not yet sent, and among
    /// other retried batches in sequence order, so the partition's order
    /// holds whatever order the responses came back in.
    pub fn reenqueue(&self, mut batch: ProducerBatch, backoff: Duration) {
        batch.retry_after = Some(Instant::now() + backoff);
        let mut queues = self.lock();
        let queue = queues.batches.entry(batch.tp.clone()).or_default();
        let position = match batch.base_sequence {
            Some(sequence) => queue
                .iter()
                .position(|b| b.base_sequence.is_none_or(|s| s > sequence))
                .unwrap_or(queue.len()),
            None => 0,
        };
        queue.insert(position, batch);
        drop(queues);
        self.data_ready.notify_one();
    }

    /// Whether any queued batch awaits a retry that settles whether an
    /// earlier attempt was appended (see [`ProducerBatch::outcome_unknown`]).
    pub fn has_unresolved(&self) -> bool {
        self.lock()
            .batches
            .values()
            .any(|queue| queue.iter().any(ProducerBatch::is_unresolved))
    }

    /// Whether `tp`'s queue holds such a batch.
    pub fn is_unresolved(&self, tp: &TopicPartition) -> bool {
        self.lock()
            .batches
            .get(tp)
            .is_some_and(|queue| queue.iter().any(ProducerBatch::is_unresolved))
    }

    /// Whether `close` was called and nothing is left to send.
    pub fn is_closed_and_empty(&self) -> bool {
        let queues = self.lock();
        queues.closed && queues.batches.is_empty()
    }

    /// Releases a finished batch's memory.
    pub fn release(&self, batch: &ProducerBatch) {
        self.unreserve(batch.reserved);
    }

    /// Removes and returns queued batches whose first record is older than
    /// `delivery_timeout`: their time is up and they are never sent again.
    pub fn expire(&self, now: Instant, delivery_timeout: Duration) -> Vec<ProducerBatch> {
        let mut queues = self.lock();
        let mut expired = Vec::new();
        for queue in queues.batches.values_mut() {
            // Only from the front, so what remains keeps its order.
            while queue
                .front()
                .is_some_and(|b| now.duration_since(b.created) >= delivery_timeout)
            {
                if let Some(batch) = queue.pop_front() {
                    expired.push(batch);
                }
            }
        }
        queues.batches.retain(|_, q| !q.is_empty());
        expired
    }

    /// Starts a flush: everything queued is ready at once until `end_flush`.
    pub fn begin_flush(&self) {
        self.lock().flushing += 1;
        self.data_ready.notify_one();
    }

    /// Ends a flush started by `begin_flush`.
    pub fn end_flush(&self) {
        let mut queues = self.lock();
        queues.flushing = queues.flushing.saturating_sub(1);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().batches.is_empty()
    }

    /// Bytes of `buffer.memory` in use.
    pub fn used_memory(&self) -> usize {
        self.lock().used_memory
    }

    /// Waits until no byte of `buffer.memory` is in use (everything queued
    /// was acknowledged or failed), or until `deadline`; whether it got
    /// there. Woken by each release rather than polling.
    pub async fn wait_empty(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let freed = self.memory_freed.notified();
            if self.used_memory() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.used_memory() == 0;
            }
        }
    }

    /// Refuses new records; queued ones are still sent.
    pub fn close(&self) {
        self.lock().closed = true;
        self.data_ready.notify_one();
        self.memory_freed.notify_waiters();
    }

    /// Fails and removes everything queued (not what is in flight).
    /// Returns whether any of it had been given idempotent sequence
    /// numbers, which then will never be acknowledged.
    pub fn abort_all(&self, error: &Error) -> bool {
        let batches: Vec<ProducerBatch> = {
            let mut queues = self.lock();
            queues.batches.drain().flat_map(|(_, q)| q).collect()
        };
        let mut sequenced = false;
        for batch in batches {
            sequenced |= batch.base_sequence.is_some();
            self.release(&batch);
            batch.fail(error.clone());
        }
        sequenced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accumulator(batch_size: usize, linger_ms: u64, memory: usize) -> Accumulator {
        Accumulator::new(AccumulatorConfig {
            batch_size,
            linger: Duration::from_millis(linger_ms),
            buffer_memory: memory,
            compression: Compression::None,
            compression_level: None,
            transactional: false,
        })
    }

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition {
            topic: "t".into(),
            partition,
        }
    }

    fn append(acc: &Accumulator, partition: i32, value: &[u8]) -> Appended {
        let size = record_size(None, Some(value), &[]);
        acc.lock().used_memory += size;
        acc.append(&tp(partition), 1, None, Some(value), &[], size)
            .unwrap()
    }

    #[test]
    fn records_share_a_batch_until_batch_size_then_a_new_one_starts() {
        let acc = accumulator(300, 1000, 1 << 20);
        let first = append(&acc, 0, &[1; 100]);
        assert!(first.new_batch && !first.batch_full);
        let second = append(&acc, 0, &[2; 100]);
        assert!(!second.new_batch);
        let third = append(&acc, 0, &[3; 100]);
        assert!(third.batch_full || third.new_batch);
        let (ready, _) = acc.ready(Instant::now());
        assert_eq!(ready, [tp(0)], "a full batch is ready before linger");
    }

    #[test]
    fn a_lone_batch_waits_for_linger_unless_flushing() {
        let acc = accumulator(1 << 20, 50, 1 << 20);
        append(&acc, 0, b"v");
        let now = Instant::now();
        let (ready, next) = acc.ready(now);
        assert!(ready.is_empty());
        assert!(next.is_some_and(|n| n > now));
        assert_eq!(acc.ready(now + Duration::from_millis(60)).0, [tp(0)]);
        acc.begin_flush();
        assert_eq!(acc.ready(now).0, [tp(0)]);
    }

    #[tokio::test]
    async fn draining_finishing_and_completing_assign_offsets_in_order() {
        let acc = accumulator(1 << 20, 0, 1 << 20);
        let a = append(&acc, 0, b"a");
        let b = append(&acc, 0, b"b");
        let mut batch = acc.drain(&tp(0)).unwrap();
        assert_eq!(batch.record_count(), 2);
        let wire = batch.finish(Some((7, 1, 40))).unwrap();
        assert_eq!(
            batch.finish(None).unwrap(),
            wire,
            "finished once, bytes kept"
        );
        let parsed = kafka_protocol::records::RecordBatch::from_bytes(wire).unwrap();
        assert_eq!(parsed.header().base_sequence, 40);
        acc.release(&batch);
        batch.complete(100, -1);
        assert_eq!(a.delivery.await.unwrap().offset, 100);
        assert_eq!(b.delivery.await.unwrap().offset, 101);
        assert_eq!(acc.used_memory(), 0);
    }

    #[tokio::test]
    async fn buffer_memory_blocks_then_times_out_and_frees_on_release() {
        let acc = accumulator(1 << 20, 0, 1000);
        acc.reserve(900, Duration::from_millis(10)).await.unwrap();
        let started = Instant::now();
        let blocked = acc.reserve(200, Duration::from_millis(50)).await;
        assert!(matches!(blocked, Err(Error::Timeout(_))), "{blocked:?}");
        assert!(started.elapsed() >= Duration::from_millis(45));
        assert!(matches!(
            acc.reserve(2000, Duration::ZERO).await,
            Err(Error::RecordTooLarge {
                limit_name: "buffer.memory",
                ..
            })
        ));
        let acc = std::sync::Arc::new(acc);
        let waiter = tokio::spawn({
            let acc = acc.clone();
            async move { acc.reserve(200, Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        acc.unreserve(900);
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn expired_batches_fail_and_retries_go_back_to_the_front() {
        let acc = accumulator(10, 0, 1 << 20);
        let old = append(&acc, 0, &[0; 20]);
        let young = append(&acc, 0, &[1; 20]);
        let first = acc.drain(&tp(0)).unwrap();
        acc.reenqueue(first, Duration::ZERO);
        let again = acc.drain(&tp(0)).unwrap();
        assert_eq!(again.attempts, 0);
        assert_eq!(again.record_count(), 1);
        acc.reenqueue(again, Duration::from_secs(60));
        assert!(acc.ready(Instant::now()).0.is_empty(), "in backoff");
        let expired = acc.expire(
            Instant::now() + Duration::from_secs(1),
            Duration::from_millis(500),
        );
        assert_eq!(expired.len(), 2);
        for batch in expired {
            batch.fail(Error::Timeout("delivery.timeout.ms".into()));
        }
        assert!(matches!(old.delivery.await, Err(Error::Timeout(_))));
        assert!(matches!(young.delivery.await, Err(Error::Timeout(_))));
        assert!(acc.is_empty());
    }
}
