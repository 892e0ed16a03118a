//! The transaction manager: the state machine of a producer with a
//! `transactional.id`, and the requests to its transaction coordinator.
//!
//! ```text
//! Uninitialized --init--> Ready --begin--> InTransaction --commit--> Committing --> Ready
//!                           ^                    |                       |
//!                           |                 (error)                 (error)
//!                           |                    v                       v
//!                           +------abort--- Abortable <------------------+
//!                                               any state --fatal--> Fatal (for good)
//! ```
//!
//! As in the Java client: a partition is added to the transaction
//! (AddPartitionsToTxn, batched for all partitions ready at once) before
//! its first batch is sent, which the sender asks for; `commit` flushes
//! first; a commit that timed out resumes where it stopped when called
//! again. A failed batch, offsets fenced by a rebalance, or a transaction
//! the broker aborted on timeout make the transaction abortable: only
//! `abort_transaction` is allowed then. `PRODUCER_FENCED`, authorization
//! failures and protocol violations are fatal.
//!
//! `INVALID_PRODUCER_EPOCH` is abortable, not fatal: brokers send it when
//! they aborted the transaction on `transaction.timeout.ms` and bumped the
//! epoch, and for batches of a producer that was fenced. The abort tells
//! the two apart: after a timeout the coordinator accepts it and the epoch
//! is bumped again (KIP-360), while a fenced producer's abort gets
//! `PRODUCER_FENCED`, which is fatal.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest,
    TxnOffsetCommitRequest,
};
use kafka_protocol::{ErrorCode, Request};

use super::idempotence::Idempotence;
use crate::by_topic::by_topic;
use crate::consumer::ConsumerGroupMetadata;
use crate::network::{Connection, CoordinatorKind, Network, find_coordinator};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// Where the producer's transaction stands.
#[derive(Debug, Clone)]
enum State {
    Uninitialized,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    Abortable(Error),
    Fatal(Error),
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Uninitialized => "uninitialized (call init_transactions)",
            State::Ready => "ready (no transaction begun)",
            State::InTransaction => "in a transaction",
            State::Committing => "committing",
            State::Aborting => "aborting",
            State::Abortable(_) => "abortable",
            State::Fatal(_) => "fatal",
        }
    }
}

#[derive(Debug)]
struct Current {
    state: State,
    /// Partitions the coordinator added to the current transaction.
    added: HashSet<TopicPartition>,
    /// AddOffsetsToTxn succeeded: the transaction exists at the coordinator
    /// even without partitions.
    offsets_added: bool,
    /// No AddPartitionsToTxn before this (backoff after a retriable error).
    add_not_before: Option<Instant>,
    /// The epoch must be bumped once the transaction is aborted (the
    /// broker timed the transaction out, or sequences were lost).
    bump_after_abort: bool,
}

/// The transaction manager shared by the producer and its sender task.
#[derive(Debug)]
pub(crate) struct Transactions {
    transactional_id: String,
    timeout_ms: i32,
    retry_backoff: Duration,
    current: Mutex<Current>,
    coordinator: tokio::sync::Mutex<Option<Connection>>,
    /// The last group coordinator TxnOffsetCommit reached, by group id: a
    /// loop sends offsets for the same group every transaction.
    group_coordinator: Mutex<Option<(String, Connection)>>,
}

/// How a coordinator error code is handled.
enum Disposition {
    Retry,
    Rediscover,
    Abortable,
    Fatal,
}

fn disposition(code: ErrorCode) -> Disposition {
    match code {
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => Disposition::Rediscover,
        ErrorCode::CoordinatorLoadInProgress
        | ErrorCode::ConcurrentTransactions
        | ErrorCode::RequestTimedOut
        | ErrorCode::UnknownTopicOrPartition => Disposition::Retry,
        ErrorCode::InvalidProducerEpoch
        | ErrorCode::TopicAuthorizationFailed
        | ErrorCode::GroupAuthorizationFailed
        | ErrorCode::TransactionAbortable
        | ErrorCode::UnknownMemberId
        | ErrorCode::IllegalGeneration
        | ErrorCode::FencedInstanceId
        | ErrorCode::RebalanceInProgress
        | ErrorCode::InvalidCommitOffsetSize
        | ErrorCode::OffsetMetadataTooLarge => Disposition::Abortable,
        code if code.retriable() => Disposition::Retry,
        _ => Disposition::Fatal,
    }
}

fn code(raw: i16) -> ErrorCode {
    ErrorCode::from_code(raw).unwrap_or(ErrorCode::UnknownServerError)
}

impl Transactions {
    pub(crate) fn new(
        transactional_id: String,
        timeout: Duration,
        retry_backoff: Duration,
    ) -> Self {
        Self {
            transactional_id,
            timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
            retry_backoff,
            current: Mutex::new(Current {
                state: State::Uninitialized,
                added: HashSet::new(),
                offsets_added: false,
                add_not_before: None,
                bump_after_abort: false,
            }),
            coordinator: tokio::sync::Mutex::new(None),
            group_coordinator: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Poisons the producer; returns the error to hand the caller.
    pub(crate) fn set_fatal(&self, cause: Error) -> Error {
        let mut current = self.lock();
        if let State::Fatal(existing) = &current.state {
            return existing.clone();
        }
        let error = match cause {
            Error::Fatal(_) => cause,
            other => Error::Fatal(Box::new(other)),
        };
        tracing::error!(
            transactional_id = self.transactional_id,
            %error,
            "transactional producer is now unusable"
        );
        current.state = State::Fatal(error.clone());
        error
    }

    /// Makes the current transaction abortable (unless already abortable
    /// or fatal); returns the error to hand the caller.
    pub(crate) fn set_abortable(&self, cause: Error) -> Error {
        let mut current = self.lock();
        match &current.state {
            State::Fatal(e) | State::Abortable(e) => return e.clone(),
            State::Aborting => return Error::AbortableTransaction(Box::new(cause)),
            _ => {}
        }
        if cause.code() == Some(ErrorCode::InvalidProducerEpoch) {
            current.bump_after_abort = true;
        }
        let error = match cause {
            Error::AbortableTransaction(_) => cause,
            other => Error::AbortableTransaction(Box::new(other)),
        };
        tracing::warn!(
            transactional_id = self.transactional_id,
            %error,
            "transaction must be aborted"
        );
        current.state = State::Abortable(error.clone());
        error
    }

    /// A batch of the transaction failed for good: fatal for fencing and
    /// protocol violations, abortable otherwise.
    pub(crate) fn batch_failed(&self, error: &Error) {
        match error.code() {
            Some(
                ErrorCode::ProducerFenced
                | ErrorCode::TransactionalIdAuthorizationFailed
                | ErrorCode::ClusterAuthorizationFailed
                | ErrorCode::InvalidTxnState,
            ) => {
                self.set_fatal(error.clone());
            }
            _ => {
                self.set_abortable(error.clone());
            }
        }
    }

    /// The epoch must be bumped after the abort (sequences were lost).
    pub(crate) fn bump_after_abort(&self) {
        self.lock().bump_after_abort = true;
    }

    /// The error that queued batches must fail with instead of being sent:
    /// the transaction is being aborted, must be, or the producer is dead.
    pub(crate) fn blocked(&self) -> Option<Error> {
        match &self.lock().state {
            State::Abortable(e) | State::Fatal(e) => Some(e.clone()),
            State::Aborting => Some(Error::AbortableTransaction(Box::new(Error::InvalidState(
                "the transaction was aborted".into(),
            )))),
            _ => None,
        }
    }

    /// May `send` queue a record now?
    pub(crate) fn check_send(&self) -> Result<()> {
        self.expect_in_transaction("send")
    }

    /// Splits `ready` into partitions that may be sent now and those that
    /// must be added to the transaction first (if it is time to try).
    pub(crate) fn partition_ready(
        &self,
        ready: &mut Vec<TopicPartition>,
        now: Instant,
    ) -> (Vec<TopicPartition>, Option<Instant>) {
        let current = self.lock();
        let mut to_add = Vec::new();
        ready.retain(|tp| {
            if current.added.contains(tp) {
                true
            } else {
                to_add.push(tp.clone());
                false
            }
        });
        match current.add_not_before {
            Some(at) if at > now && !to_add.is_empty() => (Vec::new(), Some(at)),
            _ => (to_add, None),
        }
    }

    /// Connects to the transaction coordinator, finding it if needed.
    async fn coordinator(
        &self,
        network: &Network,
        deadline: tokio::time::Instant,
    ) -> Result<Connection> {
        let mut slot = self.coordinator.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let connection = find_coordinator(
            network,
            CoordinatorKind::Transaction,
            &self.transactional_id,
            deadline,
        )
        .await?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn forget_coordinator(&self) {
        *self.coordinator.lock().await = None;
    }

    /// Sends `request` to the transaction coordinator until `accept` likes
    /// the response's error code or `deadline` passes. Network errors and
    /// retriable codes are retried with backoff; a coordinator that moved is
    /// looked up again. Returns the code that ended the loop.
    async fn call_coordinator<R: Request>(
        &self,
        network: &Network,
        request: &R,
        deadline: tokio::time::Instant,
        what: &str,
        error_code: impl Fn(&R::Response) -> ErrorCode,
    ) -> Result<R::Response> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = match self.coordinator(network, deadline).await {
                Ok(connection) => match connection.version_for::<R>() {
                    Ok(v) => {
                        let call = connection.call(request, v);
                        match tokio::time::timeout_at(deadline, call).await {
                            Ok(result) => result,
                            Err(_) => Err(Error::Timeout(format!("{what} got no answer in time"))),
                        }
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let retry = match outcome {
                Ok(response) => {
                    let code = error_code(&response);
                    match disposition(code) {
                        _ if code.is_ok() => return Ok(response),
                        Disposition::Retry => Error::kafka(code, what.to_owned()),
                        Disposition::Rediscover => {
                            self.forget_coordinator().await;
                            Error::kafka(code, what.to_owned())
                        }
                        Disposition::Abortable => {
                            return Err(Error::AbortableTransaction(Box::new(Error::kafka(
                                code,
                                what.to_owned(),
                            ))));
                        }
                        Disposition::Fatal => {
                            return Err(Error::Fatal(Box::new(Error::kafka(
                                code,
                                what.to_owned(),
                            ))));
                        }
                    }
                }
                Err(e) if e.retriable() => {
                    if matches!(e, Error::Network { .. }) {
                        self.forget_coordinator().await;
                    }
                    e
                }
                Err(e) => return Err(e),
            };
            self.pause_before_retry(attempt, deadline, what, &retry)
                .await?;
        }
    }

    /// Waits out the backoff before retry `attempt + 1` (exponential,
    /// capped), or fails with a timeout naming `what` and its last error if
    /// the deadline would pass first.
    async fn pause_before_retry(
        &self,
        attempt: u32,
        deadline: tokio::time::Instant,
        what: &str,
        last: &Error,
    ) -> Result<()> {
        let backoff = self
            .retry_backoff
            .saturating_mul(1 << attempt.min(4))
            .min(Duration::from_secs(1))
            / 2;
        if tokio::time::Instant::now() + backoff >= deadline {
            return Err(Error::Timeout(format!(
                "{what} did not finish in time; last error: {last}"
            )));
        }
        tracing::debug!(what, error = %last, "retrying transactional request");
        tokio::time::sleep(backoff).await;
        Ok(())
    }

    /// Records what a coordinator call's error means for the producer.
    fn settle(&self, result: Result<()>) -> Result<()> {
        match result {
            Err(Error::Fatal(inner)) => Err(self.set_fatal(*inner)),
            Err(Error::AbortableTransaction(inner)) => Err(self.set_abortable(*inner)),
            other => other,
        }
    }

    /// InitProducerId for the transactional id: fences earlier producers
    /// with the same id and aborts their open transaction (the coordinator
    /// answers CONCURRENT_TRANSACTIONS until that is done, retried here).
    pub(crate) async fn init(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        timeout: Duration,
    ) -> Result<()> {
        {
            let current = self.lock();
            match &current.state {
                State::Uninitialized => {}
                State::Fatal(e) => return Err(e.clone()),
                other => {
                    return Err(Error::InvalidState(format!(
                        "init_transactions on a producer that is {}",
                        other.name()
                    )));
                }
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        self.init_producer_id(network, idempotence, (-1, -1), deadline, "InitProducerId")
            .await?;
        let mut current = self.lock();
        if matches!(current.state, State::Uninitialized) {
            current.state = State::Ready;
        }
        Ok(())
    }

    /// Starts a transaction (locally: the coordinator hears of it with the
    /// first partition or offsets added).
    pub(crate) fn begin(&self) -> Result<()> {
        let mut current = self.lock();
        match &current.state {
            State::Ready => {
                current.state = State::InTransaction;
                current.added.clear();
                current.offsets_added = false;
                current.add_not_before = None;
                Ok(())
            }
            State::Abortable(e) | State::Fatal(e) => Err(e.clone()),
            other => Err(Error::InvalidState(format!(
                "begin_transaction on a producer that is {}",
                other.name()
            ))),
        }
    }

    /// One AddPartitionsToTxn for `partitions`, from the sender. A
    /// retriable failure sets a backoff; the others change the state.
    pub(crate) async fn add_partitions(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        partitions: &[TopicPartition],
        request_timeout: Duration,
    ) {
        let Some((producer_id, epoch)) = idempotence.current().await else {
            self.set_fatal(Error::InvalidState(
                "records queued before init_transactions".into(),
            ));
            return;
        };
        let topics: Vec<AddPartitionsToTxnTopic> = by_topic(
            partitions
                .iter()
                .map(|tp| (tp.topic.as_str(), tp.partition)),
        )
        .into_iter()
        .map(|(name, partitions)| AddPartitionsToTxnTopic {
            name,
            partitions,
            ..Default::default()
        })
        .collect();
        let request = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: self.transactional_id.clone(),
            v3_and_below_producer_id: producer_id,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: topics,
            ..Default::default()
        };
        // One attempt: the sender loop comes back after the backoff.
        let deadline = tokio::time::Instant::now() + request_timeout;
        let outcome = async {
            let connection = self.coordinator(network, deadline).await?;
            let v = connection.version_for::<AddPartitionsToTxnRequest>()?;
            connection.call(&request, v).await
        }
        .await;
        let response = match outcome {
            Ok(response) => response,
            Err(e) => {
                if !e.retriable() {
                    self.set_abortable(e);
                    return;
                }
                if matches!(e, Error::Network { .. }) {
                    self.forget_coordinator().await;
                }
                tracing::debug!(error = %e, "AddPartitionsToTxn failed; will retry");
                self.lock().add_not_before = Some(Instant::now() + self.retry_backoff);
                return;
            }
        };
        let mut worst: Option<(ErrorCode, String)> = None;
        let mut added = Vec::new();
        let top = code(response.error_code);
        for topic in &response.results_by_topic_v3_and_below {
            for p in &topic.results_by_partition {
                let c = code(p.partition_error_code);
                let tp = TopicPartition {
                    topic: topic.name.clone(),
                    partition: p.partition_index,
                };
                if c.is_ok() {
                    added.push(tp);
                } else if c != ErrorCode::OperationNotAttempted || worst.is_none() {
                    // OPERATION_NOT_ATTEMPTED only says another partition
                    // of the request failed.
                    worst = Some((c, format!("{}-{}", tp.topic, tp.partition)));
                }
            }
        }
        if !top.is_ok() && worst.is_none() {
            worst = Some((top, "AddPartitionsToTxn".into()));
        }
        let Some((c, context)) = worst else {
            let mut current = self.lock();
            current.added.extend(added);
            current.add_not_before = None;
            return;
        };
        let error = Error::kafka(c, format!("AddPartitionsToTxn {context}"));
        match disposition(c) {
            disposition @ (Disposition::Retry | Disposition::Rediscover) => {
                // CONCURRENT_TRANSACTIONS right after a commit clears in
                // milliseconds: do not wait the whole backoff for it.
                let backoff = if c == ErrorCode::ConcurrentTransactions {
                    self.retry_backoff.min(Duration::from_millis(20))
                } else {
                    self.retry_backoff
                };
                {
                    let mut current = self.lock();
                    current.added.extend(added);
                    current.add_not_before = Some(Instant::now() + backoff);
                }
                if matches!(disposition, Disposition::Rediscover) {
                    self.forget_coordinator().await;
                }
                tracing::debug!(%error, "AddPartitionsToTxn will be retried");
            }
            Disposition::Abortable => {
                self.lock().added.extend(added);
                self.set_abortable(error);
            }
            Disposition::Fatal => {
                self.set_fatal(error);
            }
        }
    }

    /// AddOffsetsToTxn then TxnOffsetCommit: the consumer's offsets commit
    /// with the transaction.
    pub(crate) async fn send_offsets(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<()> {
        self.expect_in_transaction("send_offsets_to_transaction")?;
        if group.group_id.is_empty() {
            return Err(Error::InvalidState(
                "send_offsets_to_transaction needs a consumer with a group.id".into(),
            ));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let (producer_id, epoch) = idempotence
            .current()
            .await
            .ok_or_else(|| Error::InvalidState("init_transactions has not completed".into()))?;
        let add = AddOffsetsToTxnRequest {
            transactional_id: self.transactional_id.clone(),
            producer_id,
            producer_epoch: epoch,
            group_id: group.group_id.clone(),
            ..Default::default()
        };
        let added = self
            .call_coordinator(network, &add, deadline, "AddOffsetsToTxn", |r| {
                code(r.error_code)
            })
            .await
            .map(|_| ());
        self.settle(added)?;
        self.lock().offsets_added = true;
        let result = self
            .commit_offsets(network, producer_id, epoch, offsets, group, deadline)
            .await;
        self.settle(result)
    }

    fn expect_in_transaction(&self, call: &str) -> Result<()> {
        match &self.lock().state {
            State::InTransaction => Ok(()),
            State::Abortable(e) | State::Fatal(e) => Err(e.clone()),
            other => Err(Error::InvalidState(format!(
                "{call} on a transactional producer that is {}; call begin_transaction first",
                other.name()
            ))),
        }
    }

    /// TxnOffsetCommit to the group's coordinator, retrying the partitions
    /// that failed retriably.
    async fn commit_offsets(
        &self,
        network: &Network,
        producer_id: i64,
        epoch: i16,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let mut pending: BTreeMap<TopicPartition, i64> = offsets.clone();
        let mut coordinator: Option<Connection> = self
            .group_coordinator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|(id, c)| *id == group.group_id && !c.is_closed())
            .map(|(_, c)| c.clone());
        let mut attempt = 0u32;
        while !pending.is_empty() {
            attempt += 1;
            let connection = match coordinator.as_ref().filter(|c| !c.is_closed()) {
                Some(c) => c.clone(),
                None => {
                    let c = find_coordinator(
                        network,
                        CoordinatorKind::Group,
                        &group.group_id,
                        deadline,
                    )
                    .await?;
                    coordinator = Some(c.clone());
                    c
                }
            };
            let v = connection.version_for::<TxnOffsetCommitRequest>()?;
            let topics: Vec<TxnOffsetCommitRequestTopic> =
                by_topic(pending.iter().map(|(tp, offset)| {
                    let partition = TxnOffsetCommitRequestPartition {
                        partition_index: tp.partition,
                        committed_offset: *offset,
                        committed_leader_epoch: -1,
                        committed_metadata: Some(String::new()),
                        ..Default::default()
                    };
                    (tp.topic.as_str(), partition)
                }))
                .into_iter()
                .map(|(name, partitions)| TxnOffsetCommitRequestTopic {
                    name,
                    partitions,
                    ..Default::default()
                })
                .collect();
            // KIP-447's generation fencing exists from version 3 on; older
            // brokers would refuse the fields.
            let request = TxnOffsetCommitRequest {
                transactional_id: self.transactional_id.clone(),
                group_id: group.group_id.clone(),
                producer_id,
                producer_epoch: epoch,
                generation_id: if v >= 3 { group.generation_id } else { -1 },
                member_id: if v >= 3 {
                    group.member_id.clone()
                } else {
                    String::new()
                },
                group_instance_id: if v >= 3 {
                    group.group_instance_id.clone()
                } else {
                    None
                },
                topics,
                ..Default::default()
            };
            let retry = match tokio::time::timeout_at(deadline, connection.call(&request, v)).await
            {
                Err(_) => {
                    return Err(Error::Timeout(
                        "TxnOffsetCommit got no answer in time".into(),
                    ));
                }
                Ok(Err(e)) if e.retriable() => {
                    coordinator = None;
                    e
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(response)) => {
                    let mut retry = None;
                    for topic in &response.topics {
                        for p in &topic.partitions {
                            let tp = TopicPartition {
                                topic: topic.name.clone(),
                                partition: p.partition_index,
                            };
                            let c = code(p.error_code);
                            if c.is_ok() {
                                pending.remove(&tp);
                                continue;
                            }
                            let error = Error::kafka(
                                c,
                                format!("TxnOffsetCommit {}-{}", tp.topic, tp.partition),
                            );
                            match disposition(c) {
                                Disposition::Retry => retry = Some(error),
                                Disposition::Rediscover => {
                                    coordinator = None;
                                    retry = Some(error);
                                }
                                Disposition::Abortable => {
                                    return Err(Error::AbortableTransaction(Box::new(error)));
                                }
                                Disposition::Fatal => return Err(Error::Fatal(Box::new(error))),
                            }
                        }
                    }
                    match retry {
                        Some(e) => e,
                        None if pending.is_empty() => {
                            *self
                                .group_coordinator
                                .lock()
                                .unwrap_or_else(|e| e.into_inner()) =
                                Some((group.group_id.clone(), connection.clone()));
                            return Ok(());
                        }
                        None => Error::Protocol(format!(
                            "TxnOffsetCommit left {} partitions unanswered",
                            pending.len()
                        )),
                    }
                }
            };
            self.pause_before_retry(attempt, deadline, "TxnOffsetCommit", &retry)
                .await?;
        }
        Ok(())
    }

    /// Moves to Committing (or resumes a commit that timed out). Returns
    /// whether the coordinator knows of the transaction (EndTxn is needed).
    pub(crate) fn start_commit(&self) -> Result<bool> {
        let mut current = self.lock();
        match &current.state {
            State::InTransaction | State::Committing => {
                current.state = State::Committing;
                Ok(!current.added.is_empty() || current.offsets_added)
            }
            State::Abortable(e) | State::Fatal(e) => Err(e.clone()),
            other => Err(Error::InvalidState(format!(
                "commit_transaction on a producer that is {}",
                other.name()
            ))),
        }
    }

    /// Moves to Aborting (or resumes an abort that timed out). Returns
    /// whether the coordinator knows of the transaction.
    pub(crate) fn start_abort(&self) -> Result<bool> {
        let mut current = self.lock();
        match &current.state {
            State::InTransaction | State::Abortable(_) | State::Aborting => {
                current.state = State::Aborting;
                Ok(!current.added.is_empty() || current.offsets_added)
            }
            State::Fatal(e) => Err(e.clone()),
            other => Err(Error::InvalidState(format!(
                "abort_transaction on a producer that is {}",
                other.name()
            ))),
        }
    }

    /// EndTxn, committing or aborting, retried until `deadline`.
    pub(crate) async fn end(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        commit: bool,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let (producer_id, epoch) = idempotence
            .current()
            .await
            .ok_or_else(|| Error::InvalidState("init_transactions has not completed".into()))?;
        let request = EndTxnRequest {
            transactional_id: self.transactional_id.clone(),
            producer_id,
            producer_epoch: epoch,
            committed: commit,
            ..Default::default()
        };
        let what = if commit {
            "EndTxn(commit)"
        } else {
            "EndTxn(abort)"
        };
        let result = self
            .call_coordinator(network, &request, deadline, what, |r| code(r.error_code))
            .await
            .map(|_| ());
        match result {
            // An abort that cannot abort: the producer was fenced.
            Err(Error::AbortableTransaction(inner)) if !commit => Err(self.set_fatal(*inner)),
            other => self.settle(other),
        }
    }

    /// Whether the epoch must be bumped now that the abort is done.
    pub(crate) fn needs_bump(&self) -> bool {
        self.lock().bump_after_abort
    }

    /// InitProducerId with the current id and epoch (KIP-360): a new epoch
    /// after a transaction the broker aborted, or lost sequences.
    pub(crate) async fn bump(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let current = idempotence
            .current()
            .await
            .ok_or_else(|| Error::InvalidState("init_transactions has not completed".into()))?;
        self.init_producer_id(
            network,
            idempotence,
            current,
            deadline,
            "InitProducerId (epoch bump)",
        )
        .await?;
        self.lock().bump_after_abort = false;
        Ok(())
    }

    /// InitProducerId for the transactional id, as the producer `(id,
    /// epoch)` given ((-1, -1) the first time), taking the id and epoch it
    /// answers with. Whatever the coordinator refuses here is fatal: there
    /// is no transaction to abort. A timeout is not, and may be retried.
    async fn init_producer_id(
        &self,
        network: &Network,
        idempotence: &Idempotence,
        (producer_id, producer_epoch): (i64, i16),
        deadline: tokio::time::Instant,
        what: &str,
    ) -> Result<()> {
        let request = InitProducerIdRequest {
            transactional_id: Some(self.transactional_id.clone()),
            transaction_timeout_ms: self.timeout_ms,
            producer_id,
            producer_epoch,
            ..Default::default()
        };
        let response = self
            .call_coordinator(network, &request, deadline, what, |r| code(r.error_code))
            .await;
        let response = match response {
            Ok(r) => r,
            Err(Error::AbortableTransaction(inner)) | Err(Error::Fatal(inner)) => {
                return Err(self.set_fatal(*inner));
            }
            Err(e) => return Err(e),
        };
        idempotence
            .set_producer(response.producer_id, response.producer_epoch)
            .await;
        tracing::info!(
            transactional_id = self.transactional_id,
            producer_id = response.producer_id,
            epoch = response.producer_epoch,
            what,
            "transactional producer id and epoch"
        );
        Ok(())
    }

    /// The transaction is over (committed or aborted): ready for the next.
    pub(crate) fn finished(&self) {
        let mut current = self.lock();
        if !matches!(current.state, State::Fatal(_)) {
            current.state = State::Ready;
            current.added.clear();
            current.offsets_added = false;
            current.add_not_before = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> Transactions {
        Transactions::new(
            "t".into(),
            Duration::from_secs(60),
            Duration::from_millis(10),
        )
    }

    #[test]
    fn the_state_machine_allows_what_java_allows() {
        let txn = manager();
        assert!(matches!(txn.begin(), Err(Error::InvalidState(_))));
        assert!(matches!(txn.check_send(), Err(Error::InvalidState(_))));
        txn.lock().state = State::Ready;
        assert!(matches!(txn.start_commit(), Err(Error::InvalidState(_))));
        txn.begin().unwrap();
        assert!(txn.check_send().is_ok());
        assert!(matches!(txn.begin(), Err(Error::InvalidState(_))));
        assert!(!txn.start_commit().unwrap(), "nothing added: no EndTxn");
        txn.finished();
        txn.begin().unwrap();
        let error = txn.set_abortable(Error::Timeout("delivery".into()));
        assert!(error.is_abortable());
        assert_eq!(txn.check_send(), Err(error.clone()));
        assert_eq!(txn.start_commit(), Err(error));
        assert!(txn.start_abort().is_ok());
        txn.finished();
        txn.begin().unwrap();
        let fenced = txn.set_fatal(Error::kafka(ErrorCode::ProducerFenced, "EndTxn"));
        assert!(fenced.is_fatal());
        for result in [
            txn.begin(),
            txn.check_send(),
            txn.start_commit().map(|_| ()),
            txn.start_abort().map(|_| ()),
        ] {
            assert_eq!(result, Err(fenced.clone()));
        }
        txn.finished();
        assert_eq!(txn.check_send(), Err(fenced));
    }

    #[test]
    fn failed_batches_are_fatal_only_for_fencing_and_protocol_violations() {
        let txn = manager();
        txn.lock().state = State::InTransaction;
        txn.batch_failed(&Error::kafka(ErrorCode::InvalidProducerEpoch, "t-0"));
        assert!(txn.blocked().is_some_and(|e| e.is_abortable()));
        assert!(
            txn.needs_bump(),
            "a timed-out transaction needs a new epoch"
        );
        let txn = manager();
        txn.lock().state = State::InTransaction;
        txn.batch_failed(&Error::kafka(ErrorCode::ProducerFenced, "t-0"));
        assert!(txn.blocked().is_some_and(|e| e.is_fatal()));
    }

    #[test]
    fn partitions_wait_to_be_added_before_they_are_sent() {
        let txn = manager();
        let a = TopicPartition {
            topic: "t".into(),
            partition: 0,
        };
        let b = TopicPartition {
            topic: "t".into(),
            partition: 1,
        };
        txn.lock().added.insert(a.clone());
        let mut ready = vec![a.clone(), b.clone()];
        let now = Instant::now();
        let (to_add, wait) = txn.partition_ready(&mut ready, now);
        assert_eq!(ready, vec![a.clone()]);
        assert_eq!(to_add, vec![b.clone()]);
        assert_eq!(wait, None);
        txn.lock().add_not_before = Some(now + Duration::from_secs(1));
        let mut ready = vec![a, b];
        let (to_add, wait) = txn.partition_ready(&mut ready, now);
        assert!(to_add.is_empty());
        assert!(wait.is_some());
    }
}
