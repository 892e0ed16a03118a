//! Requests a coordinator must answer get NOT_COORDINATOR from the other
//! brokers, as on a real cluster, so a client that sends them to the wrong
//! broker fails here too; and topic config names Kafka does not know are
//! refused.

mod support;

use kafka_broker::protocol::ErrorCode;
use kafka_broker::protocol::messages::{self as m, RequestKind, ResponseKind};
use kafka_broker::{BrokerConfig, Cluster};
use support::RawClient;

const NOT_COORDINATOR: i16 = ErrorCode::NotCoordinator.code();

async fn three_brokers() -> Cluster {
    Cluster::start(BrokerConfig {
        brokers: 3,
        ..BrokerConfig::default()
    })
    .await
    .expect("cluster")
}

/// The node id of `key`'s coordinator, asked of broker 0.
async fn coordinator_of(cluster: &Cluster, key: &str, key_type: i8) -> i32 {
    let mut any = RawClient::connect(&cluster.brokers()[0].addr.to_string()).await;
    let find = RequestKind::FindCoordinator(m::FindCoordinatorRequest {
        key: key.into(),
        key_type,
        ..Default::default()
    });
    let ResponseKind::FindCoordinator(found) = any.call(&find, 3).await else {
        panic!("not a FindCoordinator response")
    };
    assert_eq!(found.error_code, 0);
    found.node_id
}

/// Connections to `key`'s coordinator and to a broker that is not.
async fn here_and_elsewhere(cluster: &Cluster, key: &str, key_type: i8) -> (RawClient, RawClient) {
    let coordinator = coordinator_of(cluster, key, key_type).await;
    let brokers = cluster.brokers();
    let addr = |id: i32| {
        brokers
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.addr.to_string())
            .expect("broker")
    };
    let other = brokers
        .iter()
        .map(|b| b.id)
        .find(|id| *id != coordinator)
        .expect("another broker");
    (
        RawClient::connect(&addr(coordinator)).await,
        RawClient::connect(&addr(other)).await,
    )
}

fn commit(group: &str) -> RequestKind {
    RequestKind::OffsetCommit(m::OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![m::offset_commit_request::OffsetCommitRequestTopic {
            name: "routed".into(),
            partitions: vec![m::offset_commit_request::OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 5,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_requests_are_answered_by_the_groups_coordinator_only() {
    let cluster = three_brokers().await;
    cluster.create_topic("routed", 1).expect("topic");
    let (mut here, mut elsewhere) = here_and_elsewhere(&cluster, "routed-group", 0).await;

    let ResponseKind::OffsetCommit(refused) = elsewhere.call(&commit("routed-group"), 8).await
    else {
        panic!("not an OffsetCommit response")
    };
    assert_eq!(refused.topics[0].partitions[0].error_code, NOT_COORDINATOR);
    let ResponseKind::OffsetCommit(taken) = here.call(&commit("routed-group"), 8).await else {
        panic!("not an OffsetCommit response")
    };
    assert_eq!(taken.topics[0].partitions[0].error_code, 0);

    let fetch = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        group_id: "routed-group".into(),
        topics: None,
        ..Default::default()
    });
    let ResponseKind::OffsetFetch(refused) = elsewhere.call(&fetch, 7).await else {
        panic!("not an OffsetFetch response")
    };
    assert_eq!(refused.error_code, NOT_COORDINATOR);
    assert!(refused.topics.is_empty(), "nothing of the group leaks");

    // Batched forms answer per group: one coordinated here, one not.
    let home = coordinator_of(&cluster, "routed-group", 0).await;
    let mut coordinated_elsewhere = None;
    for i in 0..100 {
        let group = format!("other-group-{i}");
        if coordinator_of(&cluster, &group, 0).await != home {
            coordinated_elsewhere = Some(group);
            break;
        }
    }
    let coordinated_elsewhere = coordinated_elsewhere.expect("a group another broker coordinates");
    let batched = RequestKind::OffsetFetch(m::OffsetFetchRequest {
        groups: vec![
            m::offset_fetch_request::OffsetFetchRequestGroup {
                group_id: "routed-group".into(),
                topics: None,
                ..Default::default()
            },
            m::offset_fetch_request::OffsetFetchRequestGroup {
                group_id: coordinated_elsewhere.clone(),
                topics: None,
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    let ResponseKind::OffsetFetch(fetched) = here.call(&batched, 8).await else {
        panic!("not an OffsetFetch response")
    };
    let code_of = |group: &str| {
        fetched
            .groups
            .iter()
            .find(|g| g.group_id == group)
            .map(|g| g.error_code)
    };
    assert_eq!(code_of("routed-group"), Some(0));
    assert_eq!(code_of(&coordinated_elsewhere), Some(NOT_COORDINATOR));
    let committed = fetched
        .groups
        .iter()
        .find(|g| g.group_id == "routed-group")
        .and_then(|g| g.topics.first())
        .and_then(|t| t.partitions.first())
        .map(|p| p.committed_offset);
    assert_eq!(committed, Some(5));

    let describe = RequestKind::DescribeGroups(m::DescribeGroupsRequest {
        groups: vec!["routed-group".into(), coordinated_elsewhere.clone()],
        ..Default::default()
    });
    let ResponseKind::DescribeGroups(described) = here.call(&describe, 5).await else {
        panic!("not a DescribeGroups response")
    };
    let code_of = |group: &str| {
        described
            .groups
            .iter()
            .find(|g| g.group_id == group)
            .map(|g| g.error_code)
    };
    assert_eq!(code_of("routed-group"), Some(0));
    assert_eq!(code_of(&coordinated_elsewhere), Some(NOT_COORDINATOR));

    // Each broker lists only the groups it coordinates.
    let list = RequestKind::ListGroups(m::ListGroupsRequest::default());
    let ResponseKind::ListGroups(listed_here) = here.call(&list, 4).await else {
        panic!("not a ListGroups response")
    };
    let ResponseKind::ListGroups(listed_elsewhere) = elsewhere.call(&list, 4).await else {
        panic!("not a ListGroups response")
    };
    assert!(
        listed_here
            .groups
            .iter()
            .any(|g| g.group_id == "routed-group")
    );
    assert!(
        !listed_elsewhere
            .groups
            .iter()
            .any(|g| g.group_id == "routed-group")
    );

    let delete = RequestKind::DeleteGroups(m::DeleteGroupsRequest {
        groups_names: vec!["routed-group".into()],
        ..Default::default()
    });
    let ResponseKind::DeleteGroups(refused) = elsewhere.call(&delete, 2).await else {
        panic!("not a DeleteGroups response")
    };
    assert_eq!(refused.results[0].error_code, NOT_COORDINATOR);
    let ResponseKind::DeleteGroups(deleted) = here.call(&delete, 2).await else {
        panic!("not a DeleteGroups response")
    };
    assert_eq!(deleted.results[0].error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_requests_are_answered_by_the_transactions_coordinator_only() {
    let cluster = three_brokers().await;
    let (mut here, mut elsewhere) = here_and_elsewhere(&cluster, "routed-txn", 1).await;
    let init = |id: Option<&str>| {
        RequestKind::InitProducerId(m::InitProducerIdRequest {
            transactional_id: id.map(str::to_owned),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        })
    };
    let ResponseKind::InitProducerId(refused) = elsewhere.call(&init(Some("routed-txn")), 4).await
    else {
        panic!("not an InitProducerId response")
    };
    assert_eq!(refused.error_code, NOT_COORDINATOR);
    // An idempotent producer (no transactional id) may ask any broker.
    let ResponseKind::InitProducerId(idempotent) = elsewhere.call(&init(None), 4).await else {
        panic!("not an InitProducerId response")
    };
    assert_eq!(idempotent.error_code, 0);
    let ResponseKind::InitProducerId(granted) = here.call(&init(Some("routed-txn")), 4).await
    else {
        panic!("not an InitProducerId response")
    };
    assert_eq!(granted.error_code, 0);

    let end = RequestKind::EndTxn(m::EndTxnRequest {
        transactional_id: "routed-txn".into(),
        producer_id: granted.producer_id,
        producer_epoch: granted.producer_epoch,
        committed: false,
        ..Default::default()
    });
    let ResponseKind::EndTxn(refused) = elsewhere.call(&end, 3).await else {
        panic!("not an EndTxn response")
    };
    assert_eq!(refused.error_code, NOT_COORDINATOR);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_kafka_does_not_know_or_of_the_wrong_type_are_refused() {
    let cluster = three_brokers().await;
    let mut client = RawClient::connect(&cluster.brokers()[0].addr.to_string()).await;
    let create_with = |config: &str, value: &str| {
        RequestKind::CreateTopics(m::CreateTopicsRequest {
            topics: vec![m::create_topics_request::CreatableTopic {
                name: format!("with-{config}-{value}"),
                num_partitions: 1,
                replication_factor: 1,
                configs: vec![m::create_topics_request::CreatableTopicConfig {
                    name: config.into(),
                    value: Some(value.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 5000,
            ..Default::default()
        })
    };
    let create = |config: &str| create_with(config, "1000");
    let ResponseKind::CreateTopics(typo) = client.call(&create("retention.msec"), 5).await else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(typo.topics[0].error_code, ErrorCode::InvalidConfig.code());
    assert!(
        typo.topics[0]
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("retention.msec")),
        "{:?}",
        typo.topics[0].error_message
    );
    let ResponseKind::CreateTopics(known) = client.call(&create("segment.ms"), 5).await else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(known.topics[0].error_code, 0);
    // A known name with a value of the wrong type is refused too.
    for (config, value) in [
        ("min.insync.replicas", "two"),
        ("message.timestamp.type", "WallClock"),
        ("compression.type", "brotli"),
        ("preallocate", "yes"),
    ] {
        let ResponseKind::CreateTopics(refused) = client.call(&create_with(config, value), 5).await
        else {
            panic!("not a CreateTopics response")
        };
        assert_eq!(
            refused.topics[0].error_code,
            ErrorCode::InvalidConfig.code(),
            "{config}={value}"
        );
    }
}
