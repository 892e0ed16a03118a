//! Broker configuration, settable by Kafka property names.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::coordinator::group::GroupConfig;

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A property name this broker does not know.
    #[error("unknown broker property `{0}`")]
    UnknownProperty(String),
    /// A value that does not parse or is out of range for its property.
    #[error("invalid value `{value}` for `{name}`: {reason}")]
    InvalidValue {
        /// The property.
        name: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// How a cluster of in-process brokers is set up.
///
/// Defaults suit tests: one broker on `127.0.0.1` with an OS-chosen port,
/// in memory, topics auto-created with one partition.
///
/// ```
/// use kafka_broker::BrokerConfig;
///
/// let mut config = BrokerConfig::default();
/// config.set("num.partitions", "6").unwrap();
/// config.set("auto.create.topics.enable", "false").unwrap();
/// assert_eq!(config.default_partitions, 6);
/// assert!(config.set("no.such.property", "1").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// The address every listener binds to.
    pub host: IpAddr,
    /// The first broker's port; 0 lets the OS choose a free port for each
    /// broker, otherwise broker `i` listens on `port + i`.
    pub port: u16,
    /// Brokers in the cluster, ids 0..n.
    pub brokers: u32,
    /// Where logs are kept; `None` keeps everything in memory.
    pub data_dir: Option<PathBuf>,
    /// Partitions of an auto-created topic or a CreateTopics with -1 (`num.partitions`).
    pub default_partitions: i32,
    /// Whether Metadata for an unknown topic creates it (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// The largest record batch accepted (`message.max.bytes`).
    pub message_max_bytes: usize,
    /// The largest request frame read; bigger frames close the connection
    /// (`socket.request.max.bytes`).
    pub socket_request_max_bytes: usize,
    /// Default `retention.ms` of new topics; -1 keeps data forever (`log.retention.ms`).
    pub retention_ms: i64,
    /// Default `retention.bytes` of new topics; -1 is unbounded (`log.retention.bytes`).
    pub retention_bytes: i64,
    /// Consumer group coordinator settings.
    pub group: GroupConfig,
    /// The longest `transaction.timeout.ms` a producer may ask for
    /// (`transaction.max.timeout.ms`).
    pub transaction_max_timeout_ms: i32,
    /// The cluster id reported in Metadata.
    pub cluster_id: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            brokers: 1,
            data_dir: None,
            default_partitions: 1,
            auto_create_topics: true,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            group: GroupConfig::default(),
            transaction_max_timeout_ms: 900_000,
            cluster_id: "kafka-sdk-local-cluster".to_owned(),
        }
    }
}

fn invalid(name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e: T::Err| invalid(name, value, e.to_string()))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    name: &str,
    value: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let parsed: T = parse(name, value)?;
    if parsed <= T::default() {
        return Err(invalid(name, value, "must be positive"));
    }
    Ok(parsed)
}

impl BrokerConfig {
    /// Sets one property by its Kafka name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self, ConfigError> {
        match name {
            "listeners.host" | "host.name" => self.host = parse(name, value)?,
            "port" => self.port = parse(name, value)?,
            "brokers" => self.brokers = positive(name, value)?,
            "log.dirs" | "log.dir" => self.data_dir = Some(PathBuf::from(value)),
            "num.partitions" => self.default_partitions = positive(name, value)?,
            "auto.create.topics.enable" => self.auto_create_topics = parse(name, value)?,
            "message.max.bytes" => self.message_max_bytes = positive(name, value)?,
            "socket.request.max.bytes" => self.socket_request_max_bytes = positive(name, value)?,
            "log.retention.ms" => self.retention_ms = parse(name, value)?,
            "log.retention.bytes" => self.retention_bytes = parse(name, value)?,
            "group.min.session.timeout.ms" => {
                self.group.min_session_timeout_ms = positive(name, value)?
            }
            "group.max.session.timeout.ms" => {
                self.group.max_session_timeout_ms = positive(name, value)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group.initial_rebalance_delay_ms = parse(name, value)?
            }
            "transaction.max.timeout.ms" => {
                self.transaction_max_timeout_ms = positive(name, value)?
            }
            "cluster.id" => self.cluster_id = value.to_owned(),
            _ => return Err(ConfigError::UnknownProperty(name.to_owned())),
        }
        Ok(self)
    }
}
