//! Creating, deleting, growing, listing and describing topics.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest};

use super::{Admin, Answer, Outcome, check, millis};
use crate::network::Connection;
use crate::{Error, Result};

/// Codes after which a topic call asks the controller again.
const CONTROLLER_MOVED: &[ErrorCode] = &[
    ErrorCode::NotController,
    ErrorCode::ThrottlingQuotaExceeded,
    ErrorCode::RequestTimedOut,
];

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// Its partitions; -1 for the broker's `num.partitions` (KIP-464).
    pub partitions: i32,
    /// Copies of each partition; -1 for the broker's
    /// `default.replication.factor` (KIP-464).
    pub replication_factor: i16,
    /// Topic configs, such as `retention.ms`.
    pub configs: BTreeMap<String, String>,
    /// Explicit replica placement, by partition (instead of `partitions`
    /// and `replication_factor`).
    pub assignments: BTreeMap<i32, Vec<i32>>,
}

impl NewTopic {
    /// `partitions` partitions, with the broker's default replication.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        Self {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: BTreeMap::new(),
            assignments: BTreeMap::new(),
        }
    }

    /// Sets the replication factor.
    pub fn replication_factor(mut self, factor: i16) -> Self {
        self.replication_factor = factor;
        self
    }

    /// Sets a topic config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }

    /// Places `partition` on `brokers` (the first is the preferred leader).
    pub fn assignment(mut self, partition: i32, brokers: Vec<i32>) -> Self {
        self.assignments.insert(partition, brokers);
        self
    }
}

/// How a topic call runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicOptions {
    /// Only check that the call would succeed; change nothing.
    pub validate_only: bool,
    /// Instead of `default.api.timeout.ms`.
    pub timeout: Option<Duration>,
}

/// A topic, as [`Admin::list_topics`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// The topic's name.
    pub name: String,
    /// Its id (KIP-516), nil when the broker does not report one.
    pub topic_id: uuid::Uuid,
    /// Whether it is one of Kafka's own (`__consumer_offsets`).
    pub internal: bool,
}

/// A topic's partitions and replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its id (KIP-516), nil when the broker does not report one.
    pub topic_id: uuid::Uuid,
    /// Whether it is one of Kafka's own.
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

/// One partition of a [`TopicDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id, if it has one.
    pub leader: Option<i32>,
    /// The brokers holding a copy.
    pub replicas: Vec<i32>,
    /// The copies in sync with the leader.
    pub isr: Vec<i32>,
    /// Copies on brokers that are down.
    pub offline: Vec<i32>,
}

impl Admin {
    /// Creates topics; each succeeds or fails on its own (for example with
    /// TOPIC_ALREADY_EXISTS).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<Outcome<String>> {
        self.create_topics_with(topics, &TopicOptions::default())
            .await
    }

    /// [`create_topics`](Self::create_topics), validating only or with its
    /// own timeout.
    pub async fn create_topics_with(
        &self,
        topics: &[NewTopic],
        options: &TopicOptions,
    ) -> Result<Outcome<String>> {
        let deadline = self.deadline(options.timeout);
        let by_name: BTreeMap<&str, &NewTopic> =
            topics.iter().map(|t| (t.name.as_str(), t)).collect();
        let by_name = &by_name;
        self.per_item(
            deadline,
            "CreateTopics",
            topics.iter().map(|t| t.name.clone()),
            |names| async move {
                let controller = self.controller().await?;
                let version = controller.version_for::<CreateTopicsRequest>()?;
                let request = CreateTopicsRequest {
                    topics: names
                        .iter()
                        .filter_map(|name| by_name.get(name.as_str()))
                        .map(|t| creatable(t))
                        .collect(),
                    timeout_ms: millis(deadline),
                    validate_only: options.validate_only,
                    ..Default::default()
                };
                if version < 4
                    && request
                        .topics
                        .iter()
                        .any(|t| t.num_partitions < 0 || t.replication_factor < 0)
                {
                    return Err(Error::kafka(
                        ErrorCode::UnsupportedVersion,
                        "the broker's CreateTopics is older than v4: give partitions and a replication factor",
                    ));
                }
                let response = controller.call(&request, version).await?;
                Ok(response
                    .topics
                    .into_iter()
                    .map(|t| {
                        let result = check(
                            t.error_code,
                            t.error_message.as_deref(),
                            &format!("create topic {}", t.name),
                        );
                        (t.name, Answer::of(result, CONTROLLER_MOVED))
                    })
                    .collect())
            },
        )
        .await
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Outcome<String>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "DeleteTopics",
            names.iter().map(|n| (*n).to_owned()),
            |names| async move {
                let controller = self.controller().await?;
                let version = controller.version_for::<DeleteTopicsRequest>()?;
                let request = if version >= 6 {
                    DeleteTopicsRequest {
                        topics: names
                            .iter()
                            .map(|name| DeleteTopicState {
                                name: Some(name.clone()),
                                ..Default::default()
                            })
                            .collect(),
                        timeout_ms: millis(deadline),
                        ..Default::default()
                    }
                } else {
                    DeleteTopicsRequest {
                        topic_names: names.clone(),
                        timeout_ms: millis(deadline),
                        ..Default::default()
                    }
                };
                let response = controller.call(&request, version).await?;
                Ok(response
                    .responses
                    .into_iter()
                    .filter_map(|t| {
                        let name = t.name?;
                        let result = check(
                            t.error_code,
                            t.error_message.as_deref(),
                            &format!("delete topic {name}"),
                        );
                        Some((name, Answer::of(result, CONTROLLER_MOVED)))
                    })
                    .collect())
            },
        )
        .await
    }

    /// Grows topics to the given partition counts (never shrinks).
    pub async fn create_partitions(
        &self,
        totals: &BTreeMap<String, i32>,
        options: &TopicOptions,
    ) -> Result<Outcome<String>> {
        let deadline = self.deadline(options.timeout);
        self.per_item(
            deadline,
            "CreatePartitions",
            totals.keys().cloned(),
            |names| async move {
                let controller = self.controller().await?;
                let version = controller.version_for::<CreatePartitionsRequest>()?;
                let request = CreatePartitionsRequest {
                    topics: names
                        .iter()
                        .filter_map(|name| {
                            Some(CreatePartitionsTopic {
                                name: name.clone(),
                                count: *totals.get(name)?,
                                assignments: None,
                                ..Default::default()
                            })
                        })
                        .collect(),
                    timeout_ms: millis(deadline),
                    validate_only: options.validate_only,
                    ..Default::default()
                };
                let response = controller.call(&request, version).await?;
                Ok(response
                    .results
                    .into_iter()
                    .map(|t| {
                        let result = check(
                            t.error_code,
                            t.error_message.as_deref(),
                            &format!("create partitions of {}", t.name),
                        );
                        (t.name, Answer::of(result, CONTROLLER_MOVED))
                    })
                    .collect())
            },
        )
        .await
    }

    /// Every topic, without Kafka's internal ones unless `internal`.
    pub async fn list_topics(&self, internal: bool) -> Result<Vec<TopicListing>> {
        let deadline = self.deadline(None);
        let response = self
            .retrying(deadline, "Metadata", || self.network.describe_topics(None))
            .await?;
        let mut topics: Vec<TopicListing> = response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0 && (internal || !t.is_internal))
            .filter_map(|t| {
                Some(TopicListing {
                    name: t.name?,
                    topic_id: t.topic_id,
                    internal: t.is_internal,
                })
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Every topic, described, without Kafka's internal ones unless
    /// `internal`: one Metadata request, as the consumer's `list_topics`.
    pub(crate) async fn describe_all_topics(
        &self,
        internal: bool,
    ) -> Result<BTreeMap<String, TopicDescription>> {
        let deadline = self.deadline(None);
        let response = self
            .retrying(deadline, "Metadata", || self.network.describe_topics(None))
            .await?;
        Ok(response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0 && (internal || !t.is_internal))
            .filter_map(|t| {
                let name = t.name.clone()?;
                Some((name.clone(), describe(t, name)))
            })
            .collect())
    }

    /// Describes topics; an unknown one fails with UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn describe_topics(
        &self,
        names: &[&str],
    ) -> Result<Outcome<String, TopicDescription>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "Metadata",
            names.iter().map(|n| (*n).to_owned()),
            |names| async move {
                let response = self.network.describe_topics(Some(&names)).await?;
                Ok(response
                    .topics
                    .into_iter()
                    .filter_map(|t| {
                        let name = t.name.clone()?;
                        // Right after creation a partition may have no
                        // leader yet: asked again. Unknown is final.
                        let result = check(t.error_code, None, &format!("describe topic {name}"))
                            .map(|()| describe(t, name.clone()));
                        Some((name, Answer::of(result, &[ErrorCode::LeaderNotAvailable])))
                    })
                    .collect())
            },
        )
        .await
    }

    /// A connection to the controller, or to any broker when the cluster
    /// names none (KRaft brokers forward to the controller).
    pub(super) async fn controller(&self) -> Result<Connection> {
        let metadata = self.network.refresh().await?;
        if metadata.controller >= 0 && metadata.brokers.contains_key(&metadata.controller) {
            return self.network.broker(metadata.controller).await;
        }
        self.network.any().await
    }
}

fn creatable(topic: &NewTopic) -> CreatableTopic {
    let explicit = !topic.assignments.is_empty();
    CreatableTopic {
        name: topic.name.clone(),
        num_partitions: if explicit { -1 } else { topic.partitions },
        replication_factor: if explicit {
            -1
        } else {
            topic.replication_factor
        },
        assignments: topic
            .assignments
            .iter()
            .map(|(partition, brokers)| CreatableReplicaAssignment {
                partition_index: *partition,
                broker_ids: brokers.clone(),
                ..Default::default()
            })
            .collect(),
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
    }
}

fn describe(
    topic: kafka_protocol::messages::metadata_response::MetadataResponseTopic,
    name: String,
) -> TopicDescription {
    let mut partitions: Vec<PartitionDescription> = topic
        .partitions
        .into_iter()
        .map(|p| PartitionDescription {
            partition: p.partition_index,
            leader: (p.leader_id >= 0).then_some(p.leader_id),
            replicas: p.replica_nodes,
            isr: p.isr_nodes,
            offline: p.offline_replicas,
        })
        .collect();
    partitions.sort_by_key(|p| p.partition);
    TopicDescription {
        name,
        topic_id: topic.topic_id,
        internal: topic.is_internal,
        partitions,
    }
}

/// The partitions of `topic` as [`Admin::describe_topics`] finds them;
/// none for a topic the cluster does not have (the producer's and the
/// consumer's `partitions_for`).
pub(crate) async fn partitions_of(admin: &Admin, topic: &str) -> Result<Vec<PartitionDescription>> {
    match admin
        .describe_topics(&[topic])
        .await?
        .into_map()
        .remove(topic)
    {
        Some(Ok(described)) => Ok(described.partitions),
        Some(Err(e)) if e.code() == Some(ErrorCode::UnknownTopicOrPartition) => Ok(Vec::new()),
        Some(Err(e)) => Err(e),
        None => Err(Error::Protocol(format!(
            "Metadata answered without topic `{topic}`"
        ))),
    }
}
