//! Subscriptions written by real clients (captured from kcat/librdkafka and
//! kafka-python, fixtures of the codec) decode with this client's consumer
//! protocol, so mixed groups can share an assignor.

use bytes::Bytes;
use kafka_client::consumer::assignor::{Assignor, Member, RangeAssignor, decode_subscription};
use kafka_client::protocol::frame::decode_request;
use kafka_client::protocol::messages::RequestKind;

fn join_group(client: &str, file: &str) -> kafka_client::protocol::messages::JoinGroupRequest {
    let path = format!(
        "{}/../kafka-protocol/tests/fixtures/{client}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let frame = Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")));
    match decode_request(frame).expect("decodes").1 {
        RequestKind::JoinGroup(join) => join,
        other => panic!("{path}: not JoinGroup: {:?}", other.api_key()),
    }
}

#[test]
fn kcat_and_kafka_python_subscriptions_decode_and_can_be_assigned() {
    let mut members = Vec::new();
    for (client, file) in [
        ("kcat", "join_group_v5.bin"),
        ("kafka_python", "join_group_v7.bin"),
    ] {
        let join = join_group(client, file);
        assert!(!join.protocols.is_empty(), "{client}");
        let protocol = join
            .protocols
            .iter()
            .find(|p| p.name == "range" || p.name == "roundrobin")
            .unwrap_or(&join.protocols[0]);
        let subscription = decode_subscription(&protocol.metadata).expect("subscription");
        assert!(
            !subscription.topics.is_empty(),
            "{client} subscribed to nothing"
        );
        members.push(Member {
            id: format!("{client}-member"),
            instance_id: None,
            subscription,
        });
    }
    let topics: std::collections::BTreeMap<String, i32> = members
        .iter()
        .flat_map(|m| m.subscription.topics.iter().cloned())
        .map(|t| (t, 4))
        .collect();
    let assignment = RangeAssignor.assign(&members, &topics);
    let assigned: usize = assignment
        .values()
        .flat_map(|t| t.values())
        .map(Vec::len)
        .sum();
    assert_eq!(assigned, topics.len() * 4, "every partition assigned once");
}
