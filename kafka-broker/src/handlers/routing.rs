//! Requests a group or transaction coordinator must answer, and what the
//! other brokers answer instead: NOT_COORDINATOR, as a real cluster does.
//! Serving them anywhere would hide a client that sends them to the wrong
//! broker until it met a real cluster.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::RequestKind;

use super::groups::is_coordinator;
use super::{RequestContext, error_response};

/// The key (group id or transactional id) whose coordinator must answer
/// `request`; `None` for requests any broker serves, and for those that
/// name several keys (checked per key where they are handled).
fn coordinator_key(request: &RequestKind, version: i16) -> Option<&str> {
    match request {
        RequestKind::OffsetCommit(r) => Some(&r.group_id),
        RequestKind::OffsetFetch(r) if version < 8 => Some(&r.group_id),
        RequestKind::TxnOffsetCommit(r) => Some(&r.group_id),
        // Idempotent producers (no transactional id) may ask any broker.
        RequestKind::InitProducerId(r) => r.transactional_id.as_deref().filter(|id| !id.is_empty()),
        RequestKind::AddOffsetsToTxn(r) => Some(&r.transactional_id),
        RequestKind::EndTxn(r) => Some(&r.transactional_id),
        RequestKind::AddPartitionsToTxn(r) if version <= 3 => {
            Some(&r.v3_and_below_transactional_id)
        }
        _ => None,
    }
}

/// NOT_COORDINATOR for `request` when it arrived at a broker that does not
/// coordinate its key; `None` when this broker should serve it.
pub(crate) fn refuse_elsewhere(
    ctx: &RequestContext,
    request: &RequestKind,
    version: i16,
) -> Option<kafka_protocol::messages::ResponseKind> {
    let key = coordinator_key(request, version)?;
    if is_coordinator(ctx, key) {
        return None;
    }
    tracing::debug!(key, broker = ctx.broker_id, "not the coordinator");
    error_response(request, version, ErrorCode::NotCoordinator)
}
