//! Fetch with long polling: answer once `min_bytes` are available or
//! `max_wait_ms` has passed, with the stored batches as they are.
//!
//! Up to v12 topics are named; from v13 they are named by topic id only
//! (KIP-516), and an id the broker does not know is UNKNOWN_TOPIC_ID.
//! From v7 a fetch may belong to an incremental fetch session (KIP-227,
//! `crate::fetch_sessions`): then only partitions with news are answered.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::time::Instant;
use uuid::Uuid;

use super::RequestContext;
use crate::fetch_sessions::{PartitionKey, Partitions, Resolved, SessionPartition, Told};
use crate::log::ReadResult;
use crate::state::{Partition, lock};

/// The longest a fetch is held, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The first Fetch version with sessions.
const SESSIONS_FROM: i16 = 7;

/// One partition to read: where, and how the request or session named it.
#[derive(Debug, Clone)]
struct Wanted {
    topic: String,
    topic_id: Uuid,
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
    current_leader_epoch: i32,
    /// What the session last told the client of it (incremental only).
    last_sent: Option<Told>,
    /// The topic could not be resolved: answered with this error.
    unknown: Option<ErrorCode>,
}

/// The response has an empty placeholder for every partition's records;
/// the records themselves are the stored batches, one list per partition in
/// response order, for [`VectoredBuf::queue_records`] (so that they go to
/// the socket without being copied).
///
/// [`VectoredBuf::queue_records`]: kafka_protocol::vectored::VectoredBuf::queue_records
pub(crate) async fn handle(
    ctx: &RequestContext,
    request: FetchRequest,
    version: i16,
) -> (FetchResponse, Vec<Vec<Bytes>>) {
    let requested = wanted(ctx, &request, version);
    let (wanted, session, incremental) = if version >= SESSIONS_FROM {
        let in_session: Partitions = requested
            .iter()
            .filter(|w| w.unknown.is_none())
            .map(|w| {
                (
                    (w.topic.clone(), w.partition),
                    SessionPartition {
                        topic_id: w.topic_id,
                        fetch_offset: w.fetch_offset,
                        max_bytes: w.max_bytes,
                        current_leader_epoch: w.current_leader_epoch,
                        last_sent: None,
                    },
                )
            })
            .collect();
        let forgotten = forgotten(ctx, &request, version);
        let resolved = ctx.shared.fetch_sessions.resolve(
            ctx.broker_id,
            request.session_id,
            request.session_epoch,
            in_session,
            &forgotten,
        );
        match resolved {
            Resolved::Refused(code) => {
                let response = FetchResponse {
                    error_code: code.code(),
                    session_id: 0,
                    ..Default::default()
                };
                return (response, Vec::new());
            }
            Resolved::Full { session } => (requested, session, false),
            Resolved::Incremental {
                session,
                partitions,
            } => (from_session(ctx, partitions, version), session, true),
        }
    } else {
        (requested, 0, false)
    };
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        // Registered before reading, so an append in between still wakes us.
        let mut appended = pin!(ctx.shared.appended.notified());
        appended.as_mut().enable();
        let pass = read(ctx, &request, &wanted, incremental, version);
        if pass.bytes >= min_bytes || pass.errors || Instant::now() >= deadline {
            if session != 0 {
                ctx.shared.fetch_sessions.answered(session, &pass.sent);
            }
            let response = FetchResponse {
                responses: pass.responses,
                session_id: session,
                ..Default::default()
            };
            return (response, pass.records);
        }
        tokio::select! {
            _ = appended => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// The request's partitions, their topics resolved by name (up to v12)
/// or by id (v13+).
fn wanted(ctx: &RequestContext, request: &FetchRequest, version: i16) -> Vec<Wanted> {
    let by_id = version >= 13;
    let mut out = Vec::new();
    for topic in &request.topics {
        let found = if by_id {
            ctx.shared.topic_by_id(topic.topic_id)
        } else {
            ctx.shared.topic(&topic.topic)
        };
        let unknown = match &found {
            Some(_) => None,
            None if by_id => Some(ErrorCode::UnknownTopicId),
            None => Some(ErrorCode::UnknownTopicOrPartition),
        };
        for p in &topic.partitions {
            out.push(Wanted {
                topic: found
                    .as_ref()
                    .map_or_else(|| topic.topic.clone(), |t| t.name.clone()),
                topic_id: found.as_ref().map_or(topic.topic_id, |t| t.id),
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_sent: None,
                unknown,
            });
        }
    }
    out
}

/// The partitions an incremental request removes from its session.
fn forgotten(ctx: &RequestContext, request: &FetchRequest, version: i16) -> Vec<PartitionKey> {
    let mut out = Vec::new();
    for topic in &request.forgotten_topics_data {
        let name = if version >= 13 {
            match ctx.shared.topic_by_id(topic.topic_id) {
                Some(t) => t.name.clone(),
                None => continue,
            }
        } else {
            topic.topic.clone()
        };
        out.extend(topic.partitions.iter().map(|p| (name.clone(), *p)));
    }
    out
}

/// An incremental fetch reads every partition of its session. From v13 a
/// partition belongs to the topic id it joined under: if its topic was
/// deleted, or deleted and created again (a new id), it is answered
/// UNKNOWN_TOPIC_ID under its old id, which the client can still name.
fn from_session(ctx: &RequestContext, partitions: Partitions, version: i16) -> Vec<Wanted> {
    let by_id = version >= 13;
    partitions
        .into_iter()
        .map(|((topic, partition), p)| {
            let found = ctx.shared.topic(&topic);
            let same = found.as_ref().is_some_and(|t| !by_id || t.id == p.topic_id);
            let unknown = if same {
                None
            } else if by_id {
                Some(ErrorCode::UnknownTopicId)
            } else {
                Some(ErrorCode::UnknownTopicOrPartition)
            };
            Wanted {
                topic_id: if by_id {
                    p.topic_id
                } else {
                    found.as_ref().map_or(Uuid::nil(), |t| t.id)
                },
                unknown,
                topic,
                partition,
                fetch_offset: p.fetch_offset,
                max_bytes: p.max_bytes,
                current_leader_epoch: p.current_leader_epoch,
                last_sent: p.last_sent,
            }
        })
        .collect()
}

/// One pass over the wanted partitions.
struct Pass {
    responses: Vec<FetchableTopicResponse>,
    /// Each answered partition's batches, in response order.
    records: Vec<Vec<Bytes>>,
    bytes: usize,
    /// Some partition had an error (which answers at once).
    errors: bool,
    /// What each answered partition was told (hw, lso, log start).
    sent: Vec<(PartitionKey, Told)>,
}

fn read(
    ctx: &RequestContext,
    request: &FetchRequest,
    wanted: &[Wanted],
    incremental: bool,
    version: i16,
) -> Pass {
    let read_committed = request.isolation_level == 1;
    let max_bytes = if version >= 3 {
        usize::try_from(request.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    };
    let mut pass = Pass {
        responses: Vec::new(),
        records: Vec::new(),
        bytes: 0,
        errors: false,
        sent: Vec::new(),
    };
    for w in wanted {
        let mut data = PartitionData {
            partition_index: w.partition,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            preferred_read_replica: -1,
            records: Some(Bytes::new()),
            ..Default::default()
        };
        let partition = ctx
            .shared
            .topic(&w.topic)
            .and_then(|t| t.partition(w.partition));
        let outcome = match (w.unknown, &partition) {
            (Some(code), _) => Err(code),
            (None, None) => Err(ErrorCode::UnknownTopicOrPartition),
            (None, Some(part)) => check_leader(ctx, part, w.current_leader_epoch),
        };
        let result = outcome.and_then(|()| {
            let part = partition
                .as_ref()
                .ok_or(ErrorCode::UnknownTopicOrPartition)?;
            let log = lock(&part.log);
            data.high_watermark = log.high_watermark();
            data.last_stable_offset = log.last_stable_offset();
            data.log_start_offset = log.log_start_offset();
            let upper = if read_committed {
                log.last_stable_offset()
            } else {
                log.high_watermark()
            };
            let limit = usize::try_from(w.max_bytes)
                .unwrap_or(0)
                .min(max_bytes.saturating_sub(pass.bytes));
            log.read(w.fetch_offset, limit, pass.bytes == 0, upper)
        });
        let state = (
            data.high_watermark,
            data.last_stable_offset,
            data.log_start_offset,
        );
        let chunks = match result {
            Ok(ReadResult {
                chunks,
                bytes,
                aborted,
            }) => {
                // Unchanged and without records: not news in a session.
                if incremental && bytes == 0 && w.last_sent == Some(state) {
                    continue;
                }
                pass.bytes += bytes;
                if read_committed {
                    data.aborted_transactions = Some(
                        aborted
                            .iter()
                            .map(|t| AbortedTransaction {
                                producer_id: t.producer_id,
                                first_offset: t.first_offset,
                                ..Default::default()
                            })
                            .collect(),
                    );
                }
                chunks
            }
            Err(code) => {
                pass.errors = true;
                data.error_code = code.code();
                Vec::new()
            }
        };
        pass.records.push(chunks);
        pass.sent.push(((w.topic.clone(), w.partition), state));
        match pass.responses.last_mut() {
            Some(topic) if topic.topic == w.topic && topic.topic_id == w.topic_id => {
                topic.partitions.push(data)
            }
            _ => pass.responses.push(FetchableTopicResponse {
                topic: w.topic.clone(),
                topic_id: w.topic_id,
                partitions: vec![data],
                ..Default::default()
            }),
        }
    }
    pass
}

fn check_leader(
    ctx: &RequestContext,
    partition: &Partition,
    client_epoch: i32,
) -> Result<(), ErrorCode> {
    if partition.leader() != ctx.broker_id {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    let epoch = partition.leader_epoch();
    match client_epoch {
        e if e < 0 || e == epoch => Ok(()),
        e if e < epoch => Err(ErrorCode::FencedLeaderEpoch),
        _ => Err(ErrorCode::UnknownLeaderEpoch),
    }
}
