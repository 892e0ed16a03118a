//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) or by time.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::RequestContext;
use crate::state::lock;

pub(crate) fn handle(
    ctx: &RequestContext,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let read_committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let found = ctx.shared.topic(&topic.name);
            ListOffsetsTopicResponse {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let mut out = ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            timestamp: -1,
                            offset: -1,
                            leader_epoch: -1,
                            ..Default::default()
                        };
                        let Some(partition) =
                            found.as_ref().and_then(|t| t.partition(p.partition_index))
                        else {
                            out.error_code = ErrorCode::UnknownTopicOrPartition.code();
                            return out;
                        };
                        if partition.leader() != ctx.broker_id {
                            out.error_code = ErrorCode::NotLeaderOrFollower.code();
                            return out;
                        }
                        let log = lock(&partition.log);
                        let upper = if read_committed {
                            log.last_stable_offset()
                        } else {
                            log.high_watermark()
                        };
                        let found = log.offset_for(p.timestamp, upper);
                        // Each field exists only from a version on; setting it
                        // earlier would be refused by the encoder.
                        if version == 0 {
                            if let Some((_, offset)) = found.filter(|_| p.max_num_offsets > 0) {
                                out.old_style_offsets = vec![offset];
                            }
                        } else if let Some((timestamp, offset)) = found {
                            out.timestamp = timestamp;
                            out.offset = offset;
                            if version >= 4 {
                                out.leader_epoch = partition.leader_epoch();
                            }
                        }
                        out
                    })
                    .collect(),
                name: topic.name,
                ..Default::default()
            }
        })
        .collect();
    ListOffsetsResponse {
        topics,
        ..Default::default()
    }
}
