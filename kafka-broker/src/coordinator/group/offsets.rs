//! OffsetCommit, OffsetFetch and the transactional-offset hooks.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestTopic;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
};
use tokio::time::Instant;
use tracing::{debug, info};

use super::state::{Group, OffsetMap, StoredOffset};
use super::{CommittedOffset, GroupCoordinator, GroupState};

/// The longest metadata string an offset commit may carry (Kafka's
/// `offset.metadata.max.bytes` default); longer ones are refused with
/// `OFFSET_METADATA_TOO_LARGE`. The transaction coordinator should apply the
/// same limit before calling [`GroupCoordinator::add_pending_txn_offsets`].
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// One stored offset of a group: committed, or pending in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub group: String,
    /// The producer whose transaction holds the offset until it ends;
    /// `None` for a committed offset.
    pub producer_id: Option<i64>,
    pub topic: String,
    pub partition: i32,
    pub offset: CommittedOffset,
}

impl GroupCoordinator {
    /// Handles OffsetCommit (all versions).
    ///
    /// A commit with generation -1 and no member id (a consumer using manual
    /// assignment, or the admin client) is accepted only while the group is
    /// Empty or unknown, and creates an Empty group to hold the offsets.
    /// Otherwise the member and generation must be current. As in Kafka,
    /// commits are accepted during PreparingRebalance (a member commits what
    /// it consumed before rejoining) but refused with `REBALANCE_IN_PROGRESS`
    /// during CompletingRebalance. Errors are reported per partition.
    ///
    /// Topics are not checked against the broker's topics here: that is the
    /// dispatcher's job (`UNKNOWN_TOPIC_OR_PARTITION`).
    pub fn offset_commit(
        &self,
        request: OffsetCommitRequest,
        version: i16,
    ) -> OffsetCommitResponse {
        let OffsetCommitRequest {
            group_id,
            generation_id_or_member_epoch,
            member_id,
            group_instance_id,
            topics,
            ..
        } = request;
        // v0 commits carry neither generation nor member.
        let (generation_id, member_id) = if version >= 1 {
            (generation_id_or_member_epoch, member_id)
        } else {
            (-1, String::new())
        };
        let group_instance_id = if version >= 7 {
            group_instance_id
        } else {
            None
        };
        let now = Instant::now();
        let now_ms = wall_clock_ms();

        let mut groups = self.lock_groups();
        let created = !groups.contains_key(&group_id);
        if created && generation_id >= 0 {
            // A generation of a group we do not know: a stale member.
            return commit_response(topics, |_| ErrorCode::IllegalGeneration);
        }
        let group = groups.entry(group_id.clone()).or_insert_with(|| {
            info!(group = %group_id, "creating an empty group for manual offset commits");
            Group::new(group_id.clone())
        });

        let error = validate_offset_commit(
            group,
            generation_id,
            &member_id,
            group_instance_id.as_deref(),
            false,
        )
        .or(match group.state {
            GroupState::Empty | GroupState::Stable | GroupState::PreparingRebalance => None,
            // The member has the new generation but not its assignment yet:
            // what would it be committing?
            GroupState::CompletingRebalance => Some(ErrorCode::RebalanceInProgress),
            GroupState::Dead => Some(ErrorCode::CoordinatorNotAvailable),
        });
        let response = match error {
            Some(error) => commit_response(topics, |_| error),
            None => {
                if let Some(member) = group.members.get_mut(&member_id) {
                    member.touch(now);
                }
                commit_response(topics, |(topic, partition)| {
                    if partition
                        .committed_metadata
                        .as_ref()
                        .is_some_and(|metadata| metadata.len() > MAX_OFFSET_METADATA_BYTES)
                    {
                        return ErrorCode::OffsetMetadataTooLarge;
                    }
                    let commit_timestamp_ms = if version == 1 && partition.commit_timestamp != -1 {
                        partition.commit_timestamp
                    } else {
                        now_ms
                    };
                    let offset = CommittedOffset {
                        offset: partition.committed_offset,
                        leader_epoch: if version >= 6 {
                            partition.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: partition.committed_metadata.clone(),
                        commit_timestamp_ms,
                    };
                    let seq = group.next_offset_seq();
                    store_offset(
                        &mut group.offsets,
                        topic,
                        partition.partition_index,
                        StoredOffset { offset, seq },
                    );
                    ErrorCode::None
                })
            }
        };
        if created && group.is_unused() {
            groups.remove(&group_id);
        }
        response
    }

    /// Handles OffsetFetch: one group with a top-level topic list (v0-7; a
    /// null list means every committed partition, v2+) or several groups
    /// (v8+). Partitions without a committed offset get offset -1 and
    /// metadata "" without error. With `require_stable` (v7+), partitions
    /// with transactional offsets not yet committed or aborted get
    /// `UNSTABLE_OFFSET_COMMIT`. Offsets are returned whatever the group's
    /// state, and for unknown groups as if nothing was committed.
    pub fn offset_fetch(&self, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let require_stable = version >= 7 && request.require_stable;
        let groups = self.lock_groups();
        if version >= 8 {
            let results = request
                .groups
                .into_iter()
                .map(|wanted| {
                    let topics = wanted.topics.map(|topics| {
                        topics
                            .into_iter()
                            .map(|topic| (topic.name, topic.partition_indexes))
                            .collect()
                    });
                    let fetched =
                        fetch_offsets(groups.get(&wanted.group_id), topics, require_stable);
                    OffsetFetchResponseGroup {
                        group_id: wanted.group_id,
                        topics: fetched
                            .into_iter()
                            .map(|(name, partitions)| OffsetFetchResponseTopics {
                                name,
                                partitions: partitions
                                    .into_iter()
                                    .map(|fetched| OffsetFetchResponsePartitions {
                                        partition_index: fetched.partition,
                                        committed_offset: fetched.offset,
                                        committed_leader_epoch: fetched.leader_epoch,
                                        metadata: Some(fetched.metadata),
                                        error_code: fetched.error.code(),
                                        ..OffsetFetchResponsePartitions::default()
                                    })
                                    .collect(),
                                ..OffsetFetchResponseTopics::default()
                            })
                            .collect(),
                        error_code: ErrorCode::None.code(),
                        ..OffsetFetchResponseGroup::default()
                    }
                })
                .collect();
            OffsetFetchResponse {
                groups: results,
                ..OffsetFetchResponse::default()
            }
        } else {
            let topics = request.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|topic| (topic.name, topic.partition_indexes))
                    .collect()
            });
            let fetched = fetch_offsets(groups.get(&request.group_id), topics, require_stable);
            OffsetFetchResponse {
                topics: fetched
                    .into_iter()
                    .map(|(name, partitions)| OffsetFetchResponseTopic {
                        name,
                        partitions: partitions
                            .into_iter()
                            .map(|fetched| OffsetFetchResponsePartition {
                                partition_index: fetched.partition,
                                committed_offset: fetched.offset,
                                committed_leader_epoch: fetched.leader_epoch,
                                metadata: Some(fetched.metadata),
                                error_code: fetched.error.code(),
                                ..OffsetFetchResponsePartition::default()
                            })
                            .collect(),
                        ..OffsetFetchResponseTopic::default()
                    })
                    .collect(),
                error_code: ErrorCode::None.code(),
                ..OffsetFetchResponse::default()
            }
        }
    }

    /// Checks the group fields of a TxnOffsetCommit. Like Kafka, a commit
    /// with generation -1, no member id and no instance id is not checked
    /// (older producers send no group metadata); one that names a member must
    /// name a current member of the current generation. Does not create the
    /// group: [`add_pending_txn_offsets`](Self::add_pending_txn_offsets) does.
    pub fn validate_txn_offset_commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> ErrorCode {
        if group_id.is_empty() {
            return ErrorCode::InvalidGroupId;
        }
        let groups = self.lock_groups();
        match groups.get(group_id) {
            // Kafka creates the group (Empty) and validates against it: with
            // no members, only an unversioned commit passes.
            None if generation_id < 0 => ErrorCode::None,
            None => ErrorCode::UnknownMemberId,
            Some(group) => {
                validate_offset_commit(group, generation_id, member_id, group_instance_id, true)
                    .unwrap_or(ErrorCode::None)
            }
        }
    }

    /// Records offsets a transaction committed for the group. They stay
    /// invisible to OffsetFetch and [`committed`](Self::committed) until
    /// [`complete_txn`](Self::complete_txn) commits the transaction. Creates
    /// the group (Empty) if needed. Entries are `(topic, partition, offset)`.
    pub fn add_pending_txn_offsets(
        &self,
        group_id: &str,
        producer_id: i64,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) {
        if group_id.is_empty() || offsets.is_empty() {
            return;
        }
        let mut groups = self.lock_groups();
        let group = groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id.to_owned()));
        for (topic, partition, offset) in offsets {
            let seq = group.next_offset_seq();
            let pending = group.pending_txn_offsets.entry(producer_id).or_default();
            store_offset(pending, &topic, partition, StoredOffset { offset, seq });
        }
        debug!(group = %group_id, producer_id, "pending transactional offsets recorded");
    }

    /// Ends a transaction's offsets in the group: on commit they become the
    /// committed offsets (unless a plain commit for the same partition came
    /// after them), on abort they are dropped.
    pub fn complete_txn(&self, group_id: &str, producer_id: i64, commit: bool) {
        let mut groups = self.lock_groups();
        let Some(group) = groups.get_mut(group_id) else {
            return;
        };
        let Some(pending) = group.pending_txn_offsets.remove(&producer_id) else {
            return;
        };
        if commit {
            for (topic, partitions) in pending {
                for (partition, stored) in partitions {
                    let newer = group
                        .offsets
                        .get(&topic)
                        .and_then(|committed| committed.get(&partition))
                        .is_none_or(|current| current.seq < stored.seq);
                    if newer {
                        store_offset(&mut group.offsets, &topic, partition, stored);
                    }
                }
            }
        }
        debug!(group = %group_id, producer_id, commit, "transactional offsets completed");
        if group.is_unused() {
            groups.remove(group_id);
        }
    }

    /// Every group's committed and pending transactional offsets, each
    /// group's in the order they were stored, for the disk-mode snapshot.
    /// Restoring them in this order with
    /// [`restore_offset`](Self::restore_offset) keeps which of a pending and
    /// a committed offset for the same partition is the newer.
    pub(crate) fn offset_entries(&self) -> Vec<OffsetEntry> {
        let groups = self.lock_groups();
        let mut entries: Vec<(u64, OffsetEntry)> = Vec::new();
        for group in groups.values() {
            let maps = std::iter::once((None, &group.offsets)).chain(
                group
                    .pending_txn_offsets
                    .iter()
                    .map(|(producer_id, map)| (Some(*producer_id), map)),
            );
            for (producer_id, map) in maps {
                for (topic, partitions) in map {
                    for (partition, stored) in partitions {
                        entries.push((
                            stored.seq,
                            OffsetEntry {
                                group: group.group_id.clone(),
                                producer_id,
                                topic: topic.clone(),
                                partition: *partition,
                                offset: stored.offset.clone(),
                            },
                        ));
                    }
                }
            }
        }
        entries.sort_by(|(seq_a, a), (seq_b, b)| a.group.cmp(&b.group).then(seq_a.cmp(seq_b)));
        entries.into_iter().map(|(_, entry)| entry).collect()
    }

    /// Stores an offset read back from the snapshot as its group's newest,
    /// creating the group (Empty) if needed.
    pub(crate) fn restore_offset(&self, entry: OffsetEntry) {
        let mut groups = self.lock_groups();
        let group = groups
            .entry(entry.group.clone())
            .or_insert_with(|| Group::new(entry.group));
        let stored = StoredOffset {
            offset: entry.offset,
            seq: group.next_offset_seq(),
        };
        let map = match entry.producer_id {
            None => &mut group.offsets,
            Some(producer_id) => group.pending_txn_offsets.entry(producer_id).or_default(),
        };
        store_offset(map, &entry.topic, entry.partition, stored);
    }

    /// The offset the group committed for a partition, if any (pending
    /// transactional offsets excluded).
    pub fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        self.lock_groups()
            .get(group_id)?
            .offsets
            .get(topic)?
            .get(&partition)
            .map(|stored| stored.offset.clone())
    }
}

/// Kafka's `validateOffsetCommit`.
fn validate_offset_commit(
    group: &Group,
    generation_id: i32,
    member_id: &str,
    group_instance_id: Option<&str>,
    transactional: bool,
) -> Option<ErrorCode> {
    if group.state == GroupState::Dead {
        Some(ErrorCode::CoordinatorNotAvailable)
    } else if generation_id < 0 && group.state == GroupState::Empty {
        // The admin client or a consumer without group management: fine
        // while nobody uses the group.
        None
    } else if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
        group
            .validate_current_member(member_id, group_instance_id)
            .or((generation_id != group.generation_id).then_some(ErrorCode::IllegalGeneration))
    } else if !transactional && group.state != GroupState::Empty {
        // Only members may commit for a group in use. Transactional commits
        // are exempt: older producers send no member or generation.
        Some(ErrorCode::UnknownMemberId)
    } else {
        None
    }
}

/// Builds the OffsetCommit response in request order, one error per partition.
fn commit_response(
    topics: Vec<OffsetCommitRequestTopic>,
    mut partition_error: impl FnMut(
        (
            &str,
            &kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition,
        ),
    ) -> ErrorCode,
) -> OffsetCommitResponse {
    let topics = topics
        .into_iter()
        .map(|topic| OffsetCommitResponseTopic {
            partitions: topic
                .partitions
                .iter()
                .map(|partition| OffsetCommitResponsePartition {
                    partition_index: partition.partition_index,
                    error_code: partition_error((&topic.name, partition)).code(),
                    ..OffsetCommitResponsePartition::default()
                })
                .collect(),
            name: topic.name,
            ..OffsetCommitResponseTopic::default()
        })
        .collect();
    OffsetCommitResponse {
        topics,
        ..OffsetCommitResponse::default()
    }
}

fn store_offset(offsets: &mut OffsetMap, topic: &str, partition: i32, stored: StoredOffset) {
    match offsets.get_mut(topic) {
        Some(partitions) => {
            partitions.insert(partition, stored);
        }
        None => {
            offsets.insert(topic.to_owned(), BTreeMap::from([(partition, stored)]));
        }
    }
}

/// One partition of an OffsetFetch answer.
struct Fetched {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
    error: ErrorCode,
}

impl Fetched {
    fn nothing(partition: i32, error: ErrorCode) -> Self {
        Self {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error,
        }
    }
}

/// The offsets of the wanted partitions (or of every committed partition
/// when `topics` is `None`), topic by topic.
fn fetch_offsets(
    group: Option<&Group>,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Vec<(String, Vec<Fetched>)> {
    let lookup = |topic: &str, partition: i32| -> Fetched {
        let Some(group) = group else {
            return Fetched::nothing(partition, ErrorCode::None);
        };
        if require_stable && has_pending_txn_offset(group, topic, partition) {
            return Fetched::nothing(partition, ErrorCode::UnstableOffsetCommit);
        }
        match group
            .offsets
            .get(topic)
            .and_then(|partitions| partitions.get(&partition))
        {
            Some(stored) => Fetched {
                partition,
                offset: stored.offset.offset,
                leader_epoch: stored.offset.leader_epoch,
                metadata: stored.offset.metadata.clone().unwrap_or_default(),
                error: ErrorCode::None,
            },
            None => Fetched::nothing(partition, ErrorCode::None),
        }
    };
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let fetched = partitions
                    .into_iter()
                    .map(|partition| lookup(&name, partition))
                    .collect();
                (name, fetched)
            })
            .collect(),
        None => group
            .map(|group| {
                group
                    .offsets
                    .iter()
                    .map(|(name, partitions)| {
                        let fetched = partitions
                            .keys()
                            .map(|partition| lookup(name, *partition))
                            .collect();
                        (name.clone(), fetched)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn has_pending_txn_offset(group: &Group, topic: &str, partition: i32) -> bool {
    group.pending_txn_offsets.values().any(|pending| {
        pending
            .get(topic)
            .is_some_and(|partitions| partitions.contains_key(&partition))
    })
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
