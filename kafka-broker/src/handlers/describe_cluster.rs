//! DescribeCluster (KIP-700): the running brokers, the controller and the
//! cluster id, as Metadata reports them, without topics.

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{DescribeClusterRequest, DescribeClusterResponse};

use super::RequestContext;

/// KIP-919's endpoint types: brokers (the only one v0 knows) and controllers.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

/// Kafka's "not requested" value for authorized operations.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// With no authorizer every cluster operation is allowed: CREATE (5),
/// ALTER (7), DESCRIBE (8), CLUSTER_ACTION (9), DESCRIBE_CONFIGS (10),
/// ALTER_CONFIGS (11) and IDEMPOTENT_WRITE (12), as bits of Kafka's
/// `AclOperation` codes.
const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

pub(crate) fn handle(
    ctx: &RequestContext,
    request: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let endpoint_type = if version >= 1 {
        request.endpoint_type
    } else {
        ENDPOINT_BROKERS
    };
    let refused = |code: ErrorCode, message: &str| DescribeClusterResponse {
        error_code: code.code(),
        error_message: Some(message.to_owned()),
        endpoint_type,
        controller_id: -1,
        cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        ..Default::default()
    };
    match endpoint_type {
        ENDPOINT_BROKERS => {}
        // This cluster has no separate controllers to point at.
        ENDPOINT_CONTROLLERS => {
            return refused(
                ErrorCode::UnsupportedEndpointType,
                "this broker does not serve controller endpoints",
            );
        }
        _ => return refused(ErrorCode::InvalidRequest, "unknown endpoint type"),
    }
    let running: Vec<_> = ctx
        .shared
        .brokers()
        .into_iter()
        .filter(|b| b.running)
        .collect();
    DescribeClusterResponse {
        endpoint_type,
        cluster_id: ctx.shared.config.cluster_id.clone(),
        // The same choice Metadata reports, so both APIs agree.
        controller_id: running.first().map_or(-1, |b| b.node_id),
        brokers: running
            .iter()
            .map(|b| DescribeClusterBroker {
                broker_id: b.node_id,
                host: b.host.clone(),
                port: i32::from(b.port),
                rack: None,
                ..Default::default()
            })
            .collect(),
        cluster_authorized_operations: if request.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        },
        ..Default::default()
    }
}
