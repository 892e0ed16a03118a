//! The admin client's configuration by Kafka property names, with the Java
//! client's defaults: `request.timeout.ms=30000`,
//! `default.api.timeout.ms=60000`, `retry.backoff.ms=100`,
//! `retry.backoff.max.ms=1000`, `connections.max.idle.ms=300000`.
//! `security.protocol` and the `ssl.*` and `sasl.*` properties are the
//! producer's; see [`Security`](crate::network::Security).

use std::time::Duration;

use crate::network::{NetworkConfig, SECURITY_PROPERTIES, set_security_property};
use crate::properties::{
    NETWORK_PROPERTIES, check_bootstrap_servers, millis, set_network_property, suggestion,
};
use crate::{Error, Result};

/// Besides the connection properties every client takes
/// (`NETWORK_PROPERTIES`) and the security ones.
const PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "default.api.timeout.ms",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
];

/// What an [`Admin`](super::Admin) client needs.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Brokers, connection timeouts, TLS and SASL.
    pub network: NetworkConfig,
    /// `default.api.timeout.ms`: how long one admin call may take in all,
    /// retries included, unless the call is given its own timeout.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms`: the first pause before a retry.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`: the longest pause between retries.
    pub retry_backoff_max: Duration,
}

impl AdminSettings {
    /// Java's defaults, for `bootstrap_servers` (comma-separated `host:port`).
    pub fn new(bootstrap_servers: &str) -> Self {
        let mut network = NetworkConfig::new(
            bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        );
        network.connections_max_idle = Duration::from_secs(300);
        // An admin client never creates topics by asking about them.
        network.allow_auto_create_topics = false;
        Self {
            network,
            default_api_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

/// Admin configuration by Kafka property names.
///
/// ```
/// use kafka_client::admin::AdminConfig;
///
/// let settings = AdminConfig::from_properties([
///     ("bootstrap.servers", "127.0.0.1:9092"),
///     ("request.timeout.ms", "10000"),
///     ("default.api.timeout.ms", "15000"),
/// ])?
/// .build()?;
/// assert_eq!(settings.default_api_timeout.as_secs(), 15);
/// # Ok::<(), kafka_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AdminConfig {
    settings: AdminSettings,
    bootstrap: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl AdminConfig {
    /// Java's defaults.
    pub fn new() -> Self {
        Self {
            settings: AdminSettings::new(""),
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
            return Err(Error::config(name, format!("unknown admin property{hint}")));
        };
        let s = &mut self.settings;
        match known {
            "bootstrap.servers" => {
                check_bootstrap_servers(known, value)?;
                self.bootstrap = value.to_owned();
            }
            "default.api.timeout.ms" => s.default_api_timeout = millis(known, value)?,
            "retry.backoff.ms" => s.retry_backoff = millis(known, value)?,
            "retry.backoff.max.ms" => s.retry_backoff_max = millis(known, value)?,
            _ => {
                if !set_network_property(&mut s.network, known, value)? {
                    return Err(Error::config(known, "known but not handled (a bug)"));
                }
            }
        }
        Ok(self)
    }

    /// Checks the settings together and returns them.
    pub fn build(&self) -> Result<AdminSettings> {
        if self.bootstrap.is_empty() {
            return Err(Error::config("bootstrap.servers", "is required"));
        }
        let mut settings = self.settings.clone();
        settings.network.bootstrap_servers = self
            .bootstrap
            .split(',')
            .map(|s| s.trim().to_owned())
            .collect();
        if settings.default_api_timeout < settings.network.request_timeout {
            // Java raises it to request.timeout.ms with a warning; a call
            // could otherwise never wait for even one answer.
            tracing::warn!(
                "default.api.timeout.ms is below request.timeout.ms; using request.timeout.ms"
            );
            settings.default_api_timeout = settings.network.request_timeout;
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_java_clients_and_names_are_checked() {
        let s = AdminConfig::from_properties([("bootstrap.servers", "h:1,h:2")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(s.network.bootstrap_servers, ["h:1", "h:2"]);
        assert_eq!(s.default_api_timeout, Duration::from_secs(60));
        assert_eq!(s.network.request_timeout, Duration::from_secs(30));
        assert_eq!(s.retry_backoff, Duration::from_millis(100));
        assert!(!s.network.allow_auto_create_topics);

        let error = AdminConfig::new()
            .set("default.api.timeout", "5")
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("did you mean `default.api.timeout.ms`"),
            "{error}"
        );
        assert!(AdminConfig::new().set("retry.backoff.ms", "-1").is_err());
        assert!(
            AdminConfig::new().build().is_err(),
            "bootstrap.servers is required"
        );
        let raised = AdminConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("request.timeout.ms", "20000"),
            ("default.api.timeout.ms", "5000"),
        ])
        .unwrap()
        .build()
        .unwrap();
        assert_eq!(raised.default_api_timeout, Duration::from_secs(20));
        let secured = AdminConfig::from_properties([
            ("bootstrap.servers", "h:1"),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
        ]);
        assert!(secured.is_ok());
    }
}
