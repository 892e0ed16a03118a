//! Produce: validate each partition's batch and append it to the leader's log.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::RequestContext;
use crate::log::{AppendError, ValidBatch};
use crate::state::lock;

/// Appends and answers; `None` for `acks=0`, which gets no response.
pub(crate) fn handle(ctx: &RequestContext, request: ProduceRequest) -> Option<ProduceResponse> {
    let acks_valid = matches!(request.acks, -1..=1);
    let mut appended = false;
    let responses = request
        .topic_data
        .into_iter()
        .map(|topic| TopicProduceResponse {
            partition_responses: topic
                .partition_data
                .into_iter()
                .map(|data| {
                    let result = if acks_valid {
                        append(ctx, &topic.name, data.index, data.records.as_ref())
                    } else {
                        Err(AppendError::new(
                            ErrorCode::InvalidRequiredAcks,
                            format!("acks={} is not -1, 0 or 1", request.acks),
                        ))
                    };
                    match result {
                        Ok((base_offset, log_start_offset)) => {
                            appended = true;
                            PartitionProduceResponse {
                                index: data.index,
                                base_offset,
                                log_start_offset,
                                log_append_time_ms: -1,
                                ..Default::default()
                            }
                        }
                        Err(e) => {
                            tracing::debug!(topic = topic.name, partition = data.index, code = %e.code, message = e.message, "produce refused");
                            PartitionProduceResponse {
                                index: data.index,
                                error_code: e.code.code(),
                                error_message: Some(e.message),
                                base_offset: -1,
                                log_append_time_ms: -1,
                                log_start_offset: -1,
                                ..Default::default()
                            }
                        }
                    }
                })
                .collect(),
            name: topic.name,
            ..Default::default()
        })
        .collect();
    if appended {
        ctx.shared.appended.notify_waiters();
    }
    (request.acks != 0).then_some(ProduceResponse {
        responses,
        ..Default::default()
    })
}

fn append(
    ctx: &RequestContext,
    topic: &str,
    partition: i32,
    records: Option<&bytes::Bytes>,
) -> Result<(i64, i64), AppendError> {
    let unknown = || {
        AppendError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        )
    };
    let partition = ctx
        .shared
        .topic(topic)
        .ok_or_else(unknown)?
        .partition(partition)
        .ok_or_else(unknown)?;
    if partition.leader() != ctx.broker_id {
        return Err(AppendError::new(
            ErrorCode::NotLeaderOrFollower,
            format!(
                "broker {} does not lead {topic}-{}; broker {} does",
                ctx.broker_id,
                partition.index,
                partition.leader()
            ),
        ));
    }
    let records =
        records.ok_or_else(|| AppendError::new(ErrorCode::InvalidRecord, "null records"))?;
    let batch = ValidBatch::parse(records, ctx.shared.config.message_max_bytes)?;
    if batch.is_control() {
        return Err(AppendError::new(
            ErrorCode::InvalidRecord,
            "producers may not write control batches",
        ));
    }
    let appended = if batch.is_transactional() {
        let (producer_id, epoch) = batch.producer();
        ctx.shared
            .txns
            .produce(producer_id, epoch, topic, partition.index, || {
                lock(&partition.log).append(batch)
            })
            .map_err(|code| {
                AppendError::new(
                    code,
                    format!("transactional batch from producer {producer_id} epoch {epoch} for {topic}-{}", partition.index),
                )
            })??
    } else {
        lock(&partition.log).append(batch)?
    };
    Ok((appended.base_offset, appended.log_start_offset))
}
