//! The server side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677):
//! credentials derived from passwords, and the two-message exchange.
//!
//! ```text
//! C: n,,n=user,r=<client nonce>                         client-first
//! S: r=<client nonce><server nonce>,s=<salt>,i=4096     server-first
//! C: c=biws,r=<both nonces>,p=<proof>                   client-final
//! S: v=<server signature>                               server-final
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

use super::{SaslMechanism, SecurityError, constant_time_eq};

/// PBKDF2 iterations of the credentials made at startup: Kafka refuses
/// fewer (`ScramMechanism.minIterations`), so this is what a real cluster
/// answers at the least, and it keeps start-up fast.
pub(crate) const ITERATIONS: u32 = 4096;

/// Salt length in bytes; RFC 5802 asks for a random salt per user, Kafka
/// uses at least 16 bytes.
const SALT_LEN: usize = 24;

/// Random bytes in the server's half of the nonce.
const NONCE_LEN: usize = 24;

/// The hash behind a SCRAM mechanism.
#[derive(Clone, Copy)]
pub(crate) struct Hash {
    digest: &'static digest::Algorithm,
    hmac: hmac::Algorithm,
    pbkdf2: pbkdf2::Algorithm,
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Hash").field(self.digest).finish()
    }
}

impl Hash {
    /// The hash of a SCRAM mechanism; `None` for PLAIN.
    pub(crate) fn of(mechanism: SaslMechanism) -> Option<Self> {
        match mechanism {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(Self {
                digest: &digest::SHA256,
                hmac: hmac::HMAC_SHA256,
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
            }),
            SaslMechanism::ScramSha512 => Some(Self {
                digest: &digest::SHA512,
                hmac: hmac::HMAC_SHA512,
                pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
            }),
        }
    }

    fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac, key), message)
            .as_ref()
            .to_vec()
    }
}

/// What the server keeps of a password (RFC 5802 section 3): enough to check
/// a proof and sign the answer, not enough to log in as the user.
#[derive(Clone)]
pub(crate) struct Credential {
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The credential of `password` with this salt and iteration count.
    pub(crate) fn derive(
        hash: Hash,
        password: &str,
        salt: Vec<u8>,
        iterations: NonZeroU32,
    ) -> Self {
        // Kafka's ScramFormatter uses the password's UTF-8 bytes as they are
        // (no SASLprep); doing the same keeps non-ASCII passwords compatible.
        let mut salted = vec![0u8; hash.digest.output_len()];
        pbkdf2::derive(
            hash.pbkdf2,
            iterations,
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hash.hmac(&salted, b"Client Key");
        Self {
            stored_key: digest::digest(hash.digest, &client_key).as_ref().to_vec(),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations: iterations.get(),
        }
    }

    /// The credential of `password` with a fresh random salt.
    pub(crate) fn generate(
        hash: Hash,
        password: &str,
        random: &dyn SecureRandom,
    ) -> Result<Self, SecurityError> {
        let mut salt = vec![0u8; SALT_LEN];
        random.fill(&mut salt).map_err(|_| SecurityError::Random)?;
        let iterations = NonZeroU32::new(ITERATIONS).ok_or(SecurityError::Random)?;
        Ok(Self::derive(hash, password, salt, iterations))
    }
}

/// Why an exchange failed. Never sent to the client (Kafka answers every
/// SCRAM failure with one generic message, so as not to reveal whether the
/// user exists); logged at debug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScramError {
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("the client asked for channel binding, which this server does not offer")]
    ChannelBinding,
    #[error("unsupported extension {0}")]
    Extension(String),
    #[error("authorization id differs from the user name")]
    Authzid,
    #[error("unknown user")]
    UnknownUser,
    #[error("channel binding data differs from the client-first header")]
    BindingMismatch,
    #[error("nonce differs from the one the server sent")]
    Nonce,
    #[error("invalid client proof")]
    Proof,
    #[error("message out of order")]
    State,
    #[error("the system random number generator failed")]
    Random,
}

/// One SCRAM exchange on one connection.
#[derive(Debug)]
pub(crate) struct Exchange {
    hash: Hash,
    state: State,
}

#[derive(Debug)]
enum State {
    ClientFirst,
    ClientFinal(Pending),
    Done,
}

/// What the server must remember between its two messages.
#[derive(Debug)]
struct Pending {
    user: String,
    credential: Credential,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// The server's answer to a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// server-first; a client-final must follow.
    Challenge(String),
    /// server-final: the user is authenticated.
    Done { server_final: String, user: String },
}

impl Exchange {
    pub(crate) fn new(hash: Hash) -> Self {
        Self {
            hash,
            state: State::ClientFirst,
        }
    }

    /// Handles the next client message. After an error the exchange is over.
    pub(crate) fn step(
        &mut self,
        message: &[u8],
        credentials: &BTreeMap<String, Credential>,
        random: &dyn SecureRandom,
    ) -> Result<Step, ScramError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ClientFirst => {
                let mut nonce = [0u8; NONCE_LEN];
                random.fill(&mut nonce).map_err(|_| ScramError::Random)?;
                let pending = client_first(message, credentials, &BASE64.encode(nonce))?;
                let challenge = pending.server_first.clone();
                self.state = State::ClientFinal(pending);
                Ok(Step::Challenge(challenge))
            }
            State::ClientFinal(pending) => {
                let server_final = client_final(self.hash, &pending, message)?;
                Ok(Step::Done {
                    server_final,
                    user: pending.user,
                })
            }
            State::Done => Err(ScramError::State),
        }
    }
}

/// Parses client-first and prepares server-first with `server_nonce`
/// appended to the client's nonce.
fn client_first(
    message: &[u8],
    credentials: &BTreeMap<String, Credential>,
    server_nonce: &str,
) -> Result<Pending, ScramError> {
    let message =
        std::str::from_utf8(message).map_err(|_| ScramError::Malformed("client-first"))?;
    // gs2-header = cbind-flag "," [authzid] ","
    let mut header = message.splitn(3, ',');
    let (Some(cbind), Some(authzid), Some(bare)) = (header.next(), header.next(), header.next())
    else {
        return Err(ScramError::Malformed("client-first"));
    };
    match cbind {
        // "y": the client could bind but believes the server cannot; true.
        "n" | "y" => {}
        flag if flag.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("gs2 header")),
    }
    let authzid = match authzid {
        "" => None,
        a => Some(saslname(
            a.strip_prefix("a=")
                .ok_or(ScramError::Malformed("authzid"))?,
        )?),
    };
    let mut attributes = bare.split(',');
    let user = match attributes.next() {
        Some(a) if a.starts_with("m=") => return Err(ScramError::Extension("m".into())),
        Some(a) => saslname(
            a.strip_prefix("n=")
                .ok_or(ScramError::Malformed("username"))?,
        )?,
        None => return Err(ScramError::Malformed("username")),
    };
    if user.is_empty() {
        return Err(ScramError::Malformed("username"));
    }
    let client_nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|n| valid_nonce(n))
        .ok_or(ScramError::Malformed("nonce"))?;
    for extension in attributes {
        // Kafka's one extension: delegation tokens, which are not kept here.
        if extension.starts_with("tokenauth=") {
            return Err(ScramError::Extension("tokenauth".into()));
        }
    }
    if authzid.is_some_and(|a| a != user) {
        return Err(ScramError::Authzid);
    }
    let credential = credentials
        .get(&user)
        .ok_or(ScramError::UnknownUser)?
        .clone();
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!(
        "r={nonce},s={},i={}",
        BASE64.encode(&credential.salt),
        credential.iterations
    );
    Ok(Pending {
        user,
        credential,
        gs2_header: message[..message.len() - bare.len()].to_owned(),
        client_first_bare: bare.to_owned(),
        server_first,
        nonce,
    })
}

/// Checks client-final against what was sent; server-final if the proof holds.
fn client_final(hash: Hash, pending: &Pending, message: &[u8]) -> Result<String, ScramError> {
    let message =
        std::str::from_utf8(message).map_err(|_| ScramError::Malformed("client-final"))?;
    // The proof is the last attribute (RFC 5802 section 7).
    let (without_proof, proof) = message
        .rsplit_once(",p=")
        .ok_or(ScramError::Malformed("client proof"))?;
    let proof = BASE64
        .decode(proof)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or(ScramError::Malformed("client proof"))?;
    let mut attributes = without_proof.split(',');
    let binding = attributes
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(ScramError::Malformed("channel binding"))?;
    let binding = BASE64
        .decode(binding)
        .map_err(|_| ScramError::Malformed("channel binding"))?;
    // Without channel binding, c= carries exactly the gs2 header, which is
    // how a downgrade of the header in transit would be caught.
    if binding != pending.gs2_header.as_bytes() {
        return Err(ScramError::BindingMismatch);
    }
    let nonce = attributes
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(ScramError::Malformed("nonce"))?;
    // RFC 5802 wants the nonce exactly as sent, but Kafka accepts any that
    // ends with it (ScramSaslServer's `endsWith`), and librdkafka up to
    // at least 2.0 relies on that: it sends its own nonce again in front.
    if !nonce.ends_with(&pending.nonce) {
        return Err(ScramError::Nonce);
    }
    let auth_message = format!(
        "{},{},{}",
        pending.client_first_bare, pending.server_first, without_proof
    );
    let credential = &pending.credential;
    let client_signature = hash.hmac(&credential.stored_key, auth_message.as_bytes());
    if proof.len() != client_signature.len() {
        return Err(ScramError::Proof);
    }
    let client_key: Vec<u8> = proof
        .iter()
        .zip(&client_signature)
        .map(|(p, s)| p ^ s)
        .collect();
    let stored_key = digest::digest(hash.digest, &client_key);
    if !constant_time_eq(stored_key.as_ref(), &credential.stored_key) {
        return Err(ScramError::Proof);
    }
    let server_signature = hash.hmac(&credential.server_key, auth_message.as_bytes());
    Ok(format!("v={}", BASE64.encode(server_signature)))
}

/// RFC 5802's `printable` without `,`.
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Decodes a `saslname`: `,` and `=` travel as `=2C` and `=3D`, and any
/// other `=` is an error (RFC 5802 section 5.1).
fn saslname(encoded: &str) -> Result<String, ScramError> {
    let mut name = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('=') {
        name.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3);
        match escape {
            Some("=2C") => name.push(','),
            Some("=3D") => name.push('='),
            _ => return Err(ScramError::Malformed("saslname escape")),
        }
        rest = &rest[at + 3..];
    }
    name.push_str(rest);
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil".
    const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                                p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

    fn sha256() -> Hash {
        Hash::of(SaslMechanism::ScramSha256).unwrap()
    }

    fn rfc_credentials() -> BTreeMap<String, Credential> {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let credential =
            Credential::derive(sha256(), "pencil", salt, NonZeroU32::new(4096).unwrap());
        BTreeMap::from([("user".to_owned(), credential)])
    }

    fn rfc_pending() -> Pending {
        client_first(CLIENT_FIRST.as_bytes(), &rfc_credentials(), SERVER_NONCE).unwrap()
    }

    #[test]
    fn the_rfc_7677_exchange_gives_the_rfc_server_first_and_server_final() {
        let pending = rfc_pending();
        assert_eq!(pending.server_first, SERVER_FIRST);
        assert_eq!(pending.gs2_header, "n,,");
        assert_eq!(pending.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            client_final(sha256(), &pending, CLIENT_FINAL.as_bytes()).as_deref(),
            Ok(SERVER_FINAL)
        );
    }

    #[test]
    fn a_proof_from_the_wrong_password_is_refused() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let other = Credential::derive(sha256(), "pencil2", salt, NonZeroU32::new(4096).unwrap());
        let credentials = BTreeMap::from([("user".to_owned(), other)]);
        let pending = client_first(CLIENT_FIRST.as_bytes(), &credentials, SERVER_NONCE).unwrap();
        assert_eq!(
            client_final(sha256(), &pending, CLIENT_FINAL.as_bytes()),
            Err(ScramError::Proof)
        );
    }

    #[test]
    fn a_tampered_client_final_is_refused() {
        let pending = rfc_pending();
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let cases = [
            // One bit of the proof flipped.
            (
                format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU="),
                ScramError::Proof,
            ),
            // A proof of the wrong length.
            (format!("c=biws,r={nonce},p=AAAA"), ScramError::Proof),
            (format!("c=biws,r={nonce}x,{proof}"), ScramError::Nonce),
            (
                format!("c=biws,r=rOprNGfwEbeRWgbNEkqO,{proof}"),
                ScramError::Nonce,
            ),
            (
                format!("c=eSws,r={nonce},{proof}"),
                ScramError::BindingMismatch,
            ),
            (
                format!("c=biws,r={nonce}"),
                ScramError::Malformed("client proof"),
            ),
            (
                format!("c=biws,r={nonce},p=!!"),
                ScramError::Malformed("client proof"),
            ),
            (
                format!("r={nonce},{proof}"),
                ScramError::Malformed("channel binding"),
            ),
            (
                "c=biws,p=".to_owned(),
                ScramError::Malformed("client proof"),
            ),
        ];
        for (message, expected) in cases {
            assert_eq!(
                client_final(sha256(), &pending, message.as_bytes()),
                Err(expected),
                "{message}"
            );
        }
    }

    /// The client's side of RFC 5802 section 3, to make proofs for messages
    /// the RFC has no example of.
    fn client_proof(hash: Hash, password: &str, salt: &[u8], auth_message: &str) -> String {
        let mut salted = vec![0u8; hash.digest.output_len()];
        pbkdf2::derive(
            hash.pbkdf2,
            NonZeroU32::new(ITERATIONS).unwrap(),
            salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = digest::digest(hash.digest, &client_key);
        let signature = hash.hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        BASE64.encode(proof)
    }

    #[test]
    fn a_nonce_repeating_the_client_part_in_front_is_accepted_as_kafka_does() {
        // librdkafka 2.0's client-final: its nonce, then the whole nonce again.
        let pending = rfc_pending();
        let without_proof = format!("c=biws,r=rOprNGfwEbeRWgbNEkqO{}", pending.nonce);
        let auth_message = format!(
            "{},{},{without_proof}",
            pending.client_first_bare, pending.server_first
        );
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let proof = client_proof(sha256(), "pencil", &salt, &auth_message);
        let server_final = client_final(
            sha256(),
            &pending,
            format!("{without_proof},p={proof}").as_bytes(),
        )
        .unwrap();
        assert!(server_final.starts_with("v="), "{server_final}");
        // The helper agrees with the RFC's own proof.
        let rfc_auth = format!(
            "n=user,r=rOprNGfwEbeRWgbNEkqO,{SERVER_FIRST},{}",
            CLIENT_FINAL.rsplit_once(",p=").unwrap().0
        );
        assert_eq!(
            format!("p={}", client_proof(sha256(), "pencil", &salt, &rfc_auth)),
            CLIENT_FINAL.rsplit_once(',').unwrap().1
        );
    }

    #[test]
    fn client_first_is_validated() {
        let credentials = rfc_credentials();
        let cases: &[(&str, ScramError)] = &[
            ("p=tls-unique,,n=user,r=abc", ScramError::ChannelBinding),
            ("x,,n=user,r=abc", ScramError::Malformed("gs2 header")),
            ("n,,n=user", ScramError::Malformed("nonce")),
            ("n,,n=user,r=", ScramError::Malformed("nonce")),
            ("n,,n=user,r=a\x7fb", ScramError::Malformed("nonce")),
            ("n,,r=abc", ScramError::Malformed("username")),
            ("n,,n=,r=abc", ScramError::Malformed("username")),
            ("n,,m=ext,n=user,r=abc", ScramError::Extension("m".into())),
            (
                "n,,n=user,r=abc,tokenauth=true",
                ScramError::Extension("tokenauth".into()),
            ),
            ("n,a=admin,n=user,r=abc", ScramError::Authzid),
            ("n,admin,n=user,r=abc", ScramError::Malformed("authzid")),
            ("n,,n=nobody,r=abc", ScramError::UnknownUser),
            ("n,,n=us=er,r=abc", ScramError::Malformed("saslname escape")),
            ("n,n=user,r=abc", ScramError::Malformed("authzid")),
            ("n,,", ScramError::Malformed("username")),
            ("", ScramError::Malformed("client-first")),
        ];
        for (message, expected) in cases {
            assert_eq!(
                client_first(message.as_bytes(), &credentials, SERVER_NONCE)
                    .err()
                    .as_ref(),
                Some(expected),
                "{message}"
            );
        }
        assert_eq!(
            client_first(b"n,,n=\xff,r=abc", &credentials, SERVER_NONCE).err(),
            Some(ScramError::Malformed("client-first"))
        );
        // "y" and an authzid equal to the user are accepted, extensions ignored.
        let pending = client_first(b"y,a=user,n=user,r=abc,x=1", &credentials, "S").unwrap();
        assert_eq!(pending.gs2_header, "y,a=user,");
        assert!(pending.server_first.starts_with("r=abcS,s="));
    }

    #[test]
    fn saslnames_unescape_comma_and_equals_only() {
        assert_eq!(saslname("a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        assert_eq!(saslname("=3D=3D").as_deref(), Ok("=="));
        assert_eq!(saslname("plain").as_deref(), Ok("plain"));
        for bad in ["a=", "a=2", "a=2c", "a=41", "=", "a=3Dx=ZZ"] {
            assert!(saslname(bad).is_err(), "{bad}");
        }
        // A name with both escapes finds its credential.
        let salt = vec![1; 16];
        let credential = Credential::derive(sha256(), "pw", salt, NonZeroU32::new(4096).unwrap());
        let credentials = BTreeMap::from([("a,b=c".to_owned(), credential)]);
        let pending = client_first(b"n,,n=a=2Cb=3Dc,r=xyz", &credentials, "S").unwrap();
        assert_eq!(pending.user, "a,b=c");
    }

    #[test]
    fn the_exchange_runs_once_with_random_nonces_and_salts() {
        let random = ring::rand::SystemRandom::new();
        let hash = Hash::of(SaslMechanism::ScramSha512).unwrap();
        let credential = Credential::generate(hash, "secret", &random).unwrap();
        assert_eq!(credential.salt.len(), SALT_LEN);
        assert_eq!(credential.iterations, ITERATIONS);
        let credentials = BTreeMap::from([("u".to_owned(), credential)]);
        let mut exchange = Exchange::new(hash);
        let Ok(Step::Challenge(server_first)) =
            exchange.step(b"n,,n=u,r=cn", &credentials, &random)
        else {
            panic!("no challenge")
        };
        assert!(server_first.starts_with("r=cn"), "{server_first}");
        // Garbage as client-final ends the exchange; nothing more is accepted.
        assert!(exchange.step(b"junk", &credentials, &random).is_err());
        assert_eq!(
            exchange.step(b"n,,n=u,r=cn", &credentials, &random),
            Err(ScramError::State)
        );
    }
}
