//! A client's view: the first two bytes pick an API and a version, the rest
//! is a response body from the network. Decoding must never panic, and what
//! decodes must re-encode to stable bytes.
#![no_main]

use bytes::{Bytes, BytesMut};
use kafka_protocol::ApiKey;
use kafka_protocol::messages::ResponseKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [key_byte, version_byte, rest @ ..] = data else {
        return;
    };
    let api = ApiKey::ALL[usize::from(*key_byte) % ApiKey::ALL.len()];
    let range = api.valid_versions();
    let span = (range.max - range.min + 1) as u8;
    let version = range.min + i16::from(version_byte % span);
    let mut input = Bytes::copy_from_slice(rest);
    if let Ok(response) = ResponseKind::decode(api, &mut input, version) {
        let mut out = BytesMut::new();
        if response.encode(&mut out, version).is_ok() {
            let first = out.freeze();
            let again = ResponseKind::decode(api, &mut first.clone(), version)
                .expect("re-encoded response decodes");
            // Compared as bytes: float64 fields may hold NaN, which is not
            // equal to itself but must survive bit for bit.
            let mut second = BytesMut::new();
            again
                .encode(&mut second, version)
                .expect("a decoded response re-encodes");
            assert_eq!(second.freeze(), first);
        }
    }
});
