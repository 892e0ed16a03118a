//! The producer's configuration by Kafka property names, as the Java
//! client and librdkafka users write it.
//!
//! | property | default |
//! | --- | --- |
//! | `bootstrap.servers` | (required) |
//! | `client.id` | `""` |
//! | `acks` | `all` |
//! | `enable.idempotence` | `true` |
//! | `retries` | `2147483647` |
//! | `retry.backoff.ms` / `retry.backoff.max.ms` | `100` / `1000` |
//! | `batch.size` | `16384` |
//! | `linger.ms` | `5` |
//! | `buffer.memory` | `33554432` |
//! | `max.block.ms` | `60000` |
//! | `compression.type` | `none` |
//! | `compression.gzip.level`, `compression.zstd.level` (each for its codec), `compression.level` (for the codec in use) | codec default; `compression.lz4.level` is refused (one lz4 level) |
//! | `max.in.flight.requests.per.connection` | `5` |
//! | `request.timeout.ms` | `30000` |
//! | `delivery.timeout.ms` | `120000` |
//! | `max.request.size` | `1048576` |
//! | `partitioner.ignore.keys` | `false` |
//! | `partitioner.adaptive.partitioning.enable` | `false` (uniform sticky, KIP-794); `true` is refused |
//! | `partitioner.availability.timeout.ms` | `0`; other values are refused |
//! | `metadata.max.age.ms` | `300000` |
//! | `connections.max.idle.ms` | `540000` |
//! | `reconnect.backoff.ms` / `reconnect.backoff.max.ms` | `50` / `1000` |
//! | `socket.connection.setup.timeout.ms` | `10000` |
//! | `security.protocol`, `ssl.*`, `sasl.*` | `PLAINTEXT`; see [`Security`](crate::network::Security) |
//! | `transactional.id` | none |
//! | `transaction.timeout.ms` | `60000` |
//!
//! Contradictions are refused when the producer is built, naming the
//! property: idempotence set explicitly with `acks` other than `all`, with
//! more than 5 requests in flight, or with `retries=0`. When idempotence is
//! only on by default, those settings turn it off instead, as the Java
//! client does.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::records::Compression;

use super::ProducerSettings;
use super::partitioner::{DefaultPartitioner, Partitioner};
use crate::network::{SECURITY_PROPERTIES, security_value_shown, set_security_property};
use crate::properties::{
    NETWORK_PROPERTIES, boolean, check_bootstrap_servers, millis, parse_number, positive,
    set_network_property, suggestion,
};
use crate::{Error, Result};

/// Besides the connection properties every client takes
/// (`NETWORK_PROPERTIES`) and the security ones.
const PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "acks",
    "enable.idempotence",
    "retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "batch.size",
    "linger.ms",
    "buffer.memory",
    "max.block.ms",
    "compression.type",
    "compression.level",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "max.in.flight.requests.per.connection",
    "delivery.timeout.ms",
    "max.request.size",
    "partitioner.ignore.keys",
    "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms",
    "socket.connection.setup.timeout.max.ms",
    "transactional.id",
    "transaction.timeout.ms",
];

/// Producer configuration, set by Kafka property names or typed methods.
///
/// ```
/// use kafka_client::producer::ProducerConfig;
///
/// let mut config = ProducerConfig::new();
/// config
///     .set("bootstrap.servers", "127.0.0.1:9092")?
///     .set("linger.ms", "10")?
///     .set("compression.type", "lz4")?;
/// let settings = config.build()?;
/// assert_eq!(settings.linger, std::time::Duration::from_millis(10));
///
/// let err = config.set("linger.msec", "1").unwrap_err();
/// assert!(err.to_string().contains("linger.ms"));
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    settings: ProducerSettings,
    bootstrap: String,
    explicit: HashSet<&'static str>,
    transactional_id: Option<String>,
    transaction_timeout: Duration,
    ignore_keys: bool,
    partitioner: Option<Arc<dyn Partitioner>>,
    levels: CodecLevels,
    values: Vec<(&'static str, String)>,
}

/// Compression levels as set: `compression.gzip.level` and
/// `compression.zstd.level` each apply to their own codec only (KIP-390),
/// `compression.level` to whichever codec `compression.type` names.
#[derive(Debug, Clone, Default)]
struct CodecLevels {
    any: Option<i32>,
    gzip: Option<i32>,
    zstd: Option<i32>,
}

impl CodecLevels {
    /// The level for `codec`, or an error naming the property that sets a
    /// level this producer cannot apply.
    fn for_codec(&self, codec: Compression) -> Result<Option<i32>> {
        let (own, own_name, range) = match codec {
            Compression::Gzip => (self.gzip, "compression.gzip.level", 1..=9),
            Compression::Zstd => (self.zstd, "compression.zstd.level", -131_072..=22),
            _ if self.any.is_some() => {
                return Err(Error::config(
                    "compression.level",
                    format!("{} has no compression levels here", codec.name()),
                ));
            }
            _ => return Ok(None),
        };
        let (level, name) = match (own, self.any) {
            (Some(level), _) => (level, own_name),
            (None, Some(level)) => (level, "compression.level"),
            (None, None) => return Ok(None),
        };
        if !range.contains(&level) {
            return Err(Error::config(
                name,
                format!("{level} is out of range for {}", codec.name()),
            ));
        }
        Ok(Some(level))
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl ProducerConfig {
    /// The Java client's defaults.
    pub fn new() -> Self {
        Self {
            settings: ProducerSettings::new(""),
            bootstrap: String::new(),
            explicit: HashSet::new(),
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            ignore_keys: false,
            partitioner: None,
            levels: CodecLevels::default(),
            values: Vec::new(),
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

    /// The value set for a property, as given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets a property by its Kafka name.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        if let Some(&known) = SECURITY_PROPERTIES.iter().find(|p| **p == name) {
            set_security_property(&mut self.settings.network.security, known, value)?;
            self.explicit.insert(known);
            self.values
                .push((known, security_value_shown(known, value)));
            return Ok(self);
        }
        let Some(&known) = PROPERTIES
            .iter()
            .chain(NETWORK_PROPERTIES)
            .find(|p| **p == name)
        else {
            let suggestion =
                suggestion(name, &[PROPERTIES, NETWORK_PROPERTIES, SECURITY_PROPERTIES]);
            if name == "partitioner.class" {
                return Err(Error::config(
                    name,
                    "Java partitioner classes do not apply here: pass a `Partitioner` to `ProducerConfig::partitioner`",
                ));
            }
            return Err(Error::config(
                name,
                format!("unknown producer property{suggestion}"),
            ));
        };
        let s = &mut self.settings;
        match known {
            "bootstrap.servers" => {
                check_bootstrap_servers(known, value)?;
                self.bootstrap = value.to_owned();
            }
            "acks" => {
                s.acks = match value.trim() {
                    "all" | "-1" => -1,
                    "0" => 0,
                    "1" => 1,
                    other => {
                        return Err(Error::config(
                            known,
                            format!("`{other}` is not all, -1, 0 or 1"),
                        ));
                    }
                }
            }
            "enable.idempotence" => s.idempotence = boolean(known, value)?,
            "retries" => {
                let n: i64 = parse_number(known, value)?;
                s.retries = u32::try_from(n)
                    .map_err(|_| Error::config(known, format!("`{value}` must not be negative")))?;
            }
            "retry.backoff.ms" => s.retry_backoff = millis(known, value)?,
            "retry.backoff.max.ms" => s.retry_backoff_max = millis(known, value)?,
            "batch.size" => {
                let n: i64 = parse_number(known, value)?;
                // 0 disables batching in Java: one record per batch.
                s.batch_size = usize::try_from(n)
                    .map_err(|_| Error::config(known, format!("`{value}` must not be negative")))?
                    .max(1);
            }
            "linger.ms" => s.linger = millis(known, value)?,
            "buffer.memory" => s.buffer_memory = positive(known, value)?,
            "max.block.ms" => s.max_block = millis(known, value)?,
            "compression.type" => {
                s.compression = match value.trim() {
                    "none" => Compression::None,
                    "gzip" => Compression::Gzip,
                    "snappy" => Compression::Snappy,
                    "lz4" => Compression::Lz4,
                    "zstd" => Compression::Zstd,
                    other => {
                        return Err(Error::config(
                            known,
                            format!("`{other}` is not none, gzip, snappy, lz4 or zstd"),
                        ));
                    }
                }
            }
            "compression.level" => self.levels.any = Some(parse_number(known, value)?),
            "compression.gzip.level" => self.levels.gzip = Some(parse_number(known, value)?),
            "compression.zstd.level" => self.levels.zstd = Some(parse_number(known, value)?),
            // lz4_flex compresses at one level (lz4's fast mode); Kafka 3.8's
            // lz4 levels (KIP-390) cannot be applied, so they are refused.
            "compression.lz4.level" => {
                parse_number::<i32>(known, value)?;
                return Err(Error::config(
                    known,
                    "lz4 compression levels are not implemented: lz4 compresses at its fast level",
                ));
            }
            "max.in.flight.requests.per.connection" => s.max_in_flight = positive(known, value)?,
            "delivery.timeout.ms" => s.delivery_timeout = millis(known, value)?,
            "max.request.size" => s.max_request_size = positive(known, value)?,
            "partitioner.ignore.keys" => self.ignore_keys = boolean(known, value)?,
            // The built-in partitioner is KIP-794's uniform sticky one; its
            // adaptive variant (weighting partitions by their brokers' queues)
            // and the exclusion of slow brokers are not implemented, so they
            // are refused rather than accepted and ignored.
            "partitioner.adaptive.partitioning.enable" => {
                if boolean(known, value)? {
                    return Err(Error::config(
                        known,
                        "adaptive partitioning is not implemented; `false` (uniform sticky, KIP-794) is what this producer does",
                    ));
                }
            }
            "partitioner.availability.timeout.ms" => {
                if !millis(known, value)?.is_zero() {
                    return Err(Error::config(
                        known,
                        "excluding slow brokers' partitions is not implemented; only 0 (off) is accepted",
                    ));
                }
            }
            "socket.connection.setup.timeout.max.ms" => {
                millis(known, value)?;
            }
            "transactional.id" => {
                self.transactional_id = (!value.is_empty()).then(|| value.to_owned())
            }
            "transaction.timeout.ms" => self.transaction_timeout = millis(known, value)?,
            _ => {
                if !set_network_property(&mut s.network, known, value)? {
                    return Err(Error::config(known, "known but not handled (a bug)"));
                }
            }
        }
        self.explicit.insert(known);
        self.values.push((known, value.to_owned()));
        Ok(self)
    }

    /// `bootstrap.servers`.
    pub fn bootstrap_servers(&mut self, servers: &str) -> Result<&mut Self> {
        self.set("bootstrap.servers", servers)
    }

    /// `linger.ms`.
    pub fn linger(&mut self, linger: Duration) -> Result<&mut Self> {
        self.set("linger.ms", &linger.as_millis().to_string())
    }

    /// `batch.size`.
    pub fn batch_size(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("batch.size", &bytes.to_string())
    }

    /// `enable.idempotence`.
    pub fn enable_idempotence(&mut self, enabled: bool) -> Result<&mut Self> {
        self.set("enable.idempotence", if enabled { "true" } else { "false" })
    }

    /// `compression.type`.
    pub fn compression(&mut self, compression: Compression) -> Result<&mut Self> {
        self.set("compression.type", compression.name())
    }

    /// `client.id`.
    pub fn client_id(&mut self, id: &str) -> Result<&mut Self> {
        self.set("client.id", id)
    }

    /// `acks`: -1 (all), 0 or 1.
    pub fn acks(&mut self, acks: i16) -> Result<&mut Self> {
        self.set("acks", &acks.to_string())
    }

    /// `retries`.
    pub fn retries(&mut self, retries: u32) -> Result<&mut Self> {
        self.set("retries", &retries.to_string())
    }

    /// `compression.level`.
    pub fn compression_level(&mut self, level: i32) -> Result<&mut Self> {
        self.set("compression.level", &level.to_string())
    }

    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight_requests_per_connection(&mut self, n: usize) -> Result<&mut Self> {
        self.set("max.in.flight.requests.per.connection", &n.to_string())
    }

    /// `buffer.memory`.
    pub fn buffer_memory(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("buffer.memory", &bytes.to_string())
    }

    /// `max.request.size`.
    pub fn max_request_size(&mut self, bytes: usize) -> Result<&mut Self> {
        self.set("max.request.size", &bytes.to_string())
    }

    /// The partitioner for records without an explicit partition, in place
    /// of the default (murmur2 for keys, sticky otherwise). Java's
    /// `partitioner.class` names a class; here it is a value.
    pub fn partitioner(&mut self, partitioner: Arc<dyn Partitioner>) -> &mut Self {
        self.partitioner = Some(partitioner);
        self
    }

    /// `transactional.id`.
    pub fn transactional_id(&self) -> Option<&str> {
        self.transactional_id.as_deref()
    }

    /// Checks the settings together and returns them; errors name the
    /// property at fault.
    pub fn build(&self) -> Result<ProducerSettings> {
        if self.bootstrap.is_empty() {
            return Err(Error::config("bootstrap.servers", "is required"));
        }
        let mut settings = self.settings.clone();
        let transactional = self.transactional_id.is_some();
        if transactional && !settings.idempotence {
            return Err(Error::config(
                "enable.idempotence",
                "must be true with a transactional.id",
            ));
        }
        settings.transactional_id = self.transactional_id.clone();
        settings.transaction_timeout = self.transaction_timeout;
        settings.network.bootstrap_servers = self
            .bootstrap
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        settings.partitioner = match &self.partitioner {
            Some(custom) => custom.clone(),
            None => Arc::new(DefaultPartitioner::with_batch_size(
                self.ignore_keys,
                settings.batch_size,
            )),
        };
        let idempotence_explicit = self.explicit.contains("enable.idempotence");
        let conflict = if settings.acks != -1 {
            Some(("acks", "must be all with enable.idempotence=true"))
        } else if settings.max_in_flight > 5 {
            Some((
                "max.in.flight.requests.per.connection",
                "must be at most 5 with enable.idempotence=true",
            ))
        } else if settings.retries == 0 {
            Some(("retries", "must be above 0 with enable.idempotence=true"))
        } else {
            None
        };
        if settings.idempotence
            && let Some((property, reason)) = conflict
        {
            if idempotence_explicit || transactional {
                return Err(Error::config(property, reason));
            }
            // Java: idempotence only by default gives way to these settings.
            settings.idempotence = false;
        }
        let lower_bound = settings.linger + settings.network.request_timeout;
        if settings.delivery_timeout < lower_bound {
            if self.explicit.contains("delivery.timeout.ms") {
                return Err(Error::config(
                    "delivery.timeout.ms",
                    format!(
                        "must be at least linger.ms + request.timeout.ms ({} ms)",
                        lower_bound.as_millis()
                    ),
                ));
            }
            settings.delivery_timeout = lower_bound;
        }
        settings.compression_level = self.levels.for_codec(settings.compression)?;
        Ok(settings)
    }
}

/// Typed setters for the `*.ms` properties: each goes through
/// [`ProducerConfig::set`], so its checks are the property's.
macro_rules! duration_setters {
    ($($(#[$doc:meta])* $method:ident => $name:literal;)*) => {
        impl ProducerConfig {
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
    /// `retry.backoff.ms`.
    retry_backoff => "retry.backoff.ms";
    /// `retry.backoff.max.ms`.
    retry_backoff_max => "retry.backoff.max.ms";
    /// `max.block.ms`.
    max_block => "max.block.ms";
    /// `request.timeout.ms`.
    request_timeout => "request.timeout.ms";
    /// `delivery.timeout.ms`.
    delivery_timeout => "delivery.timeout.ms";
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
    /// `transaction.timeout.ms`.
    transaction_timeout => "transaction.timeout.ms";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::partitioner::TopicPartitions;

    fn built(properties: &[(&str, &str)]) -> Result<ProducerSettings> {
        let mut all = vec![("bootstrap.servers", "127.0.0.1:9092")];
        all.extend_from_slice(properties);
        ProducerConfig::from_properties(all)?.build()
    }

    fn property_of(error: Error) -> String {
        match error {
            Error::Config { property, .. } => property,
            other => panic!("not a config error: {other:?}"),
        }
    }

    #[test]
    fn typed_setters_match_the_properties_and_take_a_partitioner() {
        #[derive(Debug)]
        struct Last;
        impl Partitioner for Last {
            fn partition(
                &self,
                _: &str,
                _: Option<&[u8]>,
                _: Option<&[u8]>,
                partitions: &TopicPartitions<'_>,
            ) -> i32 {
                partitions.count as i32 - 1
            }
        }
        let mut typed = ProducerConfig::new();
        typed
            .bootstrap_servers("127.0.0.1:9092")
            .and_then(|c| c.acks(1))
            .and_then(|c| c.enable_idempotence(false))
            .and_then(|c| c.retries(3))
            .and_then(|c| c.request_timeout(Duration::from_millis(1500)))
            .and_then(|c| c.delivery_timeout(Duration::from_millis(9000)))
            .and_then(|c| c.max_in_flight_requests_per_connection(2))
            .and_then(|c| c.metadata_max_age(Duration::from_secs(7)))
            .and_then(|c| c.client_id("typed"))
            .unwrap();
        typed.partitioner(Arc::new(Last));
        let typed = typed.build().unwrap();
        let named = built(&[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("retries", "3"),
            ("request.timeout.ms", "1500"),
            ("delivery.timeout.ms", "9000"),
            ("max.in.flight.requests.per.connection", "2"),
            ("metadata.max.age.ms", "7000"),
            ("client.id", "typed"),
        ])
        .unwrap();
        assert_eq!(
            (
                typed.acks,
                typed.idempotence,
                typed.retries,
                typed.max_in_flight
            ),
            (
                named.acks,
                named.idempotence,
                named.retries,
                named.max_in_flight
            )
        );
        assert_eq!(typed.delivery_timeout, named.delivery_timeout);
        assert_eq!(typed.network.request_timeout, named.network.request_timeout);
        assert_eq!(
            typed.network.metadata_max_age,
            named.network.metadata_max_age
        );
        assert_eq!(typed.network.client_id, named.network.client_id);
        let six = TopicPartitions {
            count: 6,
            available: &[0, 1, 2, 3, 4, 5],
        };
        assert_eq!(typed.partitioner.partition("t", None, None, &six), 5);
        // The checks are the properties': a bad typed value names its property.
        let err = ProducerConfig::new().acks(2).unwrap_err();
        assert_eq!(property_of(err), "acks");
    }

    #[test]
    fn defaults_are_the_java_clients() {
        let s = built(&[]).unwrap();
        assert_eq!(s.acks, -1);
        assert!(s.idempotence);
        assert_eq!(s.batch_size, 16_384);
        assert_eq!(s.linger, Duration::from_millis(5));
        assert_eq!(s.buffer_memory, 33_554_432);
        assert_eq!(s.max_block, Duration::from_secs(60));
        assert_eq!(s.retries, i32::MAX as u32);
        assert_eq!(s.max_in_flight, 5);
        assert_eq!(s.delivery_timeout, Duration::from_secs(120));
        assert_eq!(s.network.request_timeout, Duration::from_secs(30));
        assert_eq!(s.max_request_size, 1_048_576);
        assert_eq!(s.network.metadata_max_age, Duration::from_secs(300));
    }

    #[test]
    fn every_property_parses_and_bad_values_name_the_property() {
        let good = [
            ("client.id", "svc"),
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("retries", "3"),
            ("retry.backoff.ms", "50"),
            ("retry.backoff.max.ms", "500"),
            ("batch.size", "0"),
            ("linger.ms", "0"),
            ("buffer.memory", "1024"),
            ("max.block.ms", "10"),
            ("compression.type", "zstd"),
            ("compression.zstd.level", "3"),
            ("max.in.flight.requests.per.connection", "1"),
            ("request.timeout.ms", "1000"),
            ("delivery.timeout.ms", "5000"),
            ("max.request.size", "2048"),
            ("partitioner.ignore.keys", "true"),
            ("partitioner.adaptive.partitioning.enable", "false"),
            ("partitioner.availability.timeout.ms", "0"),
            ("metadata.max.age.ms", "1000"),
            ("connections.max.idle.ms", "1000"),
            ("reconnect.backoff.ms", "10"),
            ("reconnect.backoff.max.ms", "100"),
            ("socket.connection.setup.timeout.ms", "100"),
            ("socket.connection.setup.timeout.max.ms", "1000"),
            ("security.protocol", "plaintext"),
            ("transaction.timeout.ms", "1000"),
        ];
        let s = built(&good).unwrap();
        assert_eq!(
            (s.acks, s.idempotence, s.retries, s.batch_size),
            (1, false, 3, 1)
        );
        assert_eq!(s.compression, Compression::Zstd);
        assert_eq!(s.compression_level, Some(3));
        let mut config = ProducerConfig::new();
        for (name, _) in good {
            if matches!(name, "client.id" | "security.protocol") {
                continue;
            }
            let err = config.set(name, "not-a-value").unwrap_err();
            assert_eq!(property_of(err), name);
        }
        assert_eq!(property_of(config.set("acks", "2").unwrap_err()), "acks");
        assert_eq!(
            property_of(config.set("linger.ms", "-1").unwrap_err()),
            "linger.ms"
        );
        assert_eq!(
            property_of(config.set("bootstrap.servers", "nohost").unwrap_err()),
            "bootstrap.servers"
        );
        assert_eq!(
            property_of(config.set("security.protocol", "TLS").unwrap_err()),
            "security.protocol"
        );
        config.set("sasl.password", "secret").unwrap();
        assert_eq!(config.get("sasl.password"), Some("[hidden]"));
        assert!(!format!("{config:?}").contains("secret"));
        config.set("linger.ms", "7").unwrap();
        assert_eq!(config.get("linger.ms"), Some("7"));
    }

    #[test]
    fn unknown_names_are_refused_with_a_suggestion() {
        let err = ProducerConfig::new().set("lingr.ms", "1").unwrap_err();
        assert!(
            err.to_string().contains("did you mean `linger.ms`"),
            "{err}"
        );
        assert_eq!(
            property_of(
                ProducerConfig::new()
                    .set("partitioner.class", "x")
                    .unwrap_err()
            ),
            "partitioner.class"
        );
    }

    #[test]
    fn a_transactional_id_needs_idempotence_and_its_settings() {
        let s = built(&[
            ("transactional.id", "worker-1"),
            ("transaction.timeout.ms", "10000"),
        ])
        .unwrap();
        assert_eq!(s.transactional_id.as_deref(), Some("worker-1"));
        assert_eq!(s.transaction_timeout, Duration::from_secs(10));
        assert!(s.idempotence);
        for conflict in [
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "6"),
        ] {
            let error = built(&[("transactional.id", "worker-1"), conflict]).unwrap_err();
            assert_eq!(property_of(error), conflict.0, "{conflict:?}");
        }
    }

    #[test]
    fn contradictions_are_refused_when_explicit_and_adjusted_when_default() {
        for (name, value) in [
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "6"),
            ("retries", "0"),
        ] {
            let err = built(&[("enable.idempotence", "true"), (name, value)]).unwrap_err();
            assert_eq!(property_of(err), name);
            let s = built(&[(name, value)]).unwrap();
            assert!(
                !s.idempotence,
                "{name}: idempotence gives way when only defaulted"
            );
        }
        let err = built(&[("delivery.timeout.ms", "1000")]).unwrap_err();
        assert_eq!(property_of(err), "delivery.timeout.ms");
        let adjusted = built(&[("request.timeout.ms", "200000")]).unwrap();
        assert_eq!(adjusted.delivery_timeout, Duration::from_millis(200_005));
        let err = built(&[("compression.type", "gzip"), ("compression.level", "12")]).unwrap_err();
        assert_eq!(property_of(err), "compression.level");
        assert_eq!(
            property_of(ProducerConfig::new().build().unwrap_err()),
            "bootstrap.servers"
        );
    }

    #[test]
    fn builder_methods_equal_properties() {
        let mut typed = ProducerConfig::new();
        typed
            .bootstrap_servers("h:1")
            .unwrap()
            .linger(Duration::from_millis(9))
            .unwrap()
            .batch_size(100)
            .unwrap()
            .compression(Compression::Lz4)
            .unwrap();
        let by_name = ProducerConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("linger.ms", "9"),
            ("batch.size", "100"),
            ("compression.type", "lz4"),
        ])
        .unwrap();
        let (a, b) = (typed.build().unwrap(), by_name.build().unwrap());
        assert_eq!(
            (a.linger, a.batch_size, a.compression),
            (b.linger, b.batch_size, b.compression)
        );
    }

    #[test]
    fn each_codec_level_applies_to_its_own_codec_and_what_cannot_be_honoured_is_refused() {
        let level = |props: &[(&str, &str)]| built(props).map(|s| s.compression_level);
        let both = [
            ("compression.gzip.level", "2"),
            ("compression.zstd.level", "19"),
        ];
        let with = |codec: &'static str| {
            let mut props = both.to_vec();
            props.push(("compression.type", codec));
            props
        };
        assert_eq!(level(&with("gzip")).unwrap(), Some(2));
        assert_eq!(level(&with("zstd")).unwrap(), Some(19));
        // The other codec's level is not applied to this one (before, the
        // last level set applied to whichever codec was in use).
        assert_eq!(level(&with("snappy")).unwrap(), None);
        assert_eq!(level(&with("none")).unwrap(), None);
        // compression.level is the codec-in-use's unless its own is set.
        assert_eq!(
            level(&[("compression.type", "zstd"), ("compression.level", "7")]).unwrap(),
            Some(7)
        );
        assert_eq!(
            level(&[
                ("compression.type", "gzip"),
                ("compression.level", "7"),
                ("compression.gzip.level", "3")
            ])
            .unwrap(),
            Some(3)
        );
        let refused = |props: &[(&str, &str)]| property_of(built(props).unwrap_err());
        assert_eq!(
            refused(&[
                ("compression.type", "gzip"),
                ("compression.gzip.level", "10")
            ]),
            "compression.gzip.level"
        );
        assert_eq!(
            refused(&[("compression.type", "lz4"), ("compression.level", "3")]),
            "compression.level"
        );
        assert_eq!(
            refused(&[("compression.lz4.level", "9")]),
            "compression.lz4.level"
        );
        assert_eq!(
            refused(&[("partitioner.adaptive.partitioning.enable", "true")]),
            "partitioner.adaptive.partitioning.enable"
        );
        assert_eq!(
            refused(&[("partitioner.availability.timeout.ms", "100")]),
            "partitioner.availability.timeout.ms"
        );
    }
}
