//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677),
//! as Kafka runs it inside SaslAuthenticate: client-first, server-first,
//! client-final, server-final. No channel binding (`n,,`), as Kafka.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};

/// The fewest iterations accepted: Kafka's own minimum for SCRAM
/// credentials. Fewer would make a stolen exchange cheap to brute-force.
const MIN_ITERATIONS: u32 = 4096;
/// The most iterations accepted: a hostile server must not make the client
/// spend minutes in PBKDF2.
const MAX_ITERATIONS: u32 = 1 << 20;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Self::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Self::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha256 => &digest::SHA256,
            Self::Sha512 => &digest::SHA512,
        }
    }

    fn len(self) -> usize {
        self.digest().output_len()
    }
}

/// Why an exchange failed on the client's side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ScramError {
    /// The server's message does not follow RFC 5802.
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    /// The server sent `e=...`.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The server's nonce does not extend ours: not this exchange.
    #[error("the server's nonce does not start with the client's")]
    NonceMismatch,
    /// Too few or too many PBKDF2 iterations.
    #[error("{0} iterations is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
    /// The server could not prove it knows the credentials.
    #[error("the server's signature is wrong: it does not know the credentials")]
    BadServerSignature,
}

/// One SCRAM exchange, from the client's first message to checking the
/// server's last.
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    /// Set by `client_final`: what the server's signature must be.
    expected_server_signature: Option<Vec<u8>>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No password, no keys.
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// `,` and `=` in a SCRAM name (RFC 5802, section 5.1).
fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    /// Starts an exchange for `username` with a client nonce; `nonce` must be
    /// printable ASCII without `,` (the caller makes it from random bytes).
    pub(crate) fn new(hash: ScramHash, username: &str, password: &str, nonce: String) -> Self {
        let client_first_bare = format!("n={},r={nonce}", escape_name(username));
        Self {
            hash,
            password: password.as_bytes().to_vec(),
            nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    /// A fresh nonce: 32 random bytes, base64 (printable, no `,`).
    pub(crate) fn random_nonce() -> Result<String, ring::error::Unspecified> {
        let bytes: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())?.expose();
        Ok(BASE64.encode(bytes))
    }

    /// The client-first message.
    pub(crate) fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Reads server-first and answers with client-final, which proves the
    /// client knows the password without sending it.
    pub(crate) fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError::Malformed("server-first is not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("e", reason)) => return Err(ScramError::Refused(reason.to_owned())),
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                // Extensions the client does not know are ignored, as the RFC
                // allows for those after `i`; a mandatory `m` is not.
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(salt.ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let hash = self.hash;
        let mut salted = vec![0u8; hash.len()];
        let rounds = std::num::NonZeroU32::new(iterations).ok_or(ScramError::Iterations(0))?;
        pbkdf2::derive(hash.pbkdf2(), rounds, &salt, &self.password, &mut salted);
        let salted = hmac::Key::new(hash.hmac(), &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(hash.digest(), client_key.as_ref());
        // "biws" is base64 of the gs2 header "n,,".
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(hash.hmac(), stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hmac::sign(&salted, b"Server Key");
        let server_signature = hmac::sign(
            &hmac::Key::new(hash.hmac(), server_key.as_ref()),
            auth_message.as_bytes(),
        );
        self.expected_server_signature = Some(server_signature.as_ref().to_vec());
        Ok(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes())
    }

    /// Checks server-final: the server proves it holds the credentials too.
    pub(crate) fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let server_final = std::str::from_utf8(server_final)
            .map_err(|_| ScramError::Malformed("server-final is not UTF-8"))?;
        let first = server_final.split(',').next().unwrap_or_default();
        match first.split_once('=') {
            Some(("e", reason)) => Err(ScramError::Refused(reason.to_owned())),
            Some(("v", signature)) => {
                let signature = BASE64
                    .decode(signature)
                    .map_err(|_| ScramError::Malformed("signature is not base64"))?;
                let expected = self
                    .expected_server_signature
                    .as_deref()
                    .ok_or(ScramError::Malformed("server-final before server-first"))?;
                // The server's own proof, not a secret: a plain compare.
                if expected == signature.as_slice() {
                    Ok(())
                } else {
                    Err(ScramError::BadServerSignature)
                }
            }
            _ => Err(ScramError::Malformed("server-final has no verifier")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the SCRAM-SHA-256 example exchange.
    #[test]
    fn the_rfc_7677_exchange_is_reproduced() {
        let mut client = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(client.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = client.client_final(server_first).expect("client-final");
        assert_eq!(
            String::from_utf8(client_final).expect("utf-8"),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            client.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert_eq!(
            client.verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn names_are_escaped() {
        let client = ScramClient::new(ScramHash::Sha512, "a=b,c", "p", "xyz".into());
        assert_eq!(client.client_first(), b"n,,n=a=3Db=2Cc,r=xyz");
    }

    #[test]
    fn hostile_or_broken_server_messages_are_refused() {
        let attempt = |server_first: &[u8]| {
            ScramClient::new(ScramHash::Sha256, "u", "p", "abc".into()).client_final(server_first)
        };
        assert_eq!(
            attempt(b"r=xyzdef,s=c2FsdA==,i=4096"),
            Err(ScramError::NonceMismatch)
        );
        assert_eq!(
            attempt(b"r=abc,s=c2FsdA==,i=4096"),
            Err(ScramError::NonceMismatch),
            "the server must add its own nonce"
        );
        assert_eq!(
            attempt(b"r=abcdef,s=c2FsdA==,i=1"),
            Err(ScramError::Iterations(1))
        );
        assert_eq!(
            attempt(b"r=abcdef,s=c2FsdA==,i=4000000000"),
            Err(ScramError::Iterations(4_000_000_000))
        );
        assert_eq!(
            attempt(b"r=abcdef,s=!!,i=4096"),
            Err(ScramError::Malformed("salt is not base64"))
        );
        assert_eq!(
            attempt(b"e=unknown-user"),
            Err(ScramError::Refused("unknown-user".into()))
        );
        assert_eq!(
            attempt(b"s=c2FsdA==,i=4096"),
            Err(ScramError::Malformed("no nonce"))
        );
        assert_eq!(
            attempt(&[0xff, 0xfe]),
            Err(ScramError::Malformed("server-first is not UTF-8"))
        );
        let client = ScramClient::new(ScramHash::Sha256, "u", "p", "abc".into());
        assert_eq!(
            client.verify_server_final(b"v=AAAA"),
            Err(ScramError::Malformed("server-final before server-first"))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever the server sends, the client answers or refuses; it
        /// never panics and never accepts a signature it did not derive.
        #[test]
        fn any_server_message_is_answered_or_refused(
            server_first in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            server_final in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            extra in "[ -~]{0,40}",
            salt in "[A-Za-z0-9+/]{0,24}={0,2}",
            iterations in 4096u32..4200,
        ) {
            let mut client = ScramClient::new(ScramHash::Sha256, "u", "p", "abc".into());
            let _ = client.client_final(&server_first);
            // Well formed but for its fields' contents.
            let shaped = format!("r=abc{extra},s={salt},i={iterations}");
            let mut client = ScramClient::new(ScramHash::Sha512, "u", "p", "abc".into());
            if client.client_final(shaped.as_bytes()).is_ok() {
                proptest::prop_assert!(client.verify_server_final(&server_final).is_err());
            }
        }
    }

    #[test]
    fn random_nonces_differ_and_hold_no_comma() {
        let a = ScramClient::random_nonce().expect("random");
        let b = ScramClient::random_nonce().expect("random");
        assert_ne!(a, b);
        assert!(!a.contains(',') && a.len() >= 40);
    }
}
