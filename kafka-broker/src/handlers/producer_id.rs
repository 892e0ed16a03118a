//! InitProducerId: idempotent producers here, transactional ones through
//! the transaction coordinator.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use super::RequestContext;

pub(crate) fn init(ctx: &RequestContext, request: InitProducerIdRequest) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        return ctx.shared.txns.init_producer_id(&ctx.shared, &request);
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
