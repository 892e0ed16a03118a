//! The two admin calls a test cluster needs, CreateTopics and Metadata.
//! kafka-client has no admin client yet, and the child-process and Docker
//! modes have no in-process handle to create topics through; its network
//! layer does the talking, TLS and SASL included.

use std::time::Duration;

use kafka_client::network::{Connection, Network, NetworkConfig, Security};
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
};

use crate::TopicSpec;
use crate::error::{Error, Result};

/// CreateTopics v5 is flexible and understood by Kafka 2.4 onwards and by
/// the bundled broker (2..=7); Kafka 4 dropped only v0 and v1.
const CREATE_TOPICS_VERSION: i16 = 5;
/// Metadata v9: flexible, topic names (not ids), Kafka 2.4+.
const METADATA_VERSION: i16 = 9;

fn first_server(bootstrap: &str) -> Result<&str> {
    bootstrap
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .ok_or_else(|| Error::Config(format!("no bootstrap server in `{bootstrap}`")))
}

/// A connection to the first bootstrap server, secured as `security` says.
async fn connect(
    bootstrap: &str,
    security: &Security,
    timeout: Duration,
) -> Result<(std::sync::Arc<Network>, Connection)> {
    let broker = first_server(bootstrap)?;
    let mut config = NetworkConfig::new(vec![broker.to_owned()]);
    config.client_id = Some("kafka-testcontainers".into());
    config.request_timeout = timeout;
    config.connection_setup_timeout = timeout;
    config.security = security.clone();
    let network = Network::new(config)?;
    let connection = network.connect(broker).await?;
    Ok((network, connection))
}

/// Creates `topic` through the broker at the head of `bootstrap`, then waits
/// (within `timeout`) until Metadata shows a leader for every partition.
pub(crate) async fn create_topic(
    bootstrap: &str,
    security: &Security,
    topic: &TopicSpec,
    timeout: Duration,
) -> Result<()> {
    let (_network, connection) = connect(bootstrap, security, timeout).await?;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.name.clone(),
            num_partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: topic
                .configs
                .iter()
                .map(|(name, value)| CreatableTopicConfig {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        ..Default::default()
    };
    let response: CreateTopicsResponse = connection.call(&request, CREATE_TOPICS_VERSION).await?;
    for result in response.topics {
        let code = ErrorCode::from_code(result.error_code).unwrap_or(ErrorCode::UnknownServerError);
        if !code.is_ok() {
            return Err(Error::Kafka {
                operation: "create topic",
                name: result.name,
                code,
                message: result.error_message,
            });
        }
    }
    // A real Kafka answers CreateTopics before every broker's metadata
    // cache knows the leaders; a producer started at once would see
    // LEADER_NOT_AVAILABLE and back off for a while.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Duration::from_millis(5);
    loop {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.name.clone()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let response: MetadataResponse = connection.call(&request, METADATA_VERSION).await?;
        let ready = response.topics.iter().any(|t| {
            t.error_code == 0
                && t.name.as_deref() == Some(topic.name.as_str())
                && !t.partitions.is_empty()
                && t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id >= 0)
        });
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() + backoff > deadline {
            return Err(Error::Timeout {
                what: format!("leaders for every partition of `{}`", topic.name),
                waited: timeout,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}
