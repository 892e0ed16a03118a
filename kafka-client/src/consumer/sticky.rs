//! Java's `CooperativeStickyAssignor` (`cooperative-sticky`): a balanced
//! assignment that keeps as many of each member's owned partitions as
//! balance allows, under the cooperative protocol of KIP-429.
//!
//! The steps follow Java's `AbstractStickyAssignor` and
//! `CooperativeStickyAssignor`:
//!
//! 1. **Which ownership claims count.** Each subscription (v1+) lists the
//!    partitions its member owns, with the generation they were assigned in
//!    (the v2+ `GenerationId` field, else the 4-byte generation this
//!    assignor writes as user data). Only claims from the newest generation
//!    present count: a member that fell behind may claim partitions that
//!    were given away since. A partition claimed by two members of that
//!    generation counts for neither.
//! 2. **A balanced, sticky target.** When every member subscribes to the
//!    same topics, Java's quota algorithm: with `N` partitions and `M`
//!    members each gets `N / M` or one more (exactly `N % M` members get
//!    one more); a member keeps its owned partitions up to its quota, and
//!    the rest are dealt to the members below quota. Otherwise a general
//!    pass: keep owned partitions still subscribed, give each unowned one
//!    (fewest candidates first) to the least-loaded subscribed member, then
//!    move partitions from more- to less-loaded members while some member
//!    has two more than another that could take one of its partitions.
//! 3. **Two phases.** A partition the target gives to a member other than
//!    the one claiming it is left out this generation
//!    ([`withhold_transfers`]): its owner sees it missing, revokes it
//!    (committing its offsets) and rejoins at once, and the follow-up
//!    rebalance, where nobody claims it, assigns it to the new owner.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolSubscription;

use super::assignor::{
    Assignment, Assignor, Member, RebalanceProtocol, empty, ordered, withhold_transfers,
};

/// A partition: topic and index.
type Tp = (String, i32);

/// Java's `CooperativeStickyAssignor`, protocol name `cooperative-sticky`.
///
/// It supports both rebalance protocols, like Java's: alone it runs the
/// cooperative one; listed with an eager assignor
/// (`cooperative-sticky,range`) the consumer rebalances eagerly, which is
/// the first step of Java's two-step upgrade from eager assignors.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &'static [RebalanceProtocol] {
        &[RebalanceProtocol::Cooperative, RebalanceProtocol::Eager]
    }

    /// Java's `COOPERATIVE_STICKY_ASSIGNOR_USER_DATA_V0`: the generation as
    /// one big-endian INT32, read by leaders whose members send
    /// subscriptions older than v2 (without `GenerationId`).
    fn subscription_user_data(&self, generation: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(&self, members: &[Member], partitions: &BTreeMap<String, i32>) -> Assignment {
        let sorted = ordered(members);
        let owned = valid_claims(&sorted, partitions);
        let target = if same_subscriptions(&sorted) {
            constrained(&sorted, partitions, &owned)
        } else {
            general(&sorted, partitions, &owned)
        };
        let mut out = empty(members);
        for (member, tps) in target {
            if let Some(topics) = out.get_mut(member) {
                for (topic, partition) in tps {
                    topics.entry(topic).or_default().push(partition);
                }
            }
        }
        withhold_transfers(members, &mut out);
        out
    }
}

/// The generation a subscription's owned partitions come from, as Java's
/// `CooperativeStickyAssignor.memberData` reads it: the v2+ field when set,
/// else the user data's INT32 (unreadable user data counts as the default
/// generation -1), else unknown.
pub fn subscription_generation(subscription: &ConsumerProtocolSubscription) -> Option<i32> {
    if subscription.generation_id >= 0 {
        return Some(subscription.generation_id);
    }
    let data = subscription.user_data.as_ref()?;
    Some(match data.get(..4) {
        Some(&[a, b, c, d]) => i32::from_be_bytes([a, b, c, d]),
        _ => -1,
    })
}

/// Each member's owned partitions that count (step 1 of the module doc):
/// from the newest generation present (or from members without one when
/// no generation is known), of topics that still exist, claimed by no
/// other member of that generation.
fn valid_claims<'a>(
    members: &[&'a Member],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<&'a str, BTreeSet<Tp>> {
    let generations: Vec<Option<i32>> = members
        .iter()
        .map(|m| subscription_generation(&m.subscription))
        .collect();
    let newest = generations.iter().flatten().copied().max().unwrap_or(-1);
    let mut claimers: BTreeMap<Tp, usize> = BTreeMap::new();
    let mut claims: BTreeMap<&str, BTreeSet<Tp>> = BTreeMap::new();
    for (member, generation) in members.iter().zip(&generations) {
        let counts = match generation {
            Some(g) => *g == newest,
            None => newest == -1,
        };
        let mine = claims.entry(member.id.as_str()).or_default();
        if !counts {
            continue;
        }
        for tp in &member.subscription.owned_partitions {
            let Some(&count) = partitions.get(&tp.topic) else {
                continue;
            };
            for &p in &tp.partitions {
                if (0..count).contains(&p) && mine.insert((tp.topic.clone(), p)) {
                    *claimers.entry((tp.topic.clone(), p)).or_default() += 1;
                }
            }
        }
    }
    for (tp, count) in claimers {
        if count > 1 {
            tracing::warn!(
                topic = tp.0,
                partition = tp.1,
                "several members of one generation claim a partition; none keeps it"
            );
            for mine in claims.values_mut() {
                mine.remove(&tp);
            }
        }
    }
    claims
}

/// Whether `m`'s subscription says it owns `tp` (counted or not).
fn claims(m: &Member, tp: &Tp) -> bool {
    m.subscription
        .owned_partitions
        .iter()
        .any(|t| t.topic == tp.0 && t.partitions.contains(&tp.1))
}

fn same_subscriptions(members: &[&Member]) -> bool {
    let topics =
        |m: &Member| -> BTreeSet<String> { m.subscription.topics.iter().cloned().collect() };
    members
        .split_first()
        .is_none_or(|(first, rest)| rest.iter().all(|m| topics(m) == topics(first)))
}

fn all_partitions<'a>(
    partitions: &'a BTreeMap<String, i32>,
    topics: impl Fn(&str) -> bool + 'a,
) -> impl Iterator<Item = Tp> + 'a {
    partitions
        .iter()
        .filter(move |(t, _)| topics(t))
        .flat_map(|(t, &n)| (0..n.max(0)).map(move |p| (t.clone(), p)))
}

/// Java's `constrainedAssign`, for members that all subscribe to the same
/// topics: quotas `N / M` and one more for `N % M` members.
fn constrained<'a>(
    members: &[&'a Member],
    partitions: &BTreeMap<String, i32>,
    owned: &BTreeMap<&'a str, BTreeSet<Tp>>,
) -> BTreeMap<&'a str, BTreeSet<Tp>> {
    let mut out: BTreeMap<&str, BTreeSet<Tp>> = BTreeMap::new();
    let Some(first) = members.first() else {
        return out;
    };
    let subscribed: BTreeSet<&str> = first
        .subscription
        .topics
        .iter()
        .map(String::as_str)
        .collect();
    let all: Vec<Tp> = all_partitions(partitions, |t| subscribed.contains(t)).collect();
    let (min, extra) = (all.len() / members.len(), all.len() % members.len());
    let mut at_max = 0;
    let mut taken: BTreeSet<Tp> = BTreeSet::new();
    for member in members {
        let mine: Vec<&Tp> = owned
            .get(member.id.as_str())
            .into_iter()
            .flatten()
            .filter(|tp| subscribed.contains(tp.0.as_str()))
            .collect();
        let keep = if mine.len() <= min {
            mine.len()
        } else if at_max < extra {
            at_max += 1;
            min + 1
        } else {
            min
        };
        let kept: BTreeSet<Tp> = mine.into_iter().take(keep).cloned().collect();
        taken.extend(kept.iter().cloned());
        out.insert(member.id.as_str(), kept);
    }
    // A claim that did not count (a member whose rejoin raced a newer
    // generation) still says where the partition is being read: handing it
    // back there when quotas allow saves a revocation, so such partitions
    // are placed first, each with its claimer if it has room.
    let claimer = |tp: &Tp| -> Option<&'a str> {
        members
            .iter()
            .find(|m| claims(m, tp))
            .map(|m| m.id.as_str())
    };
    let mut unassigned: Vec<(bool, Tp)> = all
        .into_iter()
        .filter(|tp| !taken.contains(tp))
        .map(|tp| (claimer(&tp).is_none(), tp))
        .collect();
    unassigned.sort();
    for (_, tp) in unassigned {
        let room = |id: &str, at_max: usize| {
            out[id].len() < min || (out[id].len() == min && at_max < extra)
        };
        if let Some(id) = claimer(&tp).filter(|id| room(id, at_max)) {
            if out[id].len() == min {
                at_max += 1;
            }
            if let Some(set) = out.get_mut(id) {
                set.insert(tp);
            }
            continue;
        }
        // Fill members below the minimum quota first, least-loaded first;
        // then the `extra` members that get one more.
        let below_min = members
            .iter()
            .map(|m| m.id.as_str())
            .filter(|id| out[id].len() < min)
            .min_by_key(|id| out[id].len());
        let chosen = match below_min {
            Some(id) => id,
            None => {
                let Some(id) = members
                    .iter()
                    .map(|m| m.id.as_str())
                    .find(|id| out[id].len() == min)
                    .filter(|_| at_max < extra)
                else {
                    // Unreachable: the quotas add up to the partition count.
                    break;
                };
                at_max += 1;
                id
            }
        };
        if let Some(set) = out.get_mut(chosen) {
            set.insert(tp);
        }
    }
    out
}

/// Java's `generalAssign` in spirit, for members subscribed to different
/// topics: sticky first, then balanced by single moves.
fn general<'a>(
    members: &[&'a Member],
    partitions: &BTreeMap<String, i32>,
    owned: &BTreeMap<&'a str, BTreeSet<Tp>>,
) -> BTreeMap<&'a str, BTreeSet<Tp>> {
    let subscribes = |m: &Member, topic: &str| m.subscription.topics.iter().any(|t| t == topic);
    let mut out: BTreeMap<&str, BTreeSet<Tp>> = BTreeMap::new();
    let mut taken: BTreeSet<Tp> = BTreeSet::new();
    for member in members {
        let kept: BTreeSet<Tp> = owned
            .get(member.id.as_str())
            .into_iter()
            .flatten()
            .filter(|tp| subscribes(member, &tp.0))
            .cloned()
            .collect();
        taken.extend(kept.iter().cloned());
        out.insert(member.id.as_str(), kept);
    }
    let candidates = |topic: &str| -> Vec<&'a Member> {
        members
            .iter()
            .copied()
            .filter(|m| subscribes(m, topic))
            .collect()
    };
    let mut unowned: Vec<(usize, Tp)> =
        all_partitions(partitions, |t| members.iter().any(|m| subscribes(m, t)))
            .filter(|tp| !taken.contains(tp))
            .map(|tp| (candidates(&tp.0).len(), tp))
            .collect();
    unowned.sort();
    for (_, tp) in unowned {
        let chosen = candidates(&tp.0)
            .into_iter()
            .map(|m| m.id.as_str())
            .min_by_key(|id| out[id].len());
        if let Some(set) = chosen.and_then(|id| out.get_mut(id)) {
            set.insert(tp);
        }
    }
    // Each move lowers the sum of squared loads by at least 2, so this
    // ends; the bound only guards against a logic error.
    let total: usize = out.values().map(BTreeSet::len).sum();
    for _ in 0..=total * total {
        let mut best: Option<(usize, &str, &str, Tp)> = None;
        for (&from, tps) in &out {
            for tp in tps {
                for to in candidates(&tp.0) {
                    let to = to.id.as_str();
                    let gap = tps.len().saturating_sub(out[to].len());
                    if gap >= 2 && best.as_ref().is_none_or(|b| gap > b.0) {
                        best = Some((gap, from, to, tp.clone()));
                    }
                }
            }
        }
        let Some((_, from, to, tp)) = best else {
            break;
        };
        if let Some(set) = out.get_mut(from) {
            set.remove(&tp);
        }
        if let Some(set) = out.get_mut(to) {
            set.insert(tp);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;

    fn member(id: &str, topics: &[&str], generation: i32, owned: &[(&str, i32)]) -> Member {
        let mut owned_partitions: Vec<OwnedTopic> = Vec::new();
        for (topic, p) in owned {
            match owned_partitions.iter_mut().find(|t| t.topic == *topic) {
                Some(t) => t.partitions.push(*p),
                None => owned_partitions.push(OwnedTopic {
                    topic: (*topic).into(),
                    partitions: vec![*p],
                }),
            }
        }
        Member {
            id: id.into(),
            instance_id: None,
            subscription: ConsumerProtocolSubscription {
                topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                owned_partitions,
                generation_id: generation,
                ..Default::default()
            },
        }
    }

    fn flat(a: &Assignment, id: &str) -> Vec<(String, i32)> {
        a[id]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect()
    }

    fn owned_of(a: &Assignment, id: &str) -> Vec<(String, i32)> {
        flat(a, id)
    }

    /// Members re-subscribing with what `a` gave them, at `generation`.
    fn rejoin(ids: &[&str], topics: &[&str], generation: i32, a: &Assignment) -> Vec<Member> {
        ids.iter()
            .map(|id| {
                let owned = a.get(*id).map(|_| owned_of(a, id)).unwrap_or_default();
                let owned: Vec<(&str, i32)> = owned.iter().map(|(t, p)| (t.as_str(), *p)).collect();
                member(id, topics, generation, &owned)
            })
            .collect()
    }

    fn counts(a: &Assignment) -> Vec<usize> {
        let mut c: Vec<usize> = a.keys().map(|id| flat(a, id).len()).collect();
        c.sort();
        c
    }

    fn no_partition_twice(a: &Assignment) {
        let mut seen = BTreeSet::new();
        for id in a.keys() {
            for tp in flat(a, id) {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice: {a:?}");
            }
        }
    }

    #[test]
    fn a_fresh_group_is_balanced_and_complete() {
        let members = [
            member("a", &["t"], -1, &[]),
            member("b", &["t"], -1, &[]),
            member("c", &["t"], -1, &[]),
        ];
        let partitions = BTreeMap::from([("t".to_owned(), 7)]);
        let a = CooperativeStickyAssignor.assign(&members, &partitions);
        assert_eq!(counts(&a), [2, 2, 3]);
        no_partition_twice(&a);
        let total: usize = a.keys().map(|id| flat(&a, id).len()).sum();
        assert_eq!(total, 7);
    }

    #[test]
    fn a_new_member_takes_only_what_balance_needs_in_two_phases() {
        let partitions = BTreeMap::from([("t".to_owned(), 6)]);
        let first = CooperativeStickyAssignor.assign(
            &[member("a", &["t"], -1, &[]), member("b", &["t"], -1, &[])],
            &partitions,
        );
        assert_eq!(counts(&first), [3, 3]);
        // c joins; a and b rejoin owning what they had in generation 1.
        let mut members = rejoin(&["a", "b"], &["t"], 1, &first);
        members.push(member("c", &["t"], -1, &[]));
        let second = CooperativeStickyAssignor.assign(&members, &partitions);
        no_partition_twice(&second);
        // Phase one: a and b each give up exactly one; c gets nothing yet,
        // because what it will get is still owned by a or b.
        for id in ["a", "b"] {
            let kept = flat(&second, id);
            assert_eq!(kept.len(), 2, "{id}: {second:?}");
            assert!(
                kept.iter().all(|tp| flat(&first, id).contains(tp)),
                "{id} only keeps partitions it owned"
            );
        }
        assert!(flat(&second, "c").is_empty(), "{second:?}");
        // Phase two: everyone rejoins with generation 2; c gets the two
        // revoked partitions and a and b keep theirs.
        let third = CooperativeStickyAssignor
            .assign(&rejoin(&["a", "b", "c"], &["t"], 2, &second), &partitions);
        no_partition_twice(&third);
        assert_eq!(counts(&third), [2, 2, 2]);
        for id in ["a", "b"] {
            assert_eq!(flat(&third, id), flat(&second, id), "{id} is sticky");
        }
        let mut moved: Vec<(String, i32)> = flat(&first, "a")
            .into_iter()
            .chain(flat(&first, "b"))
            .filter(|tp| !flat(&second, "a").contains(tp) && !flat(&second, "b").contains(tp))
            .collect();
        moved.sort();
        assert_eq!(flat(&third, "c"), moved, "c gets exactly what was revoked");
    }

    #[test]
    fn a_leaving_member_s_partitions_move_at_once_and_the_rest_stay() {
        let partitions = BTreeMap::from([("t".to_owned(), 6)]);
        let first = CooperativeStickyAssignor.assign(
            &[
                member("a", &["t"], -1, &[]),
                member("b", &["t"], -1, &[]),
                member("c", &["t"], -1, &[]),
            ],
            &partitions,
        );
        // c left: nobody claims its partitions, so they move in one step.
        let second =
            CooperativeStickyAssignor.assign(&rejoin(&["a", "b"], &["t"], 1, &first), &partitions);
        assert_eq!(counts(&second), [3, 3]);
        for id in ["a", "b"] {
            let now = flat(&second, id);
            assert!(
                flat(&first, id).iter().all(|tp| now.contains(tp)),
                "{id} kept all it had"
            );
        }
    }

    #[test]
    fn claims_of_an_older_generation_or_of_two_members_do_not_count() {
        let partitions = BTreeMap::from([("t".to_owned(), 4)]);
        // b's claim on t-0 is from generation 3 while a's is from 5.
        let members = [
            member("a", &["t"], 5, &[("t", 0), ("t", 1)]),
            member("b", &["t"], 3, &[("t", 0), ("t", 2)]),
        ];
        let claims = valid_claims(&ordered(&members), &partitions);
        assert_eq!(claims["a"].len(), 2);
        assert!(claims["b"].is_empty());
        // Two members of one generation claiming t-0: neither keeps it.
        let members = [
            member("a", &["t"], 5, &[("t", 0), ("t", 1)]),
            member("b", &["t"], 5, &[("t", 0), ("t", 2)]),
        ];
        let claims = valid_claims(&ordered(&members), &partitions);
        assert!(!claims["a"].contains(&("t".to_owned(), 0)));
        assert!(!claims["b"].contains(&("t".to_owned(), 0)));
        // And the assignment never gives t-0 to one while the other claims it.
        let a = CooperativeStickyAssignor.assign(&members, &partitions);
        no_partition_twice(&a);
        assert!(
            a.keys()
                .all(|id| !flat(&a, id).contains(&("t".to_owned(), 0)))
        );
    }

    #[test]
    fn a_member_whose_rejoin_raced_a_newer_generation_keeps_its_partitions_safely() {
        // b's SyncGroup for generation 2 lost the race with a's follow-up
        // rejoin, so b still claims generation 1's partitions: they do not
        // count, but b keeps them where quotas allow, and the one that
        // must move is held back until b revokes it.
        let partitions = BTreeMap::from([("t".to_owned(), 6)]);
        let members = [
            member("a", &["t"], 2, &[("t", 0), ("t", 1)]),
            member("b", &["t"], 1, &[("t", 3), ("t", 4), ("t", 5)]),
            member("c", &["t"], 2, &[]),
        ];
        let a = CooperativeStickyAssignor.assign(&members, &partitions);
        no_partition_twice(&a);
        let t = |p: i32| ("t".to_owned(), p);
        assert_eq!(flat(&a, "a"), [t(0), t(1)]);
        assert_eq!(flat(&a, "b"), [t(3), t(4)]);
        // a already gave up t-2, so c gets it now; t-5 waits for b.
        assert_eq!(flat(&a, "c"), [t(2)]);
    }

    #[test]
    fn the_generation_comes_from_the_field_or_else_the_user_data() {
        let mut s = ConsumerProtocolSubscription {
            generation_id: 7,
            ..Default::default()
        };
        assert_eq!(subscription_generation(&s), Some(7));
        s.generation_id = -1;
        assert_eq!(subscription_generation(&s), None);
        s.user_data = CooperativeStickyAssignor.subscription_user_data(9);
        assert_eq!(s.user_data.as_deref(), Some(&[0u8, 0, 0, 9][..]));
        assert_eq!(subscription_generation(&s), Some(9));
        s.user_data = Some(Bytes::from_static(&[1]));
        assert_eq!(subscription_generation(&s), Some(-1));
    }

    #[test]
    fn different_subscriptions_are_balanced_where_they_can_be() {
        let partitions = BTreeMap::from([("x".to_owned(), 6), ("y".to_owned(), 2)]);
        // a owns all of x; b can take x too, c only y.
        let owned: Vec<(&str, i32)> = (0..6).map(|p| ("x", p)).collect();
        let members = [
            member("a", &["x"], 1, &owned),
            member("b", &["x", "y"], 1, &[]),
            member("c", &["y"], 1, &[]),
        ];
        let target = general(
            &ordered(&members),
            &partitions,
            &valid_claims(&ordered(&members), &partitions),
        );
        let sizes: Vec<usize> = ["a", "b", "c"].iter().map(|id| target[id].len()).collect();
        // 8 partitions; c can hold only y's 2, a and b share x.
        assert_eq!(sizes, [3, 3, 2], "{target:?}");
        assert!(target["c"].iter().all(|tp| tp.0 == "y"));
        assert!(target["a"].iter().all(|tp| tp.0 == "x"));
        assert_eq!(sizes.iter().sum::<usize>(), 8);
        // The cooperative assignment holds back what a still owns.
        let a = CooperativeStickyAssignor.assign(&members, &partitions);
        no_partition_twice(&a);
        assert!(
            flat(&a, "b")
                .iter()
                .all(|tp| tp.0 == "y" || !owned.iter().any(|(t, p)| *t == tp.0 && *p == tp.1))
        );
        assert!(
            flat(&a, "a")
                .iter()
                .all(|tp| owned.iter().any(|(t, p)| *t == tp.0 && *p == tp.1))
        );
    }

    #[test]
    fn repeated_rebalances_converge_and_never_double_assign() {
        // Members come and go; every round's members rejoin with what the
        // previous round gave them. No round gives a partition to two
        // members, and once membership is stable, two rounds balance it.
        let partitions = BTreeMap::from([("t".to_owned(), 10), ("u".to_owned(), 3)]);
        let topics = ["t", "u"];
        let rounds: [&[&str]; 5] = [
            &["a"],
            &["a", "b"],
            &["a", "b", "c", "d"],
            &["b", "d"],
            &["b", "c", "d", "e", "f"],
        ];
        let mut previous: Assignment = BTreeMap::new();
        let mut generation = -1;
        for ids in rounds {
            for _ in 0..2 {
                let members = rejoin(ids, &topics, generation, &previous);
                let a = CooperativeStickyAssignor.assign(&members, &partitions);
                no_partition_twice(&a);
                // Nothing a member owned goes to someone else in one step.
                for m in &members {
                    for tp in &m.subscription.owned_partitions {
                        for p in &tp.partitions {
                            for other in a.keys().filter(|o| **o != m.id) {
                                assert!(!flat(&a, other).contains(&(tp.topic.clone(), *p)));
                            }
                        }
                    }
                }
                generation += 1;
                previous = a;
            }
            let c = counts(&previous);
            assert!(c[c.len() - 1] - c[0] <= 1, "{ids:?}: {previous:?}");
            assert_eq!(c.iter().sum::<usize>(), 13, "{ids:?}: all assigned");
        }
    }
}
