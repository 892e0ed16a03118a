//! Incremental fetch sessions (KIP-227): a consumer fetching many
//! partitions sends them once, then only what changed; the broker keeps
//! each session's partitions and answers only those with news.
//!
//! A request's `session_id` and `session_epoch` say what it is (Kafka's
//! FetchMetadata):
//! - id 0, epoch -1: a full fetch without a session;
//! - id 0, epoch 0: a full fetch that opens a session (if there is room);
//! - id N, epoch 0: close session N and open a new one, full;
//! - id N, epoch -1: close session N, full fetch without a session;
//! - id N, epoch E > 0: incremental: the request's partitions are added or
//!   updated, its forgotten topics removed, and the answer holds only the
//!   partitions with records, an error, or a changed high watermark, last
//!   stable offset or log start offset. E must be the session's next epoch.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions; a
//! new one takes the place of the least recently used session idle for at
//! least `min.incremental.fetch.session.eviction.ms`, or is not opened
//! (answered with session id 0, so the client goes on with full fetches).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::ErrorCode;

/// A partition of a session, by topic name and index.
pub(crate) type PartitionKey = (String, i32);

/// What an answer told of a partition: its high watermark, last stable
/// offset and log start offset.
pub(crate) type Told = (i64, i64, i64);

/// A partition in a session: what the consumer asked and what it was last
/// told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionPartition {
    /// The topic's id when the partition joined: a topic created again
    /// under its name is another topic.
    pub topic_id: uuid::Uuid,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    /// The last answer's high watermark, last stable offset and log start
    /// offset; `None` until the partition was answered.
    pub last_sent: Option<Told>,
}

/// Partitions by (topic, partition).
pub(crate) type Partitions = BTreeMap<PartitionKey, SessionPartition>;

#[derive(Debug)]
struct Session {
    broker: i32,
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: Partitions,
    last_used: Instant,
}

/// Counts of what the cache did, for tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchSessionStats {
    /// Sessions open now.
    pub sessions: usize,
    /// Incremental fetches answered.
    pub incremental: u64,
    /// Full fetches answered (with or without a session).
    pub full: u64,
    /// Sessions evicted to make room.
    pub evicted: u64,
}

/// Locks the cache, recovering from poisoning as the broker's other locks
/// do (kept here so that this module needs nothing from `state`).
fn lock(mutex: &std::sync::Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
    stats: FetchSessionStats,
}

/// Every broker's fetch sessions (a session belongs to the broker that
/// opened it: another broker does not know its id).
#[derive(Debug)]
pub(crate) struct FetchSessionCache {
    slots: usize,
    eviction: Duration,
    inner: std::sync::Mutex<Inner>,
}

/// What a fetch request is, once its session is resolved.
#[derive(Debug)]
pub(crate) enum Resolved {
    /// A full fetch of the request's partitions; `session` is the id of the
    /// session it opened (0 for none).
    Full { session: i32 },
    /// An incremental fetch of session `session`, whose partitions are
    /// these (after the request's changes).
    Incremental {
        session: i32,
        partitions: Partitions,
    },
    /// Refused with this top-level error.
    Refused(ErrorCode),
}

impl FetchSessionCache {
    pub(crate) fn new(slots: usize, eviction: Duration) -> Self {
        Self {
            slots,
            eviction,
            inner: std::sync::Mutex::new(Inner {
                next_id: 1,
                ..Inner::default()
            }),
        }
    }

    /// Resolves a request of `broker` with `session_id` and `epoch`:
    /// `requested` are its partitions (full for a full fetch, the changes
    /// for an incremental one) and `forgotten` the partitions it removes.
    pub(crate) fn resolve(
        &self,
        broker: i32,
        session_id: i32,
        epoch: i32,
        requested: Partitions,
        forgotten: &[PartitionKey],
    ) -> Resolved {
        let mut inner = lock(&self.inner);
        let now = Instant::now();
        if session_id == 0 {
            inner.stats.full += 1;
            return match epoch {
                0 => Resolved::Full {
                    session: self.open(&mut inner, broker, requested, now),
                },
                _ => Resolved::Full { session: 0 },
            };
        }
        let mine = inner
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.broker == broker);
        if !mine {
            return Resolved::Refused(ErrorCode::FetchSessionIdNotFound);
        }
        match epoch {
            -1 | 0 => {
                inner.sessions.remove(&session_id);
                inner.stats.full += 1;
                let session = if epoch == 0 {
                    self.open(&mut inner, broker, requested, now)
                } else {
                    0
                };
                Resolved::Full { session }
            }
            _ => {
                let Some(session) = inner.sessions.get_mut(&session_id) else {
                    return Resolved::Refused(ErrorCode::FetchSessionIdNotFound);
                };
                if epoch != session.next_epoch {
                    return Resolved::Refused(ErrorCode::InvalidFetchSessionEpoch);
                }
                for key in forgotten {
                    session.partitions.remove(key);
                }
                for (key, mut partition) in requested {
                    // A changed position is news to the client: answer it
                    // even if nothing else changed.
                    partition.last_sent = None;
                    session.partitions.insert(key, partition);
                }
                session.next_epoch = next_epoch(epoch);
                session.last_used = now;
                let partitions = session.partitions.clone();
                inner.stats.incremental += 1;
                Resolved::Incremental {
                    session: session_id,
                    partitions,
                }
            }
        }
    }

    /// After an answer in session `session_id` (the full one that opened
    /// it, or an incremental one): what each answered partition was told.
    pub(crate) fn answered(&self, session_id: i32, sent: &[(PartitionKey, Told)]) {
        let mut inner = lock(&self.inner);
        if let Some(session) = inner.sessions.get_mut(&session_id) {
            for (key, state) in sent {
                if let Some(partition) = session.partitions.get_mut(key) {
                    partition.last_sent = Some(*state);
                }
            }
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> FetchSessionStats {
        let inner = lock(&self.inner);
        FetchSessionStats {
            sessions: inner.sessions.len(),
            ..inner.stats
        }
    }

    /// Opens a session for `partitions`, evicting an idle one if the cache
    /// is full; 0 when there is no room.
    fn open(&self, inner: &mut Inner, broker: i32, partitions: Partitions, now: Instant) -> i32 {
        if self.slots == 0 {
            return 0;
        }
        if inner.sessions.len() >= self.slots {
            let idle = inner
                .sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) >= self.eviction)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match idle {
                Some(id) => {
                    inner.sessions.remove(&id);
                    inner.stats.evicted += 1;
                }
                None => return 0,
            }
        }
        let id = loop {
            let id = inner.next_id;
            inner.next_id = if id == i32::MAX { 1 } else { id + 1 };
            if !inner.sessions.contains_key(&id) {
                break id;
            }
        };
        inner.sessions.insert(
            id,
            Session {
                broker,
                next_epoch: 1,
                partitions,
                last_used: now,
            },
        );
        id
    }
}

/// The epoch after `epoch`, wrapping past i32::MAX to 1 as Kafka does.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX { 1 } else { epoch + 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(names: &[(&str, i32, i64)]) -> Partitions {
        names
            .iter()
            .map(|&(t, p, offset)| {
                (
                    (t.to_owned(), p),
                    SessionPartition {
                        topic_id: uuid::Uuid::nil(),
                        fetch_offset: offset,
                        max_bytes: 1 << 20,
                        current_leader_epoch: -1,
                        last_sent: None,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_session_opens_advances_by_epoch_and_refuses_what_it_does_not_know() {
        let cache = FetchSessionCache::new(10, Duration::from_secs(120));
        let Resolved::Full { session } = cache.resolve(0, 0, 0, partitions(&[("a", 0, 0)]), &[])
        else {
            panic!("full")
        };
        assert_ne!(session, 0);
        let Resolved::Incremental {
            partitions: now, ..
        } = cache.resolve(0, session, 1, partitions(&[("b", 0, 5)]), &[])
        else {
            panic!("incremental")
        };
        assert_eq!(now.len(), 2, "b added to a");
        let Resolved::Incremental {
            partitions: now, ..
        } = cache.resolve(0, session, 2, Partitions::new(), &[("a".into(), 0)])
        else {
            panic!("incremental")
        };
        assert_eq!(
            now.keys().cloned().collect::<Vec<_>>(),
            [("b".to_owned(), 0)]
        );
        assert!(matches!(
            cache.resolve(0, session, 2, Partitions::new(), &[]),
            Resolved::Refused(ErrorCode::InvalidFetchSessionEpoch)
        ));
        assert!(matches!(
            cache.resolve(1, session, 3, Partitions::new(), &[]),
            Resolved::Refused(ErrorCode::FetchSessionIdNotFound)
        ));
        // Epoch -1 closes it.
        assert!(matches!(
            cache.resolve(0, session, -1, Partitions::new(), &[]),
            Resolved::Full { session: 0 }
        ));
        assert!(matches!(
            cache.resolve(0, session, 3, Partitions::new(), &[]),
            Resolved::Refused(ErrorCode::FetchSessionIdNotFound)
        ));
        let stats = cache.stats();
        assert_eq!((stats.sessions, stats.incremental, stats.full), (0, 2, 2));
    }

    #[test]
    fn a_full_cache_evicts_only_sessions_idle_long_enough() {
        let cache = FetchSessionCache::new(1, Duration::from_secs(3600));
        let open = |cache: &FetchSessionCache| match cache.resolve(0, 0, 0, Partitions::new(), &[])
        {
            Resolved::Full { session } => session,
            other => panic!("{other:?}"),
        };
        assert_ne!(open(&cache), 0);
        assert_eq!(open(&cache), 0, "no room, and the one session is not idle");
        let eager = FetchSessionCache::new(1, Duration::ZERO);
        let first = open(&eager);
        let second = open(&eager);
        assert!(first != 0 && second != 0 && first != second);
        assert_eq!(eager.stats().evicted, 1);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
