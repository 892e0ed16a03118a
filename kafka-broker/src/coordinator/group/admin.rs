//! DescribeGroups, ListGroups and DeleteGroups.

use std::collections::HashSet;

use bytes::Bytes;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse,
};
use tracing::info;

use super::state::Group;
use super::{GroupCoordinator, GroupState};

/// The operations a client may perform on a group when nothing restricts
/// them (no authorizer): READ (3), DELETE (6) and DESCRIBE (8), as the
/// bitfield DescribeGroups v3+ reports.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// The type ListGroups v5+ reports for every group of this coordinator.
const CLASSIC_GROUP_TYPE: &str = "classic";

impl GroupCoordinator {
    /// Handles DescribeGroups. Unknown groups are described as "Dead" with no
    /// error (v0-5 behaviour). Member metadata, assignments and the protocol
    /// name are only reported for a Stable group, as in Kafka.
    pub fn describe_groups(
        &self,
        request: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let authorized_operations = if version >= 3 && request.include_authorized_operations {
            GROUP_AUTHORIZED_OPERATIONS
        } else {
            // The schema's default: "not requested".
            DescribedGroup::default().authorized_operations
        };
        let groups = self.lock_groups();
        let described = request
            .groups
            .into_iter()
            .map(|group_id| {
                let mut described = match groups.get(&group_id) {
                    Some(group) => describe(group, version),
                    None => DescribedGroup {
                        group_state: GroupState::Dead.name().to_owned(),
                        ..DescribedGroup::default()
                    },
                };
                described.group_id = group_id;
                described.authorized_operations = authorized_operations;
                described
            })
            .collect();
        DescribeGroupsResponse {
            groups: described,
            ..DescribeGroupsResponse::default()
        }
    }

    /// Handles ListGroups: every group, filtered by state names (v4+,
    /// case-insensitive) and by group type (v5+; every group here is
    /// "classic"). Sorted by group id.
    pub fn list_groups(&self, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let states: HashSet<String> = if version >= 4 {
            request
                .states_filter
                .iter()
                .map(|state| state.to_ascii_lowercase())
                .collect()
        } else {
            HashSet::new()
        };
        let types_match = version < 5
            || request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|kind| kind.eq_ignore_ascii_case(CLASSIC_GROUP_TYPE));
        let groups = self.lock_groups();
        let mut listed: Vec<ListedGroup> = if types_match {
            groups
                .values()
                .filter(|group| {
                    states.is_empty() || states.contains(&group.state.name().to_ascii_lowercase())
                })
                .map(|group| ListedGroup {
                    group_id: group.group_id.clone(),
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    group_state: group.state.name().to_owned(),
                    group_type: CLASSIC_GROUP_TYPE.to_owned(),
                    ..ListedGroup::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        ListGroupsResponse {
            error_code: ErrorCode::None.code(),
            groups: listed,
            ..ListGroupsResponse::default()
        }
    }

    /// Handles DeleteGroups: an Empty group is removed with its offsets;
    /// a group with members gets `NON_EMPTY_GROUP`, an unknown one
    /// `GROUP_ID_NOT_FOUND`. A name repeated in the request is answered once.
    pub fn delete_groups(
        &self,
        request: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        let mut groups = self.lock_groups();
        let mut seen = HashSet::new();
        let mut results = Vec::new();
        for group_id in request.groups_names {
            if !seen.insert(group_id.clone()) {
                continue;
            }
            let error = match groups.get(&group_id).map(|group| group.state) {
                None | Some(GroupState::Dead) => ErrorCode::GroupIdNotFound,
                Some(GroupState::Empty) => {
                    // Dropping the group also drops its timer's wake-up
                    // sender, which ends the timer task.
                    groups.remove(&group_id);
                    info!(group = %group_id, "group deleted");
                    ErrorCode::None
                }
                Some(_) => ErrorCode::NonEmptyGroup,
            };
            results.push(DeletableGroupResult {
                group_id,
                error_code: error.code(),
                ..DeletableGroupResult::default()
            });
        }
        DeleteGroupsResponse {
            results,
            ..DeleteGroupsResponse::default()
        }
    }
}

/// Kafka's `GroupMetadata.summary`.
fn describe(group: &Group, version: i16) -> DescribedGroup {
    let stable = group.state == GroupState::Stable;
    let protocol = group.protocol_name.clone().unwrap_or_default();
    let members = group
        .members_in_join_order()
        .into_iter()
        .map(|member| DescribedGroupMember {
            member_id: member.member_id.clone(),
            group_instance_id: if version >= 4 {
                member.group_instance_id.clone()
            } else {
                None
            },
            client_id: member.client_id.clone(),
            client_host: member.client_host.clone(),
            member_metadata: if stable {
                member.metadata(&protocol)
            } else {
                Bytes::new()
            },
            member_assignment: if stable {
                member.assignment.clone()
            } else {
                Bytes::new()
            },
            ..DescribedGroupMember::default()
        })
        .collect();
    DescribedGroup {
        error_code: ErrorCode::None.code(),
        group_state: group.state.name().to_owned(),
        protocol_type: group.protocol_type.clone().unwrap_or_default(),
        protocol_data: if stable { protocol } else { String::new() },
        members,
        ..DescribedGroup::default()
    }
}
