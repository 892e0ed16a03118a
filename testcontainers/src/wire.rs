//! Creating a topic over the wire, for the child-process and Docker modes,
//! which have no in-process handle: kafka-client's admin client does the
//! talking, TLS and SASL included.

use std::time::Duration;

use kafka_client::admin::{Admin, AdminSettings, NewTopic};
use kafka_client::network::Security;
use kafka_protocol::ErrorCode;

use crate::TopicSpec;
use crate::error::{Error, Result};

/// Creates `topic` through the brokers of `bootstrap`, then waits (within
/// `timeout`) until every partition has a leader.
pub(crate) async fn create_topic(
    bootstrap: &str,
    security: &Security,
    topic: &TopicSpec,
    timeout: Duration,
) -> Result<()> {
    let mut settings = AdminSettings::new(bootstrap);
    if settings.network.bootstrap_servers.is_empty() {
        return Err(Error::Config(format!(
            "no bootstrap server in `{bootstrap}`"
        )));
    }
    settings.network.client_id = Some("kafka-testcontainers".into());
    settings.network.request_timeout = timeout;
    settings.network.connection_setup_timeout = timeout;
    settings.network.security = security.clone();
    settings.default_api_timeout = timeout;
    let admin = Admin::new(settings)?;
    let mut new =
        NewTopic::new(&topic.name, topic.partitions).replication_factor(topic.replication_factor);
    for (name, value) in &topic.configs {
        new = new.config(name, value);
    }
    let created = admin.create_topics(&[new]).await?;
    if let Some(Err(e)) = created.get(&topic.name) {
        return Err(match e.code() {
            Some(code) => Error::Kafka {
                operation: "create topic",
                name: topic.name.clone(),
                code,
                message: Some(e.to_string()),
            },
            None => Error::Network {
                broker: bootstrap.to_owned(),
                reason: e.to_string(),
            },
        });
    }
    // A real Kafka answers CreateTopics before every broker's metadata
    // cache knows the leaders; a producer started at once would see
    // LEADER_NOT_AVAILABLE and back off for a while.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Duration::from_millis(5);
    loop {
        let described = admin.describe_topics(&[topic.name.as_str()]).await?;
        let ready = match described.get(&topic.name) {
            Some(Ok(d)) => {
                !d.partitions.is_empty() && d.partitions.iter().all(|p| p.leader.is_some())
            }
            // Not in every broker's cache yet.
            Some(Err(e)) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => false,
            Some(Err(e)) => {
                return Err(Error::Client(kafka_client::Error::Protocol(e.to_string())));
            }
            None => false,
        };
        if ready {
            admin.close();
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
