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
