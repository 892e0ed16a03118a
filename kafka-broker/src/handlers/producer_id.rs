//! InitProducerId for idempotent producers.
//!
//! Transactional producers (a `transactional.id`) need the transaction
//! coordinator, which this broker does not have yet; they get
//! INVALID_REQUEST with a message saying so, and the transaction APIs are
//! not advertised in ApiVersions.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use super::RequestContext;

pub(crate) fn init(ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        tracing::warn!(
            transactional_id = request.transactional_id,
            "transactions are not supported by this broker yet"
        );
        return InitProducerIdResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
    }
    // KIP-360: an idempotent producer may ask to bump its own epoch to
    // reset its sequences; at the top of the epoch range it gets a new id.
    let (producer_id, producer_epoch) = if request.producer_id >= 0
        && request.producer_epoch >= 0
        && request.producer_epoch < i16::MAX - 1
    {
        (request.producer_id, request.producer_epoch + 1)
    } else {
        (ctx.shared.allocate_producer_id(), 0)
    };
    InitProducerIdResponse {
        producer_id,
        producer_epoch,
        ..Default::default()
    }
}
