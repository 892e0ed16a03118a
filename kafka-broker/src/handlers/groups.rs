//! FindCoordinator and the consumer-group APIs, which the cluster-wide
//! [`GroupCoordinator`](crate::coordinator::group::GroupCoordinator) serves.
//!
//! Each group (and transactional id) is coordinated by one broker, chosen
//! by hashing the key over the running brokers; requests for a group that
//! reach another broker get NOT_COORDINATOR, as on a real cluster.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse,
    LeaveGroupResponse, RequestKind, ResponseKind, SyncGroupResponse,
};

use super::RequestContext;
use crate::state::BrokerAddr;

/// The broker coordinating `key`: a stable hash over the running brokers.
pub(crate) fn coordinator_for(ctx: &RequestContext, key: &str) -> Option<BrokerAddr> {
    let running: Vec<BrokerAddr> = ctx
        .shared
        .brokers()
        .into_iter()
        .filter(|b| b.running)
        .collect();
    if running.is_empty() {
        return None;
    }
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    running.get((hash % running.len() as u64) as usize).cloned()
}

/// Whether this broker coordinates `key` (a group or transactional id).
pub(crate) fn is_coordinator(ctx: &RequestContext, key: &str) -> bool {
    coordinator_for(ctx, key).is_some_and(|b| b.node_id == ctx.broker_id)
}

pub(crate) fn find_coordinator(
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    // Kafka knows group (0) and transaction (1) keys; any other type is
    // refused for every key of the request, not just logged.
    let key_type_ok = matches!(request.key_type, 0 | 1);
    if !key_type_ok {
        tracing::debug!(
            key_type = request.key_type,
            "FindCoordinator for an unsupported key type"
        );
    }
    let locate = |key: &str| -> Coordinator {
        let refused = |code: ErrorCode, message: String| Coordinator {
            key: key.to_owned(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: code.code(),
            error_message: Some(message),
            ..Default::default()
        };
        if !key_type_ok {
            return refused(
                ErrorCode::InvalidRequest,
                format!("unsupported coordinator key type {}", request.key_type),
            );
        }
        if key.is_empty() {
            return refused(ErrorCode::InvalidRequest, "empty coordinator key".into());
        }
        match coordinator_for(ctx, key) {
            Some(b) => Coordinator {
                key: key.to_owned(),
                node_id: b.node_id,
                host: b.host,
                port: i32::from(b.port),
                ..Default::default()
            },
            None => refused(
                ErrorCode::CoordinatorNotAvailable,
                "no broker is running".into(),
            ),
        }
    };
    if version >= 4 {
        FindCoordinatorResponse {
            coordinators: request.coordinator_keys.iter().map(|k| locate(k)).collect(),
            ..Default::default()
        }
    } else {
        let c = locate(&request.key);
        FindCoordinatorResponse {
            error_code: c.error_code,
            error_message: c.error_message,
            node_id: c.node_id,
            host: c.host,
            port: c.port,
            ..Default::default()
        }
    }
}

/// Takes out of `entries` those whose group this broker does not
/// coordinate, and returns them.
fn split_off_elsewhere<T>(
    ctx: &RequestContext,
    entries: &mut Vec<T>,
    group_of: impl Fn(&T) -> &String,
) -> Vec<T> {
    let (here, elsewhere): (Vec<T>, Vec<T>) = std::mem::take(entries)
        .into_iter()
        .partition(|e| is_coordinator(ctx, group_of(e)));
    *entries = here;
    elsewhere
}

/// The group APIs; `None` for anything else (never routed here).
pub(crate) async fn handle(
    ctx: &RequestContext,
    request: RequestKind,
    version: i16,
) -> Option<ResponseKind> {
    let groups = &ctx.shared.groups;
    let not_coordinator = ErrorCode::NotCoordinator.code();
    Some(match request {
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(if is_coordinator(ctx, &r.group_id) {
            groups
                .join_group(r, version, &ctx.client_id, &ctx.client_host)
                .await
        } else {
            JoinGroupResponse {
                error_code: not_coordinator,
                generation_id: -1,
                ..Default::default()
            }
        }),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(if is_coordinator(ctx, &r.group_id) {
            groups.sync_group(r, version).await
        } else {
            SyncGroupResponse {
                error_code: not_coordinator,
                ..Default::default()
            }
        }),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(if is_coordinator(ctx, &r.group_id) {
            groups.heartbeat(r, version)
        } else {
            HeartbeatResponse {
                error_code: not_coordinator,
                ..Default::default()
            }
        }),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(if is_coordinator(ctx, &r.group_id) {
                groups.leave_group(r, version)
            } else {
                LeaveGroupResponse {
                    error_code: not_coordinator,
                    ..Default::default()
                }
            })
        }
        RequestKind::OffsetCommit(r) => {
            let response = groups.offset_commit(r, version);
            ctx.shared.persist_offsets();
            ResponseKind::OffsetCommit(response)
        }
        // Batched (v8+): each group its coordinator's; v0-7 is checked
        // before dispatch (`routing`).
        RequestKind::OffsetFetch(mut r) => {
            let elsewhere = split_off_elsewhere(ctx, &mut r.groups, |g| &g.group_id);
            let mut response = groups.offset_fetch(r, version);
            response
                .groups
                .extend(elsewhere.into_iter().map(|g| OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    error_code: not_coordinator,
                    ..Default::default()
                }));
            ResponseKind::OffsetFetch(response)
        }
        RequestKind::DescribeGroups(mut r) => {
            let elsewhere = split_off_elsewhere(ctx, &mut r.groups, |g| g);
            let mut response = groups.describe_groups(r, version);
            response
                .groups
                .extend(elsewhere.into_iter().map(|group_id| DescribedGroup {
                    group_id,
                    error_code: not_coordinator,
                    ..Default::default()
                }));
            ResponseKind::DescribeGroups(response)
        }
        // Each broker lists the groups it coordinates, as in Kafka: a
        // client lists a cluster's groups by asking every broker.
        RequestKind::ListGroups(r) => {
            let mut response = groups.list_groups(r, version);
            response.groups.retain(|g| is_coordinator(ctx, &g.group_id));
            ResponseKind::ListGroups(response)
        }
        RequestKind::DeleteGroups(mut r) => {
            let elsewhere = split_off_elsewhere(ctx, &mut r.groups_names, |g| g);
            let mut response = groups.delete_groups(r, version);
            ctx.shared.persist_offsets();
            response
                .results
                .extend(elsewhere.into_iter().map(|group_id| DeletableGroupResult {
                    group_id,
                    error_code: not_coordinator,
                    ..Default::default()
                }));
            ResponseKind::DeleteGroups(response)
        }
        other => {
            tracing::warn!(api = ?other.api_key(), "request routed to no handler");
            return None;
        }
    })
}
