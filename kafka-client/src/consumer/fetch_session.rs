//! The consumer's side of incremental fetch sessions (KIP-227): with each
//! broker, the first fetch sends every partition and asks for a session;
//! later ones send only partitions whose position changed or that joined,
//! and name those that left (forgotten), so a consumer of many partitions
//! does not resend them all on every fetch.
//!
//! A session the broker lost (FETCH_SESSION_ID_NOT_FOUND, an evicted one)
//! or whose epoch it refused is dropped and the next fetch is full again;
//! so is one whose fetch failed on the way, since its epoch is then in
//! doubt.

use std::collections::BTreeMap;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::messages::fetch_request::{FetchTopic, ForgottenTopic};
use uuid::Uuid;

use crate::topic_partition::TopicPartition;

/// The first Fetch version with sessions.
const SESSIONS_FROM: i16 = 7;

/// The first Fetch version that names topics by id.
const IDS_FROM: i16 = 13;

/// What a session holds of a partition: the position last sent and the
/// topic id it was sent under.
type Held = BTreeMap<TopicPartition, (i64, Uuid)>;

/// One broker's session.
#[derive(Debug, Default)]
pub(super) struct FetchSession {
    /// The broker's id for it; 0 when there is none.
    id: i32,
    /// The epoch the next incremental fetch carries.
    epoch: i32,
    /// Whether the session names topics by id (v13+); a fetch of the other
    /// kind starts a new session.
    by_id: bool,
    held: Held,
    /// What the session holds once the fetch in flight is answered.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    /// The fetch opened (or replaced) a session rather than continuing it.
    full: bool,
    by_id: bool,
    held: Held,
}

/// The session fields and partitions of one fetch request.
#[derive(Debug, PartialEq)]
pub(super) struct SessionFetch {
    pub session_id: i32,
    pub session_epoch: i32,
    /// Every wanted partition for a full fetch; the changed ones otherwise.
    pub topics: Vec<FetchTopic>,
    pub forgotten: Vec<ForgottenTopic>,
}

impl FetchSession {
    /// The session part of a fetch of `topics` (every wanted partition,
    /// grouped by topic, each at its position) at `version`; before v7,
    /// and for a fetch whose version is not known yet (`None`: no
    /// connection to the broker yet), a full fetch without a session.
    pub(super) fn build(&mut self, topics: Vec<FetchTopic>, version: Option<i16>) -> SessionFetch {
        let Some(version) = version.filter(|v| *v >= SESSIONS_FROM) else {
            self.reset();
            return SessionFetch {
                session_id: 0,
                session_epoch: -1,
                topics,
                forgotten: Vec::new(),
            };
        };
        let by_id = version >= IDS_FROM;
        let mut wanted = Held::new();
        for topic in &topics {
            for p in &topic.partitions {
                wanted.insert(
                    TopicPartition::new(topic.topic.clone(), p.partition),
                    (p.fetch_offset, topic.topic_id),
                );
            }
        }
        if self.id == 0 || self.by_id != by_id || self.epoch == 0 {
            // Open one (id 0), or replace a doubtful one (its id, epoch 0).
            self.pending = Some(Pending {
                full: true,
                by_id,
                held: wanted,
            });
            return SessionFetch {
                session_id: if self.by_id == by_id { self.id } else { 0 },
                session_epoch: 0,
                topics,
                forgotten: Vec::new(),
            };
        }
        let changed: Vec<FetchTopic> = topics
            .into_iter()
            .filter_map(|mut topic| {
                topic.partitions.retain(|p| {
                    let tp = TopicPartition::new(topic.topic.clone(), p.partition);
                    self.held.get(&tp) != Some(&(p.fetch_offset, topic.topic_id))
                });
                (!topic.partitions.is_empty()).then_some(topic)
            })
            .collect();
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        for (tp, (_, topic_id)) in &self.held {
            if wanted.contains_key(tp) {
                continue;
            }
            match forgotten.last_mut() {
                Some(f) if f.topic == tp.topic && f.topic_id == *topic_id => {
                    f.partitions.push(tp.partition)
                }
                _ => forgotten.push(ForgottenTopic {
                    topic: tp.topic.clone(),
                    topic_id: *topic_id,
                    partitions: vec![tp.partition],
                    ..Default::default()
                }),
            }
        }
        self.pending = Some(Pending {
            full: false,
            by_id,
            held: wanted,
        });
        SessionFetch {
            session_id: self.id,
            session_epoch: self.epoch,
            topics: changed,
            forgotten,
        }
    }

    /// The broker answered the fetch in flight.
    pub(super) fn answered(&mut self, response: &FetchResponse) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        let code =
            ErrorCode::from_code(response.error_code).unwrap_or(ErrorCode::UnknownServerError);
        match code {
            ErrorCode::None => {}
            ErrorCode::FetchSessionIdNotFound
            | ErrorCode::InvalidFetchSessionEpoch
            | ErrorCode::FetchSessionTopicIdError => {
                tracing::debug!(
                    session = self.id,
                    error = code.name(),
                    "fetch session dropped; the next fetch is full"
                );
                self.reset();
                return;
            }
            // Another whole-request error: the session is as it was.
            _ => return,
        }
        if response.session_id == 0 {
            // No room for a session, or none wanted: full fetches go on.
            self.reset();
            return;
        }
        if pending.full {
            self.id = response.session_id;
            self.epoch = 1;
        } else {
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.by_id = pending.by_id;
        self.held = pending.held;
    }

    /// The fetch in flight failed without an answer: whether the broker
    /// moved the session on is unknown, so the next fetch replaces it.
    pub(super) fn failed(&mut self) {
        self.pending = None;
        self.epoch = 0;
        self.held.clear();
    }

    fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::FetchPartition;

    fn topics(partitions: &[(&str, i32, i64)]) -> Vec<FetchTopic> {
        let mut out: Vec<FetchTopic> = Vec::new();
        for &(topic, partition, fetch_offset) in partitions {
            let p = FetchPartition {
                partition,
                fetch_offset,
                ..Default::default()
            };
            match out.last_mut() {
                Some(t) if t.topic == topic => t.partitions.push(p),
                _ => out.push(FetchTopic {
                    topic: topic.into(),
                    topic_id: Uuid::from_u128(topic.len() as u128),
                    partitions: vec![p],
                    ..Default::default()
                }),
            }
        }
        out
    }

    fn answer(session_id: i32, error: ErrorCode) -> FetchResponse {
        FetchResponse {
            session_id,
            error_code: error.code(),
            ..Default::default()
        }
    }

    fn partitions(fetch: &SessionFetch) -> Vec<(String, i32, i64)> {
        fetch
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| (t.topic.clone(), p.partition, p.fetch_offset))
            })
            .collect()
    }

    #[test]
    fn only_changed_partitions_are_sent_and_left_ones_forgotten() {
        let mut session = FetchSession::default();
        let first = session.build(topics(&[("a", 0, 0), ("a", 1, 0), ("bb", 0, 0)]), Some(17));
        assert_eq!(
            (
                first.session_id,
                first.session_epoch,
                partitions(&first).len()
            ),
            (0, 0, 3)
        );
        session.answered(&answer(42, ErrorCode::None));
        // a-0 moved, a-1 did not, bb-0 left.
        let second = session.build(topics(&[("a", 0, 5), ("a", 1, 0)]), Some(17));
        assert_eq!((second.session_id, second.session_epoch), (42, 1));
        assert_eq!(partitions(&second), [("a".to_owned(), 0, 5)]);
        assert_eq!(second.forgotten.len(), 1);
        assert_eq!(
            (
                second.forgotten[0].topic.as_str(),
                second.forgotten[0].partitions.clone()
            ),
            ("bb", vec![0])
        );
        session.answered(&answer(42, ErrorCode::None));
        let third = session.build(topics(&[("a", 0, 5), ("a", 1, 0)]), Some(17));
        assert_eq!(third.session_epoch, 2);
        assert!(third.topics.is_empty() && third.forgotten.is_empty());
    }

    #[test]
    fn a_lost_session_or_a_failed_fetch_makes_the_next_fetch_full() {
        let mut session = FetchSession::default();
        let wanted = topics(&[("a", 0, 0), ("a", 1, 0)]);
        session.build(wanted.clone(), Some(17));
        session.answered(&answer(7, ErrorCode::None));
        session.build(wanted.clone(), Some(17));
        session.answered(&answer(0, ErrorCode::FetchSessionIdNotFound));
        let again = session.build(wanted.clone(), Some(17));
        assert_eq!(
            (
                again.session_id,
                again.session_epoch,
                partitions(&again).len()
            ),
            (0, 0, 2)
        );
        session.answered(&answer(8, ErrorCode::None));
        session.build(wanted.clone(), Some(17));
        session.failed();
        let replaced = session.build(wanted.clone(), Some(17));
        assert_eq!(
            (
                replaced.session_id,
                replaced.session_epoch,
                partitions(&replaced).len()
            ),
            (8, 0, 2)
        );
        // No room on the broker: full fetches, asking again each time.
        session.answered(&answer(0, ErrorCode::None));
        let full = session.build(wanted.clone(), Some(17));
        assert_eq!((full.session_id, full.session_epoch), (0, 0));
        // Before v7, or before the version is known, there are no sessions.
        let old = session.build(wanted.clone(), Some(6));
        assert_eq!(
            (old.session_id, old.session_epoch, partitions(&old).len()),
            (0, -1, 2)
        );
        let unknown = session.build(wanted.clone(), None);
        assert_eq!((unknown.session_id, unknown.session_epoch), (0, -1));
        // A switch between names and ids starts a new session.
        session.build(wanted.clone(), Some(17));
        session.answered(&answer(9, ErrorCode::None));
        let by_name = session.build(wanted, Some(12));
        assert_eq!((by_name.session_id, by_name.session_epoch), (0, 0));
    }
}
