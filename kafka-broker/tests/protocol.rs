//! The broker over raw protocol: every advertised API at every advertised
//! version gets an answer, and bad input closes only the offending
//! connection.

mod support;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_broker::protocol::messages::api_versions_response::ApiVersion;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::{ApiKey, ErrorCode};
use support::RawClient;

/// A plausible request of `api` at `version`, naming an existing topic
/// where one is named (fields a version lacks are left at their defaults).
fn request(api: ApiKey, version: i16) -> Option<RequestKind> {
    let topic = "versions";
    Some(match api {
        ApiKey::Produce => RequestKind::Produce(m::ProduceRequest {
            acks: 1,
            timeout_ms: 1000,
            topic_data: vec![m::produce_request::TopicProduceData {
                name: topic.into(),
                partition_data: vec![m::produce_request::PartitionProduceData {
                    index: 0,
                    records: Some(batch()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::Fetch => RequestKind::Fetch(m::FetchRequest {
            replica_id: -1,
            max_wait_ms: 10,
            max_bytes: 1 << 20,
            topics: vec![m::fetch_request::FetchTopic {
                topic: topic.into(),
                partitions: vec![m::fetch_request::FetchPartition {
                    partition: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::ListOffsets => RequestKind::ListOffsets(m::ListOffsetsRequest {
            replica_id: -1,
            topics: vec![m::list_offsets_request::ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![m::list_offsets_request::ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: -1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::Metadata => RequestKind::Metadata(m::MetadataRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(m::OffsetCommitRequest {
            group_id: "versions-group".into(),
            generation_id_or_member_epoch: -1,
            ..Default::default()
        }),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(m::OffsetFetchRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(m::FindCoordinatorRequest {
            key: if version < 4 {
                "versions-group".into()
            } else {
                String::new()
            },
            coordinator_keys: if version >= 4 {
                vec!["versions-group".into()]
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        ApiKey::JoinGroup => RequestKind::JoinGroup(m::JoinGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(m::HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(m::LeaveGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(m::SyncGroupRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(m::DescribeGroupsRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(m::ListGroupsRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(m::ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(m::CreateTopicsRequest {
            topics: vec![m::create_topics_request::CreatableTopic {
                name: topic.into(),
                num_partitions: 1,
                replication_factor: 1,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(m::DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(m::InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(m::DescribeConfigsRequest {
            resources: vec![m::describe_configs_request::DescribeConfigsResource {
                resource_type: 2,
                resource_name: topic.into(),
                configuration_keys: None,
                ..Default::default()
            }],
            ..Default::default()
        }),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(m::CreatePartitionsRequest::default())
        }
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(m::DeleteGroupsRequest::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(m::AlterConfigsRequest {
            resources: vec![m::alter_configs_request::AlterConfigsResource {
                resource_type: 2,
                resource_name: topic.into(),
                ..Default::default()
            }],
            validate_only: true,
            ..Default::default()
        }),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(m::IncrementalAlterConfigsRequest {
                resources: vec![m::incremental_alter_configs_request::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: topic.into(),
                    configs: vec![m::incremental_alter_configs_request::AlterableConfig {
                        name: "retention.ms".into(),
                        config_operation: 0,
                        value: Some("604800000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only: true,
                ..Default::default()
            })
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(m::OffsetDeleteRequest {
            group_id: "versions-group".into(),
            topics: vec![m::offset_delete_request::OffsetDeleteRequestTopic {
                name: topic.into(),
                partitions: vec![m::offset_delete_request::OffsetDeleteRequestPartition {
                    partition_index: 0,
                }],
            }],
        }),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(m::DescribeClusterRequest {
            endpoint_type: 1,
            ..Default::default()
        }),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(m::DeleteRecordsRequest {
            topics: vec![m::delete_records_request::DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![m::delete_records_request::DeleteRecordsPartition {
                    partition_index: 0,
                    offset: 0,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 1000,
            ..Default::default()
        }),
        ApiKey::AddPartitionsToTxn => {
            RequestKind::AddPartitionsToTxn(m::AddPartitionsToTxnRequest::default())
        }
        ApiKey::AddOffsetsToTxn => {
            RequestKind::AddOffsetsToTxn(m::AddOffsetsToTxnRequest::default())
        }
        ApiKey::TxnOffsetCommit => {
            RequestKind::TxnOffsetCommit(m::TxnOffsetCommitRequest::default())
        }
        ApiKey::EndTxn => RequestKind::EndTxn(m::EndTxnRequest::default()),
        _ => return None,
    })
}

fn batch() -> bytes::Bytes {
    let mut builder = kafka_broker::protocol::records::BatchBuilder::new(1024);
    builder.append(1, None, Some(b"v"), &[]).expect("append");
    builder.finish().expect("batch")
}

async fn advertised(client: &mut RawClient) -> Vec<ApiVersion> {
    match client
        .call(&RequestKind::ApiVersions(Default::default()), 3)
        .await
    {
        ResponseKind::ApiVersions(r) => {
            assert_eq!(r.error_code, 0);
            r.api_keys
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn every_advertised_api_answers_at_every_advertised_version() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("versions", 1).expect("topic");
    let bootstrap = cluster.bootstrap_servers();
    let mut client = RawClient::connect(&bootstrap).await;
    let apis = advertised(&mut client).await;
    assert!(apis.len() >= 20, "{} APIs advertised", apis.len());
    let mut calls = 0;
    for api in &apis {
        let key = ApiKey::from_i16(api.api_key).expect("known key");
        for version in api.min_version..=api.max_version {
            let request =
                request(key, version).unwrap_or_else(|| panic!("no test request for {key:?}"));
            let response = client.call(&request, version).await;
            assert_eq!(response.api_key(), key);
            calls += 1;
        }
    }
    println!("{} APIs, {calls} API versions answered", apis.len());
}

#[tokio::test]
async fn an_unknown_api_versions_version_gets_a_v0_answer_listing_the_supported_ones() {
    let cluster = support::cluster(1, 1).await;
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    // ApiVersions v99: header v1 layout, empty body.
    let mut frame = BytesMut::new();
    frame.put_i32(2 + 2 + 4 + 2);
    frame.put_i16(ApiKey::ApiVersions as i16);
    frame.put_i16(99);
    frame.put_i32(7);
    frame.put_i16(-1);
    client.send_raw(&frame).await;
    let response = client
        .receive_frame(Duration::from_secs(10))
        .await
        .expect("an answer");
    let (header, body) =
        kafka_broker::protocol::frame::decode_response(response, ApiKey::ApiVersions, 0)
            .expect("v0");
    assert_eq!(header.correlation_id, 7);
    let ResponseKind::ApiVersions(body) = body else {
        panic!("not ApiVersions")
    };
    assert_eq!(body.error_code, ErrorCode::UnsupportedVersion.code());
    assert!(
        body.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16)
    );
}

#[tokio::test]
async fn bad_input_closes_that_connection_only() {
    let config = kafka_broker::BrokerConfig {
        socket_request_max_bytes: 1024,
        ..Default::default()
    };
    let cluster = kafka_broker::Cluster::start(config).await.expect("cluster");
    let bootstrap = cluster.bootstrap_servers();
    let healthy = &mut RawClient::connect(&bootstrap).await;
    assert!(!advertised(healthy).await.is_empty());

    let mut oversized = BytesMut::new();
    oversized.put_i32(1 << 20);
    let mut unknown_api = BytesMut::new();
    unknown_api.put_i32(8);
    unknown_api.put_i16(9999);
    unknown_api.put_i16(0);
    unknown_api.put_i32(1);
    let mut unsupported = BytesMut::new();
    unsupported.put_i32(10);
    unsupported.put_i16(ApiKey::LeaderAndIsr as i16);
    unsupported.put_i16(0);
    unsupported.put_i32(1);
    unsupported.put_i16(-1);
    let mut truncated_body = BytesMut::new();
    truncated_body.put_i32(12);
    truncated_body.put_i16(ApiKey::Metadata as i16);
    truncated_body.put_i16(4);
    truncated_body.put_i32(1);
    truncated_body.put_i16(-1);
    truncated_body.put_i16(0x7fff); // a topic array that claims 32767 entries... of which none follow
    let negative_size = (-5i32).to_be_bytes().to_vec();
    for (what, bytes) in [
        ("oversized frame", oversized.to_vec()),
        ("unknown API key", unknown_api.to_vec()),
        ("unsupported API", unsupported.to_vec()),
        ("truncated body", truncated_body.to_vec()),
        ("negative size", negative_size),
    ] {
        let mut bad = RawClient::connect(&bootstrap).await;
        bad.send_raw(&bytes).await;
        assert!(
            bad.receive_frame(Duration::from_secs(10)).await.is_none(),
            "{what}: the connection should be closed"
        );
        // Everyone else is unaffected.
        assert!(!advertised(healthy).await.is_empty(), "after {what}");
    }
}

#[tokio::test]
async fn injected_errors_answer_without_applying_and_run_out() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("injected", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let produce = RequestKind::Produce(m::ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: "injected".into(),
            partition_data: vec![m::produce_request::PartitionProduceData {
                index: 0,
                records: Some(batch()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let code_and_offset = |response: ResponseKind| match response {
        ResponseKind::Produce(r) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("unexpected {other:?}"),
    };
    let handle = cluster.inject_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower, 2);
    for _ in 0..2 {
        assert_eq!(
            code_and_offset(client.call(&produce, 9).await),
            (ErrorCode::NotLeaderOrFollower.code(), -1)
        );
    }
    // Neither was applied: the first real append gets offset 0.
    assert_eq!(code_and_offset(client.call(&produce, 9).await), (0, 0));
    assert_eq!(handle.hits(), 2);
}

#[tokio::test]
async fn moving_a_leader_and_stopping_a_broker_are_seen_by_clients() {
    let cluster = support::cluster(2, 1).await;
    cluster.create_topic("moving", 1).expect("topic");
    let brokers = cluster.brokers();
    let metadata = RequestKind::Metadata(m::MetadataRequest {
        topics: None,
        ..Default::default()
    });
    let leader_of = |response: ResponseKind| match response {
        ResponseKind::Metadata(r) => {
            let p = &r.topics[0].partitions[0];
            (p.leader_id, p.leader_epoch, p.error_code)
        }
        other => panic!("unexpected {other:?}"),
    };
    let mut client = RawClient::connect(&brokers[0].addr.to_string()).await;
    let (leader, epoch, _) = leader_of(client.call(&metadata, 9).await);
    let other = 1 - leader;
    cluster.move_leader("moving", 0, other).expect("move");
    assert_eq!(
        leader_of(client.call(&metadata, 9).await),
        (other, epoch + 1, 0)
    );
    // The old leader refuses the partition now.
    let mut old = RawClient::connect(&brokers[leader as usize].addr.to_string()).await;
    let produce = RequestKind::Produce(m::ProduceRequest {
        acks: 1,
        timeout_ms: 1000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: "moving".into(),
            partition_data: vec![m::produce_request::PartitionProduceData {
                index: 0,
                records: Some(batch()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::Produce(refused) = old.call(&produce, 9).await else {
        panic!("not a produce response")
    };
    assert_eq!(
        refused.responses[0].partition_responses[0].error_code,
        ErrorCode::NotLeaderOrFollower.code()
    );
    // Stopping the new leader leaves the partition without one until it returns.
    cluster.stop_broker(other).expect("stop");
    let mut survivor = RawClient::connect(&brokers[leader as usize].addr.to_string()).await;
    assert_eq!(
        leader_of(survivor.call(&metadata, 9).await),
        (-1, epoch + 1, ErrorCode::LeaderNotAvailable.code())
    );
    assert!(
        tokio::net::TcpStream::connect(brokers[other as usize].addr)
            .await
            .is_err(),
        "a stopped broker refuses connections"
    );
    cluster.restart_broker(other).await.expect("restart");
    assert_eq!(
        leader_of(survivor.call(&metadata, 9).await),
        (other, epoch + 1, 0)
    );
    let mut back = RawClient::connect(&brokers[other as usize].addr.to_string()).await;
    let ResponseKind::Produce(accepted) = back.call(&produce, 9).await else {
        panic!("not a produce response")
    };
    assert_eq!(accepted.responses[0].partition_responses[0].error_code, 0);
}

/// FindCoordinator at `version` (v4 and up: batched keys).
async fn find_coordinator(
    client: &mut RawClient,
    version: i16,
    key_type: i8,
    keys: &[&str],
) -> m::FindCoordinatorResponse {
    let request = RequestKind::FindCoordinator(m::FindCoordinatorRequest {
        key: if version < 4 {
            keys[0].into()
        } else {
            String::new()
        },
        key_type,
        coordinator_keys: if version >= 4 {
            keys.iter().map(|k| (*k).to_owned()).collect()
        } else {
            Vec::new()
        },
        ..Default::default()
    });
    match client.call(&request, version).await {
        ResponseKind::FindCoordinator(r) => r,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn find_coordinator_answers_each_batched_key_and_refuses_unknown_key_types() {
    let cluster = support::cluster(3, 1).await;
    let brokers = cluster.brokers();
    let mut client = RawClient::connect(&brokers[0].addr.to_string()).await;
    // The v3 answer for a key is the reference its batched entry must match.
    let mut expected = Vec::new();
    for (key_type, key) in [(0, "orders-app"), (1, "orders-txn")] {
        let single = find_coordinator(&mut client, 3, key_type, &[key]).await;
        assert_eq!(single.error_code, 0, "v3 {key}");
        let broker = usize::try_from(single.node_id)
            .ok()
            .and_then(|n| brokers.get(n))
            .unwrap_or_else(|| panic!("v3 {key}: node {} is not a broker", single.node_id));
        assert_eq!(
            (single.host.as_str(), single.port),
            ("127.0.0.1", i32::from(broker.addr.port())),
            "v3 {key}: the address of node {}",
            single.node_id
        );
        expected.push((key_type, key, single.node_id, single.port));
    }

    // A batched request names one key type for all its keys: a group key
    // with a second one, and a transactional id with an empty (invalid) key.
    let groups = find_coordinator(&mut client, 4, 0, &["orders-app", "billing-app"]).await;
    let txns = find_coordinator(&mut client, 4, 1, &["orders-txn", ""]).await;
    assert_eq!(groups.coordinators.len(), 2, "{groups:?}");
    assert_eq!(txns.coordinators.len(), 2, "{txns:?}");
    for ((key_type, key, node_id, port), entry) in expected
        .iter()
        .zip([&groups.coordinators[0], &txns.coordinators[0]])
    {
        assert_eq!(
            (
                entry.key.as_str(),
                entry.node_id,
                entry.host.as_str(),
                entry.port,
                entry.error_code,
                entry.error_message.as_deref().unwrap_or("")
            ),
            (*key, *node_id, "127.0.0.1", *port, 0, ""),
            "v4 key type {key_type}: {key}"
        );
    }
    let billing = &groups.coordinators[1];
    assert_eq!(
        (billing.key.as_str(), billing.error_code),
        ("billing-app", 0)
    );
    assert!(
        brokers
            .iter()
            .any(|b| b.id == billing.node_id && i32::from(b.addr.port()) == billing.port),
        "{billing:?}"
    );
    let empty = &txns.coordinators[1];
    assert_eq!(
        (
            empty.key.as_str(),
            empty.node_id,
            empty.port,
            empty.error_code
        ),
        ("", -1, -1, ErrorCode::InvalidRequest.code()),
        "an empty key fails alone"
    );

    // Key types other than group (0) and transaction (1).
    let unknown = find_coordinator(&mut client, 4, 2, &["orders-app", "orders-txn"]).await;
    assert_eq!(
        unknown
            .coordinators
            .iter()
            .map(|c| (c.key.as_str(), c.node_id, c.error_code))
            .collect::<Vec<_>>(),
        [
            ("orders-app", -1, ErrorCode::InvalidRequest.code()),
            ("orders-txn", -1, ErrorCode::InvalidRequest.code())
        ],
        "every key of an unknown type is refused"
    );
    for key_type in [2, -1] {
        let single = find_coordinator(&mut client, 3, key_type, &["orders-app"]).await;
        assert_eq!(
            (single.node_id, single.error_code),
            (-1, ErrorCode::InvalidRequest.code()),
            "v3 key type {key_type}"
        );
    }
}

/// A batch of `count` records whose values are `{partition}-{n}`, padded to
/// `value_len` bytes so that batches fall on both sides of the size above
/// which the broker sends stored batches by reference.
fn numbered_batch(partition: i32, first: usize, count: usize, value_len: usize) -> bytes::Bytes {
    // Now: older timestamps would fall to the 7-day retention mid-test.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut builder = kafka_broker::protocol::records::BatchBuilder::new(1 << 20);
    for n in first..first + count {
        let mut value = format!("{partition}-{n}").into_bytes();
        value.resize(value_len.max(value.len()), b'.');
        builder
            .append(now, None, Some(&value), &[])
            .expect("append");
    }
    builder.finish().expect("batch")
}

fn values_of(records: &bytes::Bytes) -> Vec<String> {
    let mut out = Vec::new();
    for batch in kafka_broker::protocol::records::Batches::new(records.clone()) {
        for record in batch.expect("batch").records().expect("records") {
            let value = record.expect("record").value.expect("value");
            let text = String::from_utf8(value.to_vec()).expect("utf-8");
            out.push(text.trim_end_matches('.').to_owned());
        }
    }
    out
}

#[tokio::test]
async fn one_fetch_over_many_partitions_answers_each_with_its_own_batches_in_order() {
    let cluster = support::cluster(1, 3).await;
    cluster.create_topic("spread", 3).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    // Partition 0: small and large batches mixed; 1: nothing; 2: one large batch.
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); 3];
    let plan: [(i32, usize, usize); 5] = [
        (0, 3, 10),
        (0, 40, 100),
        (2, 50, 200),
        (0, 1, 5),
        (0, 20, 90),
    ];
    for (partition, count, value_len) in plan {
        let first = expected[partition as usize].len();
        let records = numbered_batch(partition, first, count, value_len);
        let request = RequestKind::Produce(m::ProduceRequest {
            acks: -1,
            timeout_ms: 5_000,
            topic_data: vec![m::produce_request::TopicProduceData {
                name: "spread".into(),
                partition_data: vec![m::produce_request::PartitionProduceData {
                    index: partition,
                    records: Some(records),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let ResponseKind::Produce(response) = client.call(&request, 9).await else {
            panic!("not a produce response")
        };
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
        expected[partition as usize]
            .extend((first..first + count).map(|n| format!("{partition}-{n}")));
    }
    let partition = |index: i32| m::fetch_request::FetchPartition {
        partition: index,
        fetch_offset: 0,
        partition_max_bytes: 1 << 20,
        ..Default::default()
    };
    let request = RequestKind::Fetch(m::FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        topics: vec![
            m::fetch_request::FetchTopic {
                topic: "spread".into(),
                // Out of order, with one partition that does not exist.
                partitions: vec![partition(2), partition(9), partition(0), partition(1)],
                ..Default::default()
            },
            m::fetch_request::FetchTopic {
                topic: "missing".into(),
                partitions: vec![partition(0)],
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    for version in [4, 7, 11, 12] {
        let ResponseKind::Fetch(response) = client.call(&request, version).await else {
            panic!("not a fetch response")
        };
        let spread = &response.responses[0].partitions;
        let indexes: Vec<i32> = spread.iter().map(|p| p.partition_index).collect();
        assert_eq!(indexes, [2, 9, 0, 1], "v{version}");
        let unknown = ErrorCode::UnknownTopicOrPartition.code();
        assert_eq!(spread[1].error_code, unknown, "v{version}");
        assert_eq!(response.responses[1].partitions[0].error_code, unknown);
        for p in [&spread[0], &spread[2], &spread[3]] {
            assert_eq!(
                p.error_code, 0,
                "v{version} partition {}",
                p.partition_index
            );
            let records = p.records.clone().unwrap_or_default();
            assert_eq!(
                values_of(&records),
                expected[p.partition_index as usize],
                "v{version} partition {}",
                p.partition_index
            );
        }
    }
}
