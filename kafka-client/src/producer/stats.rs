//! Counters the application can read: what the producer sent, retried and
//! failed, and what it holds right now.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals, updated by the sender without locks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    /// Sum of the time batches spent queued before their first send, in µs.
    pub queue_time_us: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A snapshot of the producer's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerStats {
    /// Records acknowledged by brokers.
    pub records_sent: u64,
    /// Batch bytes (as sent, compressed) acknowledged.
    pub bytes_sent: u64,
    /// Batches acknowledged.
    pub batches_sent: u64,
    /// ProduceRequests sent.
    pub requests_sent: u64,
    /// Batches sent again after a retriable error.
    pub retries: u64,
    /// Batches that failed for good (their records' futures got the error).
    pub errors: u64,
    /// ProduceRequests awaiting a response now.
    pub in_flight_requests: u64,
    /// Bytes of `buffer.memory` free now.
    pub buffer_available: u64,
    /// Mean time a batch waited between its first record and its first send.
    pub average_queue_time: std::time::Duration,
}

impl ProducerStats {
    /// Average records per acknowledged batch.
    pub fn average_batch_records(&self) -> f64 {
        if self.batches_sent == 0 {
            0.0
        } else {
            self.records_sent as f64 / self.batches_sent as f64
        }
    }

    pub(crate) fn from_counters(c: &Counters, buffer_available: u64) -> Self {
        let batches = c.batches_sent.load(Ordering::Relaxed);
        let queue_us = c.queue_time_us.load(Ordering::Relaxed);
        Self {
            records_sent: c.records_sent.load(Ordering::Relaxed),
            bytes_sent: c.bytes_sent.load(Ordering::Relaxed),
            batches_sent: batches,
            requests_sent: c.requests_sent.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            in_flight_requests: c.in_flight.load(Ordering::Relaxed),
            buffer_available,
            average_queue_time: std::time::Duration::from_micros(
                queue_us.checked_div(batches).unwrap_or(0),
            ),
        }
    }
}
