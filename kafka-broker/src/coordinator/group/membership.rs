//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info};
use uuid::Uuid;

use super::state::{Group, JoinOutcome, JoinParams, Member, Step, SyncOutcome, deadline_after};
use super::{GroupConfig, GroupCoordinator, GroupState};

impl GroupCoordinator {
    /// Handles JoinGroup (all versions).
    ///
    /// Waits while the group rebalances: the answer comes when every known
    /// member has rejoined or the rebalance timeout expired. From v4 a member
    /// without a member id (and without `group_instance_id`) first gets
    /// `MEMBER_ID_REQUIRED` with a fresh id to rejoin with; older versions
    /// get the id in the final answer. A static member (v5+) rejoining with
    /// an empty member id takes over its instance's membership under a new
    /// id, fencing the old one; in a Stable group whose protocol choice it
    /// does not change, it gets the current generation back at once, without
    /// a rebalance (the v9 leader is told `skip_assignment`).
    ///
    /// `client_id` and `client_host` come from the request header and the
    /// connection; they are reported by DescribeGroups.
    pub async fn join_group(
        self: &Arc<Self>,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let member_id = request.member_id.clone();
        let outcome = match self.begin_join(request, version, client_id, client_host) {
            Step::Ready(outcome) => outcome,
            // The member's call was superseded or the coordinator dropped its
            // state: let the client look for the coordinator and retry.
            Step::Wait(waiting) => waiting.await.unwrap_or_else(|_| {
                JoinOutcome::error(member_id, ErrorCode::CoordinatorNotAvailable)
            }),
        };
        outcome.into_response(version)
    }

    fn begin_join(
        self: &Arc<Self>,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> Step<JoinOutcome> {
        let JoinGroupRequest {
            group_id,
            session_timeout_ms,
            rebalance_timeout_ms,
            member_id,
            group_instance_id,
            protocol_type,
            protocols,
            ..
        } = request;
        if group_id.is_empty() {
            return Step::Ready(JoinOutcome::error(member_id, ErrorCode::InvalidGroupId));
        }
        if session_timeout_ms < self.config.min_session_timeout_ms
            || session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Step::Ready(JoinOutcome::error(
                member_id,
                ErrorCode::InvalidSessionTimeout,
            ));
        }
        let params = JoinParams {
            client_id: client_id.to_owned(),
            client_host: client_host.to_owned(),
            // v0 has no rebalance timeout: the session timeout serves for both.
            rebalance_timeout_ms: if version == 0 {
                session_timeout_ms
            } else {
                rebalance_timeout_ms
            },
            session_timeout_ms,
            protocol_type,
            protocols: protocols
                .into_iter()
                .map(|protocol| (protocol.name, protocol.metadata))
                .collect(),
        };
        let group_instance_id = if version >= 5 {
            group_instance_id
        } else {
            None
        };
        let is_unknown_member = member_id.is_empty();

        let now = Instant::now();
        let mut groups = self.lock_groups();
        let created = !groups.contains_key(&group_id);
        if created && !is_unknown_member {
            return Step::Ready(JoinOutcome::error(member_id, ErrorCode::UnknownMemberId));
        }
        let group = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id.clone()));

        let step = if !group.accept_joining_member(&member_id, self.config.max_group_size) {
            info!(group = %group_id, member = %member_id, "group is full; join rejected");
            group.remove_member(&member_id);
            Step::Ready(JoinOutcome::error(
                String::new(),
                ErrorCode::GroupMaxSizeReached,
            ))
        } else if is_unknown_member {
            join_new_member(group, group_instance_id, version, params, &self.config, now)
        } else {
            join_current_member(
                group,
                member_id,
                group_instance_id,
                params,
                &self.config,
                now,
            )
        };
        if group.state == GroupState::PreparingRebalance {
            group.maybe_complete_join(now);
        }

        // A group this join created and then turned down holds nothing: do not
        // leave it behind for ListGroups to show.
        let failed = matches!(&step, Step::Ready(outcome) if outcome.error != ErrorCode::None);
        if created && failed && group.is_unused() {
            groups.remove(&group_id);
        } else {
            self.touch_timer(group);
        }
        step
    }

    /// Handles SyncGroup (all versions).
    ///
    /// In CompletingRebalance the call waits until the leader's SyncGroup
    /// brings the assignments; every waiting member then gets its own (empty
    /// if the leader left it out) and the group becomes Stable. In Stable the
    /// member's current assignment is returned at once. A rebalance starting
    /// meanwhile answers waiting calls with `REBALANCE_IN_PROGRESS`.
    pub async fn sync_group(
        self: &Arc<Self>,
        request: SyncGroupRequest,
        version: i16,
    ) -> SyncGroupResponse {
        let outcome = match self.begin_sync(request, version) {
            Step::Ready(outcome) => outcome,
            // Superseded by another SyncGroup of the same member (or the
            // coordinator is gone): rejoining is always safe.
            Step::Wait(waiting) => waiting
                .await
                .unwrap_or_else(|_| SyncOutcome::error(ErrorCode::RebalanceInProgress)),
        };
        outcome.into_response(version)
    }

    fn begin_sync(self: &Arc<Self>, request: SyncGroupRequest, version: i16) -> Step<SyncOutcome> {
        let SyncGroupRequest {
            group_id,
            generation_id,
            member_id,
            group_instance_id,
            protocol_type,
            protocol_name,
            assignments,
            ..
        } = request;
        if group_id.is_empty() {
            return Step::Ready(SyncOutcome::error(ErrorCode::InvalidGroupId));
        }
        let group_instance_id = if version >= 3 {
            group_instance_id
        } else {
            None
        };
        let (protocol_type, protocol_name) = if version >= 5 {
            (protocol_type, protocol_name)
        } else {
            (None, None)
        };

        let now = Instant::now();
        let mut groups = self.lock_groups();
        let Some(group) = groups.get_mut(&group_id) else {
            return Step::Ready(SyncOutcome::error(ErrorCode::UnknownMemberId));
        };
        let step = sync_member(
            group,
            SyncParams {
                member_id,
                generation_id,
                group_instance_id,
                protocol_type,
                protocol_name,
                assignments,
            },
            now,
        );
        self.touch_timer(group);
        step
    }

    /// Handles Heartbeat (all versions): keeps the member's session alive.
    /// `REBALANCE_IN_PROGRESS` tells the member to rejoin.
    pub fn heartbeat(
        self: &Arc<Self>,
        request: HeartbeatRequest,
        version: i16,
    ) -> HeartbeatResponse {
        let error = self.heartbeat_error(request, version);
        HeartbeatResponse {
            error_code: error.code(),
            ..HeartbeatResponse::default()
        }
    }

    fn heartbeat_error(self: &Arc<Self>, request: HeartbeatRequest, version: i16) -> ErrorCode {
        if request.group_id.is_empty() {
            return ErrorCode::InvalidGroupId;
        }
        let group_instance_id = if version >= 3 {
            request.group_instance_id.as_deref()
        } else {
            None
        };
        let now = Instant::now();
        let mut groups = self.lock_groups();
        let Some(group) = groups.get_mut(&request.group_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if group.state == GroupState::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if let Some(error) = group.validate_current_member(&request.member_id, group_instance_id) {
            return error;
        }
        if request.generation_id != group.generation_id {
            return ErrorCode::IllegalGeneration;
        }
        let error = match group.state {
            GroupState::Empty | GroupState::Dead => return ErrorCode::UnknownMemberId,
            GroupState::PreparingRebalance => ErrorCode::RebalanceInProgress,
            // A member may heartbeat between its JoinGroup answer and its
            // SyncGroup: treat it like any other heartbeat.
            GroupState::CompletingRebalance | GroupState::Stable => ErrorCode::None,
        };
        if let Some(member) = group.members.get_mut(&request.member_id) {
            member.touch(now);
        }
        self.touch_timer(group);
        error
    }

    /// Handles LeaveGroup: one member (v0-2) or a batch identified by member
    /// id and/or `group_instance_id` (v3+, with an error code per member; an
    /// empty member id with an instance id removes whoever holds that
    /// instance). Leaving triggers a rebalance, or empties the group.
    pub fn leave_group(
        self: &Arc<Self>,
        request: LeaveGroupRequest,
        version: i16,
    ) -> LeaveGroupResponse {
        let LeaveGroupRequest {
            group_id,
            member_id,
            members,
            ..
        } = request;
        let leaving = if version >= 3 {
            members
        } else {
            vec![MemberIdentity {
                member_id,
                ..MemberIdentity::default()
            }]
        };
        let (error, results) = self.leave_members(&group_id, leaving);
        if version >= 3 {
            LeaveGroupResponse {
                error_code: error.code(),
                members: results,
                ..LeaveGroupResponse::default()
            }
        } else {
            // One member, no per-member list: its error is the response's.
            let member_error = results
                .iter()
                .map(|member| member.error_code)
                .find(|code| *code != ErrorCode::None.code())
                .unwrap_or(ErrorCode::None.code());
            LeaveGroupResponse {
                error_code: if error == ErrorCode::None {
                    member_error
                } else {
                    error.code()
                },
                ..LeaveGroupResponse::default()
            }
        }
    }

    fn leave_members(
        self: &Arc<Self>,
        group_id: &str,
        leaving: Vec<MemberIdentity>,
    ) -> (ErrorCode, Vec<MemberResponse>) {
        let response = |identity: MemberIdentity, error: ErrorCode| MemberResponse {
            member_id: identity.member_id,
            group_instance_id: identity.group_instance_id,
            error_code: error.code(),
            ..MemberResponse::default()
        };
        if group_id.is_empty() {
            return (ErrorCode::InvalidGroupId, Vec::new());
        }
        let now = Instant::now();
        let mut groups = self.lock_groups();
        let Some(group) = groups.get_mut(group_id) else {
            let results = leaving
                .into_iter()
                .map(|identity| response(identity, ErrorCode::UnknownMemberId))
                .collect();
            return (ErrorCode::None, results);
        };
        if group.state == GroupState::Dead {
            return (ErrorCode::CoordinatorNotAvailable, Vec::new());
        }
        let mut results = Vec::with_capacity(leaving.len().min(group.members.len() + 1));
        for identity in leaving {
            let error = leave_member(group, &identity, &self.config, now);
            results.push(response(identity, error));
        }
        self.touch_timer(group);
        (ErrorCode::None, results)
    }
}

/// JoinGroup without a member id (Kafka's `doNewMemberJoinGroup`).
fn join_new_member(
    group: &mut Group,
    group_instance_id: Option<String>,
    version: i16,
    params: JoinParams,
    config: &GroupConfig,
    now: Instant,
) -> Step<JoinOutcome> {
    if group.state == GroupState::Dead {
        return Step::Ready(JoinOutcome::error(
            String::new(),
            ErrorCode::CoordinatorNotAvailable,
        ));
    }
    if !group.supports_protocols(&params.protocol_type, &params.protocols) {
        return Step::Ready(JoinOutcome::error(
            String::new(),
            ErrorCode::InconsistentGroupProtocol,
        ));
    }
    match group_instance_id {
        Some(instance_id) => {
            let new_member_id = format!("{instance_id}-{}", Uuid::new_v4());
            match group.static_members.get(&instance_id).cloned() {
                Some(old_member_id) => {
                    info!(
                        group = %group.group_id,
                        instance = %instance_id,
                        old = %old_member_id,
                        new = %new_member_id,
                        "static member rejoined with an unknown member id; replacing the old member id"
                    );
                    update_static_member_and_rebalance(
                        group,
                        &instance_id,
                        &old_member_id,
                        new_member_id,
                        version,
                        params,
                        config,
                        now,
                    )
                }
                None => add_member_and_rebalance(
                    group,
                    new_member_id,
                    Some(instance_id),
                    params,
                    config,
                    now,
                ),
            }
        }
        None => {
            let new_member_id = format!("{}-{}", params.client_id, Uuid::new_v4());
            if version >= 4 {
                // KIP-394: hand out the id first, so a client that times out
                // and retries does not leave a ghost member behind.
                debug!(group = %group.group_id, member = %new_member_id, "member id required");
                let deadline = deadline_after(
                    now,
                    super::state::non_negative_ms(params.session_timeout_ms),
                );
                group
                    .pending_members
                    .insert(new_member_id.clone(), deadline);
                Step::Ready(JoinOutcome::error(
                    new_member_id,
                    ErrorCode::MemberIdRequired,
                ))
            } else {
                add_member_and_rebalance(group, new_member_id, None, params, config, now)
            }
        }
    }
}

/// JoinGroup with a member id (Kafka's `doCurrentMemberJoinGroup`).
fn join_current_member(
    group: &mut Group,
    member_id: String,
    group_instance_id: Option<String>,
    params: JoinParams,
    config: &GroupConfig,
    now: Instant,
) -> Step<JoinOutcome> {
    if group.state == GroupState::Dead {
        return Step::Ready(JoinOutcome::error(
            member_id,
            ErrorCode::CoordinatorNotAvailable,
        ));
    }
    if !group.supports_protocols(&params.protocol_type, &params.protocols) {
        return Step::Ready(JoinOutcome::error(
            member_id,
            ErrorCode::InconsistentGroupProtocol,
        ));
    }
    if group.pending_members.contains_key(&member_id) {
        // Pending ids are only handed to dynamic members; a static member
        // presenting one is confused: make it start over.
        if group_instance_id.is_some() {
            return Step::Ready(JoinOutcome::error(member_id, ErrorCode::UnknownMemberId));
        }
        return add_member_and_rebalance(group, member_id, None, params, config, now);
    }
    if let Some(error) = group.validate_current_member(&member_id, group_instance_id.as_deref()) {
        return Step::Ready(JoinOutcome::error(member_id, error));
    }
    let Some(member) = group.members.get_mut(&member_id) else {
        return Step::Ready(JoinOutcome::error(member_id, ErrorCode::UnknownMemberId));
    };
    // A join proves the member alive (a new member stays on its join timeout).
    if !member.is_new {
        member.touch(now);
    }
    let unchanged = member.matches(&params.protocols);
    match group.state {
        GroupState::PreparingRebalance => {
            update_member_and_rebalance(group, &member_id, params, "member rejoined", config, now)
        }
        // Same metadata: the member probably lost the JoinGroup answer;
        // give it the current generation again.
        GroupState::CompletingRebalance if unchanged => {
            let is_leader = group.is_leader(&member_id);
            let members = if is_leader {
                group.current_member_metadata()
            } else {
                Vec::new()
            };
            let leader = group.leader_id.clone().unwrap_or_default();
            Step::Ready(group.current_join_outcome(&member_id, leader, members, false))
        }
        GroupState::CompletingRebalance => update_member_and_rebalance(
            group,
            &member_id,
            params,
            "member changed its metadata",
            config,
            now,
        ),
        // A leader's join forces a rebalance: that is how it asks for one
        // when something outside the member metadata changed (topics).
        GroupState::Stable if group.is_leader(&member_id) => {
            update_member_and_rebalance(group, &member_id, params, "leader rejoined", config, now)
        }
        GroupState::Stable if !unchanged => update_member_and_rebalance(
            group,
            &member_id,
            params,
            "member changed its metadata",
            config,
            now,
        ),
        GroupState::Stable => {
            let leader = group.leader_id.clone().unwrap_or_default();
            Step::Ready(group.current_join_outcome(&member_id, leader, Vec::new(), false))
        }
        GroupState::Empty | GroupState::Dead => {
            Step::Ready(JoinOutcome::error(member_id, ErrorCode::UnknownMemberId))
        }
    }
}

/// Adds a member awaiting the join and starts (or joins) a rebalance.
fn add_member_and_rebalance(
    group: &mut Group,
    member_id: String,
    group_instance_id: Option<String>,
    params: JoinParams,
    config: &GroupConfig,
    now: Instant,
) -> Step<JoinOutcome> {
    let (answer, waiting) = oneshot::channel();
    info!(
        group = %group.group_id,
        member = %member_id,
        instance = ?group_instance_id,
        state = %group.state,
        "adding member"
    );
    group.note_member_added();
    group.add_member(Member::new(
        member_id,
        group_instance_id,
        params,
        answer,
        now,
    ));
    group.maybe_prepare_rebalance("new member joined", config, now);
    Step::Wait(waiting)
}

/// Takes a known member's new metadata and starts (or joins) a rebalance.
fn update_member_and_rebalance(
    group: &mut Group,
    member_id: &str,
    params: JoinParams,
    reason: &str,
    config: &GroupConfig,
    now: Instant,
) -> Step<JoinOutcome> {
    let (answer, waiting) = oneshot::channel();
    if let Some(member) = group.members.get_mut(member_id) {
        member.update(params);
        // A previous JoinGroup of the same member still waiting is
        // superseded: its receiver sees the sender dropped.
        member.awaiting_join = Some(answer);
    }
    group.maybe_prepare_rebalance(reason, config, now);
    Step::Wait(waiting)
}

/// A known static instance rejoined without a member id (Kafka's
/// `updateStaticMemberAndRebalance`).
#[allow(clippy::too_many_arguments)]
fn update_static_member_and_rebalance(
    group: &mut Group,
    instance_id: &str,
    old_member_id: &str,
    new_member_id: String,
    version: i16,
    params: JoinParams,
    config: &GroupConfig,
    now: Instant,
) -> Step<JoinOutcome> {
    // The leader as the group knew it before the replacement.
    let previous_leader = group.leader_id.clone().unwrap_or_default();
    if !group.replace_static_member(instance_id, old_member_id, &new_member_id) {
        return Step::Ready(JoinOutcome::error(
            String::new(),
            ErrorCode::UnknownMemberId,
        ));
    }
    let (answer, waiting) = oneshot::channel();
    if let Some(member) = group.members.get_mut(&new_member_id) {
        member.update(params);
        member.awaiting_join = Some(answer);
        member.touch(now);
    }
    match group.state {
        GroupState::Stable => {
            if group.protocol_name.as_deref() == Some(group.select_protocol().as_str()) {
                info!(
                    group = %group.group_id,
                    member = %new_member_id,
                    "static member rejoined a stable group without changing the protocol; no rebalance"
                );
                let outcome = if version >= 9 {
                    // v9: the leader learns it leads but must not reassign.
                    let is_leader = group.is_leader(&new_member_id);
                    let members = if is_leader {
                        group.current_member_metadata()
                    } else {
                        Vec::new()
                    };
                    let leader = group.leader_id.clone().unwrap_or_default();
                    group.current_join_outcome(&new_member_id, leader, members, is_leader)
                } else {
                    // Before v9, answer with the old leader id so that a
                    // returning leader does not see itself as leader and run
                    // an assignment a stable group would never distribute.
                    group.current_join_outcome(&new_member_id, previous_leader, Vec::new(), false)
                };
                if let Some(answer) = group
                    .members
                    .get_mut(&new_member_id)
                    .and_then(|member| member.awaiting_join.take())
                {
                    let _ = answer.send(outcome);
                }
            } else {
                group.maybe_prepare_rebalance(
                    "static member rejoined with protocols that change the group's choice",
                    config,
                    now,
                );
            }
        }
        // The leader may already be assigning to the old member id: the new
        // id would get nothing. Start over.
        GroupState::CompletingRebalance => {
            group.prepare_rebalance(
                "static member replaced during CompletingRebalance",
                config,
                now,
            );
        }
        GroupState::PreparingRebalance => {}
        GroupState::Empty | GroupState::Dead => {
            group.maybe_prepare_rebalance("static member rejoined", config, now);
        }
    }
    Step::Wait(waiting)
}

/// A SyncGroup's fields, version differences already applied.
struct SyncParams {
    member_id: String,
    generation_id: i32,
    group_instance_id: Option<String>,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    assignments: Vec<SyncGroupRequestAssignment>,
}

/// Kafka's `doSyncGroup`.
fn sync_member(group: &mut Group, params: SyncParams, now: Instant) -> Step<SyncOutcome> {
    let SyncParams {
        member_id,
        generation_id,
        group_instance_id,
        protocol_type,
        protocol_name,
        assignments,
    } = params;
    if group.state == GroupState::Dead {
        return Step::Ready(SyncOutcome::error(ErrorCode::CoordinatorNotAvailable));
    }
    if let Some(error) = group.validate_current_member(&member_id, group_instance_id.as_deref()) {
        return Step::Ready(SyncOutcome::error(error));
    }
    if generation_id != group.generation_id {
        return Step::Ready(SyncOutcome::error(ErrorCode::IllegalGeneration));
    }
    if protocol_type.is_some() && protocol_type != group.protocol_type {
        return Step::Ready(SyncOutcome::error(ErrorCode::InconsistentGroupProtocol));
    }
    if protocol_name.is_some() && protocol_name != group.protocol_name {
        return Step::Ready(SyncOutcome::error(ErrorCode::InconsistentGroupProtocol));
    }
    match group.state {
        GroupState::Empty | GroupState::Dead => {
            Step::Ready(SyncOutcome::error(ErrorCode::UnknownMemberId))
        }
        GroupState::PreparingRebalance => {
            Step::Ready(SyncOutcome::error(ErrorCode::RebalanceInProgress))
        }
        GroupState::CompletingRebalance => {
            let (answer, waiting) = oneshot::channel();
            if let Some(member) = group.members.get_mut(&member_id) {
                member.awaiting_sync = Some(answer);
            }
            group.remove_pending_sync_member(&member_id);
            if group.is_leader(&member_id) {
                // Only members of the group can receive an assignment, which
                // also bounds the map by the group size.
                let mut assigned: HashMap<String, Bytes> = HashMap::new();
                for entry in assignments {
                    if group.members.contains_key(&entry.member_id) {
                        assigned.insert(entry.member_id, entry.assignment);
                    }
                }
                info!(
                    group = %group.group_id,
                    generation = group.generation_id,
                    members = group.members.len(),
                    assigned = assigned.len(),
                    "assignment received from the leader"
                );
                group.set_and_propagate_assignment(assigned, now);
                group.transition(GroupState::Stable);
            }
            Step::Wait(waiting)
        }
        GroupState::Stable => {
            group.remove_pending_sync_member(&member_id);
            let Some(member) = group.members.get_mut(&member_id) else {
                return Step::Ready(SyncOutcome::error(ErrorCode::UnknownMemberId));
            };
            member.touch(now);
            Step::Ready(SyncOutcome {
                error: ErrorCode::None,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol_name.clone(),
                assignment: member.assignment.clone(),
            })
        }
    }
}

/// One member of a LeaveGroup.
fn leave_member(
    group: &mut Group,
    identity: &MemberIdentity,
    config: &GroupConfig,
    now: Instant,
) -> ErrorCode {
    let reason = identity
        .reason
        .as_deref()
        .unwrap_or("member left the group");
    if identity.member_id.is_empty() {
        // Administrative removal by instance id (kafka-consumer-groups
        // --delete-members, AdminClient.removeMembersFromConsumerGroup).
        let current = identity
            .group_instance_id
            .as_ref()
            .and_then(|instance_id| group.static_members.get(instance_id).cloned());
        return match current {
            Some(member_id) => {
                group.remove_member_and_update_group(&member_id, reason, config, now);
                ErrorCode::None
            }
            None => ErrorCode::UnknownMemberId,
        };
    }
    if group.remove_pending_member(&identity.member_id, now) {
        debug!(group = %group.group_id, member = %identity.member_id, "pending member left");
        return ErrorCode::None;
    }
    if let Some(error) =
        group.validate_current_member(&identity.member_id, identity.group_instance_id.as_deref())
    {
        return error;
    }
    group.remove_member_and_update_group(&identity.member_id, reason, config, now);
    ErrorCode::None
}
