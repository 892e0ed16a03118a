//! Metadata: brokers, topics, partitions and their leaders.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
use uuid::Uuid;

use super::RequestContext;
use crate::state::{Topic, validate_topic_name};

/// Kafka's "not requested" value for authorized operations.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub(crate) fn handle(
    ctx: &RequestContext,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let shared = &ctx.shared;
    let running: Vec<_> = shared.brokers().into_iter().filter(|b| b.running).collect();
    // Versions before 4 have no flag and always auto-create.
    let auto_create =
        shared.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    // Version 0 used an empty list for "all topics".
    let all = request.topics.is_none()
        || (version == 0 && request.topics.as_ref().is_some_and(Vec::is_empty));
    let topics = if all {
        shared.topics().iter().map(|t| describe(ctx, t)).collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|wanted| match wanted.name {
                Some(name) => match shared.topic(&name) {
                    Some(topic) => describe(ctx, &topic),
                    None => missing(ctx, name, auto_create),
                },
                None => match shared.topic_by_id(wanted.topic_id) {
                    Some(topic) => describe(ctx, &topic),
                    None => MetadataResponseTopic {
                        error_code: ErrorCode::UnknownTopicId.code(),
                        name: None,
                        topic_id: wanted.topic_id,
                        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
                        ..Default::default()
                    },
                },
            })
            .collect()
    };
    MetadataResponse {
        brokers: running
            .iter()
            .map(|b| MetadataResponseBroker {
                node_id: b.node_id,
                host: b.host.clone(),
                port: i32::from(b.port),
                rack: None,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(shared.config.cluster_id.clone()),
        controller_id: running.first().map_or(-1, |b| b.node_id),
        topics,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

fn missing(ctx: &RequestContext, name: String, auto_create: bool) -> MetadataResponseTopic {
    let error = if let Err(reason) = validate_topic_name(&name) {
        tracing::debug!(topic = name, reason, "metadata for an invalid topic name");
        ErrorCode::InvalidTopicException
    } else if auto_create {
        let partitions = ctx.shared.config.default_partitions;
        match ctx.shared.create_topic(&name, partitions, &[]) {
            Ok(topic) => return describe(ctx, &topic),
            // Created concurrently by another request.
            Err((ErrorCode::TopicAlreadyExists, _)) => match ctx.shared.topic(&name) {
                Some(topic) => return describe(ctx, &topic),
                None => ErrorCode::LeaderNotAvailable,
            },
            Err((code, _)) => code,
        }
    } else {
        ErrorCode::UnknownTopicOrPartition
    };
    MetadataResponseTopic {
        error_code: error.code(),
        name: Some(name),
        topic_id: Uuid::nil(),
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}

fn describe(ctx: &RequestContext, topic: &Topic) -> MetadataResponseTopic {
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            let leader = p.leader();
            let up = ctx.shared.broker(leader).is_some_and(|b| b.running);
            MetadataResponsePartition {
                error_code: if up {
                    ErrorCode::None.code()
                } else {
                    ErrorCode::LeaderNotAvailable.code()
                },
                partition_index: p.index,
                leader_id: if up { leader } else { -1 },
                leader_epoch: p.leader_epoch(),
                replica_nodes: vec![leader],
                isr_nodes: if up { vec![leader] } else { Vec::new() },
                offline_replicas: if up { Vec::new() } else { vec![leader] },
                ..Default::default()
            }
        })
        .collect();
    MetadataResponseTopic {
        error_code: ErrorCode::None.code(),
        name: Some(topic.name.clone()),
        topic_id: topic.id,
        is_internal: false,
        partitions,
        topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    }
}
