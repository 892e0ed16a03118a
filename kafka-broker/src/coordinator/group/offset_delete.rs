//! OffsetDelete (KIP-496): removing a group's committed offsets for some
//! partitions, as Kafka's `GroupCoordinator.handleDeleteOffsets` does.

use std::collections::HashSet;

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::{Decode, ErrorCode};
use tracing::info;

use super::state::Group;
use super::{GroupCoordinator, GroupState};

/// The protocol type of groups whose member metadata is a
/// `ConsumerProtocolSubscription`.
const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The newest subscription version the codec reads; later versions only add
/// fields, so they are read as this one.
const MAX_SUBSCRIPTION_VERSION: i16 = 3;

impl GroupCoordinator {
    /// Handles OffsetDelete for partitions known to exist: one error per
    /// partition, in order, or one error for the whole request.
    ///
    /// An Empty group loses the offsets of every partition named. A consumer
    /// group with members keeps those of topics its members subscribe to
    /// (`GROUP_SUBSCRIBED_TO_TOPIC`) and loses the others; when the
    /// subscriptions cannot be known (no protocol chosen yet, metadata that
    /// does not parse) every topic counts as subscribed, as in Kafka. A group
    /// with members of another protocol type is `NON_EMPTY_GROUP`, an unknown
    /// one `GROUP_ID_NOT_FOUND`. A group left Empty without offsets is
    /// removed.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let mut groups = self.lock_groups();
        let group = match groups.get_mut(group_id) {
            None => return Err(ErrorCode::GroupIdNotFound),
            Some(group) if group.state == GroupState::Dead => {
                return Err(ErrorCode::GroupIdNotFound);
            }
            Some(group) => group,
        };
        let subscribed: Option<Option<HashSet<String>>> = match group.state {
            GroupState::Empty => None,
            _ if group.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE) => {
                Some(subscribed_topics(group))
            }
            _ => return Err(ErrorCode::NonEmptyGroup),
        };
        let errors = partitions
            .iter()
            .map(|(topic, partition)| {
                let in_use = subscribed
                    .as_ref()
                    .is_some_and(|topics| topics.as_ref().is_none_or(|t| t.contains(topic)));
                if in_use {
                    return ErrorCode::GroupSubscribedToTopic;
                }
                if let Some(committed) = group.offsets.get_mut(topic) {
                    committed.remove(partition);
                    if committed.is_empty() {
                        group.offsets.remove(topic);
                    }
                }
                ErrorCode::None
            })
            .collect();
        info!(group = %group_id, "offsets deleted");
        if group.is_unused() {
            groups.remove(group_id);
        }
        Ok(errors)
    }
}

/// The topics the members subscribe to under the chosen protocol, or
/// `None` when that cannot be told.
fn subscribed_topics(group: &Group) -> Option<HashSet<String>> {
    let protocol = group.protocol_name.as_deref()?;
    let mut topics = HashSet::new();
    for member in group.members.values() {
        let mut metadata = member.metadata(protocol);
        if metadata.remaining() < 2 {
            return None;
        }
        let version = metadata.get_i16();
        if version < 0 {
            return None;
        }
        let subscription = ConsumerProtocolSubscription::decode(
            &mut metadata,
            version.min(MAX_SUBSCRIPTION_VERSION),
        )
        .ok()?;
        topics.extend(subscription.topics);
    }
    Some(topics)
}
