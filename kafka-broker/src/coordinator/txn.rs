//! The transaction coordinator.
//!
//! Each `transactional.id` has a producer id, an epoch and a state, moving
//! as in Apache Kafka's `TransactionCoordinator`:
//!
//! ```text
//! Empty --add partitions/offsets--> Ongoing --EndTxn--> PrepareCommit | PrepareAbort
//!   ^                                                        |  (markers written)
//!   +---------- CompleteCommit | CompleteAbort <-------------+
//! ```
//!
//! EndTxn only moves the transaction to `PrepareCommit` / `PrepareAbort` and
//! answers. The COMMIT or ABORT markers are written afterwards by the
//! coordinator's own task ([`drive_transactions`]), which then completes the
//! groups' transactional offsets and moves to `CompleteCommit` /
//! `CompleteAbort`. Until then the partitions keep the transaction open, so
//! their last stable offset stays at its first offset and `read_committed`
//! readers see none of it; its offsets stay invisible to OffsetFetch.
//! While a transaction is in a Prepare state, InitProducerId,
//! AddPartitionsToTxn, AddOffsetsToTxn and a matching EndTxn for its id
//! answer CONCURRENT_TRANSACTIONS, which clients retry; an EndTxn asking for
//! the other outcome gets INVALID_TXN_STATE. Once complete, an EndTxn
//! retried with the same outcome succeeds (the client may have missed the
//! first answer) and the other outcome is INVALID_TXN_STATE.
//! [`crate::Faults::hold_txn_completion`] keeps a transactional id's
//! markers from being written, so tests can observe the Prepare window.
//!
//! Fencing: InitProducerId with a known id bumps the epoch. If a
//! transaction is ongoing, as in Kafka, the bump fences it: it is aborted
//! under the new epoch (PrepareAbort) and the caller gets
//! CONCURRENT_TRANSACTIONS; its retry, once the abort is complete, bumps the
//! epoch again and succeeds. The previous producer's requests fail with
//! PRODUCER_FENCED and its batches with INVALID_PRODUCER_EPOCH (the markers
//! raise the partitions' epoch floor). A transaction left ongoing past its
//! `transaction.timeout.ms` is aborted the same way under a bumped epoch;
//! the producer's next call gets INVALID_PRODUCER_EPOCH, which clients
//! treat as abortable, and an EndTxn(abort) from it is accepted.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
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

use tokio::sync::Notify;

use crate::coordinator::group::{CommittedOffset, MAX_OFFSET_METADATA_BYTES};
use crate::faults::Faults;
use crate::state::Shared;
use crate::txn_store::StoredTxn;

/// Where a transactional id's transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnState {
    /// No transaction since the last InitProducerId or completion.
    Empty,
    /// Partitions or groups have been added.
    Ongoing,
    /// EndTxn(commit) was answered; the COMMIT markers are not all written.
    PrepareCommit,
    /// EndTxn(abort) was answered, or the coordinator is aborting (fence,
    /// timeout); the ABORT markers are not all written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
}

impl TxnState {
    fn is_preparing(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }
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
    /// The epoch the markers of a preparing transaction carry: the
    /// producer's own, or the bumped one when the coordinator aborts.
    marker_epoch: i16,
}

impl TxnMeta {
    /// Starts the coordinator's own abort of the ongoing transaction under a
    /// bumped epoch, as on a timeout: the producer's old epoch stays
    /// accepted for its EndTxn(abort) and its KIP-360 epoch bump.
    fn abort_as_timed_out(&mut self, faults: &Faults, id: &str) {
        let old = self.epoch;
        let bumped = old.saturating_add(1);
        self.epoch = bumped;
        self.timed_out_epoch = Some(old);
        self.prepare(faults, id, false, bumped);
    }

    /// Ends the ongoing transaction as far as clients can tell: the markers
    /// are left to [`TransactionCoordinator::complete_prepared`].
    fn prepare(&mut self, faults: &Faults, id: &str, commit: bool, marker_epoch: i16) {
        self.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        self.marker_epoch = marker_epoch;
        faults.txn_prepared(id);
        tracing::debug!(
            transactional_id = id,
            producer_id = self.producer_id,
            epoch = marker_epoch,
            commit,
            "transaction prepared"
        );
    }
}

/// Every transactional id's state.
#[derive(Debug, Default)]
pub(crate) struct TransactionCoordinator {
    txns: Mutex<HashMap<String, TxnMeta>>,
    /// Woken (one permit) when a transaction enters a Prepare state, so
    /// [`drive_transactions`] writes its markers at once.
    prepared: Arc<Notify>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Kafka answers CONCURRENT_TRANSACTIONS (retriable) to a producer that
/// starts the next transaction before the markers of the last are written.
fn not_preparing(meta: Option<&TxnMeta>) -> Result<(), ErrorCode> {
    match meta {
        Some(meta) if meta.state.is_preparing() => Err(ErrorCode::ConcurrentTransactions),
        _ => Ok(()),
    }
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

/// The coordinator's state locked for a change a client will be answered
/// about: in disk mode it is written out when the guard goes, which is
/// before the answer is sent.
struct Persisting<'a> {
    txns: MutexGuard<'a, HashMap<String, TxnMeta>>,
    shared: &'a Shared,
}

impl std::ops::Deref for Persisting<'_> {
    type Target = HashMap<String, TxnMeta>;

    fn deref(&self) -> &Self::Target {
        &self.txns
    }
}

impl std::ops::DerefMut for Persisting<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.txns
    }
}

impl Drop for Persisting<'_> {
    fn drop(&mut self) {
        persist(self.shared, &self.txns);
    }
}

/// In disk mode, writes every transactional id's state.
fn persist(shared: &Shared, txns: &HashMap<String, TxnMeta>) {
    let Some(dir) = &shared.config.data_dir else {
        return;
    };
    let stored: Vec<StoredTxn> = txns
        .iter()
        .map(|(id, meta)| StoredTxn {
            transactional_id: id.clone(),
            producer_id: meta.producer_id,
            epoch: meta.epoch,
            timed_out_epoch: meta.timed_out_epoch,
            timeout_ms: meta.timeout.as_millis().try_into().unwrap_or(u64::MAX),
            state: meta.state,
            marker_epoch: meta.marker_epoch,
            partitions: meta.partitions.iter().cloned().collect(),
            groups: meta.groups.iter().cloned().collect(),
        })
        .collect();
    if let Err(e) = crate::txn_store::save(dir, &stored) {
        tracing::error!(error = %e, "could not save the transaction state");
    }
}

impl TransactionCoordinator {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, TxnMeta>> {
        self.txns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_persisting<'a>(&'a self, shared: &'a Shared) -> Persisting<'a> {
        Persisting {
            txns: self.lock(),
            shared,
        }
    }

    /// Takes over the state a disk-mode broker stored before it stopped.
    /// Prepared transactions keep their outcome; their markers are written
    /// by [`drive_transactions`]. An ongoing transaction is aborted under a
    /// bumped epoch, as on a timeout, rather than left to hold back its
    /// partitions' last stable offset until its timeout.
    pub(crate) fn restore(&self, faults: &Faults, stored: Vec<StoredTxn>) {
        let mut txns = self.lock();
        for txn in stored {
            let mut meta = TxnMeta {
                producer_id: txn.producer_id,
                epoch: txn.epoch,
                timed_out_epoch: txn.timed_out_epoch,
                timeout: Duration::from_millis(txn.timeout_ms),
                state: txn.state,
                partitions: txn.partitions.into_iter().collect(),
                groups: txn.groups.into_iter().collect(),
                started: Instant::now(),
                marker_epoch: txn.marker_epoch,
            };
            if meta.state == TxnState::Ongoing {
                meta.abort_as_timed_out(faults, &txn.transactional_id);
                tracing::warn!(
                    transactional_id = txn.transactional_id,
                    producer_id = meta.producer_id,
                    "transaction ongoing before the restart; aborting"
                );
            }
            txns.insert(txn.transactional_id, meta);
        }
        if txns.values().any(|meta| meta.state.is_preparing()) {
            self.prepared.notify_one();
        }
    }

    /// Whether a transaction of `producer_id` on this partition is to be
    /// ended by the coordinator's own markers (so recovery leaves it open).
    pub(crate) fn will_end(&self, producer_id: i64, topic: &str, partition: i32) -> bool {
        self.lock().values().any(|meta| {
            meta.producer_id == producer_id
                && meta.state.is_preparing()
                && meta.partitions.contains(&(topic.to_owned(), partition))
        })
    }

    /// What [`drive_transactions`] waits on besides its timer.
    pub(crate) fn prepared(&self) -> Arc<Notify> {
        self.prepared.clone()
    }

    /// Writes the markers and completes the groups of `meta`'s preparing
    /// transaction, then moves it to its Complete state.
    fn complete(shared: &Shared, id: &str, meta: &mut TxnMeta) {
        let commit = match meta.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return,
        };
        let epoch = meta.marker_epoch;
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
            transactional_id = id,
            producer_id = meta.producer_id,
            epoch,
            commit,
            "transaction completed"
        );
    }

    /// Writes the markers of every preparing transaction not held by a
    /// fault rule.
    pub(crate) fn complete_prepared(&self, shared: &Shared) {
        let mut txns = self.lock();
        let mut completed = false;
        for (id, meta) in txns.iter_mut() {
            if meta.state.is_preparing() && !shared.faults.txn_completion_held(id) {
                Self::complete(shared, id, meta);
                completed = true;
            }
        }
        if completed {
            persist(shared, &txns);
        }
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
        let mut txns = self.lock_persisting(shared);
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
                    marker_epoch: 0,
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
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                return error(ErrorCode::ConcurrentTransactions);
            }
            TxnState::Ongoing => {
                // Kafka's epoch fence: the old producer's transaction is
                // aborted under a bumped epoch that is never handed out; the
                // caller retries and bumps it again once the abort is done.
                meta.epoch = next_epoch;
                meta.timed_out_epoch = None;
                meta.prepare(&shared.faults, id, false, next_epoch);
                self.prepared.notify_one();
                tracing::info!(
                    transactional_id = id,
                    producer_id = meta.producer_id,
                    epoch = next_epoch,
                    "ongoing transaction fenced; aborting"
                );
                return error(ErrorCode::ConcurrentTransactions);
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {}
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
        let mut txns = self.lock_persisting(shared);
        let meta = txns.get_mut(&request.v3_and_below_transactional_id);
        let checked = check(
            meta.as_deref(),
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
        )
        .and_then(|()| not_preparing(meta.as_deref()));
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
    pub(crate) fn add_offsets(
        &self,
        shared: &Shared,
        request: &AddOffsetsToTxnRequest,
    ) -> AddOffsetsToTxnResponse {
        let mut txns = self.lock_persisting(shared);
        let meta = txns.get_mut(&request.transactional_id);
        let checked = check(meta.as_deref(), request.producer_id, request.producer_epoch)
            .and_then(|()| not_preparing(meta.as_deref()));
        let code = match checked {
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
        // Held until the offsets are in the group: a transaction that ended
        // between the check and the add (a timeout abort, say) would leave
        // them pending, to be committed by this producer's next transaction.
        let txns = self.lock();
        let code = {
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
            // A commit decided before a crash must still find them.
            shared.persist_offsets();
        }
        drop(txns);
        TxnOffsetCommitResponse {
            topics,
            ..Default::default()
        }
    }

    /// EndTxn: commit or abort. Answers once the transaction is prepared;
    /// the markers follow from [`drive_transactions`].
    pub(crate) fn end_txn(&self, shared: &Shared, request: &EndTxnRequest) -> EndTxnResponse {
        let mut txns = self.lock_persisting(shared);
        let id = request.transactional_id.as_str();
        let meta = txns.get_mut(id);
        let code = match (
            check(meta.as_deref(), request.producer_id, request.producer_epoch),
            meta,
        ) {
            // An abort after the broker aborted on timeout is fine, once
            // that abort is complete.
            (Err(ErrorCode::InvalidProducerEpoch), Some(meta)) if !request.committed => {
                match meta.state {
                    TxnState::CompleteAbort => ErrorCode::None,
                    TxnState::PrepareAbort => ErrorCode::ConcurrentTransactions,
                    _ => ErrorCode::InvalidProducerEpoch,
                }
            }
            (Err(code), _) => code,
            (Ok(()), None) => ErrorCode::InvalidProducerIdMapping,
            (Ok(()), Some(meta)) => match (meta.state, request.committed) {
                (TxnState::Ongoing, commit) => {
                    let epoch = meta.epoch;
                    meta.prepare(&shared.faults, id, commit, epoch);
                    self.prepared.notify_one();
                    ErrorCode::None
                }
                // Still writing the markers of this very outcome: retry.
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    ErrorCode::ConcurrentTransactions
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

    /// For Produce: runs `append` if `producer_id` at `epoch` may write
    /// transactional data to this partition now. The check and the append
    /// are one step for the transaction's end: markers are written under
    /// the same lock, so a batch checked before its transaction ended
    /// cannot land after the markers, where it would open a transaction
    /// nobody ends and hold back the partition's last stable offset (the
    /// hanging transaction of KIP-890).
    pub(crate) fn produce<T>(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        append: impl FnOnce() -> T,
    ) -> Result<T, ErrorCode> {
        let txns = self.lock();
        let Some(meta) = txns.values().find(|m| m.producer_id == producer_id) else {
            return Err(ErrorCode::InvalidProducerIdMapping);
        };
        check(Some(meta), producer_id, epoch)?;
        if meta.state == TxnState::Ongoing
            && meta.partitions.contains(&(topic.to_owned(), partition))
        {
            Ok(append())
        } else {
            Err(ErrorCode::InvalidTxnState)
        }
    }

    /// Starts aborting transactions that outlived their timeout, bumping
    /// their epoch; [`complete_prepared`](Self::complete_prepared) writes
    /// the markers.
    pub(crate) fn abort_timed_out(&self, shared: &Shared) {
        let mut txns = self.lock();
        let mut aborting = false;
        for (id, meta) in txns.iter_mut() {
            if meta.state == TxnState::Ongoing && meta.started.elapsed() > meta.timeout {
                tracing::info!(
                    transactional_id = id,
                    producer_id = meta.producer_id,
                    "transaction timed out; aborting"
                );
                meta.abort_as_timed_out(&shared.faults, id);
                aborting = true;
            }
        }
        if aborting {
            persist(shared, &txns);
        }
    }
}

/// The coordinator's own task: writes the markers of prepared transactions
/// as soon as they are prepared (or their hold is removed), and looks for
/// timed-out transactions every 100 ms, until the cluster is gone.
pub(crate) async fn drive_transactions(
    shared: Weak<Shared>,
    prepared: Arc<Notify>,
    released: Arc<Notify>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = prepared.notified() => {}
            () = released.notified() => {}
        }
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.txns.abort_timed_out(&shared);
        shared.txns.complete_prepared(&shared);
    }
}
