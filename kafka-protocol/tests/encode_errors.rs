//! What the generated encoders refuse to write, and what they drop on purpose.
//!
//! Like the Java client, encoding never loses data silently: a value that the
//! chosen version cannot carry is an `EncodeError`, unless the schema marks
//! the field `ignorable` (then the sender accepts the loss, e.g. a fetch
//! `maxBytes` hint an old broker would not understand anyway).

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, JoinGroupRequest, ListOffsetsRequest, MetadataRequest, OffsetFetchRequest,
    ProduceRequest,
};
use kafka_protocol::primitives::RawTaggedField;
use kafka_protocol::{Encode, EncodeError, Message};

fn field_not_in_version(field: &'static str, version: i16) -> Result<Bytes, EncodeError> {
    Err(EncodeError::FieldNotInVersion { field, version })
}

fn null_not_allowed(field: &'static str, version: i16) -> Result<Bytes, EncodeError> {
    Err(EncodeError::NullNotAllowed { field, version })
}

/// Encodes, decodes and returns the decoded value, checking that decoding
/// consumed exactly what was written.
fn round_trip<M: Message>(message: &M, version: i16) -> M {
    let bytes = message
        .to_bytes(version)
        .unwrap_or_else(|e| panic!("{} v{version} should encode: {e}", M::NAME));
    let mut input = bytes.clone();
    let decoded = M::decode(&mut input, version)
        .unwrap_or_else(|e| panic!("{} v{version} should decode: {e}", M::NAME));
    assert!(
        input.is_empty(),
        "{} v{version}: {} bytes left after decode",
        M::NAME,
        input.len()
    );
    decoded
}

fn fetch_request(partition: FetchPartition) -> FetchRequest {
    FetchRequest {
        max_wait_ms: 500,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic: "orders".into(),
            partitions: vec![partition],
            ..Default::default()
        }],
        ..Default::default()
    }
}

// --- FieldNotInVersion -------------------------------------------------------

#[test]
fn transactional_id_before_produce_v3_is_an_error() {
    // Transactions (KIP-98) arrived with ProduceRequest v3: an older request
    // has no place for the id, and the broker would take the write as
    // non-transactional.
    let request = ProduceRequest {
        transactional_id: Some("payments-tx".into()),
        acks: -1,
        timeout_ms: 30_000,
        ..Default::default()
    };
    for version in 0..=2 {
        assert_eq!(
            request.to_bytes(version),
            field_not_in_version("ProduceRequest.TransactionalId", version),
            "v{version}"
        );
    }
    assert_eq!(round_trip(&request, 3), request);
    // The default (null) is what an old version means, so it is no error.
    let plain = ProduceRequest {
        transactional_id: None,
        ..request
    };
    assert_eq!(round_trip(&plain, 0), plain);
}

#[test]
fn group_instance_id_before_join_group_v5_is_an_error() {
    // Static membership (KIP-345) needs v5; without it the member would
    // silently become dynamic and trigger rebalances on every restart.
    let request = JoinGroupRequest {
        group_id: "billing".into(),
        session_timeout_ms: 45_000,
        group_instance_id: Some("billing-7".into()),
        protocol_type: "consumer".into(),
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(4),
        field_not_in_version("JoinGroupRequest.GroupInstanceId", 4)
    );
    assert_eq!(
        round_trip(&request, 5).group_instance_id.as_deref(),
        Some("billing-7")
    );
}

#[test]
fn a_non_default_false_is_as_much_an_error_as_a_non_zero() {
    // allowAutoTopicCreation defaults to true: brokers before v4 always
    // auto-create, so asking for `false` at v3 cannot be honoured.
    let request = MetadataRequest {
        topics: Some(vec![]),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(3),
        field_not_in_version("MetadataRequest.AllowAutoTopicCreation", 3)
    );
    assert!(!round_trip(&request, 4).allow_auto_topic_creation);
}

#[test]
fn a_field_in_a_nested_struct_is_checked_too() {
    // lastFetchedEpoch (KIP-320, fetch v12) lives inside FetchPartition; the
    // error must surface through the enclosing request.
    let request = fetch_request(FetchPartition {
        partition: 0,
        fetch_offset: 42,
        last_fetched_epoch: 5,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    });
    assert_eq!(
        request.to_bytes(11),
        field_not_in_version("FetchPartition.LastFetchedEpoch", 11)
    );
    assert_eq!(
        round_trip(&request, 12).topics[0].partitions[0].last_fetched_epoch,
        5
    );
}

#[test]
fn a_field_removed_in_later_versions_is_an_error_there() {
    // maxNumOffsets exists only in ListOffsets v0 (default 1).
    let request = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "orders".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                max_num_offsets: 10,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(1),
        field_not_in_version("ListOffsetsPartition.MaxNumOffsets", 1)
    );
    assert_eq!(
        round_trip(&request, 0).topics[0].partitions[0].max_num_offsets,
        10
    );
}

#[test]
fn a_tagged_field_before_its_version_is_an_error() {
    // replicaState is tagged field 1 from fetch v15 (KIP-903), in the same
    // flexible encoding as v12-14: it must not be dropped at v14.
    let request = FetchRequest {
        replica_state: ReplicaState {
            replica_id: 3,
            replica_epoch: 9,
            ..Default::default()
        },
        ..fetch_request(FetchPartition::default())
    };
    assert_eq!(
        request.to_bytes(14),
        field_not_in_version("FetchRequest.ReplicaState", 14)
    );
    assert_eq!(round_trip(&request, 15).replica_state.replica_id, 3);
}

// --- NullNotAllowed ----------------------------------------------------------
//
// A field that is never nullable is not an `Option` in the generated types,
// so a null cannot even be written down. The check is reachable only for
// fields that became nullable in a later version than they appeared.

#[test]
fn null_metadata_topics_at_v0_is_an_error() {
    // v0 has no null array: an empty list meant "all topics" there, and null
    // takes that meaning from v1 on.
    let request = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(0),
        null_not_allowed("MetadataRequest.Topics", 0)
    );
    assert_eq!(round_trip(&request, 1).topics, None);
}

#[test]
fn null_topic_name_before_metadata_v10_is_an_error() {
    // Topic names became nullable with topic ids (KIP-516, v10).
    let request = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: None,
            ..Default::default()
        }]),
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(9),
        null_not_allowed("MetadataRequestTopic.Name", 9)
    );
    let decoded = round_trip(&request, 10);
    assert_eq!(decoded.topics.map(|t| t[0].name.clone()), Some(None));
}

#[test]
fn null_offset_fetch_topics_before_v2_is_an_error() {
    // "All partitions of the group" (null topics) needs OffsetFetch v2.
    let request = OffsetFetchRequest {
        group_id: "billing".into(),
        topics: None,
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(1),
        null_not_allowed("OffsetFetchRequest.Topics", 1)
    );
    assert_eq!(round_trip(&request, 2).topics, None);
}

// --- Unknown tagged fields ---------------------------------------------------

fn unknown_tag() -> RawTaggedField {
    RawTaggedField {
        tag: 10_000,
        data: Bytes::from_static(b"\x01\x02"),
    }
}

#[test]
fn unknown_tagged_fields_at_a_non_flexible_version_are_an_error() {
    // Produce is flexible (KIP-482) from v9; v8 has no tagged-field section
    // to carry them.
    let request = ProduceRequest {
        acks: 1,
        unknown_tagged_fields: vec![unknown_tag()],
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(8),
        field_not_in_version("ProduceRequest.unknown_tagged_fields", 8)
    );
    assert_eq!(
        round_trip(&request, 9).unknown_tagged_fields,
        vec![unknown_tag()]
    );
}

#[test]
fn unknown_tagged_fields_in_a_nested_struct_are_an_error_too() {
    let request = ProduceRequest {
        acks: 1,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: None,
                unknown_tagged_fields: vec![unknown_tag()],
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        request.to_bytes(8),
        field_not_in_version("PartitionProduceData.unknown_tagged_fields", 8)
    );
    let decoded = round_trip(&request, 9);
    assert_eq!(
        decoded.topic_data[0].partition_data[0].unknown_tagged_fields,
        vec![unknown_tag()]
    );
}

// --- Ignorable fields --------------------------------------------------------

#[test]
fn ignorable_fields_absent_from_the_version_are_dropped() {
    // maxBytes (v3+), isolationLevel (v4+), the session (v7+) and rackId
    // (v11+) are all ignorable: a v2 fetch simply goes without them.
    let defaults = fetch_request(FetchPartition {
        partition: 2,
        fetch_offset: 100,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    });
    let with_hints = FetchRequest {
        max_bytes: 1000,
        isolation_level: 1,
        session_id: 7,
        session_epoch: 3,
        rack_id: "eu-west-1a".into(),
        ..defaults.clone()
    };
    let bytes = with_hints
        .to_bytes(2)
        .expect("ignorable fields do not fail the encode");
    assert_eq!(
        bytes,
        defaults.to_bytes(2).expect("defaults encode"),
        "the dropped fields leave no trace on the wire"
    );
    assert_eq!(round_trip(&with_hints, 2), defaults);
    // At a version that carries them they are kept.
    let v11 = round_trip(&with_hints, 11);
    assert_eq!(
        (v11.max_bytes, v11.isolation_level, v11.rack_id.as_str()),
        (1000, 1, "eu-west-1a")
    );
}

#[test]
fn ignorable_fields_in_nested_and_tagged_positions_are_dropped() {
    // currentLeaderEpoch (v9+) sits in a nested struct; clusterId is tagged
    // field 0 from v12.
    let defaults = fetch_request(FetchPartition {
        partition: 0,
        fetch_offset: 7,
        ..Default::default()
    });
    let with_hints = FetchRequest {
        cluster_id: Some("cluster-a".into()),
        topics: vec![FetchTopic {
            partitions: vec![FetchPartition {
                current_leader_epoch: 4,
                ..defaults.topics[0].partitions[0].clone()
            }],
            ..defaults.topics[0].clone()
        }],
        ..defaults.clone()
    };
    assert_eq!(round_trip(&with_hints, 8), defaults);
    assert_eq!(
        round_trip(&with_hints, 11),
        FetchRequest {
            topics: with_hints.topics.clone(),
            ..defaults.clone()
        },
        "v11 carries the leader epoch but not the cluster id"
    );
    assert_eq!(round_trip(&with_hints, 12), with_hints);
}

#[test]
fn rebalance_timeout_is_dropped_at_join_group_v0() {
    // v0 brokers use the session timeout as the rebalance timeout.
    let request = JoinGroupRequest {
        group_id: "billing".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 300_000,
        protocol_type: "consumer".into(),
        ..Default::default()
    };
    let decoded = round_trip(&request, 0);
    assert_eq!(
        decoded.rebalance_timeout_ms,
        JoinGroupRequest::default().rebalance_timeout_ms
    );
    assert_eq!(decoded.session_timeout_ms, 10_000);
    assert_eq!(round_trip(&request, 1).rebalance_timeout_ms, 300_000);
}
