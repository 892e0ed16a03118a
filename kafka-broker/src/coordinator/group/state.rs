//! Group and member metadata and the transitions of the group state machine
//! (Kafka's `GroupMetadata` / `MemberMetadata` plus the rebalance steps of its
//! `GroupCoordinator`). Everything here runs with the coordinator's lock held
//! and never waits: callers that must wait get a oneshot receiver.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use tokio::sync::{oneshot, watch};
use tokio::time::{Duration, Instant};
use tracing::{debug, info, warn};

use super::{CommittedOffset, GroupConfig, GroupState};

/// How long a new member's JoinGroup may wait before the member is dropped
/// (Kafka's `NewMemberJoinTimeoutMs`, KIP-394): a new member cannot
/// heartbeat yet, and a client that gave up on a long rebalance would
/// otherwise leave a ghost member behind.
pub(super) const NEW_MEMBER_JOIN_TIMEOUT_MS: u64 = 5 * 60 * 1000;

/// The shortest wait before retrying a rebalance in which no member rejoined
/// (only static members that did not rejoin are left; their session timeouts
/// will remove them). Keeps a zero rebalance timeout from spinning the timer.
const MIN_REBALANCE_RETRY_MS: u64 = 100;

/// `now + ms`, saturating to a year ahead for absurd values instead of
/// overflowing.
pub(super) fn deadline_after(now: Instant, ms: u64) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now.checked_add(Duration::from_millis(ms).min(YEAR))
        .unwrap_or(now)
}

/// A non-negative millisecond count from a protocol `i32`.
pub(super) fn non_negative_ms(ms: i32) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

/// Either an answer now, or a receiver that will carry it.
pub(super) enum Step<T> {
    /// The answer is known.
    Ready(T),
    /// The call waits for the group to progress (a rebalance, the leader's
    /// assignment); the sender is kept in the member.
    Wait(oneshot::Receiver<T>),
}

/// The version-independent answer to a JoinGroup call.
pub(super) struct JoinOutcome {
    pub error: ErrorCode,
    pub member_id: String,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub members: Vec<JoinGroupResponseMember>,
}

impl JoinOutcome {
    /// A failed join (Kafka's `JoinGroupResult(memberId, error)`).
    pub fn error(member_id: String, error: ErrorCode) -> Self {
        Self {
            error,
            member_id,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }

    /// The response at `version`, leaving out what the version cannot carry.
    pub fn into_response(self, version: i16) -> JoinGroupResponse {
        let members = self
            .members
            .into_iter()
            .map(|mut member| {
                if version < 5 {
                    member.group_instance_id = None;
                }
                member
            })
            .collect();
        JoinGroupResponse {
            error_code: self.error.code(),
            generation_id: self.generation_id,
            protocol_type: if version >= 7 {
                self.protocol_type
            } else {
                None
            },
            // Nullable only from v7; older versions get "" like Kafka sends.
            protocol_name: match self.protocol_name {
                None if version < 7 => Some(String::new()),
                name => name,
            },
            leader: self.leader,
            skip_assignment: version >= 9 && self.skip_assignment,
            member_id: self.member_id,
            members,
            ..JoinGroupResponse::default()
        }
    }
}

/// The version-independent answer to a SyncGroup call.
pub(super) struct SyncOutcome {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    /// A failed sync.
    pub fn error(error: ErrorCode) -> Self {
        Self {
            error,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }

    /// The response at `version`.
    pub fn into_response(self, version: i16) -> SyncGroupResponse {
        let (protocol_type, protocol_name) = if version >= 5 {
            (self.protocol_type, self.protocol_name)
        } else {
            (None, None)
        };
        SyncGroupResponse {
            error_code: self.error.code(),
            protocol_type,
            protocol_name,
            assignment: self.assignment,
            ..SyncGroupResponse::default()
        }
    }
}

/// What a JoinGroup says about the joining member.
pub(super) struct JoinParams {
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
}

/// One member of a group (Kafka's `MemberMetadata`).
pub(super) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// The member's protocols in its order of preference, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The names of `protocols`, for constant-time support checks.
    protocol_names: HashSet<String>,
    /// The assignment the leader gave this member in the current generation.
    pub assignment: Bytes,
    /// Set while the member's JoinGroup call waits for the rebalance.
    pub awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    /// Set while the member's SyncGroup call waits for the leader.
    pub awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    /// Joined but not yet through a completed rebalance: such a member is
    /// timed by [`NEW_MEMBER_JOIN_TIMEOUT_MS`] rather than its session.
    pub is_new: bool,
    /// When the member is removed unless it heartbeats (or joins or syncs)
    /// first. `None` while its liveness is implied by a waiting call.
    pub deadline: Option<Instant>,
    /// Join order, for a stable member order in responses and leader choice.
    seq: u64,
}

impl Member {
    /// A member joining the group for the first time.
    pub fn new(
        member_id: String,
        group_instance_id: Option<String>,
        params: JoinParams,
        awaiting_join: oneshot::Sender<JoinOutcome>,
        now: Instant,
    ) -> Self {
        let protocol_names = params
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        Self {
            member_id,
            group_instance_id,
            client_id: params.client_id,
            client_host: params.client_host,
            rebalance_timeout_ms: params.rebalance_timeout_ms,
            session_timeout_ms: params.session_timeout_ms,
            protocol_type: params.protocol_type,
            protocols: params.protocols,
            protocol_names,
            assignment: Bytes::new(),
            awaiting_join: Some(awaiting_join),
            awaiting_sync: None,
            is_new: true,
            deadline: Some(deadline_after(now, NEW_MEMBER_JOIN_TIMEOUT_MS)),
            seq: 0,
        }
    }

    /// Takes the protocols and timeouts of a rejoin.
    pub fn update(&mut self, params: JoinParams) {
        self.protocol_names = params
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .collect();
        self.protocols = params.protocols;
        self.rebalance_timeout_ms = params.rebalance_timeout_ms;
        self.session_timeout_ms = params.session_timeout_ms;
    }

    /// Whether the member supports the named protocol.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocol_names.contains(protocol)
    }

    /// The member's metadata for a protocol (empty if it does not support it).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether a rejoin carries exactly the protocols (names, order and
    /// metadata) the member already has: then it changes nothing.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols.as_slice() == protocols
    }

    /// The member's first protocol among the candidates.
    fn vote<'a>(&'a self, candidates: &HashSet<&str>) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| candidates.contains(name))
    }

    pub fn session_timeout(&self) -> u64 {
        non_negative_ms(self.session_timeout_ms)
    }

    /// Pushes the session deadline back by one session timeout.
    pub fn touch(&mut self, now: Instant) {
        self.deadline = Some(deadline_after(now, self.session_timeout()));
    }

    /// Answers whatever call of this member is waiting, with an error.
    fn fail_waiting_calls(&mut self, member_id_for_join: &str, error: ErrorCode) {
        if let Some(waiting) = self.awaiting_join.take() {
            // The receiver may be gone (client disconnected): nothing to do then.
            let _ = waiting.send(JoinOutcome::error(member_id_for_join.to_owned(), error));
        }
        if let Some(waiting) = self.awaiting_sync.take() {
            let _ = waiting.send(SyncOutcome::error(error));
        }
    }
}

/// An offset with its commit order within the group, so that a transaction
/// committing later does not overwrite a plain commit made after the
/// transactional one (Kafka compares positions in the offsets log).
#[derive(Clone)]
pub(super) struct StoredOffset {
    pub offset: CommittedOffset,
    pub seq: u64,
}

/// Offsets by topic, then partition.
pub(super) type OffsetMap = BTreeMap<String, BTreeMap<i32, StoredOffset>>;

/// One classic group (Kafka's `GroupMetadata`).
pub(super) struct Group {
    pub group_id: String,
    pub state: GroupState,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    pub members: HashMap<String, Member>,
    next_member_seq: u64,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline by
    /// which the member must rejoin with it.
    pub pending_members: HashMap<String, Instant>,
    /// group.instance.id -> the member id that currently holds it.
    pub static_members: HashMap<String, String>,
    /// A member joined during the initial rebalance delay: wait once more.
    new_member_added: bool,
    /// When the join phase ends regardless of who rejoined.
    join_deadline: Option<Instant>,
    /// While the initial rebalance delay runs (Kafka's InitialDelayedJoin):
    /// how much of the rebalance timeout is left for further extensions.
    initial_delay_remaining_ms: Option<u64>,
    /// Members that have not sent SyncGroup for the current generation.
    pending_sync: HashSet<String>,
    /// When members still in `pending_sync` are removed.
    sync_deadline: Option<Instant>,
    pub offsets: OffsetMap,
    /// Transactional offsets by producer id, invisible until committed.
    pub pending_txn_offsets: HashMap<i64, OffsetMap>,
    next_offset_seq: u64,
    /// Wakes the group's timer task; dropping it stops the task.
    pub timer: Option<watch::Sender<()>>,
}

impl Group {
    pub fn new(group_id: String) -> Self {
        Self {
            group_id,
            state: GroupState::Empty,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: HashMap::new(),
            next_member_seq: 0,
            pending_members: HashMap::new(),
            static_members: HashMap::new(),
            new_member_added: false,
            join_deadline: None,
            initial_delay_remaining_ms: None,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            offsets: BTreeMap::new(),
            pending_txn_offsets: HashMap::new(),
            next_offset_seq: 0,
            timer: None,
        }
    }

    pub fn transition(&mut self, to: GroupState) {
        debug!(group = %self.group_id, from = %self.state, to = %to, "group state transition");
        self.state = to;
        if to != GroupState::PreparingRebalance {
            self.join_deadline = None;
            self.initial_delay_remaining_ms = None;
        }
    }

    /// A member joined: during the initial rebalance delay that earns the
    /// group one more delay (Kafka's `newMemberAdded`).
    pub fn note_member_added(&mut self) {
        if self.state == GroupState::PreparingRebalance && self.initial_delay_remaining_ms.is_some()
        {
            self.new_member_added = true;
        }
    }

    /// A sequence number for the next offset write.
    pub fn next_offset_seq(&mut self) -> u64 {
        self.next_offset_seq += 1;
        self.next_offset_seq
    }

    /// Whether the group holds nothing at all (a group created by a join
    /// that failed, for instance).
    pub fn is_unused(&self) -> bool {
        self.state == GroupState::Empty
            && self.members.is_empty()
            && self.pending_members.is_empty()
            && self.offsets.is_empty()
            && self.pending_txn_offsets.is_empty()
    }

    pub fn members_in_join_order(&self) -> Vec<&Member> {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|member| member.seq);
        members
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// The largest rebalance timeout of the members.
    pub fn rebalance_timeout_ms(&self) -> u64 {
        self.members
            .values()
            .map(|member| non_negative_ms(member.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|member| member.awaiting_join.is_some())
            .count()
    }

    /// Every member rejoined and no handed-out member id is still expected.
    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty()
            && self
                .members
                .values()
                .all(|member| member.awaiting_join.is_some())
    }

    /// Whether a member with this protocol type and these protocols may join:
    /// the type must match the group's and at least one protocol must be
    /// supported by every member (any non-empty offer fits an empty group).
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty || self.members.is_empty() {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|(name, _)| self.members.values().all(|member| member.supports(name)))
        }
    }

    /// Kafka's `validateCurrentMember`: a given group.instance.id must map to
    /// this member id (else the caller is a fenced former incarnation), and
    /// the member id must belong to the group.
    pub fn validate_current_member(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
    ) -> Option<ErrorCode> {
        if let Some(instance_id) = group_instance_id {
            match self.static_members.get(instance_id) {
                Some(current) if current != member_id => {
                    info!(
                        group = %self.group_id,
                        member = member_id,
                        instance = instance_id,
                        current = %current,
                        "request from a fenced static member"
                    );
                    return Some(ErrorCode::FencedInstanceId);
                }
                Some(_) => {}
                None => return Some(ErrorCode::UnknownMemberId),
            }
        }
        if self.members.contains_key(member_id) {
            None
        } else {
            Some(ErrorCode::UnknownMemberId)
        }
    }

    /// Kafka's `acceptJoiningMember`: room for one more member?
    pub fn accept_joining_member(&self, member_id: &str, max_group_size: usize) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            // Awaiting members, not the size: the size may exceed the limit
            // if the limit was lowered, and counting arrivals lets the last
            // ones to rejoin be the ones turned away.
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(|member| member.awaiting_join.is_some())
                    || self.num_awaiting_join() < max_group_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max_group_size
            }
        }
    }

    /// Adds a member (its id no longer pending).
    pub fn add_member(&mut self, mut member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        if let Some(instance_id) = &member.group_instance_id {
            self.static_members
                .insert(instance_id.clone(), member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        self.next_member_seq += 1;
        member.seq = self.next_member_seq;
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member or pending member id, handing leadership to the
    /// earliest remaining member. Waiting calls are not answered here.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        self.pending_members.remove(member_id);
        let member = self.members.remove(member_id)?;
        let held_instance = member.group_instance_id.as_ref().filter(|instance_id| {
            self.static_members.get(*instance_id).map(String::as_str) == Some(member_id)
        });
        if let Some(instance_id) = held_instance {
            self.static_members.remove(instance_id);
        }
        self.remove_pending_sync_member(member_id);
        if self.is_leader(member_id) {
            self.leader_id = self
                .members_in_join_order()
                .first()
                .map(|member| member.member_id.clone());
        }
        Some(member)
    }

    /// Kafka's `removeMemberAndUpdateGroup`: removes a member, fails its
    /// waiting calls with UNKNOWN_MEMBER_ID and moves the rebalance along.
    pub fn remove_member_and_update_group(
        &mut self,
        member_id: &str,
        reason: &str,
        config: &GroupConfig,
        now: Instant,
    ) {
        let Some(mut member) = self.remove_member(member_id) else {
            return;
        };
        member.fail_waiting_calls("", ErrorCode::UnknownMemberId);
        info!(group = %self.group_id, member = member_id, reason, "member removed");
        match self.state {
            GroupState::Dead | GroupState::Empty => {}
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(reason, config, now);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
        }
    }

    /// Forgets a member id handed out with MEMBER_ID_REQUIRED.
    pub fn remove_pending_member(&mut self, member_id: &str, now: Instant) -> bool {
        let removed = self.pending_members.remove(member_id).is_some();
        if removed && self.state == GroupState::PreparingRebalance {
            self.maybe_complete_join(now);
        }
        removed
    }

    /// Swaps the member id of a static member (Kafka's
    /// `replaceStaticMember`): calls still waiting under the old id are
    /// answered FENCED_INSTANCE_ID, and the old id is unknown from now on.
    pub fn replace_static_member(&mut self, instance_id: &str, old_id: &str, new_id: &str) -> bool {
        let Some(mut member) = self.members.remove(old_id) else {
            return false;
        };
        member.fail_waiting_calls(old_id, ErrorCode::FencedInstanceId);
        member.member_id = new_id.to_owned();
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.to_owned());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_owned());
        }
        self.static_members
            .insert(instance_id.to_owned(), new_id.to_owned());
        self.members.insert(new_id.to_owned(), member);
        true
    }

    /// Starts a rebalance if the state allows one.
    pub fn maybe_prepare_rebalance(&mut self, reason: &str, config: &GroupConfig, now: Instant) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(reason, config, now);
        }
    }

    /// Moves to PreparingRebalance: waiting syncs are told to rejoin, and the
    /// join phase gets its deadline (the initial delay for an Empty group).
    pub fn prepare_rebalance(&mut self, reason: &str, config: &GroupConfig, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_error(ErrorCode::RebalanceInProgress, now);
        }
        self.pending_sync.clear();
        self.sync_deadline = None;

        let rebalance_timeout = self.rebalance_timeout_ms();
        let initial_delay = config.initial_rebalance_delay_ms;
        let delayed = self.state == GroupState::Empty && initial_delay > 0;
        info!(
            group = %self.group_id,
            state = %self.state,
            generation = self.generation_id,
            reason,
            "preparing to rebalance"
        );
        self.transition(GroupState::PreparingRebalance);
        if delayed {
            self.new_member_added = false;
            self.initial_delay_remaining_ms = Some(rebalance_timeout.saturating_sub(initial_delay));
            self.join_deadline = Some(deadline_after(now, initial_delay));
        } else {
            self.join_deadline = Some(deadline_after(now, rebalance_timeout));
            self.maybe_complete_join(now);
        }
    }

    /// Ends the join phase if every member has rejoined (never during the
    /// initial delay, which always runs its course).
    pub fn maybe_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance
            && self.initial_delay_remaining_ms.is_none()
            && self.all_members_joined()
        {
            self.complete_join(now);
        }
    }

    /// The join deadline passed: extend the initial delay if members keep
    /// arriving, else end the join phase with whoever rejoined.
    fn on_join_deadline(&mut self, config: &GroupConfig, now: Instant) {
        if let Some(remaining) = self.initial_delay_remaining_ms {
            if self.new_member_added && remaining > 0 {
                self.new_member_added = false;
                let delay = config.initial_rebalance_delay_ms.min(remaining);
                self.initial_delay_remaining_ms = Some(remaining - delay);
                self.join_deadline = Some(deadline_after(now, delay));
                debug!(group = %self.group_id, delay_ms = delay, "new members arrived; extending the initial rebalance delay");
                return;
            }
            self.initial_delay_remaining_ms = None;
        }
        self.complete_join(now);
    }

    /// Kafka's `onCompleteJoin`: drops dynamic members that did not rejoin,
    /// starts the next generation and answers every waiting JoinGroup.
    fn complete_join(&mut self, now: Instant) {
        self.initial_delay_remaining_ms = None;
        let not_rejoined: Vec<String> = self
            .members
            .values()
            .filter(|member| member.awaiting_join.is_none() && member.group_instance_id.is_none())
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in &not_rejoined {
            if let Some(mut member) = self.remove_member(member_id) {
                member.fail_waiting_calls("", ErrorCode::UnknownMemberId);
            }
        }
        if !not_rejoined.is_empty() {
            info!(group = %self.group_id, members = ?not_rejoined, "removed members that did not rejoin in time");
        }

        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left; wait for
            // them to come back or for their sessions to expire.
            warn!(group = %self.group_id, "no member rejoined; extending the rebalance");
            let retry = self.rebalance_timeout_ms().max(MIN_REBALANCE_RETRY_MS);
            self.join_deadline = Some(deadline_after(now, retry));
            return;
        }

        self.generation_id = self.generation_id.wrapping_add(1);
        self.pending_sync.clear();
        self.sync_deadline = None;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty);
            info!(group = %self.group_id, generation = self.generation_id, "group is now empty");
            return;
        }

        self.protocol_name = Some(self.select_protocol());
        self.transition(GroupState::CompletingRebalance);
        info!(
            group = %self.group_id,
            generation = self.generation_id,
            members = self.members.len(),
            protocol = ?self.protocol_name,
            leader = ?self.leader_id,
            "rebalance complete; waiting for the leader's assignment"
        );

        let leader = self.leader_id.clone().unwrap_or_default();
        let mut leader_view = Some(self.current_member_metadata());
        let generation_id = self.generation_id;
        for member in self.members.values_mut() {
            let members = if member.member_id == leader {
                leader_view.take().unwrap_or_default()
            } else {
                Vec::new()
            };
            if let Some(waiting) = member.awaiting_join.take() {
                let _ = waiting.send(JoinOutcome {
                    error: ErrorCode::None,
                    member_id: member.member_id.clone(),
                    generation_id,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    leader: leader.clone(),
                    skip_assignment: false,
                    members,
                });
            }
            member.touch(now);
            member.is_new = false;
            self.pending_sync.insert(member.member_id.clone());
        }
        self.sync_deadline = Some(deadline_after(now, self.rebalance_timeout_ms()));
    }

    /// Keeps the leader if it rejoined, else picks the earliest member that
    /// did. False if nobody rejoined (or there is no leader at all).
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = &self.leader_id else {
            return false;
        };
        if self
            .members
            .get(leader)
            .is_some_and(|member| member.awaiting_join.is_some())
        {
            return true;
        }
        let new_leader = self
            .members_in_join_order()
            .into_iter()
            .find(|member| member.awaiting_join.is_some())
            .map(|member| member.member_id.clone());
        match new_leader {
            Some(new_leader) => {
                info!(group = %self.group_id, leader = %new_leader, "leader did not rejoin; elected a new one");
                self.leader_id = Some(new_leader);
                true
            }
            None => false,
        }
    }

    /// Kafka's protocol vote: among the protocols every member supports,
    /// each member votes for its most preferred; most votes wins (ties go to
    /// the protocol voted for first, in join order).
    pub fn select_protocol(&self) -> String {
        let members = self.members_in_join_order();
        let Some(first) = members.first() else {
            return String::new();
        };
        let candidates: HashSet<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| members.iter().all(|member| member.supports(name)))
            .collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in &members {
            if let Some(choice) = member.vote(&candidates) {
                match votes.iter_mut().find(|(name, _)| *name == choice) {
                    Some((_, count)) => *count += 1,
                    None => votes.push((choice, 1)),
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, count) in votes {
            if best.is_none_or(|(_, best_count)| count > best_count) {
                best = Some((name, count));
            }
        }
        best.map(|(name, _)| name)
            .or_else(|| first.protocols.first().map(|(name, _)| name.as_str()))
            .unwrap_or_default()
            .to_owned()
    }

    /// Every member with its metadata for the chosen protocol, for the
    /// leader's JoinGroup response.
    pub fn current_member_metadata(&self) -> Vec<JoinGroupResponseMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members_in_join_order()
            .into_iter()
            .map(|member| JoinGroupResponseMember {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                metadata: member.metadata(protocol),
                ..JoinGroupResponseMember::default()
            })
            .collect()
    }

    /// The current generation as a JoinGroup answer for `member_id`.
    pub fn current_join_outcome(
        &self,
        member_id: &str,
        leader: String,
        members: Vec<JoinGroupResponseMember>,
        skip_assignment: bool,
    ) -> JoinOutcome {
        JoinOutcome {
            error: ErrorCode::None,
            member_id: member_id.to_owned(),
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            skip_assignment,
            members,
        }
    }

    /// Stores the leader's assignment (missing members get empty bytes) and
    /// answers every waiting SyncGroup.
    pub fn set_and_propagate_assignment(
        &mut self,
        mut assignments: HashMap<String, Bytes>,
        now: Instant,
    ) {
        for member in self.members.values_mut() {
            member.assignment = assignments.remove(&member.member_id).unwrap_or_default();
        }
        self.propagate_assignment(ErrorCode::None, now);
    }

    fn reset_and_propagate_assignment_error(&mut self, error: ErrorCode, now: Instant) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(error, now);
    }

    /// Answers waiting SyncGroups and restarts those members' sessions: their
    /// deadlines were suspended while they waited.
    fn propagate_assignment(&mut self, error: ErrorCode, now: Instant) {
        let (protocol_type, protocol_name) = if error == ErrorCode::None {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        for member in self.members.values_mut() {
            if let Some(waiting) = member.awaiting_sync.take() {
                let _ = waiting.send(SyncOutcome {
                    error,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: member.assignment.clone(),
                });
                member.touch(now);
            }
        }
    }

    /// The member sent its SyncGroup for this generation.
    pub fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    /// Members that did not sync within the rebalance timeout are removed and
    /// the group rebalances (Kafka's `onExpirePendingSync`).
    fn on_sync_deadline(&mut self, config: &GroupConfig, now: Instant) {
        self.sync_deadline = None;
        let late: Vec<String> = self.pending_sync.drain().collect();
        if late.is_empty() {
            return;
        }
        for member_id in &late {
            if let Some(mut member) = self.remove_member(member_id) {
                member.fail_waiting_calls("", ErrorCode::UnknownMemberId);
            }
        }
        info!(group = %self.group_id, members = ?late, "removed members that did not sync in time");
        self.prepare_rebalance("members did not send SyncGroup in time", config, now);
    }

    /// Runs every deadline that has passed and returns the next one.
    pub fn on_timer(&mut self, config: &GroupConfig, now: Instant) -> Option<Instant> {
        let expired: Vec<String> = self
            .pending_members
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(member_id, _)| member_id.clone())
            .collect();
        for member_id in expired {
            info!(group = %self.group_id, member = %member_id, "pending member did not rejoin within its session timeout");
            self.remove_pending_member(&member_id, now);
        }

        let expired: Vec<String> = self
            .members
            .values()
            .filter(|member| member.deadline.is_some_and(|deadline| deadline <= now))
            .map(|member| member.member_id.clone())
            .collect();
        for member_id in expired {
            // Earlier removals may have removed this member or completed a
            // rebalance that restarted its session: look again.
            let Some(member) = self.members.get_mut(&member_id) else {
                continue;
            };
            if member.deadline.is_none_or(|deadline| deadline > now) {
                continue;
            }
            if !member.is_new && (member.awaiting_join.is_some() || member.awaiting_sync.is_some())
            {
                // A member waiting in a rebalance counts as alive; the
                // rebalance restarts its session when it answers.
                member.deadline = None;
                continue;
            }
            let reason = if member.is_new {
                "new member did not complete its join in time"
            } else {
                "session timeout expired"
            };
            self.remove_member_and_update_group(&member_id, reason, config, now);
        }

        if self.state == GroupState::PreparingRebalance
            && self.join_deadline.is_some_and(|deadline| deadline <= now)
        {
            self.on_join_deadline(config, now);
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && self.sync_deadline.is_some_and(|deadline| deadline <= now)
        {
            self.on_sync_deadline(config, now);
        }
        self.next_deadline()
    }

    /// The earliest deadline the timer task must wake up for.
    pub fn next_deadline(&self) -> Option<Instant> {
        let join = (self.state == GroupState::PreparingRebalance)
            .then_some(self.join_deadline)
            .flatten();
        let sync = matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        )
        .then_some(self.sync_deadline)
        .flatten();
        self.pending_members
            .values()
            .copied()
            .chain(self.members.values().filter_map(|member| member.deadline))
            .chain(join)
            .chain(sync)
            .min()
    }
}
