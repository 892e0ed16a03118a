//! The cluster as the last Metadata response described it.

use std::collections::HashMap;
use std::time::Instant;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// A broker's id and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The node id.
    pub id: i32,
    /// `host:port`.
    pub addr: String,
    /// The rack, if the broker has one.
    pub rack: Option<String>,
}

/// One partition's leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's node id, or -1 when there is none.
    pub leader: i32,
    /// The leader epoch, or -1 when the broker does not report it.
    pub leader_epoch: i32,
    /// The partition's error, e.g. LEADER_NOT_AVAILABLE.
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// The topic's error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: ErrorCode,
    /// The topic's id (KIP-516), nil when the broker's Metadata version
    /// (below 10) does not carry it.
    pub id: Uuid,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// The indexes of the partitions that have a leader, computed once per
    /// snapshot so the producer's partitioner can borrow them per record.
    pub available: Vec<i32>,
}

/// An immutable snapshot of cluster metadata.
#[derive(Debug, Clone)]
pub struct ClusterMetadata {
    /// Brokers by id.
    pub brokers: HashMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<String, TopicInfo>,
    /// The controller's id, or -1.
    pub controller: i32,
    /// The cluster id, if reported.
    pub cluster_id: Option<String>,
    /// When this snapshot was taken.
    pub fetched_at: Instant,
}

impl Default for ClusterMetadata {
    fn default() -> Self {
        Self {
            brokers: HashMap::new(),
            topics: HashMap::new(),
            controller: -1,
            cluster_id: None,
            fetched_at: Instant::now(),
        }
    }
}

fn code(raw: i16) -> ErrorCode {
    ErrorCode::from_code(raw).unwrap_or(ErrorCode::UnknownServerError)
}

impl ClusterMetadata {
    /// The snapshot a Metadata response describes, merged over `previous`:
    /// topics the response does not mention keep their last known state.
    pub fn merge(previous: &ClusterMetadata, response: &MetadataResponse) -> Self {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        id: b.node_id,
                        addr: format!("{}:{}", b.host, b.port),
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        let mut topics = previous.topics.clone();
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    error: code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let available = partitions
                .iter()
                .filter(|p| p.leader >= 0)
                .map(|p| p.partition)
                .collect();
            topics.insert(
                name.clone(),
                TopicInfo {
                    error: code(topic.error_code),
                    id: topic.topic_id,
                    partitions,
                    available,
                },
            );
        }
        Self {
            brokers,
            topics,
            controller: response.controller_id,
            cluster_id: response.cluster_id.clone(),
            fetched_at: Instant::now(),
        }
    }

    /// The leader of a partition, if it has one and the broker is known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<&BrokerInfo> {
        let info = self
            .topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?;
        if info.leader < 0 {
            return None;
        }
        self.brokers.get(&info.leader)
    }

    /// The id of a topic, if the broker reported one.
    pub fn topic_id(&self, topic: &str) -> Option<Uuid> {
        self.topics
            .get(topic)
            .map(|t| t.id)
            .filter(|id| !id.is_nil())
    }

    /// How many partitions a topic has, if it is known without error.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        let info = self.topics.get(topic)?;
        (info.error.is_ok() && !info.partitions.is_empty()).then_some(info.partitions.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn response(topic: &str, leaders: &[i32]) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataResponseBroker {
                node_id: 1,
                host: "127.0.0.1".into(),
                port: 9092,
                ..Default::default()
            }],
            controller_id: 1,
            topics: vec![MetadataResponseTopic {
                name: Some(topic.into()),
                partitions: leaders
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, &leader)| MetadataResponsePartition {
                        partition_index: i as i32,
                        leader_id: leader,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn leaders_are_found_and_unmentioned_topics_are_kept() {
        let first = ClusterMetadata::merge(&ClusterMetadata::default(), &response("a", &[1, -1]));
        assert_eq!(
            first.leader("a", 0).map(|b| b.addr.as_str()),
            Some("127.0.0.1:9092")
        );
        assert_eq!(first.leader("a", 1), None);
        assert_eq!(first.leader("a", 7), None);
        assert_eq!(first.partition_count("a"), Some(2));
        let second = ClusterMetadata::merge(&first, &response("b", &[1]));
        assert_eq!(second.partition_count("a"), Some(2));
        assert_eq!(second.partition_count("b"), Some(1));
    }
}
