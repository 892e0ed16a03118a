//! The idempotent producer's identity and sequence numbers.
//!
//! The producer id and epoch come from InitProducerId, asked once before
//! the first batch is sent. Each partition's batches carry consecutive
//! sequence numbers (wrapping at i32::MAX as the broker expects), assigned
//! when a batch is first sent and kept across its retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::InitProducerIdRequest;

use crate::network::Network;
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// Producer id, epoch and per-partition sequences.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    transactional_id: Option<String>,
    producer: tokio::sync::Mutex<Option<(i64, i16)>>,
    sequences: Mutex<HashMap<TopicPartition, i32>>,
    /// Per partition, the sequence the broker expects next: everything
    /// before it was acknowledged.
    acked: Mutex<HashMap<TopicPartition, i32>>,
    /// A sequence gap (a failed or expired batch) or a broker that lost our
    /// state: the epoch must be bumped before anything else is sent.
    needs_bump: AtomicBool,
}

impl Idempotence {
    pub(crate) fn new(transactional_id: Option<String>) -> Self {
        Self {
            transactional_id,
            ..Self::default()
        }
    }

    /// The transactional id sent with produce requests, if any.
    pub(crate) fn transactional_id(&self) -> Option<String> {
        self.transactional_id.clone()
    }

    /// The producer id and epoch, asking a broker for them the first time.
    pub(crate) async fn producer(&self, network: &Network) -> Result<(i64, i16)> {
        let mut producer = self.producer.lock().await;
        if let Some(known) = *producer {
            return Ok(known);
        }
        if self.transactional_id.is_some() {
            // A transactional producer gets its id from init_transactions,
            // through its transaction coordinator.
            return Err(Error::InvalidState(
                "init_transactions has not completed".into(),
            ));
        }
        let connection = network.any().await?;
        let response = connection
            .send(&InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: -1,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            })
            .await?;
        let code =
            ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError);
        if !code.is_ok() {
            return Err(Error::kafka(code, "InitProducerId"));
        }
        let known = (response.producer_id, response.producer_epoch);
        tracing::debug!(
            producer_id = known.0,
            epoch = known.1,
            "idempotent producer id assigned"
        );
        *producer = Some(known);
        Ok(known)
    }

    /// Takes the producer id and epoch the transaction coordinator gave
    /// (InitProducerId), starting every partition's sequences again at 0.
    /// Call only with nothing in flight.
    pub(crate) async fn set_producer(&self, producer_id: i64, epoch: i16) {
        let mut producer = self.producer.lock().await;
        self.lock_sequences().clear();
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.needs_bump.store(false, Ordering::Release);
        *producer = Some((producer_id, epoch));
    }

    /// The producer id and epoch, if known.
    pub(crate) async fn current(&self) -> Option<(i64, i16)> {
        *self.producer.lock().await
    }

    /// Asks for an epoch bump (KIP-360) before the next send.
    pub(crate) fn request_bump(&self) {
        self.needs_bump.store(true, Ordering::Release);
    }

    /// Whether an epoch bump is pending.
    pub(crate) fn needs_bump(&self) -> bool {
        self.needs_bump.load(Ordering::Acquire)
    }

    /// Bumps the epoch by InitProducerId with the current id and epoch
    /// (KIP-360), and starts every partition's sequences again at 0.
    /// Call only with nothing in flight.
    pub(crate) async fn bump(&self, network: &Network) -> Result<(i64, i16)> {
        let mut producer = self.producer.lock().await;
        let (id, epoch) = producer.unwrap_or((-1, -1));
        let connection = network.any().await?;
        let response = connection
            .send(&InitProducerIdRequest {
                transactional_id: self.transactional_id.clone(),
                transaction_timeout_ms: -1,
                producer_id: id,
                producer_epoch: epoch,
                ..Default::default()
            })
            .await?;
        let code =
            ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError);
        if !code.is_ok() {
            return Err(Error::kafka(code, "InitProducerId (epoch bump)"));
        }
        let bumped = (response.producer_id, response.producer_epoch);
        self.lock_sequences().clear();
        self.acked.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.needs_bump.store(false, Ordering::Release);
        *producer = Some(bumped);
        tracing::info!(
            producer_id = bumped.0,
            epoch = bumped.1,
            "idempotent producer epoch bumped"
        );
        Ok(bumped)
    }

    /// Records that a batch was acknowledged. Only moves forward: the
    /// answer to a retried batch can come after a later batch's (a
    /// duplicate of an attempt whose response was lost), and must not make
    /// the later one look unacknowledged again, as in Java's
    /// `maybeUpdateLastAckedSequence`.
    pub(crate) fn acknowledged(&self, tp: &TopicPartition, base_sequence: i32, records: usize) {
        let next = advance(base_sequence, records);
        let mut acked = self.acked.lock().unwrap_or_else(|e| e.into_inner());
        match acked.get_mut(tp) {
            Some(current) if !is_ahead(next, *current) => {}
            Some(current) => *current = next,
            None => {
                acked.insert(tp.clone(), next);
            }
        }
    }

    /// Whether a batch is the earliest unacknowledged one of its partition:
    /// an OUT_OF_ORDER_SEQUENCE_NUMBER for it means the broker lost our state.
    pub(crate) fn is_next_expected(&self, tp: &TopicPartition, base_sequence: i32) -> bool {
        self.acked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tp)
            .copied()
            .unwrap_or(0)
            == base_sequence
    }

    fn lock_sequences(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, i32>> {
        self.sequences.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The base sequence for a new batch of `records` records to `tp`.
    pub(crate) fn next_sequence(&self, tp: &TopicPartition, records: usize) -> i32 {
        let mut sequences = self.lock_sequences();
        let next = sequences.entry(tp.clone()).or_insert(0);
        let base = *next;
        *next = advance(base, records);
        base
    }
}

/// The sequence `records` after `sequence`, wrapping at i32::MAX as the
/// broker expects.
/// Whether sequence `a` comes after `b`, across the wrap at `i32::MAX`:
/// sequences in flight together are far closer than half the range.
fn is_ahead(a: i32, b: i32) -> bool {
    let distance = (i64::from(a) - i64::from(b)).rem_euclid(i64::from(i32::MAX) + 1);
    distance != 0 && distance < (1 << 30)
}

fn advance(sequence: i32, records: usize) -> i32 {
    ((i64::from(sequence) + records as i64) % (i64::from(i32::MAX) + 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_advance_per_partition_and_wrap() {
        let idem = Idempotence::new(None);
        let a = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let b = TopicPartition {
            topic: "t".into(),
            partition: 1,
        };
        assert_eq!(idem.next_sequence(&a, 10), 0);
        assert_eq!(idem.next_sequence(&a, 5), 10);
        assert_eq!(idem.next_sequence(&b, 1), 0);
        idem.sequences
            .lock()
            .unwrap()
            .insert(a.clone(), i32::MAX - 1);
        assert_eq!(idem.next_sequence(&a, 3), i32::MAX - 1);
        assert_eq!(idem.next_sequence(&a, 1), 1);
    }

    #[test]
    fn a_late_acknowledgement_of_an_earlier_batch_does_not_move_back() {
        let idem = Idempotence::new(None);
        let tp = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        assert!(idem.is_next_expected(&tp, 0));
        idem.acknowledged(&tp, 10, 10);
        assert!(idem.is_next_expected(&tp, 20));
        // The retry of 0..=9 answered as a duplicate, after 10..=19.
        idem.acknowledged(&tp, 0, 10);
        assert!(idem.is_next_expected(&tp, 20), "still 20, not 10");
        // Across the wrap: MAX-1, MAX, then 0 is ahead.
        idem.acked.lock().unwrap().insert(tp.clone(), i32::MAX - 1);
        idem.acknowledged(&tp, i32::MAX - 1, 3);
        assert!(idem.is_next_expected(&tp, 1));
        idem.acknowledged(&tp, i32::MAX - 5, 2);
        assert!(
            idem.is_next_expected(&tp, 1),
            "an old one from before the wrap"
        );
    }
}
