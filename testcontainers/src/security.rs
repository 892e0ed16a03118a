//! Secured test clusters: TLS with a CA made for the cluster at start, and
//! SASL with one user, so that a service's `security.protocol` settings are
//! tested as they run against a managed cluster.

use std::collections::BTreeMap;
use std::path::Path;

use kafka_broker::{SaslMechanism, SaslSettings, TlsIdentity};
use kafka_client::network::Security as ClientSecurity;

use crate::error::{Error, Result};

/// The user every SASL test cluster knows.
pub const TEST_USER: &str = "test-user";
/// That user's password.
pub const TEST_PASSWORD: &str = "test-password";

/// How a test cluster's listeners are secured (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClusterSecurity {
    /// No TLS, no SASL (the default).
    #[default]
    Plaintext,
    /// TLS, with a certificate for 127.0.0.1 and localhost signed by a CA
    /// made for this cluster.
    Ssl,
    /// SASL with this mechanism, without TLS.
    SaslPlaintext(SaslMechanism),
    /// SASL with this mechanism, inside TLS.
    SaslSsl(SaslMechanism),
}

impl ClusterSecurity {
    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl(_))
    }

    fn mechanism(self) -> Option<SaslMechanism> {
        match self {
            Self::SaslPlaintext(m) | Self::SaslSsl(m) => Some(m),
            Self::Plaintext | Self::Ssl => None,
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext(_) => "SASL_PLAINTEXT",
            Self::SaslSsl(_) => "SASL_SSL",
        }
    }
}

/// What a started cluster's security needs: the certificates it made, and
/// how brokers and clients are set up with them.
#[derive(Debug, Clone)]
pub(crate) struct Secured {
    security: ClusterSecurity,
    pem: Option<Pem>,
}

#[derive(Clone)]
struct Pem {
    ca: String,
    cert: String,
    key: String,
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pem { .. }")
    }
}

fn certificates() -> std::result::Result<Pem, rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kafka-testcontainers CA");
    let ca = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?
        .signed_by(&key, &ca, &ca_key)?;
    Ok(Pem {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

impl Secured {
    /// Makes the certificates `security` needs.
    pub(crate) fn new(security: ClusterSecurity) -> Result<Self> {
        let pem = if security.tls() {
            Some(certificates().map_err(|e| Error::Config(format!("test certificates: {e}")))?)
        } else {
            None
        };
        Ok(Self { security, pem })
    }

    /// The broker side, for an in-process cluster.
    pub(crate) fn broker(&self) -> Result<(Option<TlsIdentity>, Option<SaslSettings>)> {
        let tls = match &self.pem {
            Some(pem) => Some(
                TlsIdentity::from_pem(&pem.cert, &pem.key)
                    .map_err(|e| Error::Config(format!("test certificate: {e}")))?,
            ),
            None => None,
        };
        let sasl = self.security.mechanism().map(|mechanism| SaslSettings {
            mechanisms: vec![mechanism],
            users: BTreeMap::from([(TEST_USER.to_owned(), TEST_PASSWORD.to_owned())]),
            session_lifetime: None,
        });
        Ok((tls, sasl))
    }

    /// The broker side as `kafka-broker` flags; the certificate and key go
    /// to files in `dir`.
    pub(crate) fn process_args(&self, dir: &Path) -> Result<Vec<String>> {
        let mut args = Vec::new();
        if let Some(pem) = &self.pem {
            let cert = dir.join("broker-cert.pem");
            let key = dir.join("broker-key.pem");
            std::fs::write(&cert, &pem.cert)?;
            std::fs::write(&key, &pem.key)?;
            args.extend([
                "--tls-cert".to_owned(),
                cert.display().to_string(),
                "--tls-key".to_owned(),
                key.display().to_string(),
            ]);
        }
        if let Some(mechanism) = self.security.mechanism() {
            args.extend([
                "--sasl-mechanisms".to_owned(),
                mechanism.name().to_owned(),
                "--sasl-user".to_owned(),
                format!("{TEST_USER}:{TEST_PASSWORD}"),
            ]);
        }
        Ok(args)
    }

    /// Whether the cluster is secured at all.
    pub(crate) fn is_secured(&self) -> bool {
        self.security != ClusterSecurity::Plaintext
    }

    /// The client properties that match.
    pub(crate) fn client_properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = vec![("security.protocol", self.security.protocol().to_owned())];
        if let Some(pem) = &self.pem {
            properties.push(("ssl.ca.pem", pem.ca.clone()));
        }
        if let Some(mechanism) = self.security.mechanism() {
            properties.extend([
                ("sasl.mechanism", mechanism.name().to_owned()),
                ("sasl.username", TEST_USER.to_owned()),
                ("sasl.password", TEST_PASSWORD.to_owned()),
            ]);
        }
        properties
    }

    /// The same, as the network layer's settings.
    pub(crate) fn client_security(&self) -> Result<ClientSecurity> {
        let mut security = ClientSecurity::new();
        for (name, value) in self.client_properties() {
            security.set(name, &value)?;
        }
        Ok(security)
    }

    /// The CA certificate, PEM, when the cluster speaks TLS.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.pem.as_ref().map(|p| p.ca.as_str())
    }
}
