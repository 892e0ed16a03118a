//! Error answers for the fault API: the response a broker would send if
//! every part of the request failed with one code, built without applying
//! the request.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::{self as m, RequestKind, ResponseKind};

/// The response to `request` with `code` everywhere an error code goes;
/// `None` for APIs this does not cover (they are then served normally).
pub(crate) fn error_response(
    request: &RequestKind,
    version: i16,
    code: ErrorCode,
) -> Option<ResponseKind> {
    let error = code.code();
    Some(match request {
        RequestKind::Produce(r) => ResponseKind::Produce(m::ProduceResponse {
            responses: r
                .topic_data
                .iter()
                .map(|t| m::produce_response::TopicProduceResponse {
                    name: t.name.clone(),
                    partition_responses: t
                        .partition_data
                        .iter()
                        .map(|p| m::produce_response::PartitionProduceResponse {
                            index: p.index,
                            error_code: error,
                            base_offset: -1,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::Fetch(r) => ResponseKind::Fetch(m::FetchResponse {
            responses: r
                .topics
                .iter()
                .map(|t| m::fetch_response::FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| m::fetch_response::PartitionData {
                            partition_index: p.partition,
                            error_code: error,
                            high_watermark: -1,
                            records: Some(bytes::Bytes::new()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(m::ListOffsetsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| m::list_offsets_response::ListOffsetsTopicResponse {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| m::list_offsets_response::ListOffsetsPartitionResponse {
                            partition_index: p.partition_index,
                            error_code: error,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::DeleteRecords(r) => ResponseKind::DeleteRecords(m::DeleteRecordsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| m::delete_records_response::DeleteRecordsTopicResult {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| m::delete_records_response::DeleteRecordsPartitionResult {
                            partition_index: p.partition_index,
                            low_watermark: -1,
                            error_code: error,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(m::AlterConfigsResponse {
            responses: r
                .resources
                .iter()
                .map(|res| m::alter_configs_response::AlterConfigsResourceResponse {
                    error_code: error,
                    resource_type: res.resource_type,
                    resource_name: res.resource_name.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(m::IncrementalAlterConfigsResponse {
                responses: r
                    .resources
                    .iter()
                    .map(|res| m::incremental_alter_configs_response::AlterConfigsResourceResponse {
                        error_code: error,
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        RequestKind::OffsetDelete(_) => ResponseKind::OffsetDelete(m::OffsetDeleteResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::DescribeCluster(_) => {
            ResponseKind::DescribeCluster(m::DescribeClusterResponse {
                error_code: error,
                controller_id: -1,
                ..Default::default()
            })
        }
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(if version >= 4 {
            m::FindCoordinatorResponse {
                coordinators: r
                    .coordinator_keys
                    .iter()
                    .map(|key| m::find_coordinator_response::Coordinator {
                        key: key.clone(),
                        node_id: -1,
                        port: -1,
                        error_code: error,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        } else {
            m::FindCoordinatorResponse {
                error_code: error,
                node_id: -1,
                port: -1,
                ..Default::default()
            }
        }),
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(m::JoinGroupResponse {
            error_code: error,
            generation_id: -1,
            member_id: r.member_id.clone(),
            ..Default::default()
        }),
        RequestKind::SyncGroup(_) => ResponseKind::SyncGroup(m::SyncGroupResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::Heartbeat(_) => ResponseKind::Heartbeat(m::HeartbeatResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::LeaveGroup(_) => ResponseKind::LeaveGroup(m::LeaveGroupResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(m::OffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| m::offset_commit_response::OffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| m::offset_commit_response::OffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: error,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::OffsetFetch(r) if version >= 8 => ResponseKind::OffsetFetch(m::OffsetFetchResponse {
            groups: r
                .groups
                .iter()
                .map(|g| m::offset_fetch_response::OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    error_code: error,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        // Versions before 2 have no top-level code: the error goes on each partition.
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(m::OffsetFetchResponse {
            error_code: if version >= 2 { error } else { 0 },
            topics: r
                .topics
                .iter()
                .flatten()
                .map(|t| m::offset_fetch_response::OffsetFetchResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partition_indexes
                        .iter()
                        .map(|&p| m::offset_fetch_response::OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: -1,
                            error_code: error,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(m::InitProducerIdResponse {
            error_code: error,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        }),
        RequestKind::EndTxn(_) => ResponseKind::EndTxn(m::EndTxnResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::AddOffsetsToTxn(_) => ResponseKind::AddOffsetsToTxn(m::AddOffsetsToTxnResponse {
            error_code: error,
            ..Default::default()
        }),
        RequestKind::AddPartitionsToTxn(r) if version <= 3 => {
            ResponseKind::AddPartitionsToTxn(m::AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: r
                    .v3_and_below_topics
                    .iter()
                    .map(|t| m::add_partitions_to_txn_response::AddPartitionsToTxnTopicResult {
                        name: t.name.clone(),
                        results_by_partition: t
                            .partitions
                            .iter()
                            .map(|&p| m::add_partitions_to_txn_response::AddPartitionsToTxnPartitionResult {
                                partition_index: p,
                                partition_error_code: error,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(m::TxnOffsetCommitResponse {
            topics: r
                .topics
                .iter()
                .map(|t| m::txn_offset_commit_response::TxnOffsetCommitResponseTopic {
                    name: t.name.clone(),
                    partitions: t
                        .partitions
                        .iter()
                        .map(|p| m::txn_offset_commit_response::TxnOffsetCommitResponsePartition {
                            partition_index: p.partition_index,
                            error_code: error,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(m::CreateTopicsResponse {
            topics: r
                .topics
                .iter()
                .map(|t| m::create_topics_response::CreatableTopicResult {
                    name: t.name.clone(),
                    error_code: error,
                    num_partitions: -1,
                    replication_factor: -1,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::DescribeGroups(r) => ResponseKind::DescribeGroups(m::DescribeGroupsResponse {
            groups: r
                .groups
                .iter()
                .map(|g| m::describe_groups_response::DescribedGroup {
                    group_id: g.clone(),
                    error_code: error,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        RequestKind::DeleteGroups(r) => ResponseKind::DeleteGroups(m::DeleteGroupsResponse {
            results: r
                .groups_names
                .iter()
                .map(|g| m::delete_groups_response::DeletableGroupResult {
                    group_id: g.clone(),
                    error_code: error,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        _ => return None,
    })
}
