//! Idempotent-producer state of one partition: per producer id, the current
//! epoch and the sequence ranges of the last five batches, which is what
//! lets a broker recognise a retried batch and spot a gap.

use std::collections::{HashMap, VecDeque};

use kafka_protocol::ErrorCode;

use super::AppendError;

/// Batches remembered per producer: as many as a producer may have in flight.
const RECENT_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy)]
struct SequenceRange {
    first: i32,
    last: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<SequenceRange>,
}

/// The outcome of checking a batch against its producer's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProducerCheck {
    /// A new batch in sequence: append it.
    Fresh,
    /// A retry of a batch already in the log at `base_offset`.
    Duplicate { base_offset: i64 },
}

/// Producer state for every producer id that wrote to the partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

/// The sequence after `sequence`, wrapping as Kafka's do.
fn next_sequence(sequence: i32, records: i64) -> i32 {
    let next = i64::from(sequence) + records;
    (next % (i64::from(i32::MAX) + 1)) as i32
}

impl ProducerStates {
    /// Checks a batch of `records` records starting at `base_sequence`.
    pub(crate) fn check(
        &self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        records: i64,
    ) -> Result<ProducerCheck, AppendError> {
        let out_of_order = |expected: i32| {
            AppendError::new(
                ErrorCode::OutOfOrderSequenceNumber,
                format!(
                    "producer {producer_id} epoch {epoch}: sequence {base_sequence}, expected {expected}"
                ),
            )
        };
        if base_sequence < 0 {
            return Err(AppendError::new(
                ErrorCode::InvalidRecord,
                format!("producer {producer_id} sent a batch without a sequence number"),
            ));
        }
        let Some(entry) = self.producers.get(&producer_id) else {
            return if base_sequence == 0 {
                Ok(ProducerCheck::Fresh)
            } else {
                Err(out_of_order(0))
            };
        };
        if epoch < entry.epoch {
            return Err(AppendError::new(
                ErrorCode::InvalidProducerEpoch,
                format!(
                    "producer {producer_id} epoch {epoch} is older than the current {}",
                    entry.epoch
                ),
            ));
        }
        if epoch > entry.epoch {
            return if base_sequence == 0 {
                Ok(ProducerCheck::Fresh)
            } else {
                Err(out_of_order(0))
            };
        }
        let last = next_sequence(base_sequence, records - 1);
        if let Some(seen) = entry
            .recent
            .iter()
            .find(|r| r.first == base_sequence && r.last == last)
        {
            return Ok(ProducerCheck::Duplicate {
                base_offset: seen.base_offset,
            });
        }
        let expected = entry.recent.back().map_or(0, |r| next_sequence(r.last, 1));
        if base_sequence == expected {
            Ok(ProducerCheck::Fresh)
        } else {
            Err(out_of_order(expected))
        }
    }

    /// Records an appended batch.
    pub(crate) fn record(
        &mut self,
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        records: i64,
        base_offset: i64,
    ) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
        if entry.recent.len() == RECENT_BATCHES {
            entry.recent.pop_front();
        }
        entry.recent.push_back(SequenceRange {
            first: base_sequence,
            last: next_sequence(base_sequence, records - 1),
            base_offset,
        });
    }

    /// The latest epoch seen from `producer_id`, if it wrote here.
    pub(crate) fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|entry| entry.epoch)
    }

    /// Raises the producer's epoch to at least `epoch` (a transaction marker
    /// written at that epoch), so older epochs are fenced from now on.
    pub(crate) fn bump_epoch_floor(&mut self, producer_id: i64, epoch: i16) {
        let entry = self.producers.entry(producer_id).or_default();
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.recent.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_batches_are_fresh_and_a_retry_is_a_duplicate() {
        let mut states = ProducerStates::default();
        assert_eq!(states.check(7, 0, 0, 10).unwrap(), ProducerCheck::Fresh);
        states.record(7, 0, 0, 10, 100);
        assert_eq!(states.check(7, 0, 10, 5).unwrap(), ProducerCheck::Fresh);
        states.record(7, 0, 10, 5, 110);
        assert_eq!(
            states.check(7, 0, 0, 10).unwrap(),
            ProducerCheck::Duplicate { base_offset: 100 }
        );
    }

    #[test]
    fn gaps_old_epochs_and_unknown_producers_are_refused() {
        let mut states = ProducerStates::default();
        assert_eq!(
            states.check(1, 0, 3, 1).unwrap_err().code,
            ErrorCode::OutOfOrderSequenceNumber
        );
        states.record(1, 2, 0, 1, 0);
        assert_eq!(
            states.check(1, 2, 2, 1).unwrap_err().code,
            ErrorCode::OutOfOrderSequenceNumber
        );
        assert_eq!(
            states.check(1, 1, 1, 1).unwrap_err().code,
            ErrorCode::InvalidProducerEpoch
        );
        // A new epoch starts again at 0.
        assert_eq!(states.check(1, 3, 0, 1).unwrap(), ProducerCheck::Fresh);
        assert!(states.check(1, 3, 5, 1).is_err());
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(1, 0, i, 1, i64::from(i));
        }
        assert!(states.check(1, 0, 0, 1).is_err());
        assert_eq!(
            states.check(1, 0, 1, 1).unwrap(),
            ProducerCheck::Duplicate { base_offset: 1 }
        );
    }

    #[test]
    fn sequences_wrap_at_int_max() {
        let mut states = ProducerStates::default();
        states.record(1, 0, i32::MAX - 1, 2, 0);
        assert_eq!(states.check(1, 0, 0, 1).unwrap(), ProducerCheck::Fresh);
    }

    #[test]
    fn a_marker_epoch_fences_older_producers() {
        let mut states = ProducerStates::default();
        states.record(1, 0, 0, 1, 0);
        states.bump_epoch_floor(1, 1);
        assert_eq!(
            states.check(1, 0, 1, 1).unwrap_err().code,
            ErrorCode::InvalidProducerEpoch
        );
    }
}
