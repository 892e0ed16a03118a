//! A broker's view: arbitrary bytes from a socket go through the frame
//! decoder and the request decoder (header + body of any API and version).
//! Whatever decodes must re-encode to stable bytes.
#![no_main]

use bytes::BytesMut;
use kafka_protocol::frame::{FrameDecoder, decode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let decoder = FrameDecoder::new(1 << 20);
    // Bounded: every successful step consumes at least the 4-byte prefix.
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        if let Ok((header, body)) = decode_request(frame) {
            let version = header.request_api_version;
            let mut out = BytesMut::new();
            if body.encode(&mut out, version).is_ok() {
                let first = out.freeze();
                let again = kafka_protocol::messages::RequestKind::decode(
                    body.api_key(),
                    &mut first.clone(),
                    version,
                )
                .expect("re-encoded request decodes");
                // Compared as bytes: float64 fields may hold NaN.
                let mut second = BytesMut::new();
                again
                    .encode(&mut second, version)
                    .expect("a decoded request re-encodes");
                assert_eq!(second.freeze(), first);
            }
        }
    }
});
