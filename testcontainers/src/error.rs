//! The one error type of this crate.

use std::time::Duration;

use kafka_protocol::ErrorCode;

use crate::Mode;

/// What went wrong starting, driving or observing a test cluster.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The builder was given settings that cannot run together.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// The in-process broker refused an operation.
    #[error("broker: {0}")]
    Broker(#[from] kafka_broker::ClusterError),
    /// A broker property override was refused.
    #[error("broker property: {0}")]
    BrokerConfig(#[from] kafka_broker::ConfigError),
    /// Building a client configuration failed.
    #[error("client: {0}")]
    Client(#[from] kafka_client::Error),
    /// The operation exists only in some modes, e.g. fault injection, which
    /// needs the broker in this process.
    #[error("`{operation}` is not supported in {mode} mode: {reason}")]
    Unsupported {
        /// The method called.
        operation: &'static str,
        /// The mode the cluster runs in.
        mode: Mode,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// The `kafka-broker` binary could not be found or built.
    #[error("kafka-broker binary: {0}")]
    Binary(String),
    /// The child process or container did not start or died.
    #[error("broker process: {0}")]
    Process(String),
    /// Docker is not reachable on this machine (see [`crate::docker_available`]).
    #[error("docker unavailable: {0}")]
    DockerUnavailable(String),
    /// A Docker call failed.
    #[error("docker: {0}")]
    Docker(String),
    /// A broker answered a request with an error code.
    #[error("{operation} `{name}`: {code}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The request, e.g. `create topic`.
        operation: &'static str,
        /// The topic (or other object) it was about.
        name: String,
        /// Kafka's code.
        code: ErrorCode,
        /// The broker's message, if it sent one.
        message: Option<String>,
    },
    /// Talking to a broker over the wire failed.
    #[error("network error talking to {broker}: {reason}")]
    Network {
        /// `host:port`.
        broker: String,
        /// What happened.
        reason: String,
    },
    /// [`crate::wait_for`] ran out of time.
    #[error("timed out after {waited:?} waiting for {what}")]
    Timeout {
        /// The condition, as the caller described it.
        what: String,
        /// How long it waited.
        waited: Duration,
    },
    /// [`crate::collect_records`] saw fewer records than expected in time.
    #[error(
        "expected {expected} records within {waited:?}, received {}{}{}",
        received.len(),
        describe_received(received),
        last_error.as_deref().map(|e| format!("\n  last poll failed: {e}")).unwrap_or_default()
    )]
    MissingRecords {
        /// How many were wanted.
        expected: usize,
        /// What did arrive, as `topic-partition@offset key=… value=…`.
        received: Vec<String>,
        /// How long it waited.
        waited: Duration,
        /// The last error polling returned, if it failed.
        last_error: Option<String>,
    },
    /// An I/O error (temp dirs, pipes, sockets).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn describe_received(received: &[String]) -> String {
    const SHOWN: usize = 20;
    if received.is_empty() {
        return " (nothing arrived)".to_owned();
    }
    let mut out = String::from(":");
    for line in received.iter().take(SHOWN) {
        out.push_str("\n  ");
        out.push_str(line);
    }
    if received.len() > SHOWN {
        out.push_str(&format!("\n  ... and {} more", received.len() - SHOWN));
    }
    out
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
