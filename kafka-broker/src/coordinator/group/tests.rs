//! Scenario tests of the group coordinator. Timer-driven tests run on a
//! paused clock, so session and rebalance timeouts take no real time.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::{Encode, ErrorCode};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, sleep};

use super::{
    CommittedOffset, GroupConfig, GroupCoordinator, GroupState, MAX_OFFSET_METADATA_BYTES,
};

const GROUP: &str = "group";
const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;
const NONE: i16 = ErrorCode::None.code();

fn coordinator() -> Arc<GroupCoordinator> {
    GroupCoordinator::new(GroupConfig::default())
}

fn protocol(name: &str, metadata: &'static [u8]) -> JoinGroupRequestProtocol {
    JoinGroupRequestProtocol {
        name: name.to_owned(),
        metadata: Bytes::from_static(metadata),
        ..JoinGroupRequestProtocol::default()
    }
}

fn join_req(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: GROUP.to_owned(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        member_id: member_id.to_owned(),
        protocol_type: "consumer".to_owned(),
        protocols: vec![
            protocol("range", b"range-meta"),
            protocol("roundrobin", b"rr-meta"),
        ],
        ..JoinGroupRequest::default()
    }
}

fn static_join_req(member_id: &str, instance_id: &str) -> JoinGroupRequest {
    JoinGroupRequest {
        group_instance_id: Some(instance_id.to_owned()),
        ..join_req(member_id)
    }
}

async fn join(
    c: &Arc<GroupCoordinator>,
    request: JoinGroupRequest,
    version: i16,
) -> JoinGroupResponse {
    c.join_group(request, version, "client", "/10.0.0.1").await
}

fn spawn_join(
    c: &Arc<GroupCoordinator>,
    request: JoinGroupRequest,
    version: i16,
) -> JoinHandle<JoinGroupResponse> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.join_group(request, version, "client", "/10.0.0.1").await })
}

/// Lets spawned tasks run up to their next wait, without moving the clock.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

/// A new dynamic member's id from the v4+ MEMBER_ID_REQUIRED round trip.
async fn member_id_for(
    c: &Arc<GroupCoordinator>,
    request: JoinGroupRequest,
    version: i16,
) -> String {
    let first = join(c, request, version).await;
    assert_eq!(
        first.error_code,
        ErrorCode::MemberIdRequired.code(),
        "first v{version} join"
    );
    assert!(
        first.member_id.starts_with("client-"),
        "generated id {:?}",
        first.member_id
    );
    first.member_id
}

fn sync_req(
    generation_id: i32,
    member_id: &str,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: GROUP.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        assignments: assignments
            .iter()
            .map(|(member_id, assignment)| SyncGroupRequestAssignment {
                member_id: (*member_id).to_owned(),
                assignment: Bytes::from_static(assignment),
                ..SyncGroupRequestAssignment::default()
            })
            .collect(),
        ..SyncGroupRequest::default()
    }
}

fn spawn_sync(
    c: &Arc<GroupCoordinator>,
    request: SyncGroupRequest,
    version: i16,
) -> JoinHandle<SyncGroupResponse> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.sync_group(request, version).await })
}

fn heartbeat(
    c: &Arc<GroupCoordinator>,
    generation_id: i32,
    member_id: &str,
    instance: Option<&str>,
) -> i16 {
    let request = HeartbeatRequest {
        group_id: GROUP.to_owned(),
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: instance.map(str::to_owned),
        ..HeartbeatRequest::default()
    };
    c.heartbeat(request, 4).error_code
}

fn commit_req(
    group_id: &str,
    generation_id: i32,
    member_id: &str,
    partitions: &[(i32, i64)],
) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group_id.to_owned(),
        generation_id_or_member_epoch: generation_id,
        member_id: member_id.to_owned(),
        topics: vec![OffsetCommitRequestTopic {
            name: "topic".to_owned(),
            partitions: partitions
                .iter()
                .map(|(partition, offset)| OffsetCommitRequestPartition {
                    partition_index: *partition,
                    committed_offset: *offset,
                    committed_leader_epoch: 7,
                    committed_metadata: Some(format!("meta-{offset}")),
                    ..OffsetCommitRequestPartition::default()
                })
                .collect(),
            ..OffsetCommitRequestTopic::default()
        }],
        ..OffsetCommitRequest::default()
    }
}

fn commit_errors(response: &OffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|topic| {
            topic
                .partitions
                .iter()
                .map(|partition| partition.error_code)
        })
        .collect()
}

/// OffsetFetch v7 for `topic` partitions of a group: (offset, metadata, error) each.
fn fetch_v7(
    c: &GroupCoordinator,
    group_id: &str,
    partitions: &[i32],
    require_stable: bool,
) -> Vec<(i64, String, i16)> {
    let request = OffsetFetchRequest {
        group_id: group_id.to_owned(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "topic".to_owned(),
            partition_indexes: partitions.to_vec(),
            ..OffsetFetchRequestTopic::default()
        }]),
        require_stable,
        ..OffsetFetchRequest::default()
    };
    let response = c.offset_fetch(request, 7);
    assert_eq!(response.error_code, NONE);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.committed_offset,
                p.metadata.clone().unwrap_or_default(),
                p.error_code,
            )
        })
        .collect()
}

fn member_ids(response: &JoinGroupResponse) -> Vec<&str> {
    response
        .members
        .iter()
        .map(|member| member.member_id.as_str())
        .collect()
}

/// One member (v5) joined and synced: (member id, generation).
async fn single_member_group(c: &Arc<GroupCoordinator>) -> (String, i32) {
    let id = member_id_for(c, join_req(""), 5).await;
    let joined = join(c, join_req(&id), 5).await;
    assert_eq!(joined.error_code, NONE);
    let synced = c
        .sync_group(sync_req(joined.generation_id, &id, &[(&id, b"a")]), 5)
        .await;
    assert_eq!(synced.error_code, NONE);
    (id, joined.generation_id)
}

/// Two members (v5), Stable: (leader, follower, generation).
async fn two_member_group(
    c: &Arc<GroupCoordinator>,
    session_ms: i32,
    rebalance_ms: i32,
) -> (String, String, i32) {
    let request = |member_id: &str| JoinGroupRequest {
        session_timeout_ms: session_ms,
        rebalance_timeout_ms: rebalance_ms,
        ..join_req(member_id)
    };
    let a = member_id_for(c, request(""), 5).await;
    let first = join(c, request(&a), 5).await;
    assert_eq!(first.error_code, NONE);
    let b = member_id_for(c, request(""), 5).await;
    let b_join = spawn_join(c, request(&b), 5);
    settle().await;
    let a_join = join(c, request(&a), 5).await;
    let b_join = b_join.await.expect("join task");
    assert_eq!((a_join.error_code, b_join.error_code), (NONE, NONE));
    let generation = a_join.generation_id;
    let b_sync = spawn_sync(c, sync_req(generation, &b, &[]), 5);
    settle().await;
    let a_sync = c
        .sync_group(sync_req(generation, &a, &[(&a, b"a"), (&b, b"b")]), 5)
        .await;
    assert_eq!(a_sync.error_code, NONE);
    assert_eq!(b_sync.await.expect("sync task").error_code, NONE);
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    (a, b, generation)
}

#[tokio::test(start_paused = true)]
async fn single_member_v3_join_sync_heartbeat_commit_fetch() {
    let c = coordinator();
    // Before v4 the member id comes with the answer, no extra round trip.
    let joined = join(&c, join_req(""), 3).await;
    assert_eq!(joined.error_code, NONE);
    let id = joined.member_id.clone();
    assert!(id.starts_with("client-"), "member id {id:?}");
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader, id);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(member_ids(&joined), [id.as_str()]);
    assert_eq!(
        joined.members[0].metadata,
        Bytes::from_static(b"range-meta")
    );
    assert_eq!(c.group_state(GROUP), Some(GroupState::CompletingRebalance));

    let synced = c
        .sync_group(sync_req(1, &id, &[(&id, b"assignment")]), 2)
        .await;
    assert_eq!(synced.error_code, NONE);
    assert_eq!(synced.assignment, Bytes::from_static(b"assignment"));
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    assert_eq!(heartbeat(&c, 1, &id, None), NONE);

    let committed = c.offset_commit(commit_req(GROUP, 1, &id, &[(0, 42)]), 3);
    assert_eq!(commit_errors(&committed), [NONE]);
    assert_eq!(
        fetch_v7(&c, GROUP, &[0, 1], false),
        [(42, "meta-42".to_owned(), NONE), (-1, String::new(), NONE)]
    );
    let stored = c.committed(GROUP, "topic", 0).expect("committed offset");
    assert_eq!(
        (stored.offset, stored.leader_epoch),
        (42, -1),
        "v3 carries no leader epoch"
    );
    assert!(stored.commit_timestamp_ms > 0);
}

#[tokio::test(start_paused = true)]
async fn v4_member_id_required_flow_then_latest_versions() {
    let c = coordinator();
    let id = member_id_for(&c, join_req(""), 9).await;
    // The pending id keeps the group, but it has no member yet.
    assert_eq!(c.group_state(GROUP), Some(GroupState::Empty));
    let joined = join(&c, join_req(&id), 9).await;
    assert_eq!(joined.error_code, NONE);
    assert_eq!(joined.member_id, id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert!(!joined.skip_assignment);

    let wrong_protocol = SyncGroupRequest {
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("roundrobin".to_owned()),
        ..sync_req(1, &id, &[(&id, b"a")])
    };
    let refused = c.sync_group(wrong_protocol, 5).await;
    assert_eq!(
        refused.error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let sync = SyncGroupRequest {
        protocol_type: Some("consumer".to_owned()),
        protocol_name: Some("range".to_owned()),
        ..sync_req(1, &id, &[(&id, b"a")])
    };
    let synced = c.sync_group(sync, 5).await;
    assert_eq!(synced.error_code, NONE);
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));
    assert_eq!(synced.assignment, Bytes::from_static(b"a"));
    assert_eq!(heartbeat(&c, 1, &id, None), NONE);

    let committed = c.offset_commit(commit_req(GROUP, 1, &id, &[(3, 99)]), 9);
    assert_eq!(commit_errors(&committed), [NONE]);
    let request = OffsetFetchRequest {
        groups: vec![
            OffsetFetchRequestGroup {
                group_id: GROUP.to_owned(),
                topics: None,
                ..OffsetFetchRequestGroup::default()
            },
            OffsetFetchRequestGroup {
                group_id: "unknown".to_owned(),
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: "topic".to_owned(),
                    partition_indexes: vec![3],
                    ..OffsetFetchRequestTopics::default()
                }]),
                ..OffsetFetchRequestGroup::default()
            },
        ],
        ..OffsetFetchRequest::default()
    };
    let fetched = c.offset_fetch(request, 9);
    assert!(fetched.topics.is_empty(), "v8+ answers per group");
    let all = &fetched.groups[0];
    assert_eq!(all.topics.len(), 1);
    let partition = &all.topics[0].partitions[0];
    assert_eq!(
        (
            partition.partition_index,
            partition.committed_offset,
            partition.committed_leader_epoch
        ),
        (3, 99, 7)
    );
    let unknown = &fetched.groups[1].topics[0].partitions[0];
    assert_eq!((unknown.committed_offset, unknown.error_code), (-1, NONE));
}

#[tokio::test(start_paused = true)]
async fn second_member_triggers_rebalance_and_leader_assignment_reaches_follower() {
    let c = coordinator();
    let (a, generation) = single_member_group(&c).await;
    assert_eq!(generation, 1);

    let b = member_id_for(&c, join_req(""), 5).await;
    let b_join = spawn_join(&c, join_req(&b), 5);
    settle().await;
    assert!(!b_join.is_finished(), "B waits for A to rejoin");
    assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    assert_eq!(
        heartbeat(&c, 1, &a, None),
        ErrorCode::RebalanceInProgress.code()
    );

    let a_join = join(&c, join_req(&a), 5).await;
    let b_join = b_join.await.expect("join task");
    assert_eq!((a_join.error_code, b_join.error_code), (NONE, NONE));
    assert_eq!((a_join.generation_id, b_join.generation_id), (2, 2));
    assert_eq!(
        (a_join.leader.as_str(), b_join.leader.as_str()),
        (a.as_str(), a.as_str())
    );
    assert_eq!(
        member_ids(&a_join),
        [a.as_str(), b.as_str()],
        "the leader sees every member"
    );
    assert!(
        a_join
            .members
            .iter()
            .all(|m| m.metadata == Bytes::from_static(b"range-meta"))
    );
    assert!(b_join.members.is_empty(), "followers get no member list");

    let b_sync = spawn_sync(&c, sync_req(2, &b, &[]), 5);
    settle().await;
    assert!(
        !b_sync.is_finished(),
        "the follower waits for the leader's assignment"
    );
    let a_sync = c
        .sync_group(sync_req(2, &a, &[(&a, b"for-a"), (&b, b"for-b")]), 5)
        .await;
    assert_eq!(a_sync.assignment, Bytes::from_static(b"for-a"));
    let b_sync = b_sync.await.expect("sync task");
    assert_eq!(b_sync.error_code, NONE);
    assert_eq!(b_sync.assignment, Bytes::from_static(b"for-b"));
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    assert_eq!(
        (heartbeat(&c, 2, &a, None), heartbeat(&c, 2, &b, None)),
        (NONE, NONE)
    );
}

#[tokio::test(start_paused = true)]
async fn session_timeout_removes_silent_member_and_survivor_rejoins_alone() {
    let c = coordinator();
    let (a, b, generation) = two_member_group(&c, SESSION_MS, REBALANCE_MS).await;
    let start = Instant::now();
    // A heartbeats every 3 s; B stays silent past its 10 s session.
    let mut told_to_rejoin = false;
    for _ in 0..6 {
        sleep(Duration::from_secs(3)).await;
        let error = heartbeat(&c, generation, &a, None);
        if error == ErrorCode::RebalanceInProgress.code() {
            told_to_rejoin = true;
            break;
        }
        assert_eq!(error, NONE);
    }
    assert!(told_to_rejoin, "B's expiry should start a rebalance");
    assert!(start.elapsed() >= Duration::from_secs(10));
    assert_eq!(
        heartbeat(&c, generation, &b, None),
        ErrorCode::UnknownMemberId.code()
    );

    let rejoined = join(&c, join_req(&a), 5).await;
    assert_eq!(rejoined.error_code, NONE);
    assert_eq!(rejoined.generation_id, generation + 1);
    assert_eq!(member_ids(&rejoined), [a.as_str()]);
}

#[tokio::test(start_paused = true)]
async fn rebalance_timeout_removes_member_that_does_not_rejoin() {
    let c = coordinator();
    // Sessions outlast the rebalance, so only the rebalance timeout can act.
    let (a, b, generation) = two_member_group(&c, 20_000, 5_000).await;
    let start = Instant::now();
    let request = JoinGroupRequest {
        session_timeout_ms: 20_000,
        rebalance_timeout_ms: 5_000,
        ..join_req(&a)
    };
    // The leader's join forces a rebalance; B hears of it but never rejoins.
    let a_join = spawn_join(&c, request, 5);
    settle().await;
    assert_eq!(
        heartbeat(&c, generation, &b, None),
        ErrorCode::RebalanceInProgress.code()
    );
    let a_join = a_join.await.expect("join task");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "the join should end at the rebalance timeout, took {waited:?}"
    );
    assert_eq!(a_join.error_code, NONE);
    assert_eq!(a_join.generation_id, generation + 1);
    assert_eq!(member_ids(&a_join), [a.as_str()]);
    assert_eq!(
        heartbeat(&c, a_join.generation_id, &b, None),
        ErrorCode::UnknownMemberId.code()
    );
}

#[tokio::test(start_paused = true)]
async fn illegal_generation_and_unknown_member_are_refused() {
    let c = coordinator();
    let (a, generation) = single_member_group(&c).await;
    let illegal = ErrorCode::IllegalGeneration.code();
    let unknown = ErrorCode::UnknownMemberId.code();

    assert_eq!(heartbeat(&c, generation + 1, &a, None), illegal);
    assert_eq!(heartbeat(&c, generation, "ghost", None), unknown);
    let sync = c.sync_group(sync_req(generation - 1, &a, &[]), 3).await;
    assert_eq!(sync.error_code, illegal);
    let sync = c.sync_group(sync_req(generation, "ghost", &[]), 3).await;
    assert_eq!(sync.error_code, unknown);
    assert_eq!(join(&c, join_req("ghost"), 5).await.error_code, unknown);
    let other_group = JoinGroupRequest {
        group_id: "no-such-group".to_owned(),
        ..join_req("ghost")
    };
    assert_eq!(join(&c, other_group, 5).await.error_code, unknown);
    assert_eq!(
        c.group_state("no-such-group"),
        None,
        "a refused join creates no group"
    );
    let stale = c.offset_commit(commit_req(GROUP, generation + 5, &a, &[(0, 1)]), 8);
    assert_eq!(commit_errors(&stale), [illegal]);
    let stranger = c.offset_commit(commit_req(GROUP, generation, "ghost", &[(0, 1)]), 8);
    assert_eq!(commit_errors(&stranger), [unknown]);
    assert_eq!(c.committed(GROUP, "topic", 0), None);
    // The member itself was not disturbed by any of that.
    assert_eq!(heartbeat(&c, generation, &a, None), NONE);
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
}

#[tokio::test(start_paused = true)]
async fn static_member_rejoin_fences_the_old_member_id() {
    let c = coordinator();
    // Static members skip MEMBER_ID_REQUIRED even at v5.
    let first = join(&c, static_join_req("", "instance-1"), 5).await;
    assert_eq!(first.error_code, NONE);
    let old = first.member_id.clone();
    assert!(old.starts_with("instance-1-"), "static member id {old:?}");
    assert_eq!(
        first.members[0].group_instance_id.as_deref(),
        Some("instance-1")
    );
    let synced = c.sync_group(sync_req(1, &old, &[(&old, b"kept")]), 5).await;
    assert_eq!(synced.error_code, NONE);

    // The instance restarts and rejoins without its member id.
    let again = join(&c, static_join_req("", "instance-1"), 5).await;
    assert_eq!(again.error_code, NONE);
    let new = again.member_id.clone();
    assert_ne!(new, old);
    assert_eq!(
        again.generation_id, 1,
        "no rebalance for an unchanged static member"
    );
    assert_eq!(
        again.leader, old,
        "before v9 the old leader id keeps it from reassigning"
    );
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    let resync = SyncGroupRequest {
        group_instance_id: Some("instance-1".to_owned()),
        ..sync_req(1, &new, &[])
    };
    let resynced = c.sync_group(resync, 5).await;
    assert_eq!(resynced.error_code, NONE);
    assert_eq!(resynced.assignment, Bytes::from_static(b"kept"));

    let fenced = ErrorCode::FencedInstanceId.code();
    assert_eq!(heartbeat(&c, 1, &old, Some("instance-1")), fenced);
    assert_eq!(heartbeat(&c, 1, &new, Some("instance-1")), NONE);
    let stale_commit = OffsetCommitRequest {
        group_instance_id: Some("instance-1".to_owned()),
        ..commit_req(GROUP, 1, &old, &[(0, 5)])
    };
    assert_eq!(commit_errors(&c.offset_commit(stale_commit, 8)), [fenced]);
    assert_eq!(
        join(&c, static_join_req(&old, "instance-1"), 5)
            .await
            .error_code,
        fenced
    );

    // v9: the returning leader is told it leads but must skip the assignment.
    let v9 = join(&c, static_join_req("", "instance-1"), 9).await;
    assert_eq!(v9.error_code, NONE);
    assert_eq!(v9.leader, v9.member_id);
    assert!(v9.skip_assignment);
    assert_eq!(member_ids(&v9), [v9.member_id.as_str()]);
    assert_eq!(v9.generation_id, 1);
    assert_eq!(heartbeat(&c, 1, &new, Some("instance-1")), fenced);
}

#[tokio::test(start_paused = true)]
async fn leave_group_v3_batch_reports_each_member() {
    let c = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 1000,
        ..GroupConfig::default()
    });
    let a = member_id_for(&c, join_req(""), 5).await;
    let b = member_id_for(&c, join_req(""), 5).await;
    let joins = [
        spawn_join(&c, join_req(&a), 5),
        spawn_join(&c, join_req(&b), 5),
        spawn_join(&c, static_join_req("", "instance-c"), 5),
    ];
    let mut leader_join = None;
    let mut static_id = String::new();
    for handle in joins {
        let joined = handle.await.expect("join task");
        assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
        if joined.member_id == joined.leader {
            leader_join = Some(joined.clone());
        }
        if joined.member_id.starts_with("instance-c-") {
            static_id = joined.member_id;
        }
    }
    let leader_join = leader_join.expect("a leader");
    assert_eq!(leader_join.members.len(), 3);
    let synced = c
        .sync_group(sync_req(1, &leader_join.member_id, &[]), 5)
        .await;
    assert_eq!(synced.error_code, NONE);

    let identity = |member_id: &str, instance: Option<&str>| MemberIdentity {
        member_id: member_id.to_owned(),
        group_instance_id: instance.map(str::to_owned),
        ..MemberIdentity::default()
    };
    let request = LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        members: vec![
            identity(&a, None),
            identity(&b, Some("instance-c")), // claims C's instance: fenced
            identity("", Some("instance-c")), // administrative removal by instance
            identity("ghost", None),
        ],
        ..LeaveGroupRequest::default()
    };
    let left = c.leave_group(request, 3);
    assert_eq!(left.error_code, NONE);
    let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
    assert_eq!(
        codes,
        [
            NONE,
            ErrorCode::FencedInstanceId.code(),
            NONE,
            ErrorCode::UnknownMemberId.code()
        ]
    );
    assert_eq!(left.members[1].member_id, b);
    let described = c.describe_groups(
        DescribeGroupsRequest {
            groups: vec![GROUP.to_owned()],
            ..DescribeGroupsRequest::default()
        },
        5,
    );
    let remaining: Vec<&str> = described.groups[0]
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(remaining, [b.as_str()]);
    assert_ne!(static_id, "", "the static member joined");
    assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));

    // v1: one member, its error at the top level; the last one out empties
    // the group and the generation moves on.
    let one = |member_id: &str| LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        member_id: member_id.to_owned(),
        ..LeaveGroupRequest::default()
    };
    assert_eq!(
        c.leave_group(one("ghost"), 1).error_code,
        ErrorCode::UnknownMemberId.code()
    );
    let last = c.leave_group(one(&b), 1);
    assert_eq!(last.error_code, NONE);
    assert!(last.members.is_empty());
    assert_eq!(c.group_state(GROUP), Some(GroupState::Empty));
    let rejoined = join(&c, join_req(""), 3).await;
    assert_eq!(
        rejoined.generation_id, 3,
        "emptying the group was generation 2"
    );
}

#[tokio::test(start_paused = true)]
async fn manual_commit_with_generation_minus_one() {
    let c = coordinator();
    // A consumer with manual assignment: no member, generation -1.
    let manual = c.offset_commit(commit_req("manual", -1, "", &[(0, 10), (1, 11)]), 8);
    assert_eq!(commit_errors(&manual), [NONE, NONE]);
    assert_eq!(c.group_state("manual"), Some(GroupState::Empty));
    assert_eq!(
        c.committed("manual", "topic", 1).map(|o| o.offset),
        Some(11)
    );
    // v0 carries no generation at all: the same rule applies.
    let v0 = c.offset_commit(commit_req("manual", 3, "x", &[(0, 12)]), 0);
    assert_eq!(commit_errors(&v0), [NONE]);
    assert_eq!(
        c.committed("manual", "topic", 0).map(|o| o.offset),
        Some(12)
    );

    // A generation for a group nobody knows is stale, and creates nothing.
    let stale = c.offset_commit(commit_req("nobody", 4, "m", &[(0, 1)]), 8);
    assert_eq!(commit_errors(&stale), [ErrorCode::IllegalGeneration.code()]);
    assert_eq!(c.group_state("nobody"), None);

    // A group in use only takes commits from its members.
    let (_, _) = single_member_group(&c).await;
    let outsider = c.offset_commit(commit_req(GROUP, -1, "", &[(0, 1)]), 8);
    assert_eq!(
        commit_errors(&outsider),
        [ErrorCode::UnknownMemberId.code()]
    );
    assert_eq!(c.committed(GROUP, "topic", 0), None);
}

#[tokio::test(start_paused = true)]
async fn commits_during_rebalance_follow_kafka() {
    let c = coordinator();
    let (a, b, generation) = two_member_group(&c, SESSION_MS, REBALANCE_MS).await;
    // PreparingRebalance: members commit what they consumed before rejoining.
    let a_join = spawn_join(&c, join_req(&a), 5);
    settle().await;
    assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    let during_prepare = c.offset_commit(commit_req(GROUP, generation, &b, &[(0, 5)]), 8);
    assert_eq!(commit_errors(&during_prepare), [NONE]);
    // CompletingRebalance: the new generation has no assignment yet.
    let b_join = join(&c, join_req(&b), 5).await;
    assert_eq!(a_join.await.expect("join task").error_code, NONE);
    assert_eq!(c.group_state(GROUP), Some(GroupState::CompletingRebalance));
    let during_completing =
        c.offset_commit(commit_req(GROUP, b_join.generation_id, &b, &[(0, 6)]), 8);
    assert_eq!(
        commit_errors(&during_completing),
        [ErrorCode::RebalanceInProgress.code()]
    );
    assert_eq!(c.committed(GROUP, "topic", 0).map(|o| o.offset), Some(5));
}

#[tokio::test(start_paused = true)]
async fn pending_txn_offsets_become_visible_only_on_commit() {
    let c = coordinator();
    let offset = |offset: i64| CommittedOffset {
        offset,
        leader_epoch: 3,
        metadata: Some(format!("txn-{offset}")),
        commit_timestamp_ms: 1,
    };
    assert_eq!(
        c.validate_txn_offset_commit("txn-group", -1, "", None),
        ErrorCode::None
    );
    c.add_pending_txn_offsets("txn-group", 7, vec![("topic".to_owned(), 0, offset(100))]);
    assert_eq!(c.committed("txn-group", "topic", 0), None);
    assert_eq!(
        fetch_v7(&c, "txn-group", &[0], false),
        [(-1, String::new(), NONE)]
    );
    assert_eq!(
        fetch_v7(&c, "txn-group", &[0], true),
        [(-1, String::new(), ErrorCode::UnstableOffsetCommit.code())]
    );
    c.complete_txn("txn-group", 7, true);
    assert_eq!(c.committed("txn-group", "topic", 0), Some(offset(100)));
    assert_eq!(
        fetch_v7(&c, "txn-group", &[0], true),
        [(100, "txn-100".to_owned(), NONE)]
    );

    // Aborted: dropped.
    c.add_pending_txn_offsets("txn-group", 8, vec![("topic".to_owned(), 0, offset(200))]);
    c.complete_txn("txn-group", 8, false);
    assert_eq!(
        c.committed("txn-group", "topic", 0).map(|o| o.offset),
        Some(100)
    );
    assert_eq!(
        fetch_v7(&c, "txn-group", &[0], true)[0].2,
        NONE,
        "nothing pending after the abort"
    );

    // A plain commit made after the transactional one wins over it.
    c.add_pending_txn_offsets("txn-group", 9, vec![("topic".to_owned(), 0, offset(300))]);
    let plain = c.offset_commit(commit_req("txn-group", -1, "", &[(0, 250)]), 8);
    assert_eq!(commit_errors(&plain), [NONE]);
    c.complete_txn("txn-group", 9, true);
    assert_eq!(
        c.committed("txn-group", "topic", 0).map(|o| o.offset),
        Some(250)
    );

    // Validation against a live group.
    let (a, generation) = single_member_group(&c).await;
    assert_eq!(
        c.validate_txn_offset_commit(GROUP, generation, &a, None),
        ErrorCode::None
    );
    assert_eq!(
        c.validate_txn_offset_commit(GROUP, -1, "", None),
        ErrorCode::None
    );
    assert_eq!(
        c.validate_txn_offset_commit(GROUP, generation + 1, &a, None),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        c.validate_txn_offset_commit(GROUP, generation, "ghost", None),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        c.validate_txn_offset_commit("absent", 2, "m", None),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        c.validate_txn_offset_commit("", -1, "", None),
        ErrorCode::InvalidGroupId
    );
}

#[tokio::test(start_paused = true)]
async fn describe_list_and_delete_groups() {
    let c = coordinator();
    let (a, _) = single_member_group(&c).await;
    let manual = c.offset_commit(commit_req("manual", -1, "", &[(0, 1)]), 8);
    assert_eq!(commit_errors(&manual), [NONE]);

    let described = c.describe_groups(
        DescribeGroupsRequest {
            groups: vec![GROUP.to_owned(), "manual".to_owned(), "nope".to_owned()],
            include_authorized_operations: true,
            ..DescribeGroupsRequest::default()
        },
        5,
    );
    let [live, empty, missing] = &described.groups[..] else {
        panic!("three groups described, got {}", described.groups.len());
    };
    assert_eq!(
        (
            live.group_state.as_str(),
            live.protocol_type.as_str(),
            live.protocol_data.as_str()
        ),
        ("Stable", "consumer", "range")
    );
    assert_eq!(live.members.len(), 1);
    let member = &live.members[0];
    assert_eq!(
        (
            member.member_id.as_str(),
            member.client_id.as_str(),
            member.client_host.as_str()
        ),
        (a.as_str(), "client", "/10.0.0.1")
    );
    assert_eq!(member.member_metadata, Bytes::from_static(b"range-meta"));
    assert_eq!(member.member_assignment, Bytes::from_static(b"a"));
    assert_ne!(
        live.authorized_operations,
        i32::MIN,
        "operations were asked for"
    );
    assert_eq!(
        (empty.group_state.as_str(), empty.members.len()),
        ("Empty", 0)
    );
    assert_eq!(
        (missing.group_state.as_str(), missing.error_code),
        ("Dead", NONE)
    );

    let list = |states: &[&str], types: &[&str]| -> Vec<String> {
        let request = ListGroupsRequest {
            states_filter: states.iter().map(|s| (*s).to_owned()).collect(),
            types_filter: types.iter().map(|s| (*s).to_owned()).collect(),
            ..ListGroupsRequest::default()
        };
        let response = c.list_groups(request, 5);
        assert_eq!(response.error_code, NONE);
        response.groups.into_iter().map(|g| g.group_id).collect()
    };
    assert_eq!(list(&[], &[]), [GROUP, "manual"]);
    assert_eq!(list(&["stable"], &[]), [GROUP]);
    assert_eq!(list(&["Empty", "Dead"], &[]), ["manual"]);
    assert_eq!(list(&[], &["Classic"]), [GROUP, "manual"]);
    assert!(
        list(&[], &["consumer"]).is_empty(),
        "no KIP-848 groups here"
    );

    let deleted = c.delete_groups(
        DeleteGroupsRequest {
            groups_names: vec![
                GROUP.to_owned(),
                "manual".to_owned(),
                "nope".to_owned(),
                "manual".to_owned(),
            ],
            ..DeleteGroupsRequest::default()
        },
        2,
    );
    let results: Vec<(&str, i16)> = deleted
        .results
        .iter()
        .map(|r| (r.group_id.as_str(), r.error_code))
        .collect();
    assert_eq!(
        results,
        [
            (GROUP, ErrorCode::NonEmptyGroup.code()),
            ("manual", NONE),
            ("nope", ErrorCode::GroupIdNotFound.code())
        ]
    );
    assert_eq!(c.group_state("manual"), None);
    assert_eq!(
        c.committed("manual", "topic", 0),
        None,
        "offsets go with the group"
    );
    assert_eq!(list(&[], &[]), [GROUP]);
}

#[tokio::test(start_paused = true)]
async fn invalid_requests_are_refused_without_side_effects() {
    let c = coordinator();
    let invalid_group = ErrorCode::InvalidGroupId.code();
    let nameless = JoinGroupRequest {
        group_id: String::new(),
        ..join_req("")
    };
    assert_eq!(join(&c, nameless, 5).await.error_code, invalid_group);
    let nameless_sync = SyncGroupRequest {
        group_id: String::new(),
        ..sync_req(1, "m", &[])
    };
    assert_eq!(
        c.sync_group(nameless_sync, 3).await.error_code,
        invalid_group
    );
    let nameless_leave = LeaveGroupRequest::default();
    assert_eq!(c.leave_group(nameless_leave, 3).error_code, invalid_group);

    let too_short = JoinGroupRequest {
        session_timeout_ms: 1000,
        ..join_req("")
    };
    assert_eq!(
        join(&c, too_short, 5).await.error_code,
        ErrorCode::InvalidSessionTimeout.code()
    );
    let no_type = JoinGroupRequest {
        protocol_type: String::new(),
        ..join_req("")
    };
    assert_eq!(
        join(&c, no_type, 3).await.error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        c.group_state(GROUP),
        None,
        "refused joins leave no group behind"
    );

    let (a, generation) = single_member_group(&c).await;
    let other_type = JoinGroupRequest {
        protocol_type: "connect".to_owned(),
        ..join_req("")
    };
    assert_eq!(
        join(&c, other_type, 3).await.error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    let no_common_protocol = JoinGroupRequest {
        protocols: vec![protocol("sticky", b"")],
        ..join_req("")
    };
    assert_eq!(
        join(&c, no_common_protocol, 3).await.error_code,
        ErrorCode::InconsistentGroupProtocol.code()
    );
    assert_eq!(
        c.group_state(GROUP),
        Some(GroupState::Stable),
        "refused joins do not rebalance"
    );

    let mut commit = commit_req(GROUP, generation, &a, &[(0, 1), (1, 2)]);
    commit.topics[0].partitions[0].committed_metadata =
        Some("x".repeat(MAX_OFFSET_METADATA_BYTES + 1));
    let committed = c.offset_commit(commit, 8);
    assert_eq!(
        commit_errors(&committed),
        [ErrorCode::OffsetMetadataTooLarge.code(), NONE]
    );
    assert_eq!(c.committed(GROUP, "topic", 0), None);
    assert_eq!(c.committed(GROUP, "topic", 1).map(|o| o.offset), Some(2));
}

#[tokio::test(start_paused = true)]
async fn full_group_turns_new_members_away() {
    let c = GroupCoordinator::new(GroupConfig {
        max_group_size: 1,
        ..GroupConfig::default()
    });
    let (a, generation) = single_member_group(&c).await;
    let refused = join(&c, join_req(""), 3).await;
    assert_eq!(refused.error_code, ErrorCode::GroupMaxSizeReached.code());
    assert_eq!(c.group_state(GROUP), Some(GroupState::Stable));
    assert_eq!(heartbeat(&c, generation, &a, None), NONE);
}

#[tokio::test(start_paused = true)]
async fn initial_rebalance_delay_waits_for_more_members() {
    let c = GroupCoordinator::new(GroupConfig {
        initial_rebalance_delay_ms: 3000,
        ..GroupConfig::default()
    });
    let start = Instant::now();
    let a_join = spawn_join(&c, join_req(""), 3);
    settle().await;
    assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    sleep(Duration::from_secs(1)).await;
    assert!(!a_join.is_finished(), "the first member waits for company");
    let b_join = spawn_join(&c, join_req(""), 3);
    let a_join = a_join.await.expect("join task");
    let b_join = b_join.await.expect("join task");
    // B's arrival during the delay earned one more delay: 3 s + 3 s.
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(6) && waited < Duration::from_secs(7),
        "took {waited:?}"
    );
    assert_eq!((a_join.generation_id, b_join.generation_id), (1, 1));
    assert_eq!(a_join.leader, a_join.member_id, "the first to join leads");
    assert_eq!(
        member_ids(&a_join),
        [a_join.member_id.as_str(), b_join.member_id.as_str()]
    );
}

#[tokio::test(start_paused = true)]
async fn rebalance_answers_waiting_syncs_with_rebalance_in_progress() {
    let c = coordinator();
    let (a, b, _) = two_member_group(&c, SESSION_MS, REBALANCE_MS).await;
    // The leader's join starts a rebalance; B rejoins too.
    let a_join = spawn_join(&c, join_req(&a), 5);
    settle().await;
    let b_join = join(&c, join_req(&b), 5).await;
    let generation = a_join.await.expect("join task").generation_id;
    assert_eq!(b_join.generation_id, generation);

    let b_sync = spawn_sync(&c, sync_req(generation, &b, &[]), 5);
    settle().await;
    assert!(!b_sync.is_finished());
    // A third member arrives before the leader's assignment.
    let c_join = spawn_join(&c, join_req(""), 3);
    settle().await;
    let b_sync = b_sync.await.expect("sync task");
    assert_eq!(b_sync.error_code, ErrorCode::RebalanceInProgress.code());
    assert_eq!(c.group_state(GROUP), Some(GroupState::PreparingRebalance));
    let late = c
        .sync_group(sync_req(generation, &a, &[(&a, b"x")]), 5)
        .await;
    assert_eq!(late.error_code, ErrorCode::RebalanceInProgress.code());

    // Everybody rejoins; the leader leaves B out of its assignment.
    let b_join = spawn_join(&c, join_req(&b), 5);
    let a_join = join(&c, join_req(&a), 5).await;
    let b_join = b_join.await.expect("join task");
    let c_join = c_join.await.expect("join task");
    assert_eq!(a_join.members.len(), 3);
    let generation = a_join.generation_id;
    let b_sync = spawn_sync(&c, sync_req(generation, &b, &[]), 5);
    settle().await;
    let a_sync = c
        .sync_group(
            sync_req(generation, &a, &[(&a, b"x"), (&c_join.member_id, b"y")]),
            5,
        )
        .await;
    assert_eq!(a_sync.error_code, NONE);
    let b_sync = b_sync.await.expect("sync task");
    assert_eq!(b_sync.error_code, NONE);
    assert!(
        b_sync.assignment.is_empty(),
        "missing from the assignment means nothing assigned"
    );
    let c_sync = c
        .sync_group(sync_req(generation, &c_join.member_id, &[]), 5)
        .await;
    assert_eq!(c_sync.assignment, Bytes::from_static(b"y"));
    assert_eq!(b_join.generation_id, generation);
}

#[tokio::test(start_paused = true)]
async fn dropped_join_call_and_missing_sync_do_not_wedge_the_group() {
    let c = coordinator();
    let (a, generation) = single_member_group(&c).await;
    // B's client disconnects while its join waits: the dispatcher drops the call.
    let b = member_id_for(&c, join_req(""), 5).await;
    // B's session outlasts the rebalance timeout: only the missing SyncGroup can remove it.
    let long_session = JoinGroupRequest {
        session_timeout_ms: 60_000,
        ..join_req(&b)
    };
    let b_join = spawn_join(&c, long_session, 5);
    settle().await;
    b_join.abort();
    assert!(b_join.await.is_err(), "the join call was cancelled");

    let a_join = join(&c, join_req(&a), 5).await;
    assert_eq!(a_join.error_code, NONE);
    assert_eq!(a_join.generation_id, generation + 1);
    assert_eq!(member_ids(&a_join), [a.as_str(), b.as_str()]);
    let a_sync = c
        .sync_group(
            sync_req(a_join.generation_id, &a, &[(&a, b"x"), (&b, b"y")]),
            5,
        )
        .await;
    assert_eq!(a_sync.error_code, NONE);

    // B never syncs: after the rebalance timeout it is dropped and A told to rejoin.
    let start = Instant::now();
    let mut told_to_rejoin = false;
    for _ in 0..20 {
        sleep(Duration::from_secs(3)).await;
        let error = heartbeat(&c, a_join.generation_id, &a, None);
        if error == ErrorCode::RebalanceInProgress.code() {
            told_to_rejoin = true;
            break;
        }
        assert_eq!(error, NONE);
    }
    assert!(told_to_rejoin);
    assert!(start.elapsed() >= Duration::from_millis(REBALANCE_MS as u64));
    let alone = join(&c, join_req(&a), 5).await;
    assert_eq!(member_ids(&alone), [a.as_str()]);
}

#[tokio::test(start_paused = true)]
async fn pending_member_id_expires_and_can_leave() {
    let c = coordinator();
    let (a, _) = single_member_group(&c).await;
    // A handed-out id holds up the next rebalance until it is used or expires.
    let pending = member_id_for(&c, join_req(""), 5).await;
    let start = Instant::now();
    let a_join = join(&c, join_req(&a), 5).await;
    assert_eq!(a_join.error_code, NONE);
    assert!(
        start.elapsed() >= Duration::from_millis(SESSION_MS as u64),
        "waited for the pending id"
    );
    assert_eq!(
        join(&c, join_req(&pending), 5).await.error_code,
        ErrorCode::UnknownMemberId.code()
    );

    // Leaving with a pending id is fine and does not hold anything up.
    let sync = c
        .sync_group(sync_req(a_join.generation_id, &a, &[]), 5)
        .await;
    assert_eq!(sync.error_code, NONE);
    let pending = member_id_for(&c, join_req(""), 5).await;
    let leave = LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        member_id: pending,
        ..LeaveGroupRequest::default()
    };
    assert_eq!(c.leave_group(leave, 0).error_code, NONE);
    let start = Instant::now();
    let a_join = join(&c, join_req(&a), 5).await;
    assert_eq!(a_join.error_code, NONE);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn timer_tasks_end_with_their_group_or_coordinator() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let c = coordinator();
    let weak = Arc::downgrade(&c);
    let (a, _) = single_member_group(&c).await;
    settle().await;
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 1,
        "one timer task for the group"
    );

    // Deleting the group ends its timer.
    let leave = LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        member_id: a,
        ..LeaveGroupRequest::default()
    };
    assert_eq!(c.leave_group(leave, 0).error_code, NONE);
    let deleted = c.delete_groups(
        DeleteGroupsRequest {
            groups_names: vec![GROUP.to_owned()],
            ..DeleteGroupsRequest::default()
        },
        0,
    );
    assert_eq!(deleted.results[0].error_code, NONE);
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), before);

    // Dropping the coordinator ends the others, with no timer firing.
    let _ = single_member_group(&c).await;
    settle().await;
    assert_eq!(metrics.num_alive_tasks(), before + 1);
    drop(c);
    settle().await;
    assert_eq!(
        weak.strong_count(),
        0,
        "timer tasks hold no strong reference"
    );
    assert_eq!(metrics.num_alive_tasks(), before);
}

/// Every response the coordinator builds must encode at the version it was
/// built for: the dispatcher encodes them unchecked.
#[tokio::test(start_paused = true)]
async fn responses_encode_at_every_version() {
    fn encodes(message: &impl Encode, version: i16, what: &str) {
        let mut buf = BytesMut::new();
        if let Err(error) = message.encode(&mut buf, version) {
            panic!("{what} v{version} does not encode: {error:?}");
        }
    }
    for version in 0..=9 {
        let c = coordinator();
        let request = match version {
            5.. => static_join_req("", "instance"),
            4 => join_req(&member_id_for(&c, join_req(""), version).await),
            _ => join_req(""),
        };
        let joined = join(&c, request, version).await;
        assert_eq!(joined.error_code, NONE, "join v{version}");
        encodes(&joined, version, "JoinGroupResponse");
        let refused = join(&c, join_req("ghost"), version).await;
        encodes(&refused, version, "JoinGroupResponse (error)");

        let sync_version = version.min(5);
        let synced = c
            .sync_group(
                sync_req(joined.generation_id, &joined.member_id, &[]),
                sync_version,
            )
            .await;
        encodes(&synced, sync_version, "SyncGroupResponse");
        let hb_version = version.min(4);
        let hb = c.heartbeat(
            HeartbeatRequest {
                group_id: GROUP.to_owned(),
                generation_id: joined.generation_id,
                member_id: joined.member_id.clone(),
                ..HeartbeatRequest::default()
            },
            hb_version,
        );
        encodes(&hb, hb_version, "HeartbeatResponse");

        let committed = c.offset_commit(
            commit_req(GROUP, joined.generation_id, &joined.member_id, &[(0, 1)]),
            version,
        );
        if version >= 1 {
            // v0 commits carry no member, which a live group refuses.
            assert_eq!(commit_errors(&committed), [NONE], "commit v{version}");
        }
        encodes(&committed, version, "OffsetCommitResponse");
        let fetch_request = if version >= 8 {
            OffsetFetchRequest {
                groups: vec![OffsetFetchRequestGroup {
                    group_id: GROUP.to_owned(),
                    topics: None,
                    ..OffsetFetchRequestGroup::default()
                }],
                ..OffsetFetchRequest::default()
            }
        } else {
            OffsetFetchRequest {
                group_id: GROUP.to_owned(),
                topics: Some(vec![OffsetFetchRequestTopic {
                    name: "topic".to_owned(),
                    partition_indexes: vec![0, 1],
                    ..OffsetFetchRequestTopic::default()
                }]),
                ..OffsetFetchRequest::default()
            }
        };
        let fetched: OffsetFetchResponse = c.offset_fetch(fetch_request, version);
        encodes(&fetched, version, "OffsetFetchResponse");

        let admin_version = version.min(5);
        let described = c.describe_groups(
            DescribeGroupsRequest {
                groups: vec![GROUP.to_owned(), "missing".to_owned()],
                include_authorized_operations: admin_version >= 3,
                ..DescribeGroupsRequest::default()
            },
            admin_version,
        );
        encodes(&described, admin_version, "DescribeGroupsResponse");
        let listed = c.list_groups(ListGroupsRequest::default(), admin_version);
        encodes(&listed, admin_version, "ListGroupsResponse");

        let leave_version = version.min(5);
        let leave = if leave_version >= 3 {
            LeaveGroupRequest {
                group_id: GROUP.to_owned(),
                members: vec![MemberIdentity {
                    member_id: joined.member_id.clone(),
                    ..MemberIdentity::default()
                }],
                ..LeaveGroupRequest::default()
            }
        } else {
            LeaveGroupRequest {
                group_id: GROUP.to_owned(),
                member_id: joined.member_id.clone(),
                ..LeaveGroupRequest::default()
            }
        };
        let left = c.leave_group(leave, leave_version);
        encodes(&left, leave_version, "LeaveGroupResponse");
        let delete_version = version.min(2);
        let deleted = c.delete_groups(
            DeleteGroupsRequest {
                groups_names: vec![GROUP.to_owned()],
                ..DeleteGroupsRequest::default()
            },
            delete_version,
        );
        assert_eq!(
            deleted.results[0].error_code, NONE,
            "delete v{delete_version}"
        );
        encodes(&deleted, delete_version, "DeleteGroupsResponse");
    }
}

/// A tiny deterministic generator for the random-sequence test.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// What a spawned call answered, with the version to encode it at (and for
/// joins, the group and instance id the member used).
enum Answer {
    Join(i16, String, Option<String>, JoinGroupResponse),
    Sync(i16, SyncGroupResponse),
}

/// A member id the coordinator handed out, with what the member was told.
struct Known {
    group: String,
    member_id: String,
    instance: Option<String>,
    generation: i32,
}

/// Thousands of random requests (bad ids, stale generations, odd versions,
/// invalid timeouts, oversized metadata) interleaved with time passing: no
/// panic, every response encodes at its version, and once the clock has run
/// past every timeout no call is left waiting.
#[tokio::test(start_paused = true)]
async fn random_request_sequences_never_panic_or_hang() {
    fn encodes(message: &impl Encode, version: i16) {
        let mut buf = BytesMut::new();
        message.encode(&mut buf, version).expect("response encodes");
    }
    let c = GroupCoordinator::new(GroupConfig {
        max_group_size: 4,
        initial_rebalance_delay_ms: 500,
        ..GroupConfig::default()
    });
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let groups = ["g1", "g2"];
    let instances = [None, Some("i1"), Some("i2")];
    let mut known: Vec<Known> = Vec::new();
    let mut waiting: Vec<JoinHandle<Answer>> = Vec::new();
    // (successful joins, successful syncs, rebalances seen by heartbeats)
    let mut progress = (0, 0, 0);

    for _ in 0..3000 {
        // Mostly plausible calls, so that groups really form and rebalance;
        // a fair share is wrong in some way.
        let group = if rng.below(10) == 0 {
            ""
        } else {
            rng.pick(&groups)
        }
        .to_owned();
        let members: Vec<&Known> = known.iter().filter(|k| k.group == group).collect();
        // 0-1 join, 2-6 sync, 7-13 heartbeat, 14 leave, 15 commit, 16 fetch,
        // 17 describe/list/delete, 18 transactional offsets, 19-23 time passes.
        let operation = rng.below(24);
        // Joins often come from new members; other calls mostly from known ones.
        let newcomer_odds = if operation <= 1 { 4 } else { 20 };
        let (member_id, instance, mut generation) = match rng.below(newcomer_odds) {
            0 => (String::new(), rng.pick(&instances).map(str::to_owned), -1),
            1 => (
                "ghost".to_owned(),
                rng.pick(&instances).map(str::to_owned),
                rng.below(6) as i32 - 2,
            ),
            _ if !members.is_empty() => {
                let k = members[rng.below(members.len())];
                (k.member_id.clone(), k.instance.clone(), k.generation)
            }
            _ => (String::new(), None, -1),
        };
        if rng.below(10) == 0 {
            generation = rng.below(6) as i32 - 2;
        }
        let target = known
            .get(rng.below(known.len().max(1)))
            .map(|k| k.member_id.clone())
            .unwrap_or_default();
        match operation {
            0..=1 => {
                let version = rng.below(10) as i16;
                let names = ["range", "roundrobin", "sticky"];
                let protocols = if rng.below(10) > 0 {
                    vec![protocol("range", b"range-meta")]
                } else {
                    (0..rng.below(3))
                        .map(|_| protocol(rng.pick(&names), b"meta"))
                        .collect()
                };
                let request = JoinGroupRequest {
                    group_id: group,
                    session_timeout_ms: if rng.below(10) > 0 {
                        30_000
                    } else {
                        rng.pick(&[0, 2_000_000])
                    },
                    rebalance_timeout_ms: rng.pick(&[-1, 0, 5000, 5000, 5000]),
                    member_id,
                    group_instance_id: if version >= 5 { instance } else { None },
                    protocol_type: if rng.below(10) > 0 {
                        "consumer"
                    } else {
                        rng.pick(&["", "connect"])
                    }
                    .to_owned(),
                    protocols,
                    ..JoinGroupRequest::default()
                };
                let c = Arc::clone(&c);
                let instance = request.group_instance_id.clone();
                let group = request.group_id.clone();
                waiting.push(tokio::spawn(async move {
                    let response = c.join_group(request, version, "client", "host").await;
                    Answer::Join(version, group, instance, response)
                }));
            }
            2..=6 => {
                let version = rng.below(6) as i16;
                let request = SyncGroupRequest {
                    group_id: group,
                    generation_id: generation,
                    member_id,
                    group_instance_id: if version >= 3 { instance } else { None },
                    assignments: vec![SyncGroupRequestAssignment {
                        member_id: target,
                        assignment: Bytes::from_static(b"assignment"),
                        ..SyncGroupRequestAssignment::default()
                    }],
                    ..SyncGroupRequest::default()
                };
                let c = Arc::clone(&c);
                waiting.push(tokio::spawn(async move {
                    Answer::Sync(version, c.sync_group(request, version).await)
                }));
            }
            7..=13 => {
                let version = rng.below(5) as i16;
                let request = HeartbeatRequest {
                    group_id: group.clone(),
                    generation_id: generation,
                    member_id: member_id.clone(),
                    group_instance_id: if version >= 3 { instance } else { None },
                    ..HeartbeatRequest::default()
                };
                let response = c.heartbeat(request, version);
                encodes(&response, version);
                if response.error_code == ErrorCode::RebalanceInProgress.code() {
                    progress.2 += 1;
                }
                if response.error_code == ErrorCode::UnknownMemberId.code() {
                    // The member is gone: stop using its id (mostly).
                    known.retain(|k| !(k.group == group && k.member_id == member_id));
                }
            }
            14 => {
                let version = rng.below(6) as i16;
                let request = if version >= 3 {
                    LeaveGroupRequest {
                        group_id: group,
                        members: vec![MemberIdentity {
                            member_id,
                            group_instance_id: instance,
                            ..MemberIdentity::default()
                        }],
                        ..LeaveGroupRequest::default()
                    }
                } else {
                    LeaveGroupRequest {
                        group_id: group,
                        member_id,
                        ..LeaveGroupRequest::default()
                    }
                };
                encodes(&c.leave_group(request, version), version);
            }
            15 => {
                let version = rng.below(10) as i16;
                let mut request = commit_req(&group, generation, &member_id, &[(0, 1), (1, 2)]);
                if rng.below(4) == 0 {
                    request.topics[0].partitions[0].committed_metadata =
                        Some("m".repeat(MAX_OFFSET_METADATA_BYTES + 1));
                }
                if version >= 7 {
                    request.group_instance_id = instance;
                }
                encodes(&c.offset_commit(request, version), version);
            }
            16 => {
                let version = rng.below(10) as i16;
                let request = if version >= 8 {
                    OffsetFetchRequest {
                        groups: vec![OffsetFetchRequestGroup {
                            group_id: group,
                            topics: None,
                            ..OffsetFetchRequestGroup::default()
                        }],
                        require_stable: true,
                        ..OffsetFetchRequest::default()
                    }
                } else {
                    OffsetFetchRequest {
                        group_id: group,
                        topics: Some(vec![OffsetFetchRequestTopic {
                            name: "topic".to_owned(),
                            partition_indexes: vec![0, 1, 2],
                            ..OffsetFetchRequestTopic::default()
                        }]),
                        require_stable: version >= 7,
                        ..OffsetFetchRequest::default()
                    }
                };
                encodes(&c.offset_fetch(request, version), version);
            }
            17 => {
                let version = rng.below(6) as i16;
                let describe = DescribeGroupsRequest {
                    groups: vec![group.clone()],
                    include_authorized_operations: version >= 3,
                    ..DescribeGroupsRequest::default()
                };
                encodes(&c.describe_groups(describe, version), version);
                encodes(
                    &c.list_groups(ListGroupsRequest::default(), version),
                    version,
                );
                let delete_version = version.min(2);
                let delete = DeleteGroupsRequest {
                    groups_names: vec![group],
                    ..DeleteGroupsRequest::default()
                };
                encodes(&c.delete_groups(delete, delete_version), delete_version);
            }
            18 => {
                let producer_id = rng.below(3) as i64;
                let _ = c.validate_txn_offset_commit(
                    &group,
                    generation,
                    &member_id,
                    instance.as_deref(),
                );
                match rng.below(3) {
                    0 => c.add_pending_txn_offsets(
                        &group,
                        producer_id,
                        vec![(
                            "topic".to_owned(),
                            0,
                            CommittedOffset {
                                offset: 9,
                                leader_epoch: -1,
                                metadata: None,
                                commit_timestamp_ms: 0,
                            },
                        )],
                    ),
                    1 => c.complete_txn(&group, producer_id, true),
                    _ => c.complete_txn(&group, producer_id, false),
                }
            }
            // Now and then long enough for sessions (30 s) to expire.
            _ => {
                sleep(Duration::from_millis(rng.pick(&[
                    0, 100, 100, 500, 1000, 1000, 2000, 3000, 5000, 40_000,
                ])))
                .await
            }
        }
        settle().await;
        let mut still_waiting = Vec::new();
        for handle in waiting {
            if !handle.is_finished() {
                still_waiting.push(handle);
                continue;
            }
            match handle.await.expect("call task") {
                Answer::Join(version, group, instance, response) => {
                    encodes(&response, version);
                    if response.error_code == NONE {
                        progress.0 += 1;
                    }
                    let told = response.error_code == NONE
                        || response.error_code == ErrorCode::MemberIdRequired.code();
                    if told && !response.member_id.is_empty() {
                        known.retain(|k| !(k.group == group && k.member_id == response.member_id));
                        if known.len() >= 12 {
                            known.remove(0);
                        }
                        known.push(Known {
                            group,
                            member_id: response.member_id,
                            instance,
                            generation: response.generation_id,
                        });
                    }
                }
                Answer::Sync(version, response) => {
                    encodes(&response, version);
                    if response.error_code == NONE {
                        progress.1 += 1;
                    }
                }
            }
        }
        waiting = still_waiting;
    }
    // The sequence must have exercised the real paths, not only refusals.
    let (joins, syncs, rebalances) = progress;
    assert!(
        joins >= 20 && syncs >= 10 && rebalances >= 1,
        "too little happened: {progress:?}"
    );

    // Past every session, rebalance and join timeout, nothing may still wait.
    sleep(Duration::from_secs(3600)).await;
    settle().await;
    for handle in waiting {
        assert!(
            handle.is_finished(),
            "a call is still waiting after an hour"
        );
        match handle.await.expect("call task") {
            Answer::Join(version, _, _, response) => encodes(&response, version),
            Answer::Sync(version, response) => encodes(&response, version),
        }
    }
}
