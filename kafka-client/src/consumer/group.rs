//! Classic consumer-group membership: find the coordinator, join (with the
//! MEMBER_ID_REQUIRED retry), run the assignor when leader, sync, heartbeat
//! in the background, commit and fetch offsets, leave.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::{ErrorCode, Request};
use tokio::task::JoinHandle;

use super::assignor::{
    Assignor, Member, RebalanceProtocol, common_protocol, decode_assignment, decode_subscription,
    encode_assignment, encode_subscription, withhold_transfers,
};
use super::heartbeat::{Heartbeat, MemberFlags};
use crate::admin::{OffsetAndMetadata, by_topic_indexes};
use crate::by_topic::by_topic;
use crate::network::{ClusterMetadata, Connection, CoordinatorKind, Network, find_coordinator};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;

/// Group settings from the consumer's configuration.
#[derive(Debug, Clone)]
pub(crate) struct GroupConfig {
    pub group_id: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// OffsetFetch waits for offsets of transactions still completing
    /// (KIP-447's `require_stable`), as `read_committed` consumers must:
    /// otherwise a partition's new owner could start before offsets that a
    /// committing transaction is about to make visible.
    pub require_stable: bool,
}

fn code(raw: i16) -> ErrorCode {
    ErrorCode::from_code(raw).unwrap_or(ErrorCode::UnknownServerError)
}

/// What a completed join gave this member.
#[derive(Debug)]
pub(crate) struct Joined {
    /// Its partitions in the new generation.
    pub assignment: BTreeMap<String, Vec<i32>>,
    /// The member had lost its generation (fenced, forgotten, or left
    /// after a poll timeout) before or during this join: what it owned may
    /// have been given away meanwhile, so it joined owning nothing and must
    /// not commit or keep positions of its old partitions.
    pub lost: bool,
}

/// This member's view of its group.
#[derive(Debug)]
pub(crate) struct Group {
    config: GroupConfig,
    /// The assignors offered in JoinGroup, preferred first.
    assignors: Vec<Arc<dyn Assignor>>,
    /// The greatest protocol all of them support.
    protocol: RebalanceProtocol,
    /// Set when the generation is known to be over for this member (the
    /// coordinator said UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION or
    /// FENCED_INSTANCE_ID, or it left after a poll timeout): its partitions
    /// count as lost, not revoked (Java's `onPartitionsLost`).
    lost: Arc<AtomicBool>,
    member_id: String,
    generation: i32,
    coordinator: Option<Connection>,
    /// Set by the heartbeat when the group rebalances or forgot us.
    rejoin: Arc<AtomicBool>,
    /// When the application last polled (ms on the clock below).
    last_poll: Arc<std::sync::atomic::AtomicU64>,
    clock: std::time::Instant,
    /// Set when this member left because `max.poll.interval.ms` passed
    /// between polls; the next poll reports it.
    poll_timeout: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
    /// When this member led the last join: the partition count of every
    /// topic the group subscribes to, as the assignment saw it (`None` for
    /// a topic that did not exist). A change means partitions nobody reads
    /// (Java's `assignmentSnapshot`).
    assigned_counts: Option<BTreeMap<String, Option<usize>>>,
    /// The group of a consumer that assigns its partitions itself: never
    /// joined, used for its committed offsets only (as a Java consumer
    /// with `group.id` and `assign`).
    standalone: bool,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

impl Group {
    pub(crate) fn new(config: GroupConfig, assignors: Vec<Arc<dyn Assignor>>) -> Self {
        Self {
            config,
            protocol: common_protocol(&assignors).unwrap_or(RebalanceProtocol::Eager),
            assignors,
            lost: Arc::new(AtomicBool::new(false)),
            member_id: String::new(),
            generation: -1,
            coordinator: None,
            rejoin: Arc::new(AtomicBool::new(true)),
            last_poll: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            clock: std::time::Instant::now(),
            poll_timeout: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
            assigned_counts: None,
            standalone: false,
        }
    }

    /// A group for committed offsets only: it never joins, so it has no
    /// member id or generation, and the coordinator takes its commits as
    /// those of a group without members.
    pub(crate) fn standalone(config: GroupConfig) -> Self {
        let mut group = Self::new(config, Vec::new());
        group.standalone = true;
        group
    }

    /// Whether this is a [`standalone`](Self::standalone) group.
    pub(crate) fn is_standalone(&self) -> bool {
        self.standalone
    }

    /// Restarts the poll timer without judging the gap before it.
    fn reset_poll_timer(&self) {
        let now = self.clock.elapsed().as_millis() as u64;
        self.last_poll.store(now, Ordering::Release);
    }

    /// Records that the application polled now. A gap longer than
    /// `max.poll.interval.ms` since the last poll of a joined member counts
    /// as a poll timeout even if the heartbeat had already stopped for a
    /// rebalance: the member lost its partitions either way.
    pub(crate) fn polled(&self) {
        let now = self.clock.elapsed().as_millis() as u64;
        let previous = self.last_poll.swap(now, Ordering::AcqRel);
        let joined = self.generation >= 0 && !self.member_id.is_empty();
        if joined
            && previous > 0
            && now.saturating_sub(previous) > self.config.rebalance_timeout.as_millis() as u64
        {
            // As Java's poll-timeout leave: what it held counts as lost.
            self.lost.store(true, Ordering::Release);
            self.poll_timeout.store(true, Ordering::Release);
            self.rejoin.store(true, Ordering::Release);
        }
    }

    /// Whether this member left the group because the application did not
    /// poll within `max.poll.interval.ms` (reported once).
    pub(crate) fn take_poll_timeout(&self) -> bool {
        self.poll_timeout.swap(false, Ordering::AcqRel)
    }

    /// `group.id`.
    pub(crate) fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// `group.instance.id`, for a static member.
    pub(crate) fn instance_id(&self) -> Option<&str> {
        self.config.instance_id.as_deref()
    }

    /// The generation joined last; -1 before the first join.
    pub(crate) fn generation(&self) -> i32 {
        self.generation
    }

    /// The member id the coordinator gave; empty before the first join.
    pub(crate) fn member_id(&self) -> &str {
        &self.member_id
    }

    /// Whether the member must (re)join before fetching.
    pub(crate) fn needs_join(&self) -> bool {
        // A standalone group's commit refused as a rebalance's is only an
        // error to report: it never joins.
        !self.standalone && self.rejoin.load(Ordering::Acquire)
    }

    /// Makes the next poll rejoin: the cooperative follow-up rebalance
    /// after revoking partitions.
    pub(crate) fn request_rejoin(&self) {
        self.rejoin.store(true, Ordering::Release);
    }

    /// How this member rebalances: cooperative only if every configured
    /// assignor supports it, as in Java.
    pub(crate) fn protocol(&self) -> RebalanceProtocol {
        self.protocol
    }

    /// Whether the member's generation is known to be over (see `lost`).
    pub(crate) fn generation_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire)
    }

    /// The JoinGroup protocols: one per assignor, each with the
    /// subscription that assignor reads (Java's `ConsumerCoordinator.metadata`).
    fn protocols(
        &self,
        topics: &[String],
        owned: &[OwnedTopic],
    ) -> Result<Vec<JoinGroupRequestProtocol>> {
        self.assignors
            .iter()
            .map(|assignor| {
                let metadata = encode_subscription(&ConsumerProtocolSubscription {
                    topics: topics.to_vec(),
                    user_data: assignor.subscription_user_data(self.generation),
                    owned_partitions: owned.to_vec(),
                    generation_id: self.generation,
                    ..Default::default()
                })?;
                Ok(JoinGroupRequestProtocol {
                    name: assignor.name().into(),
                    metadata,
                    ..Default::default()
                })
            })
            .collect()
    }

    /// Java's `resetGenerationOnResponseError`: the member is out of its
    /// generation, so whatever it owned is lost.
    fn reset_generation(&mut self) {
        self.member_id.clear();
        self.generation = -1;
        self.lost.store(true, Ordering::Release);
    }

    async fn coordinator(&mut self, network: &Network) -> Result<Connection> {
        if let Some(c) = self.coordinator.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        // About as long as the 20 lookups 100 ms apart this replaced.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let connection = find_coordinator(
            network,
            CoordinatorKind::Group,
            &self.config.group_id,
            deadline,
        )
        .await?;
        self.coordinator = Some(connection.clone());
        Ok(connection)
    }

    /// Joins (or rejoins) the group and returns this member's partitions.
    /// Under the cooperative protocol `owned` (the partitions the member
    /// holds now) goes into the subscription; eagerly they were all
    /// revoked before, so nothing is owned.
    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.config.group_id))]
    pub(crate) async fn join(
        &mut self,
        network: &Arc<Network>,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> Result<Joined> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        let mut lost = self.lost.load(Ordering::Acquire);
        if lost {
            self.generation = -1;
        }
        let mut owned_topics: Vec<OwnedTopic> = Vec::new();
        if self.protocol == RebalanceProtocol::Cooperative && !lost {
            for tp in owned {
                match owned_topics.iter_mut().find(|t| t.topic == tp.topic) {
                    Some(t) => t.partitions.push(tp.partition),
                    None => owned_topics.push(OwnedTopic {
                        topic: tp.topic.clone(),
                        partitions: vec![tp.partition],
                    }),
                }
            }
        }
        let mut protocols = self.protocols(topics, &owned_topics)?;
        // A coordinator that drops the connection at every JoinGroup (or
        // SyncGroup) must not be asked again at once: that spins.
        let mut broken = CoordinatorRetry::new();
        for _ in 0..50 {
            if !lost && self.lost.load(Ordering::Acquire) {
                // Fenced mid-join: rejoin as a member owning nothing.
                lost = true;
                owned_topics.clear();
                protocols = self.protocols(topics, &owned_topics)?;
            }
            let coordinator = self.coordinator(network).await?;
            let join = JoinGroupRequest {
                group_id: self.config.group_id.clone(),
                session_timeout_ms: millis(self.config.session_timeout),
                rebalance_timeout_ms: millis(self.config.rebalance_timeout),
                member_id: self.member_id.clone(),
                group_instance_id: self.config.instance_id.clone(),
                protocol_type: "consumer".into(),
                protocols: protocols.clone(),
                ..Default::default()
            };
            let version = coordinator.version_for::<JoinGroupRequest>()?;
            let join = if version >= 5 {
                join
            } else {
                JoinGroupRequest {
                    group_instance_id: None,
                    ..join
                }
            };
            let response = match coordinator.call(&join, version).await {
                Ok(r) => r,
                Err(e) if e.retriable() && broken.again().await => {
                    self.coordinator = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match code(response.error_code) {
                ErrorCode::None => {}
                ErrorCode::MemberIdRequired => {
                    self.member_id = response.member_id;
                    continue;
                }
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    self.reset_generation();
                    continue;
                }
                ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                    self.coordinator = None;
                    continue;
                }
                c if c.retriable() || c == ErrorCode::RebalanceInProgress => continue,
                c => {
                    return Err(Error::kafka(
                        c,
                        format!("JoinGroup {}", self.config.group_id),
                    ));
                }
            }
            self.member_id = response.member_id.clone();
            self.generation = response.generation_id;
            let protocol_name = response.protocol_name.clone();
            let (assignments, counts) = if response.leader == response.member_id {
                let (assignments, counts) = self
                    .lead(network, &response.members, protocol_name.as_deref())
                    .await?;
                (assignments, Some(counts))
            } else {
                (Vec::new(), None)
            };
            let sync = SyncGroupRequest {
                group_id: self.config.group_id.clone(),
                generation_id: self.generation,
                member_id: self.member_id.clone(),
                group_instance_id: self.config.instance_id.clone(),
                protocol_type: Some("consumer".into()),
                protocol_name,
                assignments,
                ..Default::default()
            };
            let version = coordinator.version_for::<SyncGroupRequest>()?;
            let sync = SyncGroupRequest {
                protocol_type: if version >= 5 {
                    sync.protocol_type
                } else {
                    None
                },
                protocol_name: if version >= 5 {
                    sync.protocol_name
                } else {
                    None
                },
                group_instance_id: if version >= 3 {
                    sync.group_instance_id
                } else {
                    None
                },
                ..sync
            };
            let synced = match coordinator.call(&sync, version).await {
                Ok(r) => r,
                Err(e) if e.retriable() && broken.again().await => {
                    self.coordinator = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match code(synced.error_code) {
                ErrorCode::None => {}
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                    self.reset_generation();
                    continue;
                }
                ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                    self.coordinator = None;
                    continue;
                }
                c if c.retriable() || c == ErrorCode::RebalanceInProgress => continue,
                c => {
                    return Err(Error::kafka(
                        c,
                        format!("SyncGroup {}", self.config.group_id),
                    ));
                }
            }
            let assignment = decode_assignment(&synced.assignment)?;
            self.rejoin.store(false, Ordering::Release);
            self.lost.store(false, Ordering::Release);
            self.assigned_counts = counts;
            self.start_heartbeat(coordinator, network.clone());
            tracing::info!(
                group = self.config.group_id,
                member = self.member_id,
                generation = self.generation,
                ?assignment,
                lost,
                "joined group"
            );
            return Ok(Joined { assignment, lost });
        }
        Err(Error::Timeout(format!(
            "could not join group {}",
            self.config.group_id
        )))
    }

    /// The leader's assignment of every member's subscription, by the
    /// assignor of the protocol the coordinator chose, and the partition
    /// counts it was made for.
    async fn lead(
        &self,
        network: &Arc<Network>,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
        protocol_name: Option<&str>,
    ) -> Result<(
        Vec<SyncGroupRequestAssignment>,
        BTreeMap<String, Option<usize>>,
    )> {
        // JoinGroup before v7 does not name the protocol: ours is the
        // first one every member supports, which with one assignor (all
        // such old-broker setups) is that one.
        let assignor = match protocol_name {
            Some(name) => self.assignors.iter().find(|a| a.name() == name),
            None => self.assignors.first(),
        }
        .ok_or_else(|| {
            Error::kafka(
                ErrorCode::InconsistentGroupProtocol,
                format!(
                    "the coordinator chose assignor {protocol_name:?}, which this member does not offer"
                ),
            )
        })?;
        let mut parsed = Vec::new();
        for m in members {
            parsed.push(Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                subscription: decode_subscription(&m.metadata)?,
            });
        }
        let mut counts = BTreeMap::new();
        for topic in parsed.iter().flat_map(|m| m.subscription.topics.iter()) {
            if counts.contains_key(topic) {
                continue;
            }
            // Also tracks the topic, so the periodic metadata refresh
            // (metadata.max.age.ms) shows partitions added to it later.
            let metadata = network.metadata_for(topic).await?;
            counts.insert(topic.clone(), metadata.partition_count(topic));
        }
        let partitions: BTreeMap<String, i32> = counts
            .iter()
            .filter_map(|(topic, count)| Some((topic.clone(), i32::try_from((*count)?).ok()?)))
            .collect();
        let mut assignment = assignor.assign(&parsed, &partitions);
        if self.protocol == RebalanceProtocol::Cooperative {
            // Java's validateCooperativeAssignment, enforced rather than
            // checked: whatever the assignor did, no partition goes to a new
            // owner while another member still owns it.
            let held = withhold_transfers(&parsed, &mut assignment);
            tracing::debug!(
                assignor = assignor.name(),
                held,
                "cooperative assignment; held-back partitions wait for their owners to revoke"
            );
        }
        let assignments = assignment
            .into_iter()
            .map(|(member_id, topics)| {
                Ok(SyncGroupRequestAssignment {
                    member_id,
                    assignment: encode_assignment(&topics)?,
                    ..Default::default()
                })
            })
            .collect::<Result<_>>()?;
        Ok((assignments, counts))
    }

    /// As the leader, rejoins when `metadata` shows a subscribed topic with
    /// more (or fewer) partitions than the last assignment was made for, or
    /// one that was created or deleted since: the new partitions would
    /// otherwise go unread until something else rebalanced the group.
    pub(crate) fn rejoin_if_metadata_changed(&self, metadata: &ClusterMetadata) {
        let Some(counts) = &self.assigned_counts else {
            return;
        };
        if self.rejoin.load(Ordering::Acquire) {
            return;
        }
        let changed = counts
            .iter()
            .find(|(topic, count)| metadata.partition_count(topic) != **count);
        if let Some((topic, count)) = changed {
            tracing::info!(
                group = self.config.group_id,
                topic,
                assigned_for = ?count,
                now = ?metadata.partition_count(topic),
                "a subscribed topic's partitions changed; rebalancing"
            );
            self.rejoin.store(true, Ordering::Release);
        }
    }

    fn start_heartbeat(&mut self, coordinator: Connection, network: Arc<Network>) {
        let request = HeartbeatRequest {
            group_id: self.config.group_id.clone(),
            generation_id: self.generation,
            member_id: self.member_id.clone(),
            group_instance_id: self.config.instance_id.clone(),
            ..Default::default()
        };
        // A static member keeps its membership until its session ends.
        let leave = self.config.instance_id.is_none();
        // A join just completed: the poll timer starts again here, as Java's
        // heartbeat thread resets its timeouts when enabled after a join. The
        // time the join took inside poll is not time between polls.
        self.reset_poll_timer();
        let heartbeat = Heartbeat {
            network,
            group_id: self.config.group_id.clone(),
            coordinator,
            request,
            leave,
            interval: self.config.heartbeat_interval,
            session_timeout: self.config.session_timeout,
            max_poll_interval: self.config.rebalance_timeout,
            flags: MemberFlags {
                rejoin: self.rejoin.clone(),
                lost: self.lost.clone(),
                poll_timeout: self.poll_timeout.clone(),
                last_poll: self.last_poll.clone(),
                clock: self.clock,
            },
        };
        self.heartbeat = Some(tokio::spawn(heartbeat.run()));
    }

    /// Commits offsets (the next offset to read, per partition).
    pub(crate) async fn commit(
        &mut self,
        network: &Network,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let partitions = offsets.iter().map(|(tp, offset)| {
            let partition = OffsetCommitRequestPartition {
                partition_index: tp.partition,
                committed_offset: *offset,
                committed_leader_epoch: -1,
                ..Default::default()
            };
            (tp.topic.as_str(), partition)
        });
        self.commit_partitions(network, partitions).await
    }

    /// Commits offsets with their leader epochs and metadata.
    pub(crate) async fn commit_with_metadata(
        &mut self,
        network: &Network,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        let partitions = offsets
            .iter()
            .map(|(tp, committed)| (tp.topic.as_str(), committed.commit_entry(tp.partition)));
        self.commit_partitions(network, partitions).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.config.group_id))]
    async fn commit_partitions<'a>(
        &mut self,
        network: &Network,
        partitions: impl Iterator<Item = (&'a str, OffsetCommitRequestPartition)>,
    ) -> Result<()> {
        let topics: Vec<OffsetCommitRequestTopic> = by_topic(partitions)
            .into_iter()
            .map(|(name, partitions)| OffsetCommitRequestTopic {
                name,
                partitions,
                ..Default::default()
            })
            .collect();
        if topics.is_empty() {
            return Ok(());
        }
        let mut retry = CoordinatorRetry::new();
        loop {
            let (group_id, generation, member_id, instance_id) = (
                self.config.group_id.clone(),
                self.generation,
                self.member_id.clone(),
                self.config.instance_id.clone(),
            );
            let response = self
                .call_coordinator(network, &mut retry, |version| OffsetCommitRequest {
                    group_id: group_id.clone(),
                    generation_id_or_member_epoch: generation,
                    member_id: member_id.clone(),
                    group_instance_id: if version >= 7 {
                        instance_id.clone()
                    } else {
                        None
                    },
                    topics: topics.clone(),
                    ..Default::default()
                })
                .await?;
            let failed = response.topics.iter().find_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .find(|p| p.error_code != 0)
                    .map(|p| (code(p.error_code), &topic.name, p.partition_index))
            });
            let Some((c, topic, partition)) = failed else {
                return Ok(());
            };
            if moved_coordinator(c) {
                self.coordinator = None;
            }
            // Rebalance and fencing codes are not retried: the offsets
            // belong to a generation that is over.
            let rebalancing = matches!(
                c,
                ErrorCode::RebalanceInProgress
                    | ErrorCode::IllegalGeneration
                    | ErrorCode::UnknownMemberId
            );
            if rebalancing {
                if generation_over(c) {
                    self.lost.store(true, Ordering::Release);
                }
                self.rejoin.store(true, Ordering::Release);
            } else if c.retriable() && retry.again().await {
                continue;
            }
            return Err(Error::kafka(c, format!("commit {topic}-{partition}")));
        }
    }

    /// Sends the request `build` makes for the coordinator's version, finding the coordinator again and retrying while
    /// it is unreachable or the connection fails retriably.
    async fn call_coordinator<R: Request>(
        &mut self,
        network: &Network,
        retry: &mut CoordinatorRetry,
        build: impl Fn(i16) -> R,
    ) -> Result<R::Response> {
        loop {
            let coordinator = match self.coordinator(network).await {
                Ok(c) => c,
                Err(e) if e.retriable() && retry.again().await => continue,
                Err(e) => return Err(e),
            };
            let version = coordinator.version_for::<R>()?;
            match coordinator.call(&build(version), version).await {
                Ok(response) => return Ok(response),
                Err(e) if e.retriable() && retry.again().await => self.coordinator = None,
                Err(e) => return Err(e),
            }
        }
    }

    /// The committed offsets of `partitions` (absent when none was committed).
    pub(crate) async fn committed(
        &mut self,
        network: &Network,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let committed = self.committed_with_metadata(network, partitions).await?;
        Ok(committed
            .into_iter()
            .map(|(tp, committed)| (tp, committed.offset))
            .collect())
    }

    /// [`committed`](Self::committed) with each offset's leader epoch and
    /// metadata.
    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.config.group_id))]
    pub(crate) async fn committed_with_metadata(
        &mut self,
        network: &Network,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        let topics = by_topic_indexes(partitions);
        let mut retry = CoordinatorRetry::new();
        loop {
            let group_id = self.config.group_id.clone();
            let require_stable = self.config.require_stable;
            let response = self
                .call_coordinator(network, &mut retry, |version| OffsetFetchRequest {
                    group_id: group_id.clone(),
                    topics: Some(topics.clone()),
                    require_stable: require_stable && version >= 7,
                    ..Default::default()
                })
                .await?;
            // An error here must not read as "nothing committed": the
            // consumer would then apply auto.offset.reset and, with
            // `latest`, skip what was committed but not yet read.
            let failed = std::iter::once(code(response.error_code))
                .chain(
                    response
                        .topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| code(p.error_code)),
                )
                .find(|c| !c.is_ok());
            if let Some(c) = failed {
                if moved_coordinator(c) {
                    self.coordinator = None;
                }
                if c.retriable() && retry.again().await {
                    continue;
                }
                return Err(Error::kafka(
                    c,
                    format!("OffsetFetch for group {}", self.config.group_id),
                ));
            }
            let mut out = BTreeMap::new();
            for topic in response.topics {
                for p in topic.partitions {
                    if let Some(committed) = OffsetAndMetadata::fetched(&p) {
                        out.insert(
                            TopicPartition::new(&topic.name, p.partition_index),
                            committed,
                        );
                    }
                }
            }
            return Ok(out);
        }
    }

    /// Leaves the group so its partitions move at once.
    #[tracing::instrument(level = "debug", skip_all, fields(group = %self.config.group_id))]
    pub(crate) async fn leave(&mut self, network: &Network) -> Result<()> {
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
        // A static member keeps its membership across restarts, so closing
        // it must not rebalance the group (KIP-345): only its session
        // timeout removes it, as with the Java client.
        if self.member_id.is_empty() || self.config.instance_id.is_some() {
            return Ok(());
        }
        let coordinator = self.coordinator(network).await?;
        let version = coordinator.version_for::<LeaveGroupRequest>()?;
        let request = leave_request(version, &self.config.group_id, &self.member_id, None);
        coordinator.call(&request, version).await?;
        self.member_id.clear();
        Ok(())
    }
}

/// A dynamic member's LeaveGroup in the form `version` reads: one member
/// before v3, a list (with a reason from v5) after.
pub(super) fn leave_request(
    version: i16,
    group_id: &str,
    member_id: &str,
    reason: Option<&str>,
) -> LeaveGroupRequest {
    if version >= 3 {
        LeaveGroupRequest {
            group_id: group_id.to_owned(),
            members: vec![MemberIdentity {
                member_id: member_id.to_owned(),
                reason: reason.map(str::to_owned),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        LeaveGroupRequest {
            group_id: group_id.to_owned(),
            member_id: member_id.to_owned(),
            ..Default::default()
        }
    }
}

/// Whether `code` says this member is no longer part of its generation.
pub(super) fn generation_over(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration | ErrorCode::FencedInstanceId
    )
}

/// Whether `code` says the group's coordinator is elsewhere or not ready.
fn moved_coordinator(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
    )
}

/// Retries of a coordinator call that failed retriably (coordinator moved,
/// loading, unreachable): bounded in count, with growing pauses, about 20 s
/// in all, so a commit or offset fetch rides out a coordinator failover
/// and never spins.
struct CoordinatorRetry {
    attempts: u32,
}

impl CoordinatorRetry {
    const MAX_ATTEMPTS: u32 = 30;

    fn new() -> Self {
        Self { attempts: 0 }
    }

    /// Waits before the next attempt; false when none is left.
    async fn again(&mut self) -> bool {
        self.attempts += 1;
        if self.attempts > Self::MAX_ATTEMPTS {
            return false;
        }
        let pause = Duration::from_millis(50 << self.attempts.min(4)).min(Duration::from_secs(1));
        tokio::time::sleep(pause).await;
        true
    }
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}
