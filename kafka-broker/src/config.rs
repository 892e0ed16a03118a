//! Broker configuration, settable by Kafka property names.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::coordinator::group::GroupConfig;
use crate::security::{SaslSettings, TlsIdentity};

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
    /// With an identity, every listener speaks TLS (security.protocol SSL,
    /// or SASL_SSL with [`Self::sasl`]); `None` is plain TCP.
    pub tls: Option<TlsIdentity>,
    /// With settings, every connection must authenticate with SASL before
    /// it is served (SASL_PLAINTEXT, or SASL_SSL with [`Self::tls`]); `None`
    /// serves every connection as it comes. `sasl.enabled.mechanisms` and the
    /// `user_NAME="PASSWORD"` entries of `sasl.jaas.config` set it by name, and
    /// `connections.max.reauth.ms` its session lifetime.
    pub sasl: Option<SaslSettings>,
    /// The Apache Kafka release whose API versions ApiVersions offers
    /// (`kafka.version`: 2.8, 3.5, 3.9 or 4.0); `None` offers every version
    /// this broker implements.
    pub kafka_version: Option<crate::KafkaRelease>,
    /// Incremental fetch sessions kept (`max.incremental.fetch.session.cache.slots`,
    /// 1000; 0 opens none).
    pub fetch_session_slots: usize,
    /// How long a session must be idle before a new one may evict it
    /// (`min.incremental.fetch.session.eviction.ms`, 120000).
    pub fetch_session_eviction_ms: u64,
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
            tls: None,
            sasl: None,
            kafka_version: None,
            fetch_session_slots: 1000,
            fetch_session_eviction_ms: 120_000,
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
            "max.incremental.fetch.session.cache.slots" => {
                self.fetch_session_slots = parse(name, value)?
            }
            "min.incremental.fetch.session.eviction.ms" => {
                self.fetch_session_eviction_ms = parse(name, value)?
            }
            "kafka.version" => {
                self.kafka_version = Some(
                    value
                        .parse()
                        .map_err(|reason| invalid(name, value, reason))?,
                )
            }
            "sasl.enabled.mechanisms" => {
                let mechanisms = SaslSettings::parse_mechanisms(value)
                    .map_err(|e| invalid(name, value, e.to_string()))?;
                self.sasl
                    .get_or_insert_with(SaslSettings::default)
                    .mechanisms = mechanisms;
            }
            "connections.max.reauth.ms" => {
                let ms: u64 = parse(name, value)?;
                self.sasl
                    .get_or_insert_with(SaslSettings::default)
                    .session_lifetime = (ms > 0).then(|| std::time::Duration::from_millis(ms));
            }
            "sasl.jaas.config" => {
                let users =
                    jaas_users(value).map_err(|reason| invalid(name, "(hidden)", reason))?;
                self.sasl
                    .get_or_insert_with(SaslSettings::default)
                    .users
                    .extend(users);
            }
            _ => return Err(ConfigError::UnknownProperty(name.to_owned())),
        }
        Ok(self)
    }
}

/// The users of a broker-side JAAS entry in Kafka's PlainLoginModule form:
/// `org.apache.kafka.common.security.plain.PlainLoginModule required
/// user_alice="alice-secret" user_bob="bob-secret";`. Options other than
/// `user_*` (the broker's own `username`/`password`) are ignored; values are
/// double-quoted, with `\"` and `\\` escapes.
fn jaas_users(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut users = Vec::new();
    let mut rest = value.trim().trim_end_matches(';');
    // The login module class and its control flag come first.
    for _ in 0..2 {
        let (_, tail) = rest
            .trim_start()
            .split_once(char::is_whitespace)
            .unwrap_or((rest, ""));
        rest = tail;
    }
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(users);
        }
        let (key, tail) = rest
            .split_once('=')
            .ok_or("expected NAME=\"VALUE\" pairs after the login module and its flag")?;
        let key = key.trim();
        if key.contains(char::is_whitespace) {
            return Err("text between options that is no NAME=\"VALUE\" pair".into());
        }
        let mut chars = tail.trim_start().chars();
        if chars.next() != Some('"') {
            return Err(format!("the value of `{key}` is not double-quoted"));
        }
        let mut parsed = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    closed = true;
                    break;
                }
                '\\' => parsed.push(chars.next().ok_or("a value ends in a backslash")?),
                c => parsed.push(c),
            }
        }
        if !closed {
            return Err(format!("the value of `{key}` has no closing quote"));
        }
        if let Some(user) = key.strip_prefix("user_") {
            users.push((user.to_owned(), parsed));
        }
        rest = chars.as_str();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::SaslMechanism;

    #[test]
    fn sasl_properties_set_mechanisms_and_users() {
        let mut config = BrokerConfig::default();
        config
            .set("sasl.enabled.mechanisms", "PLAIN, SCRAM-SHA-512")
            .unwrap();
        config
            .set(
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required
                   username="admin" password="admin-secret"
                   user_admin="admin-secret" user_alice="a \"quoted\" one";"#,
            )
            .unwrap();
        let sasl = config.sasl.as_ref().unwrap();
        assert_eq!(
            sasl.mechanisms,
            [SaslMechanism::Plain, SaslMechanism::ScramSha512]
        );
        assert_eq!(sasl.users.len(), 2);
        assert_eq!(sasl.users["admin"], "admin-secret");
        assert_eq!(sasl.users["alice"], r#"a "quoted" one"#);
    }

    #[test]
    fn bad_sasl_properties_name_the_property_and_hide_the_secret() {
        let mut config = BrokerConfig::default();
        let err = config.set("sasl.enabled.mechanisms", "GSSAPI").unwrap_err();
        assert!(err.to_string().contains("sasl.enabled.mechanisms"), "{err}");
        let err = config
            .set("sasl.jaas.config", "Module required user_a=\"secret")
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("sasl.jaas.config") && !shown.contains("secret"),
            "{shown}"
        );
        assert!(
            config
                .set("sasl.jaas.config", "Module required user_a=x;")
                .is_err()
        );
    }
}
