//! SASL authentication of a connection, as Kafka's `SaslServerAuthenticator`
//! does it: SaslHandshake picks the mechanism, then its tokens travel in
//! SaslAuthenticate requests (KIP-152), or, after a v0 handshake, as bare
//! size-prefixed tokens. Until it succeeds, nothing but ApiVersions,
//! SaslHandshake and SaslAuthenticate is served.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::{ApiKey, ErrorCode};
use ring::rand::SystemRandom;

use super::plain;
use super::scram::{self, Credential, Hash, Step};
use super::{SaslMechanism, SaslSettings, SecurityError};

/// The largest frame read before a connection is authenticated: Kafka's
/// `sasl.server.max.receive.size` default, so an anonymous peer cannot make
/// the broker buffer `socket.request.max.bytes` (100 MiB).
pub(crate) const MAX_RECEIVE_SIZE: usize = 512 * 1024;

/// How long a connection may take to authenticate. Kafka relies on its
/// ten-minute idle timeout; a shorter bound here keeps a silent peer from
/// holding a task and a socket through a whole test run.
pub(crate) const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The enabled mechanisms and the credentials of every user, made once when
/// the cluster starts and shared by every connection.
pub(crate) struct SaslServer {
    mechanisms: Vec<SaslMechanism>,
    /// For PLAIN, which compares the password itself; empty otherwise.
    passwords: BTreeMap<String, String>,
    scram_sha256: BTreeMap<String, Credential>,
    scram_sha512: BTreeMap<String, Credential>,
    random: SystemRandom,
    session_lifetime: Option<Duration>,
}

impl std::fmt::Debug for SaslServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslServer")
            .field("mechanisms", &self.mechanisms)
            .finish_non_exhaustive()
    }
}

impl SaslServer {
    /// Checks the settings and derives the SCRAM credentials.
    pub(crate) fn new(settings: &SaslSettings) -> Result<Self, SecurityError> {
        if settings.mechanisms.is_empty() {
            return Err(SecurityError::NoMechanisms);
        }
        if settings.users.is_empty() {
            return Err(SecurityError::NoUsers);
        }
        for (user, password) in &settings.users {
            let invalid = |reason| SecurityError::InvalidUser {
                user: user.clone(),
                reason,
            };
            if user.is_empty() {
                return Err(invalid("the name is empty"));
            }
            if password.is_empty() {
                return Err(invalid("the password is empty"));
            }
            // PLAIN separates its fields with NUL, so neither can hold one.
            if user.contains('\0') || password.contains('\0') {
                return Err(invalid("NUL in the name or password"));
            }
        }
        let random = SystemRandom::new();
        let mut mechanisms = Vec::new();
        for &mechanism in &settings.mechanisms {
            if !mechanisms.contains(&mechanism) {
                mechanisms.push(mechanism);
            }
        }
        let credentials = |mechanism| -> Result<BTreeMap<String, Credential>, SecurityError> {
            let Some(hash) = Hash::of(mechanism).filter(|_| mechanisms.contains(&mechanism)) else {
                return Ok(BTreeMap::new());
            };
            settings
                .users
                .iter()
                .map(|(user, password)| {
                    Ok((user.clone(), Credential::generate(hash, password, &random)?))
                })
                .collect()
        };
        let scram_sha256 = credentials(SaslMechanism::ScramSha256)?;
        let scram_sha512 = credentials(SaslMechanism::ScramSha512)?;
        let passwords = if mechanisms.contains(&SaslMechanism::Plain) {
            settings.users.clone()
        } else {
            BTreeMap::new()
        };
        Ok(Self {
            mechanisms,
            passwords,
            scram_sha256,
            scram_sha512,
            random,
            session_lifetime: settings.session_lifetime,
        })
    }

    fn names(&self) -> Vec<String> {
        self.mechanisms
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    }
}

/// Whether the connection stays open once the response is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Continue,
    /// Close after the response, for this reason (logged).
    Close(String),
}

/// Where a connection is in its authentication.
#[derive(Debug)]
enum State {
    /// Waiting for SaslHandshake.
    Handshake,
    /// A mechanism is chosen; its tokens come next.
    Authenticate {
        mechanism: SaslMechanism,
        /// After SaslHandshake v0 the tokens are bare, not Kafka requests.
        legacy: bool,
        /// Boxed: it is large and most connections never reach it.
        scram: Option<Box<scram::Exchange>>,
    },
    /// Done, or SASL is off on this listener.
    Authenticated,
}

/// A failed token: the error for SaslAuthenticate, and why (for the log).
#[derive(Debug)]
struct Failure {
    code: ErrorCode,
    message: String,
    reason: String,
}

/// The authentication of one connection.
#[derive(Debug)]
pub(crate) struct Session {
    server: Option<Arc<SaslServer>>,
    state: State,
    /// When the authentication stops counting (KIP-368), if it does.
    expires: Option<tokio::time::Instant>,
}

impl Session {
    /// A connection's session; without a SASL server it starts authenticated.
    pub(crate) fn new(server: Option<Arc<SaslServer>>) -> Self {
        let state = if server.is_some() {
            State::Handshake
        } else {
            State::Authenticated
        };
        Self {
            server,
            state,
            expires: None,
        }
    }

    pub(crate) fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Authenticated)
    }

    /// Whether the next frame is a bare token (after SaslHandshake v0).
    pub(crate) fn awaits_raw_token(&self) -> bool {
        matches!(self.state, State::Authenticate { legacy: true, .. })
    }

    /// Whether `api` may be served now. Kafka closes the connection of an
    /// unauthenticated client that sends anything else.
    /// A session past its lifetime allows nothing: Kafka closes the
    /// connection of a client that did not re-authenticate in time.
    pub(crate) fn allows(&self, api: ApiKey) -> bool {
        if self
            .expires
            .is_some_and(|at| tokio::time::Instant::now() >= at)
        {
            return false;
        }
        self.is_authenticated()
            || matches!(
                api,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
    }

    /// Answers SaslHandshake.
    pub(crate) fn handshake(
        &mut self,
        request: &SaslHandshakeRequest,
        version: i16,
    ) -> (SaslHandshakeResponse, Verdict) {
        let mechanisms = self.server.as_ref().map(|s| s.names()).unwrap_or_default();
        let answer = |code: ErrorCode, verdict| {
            let response = SaslHandshakeResponse {
                error_code: code.code(),
                mechanisms: mechanisms.clone(),
            };
            (response, verdict)
        };
        let Some(server) = self
            .server
            .as_ref()
            .filter(|_| matches!(self.state, State::Handshake))
        else {
            return answer(
                ErrorCode::IllegalSaslState,
                Verdict::Close("SaslHandshake after the mechanism was chosen".into()),
            );
        };
        let chosen = request
            .mechanism
            .parse::<SaslMechanism>()
            .ok()
            .filter(|m| server.mechanisms.contains(m));
        let Some(mechanism) = chosen else {
            return answer(
                ErrorCode::UnsupportedSaslMechanism,
                Verdict::Close(format!(
                    "SASL mechanism {:?} is not enabled",
                    request.mechanism
                )),
            );
        };
        self.state = State::Authenticate {
            mechanism,
            legacy: version == 0,
            scram: Hash::of(mechanism).map(|hash| Box::new(scram::Exchange::new(hash))),
        };
        answer(ErrorCode::None, Verdict::Continue)
    }

    /// Answers SaslAuthenticate.
    pub(crate) fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
    ) -> (SaslAuthenticateResponse, Verdict) {
        let illegal = |message: &str| {
            let response = SaslAuthenticateResponse {
                error_code: ErrorCode::IllegalSaslState.code(),
                error_message: Some(message.to_owned()),
                ..Default::default()
            };
            (response, Verdict::Close(message.to_owned()))
        };
        match self.state {
            State::Handshake => {
                return illegal("Unexpected SaslAuthenticate request before SaslHandshake");
            }
            State::Authenticated => {
                return illegal(
                    "SaslAuthenticate request received after successful authentication",
                );
            }
            State::Authenticate { legacy: true, .. } => {
                return illegal("SaslAuthenticate request after SaslHandshake v0");
            }
            State::Authenticate { .. } => {}
        }
        match self.evaluate(&request.auth_bytes) {
            Ok(token) => {
                // The last step tells the client how long the session lasts
                // (0: forever), so that it authenticates again in time.
                let lifetime = self
                    .server
                    .as_ref()
                    .and_then(|s| s.session_lifetime)
                    .filter(|_| self.is_authenticated());
                if let Some(lifetime) = lifetime {
                    self.expires = Some(tokio::time::Instant::now() + lifetime);
                }
                let response = SaslAuthenticateResponse {
                    auth_bytes: Bytes::from(token),
                    session_lifetime_ms: lifetime
                        .map_or(0, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX)),
                    ..Default::default()
                };
                (response, Verdict::Continue)
            }
            Err(failure) => {
                let response = SaslAuthenticateResponse {
                    error_code: failure.code.code(),
                    error_message: Some(failure.message),
                    ..Default::default()
                };
                (response, Verdict::Close(failure.reason))
            }
        }
    }

    /// Answers a bare token after SaslHandshake v0. There is no way to
    /// carry an error there: a failure closes the connection (as Kafka does).
    pub(crate) fn raw_token(&mut self, token: &[u8]) -> Result<Vec<u8>, String> {
        self.evaluate(token).map_err(|failure| failure.reason)
    }

    /// Feeds one client token to the chosen mechanism: the server's token,
    /// or why the exchange failed (the session then stays unauthenticated).
    fn evaluate(&mut self, token: &[u8]) -> Result<Vec<u8>, Failure> {
        let (
            Some(server),
            State::Authenticate {
                mechanism, scram, ..
            },
        ) = (self.server.as_ref(), &mut self.state)
        else {
            return Err(Failure {
                code: ErrorCode::IllegalSaslState,
                message: "no SASL exchange in progress".into(),
                reason: "no SASL exchange in progress".into(),
            });
        };
        let mechanism = *mechanism;
        let outcome = match scram {
            None => plain::authenticate(token, &server.passwords)
                .map(|user| (Vec::new(), Some(user)))
                .map_err(|e| Failure {
                    code: ErrorCode::SaslAuthenticationFailed,
                    message: e.to_string(),
                    reason: e.to_string(),
                }),
            Some(exchange) => {
                let credentials = match mechanism {
                    SaslMechanism::ScramSha512 => &server.scram_sha512,
                    _ => &server.scram_sha256,
                };
                match exchange.step(token, credentials, &server.random) {
                    Ok(Step::Challenge(first)) => Ok((first.into_bytes(), None)),
                    Ok(Step::Done { server_final, user }) => {
                        Ok((server_final.into_bytes(), Some(user)))
                    }
                    // Kafka's words: the cause is kept from the client, which
                    // must not learn whether the user exists.
                    Err(e) => Err(Failure {
                        code: ErrorCode::SaslAuthenticationFailed,
                        message: format!(
                            "Authentication failed during authentication due to invalid \
                             credentials with SASL mechanism {mechanism}"
                        ),
                        reason: format!("{mechanism}: {e}"),
                    }),
                }
            }
        };
        match outcome {
            Ok((token, Some(user))) => {
                tracing::debug!(%mechanism, user, "SASL authentication succeeded");
                self.state = State::Authenticated;
                Ok(token)
            }
            Ok((token, None)) => Ok(token),
            Err(failure) => {
                // No second try on this connection.
                self.state = State::Handshake;
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mechanisms: &[SaslMechanism]) -> Arc<SaslServer> {
        let settings = SaslSettings {
            mechanisms: mechanisms.to_vec(),
            users: BTreeMap::from([("alice".to_owned(), "alice-secret".to_owned())]),
            ..Default::default()
        };
        Arc::new(SaslServer::new(&settings).unwrap())
    }

    fn handshake(session: &mut Session, mechanism: &str) -> (SaslHandshakeResponse, Verdict) {
        let request = SaslHandshakeRequest {
            mechanism: mechanism.into(),
        };
        session.handshake(&request, 1)
    }

    fn authenticate(session: &mut Session, token: &[u8]) -> (SaslAuthenticateResponse, Verdict) {
        let request = SaslAuthenticateRequest {
            auth_bytes: Bytes::copy_from_slice(token),
            ..Default::default()
        };
        session.authenticate(&request)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever a client sends after the handshake, the session answers
        /// or closes; it never panics and never lets it in.
        #[test]
        fn any_client_tokens_are_answered_or_refused(
            mechanism in 0usize..3,
            tokens in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
                1..4,
            ),
            nonce in "[!-+--~]{1,40}",
            proof in "[ -~]{0,60}",
        ) {
            // Deriving the SCRAM credentials is the slow part: once.
            static SERVER: std::sync::OnceLock<Arc<SaslServer>> = std::sync::OnceLock::new();
            let server = SERVER.get_or_init(|| server(&SaslMechanism::ALL));
            let mechanism = SaslMechanism::ALL[mechanism];
            for shaped in [false, true] {
                let mut session = Session::new(Some(server.clone()));
                let (response, _) = handshake(&mut session, mechanism.name());
                proptest::prop_assert_eq!(response.error_code, 0);
                let mut tokens = tokens.clone();
                if shaped {
                    // A well-formed SCRAM start, then a made-up proof.
                    tokens.insert(0, format!("n,,n=alice,r={nonce}").into_bytes());
                    tokens.insert(1, format!("c=biws,r={nonce}x,p={proof}").into_bytes());
                }
                for token in &tokens {
                    let (_, verdict) = authenticate(&mut session, token);
                    if verdict != Verdict::Continue {
                        break;
                    }
                }
                proptest::prop_assert!(!session.is_authenticated());
            }
        }
    }

    #[test]
    fn settings_without_mechanisms_users_or_with_nul_are_refused() {
        let mut settings = SaslSettings::default();
        assert!(matches!(
            SaslServer::new(&settings),
            Err(SecurityError::NoMechanisms)
        ));
        settings.mechanisms.push(SaslMechanism::Plain);
        assert!(matches!(
            SaslServer::new(&settings),
            Err(SecurityError::NoUsers)
        ));
        settings.users.insert("a\0b".into(), "pw".into());
        assert!(matches!(
            SaslServer::new(&settings),
            Err(SecurityError::InvalidUser { .. })
        ));
    }

    #[test]
    fn plain_authenticates_and_then_everything_is_allowed() {
        let mut session = Session::new(Some(server(&[SaslMechanism::Plain])));
        assert!(session.allows(ApiKey::ApiVersions) && !session.allows(ApiKey::Metadata));
        let (response, verdict) = handshake(&mut session, "PLAIN");
        assert_eq!((response.error_code, verdict), (0, Verdict::Continue));
        assert_eq!(response.mechanisms, ["PLAIN"]);
        let (response, verdict) = authenticate(&mut session, b"\0alice\0alice-secret");
        assert_eq!((response.error_code, verdict), (0, Verdict::Continue));
        assert_eq!(response.session_lifetime_ms, 0);
        assert!(session.is_authenticated() && session.allows(ApiKey::Metadata));
        // A second handshake after authentication is an illegal state.
        let (response, verdict) = handshake(&mut session, "PLAIN");
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
        assert!(matches!(verdict, Verdict::Close(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_with_a_lifetime_says_so_and_allows_nothing_after_it() {
        let settings = SaslSettings {
            mechanisms: vec![SaslMechanism::Plain],
            users: BTreeMap::from([("alice".to_owned(), "alice-secret".to_owned())]),
            session_lifetime: Some(Duration::from_millis(1500)),
        };
        let mut session = Session::new(Some(Arc::new(SaslServer::new(&settings).unwrap())));
        handshake(&mut session, "PLAIN");
        let (response, verdict) = authenticate(&mut session, b"\0alice\0alice-secret");
        assert_eq!((response.error_code, verdict), (0, Verdict::Continue));
        assert_eq!(response.session_lifetime_ms, 1500);
        assert!(session.allows(ApiKey::Metadata));
        tokio::time::advance(Duration::from_millis(1499)).await;
        assert!(session.allows(ApiKey::Produce));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(
            !session.allows(ApiKey::Produce),
            "expired: the connection closes"
        );
        assert!(!session.allows(ApiKey::ApiVersions));
    }

    #[test]
    fn a_wrong_password_fails_with_kafkas_message_and_closes() {
        let mut session = Session::new(Some(server(&[SaslMechanism::Plain])));
        handshake(&mut session, "PLAIN");
        let (response, verdict) = authenticate(&mut session, b"\0alice\0wrong");
        assert_eq!(
            response.error_code,
            ErrorCode::SaslAuthenticationFailed.code()
        );
        assert_eq!(
            response.error_message.as_deref(),
            Some("Authentication failed: Invalid username or password")
        );
        assert!(matches!(verdict, Verdict::Close(_)));
        assert!(!session.is_authenticated());
    }

    #[test]
    fn a_disabled_mechanism_is_unsupported_with_the_enabled_list() {
        let mut session = Session::new(Some(server(&[
            SaslMechanism::ScramSha512,
            SaslMechanism::Plain,
        ])));
        for name in ["SCRAM-SHA-256", "GSSAPI", ""] {
            let (response, verdict) = handshake(&mut session, name);
            assert_eq!(
                response.error_code,
                ErrorCode::UnsupportedSaslMechanism.code()
            );
            assert_eq!(response.mechanisms, ["SCRAM-SHA-512", "PLAIN"]);
            assert!(matches!(verdict, Verdict::Close(_)));
        }
    }

    #[test]
    fn authenticate_before_handshake_is_an_illegal_state() {
        let mut session = Session::new(Some(server(&[SaslMechanism::Plain])));
        let (response, verdict) = authenticate(&mut session, b"\0alice\0alice-secret");
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
        assert!(matches!(verdict, Verdict::Close(_)));
        assert!(!session.is_authenticated());
    }

    #[test]
    fn a_v0_handshake_switches_to_bare_tokens() {
        let mut session = Session::new(Some(server(&[SaslMechanism::Plain])));
        let request = SaslHandshakeRequest {
            mechanism: "PLAIN".into(),
        };
        session.handshake(&request, 0);
        assert!(session.awaits_raw_token());
        assert_eq!(session.raw_token(b"\0alice\0alice-secret"), Ok(Vec::new()));
        assert!(session.is_authenticated() && !session.awaits_raw_token());
    }

    #[test]
    fn a_scram_failure_names_only_the_mechanism() {
        let mut session = Session::new(Some(server(&[SaslMechanism::ScramSha256])));
        handshake(&mut session, "SCRAM-SHA-256");
        let (response, verdict) = authenticate(&mut session, b"n,,n=mallory,r=abc");
        assert_eq!(
            response.error_code,
            ErrorCode::SaslAuthenticationFailed.code()
        );
        assert_eq!(
            response.error_message.as_deref(),
            Some(
                "Authentication failed during authentication due to invalid credentials \
                 with SASL mechanism SCRAM-SHA-256"
            )
        );
        assert_eq!(
            verdict,
            Verdict::Close("SCRAM-SHA-256: unknown user".into())
        );
    }

    #[test]
    fn without_sasl_a_session_is_authenticated_from_the_start() {
        let mut session = Session::new(None);
        assert!(session.is_authenticated() && session.allows(ApiKey::Produce));
        let (response, _) = handshake(&mut session, "PLAIN");
        assert_eq!(response.error_code, ErrorCode::IllegalSaslState.code());
    }
}
