//! Fetch names topics by id from v13 on (KIP-516): the broker resolves the
//! id Metadata gave, answers UNKNOWN_TOPIC_ID for an id it does not know,
//! and a topic created again under the same name gets a new id, so a
//! fetch by the old id reads nothing of the new topic.

mod support;

use bytes::Bytes;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::records::{BatchBuilder, Batches};
use kafka_broker::protocol::{ApiKey, ErrorCode};
use kafka_broker::{BrokerConfig, Cluster};
use support::RawClient;
use uuid::Uuid;

const TOPIC: &str = "by-id";

async fn produce(client: &mut RawClient, value: &[u8]) {
    let mut builder = BatchBuilder::new(1 << 16);
    builder.append(0, None, Some(value), &[]).expect("append");
    let request = RequestKind::Produce(m::ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![m::produce_request::PartitionProduceData {
                index: 0,
                records: Some(builder.finish().expect("batch")),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::Produce(r) = client.call(&request, 11).await else {
        panic!("not Produce")
    };
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}

async fn topic_id(client: &mut RawClient) -> Uuid {
    let request = RequestKind::Metadata(m::MetadataRequest {
        topics: Some(vec![m::metadata_request::MetadataRequestTopic {
            name: Some(TOPIC.into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    let ResponseKind::Metadata(r) = client.call(&request, 12).await else {
        panic!("not Metadata")
    };
    let id = r.topics[0].topic_id;
    assert!(!id.is_nil(), "Metadata v12 gives the topic's id");
    id
}

/// Fetches partition 0 from offset 0 by `id` (v13+) or by name (v12):
/// the answer's topic id, the partition's error and its values.
async fn fetch(client: &mut RawClient, id: Uuid, version: i16) -> (Uuid, i16, Vec<Bytes>) {
    let request = RequestKind::Fetch(m::FetchRequest {
        replica_id: -1,
        max_bytes: 1 << 20,
        topics: vec![m::fetch_request::FetchTopic {
            topic: if version <= 12 {
                TOPIC.into()
            } else {
                String::new()
            },
            topic_id: if version <= 12 { Uuid::nil() } else { id },
            partitions: vec![m::fetch_request::FetchPartition {
                partition: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::Fetch(r) = client.call(&request, version).await else {
        panic!("not Fetch")
    };
    assert_eq!(r.error_code, 0);
    let topic = &r.responses[0];
    let data = &topic.partitions[0];
    let mut values = Vec::new();
    for batch in Batches::new(data.records.clone().unwrap_or_default()) {
        for record in batch.expect("batch").records().expect("records") {
            values.push(record.expect("record").value.expect("value"));
        }
    }
    (topic.topic_id, data.error_code, values)
}

#[tokio::test]
async fn fetch_by_topic_id_at_every_version_the_broker_offers() {
    let cluster = Cluster::start(BrokerConfig::default())
        .await
        .expect("cluster");
    cluster.create_topic(TOPIC, 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    produce(&mut client, b"first").await;
    let id = topic_id(&mut client).await;
    let newest = ApiKey::Fetch.valid_versions().max;
    assert_eq!(
        newest, 17,
        "the codec's newest Fetch; the broker must serve it"
    );
    for version in 4..=newest {
        let (answered, error, values) = fetch(&mut client, id, version).await;
        assert_eq!(error, 0, "v{version}");
        assert_eq!(values, [Bytes::from_static(b"first")], "v{version}");
        if version >= 13 {
            assert_eq!(answered, id, "v{version} answers by id");
        }
    }
    let unknown = fetch(&mut client, Uuid::from_u128(42), 17).await;
    assert_eq!(unknown.1, ErrorCode::UnknownTopicId.code());
    assert!(unknown.2.is_empty());

    // Deleted and created again: a new id; the old one is unknown.
    let delete = RequestKind::DeleteTopics(m::DeleteTopicsRequest {
        topic_names: vec![TOPIC.into()],
        timeout_ms: 1000,
        ..Default::default()
    });
    client.call(&delete, 5).await;
    cluster.create_topic(TOPIC, 1).expect("topic again");
    let new_id = topic_id(&mut client).await;
    assert_ne!(new_id, id);
    assert_eq!(
        fetch(&mut client, id, 17).await.1,
        ErrorCode::UnknownTopicId.code()
    );
    let (_, error, values) = fetch(&mut client, new_id, 17).await;
    assert_eq!((error, values.len()), (0, 0), "the new topic is empty");
}
