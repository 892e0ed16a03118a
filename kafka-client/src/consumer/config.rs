//! The consumer's configuration by Kafka property names, with the Java
//! client's defaults: `auto.offset.reset=latest`, `enable.auto.commit=true`,
//! `isolation.level=read_uncommitted`, `max.poll.records=500`,
//! `session.timeout.ms=45000`, `heartbeat.interval.ms=3000`,
//! `max.poll.interval.ms=300000`, `fetch.min.bytes=1`,
//! `fetch.max.bytes=52428800`, `fetch.max.wait.ms=500`,
//! `max.partition.fetch.bytes=1048576`, `check.crcs=true`,
//! `partition.assignment.strategy=range`.

use std::sync::Arc;

use super::assignor::{RangeAssignor, RoundRobinAssignor};
use super::{ConsumerSettings, IsolationLevel, OffsetReset};
use crate::properties::{boolean, check_bootstrap_servers, millis, positive, suggestion};
use crate::{Error, Result};

const PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "client.id",
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
    "request.timeout.ms",
    "metadata.max.age.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
];

/// Consumer configuration by Kafka property names.
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
        let Some(&known) = PROPERTIES.iter().find(|p| **p == name) else {
            let hint = suggestion(name, PROPERTIES);
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
            "client.id" => s.network.client_id = optional(value),
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
            "fetch.min.bytes" => s.fetch_min_bytes = positive(known, value)? as i32,
            "fetch.max.bytes" => s.fetch_max_bytes = positive(known, value)? as i32,
            "fetch.max.wait.ms" => s.fetch_max_wait = millis(known, value)?,
            "max.partition.fetch.bytes" => {
                s.max_partition_fetch_bytes = positive(known, value)? as i32
            }
            "partition.assignment.strategy" => {
                // The first strategy named is the one this client offers.
                let first = value.split(',').map(str::trim).next().unwrap_or_default();
                s.assignor = match first {
                    "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => {
                        Arc::new(RangeAssignor)
                    }
                    "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                        Arc::new(RoundRobinAssignor)
                    }
                    "cooperative-sticky"
                    | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                        return Err(Error::config(
                            known,
                            "cooperative-sticky is not supported yet; use range or roundrobin",
                        ));
                    }
                    other => {
                        return Err(Error::config(
                            known,
                            format!("`{other}` is not range or roundrobin"),
                        ));
                    }
                }
            }
            "check.crcs" => s.check_crcs = boolean(known, value)?,
            // Accepted for compatibility; rack-aware fetching is not implemented.
            "client.rack" => {}
            "allow.auto.create.topics" => {
                s.network.allow_auto_create_topics = boolean(known, value)?
            }
            "request.timeout.ms" => s.network.request_timeout = millis(known, value)?,
            "metadata.max.age.ms" => s.network.metadata_max_age = millis(known, value)?,
            "connections.max.idle.ms" => s.network.connections_max_idle = millis(known, value)?,
            "reconnect.backoff.ms" => s.network.reconnect_backoff = millis(known, value)?,
            "reconnect.backoff.max.ms" => s.network.reconnect_backoff_max = millis(known, value)?,
            "socket.connection.setup.timeout.ms" => {
                s.network.connection_setup_timeout = millis(known, value)?
            }
            _ => return Err(Error::config(known, "known but not handled (a bug)")),
        }
        Ok(self)
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
        assert_eq!(s.assignor.name(), "range");
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
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(s.group_instance_id.as_deref(), Some("i-1"));
        assert_eq!(s.isolation_level, IsolationLevel::ReadCommitted);
        assert_eq!(s.assignor.name(), "roundrobin");
        let mut config = ConsumerConfig::new();
        for (name, bad) in [
            ("auto.offset.reset", "smallest"),
            ("isolation.level", "committed"),
            ("max.poll.records", "0"),
            ("session.timeout.ms", "-1"),
            ("enable.auto.commit", "yes"),
            ("partition.assignment.strategy", "cooperative-sticky"),
        ] {
            assert_eq!(property_of(config.set(name, bad).unwrap_err()), name);
        }
        let err = config.set("group.idd", "g").unwrap_err();
        assert!(err.to_string().contains("did you mean `group.id`"), "{err}");
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
