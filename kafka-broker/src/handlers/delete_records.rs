//! DeleteRecords: moves partitions' log start offsets forward (KIP-107).
//!
//! Answered per partition by its leader, as Kafka's ReplicaManager does:
//! another broker says NOT_LEADER_OR_FOLLOWER so the admin client looks the
//! leader up again. With one replica per partition the low watermark in the
//! answer is the leader's new log start offset.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::RequestContext;
use crate::state::lock;

pub(crate) fn handle(ctx: &RequestContext, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = ctx.shared.topic(&topic.name);
            DeleteRecordsTopicResult {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let outcome =
                            match found.as_ref().and_then(|t| t.partition(p.partition_index)) {
                                None => Err(ErrorCode::UnknownTopicOrPartition),
                                Some(partition) if partition.leader() != ctx.broker_id => {
                                    Err(ErrorCode::NotLeaderOrFollower)
                                }
                                Some(partition) => lock(&partition.log).delete_records(p.offset),
                            };
                        let (low_watermark, error) = match outcome {
                            Ok(start) => (start, ErrorCode::None),
                            Err(code) => (-1, code),
                        };
                        if error == ErrorCode::None {
                            tracing::info!(
                                topic = topic.name,
                                partition = p.partition_index,
                                log_start_offset = low_watermark,
                                "records deleted"
                            );
                        }
                        DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark,
                            error_code: error.code(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                name: topic.name,
                ..Default::default()
            }
        })
        .collect();
    DeleteRecordsResponse {
        topics,
        ..Default::default()
    }
}
