//! One module per API (or family of APIs); [`dispatch`] routes a decoded
//! request to its handler and returns the response to encode, or `None`
//! when Kafka sends none (produce with `acks=0`).

mod alter_configs;
mod api_versions;
mod configs;
mod delete_records;
mod describe_cluster;
mod fetch;
mod groups;
mod injected;
mod list_offsets;
mod metadata;
mod offset_delete;
mod produce;
mod producer_id;
mod routing;
mod topics;

use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, ResponseKind};

use crate::state::Shared;

pub(crate) use api_versions::{supported_versions, unsupported_version_response};
pub(crate) use injected::error_response;

/// Who sent a request and where it arrived.
#[derive(Debug)]
pub(crate) struct RequestContext {
    pub shared: Arc<Shared>,
    pub broker_id: i32,
    pub client_id: String,
    pub client_host: String,
}

/// A response to encode, and for Fetch the stored batches that fill its
/// records fields, in encode order (sent as they are, never copied).
#[derive(Debug)]
pub(crate) struct Reply {
    pub body: ResponseKind,
    pub records: Vec<Vec<bytes::Bytes>>,
}

impl From<ResponseKind> for Reply {
    fn from(body: ResponseKind) -> Self {
        Self {
            body,
            records: Vec::new(),
        }
    }
}

impl RequestContext {
    /// A context for requests arriving at `broker_id` from `client_host`.
    pub(crate) fn new(shared: Arc<Shared>, broker_id: i32, client_host: String) -> Self {
        Self {
            shared,
            broker_id,
            client_id: String::new(),
            client_host,
        }
    }
}

/// Handles one request. Requests this broker does not serve never get
/// here: the connection checks [`supported_versions`] first.
pub(crate) async fn dispatch(
    ctx: &RequestContext,
    request: RequestKind,
    version: i16,
) -> Option<Reply> {
    if let Some(refused) = routing::refuse_elsewhere(ctx, &request, version) {
        return Some(refused.into());
    }
    let response = match request {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions::handle(
            kafka_protocol::ErrorCode::None,
            ctx.shared.sasl.is_some(),
            ctx.shared.config.kafka_version,
        )),
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata::handle(ctx, r, version)),
        RequestKind::Produce(r) => {
            return produce::handle(ctx, r).map(|r| ResponseKind::Produce(r).into());
        }
        RequestKind::Fetch(r) => {
            let (body, records) = fetch::handle(ctx, r, version).await;
            return Some(Reply {
                body: ResponseKind::Fetch(body),
                records,
            });
        }
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(ctx, r, version))
        }
        RequestKind::DeleteRecords(r) => {
            ResponseKind::DeleteRecords(delete_records::handle(ctx, r))
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(topics::create(ctx, r)),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(topics::delete(ctx, r)),
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(topics::create_partitions(ctx, r))
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(configs::describe(ctx, r, version))
        }
        RequestKind::IncrementalAlterConfigs(r) => {
            ResponseKind::IncrementalAlterConfigs(alter_configs::incremental(ctx, r))
        }
        RequestKind::AlterConfigs(r) => ResponseKind::AlterConfigs(alter_configs::replace(ctx, r)),
        RequestKind::InitProducerId(r) => ResponseKind::InitProducerId(producer_id::init(ctx, r)),
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(ctx.shared.txns.add_partitions(&ctx.shared, &r))
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(ctx.shared.txns.add_offsets(&ctx.shared, &r))
        }
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(ctx.shared.txns.txn_offset_commit(&ctx.shared, &r))
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(ctx.shared.txns.end_txn(&ctx.shared, &r)),
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(ctx, r, version))
        }
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(ctx, r, version))
        }
        RequestKind::OffsetDelete(r) => ResponseKind::OffsetDelete(offset_delete::handle(ctx, r)),
        other => return groups::handle(ctx, other, version).await.map(Reply::from),
    };
    Some(response.into())
}
