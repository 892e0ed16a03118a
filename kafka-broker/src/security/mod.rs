//! TLS and SASL on the broker's listeners: what Kafka calls the
//! `security.protocol` of a listener (SSL, SASL_PLAINTEXT, SASL_SSL).
//!
//! [`crate::BrokerConfig::tls`] makes every listener TLS,
//! [`crate::BrokerConfig::sasl`] makes every connection authenticate with
//! one of the enabled [`SaslMechanism`]s before anything but ApiVersions,
//! SaslHandshake and SaslAuthenticate is served. Both together are SASL_SSL.
//!
//! ```
//! use kafka_broker::{BrokerConfig, SaslMechanism, SaslSettings};
//!
//! let mut sasl = SaslSettings::default();
//! sasl.mechanisms = vec![SaslMechanism::Plain, "SCRAM-SHA-256".parse().unwrap()];
//! sasl.users.insert("alice".into(), "alice-secret".into());
//! let config = BrokerConfig {
//!     sasl: Some(sasl),
//!     ..BrokerConfig::default()
//! };
//! assert!(config.tls.is_none());
//! ```

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod plain;
pub(crate) mod sasl;
mod scram;
pub(crate) mod tls;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use tls::TlsIdentity;

/// A TLS or SASL setting the broker cannot use.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The certificate chain PEM holds no `CERTIFICATE` block.
    #[error("the certificate chain PEM holds no CERTIFICATE")]
    NoCertificate,
    /// The certificate chain PEM could not be read.
    #[error("the certificate chain PEM cannot be read: {0}")]
    Certificate(String),
    /// The private key PEM holds no usable key (PKCS#8, PKCS#1 or SEC1).
    #[error("the private key PEM cannot be read: {0}")]
    PrivateKey(String),
    /// rustls refused the certificate and key, e.g. a key that is not the
    /// certificate's or of an unsupported type.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A SASL mechanism name this broker does not implement.
    #[error("unknown SASL mechanism `{0}` (supported: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")]
    UnknownMechanism(String),
    /// SASL is on but no mechanism is enabled, so nobody could log in.
    #[error("SASL is enabled with no mechanism")]
    NoMechanisms,
    /// SASL is on but no user is defined, so nobody could log in.
    #[error("SASL is enabled with no user")]
    NoUsers,
    /// A user name or password that cannot be carried by the enabled
    /// mechanisms (empty, or containing NUL, which PLAIN uses as separator).
    #[error("SASL user `{user}`: {reason}")]
    InvalidUser {
        /// The user name as given.
        user: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The system random number generator failed while making salts.
    #[error("the system random number generator failed")]
    Random,
}

/// A SASL mechanism the broker can enable (`sasl.enabled.mechanisms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SaslMechanism {
    /// RFC 4616: the password travels in the clear, so use it under TLS.
    Plain,
    /// RFC 7677: a salted challenge-response with SHA-256.
    ScramSha256,
    /// RFC 5802 with SHA-512, as Kafka offers it.
    ScramSha512,
}

impl SaslMechanism {
    /// Every mechanism, in the order Kafka lists them.
    pub const ALL: [SaslMechanism; 3] = [Self::Plain, Self::ScramSha256, Self::ScramSha512];

    /// The IANA name clients send in SaslHandshake: `PLAIN`,
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = SecurityError;

    /// Parses a mechanism name. SASL names are case-sensitive upper case
    /// (RFC 4422), and Kafka matches them exactly, so `plain` is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| SecurityError::UnknownMechanism(name.to_owned()))
    }
}

/// Which SASL mechanisms a SASL listener offers and who may log in.
///
/// SCRAM credentials (salt, stored key, server key) are derived from each
/// password when the cluster starts, with a random 24-byte salt and 4096
/// iterations, Kafka's minimum; passwords are not kept beyond that except
/// for PLAIN, which must compare them.
#[derive(Clone, Default)]
pub struct SaslSettings {
    /// The enabled mechanisms, in the order SaslHandshake lists them.
    pub mechanisms: Vec<SaslMechanism>,
    /// User name to password, for every enabled mechanism.
    pub users: BTreeMap<String, String>,
    /// How long an authentication lasts (Kafka's `connections.max.reauth.ms`,
    /// KIP-368): SaslAuthenticate tells the client, and a connection that
    /// sends anything after its session expired is closed. `None` (Kafka's
    /// default, 0): sessions never expire.
    pub session_lifetime: Option<std::time::Duration>,
}

impl fmt::Debug for SaslSettings {
    /// Lists the users but never their passwords: configs get logged.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslSettings")
            .field("mechanisms", &self.mechanisms)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

impl SaslSettings {
    /// Parses a comma-separated mechanism list, as in
    /// `sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256`; duplicates are kept once.
    pub fn parse_mechanisms(list: &str) -> Result<Vec<SaslMechanism>, SecurityError> {
        let mut mechanisms = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let mechanism: SaslMechanism = name.parse()?;
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        Ok(mechanisms)
    }
}

/// Equality of secrets without an early exit, so the time taken does not
/// tell an attacker how many leading bytes were right. The length is not
/// secret (it follows from the mechanism).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip_and_are_case_sensitive() {
        for mechanism in SaslMechanism::ALL {
            assert_eq!(
                mechanism.name().parse::<SaslMechanism>().ok(),
                Some(mechanism)
            );
        }
        assert!(matches!(
            "plain".parse::<SaslMechanism>(),
            Err(SecurityError::UnknownMechanism(name)) if name == "plain"
        ));
        assert!("GSSAPI".parse::<SaslMechanism>().is_err());
    }

    #[test]
    fn a_mechanism_list_parses_with_spaces_and_duplicates() {
        let list = SaslSettings::parse_mechanisms(" PLAIN, SCRAM-SHA-512,PLAIN ,").unwrap();
        assert_eq!(list, [SaslMechanism::Plain, SaslMechanism::ScramSha512]);
        assert!(SaslSettings::parse_mechanisms("PLAIN,OAUTHBEARER").is_err());
    }

    #[test]
    fn debug_output_hides_passwords() {
        let mut settings = SaslSettings::default();
        settings.users.insert("alice".into(), "hunter2".into());
        let shown = format!("{settings:?}");
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }
}
