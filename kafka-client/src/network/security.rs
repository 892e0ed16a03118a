//! `security.protocol` and the `ssl.*` and `sasl.*` settings: how a
//! connection is encrypted and how it authenticates.
//!
//! Both the librdkafka names (`ssl.ca.location`, `sasl.username`, ...) and
//! the Java ones (`ssl.truststore.location` with `ssl.truststore.type=PEM`,
//! `sasl.jaas.config`, ...) are accepted. Certificates are PEM; Java
//! keystores (JKS, PKCS12) are not read.
//!
//! ```
//! use kafka_client::producer::ProducerConfig;
//!
//! let settings = ProducerConfig::new()
//!     .set("bootstrap.servers", "broker-1.example:9093")?
//!     .set("security.protocol", "SASL_SSL")?
//!     .set("sasl.mechanism", "SCRAM-SHA-512")?
//!     .set("sasl.username", "orders-service")?
//!     .set("sasl.password", "s3cret")?
//!     .build()?;
//! assert!(settings.network.security.protocol.uses_tls());
//! # Ok::<(), kafka_client::Error>(())
//! ```
//!
//! Brokers that limit how long an authentication lasts (KIP-368,
//! `connections.max.reauth.ms`) close a connection that goes on past it.
//! The client stops handing out such a connection at 85-95% of its session
//! lifetime, opens and authenticates a new one, and lets the old one finish
//! what was sent on it, so no request is lost to the expiry.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::{Error, Result};

/// `security.protocol`: whether connections use TLS and whether they
/// authenticate with SASL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Neither (the default).
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL inside TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections are TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password is sent, so use it inside TLS.
    #[default]
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// The settings behind `security.protocol`, `ssl.*` and `sasl.*`.
#[derive(Clone, Default)]
pub struct Security {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// Trusted CA certificates, PEM (`ssl.ca.location` / `ssl.ca.pem`);
    /// `None` trusts Mozilla's root certificates.
    pub ca_pem: Option<String>,
    /// The client's certificate chain, PEM, for brokers that require one
    /// (`ssl.certificate.location` / `ssl.certificate.pem`).
    pub certificate_pem: Option<String>,
    /// The key of that certificate, PEM, unencrypted (`ssl.key.location` /
    /// `ssl.key.pem`).
    pub key_pem: Option<String>,
    /// Whether the broker's certificate must name the host connected to
    /// (`ssl.endpoint.identification.algorithm`: `https`, the default, or
    /// `none`). The chain is verified either way.
    pub verify_hostname: bool,
    /// `sasl.mechanism`.
    pub sasl_mechanism: SaslMechanism,
    /// `sasl.username`.
    pub sasl_username: Option<String>,
    /// `sasl.password`.
    pub sasl_password: Option<String>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password or the key.
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "..."))
            .field(
                "certificate_pem",
                &self.certificate_pem.as_ref().map(|_| "..."),
            )
            .field("verify_hostname", &self.verify_hostname)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .finish_non_exhaustive()
    }
}

impl Security {
    /// PLAINTEXT, with TLS settings that verify the host name once TLS is on.
    pub fn new() -> Self {
        Self {
            verify_hostname: true,
            ..Self::default()
        }
    }

    /// Sets a `security.protocol`, `ssl.*` or `sasl.*` property by its
    /// Kafka name, as the producer's and consumer's `set` do; for code that
    /// builds a [`NetworkConfig`](super::NetworkConfig) itself.
    pub fn set(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        let Some(known) = PROPERTIES.iter().find(|p| **p == name) else {
            return Err(Error::config(name, "not a security property"));
        };
        set(self, known, value)?;
        Ok(self)
    }
}

/// The security properties both the producer and the consumer accept.
pub(crate) const PROPERTIES: &[&str] = &[
    "security.protocol",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.certificate.location",
    "ssl.certificate.pem",
    "ssl.key.location",
    "ssl.key.pem",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
];

/// How a security property's value is shown back (`get`, `Debug`):
/// secrets as `[hidden]`, as the Java client prints passwords.
pub(crate) fn value_shown(name: &str, value: &str) -> String {
    match name {
        "sasl.password" | "sasl.jaas.config" | "ssl.key.pem" | "ssl.keystore.key"
        | "ssl.key.password" => "[hidden]".to_owned(),
        _ => value.to_owned(),
    }
}

fn read_pem_file(name: &str, path: &str) -> Result<String> {
    std::fs::read_to_string(path.trim())
        .map_err(|e| Error::config(name, format!("cannot read `{path}`: {e}")))
}

fn pem_only(name: &str, value: &str) -> Result<()> {
    if value.trim().eq_ignore_ascii_case("PEM") {
        Ok(())
    } else {
        Err(Error::config(
            name,
            format!("`{value}` stores are not read; give PEM files (type PEM)"),
        ))
    }
}

/// Reads `key = "value"` out of a `sasl.jaas.config` line such as
/// `org.apache.kafka.common.security.plain.PlainLoginModule required
/// username="alice" password="secret";`.
fn jaas_option(config: &str, key: &str) -> Option<String> {
    let mut rest = config;
    while let Some(at) = rest.find(key) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + key.len()..].trim_start();
        rest = &rest[at + key.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let Some(value) = after.strip_prefix('=') else {
            continue;
        };
        let value = value.trim_start().strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                c => out.push(c),
            }
        }
        return None;
    }
    None
}

/// Sets `name` (one of [`PROPERTIES`]) on `security`.
pub(crate) fn set(security: &mut Security, name: &str, value: &str) -> Result<()> {
    match name {
        "security.protocol" => {
            security.protocol = match value.trim().to_ascii_uppercase().as_str() {
                "PLAINTEXT" => SecurityProtocol::Plaintext,
                "SSL" => SecurityProtocol::Ssl,
                "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
                "SASL_SSL" => SecurityProtocol::SaslSsl,
                other => {
                    return Err(Error::config(
                        name,
                        format!("`{other}` is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                    ));
                }
            }
        }
        "ssl.ca.location" | "ssl.truststore.location" => {
            security.ca_pem = Some(read_pem_file(name, value)?)
        }
        "ssl.ca.pem" | "ssl.truststore.certificates" => security.ca_pem = Some(value.to_owned()),
        "ssl.certificate.location" => security.certificate_pem = Some(read_pem_file(name, value)?),
        "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => {
            security.certificate_pem = Some(value.to_owned())
        }
        "ssl.key.location" => security.key_pem = Some(read_pem_file(name, value)?),
        "ssl.key.pem" | "ssl.keystore.key" => security.key_pem = Some(value.to_owned()),
        "ssl.keystore.location" => {
            // A PEM keystore file holds the key and the chain together.
            let pem = read_pem_file(name, value)?;
            security.certificate_pem = Some(pem.clone());
            security.key_pem = Some(pem);
        }
        "ssl.truststore.type" | "ssl.keystore.type" => pem_only(name, value)?,
        "ssl.key.password" => {
            if !value.is_empty() {
                return Err(Error::config(
                    name,
                    "encrypted private keys are not read; give an unencrypted PEM key",
                ));
            }
        }
        "ssl.endpoint.identification.algorithm" => {
            security.verify_hostname = match value.trim().to_ascii_lowercase().as_str() {
                "https" => true,
                "" | "none" => false,
                other => {
                    return Err(Error::config(
                        name,
                        format!("`{other}` is not https or none"),
                    ));
                }
            }
        }
        "enable.ssl.certificate.verification" => {
            if !crate::properties::boolean(name, value)? {
                return Err(Error::config(
                    name,
                    "turning certificate verification off is not supported: \
                     trust the broker's CA with ssl.ca.location instead",
                ));
            }
        }
        "sasl.mechanism" | "sasl.mechanisms" => {
            security.sasl_mechanism = match value.trim().to_ascii_uppercase().as_str() {
                "PLAIN" => SaslMechanism::Plain,
                "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                other => {
                    return Err(Error::config(
                        name,
                        format!("`{other}` is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
                    ));
                }
            }
        }
        "sasl.username" => security.sasl_username = Some(value.to_owned()),
        "sasl.password" => security.sasl_password = Some(value.to_owned()),
        "sasl.jaas.config" => {
            let (Some(username), Some(password)) = (
                jaas_option(value, "username"),
                jaas_option(value, "password"),
            ) else {
                return Err(Error::config(
                    name,
                    "expected a PlainLoginModule or ScramLoginModule line with \
                     username=\"...\" and password=\"...\"",
                ));
            };
            security.sasl_username = Some(username);
            security.sasl_password = Some(password);
        }
        _ => return Err(Error::config(name, "not a security property (a bug)")),
    }
    Ok(())
}

/// What connecting needs from [`Security`], checked and built once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Connector {
    /// The TLS client configuration, when connections are TLS.
    pub(crate) tls: Option<TlsConnector>,
    /// The SASL credentials, when connections authenticate.
    pub(crate) sasl: Option<SaslCredentials>,
}

/// A built TLS client configuration.
#[derive(Clone)]
pub(crate) struct TlsConnector(pub(crate) Arc<rustls::ClientConfig>);

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

/// A mechanism with its user name and password.
#[derive(Clone)]
pub(crate) struct SaslCredentials {
    pub(crate) mechanism: SaslMechanism,
    pub(crate) username: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Checks `security` and builds what connections need; every problem is
    /// a [`Error::Config`] naming the property.
    pub(crate) fn new(security: &Security) -> Result<Self> {
        let tls = if security.protocol.uses_tls() {
            Some(TlsConnector(Arc::new(tls_config(security)?)))
        } else {
            None
        };
        let sasl = if security.protocol.uses_sasl() {
            let username = security.sasl_username.clone().ok_or_else(|| {
                Error::config(
                    "sasl.username",
                    "SASL needs a user name (or sasl.jaas.config)",
                )
            })?;
            let password = security.sasl_password.clone().ok_or_else(|| {
                Error::config(
                    "sasl.password",
                    "SASL needs a password (or sasl.jaas.config)",
                )
            })?;
            Some(SaslCredentials {
                mechanism: security.sasl_mechanism,
                username,
                password,
            })
        } else {
            None
        };
        Ok(Self { tls, sasl })
    }
}

fn crypto() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_config(security: &Security) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &security.ca_pem {
        Some(pem) => {
            let mut any = false;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    Error::config(
                        "ssl.ca.location",
                        format!("unreadable PEM certificate: {e}"),
                    )
                })?;
                roots.add(cert).map_err(|e| {
                    Error::config("ssl.ca.location", format!("unusable CA certificate: {e}"))
                })?;
                any = true;
            }
            if !any {
                return Err(Error::config(
                    "ssl.ca.location",
                    "no PEM certificate found (JKS and PKCS12 stores are not read)",
                ));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config("security.protocol", format!("TLS setup: {e}")))?;
    let builder = if security.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let verifier = WebPkiServerVerifier::builder_with_provider(roots, crypto())
            .build()
            .map_err(|e| Error::config("ssl.ca.location", format!("TLS setup: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyHostName(verifier)))
    };
    match (&security.certificate_pem, &security.key_pem) {
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(chain), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(chain.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::config(
                        "ssl.certificate.location",
                        format!("unreadable PEM certificate: {e}"),
                    )
                })?;
            if chain.is_empty() {
                return Err(Error::config(
                    "ssl.certificate.location",
                    "no PEM certificate found",
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
                Error::config(
                    "ssl.key.location",
                    format!("no usable PEM private key: {e}"),
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config("ssl.key.location", format!("{e}")))
        }
        (Some(_), None) => Err(Error::config(
            "ssl.key.location",
            "a client certificate needs its key",
        )),
        (None, Some(_)) => Err(Error::config(
            "ssl.certificate.location",
            "a client key needs its certificate",
        )),
    }
}

/// The host part of `host:port` (without the brackets of an IPv6 address).
pub(crate) fn host_of(broker: &str) -> &str {
    let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The TLS error inside an I/O error from a TLS stream, if that is what it is.
fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A failed TLS handshake: refused certificates are an authentication
/// failure (retrying cannot help), anything else a network error.
pub(crate) fn tls_failure(broker: &str, e: std::io::Error) -> Error {
    match rustls_error(&e) {
        Some(error) => Error::Authentication {
            broker: broker.to_owned(),
            code: None,
            reason: format!("TLS handshake failed: {error}"),
        },
        None => Error::Network {
            broker: broker.to_owned(),
            reason: format!("TLS handshake failed: {e}"),
        },
    }
}

/// Whether a read failed on a TLS alert about the client's certificate.
/// With TLS 1.3 the broker checks that certificate after the client has
/// finished its side of the handshake, so a missing or untrusted one shows
/// up as an alert on the first read, not as a failed handshake.
pub(crate) fn refuses_certificate(e: &std::io::Error) -> bool {
    use rustls::AlertDescription as Alert;
    matches!(
        rustls_error(e),
        Some(rustls::Error::AlertReceived(
            Alert::CertificateRequired
                | Alert::BadCertificate
                | Alert::UnsupportedCertificate
                | Alert::CertificateRevoked
                | Alert::CertificateExpired
                | Alert::CertificateUnknown
                | Alert::UnknownCA
                | Alert::AccessDenied
                // A certificate whose signature does not verify.
                | Alert::DecryptError
        ))
    )
}

/// Verifies the broker's chain against the trusted roots but accepts any
/// host name: `ssl.endpoint.identification.algorithm=none`.
#[derive(Debug)]
struct AnyHostName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_lines_give_their_user_and_password() {
        let line = r#"org.apache.kafka.common.security.scram.ScramLoginModule required
            username="alice" password = "se\"cret";"#;
        assert_eq!(jaas_option(line, "username").as_deref(), Some("alice"));
        assert_eq!(jaas_option(line, "password").as_deref(), Some("se\"cret"));
        assert_eq!(
            jaas_option("x required myusername=\"a\";", "username"),
            None
        );
        assert_eq!(jaas_option("x required username=\"open", "username"), None);
    }

    #[test]
    fn properties_are_checked() {
        let mut s = Security::new();
        set(&mut s, "security.protocol", "sasl_ssl").expect("protocol");
        assert_eq!(s.protocol, SecurityProtocol::SaslSsl);
        assert!(set(&mut s, "security.protocol", "KERBEROS").is_err());
        set(&mut s, "sasl.mechanisms", "SCRAM-SHA-512").expect("mechanism");
        assert_eq!(s.sasl_mechanism, SaslMechanism::ScramSha512);
        assert!(set(&mut s, "sasl.mechanism", "GSSAPI").is_err());
        assert!(set(&mut s, "ssl.truststore.type", "JKS").is_err());
        set(&mut s, "ssl.truststore.type", "PEM").expect("PEM");
        assert!(set(&mut s, "ssl.key.password", "secret").is_err());
        assert!(set(&mut s, "enable.ssl.certificate.verification", "false").is_err());
        set(&mut s, "ssl.endpoint.identification.algorithm", "").expect("none");
        assert!(!s.verify_hostname);
        let missing = set(&mut s, "ssl.ca.location", "/no/such/ca.pem");
        assert!(
            matches!(missing, Err(Error::Config { property, .. }) if property == "ssl.ca.location")
        );
        // SASL without a password is refused when the connector is built.
        set(&mut s, "sasl.username", "alice").expect("user");
        s.ca_pem = None;
        let built = Connector::new(&s);
        assert!(
            matches!(built, Err(Error::Config { property, .. }) if property == "sasl.password")
        );
        set(&mut s, "sasl.password", "pw").expect("password");
        let built = Connector::new(&s).expect("connector");
        assert!(built.tls.is_some() && built.sasl.is_some());
        s.ca_pem = Some("not a certificate".into());
        assert!(Connector::new(&s).is_err());
        // The public setter takes the same names, and only those.
        let mut typed = Security::new();
        typed.set("security.protocol", "SSL").expect("protocol");
        assert_eq!(typed.protocol, SecurityProtocol::Ssl);
        assert!(typed.set("linger.ms", "5").is_err());
    }
}
