//! Fetch with long polling: answer once `min_bytes` are available or
//! `max_wait_ms` has passed, with the stored batches as they are.
//!
//! Up to v12 topics are named; from v13 they are named by topic id only
//! (KIP-516), and an id the broker does not know is UNKNOWN_TOPIC_ID.
//!
//! Fetch sessions (KIP-227) are not kept: every response carries session
//! id 0, which tells clients to send full fetch requests, as a broker with
//! no session cache room does.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::RequestContext;
use crate::log::ReadResult;
use crate::state::{Partition, lock};

/// The longest a fetch is held, whatever it asks for.
const MAX_WAIT: Duration = Duration::from_secs(60);

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
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        // Registered before reading, so an append in between still wakes us.
        let mut appended = pin!(ctx.shared.appended.notified());
        appended.as_mut().enable();
        let (response, records, bytes, errors) = read(ctx, &request, version);
        if bytes >= min_bytes || errors || Instant::now() >= deadline {
            return (response, records);
        }
        tokio::select! {
            _ = appended => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// One pass over the requested partitions: the response, each partition's
/// batches, the bytes in them and whether any partition had an error (which
/// answers at once).
fn read(
    ctx: &RequestContext,
    request: &FetchRequest,
    version: i16,
) -> (FetchResponse, Vec<Vec<Bytes>>, usize, bool) {
    let read_committed = request.isolation_level == 1;
    let max_bytes = if version >= 3 {
        usize::try_from(request.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    };
    let mut total = 0usize;
    let mut errors = false;
    let mut records = Vec::new();
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            // From v13 the topic is named by id only (KIP-516).
            let by_id = version >= 13;
            let found = if by_id {
                ctx.shared.topic_by_id(topic.topic_id)
            } else {
                ctx.shared.topic(&topic.topic)
            };
            let unknown = if by_id {
                ErrorCode::UnknownTopicId
            } else {
                ErrorCode::UnknownTopicOrPartition
            };
            FetchableTopicResponse {
                topic: found
                    .as_ref()
                    .map_or_else(|| topic.topic.clone(), |t| t.name.clone()),
                topic_id: topic.topic_id,
                partitions: topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let partition = found.as_ref().and_then(|t| t.partition(p.partition));
                        let mut data = PartitionData {
                            partition_index: p.partition,
                            high_watermark: -1,
                            last_stable_offset: -1,
                            log_start_offset: -1,
                            preferred_read_replica: -1,
                            records: Some(Bytes::new()),
                            ..Default::default()
                        };
                        let outcome = match (&found, &partition) {
                            (None, _) => Err(unknown),
                            (Some(_), None) => Err(ErrorCode::UnknownTopicOrPartition),
                            (Some(_), Some(part)) => {
                                check_leader(ctx, part, p.current_leader_epoch)
                            }
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
                            let limit = usize::try_from(p.partition_max_bytes)
                                .unwrap_or(0)
                                .min(max_bytes.saturating_sub(total));
                            log.read(p.fetch_offset, limit, total == 0, upper)
                        });
                        match result {
                            Ok(ReadResult {
                                chunks,
                                bytes,
                                aborted,
                            }) => {
                                total += bytes;
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
                                records.push(chunks);
                            }
                            Err(code) => {
                                errors = true;
                                data.error_code = code.code();
                                records.push(Vec::new());
                            }
                        }
                        data
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    let response = FetchResponse {
        responses,
        session_id: 0,
        ..Default::default()
    };
    (response, records, total, errors)
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
