//! What the consumer must not let pass silently while fetching: error
//! codes in fetch answers, answers that match nothing asked, and topics
//! deleted and created again under the same name (a new topic id).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use crate::network::ClusterMetadata;
use crate::topic_partition::TopicPartition;
use kafka_protocol::ErrorCode;

/// Remembers what has been reported, so that each problem is logged once
/// rather than at every fetch.
#[derive(Debug, Default)]
pub(super) struct FetchWatch {
    /// Partitions and the error codes already logged for them; a partition
    /// that is read again is forgotten, so a later recurrence is logged.
    warned: HashSet<(TopicPartition, i16)>,
    /// The topic id each fetched topic had when first fetched.
    ids: HashMap<String, Uuid>,
    /// Topics a fetch said do not exist (UNKNOWN_TOPIC_ID, or
    /// UNKNOWN_TOPIC_OR_PARTITION), until metadata says whether they do.
    suspect: std::collections::BTreeSet<String>,
}

impl FetchWatch {
    /// A partition's fetch answered `code` from `broker`: logged at warn
    /// the first time, at debug after that.
    pub(super) fn partition_error(&mut self, tp: &TopicPartition, broker: i32, code: ErrorCode) {
        if matches!(
            code,
            ErrorCode::UnknownTopicId | ErrorCode::UnknownTopicOrPartition
        ) {
            self.suspect.insert(tp.topic.clone());
        }
        if self.warned.insert((tp.clone(), code.code())) {
            tracing::warn!(
                topic = tp.topic,
                partition = tp.partition,
                broker,
                error = code.name(),
                retriable = code.retriable(),
                "fetch answered an error for the partition"
            );
        } else {
            tracing::debug!(
                topic = tp.topic,
                partition = tp.partition,
                broker,
                error = code.name(),
                "fetch error again"
            );
        }
    }

    /// A partition's fetch succeeded: its next error is news again.
    pub(super) fn partition_ok(&mut self, tp: &TopicPartition) {
        if !self.warned.is_empty() {
            self.warned.retain(|(t, _)| t != tp);
        }
    }

    /// A fetch answer named a partition the request did not ask `broker`
    /// for (or a topic id it did not send): a protocol error on the
    /// broker's side, logged and otherwise ignored.
    pub(super) fn unasked(&mut self, tp: &TopicPartition, broker: i32) {
        tracing::warn!(
            topic = tp.topic,
            partition = tp.partition,
            broker,
            "fetch answer for a partition that was not asked for; ignored"
        );
    }

    /// After a metadata refresh: the topics a fetch called unknown that
    /// metadata does not list either (deleted, not moved). Each is reported
    /// once; the rest are cleared.
    pub(super) fn gone(&mut self, metadata: &ClusterMetadata) -> Vec<String> {
        let suspect = std::mem::take(&mut self.suspect);
        suspect
            .into_iter()
            .filter(|topic| match metadata.topics.get(topic) {
                None => true,
                Some(info) => {
                    info.error == ErrorCode::UnknownTopicOrPartition || info.partitions.is_empty()
                }
            })
            .collect()
    }

    /// The topics among `fetched` whose id in `metadata` differs from the
    /// one they were first fetched under: deleted and created again. Each
    /// is reported once, and its new id becomes the one to compare with.
    pub(super) fn recreated<'a>(
        &mut self,
        metadata: &ClusterMetadata,
        fetched: impl IntoIterator<Item = &'a str>,
    ) -> Vec<String> {
        let mut recreated = Vec::new();
        for topic in fetched {
            let Some(id) = metadata.topic_id(topic) else {
                continue;
            };
            // Looked up first: this runs every fetch round, and the name is
            // allocated only for a topic met for the first time.
            let old = match self.ids.get_mut(topic) {
                Some(known) if *known == id => continue,
                Some(known) => Some(std::mem::replace(known, id)),
                None => self.ids.insert(topic.to_owned(), id),
            };
            if let Some(old) = old {
                tracing::warn!(
                    topic,
                    old_id = %old,
                    new_id = %id,
                    "topic was deleted and created again; its positions are reset by auto.offset.reset"
                );
                recreated.push(topic.to_owned());
            }
        }
        recreated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataResponse;
    use kafka_protocol::messages::metadata_response::MetadataResponseTopic;

    fn metadata(topic: &str, id: u128) -> ClusterMetadata {
        let response = MetadataResponse {
            topics: vec![MetadataResponseTopic {
                name: Some(topic.into()),
                topic_id: Uuid::from_u128(id),
                ..Default::default()
            }],
            ..Default::default()
        };
        ClusterMetadata::merge(&ClusterMetadata::default(), &response)
    }

    #[test]
    fn a_new_id_under_the_same_name_is_reported_once() {
        let mut watch = FetchWatch::default();
        assert!(watch.recreated(&metadata("a", 1), ["a"]).is_empty());
        assert!(watch.recreated(&metadata("a", 1), ["a"]).is_empty());
        assert_eq!(watch.recreated(&metadata("a", 2), ["a"]), ["a"]);
        assert!(watch.recreated(&metadata("a", 2), ["a"]).is_empty());
        // No id (an old broker): nothing to compare.
        assert!(watch.recreated(&metadata("a", 0), ["a"]).is_empty());
    }

    #[test]
    fn a_topic_a_fetch_calls_unknown_is_gone_only_if_metadata_agrees() {
        let mut watch = FetchWatch::default();
        let tp = |topic: &str| TopicPartition {
            topic: topic.into(),
            partition: 0,
        };
        watch.partition_error(&tp("a"), 1, ErrorCode::UnknownTopicId);
        watch.partition_error(&tp("b"), 1, ErrorCode::UnknownTopicId);
        watch.partition_error(&tp("c"), 1, ErrorCode::NotLeaderOrFollower);
        let mut listed = metadata("a", 1);
        listed.topics.get_mut("a").unwrap().partitions = vec![crate::network::PartitionInfo {
            partition: 0,
            leader: 1,
            leader_epoch: 0,
            error: ErrorCode::None,
        }];
        assert_eq!(watch.gone(&listed), ["b"]);
        assert!(watch.gone(&listed).is_empty(), "reported once");
    }

    #[test]
    fn errors_are_news_again_after_the_partition_reads() {
        let mut watch = FetchWatch::default();
        let tp = TopicPartition {
            topic: "a".into(),
            partition: 0,
        };
        watch.partition_error(&tp, 1, ErrorCode::NotLeaderOrFollower);
        assert_eq!(watch.warned.len(), 1);
        watch.partition_error(&tp, 1, ErrorCode::NotLeaderOrFollower);
        assert_eq!(watch.warned.len(), 1);
        watch.partition_ok(&tp);
        assert!(watch.warned.is_empty());
    }
}
