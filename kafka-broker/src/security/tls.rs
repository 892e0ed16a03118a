//! The server side of TLS listeners: the identity a listener presents, and
//! a handshake that cannot hold a connection task forever.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::SecurityError;

/// How long a client has to complete the TLS handshake. Kafka has no such
/// setting (its idle timeout is ten minutes), but a client that connects and
/// sends nothing, or half a ClientHello, should not keep a task for that long.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A server certificate chain and key for TLS listeners.
///
/// Built once from PEM; cloning shares the same rustls configuration. The
/// listener speaks TLS 1.2 and 1.3 (as Kafka's default
/// `ssl.enabled.protocols`) and asks for no client certificate unless built
/// with [`requiring_client_certificates`](Self::requiring_client_certificates).
///
/// ```no_run
/// # fn main() -> Result<(), kafka_broker::SecurityError> {
/// use kafka_broker::{BrokerConfig, TlsIdentity};
///
/// let chain = std::fs::read_to_string("server.pem").unwrap();
/// let key = std::fs::read_to_string("server.key").unwrap();
/// let config = BrokerConfig {
///     tls: Some(TlsIdentity::from_pem(&chain, &key)?),
///     ..BrokerConfig::default()
/// };
/// # drop(config);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct TlsIdentity {
    config: Arc<rustls::ServerConfig>,
}

impl TlsIdentity {
    /// An identity from a PEM certificate chain (the server's certificate
    /// first, then any intermediates) and its PEM private key (PKCS#8,
    /// PKCS#1 or SEC1). Fails if either does not parse or the key is not
    /// the certificate's.
    pub fn from_pem(cert_chain_pem: &str, private_key_pem: &str) -> Result<Self, SecurityError> {
        Self::build(cert_chain_pem, private_key_pem, None)
    }

    /// [`from_pem`](Self::from_pem) for a listener that also requires every
    /// client to present a certificate signed by one of the PEM CAs in
    /// `client_ca_pem` (Kafka's `ssl.client.auth=required`, mutual TLS).
    pub fn requiring_client_certificates(
        cert_chain_pem: &str,
        private_key_pem: &str,
        client_ca_pem: &str,
    ) -> Result<Self, SecurityError> {
        Self::build(cert_chain_pem, private_key_pem, Some(client_ca_pem))
    }

    fn build(
        cert_chain_pem: &str,
        private_key_pem: &str,
        client_ca_pem: Option<&str>,
    ) -> Result<Self, SecurityError> {
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SecurityError::Certificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(SecurityError::NoCertificate);
        }
        let key = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
            .map_err(|e| SecurityError::PrivateKey(e.to_string()))?;
        // An explicit provider: the process-wide default may be unset, or
        // be another one installed by whoever embeds the broker.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|e| SecurityError::Certificate(e.to_string()))?;
                    roots
                        .add(cert)
                        .map_err(|e| SecurityError::Certificate(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(SecurityError::NoCertificate);
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| SecurityError::Certificate(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(chain, key)?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// An acceptor for one listener; cheap, it shares the configuration.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

impl fmt::Debug for TlsIdentity {
    /// Says only that an identity is there: the key must not reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

/// Why a TLS connection was never established.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    #[error("no TLS handshake within {0:?}")]
    TimedOut(Duration),
    #[error("TLS handshake failed: {0}")]
    Failed(#[from] std::io::Error),
}

/// Runs the server side of the handshake within [`HANDSHAKE_TIMEOUT`].
pub(crate) async fn accept(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream).into_fallible()).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err((error, stream))) => {
            close_gently(stream).await;
            Err(HandshakeError::Failed(error))
        }
        Err(_) => Err(HandshakeError::TimedOut(HANDSHAKE_TIMEOUT)),
    }
}

/// How long a refused handshake's connection is drained before it closes.
const DRAIN: Duration = Duration::from_millis(200);

/// Closes a connection whose handshake failed so that the client reads the
/// alert: a TLS 1.3 client sends its first request before it learns that
/// its certificate was refused, and closing with that request unread would
/// reset the connection, which can discard the alert before the client
/// reads it. So: end our side, then read and drop what comes for a moment.
async fn close_gently(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(DRAIN, async {
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn client_certificates_need_a_usable_ca() {
        let (cert, key) = self_signed();
        assert!(TlsIdentity::requiring_client_certificates(&cert, &key, &cert).is_ok());
        assert!(matches!(
            TlsIdentity::requiring_client_certificates(&cert, &key, ""),
            Err(SecurityError::NoCertificate)
        ));
    }

    #[test]
    fn a_certificate_and_its_key_make_an_identity() {
        let (cert, key) = self_signed();
        let identity = TlsIdentity::from_pem(&cert, &key).unwrap();
        assert_eq!(format!("{identity:?}"), "TlsIdentity { .. }");
    }

    #[test]
    fn bad_pem_is_refused_with_the_reason() {
        let (cert, key) = self_signed();
        assert!(matches!(
            TlsIdentity::from_pem("", &key),
            Err(SecurityError::NoCertificate)
        ));
        assert!(matches!(
            TlsIdentity::from_pem(&cert, "not a key"),
            Err(SecurityError::PrivateKey(_))
        ));
        // A key that is not the certificate's.
        let (_, other_key) = self_signed();
        assert!(matches!(
            TlsIdentity::from_pem(&cert, &other_key),
            Err(SecurityError::Tls(_))
        ));
    }
}
