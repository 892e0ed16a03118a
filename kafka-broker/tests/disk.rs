//! Disk mode: what the broker acknowledged survives SIGKILL, and a torn
//! write at the end of a segment is cut off on restart.

mod support;

use std::io::Write;
use std::path::PathBuf;

use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::protocol::records::{BatchBuilder, Batches};
use support::{BrokerProcess, RawClient};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kafka-broker-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn batch(first: usize, count: usize) -> bytes::Bytes {
    // Now, so that retention (7 days by default) keeps it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut builder = BatchBuilder::new(1 << 20);
    for i in first..first + count {
        builder
            .append(now, None, Some(format!("value-{i}").as_bytes()), &[])
            .expect("append");
    }
    builder.finish().expect("batch")
}

/// Produces with acks=all; returns the base offset the broker acknowledged.
async fn produce(client: &mut RawClient, partition: i32, records: bytes::Bytes) -> i64 {
    let request = RequestKind::Produce(m::ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![m::produce_request::TopicProduceData {
            name: "durable".into(),
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
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(partition.error_code, 0, "{:?}", partition.error_message);
    partition.base_offset
}

/// Every value in a partition, from offset 0.
async fn values(client: &mut RawClient, partition: i32) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..1000 {
        let request = RequestKind::Fetch(m::FetchRequest {
            replica_id: -1,
            max_wait_ms: 0,
            max_bytes: 1 << 20,
            topics: vec![m::fetch_request::FetchTopic {
                topic: "durable".into(),
                partitions: vec![m::fetch_request::FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let ResponseKind::Fetch(response) = client.call(&request, 12).await else {
            panic!("not a fetch response")
        };
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0);
        let records = data.records.clone().unwrap_or_default();
        if records.is_empty() {
            return out;
        }
        for batch in Batches::new(records) {
            let batch = batch.expect("batch");
            offset = batch.next_offset();
            for record in batch.records().expect("records") {
                let value = record.expect("record").value.expect("value");
                out.push(String::from_utf8(value.to_vec()).expect("utf-8"));
            }
        }
    }
    panic!("fetching never reached the end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_and_offsets_survive_sigkill_and_a_torn_tail_is_cut() {
    let dir = temp_dir("durable");
    let broker = BrokerProcess::start(&[
        "--brokers",
        "1",
        "--default-partitions",
        "2",
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
    ]);
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let create = RequestKind::CreateTopics(m::CreateTopicsRequest {
        topics: vec![m::create_topics_request::CreatableTopic {
            name: "durable".into(),
            num_partitions: 2,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    });
    let ResponseKind::CreateTopics(created) = client.call(&create, 7).await else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(created.topics[0].error_code, 0);
    let mut acknowledged = [0usize; 2];
    let mut sent = 0;
    for round in 0..50 {
        let partition = round % 2;
        let base = produce(&mut client, partition as i32, batch(sent, 20)).await;
        assert_eq!(base, acknowledged[partition] as i64, "offsets are dense");
        acknowledged[partition] += 20;
        sent += 20;
    }
    // A manually assigned consumer's commit.
    let commit = RequestKind::OffsetCommit(m::OffsetCommitRequest {
        group_id: "durable-readers".into(),
        generation_id_or_member_epoch: -1,
        topics: vec![m::offset_commit_request::OffsetCommitRequestTopic {
            name: "durable".into(),
            partitions: vec![m::offset_commit_request::OffsetCommitRequestPartition {
                partition_index: 1,
                committed_offset: 120,
                committed_metadata: Some("checkpoint".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::OffsetCommit(committed) = client.call(&commit, 8).await else {
        panic!("not an OffsetCommit response")
    };
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    drop(client);
    broker.kill();

    // A write cut short by the crash: half a batch at the end of a segment.
    let torn = batch(0, 5);
    let segment = dir.join("durable-0").join(format!("{:020}.log", 0));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .expect("segment exists");
    file.write_all(&torn[..torn.len() / 2]).expect("torn write");
    drop(file);

    let broker = BrokerProcess::start(&[
        "--brokers",
        "1",
        "--default-partitions",
        "2",
        "--data-dir",
        dir.to_str().expect("utf-8 path"),
    ]);
    let mut client = RawClient::connect(&broker.bootstrap).await;
    let mut all = Vec::new();
    for partition in 0..2 {
        let values = values(&mut client, partition).await;
        assert_eq!(
            values.len(),
            acknowledged[partition as usize],
            "partition {partition}"
        );
        all.extend(values);
    }
    all.sort();
    let mut expected: Vec<String> = (0..sent).map(|i| format!("value-{i}")).collect();
    expected.sort();
    assert_eq!(all, expected);
    // The committed offset came back too.
    let fetch = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        groups: vec![m::offset_fetch_request::OffsetFetchRequestGroup {
            group_id: "durable-readers".into(),
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    });
    let ResponseKind::OffsetFetch(offsets) = client.call(&fetch, 8).await else {
        panic!("not an OffsetFetch response")
    };
    let partition = &offsets.groups[0].topics[0].partitions[0];
    assert_eq!(
        (
            partition.partition_index,
            partition.committed_offset,
            partition.metadata.as_deref()
        ),
        (1, 120, Some("checkpoint"))
    );
    // The log goes on where it left off.
    let next = produce(&mut client, 0, batch(sent, 1)).await;
    assert_eq!(next, acknowledged[0] as i64);
    drop(client);
    drop(broker);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
