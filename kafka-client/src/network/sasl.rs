//! SASL authentication of a new connection, as Kafka runs it since KIP-152:
//! SaslHandshake v1 picks the mechanism, then the mechanism's messages
//! travel in SaslAuthenticate requests. Nothing else is sent before it
//! succeeds.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ErrorCode;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};

use super::connection::Connection;
use super::scram::{ScramClient, ScramError, ScramHash};
use super::security::{SaslCredentials, SaslMechanism};
use crate::{Error, Result};

fn refused(broker: &str, code: Option<ErrorCode>, reason: impl Into<String>) -> Error {
    Error::Authentication {
        broker: broker.to_owned(),
        code,
        reason: reason.into(),
    }
}

/// Authenticates `connection` with `credentials`. Returns how long the
/// session lasts when the broker limits it (KIP-368,
/// `connections.max.reauth.ms`).
pub(crate) async fn authenticate(
    connection: &Connection,
    credentials: &SaslCredentials,
) -> Result<Option<Duration>> {
    let broker = connection.broker().to_owned();
    let mechanism = credentials.mechanism.name();
    // v0 would carry the tokens outside Kafka framing; every broker since
    // 1.0 takes v1.
    let handshake = connection
        .call(
            &SaslHandshakeRequest {
                mechanism: mechanism.to_owned(),
            },
            1,
        )
        .await?;
    if handshake.error_code != 0 {
        let code = ErrorCode::from_code(handshake.error_code);
        return Err(refused(
            &broker,
            code,
            format!(
                "SASL mechanism {mechanism} refused; the broker offers {:?}",
                handshake.mechanisms
            ),
        ));
    }
    let version = connection.version_for::<SaslAuthenticateRequest>()?;
    let step = |bytes: Vec<u8>| {
        let connection = connection.clone();
        let broker = broker.clone();
        async move {
            let response: SaslAuthenticateResponse = connection
                .call(
                    &SaslAuthenticateRequest {
                        auth_bytes: Bytes::from(bytes),
                        ..Default::default()
                    },
                    version,
                )
                .await?;
            if response.error_code != 0 {
                let code = ErrorCode::from_code(response.error_code);
                let message = response
                    .error_message
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| format!("{mechanism} authentication failed"));
                return Err(refused(&broker, code, message));
            }
            Ok((response.auth_bytes, response.session_lifetime_ms))
        }
    };
    let lifetime_ms = match credentials.mechanism {
        SaslMechanism::Plain => {
            // authzid (empty: the user itself) NUL authcid NUL password.
            let mut message =
                Vec::with_capacity(2 + credentials.username.len() + credentials.password.len());
            message.push(0);
            message.extend_from_slice(credentials.username.as_bytes());
            message.push(0);
            message.extend_from_slice(credentials.password.as_bytes());
            step(message).await?.1
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let hash = if credentials.mechanism == SaslMechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let nonce = ScramClient::random_nonce()
                .map_err(|_| refused(&broker, None, "no random numbers for a SCRAM nonce"))?;
            let mut scram =
                ScramClient::new(hash, &credentials.username, &credentials.password, nonce);
            let scram_error = |e: ScramError| refused(&broker, None, format!("{mechanism}: {e}"));
            let (server_first, _) = step(scram.client_first()).await?;
            let client_final = scram.client_final(&server_first).map_err(scram_error)?;
            let (server_final, lifetime_ms) = step(client_final).await?;
            scram
                .verify_server_final(&server_final)
                .map_err(scram_error)?;
            lifetime_ms
        }
    };
    tracing::debug!(
        broker,
        mechanism,
        user = credentials.username,
        lifetime_ms,
        "authenticated"
    );
    Ok(u64::try_from(lifetime_ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis))
}
