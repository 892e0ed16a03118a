//! The sender task: drains ready batches per partition leader, sends them
//! in ProduceRequests with at most `max.in.flight.requests.per.connection`
//! outstanding per broker, and completes, retries or fails each batch from
//! the response.
//!
//! Retries keep a partition's order: a retried batch goes back to the front
//! of its queue, ordered by its idempotent sequence, and is sent again with
//! the same bytes (same producer id, epoch and sequence), so the broker
//! either appends it once or recognises it as a duplicate. Batches whose
//! `delivery.timeout.ms` has passed are failed and never sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::accumulator::{Accumulator, ProducerBatch};
use super::idempotence::Idempotence;
use super::stats::Counters;
use super::transaction::Transactions;
use crate::by_topic::by_topic;
use crate::network::{Connection, Network, PendingResponse};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// What the sender needs to know.
#[derive(Debug, Clone)]
pub(crate) struct SenderConfig {
    pub acks: i16,
    pub request_timeout: Duration,
    pub delivery_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub retries: u32,
    pub max_in_flight: usize,
    pub max_request_size: usize,
}

/// The outcome of one ProduceRequest, back from its task.
struct Completed {
    broker: i32,
    batches: Vec<ProducerBatch>,
    result: Result<Option<ProduceResponse>>,
    /// The request was handed to the connection: an error may have come
    /// after the broker appended it.
    submitted: bool,
}

/// Runs until the accumulator is closed and empty and nothing is in flight.
pub(crate) async fn run(
    network: Arc<Network>,
    accumulator: Arc<Accumulator>,
    idempotence: Option<Arc<Idempotence>>,
    transactions: Option<Arc<Transactions>>,
    config: SenderConfig,
    stats: Arc<Counters>,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completed>();
    let mut in_flight: HashMap<i32, usize> = HashMap::new();
    // Brokers with a request whose task is still connecting and has not
    // queued it yet; `queued` wakes the loop when one has.
    let mut connecting: HashMap<i32, Arc<AtomicBool>> = HashMap::new();
    let queued = Arc::new(tokio::sync::Notify::new());
    loop {
        let now = Instant::now();
        for batch in accumulator.expire(now, config.delivery_timeout) {
            if batch.base_sequence.is_some()
                && let Some(idem) = &idempotence
            {
                // Its sequence numbers will never be acknowledged.
                idem.request_bump();
            }
            Counters::add(&stats.errors, 1);
            let records = batch.record_count();
            let error = Error::Timeout(format!(
                "delivery.timeout.ms ({:?}) passed before {records} records were acknowledged",
                config.delivery_timeout
            ));
            // Blocked before released: see `Outcome::retry_or_fail`.
            if let Some(txn) = &transactions {
                txn.batch_failed(&error);
            }
            accumulator.release(&batch);
            batch.fail(error);
        }
        if let Some(txn) = &transactions
            && let Some(error) = txn.blocked()
            && accumulator.abort_all(&error)
        {
            // Sequences that will never be acknowledged.
            txn.bump_after_abort();
        }
        if accumulator.is_closed_and_empty() && in_flight.values().all(|n| *n == 0) {
            break;
        }
        let nothing_in_flight = in_flight.values().all(|n| *n == 0);
        let mut paused = false;
        // A transactional producer bumps its epoch when it aborts.
        if let Some(idem) = &idempotence
            && transactions.is_none()
            && idem.needs_bump()
        {
            if nothing_in_flight && !accumulator.has_unresolved() {
                if let Err(e) = idem.bump(&network).await {
                    tracing::warn!(error = %e, "epoch bump failed; will retry");
                    tokio::time::sleep(config.retry_backoff).await;
                    continue;
                }
            } else {
                // Wait for what is in flight before re-sequencing (KIP-360),
                // and settle batches whose earlier attempt may have been
                // appended by retrying them under the epoch they carry: the
                // broker recognises those as duplicates, which it could not
                // do under a new epoch.
                paused = true;
            }
        }
        let (mut ready, mut next) = accumulator.ready(now);
        if paused {
            ready.retain(|tp| accumulator.is_unresolved(tp));
        }
        if let (Some(txn), Some(idem)) = (&transactions, &idempotence) {
            // A partition's first batch waits until the coordinator has
            // added the partition to the transaction.
            let (to_add, retry_at) = txn.partition_ready(&mut ready, now);
            if !to_add.is_empty() {
                txn.add_partitions(&network, idem, &to_add, config.request_timeout)
                    .await;
                let mut added = to_add;
                txn.partition_ready(&mut added, now);
                ready.extend(added);
            }
            if let Some(at) = retry_at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let metadata = network.metadata();
        let mut by_leader: HashMap<i32, Vec<TopicPartition>> = HashMap::new();
        let mut missing_leader = false;
        for tp in ready {
            match metadata.leader(&tp.topic, tp.partition) {
                Some(leader) => by_leader.entry(leader.id).or_default().push(tp),
                None => missing_leader = true,
            }
        }
        if missing_leader {
            let network = network.clone();
            tokio::spawn(async move {
                let _ = network.refresh().await;
            });
        }
        // The producer id comes first: batches carry it in their header.
        let producer = match &idempotence {
            Some(idem) if !by_leader.is_empty() => match idem.producer(&network).await {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "InitProducerId failed; will retry");
                    tokio::time::sleep(config.retry_backoff).await;
                    continue;
                }
            },
            _ => None,
        };
        for (broker, partitions) in by_leader {
            let used = in_flight.entry(broker).or_default();
            if *used >= config.max_in_flight {
                continue;
            }
            // Requests must reach the connection in drain order. With the
            // connection open they are queued on it right here; without it,
            // one request connects first and the rest wait until it is
            // queued, even once the connection it opened is visible here:
            // a later request queued first would arrive with later
            // sequence numbers and be refused as out of order.
            if connecting
                .get(&broker)
                .is_some_and(|pending| pending.load(Ordering::Acquire))
            {
                continue;
            }
            let open = network.open_connection(broker);
            if open.is_none() && *used > 0 {
                continue;
            }
            let mut batches = Vec::new();
            let mut size = 0;
            for tp in partitions {
                let Some(mut batch) = accumulator.drain(&tp) else {
                    continue;
                };
                let signed = match (&idempotence, producer) {
                    (Some(idem), Some((id, epoch))) => {
                        if batch.wire.is_none() {
                            let sequence = idem.next_sequence(&tp, batch.record_count());
                            batch.finish(Some((id, epoch, sequence)))
                        } else if batch.producer != Some((id, epoch)) {
                            // Signed before an epoch bump: new epoch, new sequence.
                            let sequence = idem.next_sequence(&tp, batch.record_count());
                            batch.resign(id, epoch, sequence)
                        } else {
                            batch.finish(None)
                        }
                    }
                    _ => batch.finish(None),
                };
                let wire = match signed {
                    Ok(wire) => wire,
                    Err(e) => {
                        Counters::add(&stats.errors, 1);
                        // Blocked before released: see `Outcome::retry_or_fail`.
                        if let Some(txn) = &transactions {
                            txn.batch_failed(&e);
                        }
                        accumulator.release(&batch);
                        batch.fail(e);
                        continue;
                    }
                };
                // A batch always goes, even alone over max.request.size.
                if !batches.is_empty() && size + wire.len() > config.max_request_size {
                    accumulator.reenqueue(batch, Duration::ZERO);
                    break;
                }
                size += wire.len();
                if batch.attempts == 0 {
                    Counters::add(
                        &stats.queue_time_us,
                        batch.created.elapsed().as_micros() as u64,
                    );
                } else {
                    Counters::add(&stats.retries, 1);
                }
                batch.attempts += 1;
                batches.push(batch);
            }
            if batches.is_empty() {
                continue;
            }
            *used += 1;
            Counters::add(&stats.requests_sent, 1);
            Counters::add(&stats.in_flight, 1);
            let request = produce_request(&batches, &config, idempotence.as_deref());
            let done = done_tx.clone();
            let span = tracing::debug_span!("produce", broker, batches = batches.len());
            match open {
                Some(connection) => {
                    let pending = submit(&connection, &request, config.acks).await;
                    tokio::spawn(finish_request(pending, done, broker, batches).instrument(span));
                }
                None => {
                    let network = network.clone();
                    let acks = config.acks;
                    let pending_flag = Arc::new(AtomicBool::new(true));
                    connecting.insert(broker, pending_flag.clone());
                    let queued = queued.clone();
                    tokio::spawn(
                        async move {
                            let pending = match network.broker(broker).await {
                                Ok(connection) => submit(&connection, &request, acks).await,
                                Err(e) => Err(e),
                            };
                            pending_flag.store(false, Ordering::Release);
                            queued.notify_one();
                            finish_request(pending, done, broker, batches).await;
                        }
                        .instrument(span),
                    );
                }
            }
        }
        let wait = next
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        connecting.retain(|_, pending| pending.load(Ordering::Acquire));
        tokio::select! {
            _ = accumulator.data_ready.notified() => {}
            () = queued.notified() => {}
            completed = done_rx.recv() => {
                if let Some(completed) = completed {
                    if let Some(n) = in_flight.get_mut(&completed.broker) {
                        *n = n.saturating_sub(1);
                    }
                    Counters::sub(&stats.in_flight, 1);
                    let outcome = Outcome {
                        accumulator: &accumulator,
                        idempotence: idempotence.as_deref(),
                        transactions: transactions.as_deref(),
                        config: &config,
                        stats: &stats,
                    };
                    handle(completed, &network, &outcome);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::debug!("sender stopped");
}

/// Waits for the answer to a submitted request (none with acks=0) and
/// hands it, with its batches, back to the sender loop.
async fn finish_request(
    pending: Result<Option<PendingResponse<ProduceRequest>>>,
    done: mpsc::UnboundedSender<Completed>,
    broker: i32,
    batches: Vec<ProducerBatch>,
) {
    let submitted = pending.is_ok();
    let result = match pending {
        Ok(Some(pending)) => pending.response().await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let _ = done.send(Completed {
        broker,
        batches,
        result,
        submitted,
    });
}

/// The ProduceRequest carrying `batches`.
fn produce_request(
    batches: &[ProducerBatch],
    config: &SenderConfig,
    idempotence: Option<&Idempotence>,
) -> ProduceRequest {
    let topics: Vec<TopicProduceData> = by_topic(batches.iter().map(|batch| {
        let data = PartitionProduceData {
            index: batch.tp.partition,
            records: batch.wire.clone(),
            ..Default::default()
        };
        (batch.tp.topic.as_str(), data)
    }))
    .into_iter()
    .map(|(name, partition_data)| TopicProduceData {
        name,
        partition_data,
        ..Default::default()
    })
    .collect();
    ProduceRequest {
        transactional_id: idempotence.and_then(Idempotence::transactional_id),
        acks: config.acks,
        timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
        topic_data: topics,
        ..Default::default()
    }
}

/// Queues a ProduceRequest on `connection`; `None` with acks=0, which has
/// no response.
async fn submit(
    connection: &Connection,
    request: &ProduceRequest,
    acks: i16,
) -> Result<Option<PendingResponse<ProduceRequest>>> {
    let version = connection.version_for::<ProduceRequest>()?;
    if acks == 0 {
        connection.send_without_response(request, version).await?;
        return Ok(None);
    }
    connection.submit_vectored(request, version).await.map(Some)
}

fn backoff(config: &SenderConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    config
        .retry_backoff
        .saturating_mul(1 << exponent)
        .min(config.retry_backoff_max.max(config.retry_backoff))
}

/// Completes, retries or fails each batch of a finished request.
fn handle(completed: Completed, network: &Arc<Network>, outcome: &Outcome<'_>) {
    let Completed {
        batches,
        result,
        submitted,
        ..
    } = completed;
    let idempotence = outcome.idempotence;
    let response = match result {
        Ok(Some(response)) => response,
        Ok(None) => {
            // acks=0: done as soon as it is written; offsets are unknown.
            for batch in batches {
                outcome.succeeded(batch, -1, -1);
            }
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "produce request failed");
            let network = network.clone();
            tokio::spawn(async move {
                let _ = network.refresh().await;
            });
            for mut batch in batches {
                batch.outcome_unknown |= submitted;
                let retriable = e.retriable();
                outcome.retry_or_fail(batch, e.clone(), retriable);
            }
            return;
        }
    };
    let mut refresh = false;
    for topic in &response.responses {
        for answered in &topic.partition_responses {
            let asked = batches
                .iter()
                .any(|b| b.tp.topic == topic.name && b.tp.partition == answered.index);
            if !asked {
                tracing::warn!(
                    topic = topic.name,
                    partition = answered.index,
                    "produce answer for a partition that was not sent; ignored"
                );
            }
        }
    }
    for mut batch in batches {
        let partition = response
            .responses
            .iter()
            .filter(|t| t.name == batch.tp.topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == batch.tp.partition);
        let Some(partition) = partition else {
            let error = Error::Protocol("the response left a partition out".into());
            outcome.retry_or_fail(batch, error, true);
            continue;
        };
        let code =
            ErrorCode::from_code(partition.error_code).unwrap_or(ErrorCode::UnknownServerError);
        // An answer for the partition settles whether this attempt was
        // appended, except for the two codes a leader returns after
        // appending locally.
        batch.outcome_unknown = matches!(
            code,
            ErrorCode::RequestTimedOut | ErrorCode::NotEnoughReplicasAfterAppend
        );
        // The broker's message, when it sent one, says which sequence or
        // epoch it expected: worth keeping in every error.
        let context = match partition.error_message.as_deref() {
            Some(message) if !message.is_empty() => {
                format!("{}-{}: {message}", batch.tp.topic, batch.tp.partition)
            }
            _ => format!("{}-{}", batch.tp.topic, batch.tp.partition),
        };
        let error = Error::kafka(code, context);
        match code {
            ErrorCode::None => {
                outcome.succeeded(batch, partition.base_offset, partition.log_append_time_ms)
            }
            // The broker already has this batch: it was appended by an
            // earlier attempt whose response was lost.
            ErrorCode::DuplicateSequenceNumber => {
                outcome.succeeded(batch, partition.base_offset, partition.log_append_time_ms)
            }
            ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch => {
                refresh = true;
                outcome.retry_or_fail(batch, error, true);
            }
            ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::UnknownProducerId
            | ErrorCode::InvalidProducerEpoch
                if idempotence.is_some() =>
            {
                // For the partition's earliest unacknowledged batch this
                // means the broker lost (or fenced) our state: bump the
                // epoch and send again under new sequences (KIP-360). For a
                // later batch it only means an earlier one is being retried:
                // it is retried after it, in sequence order.
                let lost_state = code != ErrorCode::OutOfOrderSequenceNumber
                    || batch.base_sequence.is_some_and(|s| {
                        idempotence.is_some_and(|i| i.is_next_expected(&batch.tp, s))
                    });
                if lost_state && let Some(idem) = idempotence {
                    idem.request_bump();
                }
                // In a transaction the epoch is bumped by the abort that
                // lost state calls for (KIP-360): retrying could not
                // succeed. A later batch's OUT_OF_ORDER_SEQUENCE_NUMBER only
                // waits for the earlier one's retry.
                let retriable = outcome.transactions.is_none() || !lost_state;
                outcome.retry_or_fail(batch, error, retriable);
            }
            code if code.retriable() => outcome.retry_or_fail(batch, error, true),
            _ => outcome.retry_or_fail(batch, error, false),
        }
    }
    if refresh {
        let network = network.clone();
        tokio::spawn(async move {
            let _ = network.refresh().await;
        });
    }
}

/// What handling a batch's outcome needs.
struct Outcome<'a> {
    accumulator: &'a Accumulator,
    idempotence: Option<&'a Idempotence>,
    transactions: Option<&'a Transactions>,
    config: &'a SenderConfig,
    stats: &'a Counters,
}

impl Outcome<'_> {
    fn succeeded(&self, batch: ProducerBatch, base_offset: i64, log_append_time: i64) {
        self.accumulator.release(&batch);
        if let (Some(idem), Some(sequence)) = (self.idempotence, batch.base_sequence) {
            idem.acknowledged(&batch.tp, sequence, batch.record_count());
        }
        Counters::add(&self.stats.records_sent, batch.record_count() as u64);
        Counters::add(
            &self.stats.bytes_sent,
            batch.wire.as_ref().map_or(0, |w| w.len() as u64),
        );
        Counters::add(&self.stats.batches_sent, 1);
        batch.complete(base_offset, log_append_time);
    }

    /// Retries the batch after a backoff if `retriable` and its time and
    /// retries allow; otherwise fails its records.
    fn retry_or_fail(&self, batch: ProducerBatch, error: Error, retriable: bool) {
        let expired = batch.created.elapsed() >= self.config.delivery_timeout;
        if !retriable || expired || batch.attempts > self.config.retries {
            Counters::add(&self.stats.errors, 1);
            if batch.base_sequence.is_some()
                && let Some(idem) = self.idempotence
            {
                // Its sequence numbers will never be acknowledged.
                idem.request_bump();
            }
            let error = if expired {
                Error::Timeout(format!("delivery.timeout.ms passed; last error: {error}"))
            } else {
                error
            };
            // The transaction is blocked before the batch's memory is
            // released: `commit_transaction` waits for the memory, then asks
            // whether a batch failed. Released first, a commit could see
            // everything settled and nothing failed, and commit without
            // this batch's records.
            if let Some(txn) = self.transactions {
                txn.batch_failed(&error);
            }
            self.accumulator.release(&batch);
            batch.fail(error);
            return;
        }
        tracing::debug!(
            topic = batch.tp.topic,
            partition = batch.tp.partition,
            attempts = batch.attempts,
            %error,
            "retrying batch"
        );
        let delay = backoff(self.config, batch.attempts);
        self.accumulator.reenqueue(batch, delay);
    }
}
