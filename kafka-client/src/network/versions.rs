//! The newest version of each request this client implements.
//!
//! A request goes out at the newest version both sides offer, capped here:
//! a broker newer than this client (or a codec regenerated from newer
//! schemas) must never float a request into a version whose semantics the
//! client does not implement. Every request the client sends is listed;
//! [`Connection::version_for`](super::Connection::version_for) refuses one
//! that is not, so a new request cannot be sent without a decision here.
//!
//! A cap below the codec's newest version names its reason. The tests
//! check that every request type the client's source uses is listed, and
//! that the bundled broker at its newest release offers each listed
//! version, so the integration tests exercise exactly these versions.

use kafka_protocol::ApiKey;

/// Fetch: topic ids from v13 (KIP-516), sent when Metadata gave every
/// fetched topic an id; v15's replica state and v16/v17's leader
/// endpoints are for followers and are ignored.
pub const FETCH_MAX: i16 = 17;

/// ListOffsets: v8 and v9 add tiered-storage specs (-4, -5) the client
/// never asks for, v10 the broker-side timeout of asynchronous remote
/// lookups (KIP-1075); v7 carries every spec the client has.
pub const LIST_OFFSETS_MAX: i16 = 7;

/// OffsetFetch: v8 batches several groups in one request and v9 adds the
/// KIP-848 member epoch; the client asks for one classic group at a time,
/// which v7 carries whole.
pub const OFFSET_FETCH_MAX: i16 = 7;

/// OffsetCommit: v9 is v8 that a KIP-848 group may also use; a classic
/// member sends its generation as before.
pub const OFFSET_COMMIT_MAX: i16 = 9;

/// AddPartitionsToTxn: v4 and later batch transactions and verify only;
/// Kafka reserves them for brokers ("versions 3 and below will be
/// exclusively used by clients").
pub const ADD_PARTITIONS_TO_TXN_MAX: i16 = 3;

/// EndTxn: v5 is transactions v2 (KIP-890 part 2, an epoch bump with every
/// transaction), which the producer does not implement yet. Up to v4 the
/// only change is that the broker may answer TRANSACTION_ABORTABLE, which
/// the producer handles as abortable.
pub const END_TXN_MAX: i16 = 4;

/// Produce: v12 would declare transactions v2 (KIP-890 part 2, implicit
/// AddPartitionsToTxn); v11 only allows TRANSACTION_ABORTABLE.
pub const PRODUCE_MAX: i16 = 11;

/// Every request the client sends, with the newest version it implements.
/// Where the value is the codec's newest, the client implements all of
/// that version's semantics.
pub const CLIENT_VERSIONS: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, PRODUCE_MAX),
    (ApiKey::Fetch, FETCH_MAX),
    (ApiKey::ListOffsets, LIST_OFFSETS_MAX),
    (ApiKey::Metadata, 12),
    (ApiKey::OffsetCommit, OFFSET_COMMIT_MAX),
    (ApiKey::OffsetFetch, OFFSET_FETCH_MAX),
    (ApiKey::FindCoordinator, 6),
    (ApiKey::JoinGroup, 9),
    (ApiKey::Heartbeat, 4),
    (ApiKey::LeaveGroup, 5),
    (ApiKey::SyncGroup, 5),
    (ApiKey::DescribeGroups, 5),
    (ApiKey::ListGroups, 5),
    (ApiKey::SaslHandshake, 1),
    (ApiKey::ApiVersions, 3),
    (ApiKey::CreateTopics, 7),
    (ApiKey::DeleteTopics, 6),
    (ApiKey::DeleteRecords, 2),
    (ApiKey::InitProducerId, 5),
    (ApiKey::AddPartitionsToTxn, ADD_PARTITIONS_TO_TXN_MAX),
    (ApiKey::AddOffsetsToTxn, 4),
    (ApiKey::EndTxn, END_TXN_MAX),
    (ApiKey::TxnOffsetCommit, 4),
    (ApiKey::DescribeConfigs, 4),
    (ApiKey::SaslAuthenticate, 2),
    (ApiKey::CreatePartitions, 3),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::IncrementalAlterConfigs, 1),
    (ApiKey::OffsetDelete, 0),
];

/// The newest version of `api` the client implements, or `None` for an
/// API it never sends.
pub fn client_max(api: ApiKey) -> Option<i16> {
    CLIENT_VERSIONS
        .iter()
        .find(|(key, _)| *key == api)
        .map(|&(_, max)| max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn every_cap_is_within_the_codec() {
        for &(api, max) in CLIENT_VERSIONS {
            let codec = api.valid_versions();
            assert!(codec.contains(max), "{api:?} v{max} is not in the codec");
        }
    }

    /// Each `FooRequest` type named in the client's source is an API that
    /// is listed above (with a decision on its newest version).
    #[test]
    fn every_request_the_client_names_is_listed() {
        let mut named = std::collections::BTreeSet::new();
        let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
                    if let Some(name) = word.strip_suffix("Request")
                        && !name.is_empty()
                        && name.starts_with(|c: char| c.is_ascii_uppercase())
                    {
                        named.insert(name.to_owned());
                    }
                }
            }
        }
        assert!(files > 20, "the source tree was not found");
        let apis: Vec<ApiKey> = named
            .iter()
            .filter_map(|name| {
                (0..100)
                    .filter_map(ApiKey::from_i16)
                    .find(|k| format!("{k:?}") == *name)
            })
            .collect();
        assert!(
            apis.contains(&ApiKey::Fetch) && apis.len() > 20,
            "{named:?}"
        );
        for api in apis {
            assert!(
                client_max(api).is_some(),
                "{api:?} is sent by the client but has no entry in CLIENT_VERSIONS"
            );
        }
    }
}
