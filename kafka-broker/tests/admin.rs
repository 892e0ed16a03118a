//! The admin APIs over raw protocol: DeleteRecords, IncrementalAlterConfigs,
//! AlterConfigs, OffsetDelete and DescribeCluster, their error codes, and
//! what survives a restart in disk mode.

mod support;

use std::path::PathBuf;

use kafka_broker::protocol::ErrorCode;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::{BrokerConfig, Cluster};
use support::RawClient;

const NONE: i16 = 0;

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("kafka-broker-admin-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn disk_cluster(dir: &std::path::Path) -> Cluster {
    Cluster::start(BrokerConfig {
        data_dir: Some(dir.to_path_buf()),
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster starts")
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// A batch of `count` records stamped `timestamp`.
fn batch_at(timestamp: i64, count: usize) -> bytes::Bytes {
    let mut builder = kafka_broker::protocol::records::BatchBuilder::new(1 << 20);
    for i in 0..count {
        builder
            .append(timestamp, None, Some(format!("v{i}").as_bytes()), &[])
            .expect("append");
    }
    builder.finish().expect("batch")
}

/// Produces `count` records in one batch; returns its base offset.
async fn produce(client: &mut RawClient, topic: &str, partition: i32, count: usize) -> i64 {
    produce_batch(client, topic, partition, batch_at(now_ms(), count)).await
}

async fn produce_batch(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> i64 {
    let request = RequestKind::Produce(m::ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: topic.into(),
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
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NONE, "produce: {:?}", p.error_message);
    p.base_offset
}

/// One partition's Fetch answer from `offset`.
async fn fetch(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
) -> m::fetch_response::PartitionData {
    let request = RequestKind::Fetch(m::FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        topics: vec![m::fetch_request::FetchTopic {
            topic: topic.into(),
            partitions: vec![m::fetch_request::FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                log_start_offset: -1,
                current_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::Fetch(response) = client.call(&request, 12).await else {
        panic!("not a fetch response")
    };
    response.responses[0].partitions[0].clone()
}

/// ListOffsets for one partition at `timestamp` (-2 earliest, -1 latest).
async fn list_offset(client: &mut RawClient, topic: &str, partition: i32, timestamp: i64) -> i64 {
    let request = RequestKind::ListOffsets(m::ListOffsetsRequest {
        replica_id: -1,
        topics: vec![m::list_offsets_request::ListOffsetsTopic {
            name: topic.into(),
            partitions: vec![m::list_offsets_request::ListOffsetsPartition {
                partition_index: partition,
                timestamp,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::ListOffsets(response) = client.call(&request, 7).await else {
        panic!("not a ListOffsets response")
    };
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE, "ListOffsets {topic}-{partition}");
    p.offset
}

/// DeleteRecords at `version`: (topic, partition, low watermark, error) in
/// answer order.
async fn delete_records(
    client: &mut RawClient,
    version: i16,
    wanted: &[(&str, i32, i64)],
) -> Vec<(String, i32, i64, i16)> {
    let mut topics: Vec<m::delete_records_request::DeleteRecordsTopic> = Vec::new();
    for &(topic, partition, offset) in wanted {
        let entry = m::delete_records_request::DeleteRecordsPartition {
            partition_index: partition,
            offset,
            ..Default::default()
        };
        match topics.iter_mut().find(|t| t.name == topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(m::delete_records_request::DeleteRecordsTopic {
                name: topic.into(),
                partitions: vec![entry],
                ..Default::default()
            }),
        }
    }
    let request = RequestKind::DeleteRecords(m::DeleteRecordsRequest {
        topics,
        timeout_ms: 5000,
        ..Default::default()
    });
    let ResponseKind::DeleteRecords(response) = client.call(&request, version).await else {
        panic!("not a DeleteRecords response")
    };
    response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    p.low_watermark,
                    p.error_code,
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn delete_records_moves_the_log_start_and_fetch_and_list_offsets_follow() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("trim", 2).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    for _ in 0..3 {
        produce(&mut client, "trim", 0, 10).await;
    }
    produce(&mut client, "trim", 1, 5).await;
    // Every version: 0 and 1 are the classic encoding, 2 the flexible one.
    let mut start = 0;
    for version in 0..=2 {
        start += 7;
        let answer = delete_records(&mut client, version, &[("trim", 0, start)]).await;
        assert_eq!(answer, [("trim".to_owned(), 0, start, NONE)], "v{version}");
        let below = fetch(&mut client, "trim", 0, start - 1).await;
        assert_eq!(
            below.error_code,
            ErrorCode::OffsetOutOfRange.code(),
            "v{version}: fetch below the new start"
        );
        let at = fetch(&mut client, "trim", 0, start).await;
        assert_eq!(at.error_code, NONE);
        assert_eq!(at.log_start_offset, start, "v{version}: fetch's log start");
        assert!(!at.records.unwrap_or_default().is_empty());
        assert_eq!(list_offset(&mut client, "trim", 0, -2).await, start);
    }
    // A smaller offset changes nothing and answers the current start.
    assert_eq!(
        delete_records(&mut client, 2, &[("trim", 0, 3)]).await,
        [("trim".to_owned(), 0, 21, NONE)]
    );
    // -1 is the high watermark, for each partition its own.
    assert_eq!(
        delete_records(&mut client, 2, &[("trim", 0, -1), ("trim", 1, -1)]).await,
        [
            ("trim".to_owned(), 0, 30, NONE),
            ("trim".to_owned(), 1, 5, NONE)
        ]
    );
    assert_eq!(list_offset(&mut client, "trim", 0, -2).await, 30);
    assert_eq!(list_offset(&mut client, "trim", 0, -1).await, 30);
    let empty = fetch(&mut client, "trim", 0, 30).await;
    assert_eq!(
        (
            empty.error_code,
            empty.log_start_offset,
            empty.high_watermark
        ),
        (NONE, 30, 30)
    );
    assert!(empty.records.unwrap_or_default().is_empty());
    // The log goes on after it.
    assert_eq!(produce(&mut client, "trim", 0, 1).await, 30);
}

#[tokio::test]
async fn delete_records_refuses_unknown_partitions_offsets_past_the_end_and_non_leaders() {
    let cluster = support::cluster(2, 1).await;
    cluster.create_topic("guarded", 2).expect("topic");
    let brokers = cluster.brokers();
    // Partition p is led by broker p (leaders are spread in order).
    let mut leader0 = RawClient::connect(&brokers[0].addr.to_string()).await;
    let mut leader1 = RawClient::connect(&brokers[1].addr.to_string()).await;
    produce(&mut leader0, "guarded", 0, 4).await;
    produce(&mut leader1, "guarded", 1, 4).await;
    let answer = delete_records(
        &mut leader0,
        1,
        &[
            ("guarded", 0, 5),
            ("guarded", 1, 2),
            ("guarded", 7, 0),
            ("missing", 0, 0),
            ("guarded", 0, -3),
        ],
    )
    .await;
    assert_eq!(
        answer,
        [
            (
                "guarded".to_owned(),
                0,
                -1,
                ErrorCode::OffsetOutOfRange.code()
            ),
            (
                "guarded".to_owned(),
                1,
                -1,
                ErrorCode::NotLeaderOrFollower.code()
            ),
            (
                "guarded".to_owned(),
                7,
                -1,
                ErrorCode::UnknownTopicOrPartition.code()
            ),
            (
                "guarded".to_owned(),
                0,
                -1,
                ErrorCode::OffsetOutOfRange.code()
            ),
            (
                "missing".to_owned(),
                0,
                -1,
                ErrorCode::UnknownTopicOrPartition.code()
            ),
        ]
    );
    // Nothing moved; the leader of partition 1 does it.
    assert_eq!(list_offset(&mut leader0, "guarded", 0, -2).await, 0);
    assert_eq!(list_offset(&mut leader1, "guarded", 1, -2).await, 0);
    assert_eq!(
        delete_records(&mut leader1, 2, &[("guarded", 1, 4)]).await,
        [("guarded".to_owned(), 1, 4, NONE)]
    );
    // Moving leadership keeps the start: it is the partition's, not the broker's.
    cluster.move_leader("guarded", 1, 0).expect("move");
    assert_eq!(list_offset(&mut leader0, "guarded", 1, -2).await, 4);
}

#[tokio::test]
async fn deleted_records_stay_deleted_after_a_disk_mode_restart() {
    let dir = temp_dir("delete-records");
    let cluster = disk_cluster(&dir).await;
    cluster.create_topic("kept", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    produce(&mut client, "kept", 0, 10).await;
    produce(&mut client, "kept", 0, 10).await;
    // Inside the second batch: the batch stays on disk, its first records
    // must not come back.
    assert_eq!(
        delete_records(&mut client, 2, &[("kept", 0, 13)]).await,
        [("kept".to_owned(), 0, 13, NONE)]
    );
    drop(client);
    cluster.shutdown().await;

    let cluster = disk_cluster(&dir).await;
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    assert_eq!(list_offset(&mut client, "kept", 0, -2).await, 13);
    assert_eq!(list_offset(&mut client, "kept", 0, -1).await, 20);
    assert_eq!(
        fetch(&mut client, "kept", 0, 12).await.error_code,
        ErrorCode::OffsetOutOfRange.code()
    );
    assert_eq!(fetch(&mut client, "kept", 0, 13).await.log_start_offset, 13);
    assert_eq!(produce(&mut client, "kept", 0, 1).await, 20);
    drop(client);
    cluster.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
/// DescribeConfigs' config_source values.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

/// One IncrementalAlterConfigs operation: name, operation, value.
type Op<'a> = (&'a str, i8, Option<&'a str>);

/// IncrementalAlterConfigs at `version` for one resource: (code, message).
async fn incremental_alter(
    client: &mut RawClient,
    version: i16,
    resource_type: i8,
    name: &str,
    ops: &[Op<'_>],
    validate_only: bool,
) -> (i16, Option<String>) {
    use m::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = RequestKind::IncrementalAlterConfigs(m::IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: ops
                .iter()
                .map(|&(name, op, value)| AlterableConfig {
                    name: name.into(),
                    config_operation: op,
                    value: value.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    });
    let ResponseKind::IncrementalAlterConfigs(response) = client.call(&request, version).await
    else {
        panic!("not an IncrementalAlterConfigs response")
    };
    let r = &response.responses[0];
    assert_eq!(
        (r.resource_type, r.resource_name.as_str()),
        (resource_type, name)
    );
    (r.error_code, r.error_message.clone())
}

/// Legacy AlterConfigs at `version` for one resource.
async fn alter(
    client: &mut RawClient,
    version: i16,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    use m::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = RequestKind::AlterConfigs(m::AlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type,
            resource_name: name.into(),
            configs: configs
                .iter()
                .map(|&(name, value)| AlterableConfig {
                    name: name.into(),
                    value: value.map(str::to_owned),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        validate_only,
        ..Default::default()
    });
    let ResponseKind::AlterConfigs(response) = client.call(&request, version).await else {
        panic!("not an AlterConfigs response")
    };
    let r = &response.responses[0];
    (r.error_code, r.error_message.clone())
}

/// A topic's (value, source) for `key`, by DescribeConfigs v4.
async fn described(client: &mut RawClient, topic: &str, key: &str) -> (String, i8) {
    let request = RequestKind::DescribeConfigs(m::DescribeConfigsRequest {
        resources: vec![m::describe_configs_request::DescribeConfigsResource {
            resource_type: TOPIC,
            resource_name: topic.into(),
            configuration_keys: Some(vec![key.into()]),
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::DescribeConfigs(response) = client.call(&request, 4).await else {
        panic!("not a DescribeConfigs response")
    };
    let result = &response.results[0];
    assert_eq!(result.error_code, NONE, "{:?}", result.error_message);
    let entry = result
        .configs
        .iter()
        .find(|c| c.name == key)
        .unwrap_or_else(|| panic!("{key} not described: {:?}", result.configs));
    (entry.value.clone().unwrap_or_default(), entry.config_source)
}

#[tokio::test]
async fn incremental_alter_configs_sets_and_deletes_topic_configs_and_describe_shows_them() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("tuned", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let default_ms = (7 * 24 * 3600 * 1000i64).to_string();
    assert_eq!(
        described(&mut client, "tuned", "retention.ms").await,
        (default_ms.clone(), SOURCE_DEFAULT)
    );
    for version in 0..=1 {
        let value = format!("{}", 3_600_000 + i64::from(version));
        let ops = [
            ("retention.ms", SET, Some(value.as_str())),
            ("retention.bytes", SET, Some("1048576")),
        ];
        // validate_only checks and changes nothing.
        let checked = incremental_alter(&mut client, version, TOPIC, "tuned", &ops, true).await;
        assert_eq!(checked, (NONE, None), "v{version} validate_only");
        let expected_before = if version == 0 {
            (default_ms.clone(), SOURCE_DEFAULT)
        } else {
            ("3600000".to_owned(), SOURCE_TOPIC)
        };
        assert_eq!(
            described(&mut client, "tuned", "retention.ms").await,
            expected_before
        );
        let applied = incremental_alter(&mut client, version, TOPIC, "tuned", &ops, false).await;
        assert_eq!(applied, (NONE, None), "v{version}");
        assert_eq!(
            described(&mut client, "tuned", "retention.ms").await,
            (value, SOURCE_TOPIC)
        );
    }
    assert_eq!(
        described(&mut client, "tuned", "retention.bytes").await,
        ("1048576".to_owned(), SOURCE_TOPIC)
    );
    // DELETE returns a name to its default and leaves the others.
    let deleted = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "tuned",
        &[("retention.ms", DELETE, None)],
        false,
    )
    .await;
    assert_eq!(deleted.0, NONE);
    assert_eq!(
        described(&mut client, "tuned", "retention.ms").await,
        (default_ms, SOURCE_DEFAULT)
    );
    assert_eq!(
        described(&mut client, "tuned", "retention.bytes").await,
        ("1048576".to_owned(), SOURCE_TOPIC)
    );
    // APPEND on a list config adds what is missing.
    let appended = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "tuned",
        &[
            ("leader.replication.throttled.replicas", APPEND, Some("0:0")),
            ("cleanup.policy", APPEND, Some("delete")),
        ],
        false,
    )
    .await;
    assert_eq!(appended.0, NONE, "{:?}", appended.1);
    assert_eq!(
        described(&mut client, "tuned", "cleanup.policy").await,
        ("delete".to_owned(), SOURCE_TOPIC)
    );
}

#[tokio::test]
async fn alter_configs_refusals_apply_nothing_of_the_resource() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("strict", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let cases: [(&str, &[Op], ErrorCode); 6] = [
        (
            "a bad value beside a good one",
            &[
                ("retention.bytes", SET, Some("5")),
                ("retention.ms", SET, Some("soon")),
            ],
            ErrorCode::InvalidConfig,
        ),
        (
            "a policy this broker cannot honour",
            &[
                ("retention.bytes", SET, Some("5")),
                ("cleanup.policy", APPEND, Some("compact")),
            ],
            ErrorCode::InvalidConfig,
        ),
        (
            "APPEND to a scalar",
            &[("retention.ms", APPEND, Some("5"))],
            ErrorCode::InvalidRequest,
        ),
        (
            "APPEND to an unknown name",
            &[("no.such.config", APPEND, Some("5"))],
            ErrorCode::InvalidConfig,
        ),
        (
            "a name given twice",
            &[
                ("retention.bytes", SET, Some("5")),
                ("retention.bytes", SET, Some("6")),
            ],
            ErrorCode::InvalidRequest,
        ),
        (
            "an unknown operation",
            &[("retention.bytes", 7, Some("5"))],
            ErrorCode::InvalidRequest,
        ),
    ];
    for (what, ops, code) in cases {
        let (error, message) = incremental_alter(&mut client, 1, TOPIC, "strict", ops, false).await;
        assert_eq!(error, code.code(), "{what}: {message:?}");
        assert!(message.is_some_and(|m| !m.is_empty()), "{what}: a message");
        assert_eq!(
            described(&mut client, "strict", "retention.bytes").await,
            ("-1".to_owned(), SOURCE_DEFAULT),
            "{what}: nothing applied"
        );
    }
    let unknown = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "no-such-topic",
        &[("retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(unknown.0, ErrorCode::UnknownTopicOrPartition.code());
    let broker = incremental_alter(
        &mut client,
        1,
        BROKER,
        "0",
        &[("log.retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(broker.0, ErrorCode::InvalidRequest.code());
    assert!(broker.1.unwrap_or_default().contains("broker configs"));
    // The legacy API validates the same way.
    for version in 0..=2 {
        let bad = alter(
            &mut client,
            version,
            TOPIC,
            "strict",
            &[("retention.ms", Some("x"))],
            false,
        )
        .await;
        assert_eq!(
            bad.0,
            ErrorCode::InvalidConfig.code(),
            "AlterConfigs v{version}"
        );
        let missing = alter(&mut client, version, TOPIC, "gone", &[], false).await;
        assert_eq!(missing.0, ErrorCode::UnknownTopicOrPartition.code());
        let broker = alter(&mut client, version, BROKER, "0", &[], false).await;
        assert_eq!(broker.0, ErrorCode::InvalidRequest.code());
    }
}

#[tokio::test]
async fn legacy_alter_configs_replaces_every_explicit_config() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("replaced", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let set = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "replaced",
        &[
            ("retention.ms", SET, Some("60000")),
            ("retention.bytes", SET, Some("999")),
        ],
        false,
    )
    .await;
    assert_eq!(set.0, NONE);
    for version in 0..=2 {
        let bytes = format!("{}", 1000 + version);
        // validate_only leaves both.
        let checked = alter(
            &mut client,
            version,
            TOPIC,
            "replaced",
            &[("retention.bytes", Some(&bytes))],
            true,
        )
        .await;
        assert_eq!(checked, (NONE, None));
        assert_eq!(
            described(&mut client, "replaced", "retention.ms").await.1,
            if version == 0 {
                SOURCE_TOPIC
            } else {
                SOURCE_DEFAULT
            }
        );
        let replaced = alter(
            &mut client,
            version,
            TOPIC,
            "replaced",
            &[("retention.bytes", Some(&bytes)), ("segment.ms", None)],
            false,
        )
        .await;
        assert_eq!(replaced, (NONE, None), "v{version}");
        // What the request left out is back to its default.
        assert_eq!(
            described(&mut client, "replaced", "retention.ms").await,
            ((7 * 24 * 3600 * 1000i64).to_string(), SOURCE_DEFAULT),
            "v{version}"
        );
        assert_eq!(
            described(&mut client, "replaced", "retention.bytes").await,
            (bytes, SOURCE_TOPIC)
        );
    }
}

#[tokio::test]
async fn retention_set_by_alter_configs_applies_to_the_running_log() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("aging", 2).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    // An hour old: inside the default 7 days, outside the minute set below.
    let hour_ago = now_ms() - 3_600_000;
    for _ in 0..3 {
        produce_batch(&mut client, "aging", 0, batch_at(hour_ago, 5)).await;
    }
    produce(&mut client, "aging", 0, 5).await;
    for _ in 0..3 {
        produce(&mut client, "aging", 1, 5).await;
    }
    assert_eq!(list_offset(&mut client, "aging", 0, -2).await, 0);
    let set = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "aging",
        &[("retention.ms", SET, Some("60000"))],
        false,
    )
    .await;
    assert_eq!(set.0, NONE);
    // The three old batches go; the fresh one stays.
    let start = wait_for_log_start(&mut client, "aging", 0, 15).await;
    assert_eq!(start, 15);
    assert_eq!(
        list_offset(&mut client, "aging", 1, -2).await,
        0,
        "fresh data stays"
    );
    // retention.bytes: one byte keeps only the active (last) batch.
    let set = alter(
        &mut client,
        2,
        TOPIC,
        "aging",
        &[("retention.bytes", Some("1"))],
        false,
    )
    .await;
    assert_eq!(set.0, NONE);
    assert_eq!(wait_for_log_start(&mut client, "aging", 1, 10).await, 10);
}

/// Polls ListOffsets earliest until it reaches `expected` (at most 10 s);
/// returns the last value seen.
async fn wait_for_log_start(
    client: &mut RawClient,
    topic: &str,
    partition: i32,
    expected: i64,
) -> i64 {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let start = list_offset(client, topic, partition, -2).await;
        if start == expected || tokio::time::Instant::now() >= deadline {
            return start;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn altered_topic_configs_survive_a_disk_mode_restart() {
    let dir = temp_dir("configs");
    let cluster = disk_cluster(&dir).await;
    cluster.create_topic("durable-config", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let set = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "durable-config",
        &[
            ("retention.ms", SET, Some("123456")),
            ("segment.ms", SET, Some("1000")),
        ],
        false,
    )
    .await;
    assert_eq!(set.0, NONE);
    let deleted = incremental_alter(
        &mut client,
        1,
        TOPIC,
        "durable-config",
        &[("segment.ms", DELETE, None)],
        false,
    )
    .await;
    assert_eq!(deleted.0, NONE);
    drop(client);
    cluster.shutdown().await;

    let cluster = disk_cluster(&dir).await;
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    assert_eq!(
        described(&mut client, "durable-config", "retention.ms").await,
        ("123456".to_owned(), SOURCE_TOPIC)
    );
    let request = RequestKind::DescribeConfigs(m::DescribeConfigsRequest {
        resources: vec![m::describe_configs_request::DescribeConfigsResource {
            resource_type: TOPIC,
            resource_name: "durable-config".into(),
            configuration_keys: None,
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::DescribeConfigs(all) = client.call(&request, 4).await else {
        panic!("not a DescribeConfigs response")
    };
    assert!(
        all.results[0]
            .configs
            .iter()
            .all(|c| c.name != "segment.ms"),
        "the deleted config stays deleted: {:?}",
        all.results[0].configs
    );
    drop(client);
    cluster.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// Commits `offsets` (topic, partition, offset) for `group` as the admin
/// client does (no member, generation -1), or as a member when given.
async fn commit(
    client: &mut RawClient,
    group: &str,
    member: Option<(&str, i32)>,
    offsets: &[(&str, i32, i64)],
) {
    let (member_id, generation) = member.unwrap_or(("", -1));
    let request = RequestKind::OffsetCommit(m::OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member_id.into(),
        topics: offsets
            .iter()
            .map(
                |&(topic, partition, offset)| m::offset_commit_request::OffsetCommitRequestTopic {
                    name: topic.into(),
                    partitions: vec![m::offset_commit_request::OffsetCommitRequestPartition {
                        partition_index: partition,
                        committed_offset: offset,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )
            .collect(),
        ..Default::default()
    });
    let ResponseKind::OffsetCommit(response) = client.call(&request, 8).await else {
        panic!("not an OffsetCommit response")
    };
    for topic in &response.topics {
        for p in &topic.partitions {
            assert_eq!(
                p.error_code, NONE,
                "commit {}-{}",
                topic.name, p.partition_index
            );
        }
    }
}

/// The committed offset (-1: none) of each (topic, partition), OffsetFetch v8.
async fn committed(client: &mut RawClient, group: &str, partitions: &[(&str, i32)]) -> Vec<i64> {
    let request = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        groups: vec![m::offset_fetch_request::OffsetFetchRequestGroup {
            group_id: group.into(),
            topics: Some(
                partitions
                    .iter()
                    .map(
                        |&(topic, partition)| m::offset_fetch_request::OffsetFetchRequestTopics {
                            name: topic.into(),
                            partition_indexes: vec![partition],
                            ..Default::default()
                        },
                    )
                    .collect(),
            ),
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::OffsetFetch(response) = client.call(&request, 8).await else {
        panic!("not an OffsetFetch response")
    };
    response.groups[0]
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect()
}

/// OffsetDelete: the top-level error and (topic, partition, error) in
/// answer order.
async fn offset_delete(
    client: &mut RawClient,
    group: &str,
    partitions: &[(&str, i32)],
) -> (i16, Vec<(String, i32, i16)>) {
    let mut topics: Vec<m::offset_delete_request::OffsetDeleteRequestTopic> = Vec::new();
    for &(topic, partition) in partitions {
        let entry = m::offset_delete_request::OffsetDeleteRequestPartition {
            partition_index: partition,
        };
        match topics.iter_mut().find(|t| t.name == topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(m::offset_delete_request::OffsetDeleteRequestTopic {
                name: topic.into(),
                partitions: vec![entry],
            }),
        }
    }
    let request = RequestKind::OffsetDelete(m::OffsetDeleteRequest {
        group_id: group.into(),
        topics,
    });
    let ResponseKind::OffsetDelete(response) = client.call(&request, 0).await else {
        panic!("not an OffsetDelete response")
    };
    let partitions = response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.clone(), p.partition_index, p.error_code))
        })
        .collect();
    (response.error_code, partitions)
}

/// Joins `group` alone and syncs, so it is Stable with one member of
/// `protocol_type` whose "range" metadata is `metadata`. Returns (member id,
/// generation).
async fn join_stable(
    client: &mut RawClient,
    group: &str,
    protocol_type: &str,
    metadata: bytes::Bytes,
) -> (String, i32) {
    let join = RequestKind::JoinGroup(m::JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: protocol_type.into(),
        protocols: vec![m::join_group_request::JoinGroupRequestProtocol {
            name: "range".into(),
            metadata,
            ..Default::default()
        }],
        ..Default::default()
    });
    // v3: no member id round trip (KIP-394 starts at v4).
    let ResponseKind::JoinGroup(joined) = client.call(&join, 3).await else {
        panic!("not a JoinGroup response")
    };
    assert_eq!(joined.error_code, NONE, "join");
    let sync = RequestKind::SyncGroup(m::SyncGroupRequest {
        group_id: group.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        assignments: vec![m::sync_group_request::SyncGroupRequestAssignment {
            member_id: joined.member_id.clone(),
            assignment: bytes::Bytes::new(),
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::SyncGroup(synced) = client.call(&sync, 3).await else {
        panic!("not a SyncGroup response")
    };
    assert_eq!(synced.error_code, NONE, "sync");
    (joined.member_id, joined.generation_id)
}

/// A consumer's JoinGroup metadata subscribing to `topics`.
fn subscription(topics: &[&str]) -> bytes::Bytes {
    use bytes::BufMut;
    use kafka_broker::protocol::Encode;
    let mut out = bytes::BytesMut::new();
    out.put_i16(1);
    m::ConsumerProtocolSubscription {
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    }
    .encode(&mut out, 1)
    .expect("encode subscription");
    out.freeze()
}

#[tokio::test]
async fn offset_delete_removes_an_empty_groups_offsets_and_refuses_unknown_groups_and_topics() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("orders", 2).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    commit(
        &mut client,
        "billing",
        None,
        &[("orders", 0, 5), ("orders", 1, 7)],
    )
    .await;
    let (error, partitions) = offset_delete(
        &mut client,
        "billing",
        &[("orders", 0), ("orders", 9), ("nowhere", 0)],
    )
    .await;
    assert_eq!(error, NONE);
    assert_eq!(
        partitions,
        [
            ("orders".to_owned(), 0, NONE),
            (
                "orders".to_owned(),
                9,
                ErrorCode::UnknownTopicOrPartition.code()
            ),
            (
                "nowhere".to_owned(),
                0,
                ErrorCode::UnknownTopicOrPartition.code()
            ),
        ]
    );
    assert_eq!(
        committed(&mut client, "billing", &[("orders", 0), ("orders", 1)]).await,
        [-1, 7]
    );
    // The last offset gone, the group is gone: a second delete finds nothing.
    let (error, _) = offset_delete(&mut client, "billing", &[("orders", 1)]).await;
    assert_eq!(error, NONE);
    let (error, partitions) = offset_delete(&mut client, "billing", &[("orders", 1)]).await;
    assert_eq!(
        (error, partitions.len()),
        (ErrorCode::GroupIdNotFound.code(), 0)
    );
    let (error, _) = offset_delete(&mut client, "never-seen", &[("orders", 0)]).await;
    assert_eq!(error, ErrorCode::GroupIdNotFound.code());
    let (error, _) = offset_delete(&mut client, "", &[("orders", 0)]).await;
    assert_eq!(error, ErrorCode::InvalidGroupId.code());
}

#[tokio::test]
async fn offset_delete_keeps_offsets_of_topics_a_live_group_subscribes_to() {
    let cluster = support::cluster(1, 1).await;
    cluster.create_topic("subscribed", 1).expect("topic");
    cluster.create_topic("abandoned", 1).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    let (member, generation) = join_stable(
        &mut client,
        "live",
        "consumer",
        subscription(&["subscribed"]),
    )
    .await;
    commit(
        &mut client,
        "live",
        Some((&member, generation)),
        &[("subscribed", 0, 3), ("abandoned", 0, 4)],
    )
    .await;
    let (error, partitions) =
        offset_delete(&mut client, "live", &[("subscribed", 0), ("abandoned", 0)]).await;
    assert_eq!(error, NONE);
    assert_eq!(
        partitions,
        [
            (
                "subscribed".to_owned(),
                0,
                ErrorCode::GroupSubscribedToTopic.code()
            ),
            ("abandoned".to_owned(), 0, NONE),
        ]
    );
    assert_eq!(
        committed(&mut client, "live", &[("subscribed", 0), ("abandoned", 0)]).await,
        [3, -1]
    );
    // Metadata that is not a consumer subscription: every topic counts as
    // subscribed, to be safe.
    let mut other = RawClient::connect(&cluster.bootstrap_servers()).await;
    let (member, generation) = join_stable(
        &mut other,
        "garbled",
        "consumer",
        bytes::Bytes::from_static(b"\x00"),
    )
    .await;
    commit(
        &mut other,
        "garbled",
        Some((&member, generation)),
        &[("abandoned", 0, 1)],
    )
    .await;
    let (_, partitions) = offset_delete(&mut other, "garbled", &[("abandoned", 0)]).await;
    assert_eq!(
        partitions,
        [(
            "abandoned".to_owned(),
            0,
            ErrorCode::GroupSubscribedToTopic.code()
        )]
    );
    // A live group of another protocol type cannot lose offsets at all.
    let mut connect = RawClient::connect(&cluster.bootstrap_servers()).await;
    let (member, generation) =
        join_stable(&mut connect, "workers", "connect", bytes::Bytes::new()).await;
    commit(
        &mut connect,
        "workers",
        Some((&member, generation)),
        &[("abandoned", 0, 1)],
    )
    .await;
    let (error, partitions) = offset_delete(&mut connect, "workers", &[("abandoned", 0)]).await;
    assert_eq!(
        (error, partitions.len()),
        (ErrorCode::NonEmptyGroup.code(), 0)
    );
    assert_eq!(
        committed(&mut connect, "workers", &[("abandoned", 0)]).await,
        [1]
    );
}

#[tokio::test]
async fn offset_delete_is_answered_by_the_groups_coordinator_only() {
    let cluster = support::cluster(3, 1).await;
    cluster.create_topic("spread", 1).expect("topic");
    let brokers = cluster.brokers();
    let mut any = RawClient::connect(&brokers[0].addr.to_string()).await;
    let find = RequestKind::FindCoordinator(m::FindCoordinatorRequest {
        key: "coordinated".into(),
        ..Default::default()
    });
    let ResponseKind::FindCoordinator(found) = any.call(&find, 3).await else {
        panic!("not a FindCoordinator response")
    };
    assert_eq!(found.error_code, NONE);
    let coordinator = brokers
        .iter()
        .find(|b| b.id == found.node_id)
        .expect("the coordinator is a broker");
    let other = brokers
        .iter()
        .find(|b| b.id != found.node_id)
        .expect("another broker");
    let mut at_coordinator = RawClient::connect(&coordinator.addr.to_string()).await;
    let mut elsewhere = RawClient::connect(&other.addr.to_string()).await;
    commit(
        &mut at_coordinator,
        "coordinated",
        None,
        &[("spread", 0, 2)],
    )
    .await;
    let (error, _) = offset_delete(&mut elsewhere, "coordinated", &[("spread", 0)]).await;
    assert_eq!(error, ErrorCode::NotCoordinator.code());
    assert_eq!(
        committed(&mut at_coordinator, "coordinated", &[("spread", 0)]).await,
        [2],
        "a refused delete deletes nothing"
    );
    let (error, partitions) =
        offset_delete(&mut at_coordinator, "coordinated", &[("spread", 0)]).await;
    assert_eq!(
        (error, partitions),
        (NONE, vec![("spread".to_owned(), 0, NONE)])
    );
}

#[tokio::test]
async fn deleted_offsets_stay_deleted_after_a_disk_mode_restart() {
    let dir = temp_dir("offset-delete");
    let cluster = disk_cluster(&dir).await;
    cluster.create_topic("ledger", 2).expect("topic");
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    commit(
        &mut client,
        "auditors",
        None,
        &[("ledger", 0, 11), ("ledger", 1, 12)],
    )
    .await;
    let (error, _) = offset_delete(&mut client, "auditors", &[("ledger", 0)]).await;
    assert_eq!(error, NONE);
    drop(client);
    cluster.shutdown().await;

    let cluster = disk_cluster(&dir).await;
    let mut client = RawClient::connect(&cluster.bootstrap_servers()).await;
    assert_eq!(
        committed(&mut client, "auditors", &[("ledger", 0), ("ledger", 1)]).await,
        [-1, 12]
    );
    drop(client);
    cluster.shutdown().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn describe_cluster_lists_the_running_brokers_the_controller_and_the_cluster_id() {
    let cluster = support::cluster(3, 1).await;
    let brokers = cluster.brokers();
    cluster.stop_broker(2).expect("stop");
    let mut client = RawClient::connect(&brokers[1].addr.to_string()).await;
    let describe = |version: i16, endpoint_type: i8, operations: bool| {
        let request = RequestKind::DescribeCluster(m::DescribeClusterRequest {
            include_cluster_authorized_operations: operations,
            endpoint_type,
            ..Default::default()
        });
        (request, version)
    };
    for version in 0..=1 {
        let (request, version) = describe(version, 1, false);
        let ResponseKind::DescribeCluster(response) = client.call(&request, version).await else {
            panic!("not a DescribeCluster response")
        };
        assert_eq!(response.error_code, NONE, "v{version}");
        assert_eq!(response.cluster_id, BrokerConfig::default().cluster_id);
        assert_eq!(response.controller_id, 0, "v{version}");
        assert_eq!(response.cluster_authorized_operations, i32::MIN);
        let listed: Vec<(i32, String, i32)> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id, b.host.clone(), b.port))
            .collect();
        let expected: Vec<(i32, String, i32)> = brokers
            .iter()
            .filter(|b| b.id != 2)
            .map(|b| (b.id, "127.0.0.1".to_owned(), i32::from(b.addr.port())))
            .collect();
        assert_eq!(
            listed, expected,
            "v{version}: the stopped broker is not listed"
        );
    }
    let (request, version) = describe(1, 1, true);
    let ResponseKind::DescribeCluster(response) = client.call(&request, version).await else {
        panic!("not a DescribeCluster response")
    };
    assert_ne!(response.cluster_authorized_operations, i32::MIN);
    assert!(
        response.cluster_authorized_operations & (1 << 8) != 0,
        "DESCRIBE"
    );
    let (request, version) = describe(1, 2, false);
    let ResponseKind::DescribeCluster(response) = client.call(&request, version).await else {
        panic!("not a DescribeCluster response")
    };
    assert_eq!(
        response.error_code,
        ErrorCode::UnsupportedEndpointType.code()
    );
    assert!(response.brokers.is_empty());
}
