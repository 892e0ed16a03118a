//! Partition offsets (earliest, latest, by time) and deleting records
//! before an offset, each asked of the partition's leader.

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};
use kafka_protocol::{ErrorCode, Request};

use super::{Admin, Answer, LEADER_MOVED, Outcome, by_topic, check, millis};
use crate::consumer::IsolationLevel;
use crate::network::ClusterMetadata;
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};
use tokio::time::Instant;

/// Which offset [`Admin::list_offsets`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The end of the log: the high watermark, or with `read_committed`
    /// the last stable offset.
    Latest,
    /// The first offset whose timestamp is at or after this (ms since the
    /// epoch).
    Timestamp(i64),
    /// The record with the largest timestamp (ListOffsets v7, KIP-734).
    MaxTimestamp,
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
            OffsetSpec::MaxTimestamp => -3,
        }
    }
}

/// What [`Admin::list_offsets`] found for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record matches a timestamp.
    pub offset: i64,
    /// The record's timestamp, -1 when not asked by time.
    pub timestamp: i64,
    /// The leader epoch of the record, if the broker reports it.
    pub leader_epoch: Option<i32>,
}

/// Codes that mean the partition's metadata is behind: asked again after a
/// refresh.
const STALE_LEADER: &[ErrorCode] = &[
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::LeaderNotAvailable,
    ErrorCode::RequestTimedOut,
    ErrorCode::FencedLeaderEpoch,
    ErrorCode::UnknownLeaderEpoch,
    ErrorCode::OffsetNotAvailable,
];

impl Admin {
    /// The offset each partition's `spec` names, read as `isolation` reads.
    pub async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
        isolation: IsolationLevel,
    ) -> Result<Outcome<TopicPartition, ListedOffset>> {
        self.list_offsets_until(specs, isolation, self.deadline(None))
            .await
    }

    /// [`list_offsets`](Self::list_offsets) until `deadline`.
    pub(crate) async fn list_offsets_until(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
        isolation: IsolationLevel,
        deadline: Instant,
    ) -> Result<Outcome<TopicPartition, ListedOffset>> {
        self.per_item(
            deadline,
            "ListOffsets",
            specs.keys().cloned(),
            |partitions| self.list_offsets_once(partitions, specs, isolation),
        )
        .await
    }

    /// One round of ListOffsets, a request per leader, for `partitions`
    /// (their specs in `specs`): each partition's answer, or that it is to
    /// be asked again.
    pub(crate) async fn list_offsets_once(
        &self,
        partitions: Vec<TopicPartition>,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
        isolation: IsolationLevel,
    ) -> Result<Vec<(TopicPartition, Answer<ListedOffset>)>> {
        self.per_leader(
            partitions,
            |partitions| ListOffsetsRequest {
                replica_id: -1,
                isolation_level: i8::from(isolation == IsolationLevel::ReadCommitted),
                topics: by_topic(partitions, |tp| ListOffsetsPartition {
                    partition_index: tp.partition,
                    timestamp: specs.get(tp).map_or(-1, |s| s.wire()),
                    current_leader_epoch: -1,
                    ..Default::default()
                })
                .into_iter()
                .map(|(name, partitions)| ListOffsetsTopic {
                    name,
                    partitions,
                    ..Default::default()
                })
                .collect(),
                ..Default::default()
            },
            |response| {
                response
                    .topics
                    .into_iter()
                    .flat_map(|topic| {
                        let name = topic.name;
                        topic.partitions.into_iter().map(move |p| {
                            let tp = TopicPartition::new(&name, p.partition_index);
                            let result = check(p.error_code, None, &format!("offsets of {tp}"))
                                .map(|()| ListedOffset {
                                    offset: p.offset,
                                    timestamp: p.timestamp,
                                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                                });
                            (tp, Answer::of(result, STALE_LEADER))
                        })
                    })
                    .collect()
            },
        )
        .await
    }

    /// Deletes every record before the given offset of each partition
    /// (-1: the high watermark, so all of them); the answer is each
    /// partition's new log start offset.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
    ) -> Result<Outcome<TopicPartition, i64>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "DeleteRecords",
            before.keys().cloned(),
            |partitions| {
                self.per_leader(
                    partitions,
                    |partitions| DeleteRecordsRequest {
                        topics: by_topic(partitions, |tp| DeleteRecordsPartition {
                            partition_index: tp.partition,
                            offset: before.get(tp).copied().unwrap_or(-1),
                            ..Default::default()
                        })
                        .into_iter()
                        .map(|(name, partitions)| DeleteRecordsTopic {
                            name,
                            partitions,
                            ..Default::default()
                        })
                        .collect(),
                        timeout_ms: millis(deadline),
                        ..Default::default()
                    },
                    |response| {
                        response
                            .topics
                            .into_iter()
                            .flat_map(|topic| {
                                let name = topic.name;
                                topic.partitions.into_iter().map(move |p| {
                                    let tp = TopicPartition::new(&name, p.partition_index);
                                    let result = check(
                                        p.error_code,
                                        None,
                                        &format!("delete records of {tp}"),
                                    )
                                    .map(|()| p.low_watermark);
                                    (tp, Answer::of(result, LEADER_MOVED))
                                })
                            })
                            .collect()
                    },
                )
            },
        )
        .await
    }

    /// Sends each leader the request `build` makes for its partitions and
    /// reads the answers with `parse`. A partition of a topic the cluster
    /// does not have fails at once; one without a leader, or whose leader
    /// cannot be reached, is asked again.
    async fn per_leader<R: Request, V>(
        &self,
        partitions: Vec<TopicPartition>,
        build: impl Fn(&[TopicPartition]) -> R,
        parse: impl Fn(R::Response) -> Vec<(TopicPartition, Answer<V>)>,
    ) -> Result<Vec<(TopicPartition, Answer<V>)>> {
        // The leaders of these topics only, asked now and not cached: the
        // client's metadata neither refreshes every topic it tracks for
        // this nor tracks these for good.
        let mut topics: Vec<String> = partitions.iter().map(|tp| tp.topic.clone()).collect();
        topics.sort();
        topics.dedup();
        let response = self.network.describe_topics(Some(&topics)).await?;
        let metadata = ClusterMetadata::merge(&self.network.metadata(), &response);
        let mut answers = Vec::new();
        let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            let unknown = || {
                Answer::Final(Err(Error::kafka(
                    ErrorCode::UnknownTopicOrPartition,
                    tp.to_string(),
                )))
            };
            let no_leader =
                || Answer::Again(Error::kafka(ErrorCode::LeaderNotAvailable, tp.to_string()));
            let answer = match metadata.topics.get(&tp.topic) {
                Some(info) if info.error == ErrorCode::UnknownTopicOrPartition => unknown(),
                Some(info) if info.error.is_ok() => {
                    match info.partitions.iter().find(|p| p.partition == tp.partition) {
                        None => unknown(),
                        Some(p) if p.leader >= 0 => {
                            by_leader.entry(p.leader).or_default().push(tp);
                            continue;
                        }
                        Some(_) => no_leader(),
                    }
                }
                _ => no_leader(),
            };
            answers.push((tp, answer));
        }
        for (leader, partitions) in by_leader {
            let request = build(&partitions);
            let sent = match metadata.brokers.get(&leader) {
                Some(broker) => match self.network.connect(&broker.addr).await {
                    Ok(connection) => connection.send(&request).await,
                    Err(e) => Err(e),
                },
                None => Err(Error::Network {
                    broker: format!("node {leader}"),
                    reason: "not among the brokers Metadata named".into(),
                }),
            };
            match sent {
                Ok(response) => answers.extend(parse(response)),
                // Refused credentials and the like: the whole call fails.
                Err(e) if !e.retriable() => return Err(e),
                Err(e) => {
                    let reason = e.to_string();
                    answers.extend(partitions.into_iter().map(|tp| {
                        let e = Error::Network {
                            broker: format!("node {leader}"),
                            reason: reason.clone(),
                        };
                        (tp, Answer::Again(e))
                    }));
                }
            }
        }
        Ok(answers)
    }
}
