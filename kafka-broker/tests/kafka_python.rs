//! kafka-python consumer groups against the bundled broker: three members
//! share a six-partition topic, commit, resume after a restart of the
//! group, and take over a leaving member's partitions.

mod support;

use std::time::Duration;

use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use tokio::process::Command;

/// How long an Empty group waits for more members before its first
/// rebalance completes (Kafka's `group.initial.rebalance.delay.ms`, 3000 by
/// default; the bundled broker's default is 0).
///
/// kafka-python 3.0 sends its first JoinGroup before its first topic
/// metadata has arrived. A member elected leader that early assigns from an
/// empty metadata snapshot, sees the snapshot change a moment later and
/// rejoins; if that rejoin's JoinGroup outlasts a `poll()` and the leader's
/// snapshot is refreshed before the next one, kafka-python's
/// `ConsumerCoordinator.poll` stops asking for the join's result: the member
/// never applies its assignment nor re-enables its heartbeat, and its session
/// expires (client-side; the broker log shows the member simply going
/// silent after a successful SyncGroup). A real cluster's default delay keeps
/// the first rebalance open long enough for every member's metadata to
/// arrive, which is how kafka-python is deployed; the test does the same.
const INITIAL_REBALANCE_DELAY: &str = "group.initial.rebalance.delay.ms=1000";

/// The scenario against a fresh broker process.
async fn run_scenario() -> std::process::Output {
    let broker = support::BrokerProcess::start(&[
        "--brokers",
        "3",
        "--default-partitions",
        "6",
        "--config",
        INITIAL_REBALANCE_DELAY,
    ]);
    // The topic exists before the consumers subscribe.
    let first = broker.bootstrap.split(',').next().expect("a broker");
    let mut admin = support::RawClient::connect(first).await;
    let create = RequestKind::CreateTopics(m::CreateTopicsRequest {
        topics: vec![m::create_topics_request::CreatableTopic {
            name: "py-orders".into(),
            num_partitions: 6,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    });
    let ResponseKind::CreateTopics(created) = admin.call(&create, 7).await else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(created.topics[0].error_code, 0);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/consumer_group.py"
    );
    let output = tokio::time::timeout(
        Duration::from_secs(240),
        Command::new("python3")
            .args([script, &broker.bootstrap, "py-orders", "py-group"])
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script finishes within 240 s")
    .expect("python3 runs");
    assert!(
        output.status.success(),
        "consumer_group.py failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_python_group_consumes_each_message_once_and_resumes_from_commits() {
    if !support::python_module("kafka") {
        return;
    }
    let output = run_scenario().await;
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    let field = |name: &str| -> String {
        let start = report
            .find(&format!("\"{name}\": "))
            .unwrap_or_else(|| panic!("no {name} in {report}"));
        let rest = &report[start + name.len() + 4..];
        let end = rest.find(['}', ']']).map(|i| i + 1).unwrap_or(rest.len());
        rest[..end].to_owned()
    };
    assert_eq!(field("errors"), "[]", "consumer errors");
    assert_eq!(field("first_assignment"), "[2, 2, 2]");
    assert_eq!(
        field("first"),
        r#"{"expected": 600, "received": 600, "distinct": 600, "unexpected": 0}"#
    );
    // After the restart only the messages produced since are read.
    assert_eq!(
        field("second"),
        r#"{"expected": 300, "received": 300, "distinct": 300, "unexpected": 0}"#
    );
    assert_eq!(field("after_leave_assignment"), "[3, 3]");
    assert_eq!(
        field("third"),
        r#"{"expected": 300, "received": 300, "distinct": 300, "unexpected": 0}"#
    );
    assert!(
        report.contains("\"consumers_in_third\": 2"),
        "both remaining members read: {report}"
    );
}
