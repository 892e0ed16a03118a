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
use crate::producer::TopicPartition;

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

/// The version to send `request` at, given the newest both sides share:
/// topic ids need every topic's id, so without one the fetch stays at the
/// last version that names topics (as Java's fetcher does).
pub(super) fn version(request: &FetchRequest, newest: i16) -> i16 {
    if request.topics.iter().all(|t| !t.topic_id.is_nil()) {
        newest
    } else {
        newest.min(LAST_VERSION_BY_NAME)
    }
}

/// Sends `request` on `connection` and returns the answer with every
/// topic named. A topic id the request did not carry keeps an empty name,
/// which matches nothing that was asked (and is reported as such).
pub(super) async fn send(connection: &Connection, request: &FetchRequest) -> Result<FetchResponse> {
    let newest = connection.version_for::<FetchRequest>()?;
    let version = version(request, newest);
    let mut response = connection.call(request, version).await?;
    if version > LAST_VERSION_BY_NAME {
        name_topics(request, &mut response);
    }
    Ok(response)
}

fn name_topics(request: &FetchRequest, response: &mut FetchResponse) {
    let names: HashMap<Uuid, &str> = request
        .topics
        .iter()
        .map(|t| (t.topic_id, t.topic.as_str()))
        .collect();
    for topic in &mut response.responses {
        topic.topic = names
            .get(&topic.topic_id)
            .map(|name| (*name).to_owned())
            .unwrap_or_default();
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
        let sent = request(&[a, b]);
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
