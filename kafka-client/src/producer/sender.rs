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
use std::time::{Duration, Instant};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use tokio::sync::mpsc;

use super::accumulator::{Accumulator, ProducerBatch, TopicPartition};
use super::idempotence::Idempotence;
use super::stats::Counters;
use crate::network::Network;
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
}

/// Runs until the accumulator is closed and empty and nothing is in flight.
pub(crate) async fn run(
    network: Arc<Network>,
    accumulator: Arc<Accumulator>,
    idempotence: Option<Arc<Idempotence>>,
    config: SenderConfig,
    stats: Arc<Counters>,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completed>();
    let mut in_flight: HashMap<i32, usize> = HashMap::new();
    loop {
        let now = Instant::now();
        for batch in accumulator.expire(now, config.delivery_timeout) {
            accumulator.release(&batch);
            Counters::add(&stats.errors, 1);
            let records = batch.record_count();
            batch.fail(Error::Timeout(format!(
                "delivery.timeout.ms ({:?}) passed before {records} records were acknowledged",
                config.delivery_timeout
            )));
        }
        if accumulator.is_closed_and_empty() && in_flight.values().all(|n| *n == 0) {
            break;
        }
        let (ready, next) = accumulator.ready(now);
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
            let mut batches = Vec::new();
            let mut size = 0;
            for tp in partitions {
                let Some(mut batch) = accumulator.drain(&tp) else {
                    continue;
                };
                let producer_state = match (&idempotence, producer) {
                    (Some(idem), Some((id, epoch))) => {
                        let sequence = batch
                            .base_sequence
                            .unwrap_or_else(|| idem.next_sequence(&tp, batch.record_count()));
                        Some((id, epoch, sequence))
                    }
                    _ => None,
                };
                let wire = match batch.finish(producer_state) {
                    Ok(wire) => wire,
                    Err(e) => {
                        accumulator.release(&batch);
                        Counters::add(&stats.errors, 1);
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
            let network = network.clone();
            let done = done_tx.clone();
            let acks = config.acks;
            let timeout = config.request_timeout;
            let transactional_id = idempotence.as_ref().and_then(|i| i.transactional_id());
            tokio::spawn(async move {
                let result =
                    send(&network, broker, &batches, acks, timeout, transactional_id).await;
                let _ = done.send(Completed {
                    broker,
                    batches,
                    result,
                });
            });
        }
        let wait = next
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        tokio::select! {
            _ = accumulator.data_ready.notified() => {}
            completed = done_rx.recv() => {
                if let Some(completed) = completed {
                    if let Some(n) = in_flight.get_mut(&completed.broker) {
                        *n = n.saturating_sub(1);
                    }
                    Counters::sub(&stats.in_flight, 1);
                    handle(completed, &network, &accumulator, idempotence.as_deref(), &config, &stats);
                }
            }
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::debug!("sender stopped");
}

/// Sends one ProduceRequest carrying `batches` to `broker`.
async fn send(
    network: &Network,
    broker: i32,
    batches: &[ProducerBatch],
    acks: i16,
    timeout: Duration,
    transactional_id: Option<String>,
) -> Result<Option<ProduceResponse>> {
    let connection = network.broker(broker).await?;
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for batch in batches {
        let data = PartitionProduceData {
            index: batch.tp.partition,
            records: batch.wire.clone(),
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == batch.tp.topic) {
            Some(topic) => topic.partition_data.push(data),
            None => topics.push(TopicProduceData {
                name: batch.tp.topic.clone(),
                partition_data: vec![data],
                ..Default::default()
            }),
        }
    }
    let request = ProduceRequest {
        transactional_id,
        acks,
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        topic_data: topics,
        ..Default::default()
    };
    if acks == 0 {
        let version = connection.version_for::<ProduceRequest>()?;
        connection.send_without_response(&request, version).await?;
        return Ok(None);
    }
    connection.send(&request).await.map(Some)
}

fn backoff(config: &SenderConfig, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(16);
    config
        .retry_backoff
        .saturating_mul(1 << exponent)
        .min(config.retry_backoff_max.max(config.retry_backoff))
}

/// Completes, retries or fails each batch of a finished request.
fn handle(
    completed: Completed,
    network: &Arc<Network>,
    accumulator: &Accumulator,
    idempotence: Option<&Idempotence>,
    config: &SenderConfig,
    stats: &Counters,
) {
    let Completed {
        batches, result, ..
    } = completed;
    let succeeded = |batch: ProducerBatch, base_offset: i64| {
        accumulator.release(&batch);
        Counters::add(&stats.records_sent, batch.record_count() as u64);
        Counters::add(
            &stats.bytes_sent,
            batch.wire.as_ref().map_or(0, |w| w.len() as u64),
        );
        Counters::add(&stats.batches_sent, 1);
        batch.complete(base_offset);
    };
    let response = match result {
        Ok(Some(response)) => response,
        Ok(None) => {
            // acks=0: done as soon as it is written; offsets are unknown.
            for batch in batches {
                succeeded(batch, -1);
            }
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "produce request failed");
            let network = network.clone();
            tokio::spawn(async move {
                let _ = network.refresh().await;
            });
            for batch in batches {
                retry_or_fail(batch, e.clone(), accumulator, config, stats);
            }
            return;
        }
    };
    let mut refresh = false;
    for batch in batches {
        let partition = response
            .responses
            .iter()
            .filter(|t| t.name == batch.tp.topic)
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == batch.tp.partition);
        let Some(partition) = partition else {
            retry_or_fail(
                batch,
                Error::Protocol("the response left a partition out".into()),
                accumulator,
                config,
                stats,
            );
            continue;
        };
        let code =
            ErrorCode::from_code(partition.error_code).unwrap_or(ErrorCode::UnknownServerError);
        let context = format!("{}-{}", batch.tp.topic, batch.tp.partition);
        match code {
            ErrorCode::None => succeeded(batch, partition.base_offset),
            // The broker already has this batch: it was appended by an
            // earlier attempt whose response was lost.
            ErrorCode::DuplicateSequenceNumber => succeeded(batch, partition.base_offset),
            ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch => {
                refresh = true;
                retry_or_fail(
                    batch,
                    Error::kafka(code, context),
                    accumulator,
                    config,
                    stats,
                );
            }
            // A later batch arrived before an earlier retried one: it is
            // retried after it, in sequence order.
            ErrorCode::OutOfOrderSequenceNumber if idempotence.is_some() => {
                retry_or_fail(
                    batch,
                    Error::kafka(code, context),
                    accumulator,
                    config,
                    stats,
                );
            }
            code if code.retriable() => {
                retry_or_fail(
                    batch,
                    Error::kafka(code, context),
                    accumulator,
                    config,
                    stats,
                );
            }
            code => {
                accumulator.release(&batch);
                Counters::add(&stats.errors, 1);
                let message = partition.error_message.clone().unwrap_or_default();
                batch.fail(Error::kafka(code, format!("{context}: {message}")));
            }
        }
    }
    if refresh {
        let network = network.clone();
        tokio::spawn(async move {
            let _ = network.refresh().await;
        });
    }
}

fn retry_or_fail(
    batch: ProducerBatch,
    error: Error,
    accumulator: &Accumulator,
    config: &SenderConfig,
    stats: &Counters,
) {
    let expired = batch.created.elapsed() >= config.delivery_timeout;
    if !error.retriable() || expired || batch.attempts > config.retries {
        accumulator.release(&batch);
        Counters::add(&stats.errors, 1);
        batch.fail(if expired {
            Error::Timeout(format!("delivery.timeout.ms passed; last error: {error}"))
        } else {
            error
        });
        return;
    }
    tracing::debug!(topic = batch.tp.topic, partition = batch.tp.partition, attempts = batch.attempts, %error, "retrying batch");
    let delay = backoff(config, batch.attempts);
    accumulator.reenqueue(batch, delay);
}
