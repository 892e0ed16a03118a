//! An entry point for `cargo fuzz` (compiled only under `--cfg fuzzing`):
//! the SASL exchange of one connection, driven by arbitrary bytes, without
//! sockets.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};

use super::SaslMechanism;
use super::sasl::{SaslServer, Session, Verdict};
use crate::SaslSettings;

fn server() -> Arc<SaslServer> {
    static SERVER: OnceLock<Arc<SaslServer>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let settings = SaslSettings {
                mechanisms: SaslMechanism::ALL.to_vec(),
                users: BTreeMap::from([("alice".to_owned(), "alice-secret".to_owned())]),
                ..Default::default()
            };
            Arc::new(SaslServer::new(&settings).expect("fuzzing SASL settings"))
        })
        .clone()
}

/// Runs one connection's SASL exchange. The first byte picks the mechanism
/// (bits 0-1), SaslHandshake v0 or v1 (bit 2), and whether a well-formed
/// SCRAM client-first for a known user comes first (bit 3), so that the
/// fuzzer reaches the client-final parser; the rest, split at 0xFF, are
/// the client's tokens. Panics only if the session lets the client in
/// without the password.
pub fn sasl_exchange(data: &[u8]) {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mechanism = SaslMechanism::ALL[usize::from(control & 3) % 3];
    let legacy = control & 4 != 0;
    let mut session = Session::new(Some(server()));
    let request = SaslHandshakeRequest {
        mechanism: mechanism.name().to_owned(),
    };
    let (_, verdict) = session.handshake(&request, if legacy { 0 } else { 1 });
    if verdict != Verdict::Continue {
        return;
    }
    let mut tokens: Vec<Vec<u8>> = rest.split(|&b| b == 0xFF).map(<[u8]>::to_vec).collect();
    if control & 8 != 0 {
        tokens.insert(0, b"n,,n=alice,r=fuzz-nonce".to_vec());
    }
    for token in tokens.iter().take(8) {
        if legacy {
            if session.raw_token(token).is_err() {
                return;
            }
        } else {
            let request = SaslAuthenticateRequest {
                auth_bytes: Bytes::copy_from_slice(token),
                ..Default::default()
            };
            let (_, verdict) = session.authenticate(&request);
            if verdict != Verdict::Continue {
                return;
            }
        }
        if session.is_authenticated() {
            // Only PLAIN can be passed by a fuzzer, and only with the password.
            let plain_ok =
                mechanism == SaslMechanism::Plain && token.ends_with(b"\0alice\0alice-secret");
            assert!(plain_ok, "authenticated by {mechanism} tokens {tokens:?}");
            return;
        }
    }
}
