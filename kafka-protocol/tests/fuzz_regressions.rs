//! Inputs the fuzz targets (kafka-protocol/fuzz) found, kept so they stay fixed.

use bytes::{Bytes, BytesMut};
use kafka_protocol::DecodeError;
use kafka_protocol::frame::{FrameDecoder, decode_request};
use kafka_protocol::messages::{ApiKey, ResponseKind};

fn assert_out_of_order_tags(result: Result<impl std::fmt::Debug, DecodeError>) {
    match result {
        Err(DecodeError::Malformed {
            what: "tagged fields",
            reason,
        }) => {
            assert!(reason.contains("follows tag"), "reason: {reason}");
        }
        other => panic!("expected a malformed tagged-fields error, got {other:?}"),
    }
}

/// request_frame found a FetchRequest whose tagged fields came as tag 3 then
/// tag 1. It decoded, but re-encoding sorted the tags, so the value changed
/// on a round trip. Tags must be strictly ascending: the request is malformed.
#[test]
fn a_request_with_out_of_order_tags_is_malformed() {
    let input = include_bytes!("fuzz_regressions/request_frame_unordered_tags.bin");
    let mut buf = BytesMut::from(&input[..]);
    let decoder = FrameDecoder::new(1 << 20);
    let mut malformed = 0;
    while let Ok(Some(frame)) = decoder.decode(&mut buf) {
        if let Err(DecodeError::Malformed { .. }) = decode_request(frame) {
            malformed += 1;
        }
    }
    assert!(
        malformed >= 1,
        "the fuzzer's frame should be refused as malformed"
    );
}

/// response_decode found an UpdateRaftVoterResponse with unknown tag 11
/// repeated and tag 120 in between. Repeated or descending tags are malformed.
#[test]
fn a_response_with_repeated_tags_is_malformed() {
    let input = include_bytes!("fuzz_regressions/response_unordered_tags.bin");
    let [key_byte, version_byte, rest @ ..] = &input[..] else {
        panic!("the input has the two selector bytes");
    };
    let api = ApiKey::ALL[usize::from(*key_byte) % ApiKey::ALL.len()];
    let range = api.valid_versions();
    let version = range.min + i16::from(version_byte % (range.max - range.min + 1) as u8);
    assert_eq!(api, ApiKey::UpdateRaftVoter);
    assert_out_of_order_tags(ResponseKind::decode(
        api,
        &mut Bytes::copy_from_slice(rest),
        version,
    ));
}

#[test]
fn a_repeated_known_tag_is_malformed_too() {
    // ApiVersionsResponse v3: error 0, no keys, throttle 0, then two tagged
    // fields both with tag 1 (FinalizedFeaturesEpoch).
    let body: &[u8] = &[
        0, 0, // error code
        1, // compact array: 0 keys
        0, 0, 0, 0, // throttle time
        2, // 2 tagged fields
        1, 8, 0, 0, 0, 0, 0, 0, 0, 5, // tag 1, size 8, epoch 5
        1, 8, 0, 0, 0, 0, 0, 0, 0, 6, // tag 1 again
    ];
    assert_out_of_order_tags(ResponseKind::decode(
        ApiKey::ApiVersions,
        &mut Bytes::from_static(body),
        3,
    ));
}
