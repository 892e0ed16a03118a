//! DescribeConfigs: enough for clients and tools that read topic and
//! broker settings at start-up.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::RequestContext;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
/// Kafka's config sources: set on the topic, or a default.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub(crate) fn describe(
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let config = &ctx.shared.config;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let mut result = DescribeConfigsResult {
                resource_type: resource.resource_type,
                resource_name: resource.resource_name.clone(),
                ..Default::default()
            };
            // (name, value, set explicitly)
            let entries: Vec<(String, String, bool)> = match resource.resource_type {
                TOPIC => match ctx.shared.topic(&resource.resource_name) {
                    Some(topic) => {
                        let topic_config = topic.config();
                        let mut entries = vec![
                            ("cleanup.policy".to_owned(), "delete".to_owned(), false),
                            (
                                "retention.ms".to_owned(),
                                topic_config.retention_ms.to_string(),
                                false,
                            ),
                            (
                                "retention.bytes".to_owned(),
                                topic_config.retention_bytes.to_string(),
                                false,
                            ),
                            (
                                "max.message.bytes".to_owned(),
                                config.message_max_bytes.to_string(),
                                false,
                            ),
                            (
                                "message.timestamp.type".to_owned(),
                                "CreateTime".to_owned(),
                                false,
                            ),
                        ];
                        for (name, value) in &topic_config.entries {
                            entries.retain(|(n, _, _)| n != name);
                            entries.push((name.clone(), value.clone(), true));
                        }
                        entries
                    }
                    None => {
                        result.error_code = ErrorCode::UnknownTopicOrPartition.code();
                        result.error_message =
                            Some(format!("topic `{}` does not exist", resource.resource_name));
                        Vec::new()
                    }
                },
                BROKER => vec![
                    (
                        "message.max.bytes".to_owned(),
                        config.message_max_bytes.to_string(),
                        false,
                    ),
                    (
                        "num.partitions".to_owned(),
                        config.default_partitions.to_string(),
                        false,
                    ),
                    (
                        "auto.create.topics.enable".to_owned(),
                        config.auto_create_topics.to_string(),
                        false,
                    ),
                    (
                        "log.retention.ms".to_owned(),
                        config.retention_ms.to_string(),
                        false,
                    ),
                    (
                        "transaction.max.timeout.ms".to_owned(),
                        config.transaction_max_timeout_ms.to_string(),
                        false,
                    ),
                ],
                other => {
                    result.error_code = ErrorCode::InvalidRequest.code();
                    result.error_message = Some(format!("resource type {other} is not supported"));
                    Vec::new()
                }
            };
            result.configs = entries
                .into_iter()
                .filter(|(name, _, _)| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k == name))
                })
                .map(|(name, value, explicit)| DescribeConfigsResourceResult {
                    name,
                    value: Some(value),
                    // Version 0 has a flag; later versions name the source.
                    is_default: version == 0 && !explicit,
                    config_source: if explicit {
                        SOURCE_TOPIC
                    } else {
                        SOURCE_DEFAULT
                    },
                    ..Default::default()
                })
                .collect();
            result
        })
        .collect();
    DescribeConfigsResponse {
        results,
        ..Default::default()
    }
}
