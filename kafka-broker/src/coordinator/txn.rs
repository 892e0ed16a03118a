//! The transaction coordinator.
//!
//! Each `transactional.id` has a producer id, an epoch and a state:
//! `Empty` after InitProducerId, `Ongoing` once a partition or group is
//! added, then `CompleteCommit` / `CompleteAbort` when EndTxn has written
//! the COMMIT or ABORT markers to every partition of the transaction and
//! completed the groups' transactional offsets. Markers are written
//! synchronously here, so the `Prepare*` states of Kafka are never observed
//! from outside.
//!
//! Fencing: InitProducerId with a known id bumps the epoch (aborting an
//! ongoing transaction first), so the previous producer's requests fail
//! with PRODUCER_FENCED and its batches with INVALID_PRODUCER_EPOCH (the
//! markers raise the partitions' epoch floor). A transaction left ongoing
//! past its `transaction.timeout.ms` is aborted under a bumped epoch; the
//! producer's next call gets INVALID_PRODUCER_EPOCH, which clients treat as
//! abortable, and an EndTxn(abort) from it is accepted.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use crate::coordinator::group::{CommittedOffset, MAX_OFFSET_METADATA_BYTES};
use crate::state::Shared;

/// Where a transactional id's transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    /// No transaction since the last InitProducerId or completion.
    Empty,
    /// Partitions or groups have been added.
    Ongoing,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

#[derive(Debug)]
struct TxnMeta {
    producer_id: i64,
    epoch: i16,
    /// The epoch before a timeout abort bumped it, whose EndTxn(abort) is
    /// still accepted.
    timed_out_epoch: Option<i16>,
    timeout: Duration,
    state: TxnState,
    partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    started: Instant,
}

/// Every transactional id's state.
#[derive(Debug, Default)]
pub(crate) struct TransactionCoordinator {
    txns: Mutex<HashMap<String, TxnMeta>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The producer-id and epoch check shared by the transactional APIs.
fn check(meta: Option<&TxnMeta>, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
    let Some(meta) = meta else {
        return Err(ErrorCode::InvalidProducerIdMapping);
    };
    if meta.producer_id != producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if epoch == meta.epoch {
        return Ok(());
    }
    if meta.timed_out_epoch == Some(epoch) {
        // The broker aborted this transaction on timeout: abortable.
        return Err(ErrorCode::InvalidProducerEpoch);
    }
    Err(ErrorCode::ProducerFenced)
}

impl TransactionCoordinator {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, TxnMeta>> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the markers and completes the groups of `meta`'s transaction.
    fn complete(shared: &Shared, meta: &mut TxnMeta, commit: bool, epoch: i16) {
        let timestamp = now_ms();
        for (topic, partition) in &meta.partitions {
            let Some(part) = shared.topic(topic).and_then(|t| t.partition(*partition)) else {
                continue;
            };
            let written = crate::state::lock(&part.log).write_marker(
                meta.producer_id,
                epoch,
                commit,
                0,
                timestamp,
            );
            if let Err(e) = written {
                tracing::error!(topic, partition, error = %e.message, "transaction marker not written");
            }
        }
        for group in &meta.groups {
            shared.groups.complete_txn(group, meta.producer_id, commit);
        }
        if !meta.groups.is_empty() {
            shared.persist_offsets();
        }
        meta.partitions.clear();
        meta.groups.clear();
        meta.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        shared.appended.notify_waiters();
        tracing::debug!(
            producer_id = meta.producer_id,
            epoch,
            commit,
            "transaction completed"
        );
    }

    /// InitProducerId with a transactional id.
    pub(crate) fn init_producer_id(
        &self,
        shared: &Shared,
        request: &InitProducerIdRequest,
    ) -> InitProducerIdResponse {
        let error = |code: ErrorCode| InitProducerIdResponse {
            error_code: code.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let Some(id) = request
            .transactional_id
            .as_deref()
            .filter(|id| !id.is_empty())
        else {
            return error(ErrorCode::InvalidRequest);
        };
        let timeout_ms = request.transaction_timeout_ms;
        if timeout_ms <= 0 || timeout_ms > shared.config.transaction_max_timeout_ms {
            return error(ErrorCode::InvalidTransactionTimeout);
        }
        let mut txns = self.lock();
        let timeout = Duration::from_millis(timeout_ms as u64);
        let Some(meta) = txns.get_mut(id) else {
            let producer_id = shared.allocate_producer_id();
            txns.insert(
                id.to_owned(),
                TxnMeta {
                    producer_id,
                    epoch: 0,
                    timed_out_epoch: None,
                    timeout,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    started: Instant::now(),
                },
            );
            return InitProducerIdResponse {
                producer_id,
                producer_epoch: 0,
                ..Default::default()
            };
        };
        // KIP-360: a producer that says who it is must be the current one.
        if request.producer_id >= 0
            && (request.producer_id != meta.producer_id
                || (request.producer_epoch != meta.epoch
                    && meta.timed_out_epoch != Some(request.producer_epoch)))
        {
            return error(ErrorCode::ProducerFenced);
        }
        let next_epoch = meta.epoch.saturating_add(1);
        if meta.state == TxnState::Ongoing {
            // The old producer's transaction ends here, under the new epoch.
            Self::complete(shared, meta, false, next_epoch);
        }
        if next_epoch >= i16::MAX - 1 {
            meta.producer_id = shared.allocate_producer_id();
            meta.epoch = 0;
        } else {
            meta.epoch = next_epoch;
        }
        meta.timed_out_epoch = None;
        meta.timeout = timeout;
        meta.state = TxnState::Empty;
        tracing::info!(
            transactional_id = id,
            producer_id = meta.producer_id,
            epoch = meta.epoch,
            "producer (re)initialised"
        );
        InitProducerIdResponse {
            producer_id: meta.producer_id,
            producer_epoch: meta.epoch,
            ..Default::default()
        }
    }

    fn begin(meta: &mut TxnMeta) {
        if meta.state != TxnState::Ongoing {
            meta.state = TxnState::Ongoing;
            meta.started = Instant::now();
            meta.timed_out_epoch = None;
        }
    }

    /// AddPartitionsToTxn, client versions 0-3.
    pub(crate) fn add_partitions(
        &self,
        shared: &Shared,
        request: &AddPartitionsToTxnRequest,
    ) -> AddPartitionsToTxnResponse {
        let mut txns = self.lock();
        let meta = txns.get_mut(&request.v3_and_below_transactional_id);
        let checked = check(
            meta.as_deref(),
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
        );
        let unknown: Vec<(String, i32)> = request
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), *p)))
            .filter(|(t, p)| {
                shared
                    .topic(t)
                    .and_then(|topic| topic.partition(*p))
                    .is_none()
            })
            .collect();
        let code_for = |topic: &str, partition: i32| -> ErrorCode {
            match checked {
                Err(code) => code,
                Ok(()) if unknown.is_empty() => ErrorCode::None,
                Ok(()) if unknown.iter().any(|(t, p)| t == topic && *p == partition) => {
                    ErrorCode::UnknownTopicOrPartition
                }
                Ok(()) => ErrorCode::OperationNotAttempted,
            }
        };
        let results = request
            .v3_and_below_topics
            .iter()
            .map(|t| AddPartitionsToTxnTopicResult {
                name: t.name.clone(),
                results_by_partition: t
                    .partitions
                    .iter()
                    .map(|&p| AddPartitionsToTxnPartitionResult {
                        partition_index: p,
                        partition_error_code: code_for(&t.name, p).code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        if checked.is_ok()
            && unknown.is_empty()
            && let Some(meta) = meta
        {
            Self::begin(meta);
            for t in &request.v3_and_below_topics {
                for &p in &t.partitions {
                    meta.partitions.insert((t.name.clone(), p));
                }
            }
        }
        AddPartitionsToTxnResponse {
            results_by_topic_v3_and_below: results,
            ..Default::default()
        }
    }

    /// AddOffsetsToTxn.
    pub(crate) fn add_offsets(&self, request: &AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse {
        let mut txns = self.lock();
        let meta = txns.get_mut(&request.transactional_id);
        let code = match check(meta.as_deref(), request.producer_id, request.producer_epoch) {
            Err(code) => code,
            Ok(()) if request.group_id.is_empty() => ErrorCode::InvalidGroupId,
            Ok(()) => {
                if let Some(meta) = meta {
                    Self::begin(meta);
                    meta.groups.insert(request.group_id.clone());
                }
                ErrorCode::None
            }
        };
        AddOffsetsToTxnResponse {
            error_code: code.code(),
            ..Default::default()
        }
    }

    /// TxnOffsetCommit: the offsets wait in the group until EndTxn.
    pub(crate) fn txn_offset_commit(
        &self,
        shared: &Shared,
        request: &TxnOffsetCommitRequest,
    ) -> TxnOffsetCommitResponse {
        let code = {
            let txns = self.lock();
            let meta = txns.get(&request.transactional_id);
            match check(meta, request.producer_id, request.producer_epoch) {
                Err(code) => code,
                Ok(())
                    if !meta.is_some_and(|m| {
                        m.state == TxnState::Ongoing && m.groups.contains(&request.group_id)
                    }) =>
                {
                    ErrorCode::InvalidTxnState
                }
                Ok(()) => shared.groups.validate_txn_offset_commit(
                    &request.group_id,
                    request.generation_id,
                    &request.member_id,
                    request.group_instance_id.as_deref(),
                ),
            }
        };
        let now = now_ms();
        let mut offsets = Vec::new();
        let topics = request
            .topics
            .iter()
            .map(|t| TxnOffsetCommitResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let too_large = p
                            .committed_metadata
                            .as_ref()
                            .is_some_and(|m| m.len() > MAX_OFFSET_METADATA_BYTES);
                        let partition_code = if !code.is_ok() {
                            code
                        } else if too_large {
                            ErrorCode::OffsetMetadataTooLarge
                        } else {
                            offsets.push((
                                t.name.clone(),
                                p.partition_index,
                                CommittedOffset {
                                    offset: p.committed_offset,
                                    leader_epoch: p.committed_leader_epoch,
                                    metadata: p.committed_metadata.clone(),
                                    commit_timestamp_ms: now,
                                },
                            ));
                            ErrorCode::None
                        };
                        TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: partition_code.code(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        if !offsets.is_empty() {
            shared
                .groups
                .add_pending_txn_offsets(&request.group_id, request.producer_id, offsets);
        }
        TxnOffsetCommitResponse {
            topics,
            ..Default::default()
        }
    }

    /// EndTxn: commit or abort.
    pub(crate) fn end_txn(&self, shared: &Shared, request: &EndTxnRequest) -> EndTxnResponse {
        let mut txns = self.lock();
        let meta = txns.get_mut(&request.transactional_id);
        let code = match (
            check(meta.as_deref(), request.producer_id, request.producer_epoch),
            meta,
        ) {
            // An abort after the broker already aborted on timeout is fine.
            (Err(ErrorCode::InvalidProducerEpoch), Some(meta))
                if !request.committed && meta.state == TxnState::CompleteAbort =>
            {
                ErrorCode::None
            }
            (Err(code), _) => code,
            (Ok(()), None) => ErrorCode::InvalidProducerIdMapping,
            (Ok(()), Some(meta)) => match (meta.state, request.committed) {
                (TxnState::Ongoing, commit) => {
                    let epoch = meta.epoch;
                    Self::complete(shared, meta, commit, epoch);
                    ErrorCode::None
                }
                // Retries of a completed EndTxn succeed.
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    ErrorCode::None
                }
                _ => ErrorCode::InvalidTxnState,
            },
        };
        EndTxnResponse {
            error_code: code.code(),
            ..Default::default()
        }
    }

    /// For Produce: may `producer_id` at `epoch` write transactional data to
    /// this partition now?
    pub(crate) fn check_produce(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
    ) -> Result<(), ErrorCode> {
        let txns = self.lock();
        let Some(meta) = txns.values().find(|m| m.producer_id == producer_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        check(Some(meta), producer_id, epoch)?;
        if meta.state == TxnState::Ongoing
            && meta.partitions.contains(&(topic.to_owned(), partition))
        {
            Ok(())
        } else {
            Err(ErrorCode::InvalidTxnState)
        }
    }

    /// Aborts transactions that outlived their timeout, bumping their epoch.
    pub(crate) fn abort_timed_out(&self, shared: &Shared) {
        let mut txns = self.lock();
        for (id, meta) in txns.iter_mut() {
            if meta.state == TxnState::Ongoing && meta.started.elapsed() > meta.timeout {
                let old = meta.epoch;
                let bumped = old.saturating_add(1);
                tracing::info!(
                    transactional_id = id,
                    producer_id = meta.producer_id,
                    "transaction timed out; aborting"
                );
                Self::complete(shared, meta, false, bumped);
                meta.epoch = bumped;
                meta.timed_out_epoch = Some(old);
            }
        }
    }
}

/// Looks for timed-out transactions every 100 ms until the cluster is gone.
pub(crate) async fn expire_transactions(shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.txns.abort_timed_out(&shared);
    }
}
