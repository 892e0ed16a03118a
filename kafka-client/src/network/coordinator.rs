//! Finding the broker that coordinates a consumer group or a
//! `transactional.id` (FindCoordinator), in the single-key form older
//! brokers know and the batched form of version 4 and later.

use std::time::Duration;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::FindCoordinatorRequest;

use super::{Connection, Network};
use crate::{Error, Result};

/// What a coordinator coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorKind {
    /// A consumer group, by `group.id`.
    Group,
    /// A transactional producer, by `transactional.id`.
    Transaction,
}

impl CoordinatorKind {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorKind::Group => 0,
            CoordinatorKind::Transaction => 1,
        }
    }
}

/// Asks any broker which one coordinates `key`, and connects to it.
/// Retries the codes that say "not yet" (COORDINATOR_NOT_AVAILABLE while a
/// coordinator loads or moves) until `deadline`.
pub async fn find_coordinator(
    network: &Network,
    kind: CoordinatorKind,
    key: &str,
    deadline: tokio::time::Instant,
) -> Result<Connection> {
    let mut backoff = Duration::from_millis(20);
    loop {
        // A broker that accepts connections but never answers must not hold
        // the lookup past its deadline.
        let attempt = match tokio::time::timeout_at(deadline, lookup(network, kind, key)).await {
            Ok(attempt) => attempt,
            Err(_) => Err(Error::Timeout(
                "the lookup was cut off at its deadline".into(),
            )),
        };
        match attempt {
            Ok(connection) => return Ok(connection),
            Err(e) if !e.retriable() => return Err(e),
            Err(e) => {
                if tokio::time::Instant::now() + backoff >= deadline {
                    return Err(Error::Timeout(format!(
                        "no coordinator for {kind:?} `{key}`: {e}"
                    )));
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    }
}

async fn lookup(network: &Network, kind: CoordinatorKind, key: &str) -> Result<Connection> {
    let any = network.any().await?;
    let version = any.version_for::<FindCoordinatorRequest>()?;
    if kind == CoordinatorKind::Transaction && version < 1 {
        return Err(Error::Protocol(
            "the broker's FindCoordinator has no transaction coordinators (version 0)".into(),
        ));
    }
    let request = if version >= 4 {
        FindCoordinatorRequest {
            key_type: kind.key_type(),
            coordinator_keys: vec![key.to_owned()],
            ..Default::default()
        }
    } else {
        FindCoordinatorRequest {
            key: key.to_owned(),
            key_type: if version >= 1 { kind.key_type() } else { 0 },
            ..Default::default()
        }
    };
    let response = any.call(&request, version).await?;
    let (error, host, port) = match response.coordinators.first() {
        Some(c) => (c.error_code, c.host.clone(), c.port),
        None => (response.error_code, response.host.clone(), response.port),
    };
    let code = ErrorCode::from_code(error).unwrap_or(ErrorCode::UnknownServerError);
    if !code.is_ok() {
        return Err(Error::kafka(code, format!("FindCoordinator for `{key}`")));
    }
    network.connect(&format!("{host}:{port}")).await
}
