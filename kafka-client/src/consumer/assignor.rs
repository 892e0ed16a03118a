//! Partition assignment for consumer groups: the Java client's wire format
//! for subscriptions and assignments (so mixed groups of this client, Java
//! and librdkafka consumers work) and the `range`, `roundrobin` and
//! `cooperative-sticky` assignors, which the group leader runs.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment as wire_assignment;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription};
use kafka_protocol::{Decode, Encode};

use crate::{Error, Result};

pub use super::sticky::CooperativeStickyAssignor;

/// The newest subscription and assignment versions this client writes.
pub const SUBSCRIPTION_VERSION: i16 = 3;
/// See [`SUBSCRIPTION_VERSION`].
pub const ASSIGNMENT_VERSION: i16 = 3;

/// Encodes a subscription as JoinGroup protocol metadata: an INT16 version,
/// then the body at that version.
pub fn encode_subscription(subscription: &ConsumerProtocolSubscription) -> Result<Bytes> {
    let mut out = BytesMut::new();
    out.put_i16(SUBSCRIPTION_VERSION);
    subscription
        .encode(&mut out, SUBSCRIPTION_VERSION)
        .map_err(|e| Error::Protocol(format!("subscription: {e}")))?;
    Ok(out.freeze())
}

/// Decodes protocol metadata written by any client. A version newer than
/// ours is read as our newest: later versions only append fields.
pub fn decode_subscription(metadata: &Bytes) -> Result<ConsumerProtocolSubscription> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Err(Error::Protocol(
            "subscription shorter than its version".into(),
        ));
    }
    let version = buf.get_i16().clamp(0, SUBSCRIPTION_VERSION);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map_err(|e| Error::Protocol(format!("subscription v{version}: {e}")))
}

/// Encodes an assignment for SyncGroup.
pub fn encode_assignment(partitions: &BTreeMap<String, Vec<i32>>) -> Result<Bytes> {
    let assignment = ConsumerProtocolAssignment {
        assigned_partitions: partitions
            .iter()
            .map(|(topic, partitions)| wire_assignment::TopicPartition {
                topic: topic.clone(),
                partitions: partitions.clone(),
            })
            .collect(),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    out.put_i16(ASSIGNMENT_VERSION);
    assignment
        .encode(&mut out, ASSIGNMENT_VERSION)
        .map_err(|e| Error::Protocol(format!("assignment: {e}")))?;
    Ok(out.freeze())
}

/// Decodes a SyncGroup assignment; empty bytes mean no partitions.
pub fn decode_assignment(bytes: &Bytes) -> Result<BTreeMap<String, Vec<i32>>> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut buf = bytes.clone();
    if buf.remaining() < 2 {
        return Err(Error::Protocol(
            "assignment shorter than its version".into(),
        ));
    }
    let version = buf.get_i16().clamp(0, ASSIGNMENT_VERSION);
    let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
        .map_err(|e| Error::Protocol(format!("assignment v{version}: {e}")))?;
    let mut out: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for tp in assignment.assigned_partitions {
        out.entry(tp.topic).or_default().extend(tp.partitions);
    }
    Ok(out)
}

/// A group member as the leader sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member id.
    pub id: String,
    /// Its `group.instance.id`, if static.
    pub instance_id: Option<String>,
    /// What it subscribed to.
    pub subscription: ConsumerProtocolSubscription,
}

/// Member id -> topic -> partitions.
pub type Assignment = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// How a group moves partitions in a rebalance (Java's
/// `ConsumerPartitionAssignor.RebalanceProtocol`), ordered as Java orders
/// them: a consumer uses the greatest protocol all its assignors support.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining; the
    /// leader hands them all out again (range, round-robin).
    Eager,
    /// Incremental cooperative rebalancing (KIP-429): members keep their
    /// partitions while rejoining and advertise them as owned; the leader
    /// never gives a partition to a new owner in the generation that takes
    /// it from the old one, so a partition that moves is revoked in one
    /// rebalance and assigned in the next, and one that stays is never
    /// revoked.
    Cooperative,
}

/// A partition assignor, run by the group leader.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The protocol name members advertise (`range`, `roundrobin`, ...).
    fn name(&self) -> &'static str;
    /// The rebalance protocols this assignor can work under (Java's
    /// `supportedProtocols()`); eager only unless it says otherwise.
    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }
    /// The `UserData` of this member's subscription, given the generation
    /// of its current assignment (-1 before the first); none by default.
    fn subscription_user_data(&self, generation: i32) -> Option<Bytes> {
        let _ = generation;
        None
    }
    /// Assigns the partitions of every subscribed topic (`partitions` gives
    /// each topic's count) to the members.
    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> Assignment;
}

/// Members in the order Java's assignors use: static members by instance
/// id, then dynamic ones by member id.
pub(crate) fn ordered(members: &[Member]) -> Vec<&Member> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    sorted
}

pub(crate) fn empty(members: &[Member]) -> Assignment {
    members
        .iter()
        .map(|m| (m.id.clone(), BTreeMap::new()))
        .collect()
}

/// The greatest rebalance protocol every one of `assignors` supports, as
/// Java's `ConsumerCoordinator` picks it (so `cooperative-sticky,range`
/// rebalances eagerly: the first step of Java's upgrade path); `None` when
/// they have none in common.
pub fn common_protocol(assignors: &[std::sync::Arc<dyn Assignor>]) -> Option<RebalanceProtocol> {
    let first = assignors.first()?;
    first
        .supported_protocols()
        .iter()
        .copied()
        .filter(|p| {
            assignors
                .iter()
                .all(|a| a.supported_protocols().contains(p))
        })
        .max()
}

/// The cooperative protocol's safety rule, applied to any assignment: a
/// partition given to one member while another member's subscription says
/// it owns it is taken out of the assignment. The owner sees it missing,
/// revokes it and rejoins, and the follow-up rebalance assigns it, so no
/// partition is ever fetched by two members at once. Returns how many
/// partitions were held back.
pub fn withhold_transfers(members: &[Member], assignment: &mut Assignment) -> usize {
    let mut claims: BTreeMap<(&str, i32), Vec<&str>> = BTreeMap::new();
    for m in members {
        for tp in &m.subscription.owned_partitions {
            for p in &tp.partitions {
                claims
                    .entry((tp.topic.as_str(), *p))
                    .or_default()
                    .push(m.id.as_str());
            }
        }
    }
    let mut held = 0;
    for (member, topics) in assignment.iter_mut() {
        for (topic, partitions) in topics.iter_mut() {
            partitions.retain(|p| {
                let taken = claims
                    .get(&(topic.as_str(), *p))
                    .is_some_and(|owners| owners.iter().any(|o| o != member));
                held += usize::from(taken);
                !taken
            });
        }
        topics.retain(|_, partitions| !partitions.is_empty());
    }
    held
}

/// Java's `RangeAssignor`: per topic, consecutive ranges of partitions, the
/// first members getting one extra when they do not divide evenly.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> Assignment {
        let mut out = empty(members);
        for (topic, &count) in partitions {
            let subscribed: Vec<&Member> = ordered(members)
                .into_iter()
                .filter(|m| m.subscription.topics.iter().any(|t| t == topic))
                .collect();
            if subscribed.is_empty() || count <= 0 {
                continue;
            }
            let n = subscribed.len() as i32;
            let (per, extra) = (count / n, count % n);
            for (i, member) in subscribed.iter().enumerate() {
                let i = i as i32;
                let start = per * i + i.min(extra);
                let len = per + i32::from(i < extra);
                if len > 0
                    && let Some(topics) = out.get_mut(&member.id)
                {
                    topics.insert(topic.clone(), (start..start + len).collect());
                }
            }
        }
        out
    }
}

/// Java's `RoundRobinAssignor`: all partitions in topic order dealt out to
/// the members in turn, skipping members not subscribed to the topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> Assignment {
        let mut out = empty(members);
        let sorted = ordered(members);
        if sorted.is_empty() {
            return out;
        }
        let mut next = 0usize;
        for (topic, &count) in partitions {
            for partition in 0..count.max(0) {
                // At most one full turn to find a subscribed member.
                for _ in 0..sorted.len() {
                    let member = sorted[next % sorted.len()];
                    next += 1;
                    if member.subscription.topics.iter().any(|t| t == topic) {
                        if let Some(topics) = out.get_mut(&member.id) {
                            topics.entry(topic.clone()).or_default().push(partition);
                        }
                        break;
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, topics: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            subscription: ConsumerProtocolSubscription {
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            },
        }
    }

    fn flat(assignment: &Assignment, id: &str) -> Vec<String> {
        assignment[id]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| format!("{t}-{p}")))
            .collect()
    }

    #[test]
    fn range_matches_javas_documented_example() {
        // Kafka's RangeAssignor javadoc: C0, C1; t0 and t1 with 3 partitions each.
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let partitions = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
        let a = RangeAssignor.assign(&members, &partitions);
        assert_eq!(flat(&a, "C0"), ["t0-0", "t0-1", "t1-0", "t1-1"]);
        assert_eq!(flat(&a, "C1"), ["t0-2", "t1-2"]);
    }

    #[test]
    fn round_robin_matches_javas_documented_example() {
        let members = [member("C0", &["t0", "t1"]), member("C1", &["t0", "t1"])];
        let partitions = BTreeMap::from([("t0".to_owned(), 3), ("t1".to_owned(), 3)]);
        let a = RoundRobinAssignor.assign(&members, &partitions);
        assert_eq!(flat(&a, "C0"), ["t0-0", "t0-2", "t1-1"]);
        assert_eq!(flat(&a, "C1"), ["t0-1", "t1-0", "t1-2"]);
    }

    #[test]
    fn every_partition_goes_to_exactly_one_subscribed_member() {
        let members = [
            member("a", &["x"]),
            member("b", &["x", "y"]),
            member("c", &["y"]),
        ];
        let partitions = BTreeMap::from([("x".to_owned(), 7), ("y".to_owned(), 5)]);
        for assignor in [&RangeAssignor as &dyn Assignor, &RoundRobinAssignor] {
            let a = assignor.assign(&members, &partitions);
            let mut seen: Vec<String> = a.keys().flat_map(|id| flat(&a, id)).collect();
            seen.sort();
            let mut expected: Vec<String> = (0..7)
                .map(|p| format!("x-{p}"))
                .chain((0..5).map(|p| format!("y-{p}")))
                .collect();
            expected.sort();
            assert_eq!(seen, expected, "{}", assignor.name());
            assert!(flat(&a, "a").iter().all(|tp| tp.starts_with("x-")));
            assert!(flat(&a, "c").iter().all(|tp| tp.starts_with("y-")));
        }
    }

    #[test]
    fn a_cooperative_subscription_has_javas_v3_layout() {
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as Owned;
        let subscription = ConsumerProtocolSubscription {
            topics: vec!["t".into()],
            user_data: CooperativeStickyAssignor.subscription_user_data(4),
            owned_partitions: vec![Owned {
                topic: "t".into(),
                partitions: vec![0, 2],
            }],
            generation_id: 4,
            ..Default::default()
        };
        let bytes = encode_subscription(&subscription).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 3,                   // version
            0, 0, 0, 1, 0, 1, b't', // topics: ["t"]
            0, 0, 0, 4, 0, 0, 0, 4, // user data: the generation as INT32
            0, 0, 0, 1, 0, 1, b't', // owned partitions: t ...
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // ... [0, 2]
            0, 0, 0, 4,             // generation id
            0xff, 0xff,             // rack id: null
        ];
        assert_eq!(&bytes[..], expected);
        let decoded = decode_subscription(&bytes).unwrap();
        assert_eq!(decoded.owned_partitions, subscription.owned_partitions);
        assert_eq!(decoded.generation_id, 4);
    }

    #[test]
    fn the_protocol_is_the_greatest_all_assignors_support() {
        use std::sync::Arc;
        let sticky: Arc<dyn Assignor> = Arc::new(CooperativeStickyAssignor);
        let range: Arc<dyn Assignor> = Arc::new(RangeAssignor);
        assert_eq!(
            common_protocol(std::slice::from_ref(&sticky)),
            Some(RebalanceProtocol::Cooperative)
        );
        // Java's upgrade path: both offered, eager until range is dropped.
        assert_eq!(
            common_protocol(&[sticky, range]),
            Some(RebalanceProtocol::Eager)
        );
        assert_eq!(common_protocol(&[]), None);
    }

    #[test]
    fn wire_formats_round_trip_and_tolerate_newer_versions() {
        let subscription = ConsumerProtocolSubscription {
            topics: vec!["orders".into()],
            generation_id: 4,
            ..Default::default()
        };
        let bytes = encode_subscription(&subscription).unwrap();
        assert_eq!(decode_subscription(&bytes).unwrap().topics, ["orders"]);
        // A future version 9 with extra trailing bytes is read as ours.
        let mut newer = bytes.to_vec();
        newer[..2].copy_from_slice(&9i16.to_be_bytes());
        newer.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            decode_subscription(&Bytes::from(newer)).unwrap().topics,
            ["orders"]
        );
        let assignment = BTreeMap::from([("orders".to_owned(), vec![0, 2])]);
        let bytes = encode_assignment(&assignment).unwrap();
        assert_eq!(decode_assignment(&bytes).unwrap(), assignment);
        assert!(decode_assignment(&Bytes::new()).unwrap().is_empty());
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_err());
    }
}
