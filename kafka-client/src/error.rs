//! The client's errors: a Kafka error code from a broker, or something that
//! went wrong on this side (configuration, network, time, codec).

use kafka_protocol::ErrorCode;

/// Everything the client's public API can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration property that is unknown, malformed, or contradicts
    /// another; names the property.
    #[error("invalid configuration `{property}`: {reason}")]
    Config {
        /// The Kafka property name.
        property: String,
        /// Why it was refused.
        reason: String,
    },
    /// A broker answered with an error code.
    #[error("broker error {code}{}", context.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Kafka {
        /// The code.
        code: ErrorCode,
        /// Where it happened, e.g. `orders-3` or a message from the broker.
        context: Option<String>,
    },
    /// A connection could not be made or was lost.
    #[error("network error talking to {broker}: {reason}")]
    Network {
        /// `host:port` of the broker.
        broker: String,
        /// What happened.
        reason: String,
    },
    /// A deadline passed (`request.timeout.ms`, `delivery.timeout.ms`,
    /// `max.block.ms`, ...).
    #[error("timed out: {0}")]
    Timeout(String),
    /// Bytes from a broker that could not be decoded, or a request that
    /// could not be encoded.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A record larger than `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes exceeds {limit_name} ({limit})")]
    RecordTooLarge {
        /// The record's encoded size.
        size: usize,
        /// The property that limits it.
        limit_name: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
}

impl Error {
    /// Whether retrying the same operation may succeed.
    pub fn retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.retriable(),
            Error::Network { .. } | Error::Timeout(_) => true,
            Error::Config { .. }
            | Error::Protocol(_)
            | Error::RecordTooLarge { .. }
            | Error::Closed => false,
        }
    }

    /// A broker error with context.
    pub fn kafka(code: ErrorCode, context: impl Into<String>) -> Self {
        Error::Kafka {
            code,
            context: Some(context.into()),
        }
    }

    /// A configuration error naming `property`.
    pub fn config(property: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            property: property.into(),
            reason: reason.into(),
        }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retriability_follows_the_code_and_the_kind() {
        assert!(Error::kafka(ErrorCode::NotLeaderOrFollower, "t-0").retriable());
        assert!(!Error::kafka(ErrorCode::ProducerFenced, "t-0").retriable());
        assert!(!Error::config("acks", "must be all, 0 or 1").retriable());
        assert!(Error::Timeout("request".into()).retriable());
        assert_eq!(
            Error::kafka(ErrorCode::NotLeaderOrFollower, "orders-3").to_string(),
            "broker error NOT_LEADER_OR_FOLLOWER (6) (orders-3)"
        );
    }
}
