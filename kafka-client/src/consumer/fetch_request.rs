//! One fetch on the wire: topics named by id from Fetch v13 on (KIP-516),
//! and the answer's topics named again so that the consumer matches
//! answers to partitions by name whatever the version.

use std::collections::HashMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use uuid::Uuid;

use crate::Result;
use crate::by_topic::by_topic;
use crate::network::{ClusterMetadata, Connection};
use crate::topic_partition::TopicPartition;

/// The newest Fetch version that names topics; later ones carry ids only.
const LAST_VERSION_BY_NAME: i16 = 12;

/// The request's topics: each partition at its position, each topic with
/// its name and, where Metadata reported one, its id.
pub(super) fn topics(
    partitions: &[(TopicPartition, i64)],
    metadata: &ClusterMetadata,
    partition_max_bytes: i32,
) -> Vec<FetchTopic> {
    by_topic(partitions.iter().map(|(tp, offset)| {
        let partition = FetchPartition {
            partition: tp.partition,
            fetch_offset: *offset,
            partition_max_bytes,
            ..Default::default()
        };
        (tp.topic.as_str(), partition)
    }))
    .into_iter()
    .map(|(topic, partitions)| FetchTopic {
        topic_id: metadata.topic_id(&topic).unwrap_or_else(Uuid::nil),
        topic,
        partitions,
        ..Default::default()
    })
    .collect()
}

/// The version to send a fetch of `request`'s topics at, given the newest
/// both sides share:
/// topic ids need every topic's id, so without one the fetch stays at the
/// last version that names topics (as Java's fetcher does).
pub(super) fn version(request: &FetchRequest, newest: i16) -> i16 {
    if request.topics.iter().all(|t| !t.topic_id.is_nil()) {
        newest
    } else {
        newest.min(LAST_VERSION_BY_NAME)
    }
}

/// The names of the topics among `topics` that carry ids, by id: what an
/// answer by id (v13+) is named back with. Built from every partition the
/// fetch wants, not only those an incremental request sends.
pub(super) fn names(topics: &[FetchTopic]) -> HashMap<Uuid, String> {
    topics
        .iter()
        .filter(|t| !t.topic_id.is_nil())
        .map(|t| (t.topic_id, t.topic.clone()))
        .collect()
}

/// Sends `request` on `connection` at `version` (when the fetch was built
/// knowing it) or at the newest the connection allows, and returns the
/// answer with every topic named. A topic id not in `names` keeps an empty
/// name, which matches nothing that was asked (and is reported as such).
pub(super) async fn send(
    connection: &Connection,
    request: &FetchRequest,
    version: Option<i16>,
    names: &HashMap<Uuid, String>,
) -> Result<FetchResponse> {
    let version = match version {
        Some(v) => v,
        None => self::version(request, connection.version_for::<FetchRequest>()?),
    };
    let mut response = connection.call(request, version).await?;
    if version > LAST_VERSION_BY_NAME {
        name_topics(names, &mut response);
    }
    Ok(response)
}

fn name_topics(names: &HashMap<Uuid, String>, response: &mut FetchResponse) {
    for topic in &mut response.responses {
        topic.topic = names.get(&topic.topic_id).cloned().unwrap_or_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::FetchableTopicResponse;

    fn request(ids: &[Uuid]) -> FetchRequest {
        FetchRequest {
            topics: ids
                .iter()
                .enumerate()
                .map(|(i, id)| FetchTopic {
                    topic: format!("t{i}"),
                    topic_id: *id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn topics_without_an_id_keep_the_fetch_at_names() {
        let a = Uuid::from_u128(1);
        assert_eq!(version(&request(&[a, Uuid::from_u128(2)]), 17), 17);
        assert_eq!(version(&request(&[a, Uuid::nil()]), 17), 12);
        assert_eq!(version(&request(&[Uuid::nil()]), 11), 11);
    }

    #[test]
    fn answers_by_id_are_named_and_unknown_ids_match_nothing() {
        let (a, b) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let sent = names(&request(&[a, b]).topics);
        let mut answer = FetchResponse {
            responses: [b, Uuid::from_u128(9), a]
                .into_iter()
                .map(|id| FetchableTopicResponse {
                    topic_id: id,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        name_topics(&sent, &mut answer);
        let names: Vec<&str> = answer.responses.iter().map(|t| t.topic.as_str()).collect();
        assert_eq!(names, ["t1", "", "t0"]);
    }
}
