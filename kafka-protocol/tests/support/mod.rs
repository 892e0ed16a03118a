//! Helpers shared by the fixture tests: a capture listener that speaks just
//! enough Kafka for real clients to send their requests, and a small
//! independent record-batch reader used to check the values inside captured
//! Produce requests.

pub mod batch;
pub mod capture;

use kafka_protocol::ApiKey;

/// The topic id the capture listener gives `name` in Metadata responses, so
/// that clients using topic ids (Fetch v13+) can be checked against it.
pub fn topic_id(name: &str) -> uuid::Uuid {
    // FNV-1a, twice with different offsets: stable across runs and platforms.
    fn fnv(seed: u64, data: &[u8]) -> u64 {
        data.iter().fold(seed, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
    let high = fnv(0xcbf2_9ce4_8422_2325, name.as_bytes());
    let low = fnv(0x84222325_cbf29ce4, name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    // Never the all-zero id, which means "no id" on the wire.
    bytes[15] |= 1;
    uuid::Uuid::from_bytes(bytes)
}

/// `ListOffsets` -> `list_offsets`: how fixture files name APIs.
pub fn snake_case(api: ApiKey) -> String {
    let mut out = String::new();
    for (i, c) in api.name().chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
