//! ApiVersions: which APIs this broker serves, at which versions.
//!
//! The ranges are what this broker implements, capped by what the codec
//! knows. Produce starts at 3 and Fetch at 4 because older versions carry
//! pre-v2 message formats, which Kafka 4 no longer accepts either.
//!
//! SaslHandshake and SaslAuthenticate are listed only when connections must
//! authenticate: they are served by the connection's SASL session
//! (`crate::security::sasl`), and a PLAINTEXT listener has none.

use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::{ApiKey, ErrorCode, VersionRange};

use crate::KafkaRelease;

const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 0, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 8),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::EndTxn, 0, 4),
];

/// Served only with SASL on: SaslHandshake v0 (bare tokens after it) and
/// v1 (tokens in SaslAuthenticate), SaslAuthenticate v0..v2 (KIP-152).
const SASL: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
];

/// The versions of `api` this broker serves, if any; `sasl` says whether
/// connections authenticate, `release` which Kafka release's versions to
/// offer (of those implemented).
pub(crate) fn supported_versions(
    api: ApiKey,
    sasl: bool,
    release: Option<KafkaRelease>,
) -> Option<VersionRange> {
    let table = SUPPORTED.iter().chain(if sasl { SASL } else { &[] });
    let &(_, min, max) = table.clone().find(|(key, _, _)| *key == api)?;
    let codec = api.valid_versions();
    let (mut min, mut max) = (min.max(codec.min), max.min(codec.max));
    if let Some(release) = release {
        let offered = release.versions(api)?;
        (min, max) = (min.max(offered.min), max.min(offered.max));
    }
    (min <= max).then_some(VersionRange { min, max })
}

/// The ApiVersions response body.
pub(crate) fn handle(
    error: ErrorCode,
    sasl: bool,
    release: Option<KafkaRelease>,
) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code: error.code(),
        api_keys: SUPPORTED
            .iter()
            .chain(if sasl { SASL } else { &[] })
            .filter_map(|&(key, _, _)| {
                let range = supported_versions(key, sasl, release)?;
                Some(ApiVersion {
                    api_key: key as i16,
                    min_version: range.min,
                    max_version: range.max,
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    }
}

/// The answer to an ApiVersions request of a version this broker does not
/// know: UNSUPPORTED_VERSION with the supported ranges, encoded at v0 so
/// any client can read it and retry at a version it shares (KIP-511).
pub(crate) fn unsupported_version_response(
    sasl: bool,
    release: Option<KafkaRelease>,
) -> ApiVersionsResponse {
    handle(ErrorCode::UnsupportedVersion, sasl, release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_within_the_codec() {
        for &(key, _, _) in SUPPORTED.iter().chain(SASL) {
            let ours = supported_versions(key, true, None).unwrap();
            let codec = key.valid_versions();
            assert!(ours.min <= ours.max, "{key:?}");
            assert!(
                codec.contains(ours.min) && codec.contains(ours.max),
                "{key:?}"
            );
        }
        assert!(supported_versions(ApiKey::LeaderAndIsr, true, None).is_none());
        assert!(supported_versions(ApiKey::SaslHandshake, false, None).is_none());
        assert_eq!(
            handle(ErrorCode::None, true, None).api_keys.len(),
            SUPPORTED.len() + 2
        );
    }

    #[test]
    fn a_release_offers_its_own_versions_of_what_is_implemented() {
        let fetch = |r| supported_versions(ApiKey::Fetch, false, r);
        assert_eq!(
            fetch(Some(KafkaRelease::V2_8)).map(|v| (v.min, v.max)),
            Some((4, 12))
        );
        assert_eq!(fetch(Some(KafkaRelease::V3_5)).map(|v| v.max), Some(15));
        assert_eq!(fetch(None).map(|v| v.max), Some(17));
        let produce = supported_versions(ApiKey::Produce, false, Some(KafkaRelease::V2_8));
        assert_eq!(produce.map(|v| (v.min, v.max)), Some((3, 9)));
        // Every release offers the APIs a client needs to start.
        for release in KafkaRelease::ALL {
            for api in [
                ApiKey::ApiVersions,
                ApiKey::Metadata,
                ApiKey::Produce,
                ApiKey::Fetch,
            ] {
                assert!(
                    supported_versions(api, false, Some(release)).is_some(),
                    "{release} {api:?}"
                );
            }
        }
    }
}
