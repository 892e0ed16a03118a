//! OffsetDelete: the handler's part (coordinator and topic checks) around
//! [`GroupCoordinator::delete_offsets`](crate::coordinator::group::GroupCoordinator::delete_offsets).
//!
//! As in Kafka's `KafkaApis.handleOffsetDeleteRequest`, partitions of topics
//! this cluster does not have are answered UNKNOWN_TOPIC_OR_PARTITION and the
//! rest go to the coordinator; an error for the whole group answers alone,
//! with no partitions.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use super::groups::is_coordinator;

pub(crate) fn handle(ctx: &RequestContext, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let refused = |code: ErrorCode| OffsetDeleteResponse {
        error_code: code.code(),
        ..Default::default()
    };
    if request.group_id.is_empty() {
        return refused(ErrorCode::InvalidGroupId);
    }
    if !is_coordinator(ctx, &request.group_id) {
        return refused(ErrorCode::NotCoordinator);
    }
    // Request order, each partition with whether its topic exists here.
    let wanted: Vec<(String, i32, bool)> = request
        .topics
        .iter()
        .flat_map(|topic| {
            let found = ctx.shared.topic(&topic.name);
            topic.partitions.iter().map(move |p| {
                let exists = found
                    .as_ref()
                    .is_some_and(|t| t.partition(p.partition_index).is_some());
                (topic.name.clone(), p.partition_index, exists)
            })
        })
        .collect();
    let existing: Vec<(String, i32)> = wanted
        .iter()
        .filter(|(_, _, exists)| *exists)
        .map(|(topic, partition, _)| (topic.clone(), *partition))
        .collect();
    let mut deleted = match ctx
        .shared
        .groups
        .delete_offsets(&request.group_id, &existing)
    {
        Ok(errors) => errors.into_iter(),
        Err(code) => return refused(code),
    };
    ctx.shared.persist_offsets();
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for (topic, partition, exists) in wanted {
        let error = if exists {
            deleted.next().unwrap_or(ErrorCode::UnknownServerError)
        } else {
            ErrorCode::UnknownTopicOrPartition
        };
        let answer = OffsetDeleteResponsePartition {
            partition_index: partition,
            error_code: error.code(),
        };
        match topics.last_mut() {
            Some(last) if last.name == topic => last.partitions.push(answer),
            _ => topics.push(OffsetDeleteResponseTopic {
                name: topic,
                partitions: vec![answer],
            }),
        }
    }
    OffsetDeleteResponse {
        topics,
        ..Default::default()
    }
}
