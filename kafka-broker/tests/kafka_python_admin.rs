//! kafka-python's `KafkaAdminClient` against the bundled broker: records
//! deletion, topic configs, the cluster description and group offsets, with
//! the broker's own state checked over raw protocol afterwards.

mod support;

use std::time::Duration;

use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use tokio::process::Command;

/// The field `name` of the script's JSON report, as compact JSON text.
fn field(report: &str, name: &str) -> String {
    let key = format!("\"{name}\": ");
    let start = report
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
        + key.len();
    let rest = &report[start..];
    // A value ends at the comma or brace that closes it at depth 0.
    let mut depth = 0i32;
    let mut in_string = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '{' | '[' if !in_string => depth += 1,
            '}' | ']' if !in_string && depth > 0 => depth -= 1,
            ',' | '}' if !in_string && depth == 0 => return rest[..i].to_owned(),
            _ => {}
        }
    }
    rest.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_admin_client_deletes_records_alters_configs_and_manages_group_offsets() {
    if !support::python_module("kafka") {
        return;
    }
    let cluster = support::cluster(3, 1).await;
    let bootstrap = cluster.bootstrap_servers();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/admin.py");
    let output = support::run(
        Command::new("python3").args([script, &bootstrap, "py-admin"]),
        None,
        Duration::from_secs(120),
    )
    .await;
    let report = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    println!("{report}");
    let check = |name: &str, expected: &str| {
        assert_eq!(field(&report, name), expected, "{name} in {report}");
    };
    check("create", "[0]");
    check("create_again", "[36]");
    check("delete_records", r#"{"0": 4, "1": 10}"#);
    check("delete_past_end", r#""OffsetOutOfRangeError""#);
    check("earliest", "[4, 10, 0]");
    check("read_after_delete", "[4, 5, 6, 7, 8, 9]");
    check("alter_incremental", r#""OK""#);
    check(
        "after_incremental",
        r#"{"retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"]}"#,
    );
    // kafka-python's legacy path resends the other modified keys itself,
    // since AlterConfigs resets what it leaves out.
    check("alter_legacy", r#""OK""#);
    check(
        "after_legacy",
        r#"{"retention.bytes": ["123456", "DYNAMIC_TOPIC_CONFIG"], "retention.ms": ["3600000", "DYNAMIC_TOPIC_CONFIG"]}"#,
    );
    check("reset", r#""OK""#);
    check(
        "after_reset",
        r#"{"retention.bytes": ["123456", "DYNAMIC_TOPIC_CONFIG"]}"#,
    );
    assert!(
        field(&report, "alter_invalid").contains("InvalidConfigurationError"),
        "{report}"
    );
    check("alter_validate_only", r#""OK""#);
    check(
        "after_refusals",
        r#"{"retention.bytes": ["123456", "DYNAMIC_TOPIC_CONFIG"]}"#,
    );
    let brokers: Vec<String> = cluster
        .brokers()
        .iter()
        .map(|b| format!("[{}, \"127.0.0.1\", {}]", b.id, b.addr.port()))
        .collect();
    check(
        "cluster",
        &format!(
            r#"{{"brokers": [{}], "cluster_id": "kafka-sdk-local-cluster", "controller_id": 0}}"#,
            brokers.join(", ")
        ),
    );
    check("alter_group_offsets", r#"["NoError", "NoError"]"#);
    check("group_offsets", r#"{"0": 5, "2": 7}"#);
    check("delete_group_offsets", r#"{"0": "NoError"}"#);
    check("group_offsets_after_delete", r#"{"2": 7}"#);
    check(
        "delete_subscribed",
        r#"{"2": "GroupSubscribedToTopicError"}"#,
    );
    check(
        "live_delete_groups",
        r#"{"py-live-group": "NonEmptyGroupError"}"#,
    );
    check(
        "delete_groups",
        r#"{"py-admin-group": "OK", "py-never-group": "GroupIdNotFoundError"}"#,
    );
    check(
        "delete_offsets_of_deleted_group",
        r#""GroupIdNotFoundError""#,
    );

    // The broker agrees: partition 0 starts at 4 on its leader, found by Metadata.
    let first = cluster.brokers()[0].addr.to_string();
    let mut client = support::RawClient::connect(&first).await;
    let metadata = RequestKind::Metadata(m::MetadataRequest {
        topics: None,
        ..Default::default()
    });
    let ResponseKind::Metadata(metadata) = client.call(&metadata, 9).await else {
        panic!("not a Metadata response")
    };
    let topic = metadata
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some("py-admin"))
        .expect("the topic");
    let leader = topic
        .partitions
        .iter()
        .find(|p| p.partition_index == 0)
        .expect("partition 0")
        .leader_id;
    let leader = cluster
        .brokers()
        .into_iter()
        .find(|b| b.id == leader)
        .expect("the leader is a broker");
    let mut client = support::RawClient::connect(&leader.addr.to_string()).await;
    let request = RequestKind::ListOffsets(m::ListOffsetsRequest {
        replica_id: -1,
        topics: vec![m::list_offsets_request::ListOffsetsTopic {
            name: "py-admin".into(),
            partitions: vec![m::list_offsets_request::ListOffsetsPartition {
                partition_index: 0,
                timestamp: -2,
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
    assert_eq!((p.error_code, p.offset), (0, 4));
}
