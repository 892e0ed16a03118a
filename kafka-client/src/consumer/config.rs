//! The consumer's configuration by Kafka property names, with the Java
//! client's defaults: `auto.offset.reset=latest`, `enable.auto.commit=true`,
//! `isolation.level=read_uncommitted`, `max.poll.records=500`,
//! `session.timeout.ms=45000`, `heartbeat.interval.ms=3000`,
//! `max.poll.interval.ms=300000`, `fetch.min.bytes=1`,
//! `fetch.max.bytes=52428800`, `fetch.max.wait.ms=500`,
//! `max.partition.fetch.bytes=1048576`, `check.crcs=true`,
//! `partition.assignment.strategy=range,cooperative-sticky`.
//! `security.protocol` and the `ssl.*` and `sasl.*` properties are the
//! producer's; see [`Security`](crate::network::Security).

use std::sync::Arc;
use std::time::Duration;

use super::assignor::{
    Assignor, CooperativeStickyAssignor, RangeAssignor, RoundRobinAssignor, common_protocol,
};
use super::{ConsumerSettings, IsolationLevel, OffsetReset};
use crate::network::{SECURITY_PROPERTIES, set_security_property};
use crate::properties::{
    NETWORK_PROPERTIES, boolean, check_bootstrap_servers, millis, parse_number, positive,
    set_network_property, suggestion,
};
use crate::{Error, Result};

/// Besides the connection properties every client takes
/// (`NETWORK_PROPERTIES`) and the security ones.
const PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "group.instance.id",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "auto.offset.reset",
    "isolation.level",
    "max.poll.records",
    "max.poll.interval.ms",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.max.wait.ms",
    "max.partition.fetch.bytes",
    "partition.assignment.strategy",
    "check.crcs",
    "client.rack",
    "allow.auto.create.topics",
    "default.api.timeout.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
];

/// Consumer configuration by Kafka property names, or by typed methods that
/// go through [`ConsumerConfig::set`] (so a bad typed value is refused with
/// the same error, naming the property).
///
/// ```
/// use kafka_client::consumer::ConsumerConfig;
///
/// let settings = ConsumerConfig::from_properties([
///     ("bootstrap.servers", "127.0.0.1:9092"),
///     ("group.id", "invoices"),
///     ("enable.auto.commit", "false"),
///     ("isolation.level", "read_committed"),
/// ])?
/// .build()?;
/// assert!(!settings.enable_auto_commit);
/// # Ok::<(), kafka_client::Error>(())
/// ```
///
/// The same with typed methods:
///
/// ```
/// use kafka_client::consumer::{ConsumerConfig, IsolationLevel};
///
/// let settings = ConsumerConfig::new()
///     .bootstrap_servers("127.0.0.1:9092")?
///     .group_id("invoices")?
///     .enable_auto_commit(false)?
///     .isolation_level(IsolationLevel::ReadCommitted)?
///     .build()?;
/// assert!(!settings.enable_auto_commit);
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    settings: ConsumerSettings,
    bootstrap: String,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerConfig {
    /// Java's defaults.
    pub fn new() -> Self {
        Self {
            settings: ConsumerSettings::new(""),
            bootstrap: String::new(),
        }
    }

    /// A configuration from `(name, value)` pairs.
    pub fn from_properties<'a>(
        properties: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut config = Self::new();
        for (name, value) in properties {
            config.set(name, value)?;
        }
        Ok(config)
    }

    /// Sets a property by its Kafka name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        if let Some(&known) = SECURITY_PROPERTIES.iter().find(|p| **p == name) {
            set_security_property(&mut self.settings.network.security, known, value)?;
            return Ok(self);
        }
        let Some(&known) = PROPERTIES
            .iter()
            .chain(NETWORK_PROPERTIES)
            .find(|p| **p == name)
        else {
            let hint = suggestion(name, &[PROPERTIES, NETWORK_PROPERTIES, SECURITY_PROPERTIES]);
            return Err(Error::config(
                name,
                format!("unknown consumer property{hint}"),
            ));
        };
        let s = &mut self.settings;
        let optional = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        match known {
            "bootstrap.servers" => {
                check_bootstrap_servers(known, value)?;
                self.bootstrap = value.to_owned();
            }
            "group.id" => s.group_id = optional(value),
            "group.instance.id" => s.group_instance_id = optional(value),
            "enable.auto.commit" => s.enable_auto_commit = boolean(known, value)?,
            "auto.commit.interval.ms" => s.auto_commit_interval = millis(known, value)?,
            "auto.offset.reset" => {
                s.auto_offset_reset = match value.trim() {
                    "earliest" => OffsetReset::Earliest,
                    "latest" => OffsetReset::Latest,
                    "none" => OffsetReset::None,
                    other => {
                        return Err(Error::config(
                            known,
                            format!("`{other}` is not earliest, latest or none"),
                        ));
                    }
                }
            }
            "isolation.level" => {
                s.isolation_level = match value.trim() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    other => {
                        return Err(Error::config(
                            known,
                            format!("`{other}` is not read_uncommitted or read_committed"),
                        ));
                    }
                }
            }
            "max.poll.records" => s.max_poll_records = positive(known, value)?,
            "max.poll.interval.ms" => s.max_poll_interval = millis(known, value)?,
            "session.timeout.ms" => s.session_timeout = millis(known, value)?,
            "heartbeat.interval.ms" => s.heartbeat_interval = millis(known, value)?,
            // 0 is valid in Java: answer at once, even with no data.
            "fetch.min.bytes" => {
                let n: i64 = parse_number(known, value)?;
                s.fetch_min_bytes = i32::try_from(n).ok().filter(|n| *n >= 0).ok_or_else(|| {
                    Error::config(known, format!("`{value}` must be between 0 and 2147483647"))
                })?;
            }
            "fetch.max.bytes" => s.fetch_max_bytes = positive(known, value)? as i32,
            "fetch.max.wait.ms" => s.fetch_max_wait = millis(known, value)?,
            "max.partition.fetch.bytes" => {
                s.max_partition_fetch_bytes = positive(known, value)? as i32
            }
            "partition.assignment.strategy" => {
                // Every strategy named is offered, preferred first, as Java
                // does; the coordinator picks one all members offer.
                let mut assignors: Vec<Arc<dyn Assignor>> = Vec::new();
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let assignor: Arc<dyn Assignor> = match name {
                        "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => {
                            Arc::new(RangeAssignor)
                        }
                        "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                            Arc::new(RoundRobinAssignor)
                        }
                        "cooperative-sticky"
                        | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                            Arc::new(CooperativeStickyAssignor)
                        }
                        other => {
                            return Err(Error::config(
                                known,
                                format!("`{other}` is not range, roundrobin or cooperative-sticky"),
                            ));
                        }
                    };
                    if !assignors.iter().any(|a| a.name() == assignor.name()) {
                        assignors.push(assignor);
                    }
                }
                if assignors.is_empty() {
                    return Err(Error::config(known, "names no assignor"));
                }
                if common_protocol(&assignors).is_none() {
                    return Err(Error::config(
                        known,
                        "the assignors have no rebalance protocol in common",
                    ));
                }
                s.assignors = assignors;
            }
            "check.crcs" => s.check_crcs = boolean(known, value)?,
            "default.api.timeout.ms" => s.default_api_timeout = millis(known, value)?,
            "retry.backoff.ms" => s.retry_backoff = millis(known, value)?,
            "retry.backoff.max.ms" => s.retry_backoff_max = millis(known, value)?,
            // Accepted for compatibility; rack-aware fetching is not implemented.
            "client.rack" => {}
            "allow.auto.create.topics" => {
                s.network.allow_auto_create_topics = boolean(known, value)?
            }
            _ => {
                if !set_network_property(&mut s.network, known, value)? {
                    return Err(Error::config(known, "known but not handled (a bug)"));
                }
            }
        }
        Ok(self)
    }

    /// `bootstrap.servers`: comma-separated `host:port` (required).
    pub fn bootstrap_servers(&mut self, servers: &str) -> Result<&mut Self> {
        self.set("bootstrap.servers", servers)
    }

    /// `group.id` (default none): needed by [`Consumer::subscribe`] and
    /// commits; an empty string means none.
    ///
    /// [`Consumer::subscribe`]: super::Consumer::subscribe
    pub fn group_id(&mut self, id: &str) -> Result<&mut Self> {
        self.set("group.id", id)
    }

    /// `group.instance.id` (default none): static membership (KIP-345).
    pub fn group_instance_id(&mut self, id: &str) -> Result<&mut Self> {
        self.set("group.instance.id", id)
    }

    /// `client.id` (default none).
    pub fn client_id(&mut self, id: &str) -> Result<&mut Self> {
        self.set("client.id", id)
    }

    /// `enable.auto.commit` (default true, as in Java). Workers that must
    /// not lose records should turn it off and commit after processing.
    pub fn enable_auto_commit(&mut self, enabled: bool) -> Result<&mut Self> {
        self.set("enable.auto.commit", bool_name(enabled))
    }

    /// `auto.offset.reset` (default latest).
    pub fn auto_offset_reset(&mut self, reset: OffsetReset) -> Result<&mut Self> {
        self.set("auto.offset.reset", reset.name())
    }

    /// `isolation.level` (default read_uncommitted).
    pub fn isolation_level(&mut self, level: IsolationLevel) -> Result<&mut Self> {
        self.set("isolation.level", level.name())
    }

    /// `max.poll.records` (default 500).
    pub fn max_poll_records(&mut self, records: usize) -> Result<&mut Self> {
        self.set("max.poll.records", &records.to_string())
    }

    /// `fetch.min.bytes` (default 1).
    pub fn fetch_min_bytes(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("fetch.min.bytes", &bytes.to_string())
    }

    /// `fetch.max.bytes` (default 52428800).
    pub fn fetch_max_bytes(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("fetch.max.bytes", &bytes.to_string())
    }

    /// `max.partition.fetch.bytes` (default 1048576).
    pub fn max_partition_fetch_bytes(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("max.partition.fetch.bytes", &bytes.to_string())
    }

    /// `check.crcs` (default true).
    pub fn check_crcs(&mut self, check: bool) -> Result<&mut Self> {
        self.set("check.crcs", bool_name(check))
    }

    /// Checks the settings together and returns them.
    pub fn build(&self) -> Result<ConsumerSettings> {
        if self.bootstrap.is_empty() {
            return Err(Error::config("bootstrap.servers", "is required"));
        }
        let mut settings = self.settings.clone();
        settings.network.bootstrap_servers = self
            .bootstrap
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        if settings.group_instance_id.is_some() && settings.group_id.is_none() {
            return Err(Error::config("group.instance.id", "needs a group.id"));
        }
        if settings.heartbeat_interval >= settings.session_timeout {
            return Err(Error::config(
                "heartbeat.interval.ms",
                "must be lower than session.timeout.ms",
            ));
        }
        Ok(settings)
    }
}

fn bool_name(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// Typed setters for the `*.ms` properties: each goes through
/// [`ConsumerConfig::set`], so its checks are the property's.
macro_rules! duration_setters {
    ($($(#[$doc:meta])* $method:ident => $name:literal;)*) => {
        impl ConsumerConfig {
            $(
                $(#[$doc])*
                pub fn $method(&mut self, value: Duration) -> Result<&mut Self> {
                    self.set($name, &value.as_millis().to_string())
                }
            )*
        }
    };
}

duration_setters! {
    /// `auto.commit.interval.ms` (default 5000).
    auto_commit_interval => "auto.commit.interval.ms";
    /// `max.poll.interval.ms` (default 300000): the longest gap between
    /// polls before this member leaves its group; also the rebalance timeout.
    max_poll_interval => "max.poll.interval.ms";
    /// `session.timeout.ms` (default 45000).
    session_timeout => "session.timeout.ms";
    /// `heartbeat.interval.ms` (default 3000; below `session.timeout.ms`).
    heartbeat_interval => "heartbeat.interval.ms";
    /// `fetch.max.wait.ms` (default 500).
    fetch_max_wait => "fetch.max.wait.ms";
    /// `request.timeout.ms`.
    request_timeout => "request.timeout.ms";
    /// `metadata.max.age.ms`.
    metadata_max_age => "metadata.max.age.ms";
    /// `connections.max.idle.ms`.
    connections_max_idle => "connections.max.idle.ms";
    /// `reconnect.backoff.ms`.
    reconnect_backoff => "reconnect.backoff.ms";
    /// `reconnect.backoff.max.ms`.
    reconnect_backoff_max => "reconnect.backoff.max.ms";
    /// `socket.connection.setup.timeout.ms`.
    socket_connection_setup_timeout => "socket.connection.setup.timeout.ms";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn property_of(error: Error) -> String {
        match error {
            Error::Config { property, .. } => property,
            other => panic!("not a config error: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let s = ConsumerConfig::from_properties([("bootstrap.servers", "h:1")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.auto_offset_reset, OffsetReset::Latest);
        assert!(s.enable_auto_commit);
        assert_eq!(s.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(s.max_poll_records, 500);
        assert_eq!(s.session_timeout.as_millis(), 45_000);
        assert_eq!(s.heartbeat_interval.as_millis(), 3_000);
        assert_eq!(s.max_poll_interval.as_millis(), 300_000);
        assert_eq!(
            (
                s.fetch_min_bytes,
                s.fetch_max_bytes,
                s.max_partition_fetch_bytes
            ),
            (1, 52_428_800, 1_048_576)
        );
        assert_eq!(s.fetch_max_wait.as_millis(), 500);
        let names: Vec<&str> = s.assignors.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["range", "cooperative-sticky"]);
        assert_eq!(
            (
                s.default_api_timeout.as_millis(),
                s.retry_backoff.as_millis(),
                s.retry_backoff_max.as_millis()
            ),
            (60_000, 100, 1_000)
        );
    }

    #[test]
    fn fetch_min_bytes_may_be_zero_as_in_java() {
        let s = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("fetch.min.bytes", "0"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(s.fetch_min_bytes, 0);
        let error = ConsumerConfig::new()
            .set("fetch.min.bytes", "-1")
            .unwrap_err();
        assert_eq!(property_of(error), "fetch.min.bytes");
    }

    #[test]
    fn properties_parse_and_bad_ones_name_themselves() {
        let s = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("group.id", "g"),
            ("group.instance.id", "i-1"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", "read_committed"),
            ("partition.assignment.strategy", "roundrobin,range"),
            ("max.poll.records", "10"),
            ("enable.auto.commit", "false"),
            ("client.rack", "r1"),
            ("default.api.timeout.ms", "5000"),
            ("retry.backoff.ms", "50"),
            ("retry.backoff.max.ms", "400"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(s.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(s.default_api_timeout, Duration::from_secs(5));
        assert_eq!(
            (s.retry_backoff, s.retry_backoff_max),
            (Duration::from_millis(50), Duration::from_millis(400))
        );
        assert_eq!(s.isolation_level, IsolationLevel::ReadCommitted);
        let names: Vec<&str> = s.assignors.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["roundrobin", "range"]);
        let mut config = ConsumerConfig::new();
        for (name, bad) in [
            ("auto.offset.reset", "smallest"),
            ("isolation.level", "committed"),
            ("max.poll.records", "0"),
            ("session.timeout.ms", "-1"),
            ("default.api.timeout.ms", "soon"),
            ("retry.backoff.ms", "-5"),
            ("enable.auto.commit", "yes"),
            ("partition.assignment.strategy", "sticky"),
            ("partition.assignment.strategy", " , "),
        ] {
            assert_eq!(property_of(config.set(name, bad).unwrap_err()), name);
        }
        let err = config.set("group.idd", "g").unwrap_err();
        assert!(err.to_string().contains("did you mean `group.id`"), "{err}");
    }

    #[test]
    fn assignment_strategies_are_listed_in_order_by_short_or_java_names() {
        let names = |value: &str| -> Vec<&'static str> {
            ConsumerConfig::from_properties([
                ("bootstrap.servers", "h:1"),
                ("partition.assignment.strategy", value),
            ])
            .unwrap()
            .build()
            .unwrap()
            .assignors
            .iter()
            .map(|a| a.name())
            .collect()
        };
        assert_eq!(names("cooperative-sticky"), ["cooperative-sticky"]);
        assert_eq!(
            names("org.apache.kafka.clients.consumer.CooperativeStickyAssignor, range, range"),
            ["cooperative-sticky", "range"]
        );
    }

    #[test]
    fn typed_setters_equal_the_named_properties() {
        let mut typed = ConsumerConfig::new();
        typed
            .bootstrap_servers("h:1,h:2")
            .and_then(|c| c.group_id("g"))
            .and_then(|c| c.group_instance_id("i-1"))
            .and_then(|c| c.client_id("typed"))
            .and_then(|c| c.enable_auto_commit(false))
            .and_then(|c| c.auto_commit_interval(Duration::from_millis(1234)))
            .and_then(|c| c.auto_offset_reset(OffsetReset::None))
            .and_then(|c| c.isolation_level(IsolationLevel::ReadCommitted))
            .and_then(|c| c.max_poll_records(7))
            .and_then(|c| c.max_poll_interval(Duration::from_secs(61)))
            .and_then(|c| c.session_timeout(Duration::from_secs(10)))
            .and_then(|c| c.heartbeat_interval(Duration::from_millis(900)))
            .and_then(|c| c.fetch_min_bytes(5))
            .and_then(|c| c.fetch_max_bytes(4096))
            .and_then(|c| c.fetch_max_wait(Duration::from_millis(42)))
            .and_then(|c| c.max_partition_fetch_bytes(2048))
            .and_then(|c| c.check_crcs(false))
            .and_then(|c| c.request_timeout(Duration::from_secs(3)))
            .and_then(|c| c.metadata_max_age(Duration::from_secs(4)))
            .and_then(|c| c.connections_max_idle(Duration::from_secs(5)))
            .and_then(|c| c.reconnect_backoff(Duration::from_millis(6)))
            .and_then(|c| c.reconnect_backoff_max(Duration::from_millis(70)))
            .and_then(|c| c.socket_connection_setup_timeout(Duration::from_millis(800)))
            .unwrap();
        let named = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1,h:2"),
            ("group.id", "g"),
            ("group.instance.id", "i-1"),
            ("client.id", "typed"),
            ("enable.auto.commit", "false"),
            ("auto.commit.interval.ms", "1234"),
            ("auto.offset.reset", "none"),
            ("isolation.level", "read_committed"),
            ("max.poll.records", "7"),
            ("max.poll.interval.ms", "61000"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "900"),
            ("fetch.min.bytes", "5"),
            ("fetch.max.bytes", "4096"),
            ("fetch.max.wait.ms", "42"),
            ("max.partition.fetch.bytes", "2048"),
            ("check.crcs", "false"),
            ("request.timeout.ms", "3000"),
            ("metadata.max.age.ms", "4000"),
            ("connections.max.idle.ms", "5000"),
            ("reconnect.backoff.ms", "6"),
            ("reconnect.backoff.max.ms", "70"),
            ("socket.connection.setup.timeout.ms", "800"),
        ])
        .unwrap();
        let (a, b) = (typed.build().unwrap(), named.build().unwrap());
        // ConsumerSettings holds `dyn Assignor`s, so compare field by field;
        // Debug covers every field (the assignors by their names).
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.group_id.as_deref(), Some("g"));
        assert_eq!(a.network.client_id.as_deref(), Some("typed"));
        assert_eq!(a.auto_offset_reset, OffsetReset::None);
        assert_eq!(a.max_poll_interval, Duration::from_secs(61));
        assert_eq!(
            (
                a.fetch_min_bytes,
                a.fetch_max_bytes,
                a.max_partition_fetch_bytes
            ),
            (5, 4096, 2048)
        );
        assert!(!a.check_crcs && !a.enable_auto_commit);
        // A bad typed value is refused by the property's own check.
        let err = ConsumerConfig::new().max_poll_records(0).unwrap_err();
        assert_eq!(property_of(err), "max.poll.records");
        let err = ConsumerConfig::new()
            .fetch_max_bytes(usize::MAX)
            .unwrap_err();
        assert_eq!(property_of(err), "fetch.max.bytes");
    }

    #[test]
    fn contradictions_are_refused() {
        let err = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("group.instance.id", "i"),
        ])
        .unwrap()
        .build()
        .unwrap_err();
        assert_eq!(property_of(err), "group.instance.id");
        let err = ConsumerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("session.timeout.ms", "1000"),
            ("heartbeat.interval.ms", "1000"),
        ])
        .unwrap()
        .build()
        .unwrap_err();
        assert_eq!(property_of(err), "heartbeat.interval.ms");
    }
}
