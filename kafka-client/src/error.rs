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
    /// The broker refused the client's credentials (SASL), or TLS failed:
    /// the broker's certificate is not trusted or names another host.
    /// Retrying with the same settings cannot help.
    #[error("authentication with {broker} failed: {reason}")]
    Authentication {
        /// `host:port` of the broker.
        broker: String,
        /// The broker's error code, when it sent one
        /// (`SASL_AUTHENTICATION_FAILED`, `UNSUPPORTED_SASL_MECHANISM`, ...).
        code: Option<ErrorCode>,
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
    /// A call that the client's current state does not allow, such as
    /// `send` on a transactional producer outside a transaction (Java's
    /// `IllegalStateException`).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// The current transaction cannot commit: call `abort_transaction`,
    /// then process the input again from its last committed offsets. Holds
    /// the error that caused it (a failed batch, a rebalance that fenced
    /// the offsets, a transaction the broker aborted on timeout).
    #[error("transaction must be aborted: {0}")]
    AbortableTransaction(Box<Error>),
    /// The producer cannot be used again (for example it was fenced by a
    /// newer producer with the same `transactional.id`); every later call
    /// returns this. Close it; a new producer may take over.
    #[error("producer is unusable: {0}")]
    Fatal(Box<Error>),
}

impl Error {
    /// Whether retrying the same operation may succeed.
    pub fn retriable(&self) -> bool {
        match self {
            Error::Kafka { code, .. } => code.retriable(),
            Error::Network { .. } | Error::Timeout(_) => true,
            Error::Config { .. }
            | Error::Authentication { .. }
            | Error::Protocol(_)
            | Error::RecordTooLarge { .. }
            | Error::Closed
            | Error::InvalidState(_)
            | Error::AbortableTransaction(_)
            | Error::Fatal(_) => false,
        }
    }

    /// The broker error code behind this error, looking through
    /// [`AbortableTransaction`](Self::AbortableTransaction) and
    /// [`Fatal`](Self::Fatal).
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            Error::Authentication { code, .. } => *code,
            Error::AbortableTransaction(inner) | Error::Fatal(inner) => inner.code(),
            _ => None,
        }
    }

    /// Whether the producer is unusable from now on.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Error::Fatal(_))
    }

    /// Whether the transaction must be aborted (and the producer can go on
    /// after that).
    pub fn is_abortable(&self) -> bool {
        matches!(self, Error::AbortableTransaction(_))
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

    #[test]
    fn transaction_wrappers_keep_the_code_and_are_not_retriable() {
        let fenced = Error::Fatal(Box::new(Error::kafka(ErrorCode::ProducerFenced, "txn")));
        assert_eq!(fenced.code(), Some(ErrorCode::ProducerFenced));
        assert!(fenced.is_fatal() && !fenced.is_abortable() && !fenced.retriable());
        let abortable = Error::AbortableTransaction(Box::new(Error::Timeout("delivery".into())));
        assert_eq!(abortable.code(), None);
        assert!(abortable.is_abortable() && !abortable.is_fatal() && !abortable.retriable());
    }
}
