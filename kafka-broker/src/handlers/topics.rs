//! CreateTopics, DeleteTopics and CreatePartitions.
//!
//! Every partition has one replica, its leader; a replication factor up to
//! the number of brokers is accepted (and reported) so that tools that ask
//! for 3 on a 3-broker cluster work, but data lives on the leader only.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use uuid::Uuid;

use super::RequestContext;
use crate::state::{MAX_PARTITIONS, validate_topic_name};

/// Kafka's `config_source` for a topic-level setting.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;

pub(crate) fn create(ctx: &RequestContext, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let shared = &ctx.shared;
    let brokers = shared.brokers().len() as i16;
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = if topic.num_partitions == -1 {
                shared.config.default_partitions
            } else {
                topic.num_partitions
            };
            let replication = if topic.replication_factor == -1 {
                1
            } else {
                topic.replication_factor
            };
            let configs: Vec<(String, Option<String>)> = topic
                .configs
                .iter()
                .map(|c| (c.name.clone(), c.value.clone()))
                .collect();
            let mut result = CreatableTopicResult {
                name: topic.name.clone(),
                topic_id: Uuid::nil(),
                num_partitions: -1,
                replication_factor: -1,
                ..Default::default()
            };
            let outcome = if !topic.assignments.is_empty() {
                Err((
                    ErrorCode::InvalidRequest,
                    "manual replica assignments are not supported by this broker".to_owned(),
                ))
            } else if replication < 1 || replication > brokers {
                Err((
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {replication} with {brokers} brokers"),
                ))
            } else if request.validate_only {
                validate_topic_name(&topic.name)
                    .map_err(|m| (ErrorCode::InvalidTopicException, m))
                    .and_then(|()| match shared.topic(&topic.name) {
                        Some(_) => Err((
                            ErrorCode::TopicAlreadyExists,
                            format!("topic `{}` already exists", topic.name),
                        )),
                        None if (1..=MAX_PARTITIONS).contains(&partitions) => Ok(None),
                        None => Err((
                            ErrorCode::InvalidPartitions,
                            format!("{partitions} partitions"),
                        )),
                    })
            } else {
                shared
                    .create_topic(&topic.name, partitions, &configs)
                    .map(Some)
            };
            match outcome {
                Ok(created) => {
                    result.topic_id = created.as_ref().map_or(Uuid::nil(), |t| t.id);
                    result.num_partitions = partitions;
                    result.replication_factor = replication;
                    result.configs = Some(
                        configs
                            .into_iter()
                            .map(|(name, value)| CreatableTopicConfigs {
                                name,
                                value,
                                config_source: DYNAMIC_TOPIC_CONFIG,
                                ..Default::default()
                            })
                            .collect(),
                    );
                }
                Err((code, message)) => {
                    result.error_code = code.code();
                    result.error_message = Some(message);
                }
            }
            result
        })
        .collect();
    CreateTopicsResponse {
        topics,
        ..Default::default()
    }
}

pub(crate) fn delete(ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let shared = &ctx.shared;
    // Versions before 6 name topics; 6 and later may name or identify them.
    let wanted: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .into_iter()
        .map(|name| (Some(name), Uuid::nil()))
        .chain(request.topics.into_iter().map(|t| (t.name, t.topic_id)))
        .collect();
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let topic = match &name {
                Some(name) => shared.topic(name),
                None => shared.topic_by_id(id),
            };
            match topic.and_then(|t| shared.delete_topic(&t.name)) {
                Some(deleted) => DeletableTopicResult {
                    name: Some(deleted.name.clone()),
                    topic_id: deleted.id,
                    ..Default::default()
                },
                None => DeletableTopicResult {
                    error_code: if name.is_some() {
                        ErrorCode::UnknownTopicOrPartition.code()
                    } else {
                        ErrorCode::UnknownTopicId.code()
                    },
                    name,
                    topic_id: id,
                    ..Default::default()
                },
            }
        })
        .collect();
    DeleteTopicsResponse {
        responses,
        ..Default::default()
    }
}

pub(crate) fn create_partitions(
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let outcome = if request.validate_only {
                match ctx.shared.topic(&topic.name) {
                    None => Err((
                        ErrorCode::UnknownTopicOrPartition,
                        "no such topic".to_owned(),
                    )),
                    Some(t)
                        if topic.count <= t.partition_count() || topic.count > MAX_PARTITIONS =>
                    {
                        Err((
                            ErrorCode::InvalidPartitions,
                            format!("{} partitions", topic.count),
                        ))
                    }
                    Some(_) => Ok(()),
                }
            } else {
                ctx.shared.add_partitions(&topic.name, topic.count)
            };
            let (error_code, error_message) = match outcome {
                Ok(()) => (ErrorCode::None.code(), None),
                Err((code, message)) => (code.code(), Some(message)),
            };
            CreatePartitionsTopicResult {
                name: topic.name,
                error_code,
                error_message,
                ..Default::default()
            }
        })
        .collect();
    CreatePartitionsResponse {
        results,
        ..Default::default()
    }
}
