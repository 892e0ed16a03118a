//! Control records: the commit and abort markers a transaction coordinator
//! writes into each partition a transaction touched.
//!
//! A control record lives alone in a batch with the control and
//! transactional bits set. Its key is `version: i16, type: i16` (0 abort,
//! 1 commit; KRaft uses further types); an end-transaction marker's value is
//! `version: i16, coordinator_epoch: i32`.

use bytes::Bytes;

use crate::{DecodeError, EncodeError};

use super::batch::RecordBatch;
use super::builder::BatchBuilder;
use super::record::Record;

const CONTROL_KEY_VERSION: i16 = 0;
const MARKER_VALUE_VERSION: i16 = 0;

/// The type in a control record's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// A transaction abort marker (type 0).
    Abort,
    /// A transaction commit marker (type 1).
    Commit,
    /// Another type, e.g. KRaft's leader change (2) or snapshot records.
    Other(i16),
}

impl ControlRecordType {
    /// The type id on the wire.
    pub const fn id(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Other(id) => id,
        }
    }

    /// Reads the type from a control record key. Newer key versions may
    /// append fields; like the Java client we read the type and ignore them.
    pub fn from_key(key: &[u8]) -> Result<Self, DecodeError> {
        let Some((fields, _)) = key.split_first_chunk::<4>() else {
            return Err(DecodeError::UnexpectedEof {
                needed: 4,
                remaining: key.len(),
            });
        };
        let version = i16::from_be_bytes([fields[0], fields[1]]);
        if version < 0 {
            return Err(malformed(format!("negative control key version {version}")));
        }
        Ok(match i16::from_be_bytes([fields[2], fields[3]]) {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Other(other),
        })
    }

    /// The key of a control record of this type.
    pub fn key(self) -> [u8; 4] {
        let mut key = [0u8; 4];
        key[..2].copy_from_slice(&CONTROL_KEY_VERSION.to_be_bytes());
        key[2..].copy_from_slice(&self.id().to_be_bytes());
        key
    }
}

fn malformed(reason: String) -> DecodeError {
    DecodeError::Malformed {
        what: "control record",
        reason,
    }
}

/// A commit or abort marker ending a transaction in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionMarker {
    /// True for commit, false for abort.
    pub commit: bool,
    /// The epoch of the coordinator that wrote it, fencing zombie coordinators.
    pub coordinator_epoch: i32,
}

impl TransactionMarker {
    /// The marker a control record carries, or `None` if the record is a
    /// control record of another type.
    pub fn from_record(record: &Record) -> Result<Option<Self>, DecodeError> {
        let key = record.key.as_deref().ok_or(DecodeError::UnexpectedNull {
            field: "ControlRecord.key",
        })?;
        let commit = match ControlRecordType::from_key(key)? {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Other(_) => return Ok(None),
        };
        let value = record.value.as_deref().ok_or(DecodeError::UnexpectedNull {
            field: "EndTxnMarker.value",
        })?;
        let Some((fields, _)) = value.split_first_chunk::<6>() else {
            return Err(DecodeError::UnexpectedEof {
                needed: 6,
                remaining: value.len(),
            });
        };
        let version = i16::from_be_bytes([fields[0], fields[1]]);
        if version < 0 {
            return Err(malformed(format!("negative marker version {version}")));
        }
        Ok(Some(Self {
            commit,
            coordinator_epoch: i32::from_be_bytes([fields[2], fields[3], fields[4], fields[5]]),
        }))
    }

    /// The control record type of this marker.
    pub fn record_type(self) -> ControlRecordType {
        if self.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        }
    }

    /// The record value: version 0 and the coordinator epoch.
    pub fn value(self) -> [u8; 6] {
        let mut value = [0u8; 6];
        value[..2].copy_from_slice(&MARKER_VALUE_VERSION.to_be_bytes());
        value[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        value
    }

    /// A complete marker batch, as a coordinator asks a partition leader to
    /// write it: control and transactional, no sequence, uncompressed.
    /// `base_offset` and the partition leader epoch are set by the leader
    /// afterwards with [`super::set_base_offset`].
    pub fn encode_batch(
        self,
        producer_id: i64,
        producer_epoch: i16,
        timestamp: i64,
    ) -> Result<Bytes, EncodeError> {
        let mut builder = BatchBuilder::new(128);
        builder
            .set_producer(producer_id, producer_epoch, -1)
            .set_transactional(true)
            .set_control(true);
        builder.append(
            timestamp,
            Some(&self.record_type().key()),
            Some(&self.value()),
            &[],
        )?;
        builder.finish()
    }

    /// Encodes only the key and value, e.g. for a caller building its own batch.
    pub fn key_value(self) -> (Bytes, Bytes) {
        (
            Bytes::copy_from_slice(&self.record_type().key()),
            Bytes::copy_from_slice(&self.value()),
        )
    }
}

impl RecordBatch {
    /// The transaction marker of a control batch; `None` for data batches
    /// and control batches of other types.
    pub fn transaction_marker(&self) -> Result<Option<TransactionMarker>, DecodeError> {
        if !self.is_control() {
            return Ok(None);
        }
        match self.records()?.next() {
            Some(record) => TransactionMarker::from_record(&record?),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_batch_round_trips() {
        for commit in [true, false] {
            let marker = TransactionMarker {
                commit,
                coordinator_epoch: 17,
            };
            let wire = marker.encode_batch(42, 3, 1_000).unwrap();
            let batch = RecordBatch::from_bytes(wire).unwrap();
            assert!(batch.is_control() && batch.is_transactional());
            assert_eq!(batch.header().base_sequence, -1);
            assert_eq!(batch.header().producer_id, 42);
            assert_eq!(batch.transaction_marker().unwrap(), Some(marker));
        }
    }

    #[test]
    fn other_control_types_are_not_markers() {
        assert_eq!(
            ControlRecordType::from_key(&[0, 0, 0, 2, 9]).unwrap(),
            ControlRecordType::Other(2)
        );
        assert!(ControlRecordType::from_key(&[0, 0, 0]).is_err());
        assert!(ControlRecordType::from_key(&[0x80, 0, 0, 1]).is_err());
    }
}
