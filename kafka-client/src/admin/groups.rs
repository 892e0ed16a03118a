//! Consumer groups: listing, describing and deleting them, and reading,
//! changing and deleting their committed offsets.

use std::collections::BTreeMap;
use std::future::Future;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartition;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest,
};
use tokio::time::Instant;

use super::{Admin, Answer, COORDINATOR_MOVED, Outcome, by_topic, check, code, failed};
use crate::consumer::assignor::decode_assignment;
use crate::network::{Connection, CoordinatorKind, find_coordinator};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// A group, as [`Admin::list_consumer_groups`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// `consumer`, or empty for a group that only has committed offsets.
    pub protocol_type: String,
    /// `Stable`, `Empty`, `PreparingRebalance`...; `None` from brokers
    /// older than ListGroups v4.
    pub state: Option<String>,
}

/// A consumer group's state and members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, `CompletingRebalance`, or
    /// `Dead` for a group the coordinator does not know.
    pub state: String,
    /// `consumer` for consumer groups.
    pub protocol_type: String,
    /// The assignor the group chose (`range`, `cooperative-sticky`...).
    pub assignor: String,
    /// `host:port` of the group's coordinator.
    pub coordinator: String,
    /// The members and what each was assigned.
    pub members: Vec<MemberDescription>,
}

/// One member of a [`ConsumerGroupDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id`, for a static member.
    pub group_instance_id: Option<String>,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connects from.
    pub host: String,
    /// Its partitions.
    pub assignment: Vec<TopicPartition>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The next offset to read.
    pub offset: i64,
    /// The leader epoch of the record before it, if known.
    pub leader_epoch: Option<i32>,
    /// What the committer attached.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// `offset`, with no epoch and no metadata.
    pub fn new(offset: i64) -> Self {
        Self {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// This offset as an OffsetCommit entry for `partition`.
    pub(crate) fn commit_entry(&self, partition: i32) -> OffsetCommitRequestPartition {
        OffsetCommitRequestPartition {
            partition_index: partition,
            committed_offset: self.offset,
            committed_leader_epoch: self.leader_epoch.unwrap_or(-1),
            commit_timestamp: -1,
            committed_metadata: Some(self.metadata.clone()),
            ..Default::default()
        }
    }

    /// What an OffsetFetch answer says was committed; `None` for nothing.
    pub(crate) fn fetched(partition: &OffsetFetchResponsePartition) -> Option<Self> {
        (partition.committed_offset >= 0).then(|| Self {
            offset: partition.committed_offset,
            leader_epoch: (partition.committed_leader_epoch >= 0)
                .then_some(partition.committed_leader_epoch),
            metadata: partition.metadata.clone().unwrap_or_default(),
        })
    }
}

impl Admin {
    /// Every consumer group on every broker (and groups that only have
    /// committed offsets), by group id; fails if a broker gave no answer
    /// within `default.api.timeout.ms` (Java's `all()`; see
    /// [`list_consumer_groups_by_broker`](Self::list_consumer_groups_by_broker)
    /// for what the others answered).
    pub async fn list_consumer_groups(&self) -> Result<Vec<GroupListing>> {
        let mut groups: Vec<GroupListing> = self
            .list_consumer_groups_by_broker()
            .await?
            .all()?
            .into_values()
            .flatten()
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// The consumer groups each broker coordinates, by broker id: a broker
    /// that gave no answer has its own error while the others' groups are
    /// listed (Java's `valid()` and `errors()`).
    pub async fn list_consumer_groups_by_broker(&self) -> Result<Outcome<i32, Vec<GroupListing>>> {
        let deadline = self.deadline(None);
        let metadata = self
            .retrying(deadline, "Metadata", || self.network.refresh())
            .await?;
        let brokers: Vec<i32> = metadata.brokers.keys().copied().collect();
        self.per_item(deadline, "ListGroups", brokers, |ids| async move {
            let mut answers = Vec::new();
            for id in ids {
                let listed = match self.network.broker(id).await {
                    Ok(connection) => list_groups(&connection).await,
                    Err(e) => Err(e),
                };
                let listed = listed.map(|groups| {
                    groups
                        .into_iter()
                        .filter(|g| g.protocol_type.is_empty() || g.protocol_type == "consumer")
                        .collect::<Vec<_>>()
                });
                let answer = match listed {
                    Err(e) if e.code().is_none() => failed(e),
                    result => Answer::of(result, COORDINATOR_MOVED),
                };
                answers.push((id, answer));
            }
            Ok(answers)
        })
        .await
    }

    /// Describes consumer groups, asking each group's coordinator.
    pub async fn describe_consumer_groups(
        &self,
        groups: &[&str],
    ) -> Result<Outcome<String, ConsumerGroupDescription>> {
        self.per_group("DescribeGroups", groups, |coordinator, group| async move {
            describe_group(&coordinator, &group).await
        })
        .await
    }

    /// Deletes consumer groups (with their committed offsets); a group with
    /// members fails with NON_EMPTY_GROUP.
    pub async fn delete_consumer_groups(&self, groups: &[&str]) -> Result<Outcome<String>> {
        self.per_group("DeleteGroups", groups, |coordinator, group| async move {
            delete_group(&coordinator, &group).await
        })
        .await
    }

    /// Asks each group's coordinator with `ask`, each group on its own.
    async fn per_group<V, Fut>(
        &self,
        what: &str,
        groups: &[&str],
        ask: impl Fn(Connection, String) -> Fut,
    ) -> Result<Outcome<String, V>>
    where
        Fut: Future<Output = Answer<V>>,
    {
        let deadline = self.deadline(None);
        let ask = &ask;
        self.per_item(
            deadline,
            what,
            groups.iter().map(|g| (*g).to_owned()),
            |groups| async move {
                let mut answers = Vec::new();
                for group in groups {
                    let answer = match self.coordinator(&group, deadline).await {
                        Ok(coordinator) => ask(coordinator, group.clone()).await,
                        Err(e) => failed(e),
                    };
                    answers.push((group, answer));
                }
                Ok(answers)
            },
        )
        .await
    }

    /// The committed offsets of `group`, for `partitions` or (`None`) every
    /// partition it committed; partitions without one are left out.
    pub async fn list_consumer_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let deadline = self.deadline(None);
        let topics = partitions.map(by_topic_indexes);
        self.retrying(deadline, "OffsetFetch", || async {
            let coordinator = self.coordinator(group, deadline).await?;
            // Capped at v7 (versions::OFFSET_FETCH_MAX): one group per request.
            let version = coordinator.version_for::<OffsetFetchRequest>()?;
            let request = OffsetFetchRequest {
                group_id: group.to_owned(),
                topics: topics.clone(),
                ..Default::default()
            };
            let response = coordinator.call(&request, version).await?;
            check(
                response.error_code,
                None,
                &format!("offsets of group {group}"),
            )?;
            let mut offsets = BTreeMap::new();
            for topic in response.topics {
                for p in topic.partitions {
                    let tp = TopicPartition::new(&topic.name, p.partition_index);
                    check(
                        p.error_code,
                        None,
                        &format!("offset of {tp} in group {group}"),
                    )?;
                    if let Some(committed) = OffsetAndMetadata::fetched(&p) {
                        offsets.insert(tp, committed);
                    }
                }
            }
            Ok(offsets)
        })
        .await
    }

    /// Sets committed offsets of `group`, which must have no members (an
    /// active group fails with UNKNOWN_MEMBER_ID, as in Kafka).
    pub async fn alter_consumer_group_offsets(
        &self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<Outcome<TopicPartition>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "OffsetCommit",
            offsets.keys().cloned(),
            |partitions| async move {
                let coordinator = self.coordinator(group, deadline).await?;
                let version = coordinator.version_for::<OffsetCommitRequest>()?;
                let unknown = OffsetAndMetadata::new(-1);
                let topics: Vec<OffsetCommitRequestTopic> = by_topic(&partitions, |tp| {
                    offsets
                        .get(tp)
                        .unwrap_or(&unknown)
                        .commit_entry(tp.partition)
                })
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name,
                    partitions,
                    ..Default::default()
                })
                .collect();
                // Generation -1 and no member id: a commit from outside
                // the group, which the coordinator takes only while the
                // group has no members.
                let request = OffsetCommitRequest {
                    group_id: group.to_owned(),
                    generation_id_or_member_epoch: -1,
                    member_id: String::new(),
                    retention_time_ms: -1,
                    topics,
                    ..Default::default()
                };
                let response = coordinator.call(&request, version).await?;
                Ok(response
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name;
                        t.partitions.into_iter().map(move |p| {
                            let tp = TopicPartition::new(&topic, p.partition_index);
                            let result =
                                check(p.error_code, None, &format!("commit {tp} for {group}"));
                            (tp, Answer::of(result, COORDINATOR_MOVED))
                        })
                    })
                    .collect())
            },
        )
        .await
    }

    /// Deletes committed offsets of `group` (KIP-496); a group still
    /// subscribed to a topic fails with GROUP_SUBSCRIBED_TO_TOPIC for it.
    pub async fn delete_consumer_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Outcome<TopicPartition>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "OffsetDelete",
            partitions.iter().cloned(),
            |partitions| async move {
                let coordinator = self.coordinator(group, deadline).await?;
                let version = coordinator.version_for::<OffsetDeleteRequest>()?;
                let request = OffsetDeleteRequest {
                    group_id: group.to_owned(),
                    topics: by_topic_indexes(&partitions)
                        .into_iter()
                        .map(|t| OffsetDeleteRequestTopic {
                            name: t.name,
                            partitions: t
                                .partition_indexes
                                .into_iter()
                                .map(|partition_index| OffsetDeleteRequestPartition {
                                    partition_index,
                                })
                                .collect(),
                        })
                        .collect(),
                };
                let response = coordinator.call(&request, version).await?;
                let whole = code(response.error_code);
                if !whole.is_ok() {
                    // One code for the whole group: every partition has it.
                    return Ok(partitions
                        .into_iter()
                        .map(|tp| {
                            let result =
                                Err(Error::kafka(whole, format!("delete offsets of {group}")));
                            (tp, Answer::of(result, COORDINATOR_MOVED))
                        })
                        .collect());
                }
                Ok(response
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let topic = t.name;
                        t.partitions.into_iter().map(move |p| {
                            let tp = TopicPartition::new(&topic, p.partition_index);
                            let result = check(
                                p.error_code,
                                None,
                                &format!("delete offset of {tp} in {group}"),
                            );
                            (tp, Answer::of(result, COORDINATOR_MOVED))
                        })
                    })
                    .collect())
            },
        )
        .await
    }

    async fn coordinator(&self, group: &str, deadline: Instant) -> Result<Connection> {
        find_coordinator(&self.network, CoordinatorKind::Group, group, deadline).await
    }
}

async fn list_groups(connection: &Connection) -> Result<Vec<GroupListing>> {
    let version = connection.version_for::<ListGroupsRequest>()?;
    let response = connection
        .call(&ListGroupsRequest::default(), version)
        .await?;
    check(
        response.error_code,
        None,
        &format!("list groups on {}", connection.broker()),
    )?;
    Ok(response
        .groups
        .into_iter()
        .map(|g| GroupListing {
            group_id: g.group_id,
            protocol_type: g.protocol_type,
            state: (version >= 4).then_some(g.group_state),
        })
        .collect())
}

async fn describe_group(coordinator: &Connection, group: &str) -> Answer<ConsumerGroupDescription> {
    let request = DescribeGroupsRequest {
        groups: vec![group.to_owned()],
        ..Default::default()
    };
    let response = match coordinator.send(&request).await {
        Ok(response) => response,
        Err(e) => return failed(e),
    };
    let Some(described) = response.groups.into_iter().find(|g| g.group_id == group) else {
        return Answer::Final(Err(Error::Protocol(format!(
            "DescribeGroups answered without group {group}"
        ))));
    };
    if let Err(e) = check(
        described.error_code,
        None,
        &format!("describe group {group}"),
    ) {
        return Answer::of(Err(e), COORDINATOR_MOVED);
    }
    let consumer = described.protocol_type == "consumer";
    let mut members = Vec::new();
    for m in described.members {
        let assignment = if consumer && !m.member_assignment.is_empty() {
            match decode_assignment(&m.member_assignment) {
                Ok(topics) => topics
                    .into_iter()
                    .flat_map(|(topic, ps)| {
                        ps.into_iter().map(move |p| TopicPartition::new(&topic, p))
                    })
                    .collect(),
                Err(e) => return Answer::Final(Err(e)),
            }
        } else {
            Vec::new()
        };
        members.push(MemberDescription {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
            client_id: m.client_id,
            host: m.client_host,
            assignment,
        });
    }
    Answer::Final(Ok(ConsumerGroupDescription {
        group_id: described.group_id,
        state: described.group_state,
        protocol_type: described.protocol_type,
        assignor: described.protocol_data,
        coordinator: coordinator.broker().to_owned(),
        members,
    }))
}

async fn delete_group(coordinator: &Connection, group: &str) -> Answer<()> {
    let request = DeleteGroupsRequest {
        groups_names: vec![group.to_owned()],
        ..Default::default()
    };
    let response = match coordinator.send(&request).await {
        Ok(response) => response,
        Err(e) => return failed(e),
    };
    match response.results.into_iter().find(|r| r.group_id == group) {
        Some(r) => Answer::of(
            check(r.error_code, None, &format!("delete group {group}")),
            COORDINATOR_MOVED,
        ),
        None => Answer::Final(Err(Error::Protocol(format!(
            "DeleteGroups answered without group {group}"
        )))),
    }
}

/// Partitions grouped by topic, in the request shape of OffsetFetch.
pub(crate) fn by_topic_indexes(partitions: &[TopicPartition]) -> Vec<OffsetFetchRequestTopic> {
    by_topic(partitions, |tp| tp.partition)
        .into_iter()
        .map(|(name, partition_indexes)| OffsetFetchRequestTopic {
            name,
            partition_indexes,
            ..Default::default()
        })
        .collect()
}
