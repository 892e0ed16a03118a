//! Parsing Kafka-style property values (shared by the producer's and the
//! consumer's configuration), with errors that name the property.

use std::time::Duration;

use crate::network::NetworkConfig;
use crate::{Error, Result};

/// The Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

pub(crate) fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .trim()
        .parse()
        .map_err(|e| Error::config(name, format!("`{value}` is not a valid number: {e}")))
}

pub(crate) fn millis(name: &str, value: &str) -> Result<Duration> {
    let ms: i64 = parse_number(name, value)?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| Error::config(name, format!("`{value}` must not be negative")))
}

pub(crate) fn positive(name: &str, value: &str) -> Result<usize> {
    let n: i64 = parse_number(name, value)?;
    if n <= 0 || n > i64::from(i32::MAX) {
        return Err(Error::config(
            name,
            format!("`{value}` must be between 1 and 2147483647"),
        ));
    }
    Ok(n as usize)
}

pub(crate) fn boolean(name: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::config(
            name,
            format!("`{value}` is not true or false"),
        )),
    }
}

/// "; did you mean `x`?" for the known name closest to `name`, if close.
pub(crate) fn suggestion(name: &str, known: &[&[&str]]) -> String {
    known
        .iter()
        .flat_map(|names| names.iter())
        .map(|p| (distance(name, p), p))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, p)| format!("; did you mean `{p}`?"))
        .unwrap_or_default()
}

/// Checks a `bootstrap.servers` value: comma-separated `host:port` entries.
pub(crate) fn check_bootstrap_servers(name: &str, value: &str) -> Result<()> {
    for server in value.split(',').map(str::trim) {
        let valid = server
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(Error::config(name, format!("`{server}` is not host:port")));
        }
    }
    Ok(())
}

/// The connection properties the producer, the consumer and the admin
/// client all take; [`set_network_property`] applies them.
pub(crate) const NETWORK_PROPERTIES: &[&str] = &[
    "client.id",
    "request.timeout.ms",
    "metadata.max.age.ms",
    "connections.max.idle.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "socket.connection.setup.timeout.ms",
];

/// Sets one of [`NETWORK_PROPERTIES`] on `network`; false for any other
/// name.
pub(crate) fn set_network_property(
    network: &mut NetworkConfig,
    name: &str,
    value: &str,
) -> Result<bool> {
    match name {
        "client.id" => network.client_id = (!value.is_empty()).then(|| value.to_owned()),
        "request.timeout.ms" => network.request_timeout = millis(name, value)?,
        "metadata.max.age.ms" => network.metadata_max_age = millis(name, value)?,
        "connections.max.idle.ms" => network.connections_max_idle = millis(name, value)?,
        "reconnect.backoff.ms" => network.reconnect_backoff = millis(name, value)?,
        "reconnect.backoff.max.ms" => network.reconnect_backoff_max = millis(name, value)?,
        "socket.connection.setup.timeout.ms" => {
            network.connection_setup_timeout = millis(name, value)?
        }
        _ => return Ok(false),
    }
    Ok(true)
}
