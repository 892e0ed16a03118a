//! The admin client against the bundled broker: topics, cluster, groups
//! and their offsets, offsets and records, configs; retries on the codes
//! that say "ask again", and timeouts against a broker that never answers.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_broker::{FaultAction, FaultScope};
use kafka_client::Error;
use kafka_client::admin::{
    Admin, AdminSettings, AlterConfigOp, ConfigResource, ConfigSource, NewTopic, OffsetAndMetadata,
    OffsetSpec, TopicOptions,
};
use kafka_client::consumer::{Consumer, ConsumerSettings, IsolationLevel, OffsetReset};
use kafka_client::producer::{Producer, ProducerRecord, ProducerSettings};
use kafka_client::protocol::{ApiKey, ErrorCode};
use support::{cluster, tp, unanswering_broker};

fn admin(cluster: &kafka_broker::Cluster) -> Admin {
    Admin::new(AdminSettings::new(&cluster.bootstrap_servers())).expect("admin")
}

fn code_of<T: std::fmt::Debug>(result: Option<&Result<T, Error>>) -> Option<ErrorCode> {
    match result {
        Some(Err(e)) => e.code(),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn produce(cluster: &kafka_broker::Cluster, topic: &str, partition: i32, count: usize) {
    let producer =
        Producer::new(ProducerSettings::new(&cluster.bootstrap_servers())).expect("producer");
    for i in 0..count {
        producer
            .send_and_wait(
                ProducerRecord::new(topic)
                    .partition(partition)
                    .value(format!("v{i}"))
                    .timestamp(1_000 + i as i64),
            )
            .await
            .expect("delivered");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_described_grown_listed_and_deleted() {
    let cluster = cluster(2).await;
    let admin = admin(&cluster);
    let created = admin
        .create_topics(&[
            NewTopic::new("alpha", 3).config("retention.ms", "60000"),
            NewTopic::new("beta", 1),
        ])
        .await
        .expect("create");
    created.all().expect("both created");

    // Each topic on its own: one exists, the other is new.
    let again = admin
        .create_topics(&[NewTopic::new("alpha", 3), NewTopic::new("gamma", 2)])
        .await
        .expect("create");
    assert_eq!(
        code_of(again.get(&"alpha".to_owned())),
        Some(ErrorCode::TopicAlreadyExists)
    );
    assert!(matches!(again.get(&"gamma".to_owned()), Some(Ok(()))));

    // validate_only changes nothing.
    let options = TopicOptions {
        validate_only: true,
        ..TopicOptions::default()
    };
    admin
        .create_topics_with(&[NewTopic::new("only-validated", 1)], &options)
        .await
        .expect("validate")
        .all()
        .expect("valid");

    let described = admin
        .describe_topics(&["alpha", "beta", "missing"])
        .await
        .expect("describe");
    let alpha = described
        .get(&"alpha".to_owned())
        .and_then(|r| r.as_ref().ok())
        .expect("alpha");
    assert_eq!(alpha.partitions.len(), 3);
    assert!(alpha.partitions.iter().all(|p| p.leader.is_some()));
    assert!(!alpha.topic_id.is_nil());
    assert_eq!(
        code_of(described.get(&"missing".to_owned())),
        Some(ErrorCode::UnknownTopicOrPartition)
    );

    admin
        .create_partitions(
            &BTreeMap::from([("beta".to_owned(), 4)]),
            &TopicOptions::default(),
        )
        .await
        .expect("grow")
        .all()
        .expect("grown");
    let shrink = admin
        .create_partitions(
            &BTreeMap::from([("beta".to_owned(), 2)]),
            &TopicOptions::default(),
        )
        .await
        .expect("shrink");
    assert_eq!(
        code_of(shrink.get(&"beta".to_owned())),
        Some(ErrorCode::InvalidPartitions)
    );
    let beta = admin.describe_topics(&["beta"]).await.expect("describe");
    assert_eq!(beta.all().expect("beta")["beta"].partitions.len(), 4);

    let names: Vec<String> = admin
        .list_topics(false)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    let deleted = admin
        .delete_topics(&["gamma", "never-was"])
        .await
        .expect("delete");
    assert!(matches!(deleted.get(&"gamma".to_owned()), Some(Ok(()))));
    assert_eq!(
        code_of(deleted.get(&"never-was".to_owned())),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    let names: Vec<String> = admin
        .list_topics(false)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);

    let cluster_description = admin.describe_cluster().await.expect("cluster");
    let ids: Vec<i32> = cluster_description.brokers.iter().map(|b| b.id).collect();
    assert_eq!(ids, [0, 1]);
    assert!(cluster_description.controller.is_some());
}

/// NOT_CONTROLLER is asked again, for the topics it concerned only: the
/// topic is created once, and reported created rather than as existing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_controller_is_asked_again() {
    let cluster = cluster(2).await;
    let admin = admin(&cluster);
    let moved = cluster.inject_error(ApiKey::CreateTopics, ErrorCode::NotController, 2);
    admin
        .create_topics(&[NewTopic::new("retried", 2)])
        .await
        .expect("create")
        .all()
        .expect("created despite NOT_CONTROLLER");
    assert_eq!(moved.hits(), 2);
    let described = admin.describe_topics(&["retried"]).await.expect("describe");
    assert_eq!(
        described.all().expect("retried")["retried"]
            .partitions
            .len(),
        2
    );
    // A code that asking again cannot fix is the caller's at once.
    let denied = cluster.inject_error(
        ApiKey::DescribeGroups,
        ErrorCode::GroupAuthorizationFailed,
        1,
    );
    let described = admin
        .describe_consumer_groups(&["secret"])
        .await
        .expect("describe");
    assert_eq!(
        code_of(described.get(&"secret".to_owned())),
        Some(ErrorCode::GroupAuthorizationFailed)
    );
    assert_eq!(denied.hits(), 1);
    let loading = cluster.inject_error(
        ApiKey::DeleteGroups,
        ErrorCode::CoordinatorLoadInProgress,
        2,
    );
    let deleted = admin
        .delete_consumer_groups(&["never-was"])
        .await
        .expect("delete");
    assert_eq!(loading.hits(), 2);
    assert_eq!(
        code_of(deleted.get(&"never-was".to_owned())),
        Some(ErrorCode::GroupIdNotFound),
        "asked again past the loading coordinator"
    );
}

/// A cluster that never answers: each call ends with a timeout after
/// `default.api.timeout.ms`, not later and without hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_end_at_their_timeout_against_a_broker_that_never_answers() {
    let (addr, listener) = unanswering_broker().await;
    let mut settings = AdminSettings::new(&addr);
    settings.default_api_timeout = Duration::from_millis(800);
    settings.network.request_timeout = Duration::from_millis(300);
    let admin = Admin::new(settings).expect("admin");
    let started = tokio::time::Instant::now();
    let error = admin.describe_cluster().await.expect_err("no answer");
    assert!(error.retriable(), "{error}");
    let created = admin
        .create_topics(&[NewTopic::new("t", 1)])
        .await
        .expect("create");
    assert!(
        matches!(created.get(&"t".to_owned()), Some(Err(Error::Timeout(_)))),
        "{created:?}"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2500),
        "two calls of 800 ms took {elapsed:?}"
    );
    listener.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_described_and_their_offsets_read_altered_and_deleted() {
    let cluster = cluster(2).await;
    cluster.create_topic("grouped", 2).expect("topic");
    produce(&cluster, "grouped", 0, 3).await;
    let admin = admin(&cluster);

    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some("described".into());
    settings.auto_offset_reset = OffsetReset::Earliest;
    settings.enable_auto_commit = false;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    settings.network.client_id = Some("admin-test".into());
    let mut consumer = Consumer::new(settings).expect("consumer");
    consumer.subscribe(&["grouped"]).expect("subscribe");
    let mut read = 0;
    for _ in 0..100 {
        read += consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll")
            .len();
        if read == 3 {
            break;
        }
    }
    assert_eq!(read, 3);
    consumer.commit().await.expect("commit");

    let groups = admin.list_consumer_groups().await.expect("list");
    let listed = groups
        .iter()
        .find(|g| g.group_id == "described")
        .expect("listed");
    assert_eq!(listed.protocol_type, "consumer");
    assert_eq!(listed.state.as_deref(), Some("Stable"));

    let described = admin
        .describe_consumer_groups(&["described"])
        .await
        .expect("describe")
        .all()
        .expect("described");
    let group = &described["described"];
    assert_eq!(group.state, "Stable");
    assert_eq!(group.assignor, "range");
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].client_id, "admin-test");
    assert_eq!(
        group.members[0].assignment,
        [tp("grouped", 0), tp("grouped", 1)]
    );

    let offsets = admin
        .list_consumer_group_offsets("described", None)
        .await
        .expect("offsets");
    assert_eq!(offsets.get(&tp("grouped", 0)).map(|o| o.offset), Some(3));

    // A group with members refuses offsets from outside and deletion.
    let refused = admin
        .alter_consumer_group_offsets(
            "described",
            &BTreeMap::from([(tp("grouped", 0), OffsetAndMetadata::new(1))]),
        )
        .await
        .expect("alter");
    assert!(refused.get(&tp("grouped", 0)).is_some_and(|r| r.is_err()));
    let deleted = admin
        .delete_consumer_groups(&["described"])
        .await
        .expect("delete");
    assert_eq!(
        code_of(deleted.get(&"described".to_owned())),
        Some(ErrorCode::NonEmptyGroup)
    );

    consumer.close().await.expect("close");
    admin
        .alter_consumer_group_offsets(
            "described",
            &BTreeMap::from([(
                tp("grouped", 0),
                OffsetAndMetadata {
                    offset: 1,
                    leader_epoch: None,
                    metadata: "reset by admin".into(),
                },
            )]),
        )
        .await
        .expect("alter")
        .all()
        .expect("altered once empty");
    let offsets = admin
        .list_consumer_group_offsets("described", Some(&[tp("grouped", 0)]))
        .await
        .expect("offsets");
    assert_eq!(
        offsets.get(&tp("grouped", 0)),
        Some(&OffsetAndMetadata {
            offset: 1,
            leader_epoch: None,
            metadata: "reset by admin".into(),
        })
    );
    admin
        .delete_consumer_groups(&["described"])
        .await
        .expect("delete")
        .all()
        .expect("deleted once empty");
    let offsets = admin
        .list_consumer_group_offsets("described", None)
        .await
        .expect("offsets");
    assert!(offsets.is_empty(), "{offsets:?}");
}

/// A coordinator that moved or is loading is asked again, for the
/// partitions it concerned only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_or_loading_coordinator_is_asked_again() {
    let cluster = cluster(2).await;
    cluster.create_topic("moving", 1).expect("topic");
    let admin = admin(&cluster);
    let moved = cluster.inject_error(ApiKey::OffsetCommit, ErrorCode::NotCoordinator, 2);
    admin
        .alter_consumer_group_offsets(
            "moving-group",
            &BTreeMap::from([(tp("moving", 0), OffsetAndMetadata::new(7))]),
        )
        .await
        .expect("alter")
        .all()
        .expect("committed despite NOT_COORDINATOR");
    assert_eq!(moved.hits(), 2);
    let loading =
        cluster.inject_error(ApiKey::OffsetFetch, ErrorCode::CoordinatorLoadInProgress, 2);
    let offsets = admin
        .list_consumer_group_offsets("moving-group", None)
        .await
        .expect("read despite COORDINATOR_LOAD_IN_PROGRESS");
    assert_eq!(loading.hits(), 2);
    assert_eq!(offsets.get(&tp("moving", 0)).map(|o| o.offset), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_listed_earliest_latest_and_by_time() {
    let cluster = cluster(2).await;
    cluster.create_topic("offsets", 2).expect("topic");
    produce(&cluster, "offsets", 1, 5).await;
    let admin = admin(&cluster);
    let specs = BTreeMap::from([
        ((tp("offsets", 0)), OffsetSpec::Latest),
        ((tp("offsets", 1)), OffsetSpec::Timestamp(1_002)),
    ]);
    let listed = admin
        .list_offsets(&specs, IsolationLevel::ReadUncommitted)
        .await
        .expect("list")
        .all()
        .expect("listed");
    assert_eq!(listed[&tp("offsets", 0)].offset, 0);
    assert_eq!(listed[&tp("offsets", 1)].offset, 2);
    assert_eq!(listed[&tp("offsets", 1)].timestamp, 1_002);
    let ends = admin
        .list_offsets(
            &BTreeMap::from([
                (tp("offsets", 1), OffsetSpec::Latest),
                (tp("unknown", 0), OffsetSpec::Earliest),
                (tp("offsets", 9), OffsetSpec::Earliest),
            ]),
            IsolationLevel::ReadCommitted,
        )
        .await
        .expect("list");
    assert_eq!(
        ends.get(&tp("offsets", 1))
            .and_then(|r| r.as_ref().ok())
            .map(|o| o.offset),
        Some(5)
    );
    for missing in [tp("unknown", 0), tp("offsets", 9)] {
        assert_eq!(
            code_of(ends.get(&missing)),
            Some(ErrorCode::UnknownTopicOrPartition),
            "{missing}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_before_an_offset_are_deleted() {
    let cluster = cluster(2).await;
    cluster.create_topic("trimmed", 2).expect("topic");
    produce(&cluster, "trimmed", 0, 5).await;
    produce(&cluster, "trimmed", 1, 2).await;
    let admin = admin(&cluster);
    let deleted = admin
        .delete_records(&BTreeMap::from([
            (tp("trimmed", 0), 3),
            (tp("trimmed", 1), -1),
            (tp("trimmed", 7), 0),
        ]))
        .await
        .expect("delete");
    assert_eq!(
        deleted.get(&tp("trimmed", 0)).and_then(|r| r.as_ref().ok()),
        Some(&3)
    );
    assert_eq!(
        deleted.get(&tp("trimmed", 1)).and_then(|r| r.as_ref().ok()),
        Some(&2),
        "-1 deletes up to the high watermark"
    );
    assert_eq!(
        code_of(deleted.get(&tp("trimmed", 7))),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    let beyond = admin
        .delete_records(&BTreeMap::from([(tp("trimmed", 0), 99)]))
        .await
        .expect("delete");
    assert_eq!(
        code_of(beyond.get(&tp("trimmed", 0))),
        Some(ErrorCode::OffsetOutOfRange)
    );
    let earliest = admin
        .list_offsets(
            &BTreeMap::from([(tp("trimmed", 0), OffsetSpec::Earliest)]),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .expect("list")
        .all()
        .expect("listed");
    assert_eq!(earliest[&tp("trimmed", 0)].offset, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_described() {
    let cluster = cluster(1).await;
    let admin = admin(&cluster);
    admin
        .create_topics(&[NewTopic::new("configured", 1).config("retention.ms", "123456")])
        .await
        .expect("create")
        .all()
        .expect("created");
    let described = admin
        .describe_configs(&[
            ConfigResource::Topic("configured".into()),
            ConfigResource::Topic("absent".into()),
        ])
        .await
        .expect("describe");
    let entries = described
        .get(&ConfigResource::Topic("configured".into()))
        .and_then(|r| r.as_ref().ok())
        .expect("configured");
    let retention = entries
        .iter()
        .find(|e| e.name == "retention.ms")
        .expect("retention.ms");
    assert_eq!(retention.value.as_deref(), Some("123456"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(
        described
            .get(&ConfigResource::Topic("absent".into()))
            .is_some_and(|r| r.is_err())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_are_altered_incrementally() {
    let cluster = cluster(1).await;
    let admin = admin(&cluster);
    admin
        .create_topics(&[NewTopic::new("altered", 1).config("retention.ms", "1000")])
        .await
        .expect("create")
        .all()
        .expect("created");
    let topic = ConfigResource::Topic("altered".into());
    let retention = |entries: &[kafka_client::admin::ConfigEntry]| {
        entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .map(|e| (e.value.clone(), e.source))
    };
    let set = BTreeMap::from([(
        topic.clone(),
        vec![AlterConfigOp::Set("retention.ms".into(), "86400000".into())],
    )]);
    // Validate-only changes nothing.
    admin
        .incremental_alter_configs(&set, true)
        .await
        .expect("validate")
        .all()
        .expect("valid");
    let described = admin
        .describe_configs(std::slice::from_ref(&topic))
        .await
        .expect("describe");
    assert_eq!(
        retention(&described.all().expect("configs")[&topic]),
        Some((Some("1000".into()), ConfigSource::DynamicTopic))
    );
    admin
        .incremental_alter_configs(&set, false)
        .await
        .expect("alter")
        .all()
        .expect("altered");
    let described = admin
        .describe_configs(std::slice::from_ref(&topic))
        .await
        .expect("describe");
    assert_eq!(
        retention(&described.all().expect("configs")[&topic]),
        Some((Some("86400000".into()), ConfigSource::DynamicTopic))
    );
    let deleted = BTreeMap::from([(
        topic.clone(),
        vec![AlterConfigOp::Delete("retention.ms".into())],
    )]);
    admin
        .incremental_alter_configs(&deleted, false)
        .await
        .expect("alter")
        .all()
        .expect("deleted");
    let described = admin
        .describe_configs(std::slice::from_ref(&topic))
        .await
        .expect("describe");
    let (_, source) = retention(&described.all().expect("configs")[&topic]).expect("listed");
    assert_ne!(source, ConfigSource::DynamicTopic, "back to the default");

    let refused = admin
        .incremental_alter_configs(
            &BTreeMap::from([
                (
                    topic.clone(),
                    vec![AlterConfigOp::Set("retention.ms".into(), "soon".into())],
                ),
                (
                    ConfigResource::Topic("nowhere".into()),
                    vec![AlterConfigOp::Set("retention.ms".into(), "1".into())],
                ),
            ]),
            false,
        )
        .await
        .expect("alter");
    assert_eq!(code_of(refused.get(&topic)), Some(ErrorCode::InvalidConfig));
    assert_eq!(
        code_of(refused.get(&ConfigResource::Topic("nowhere".into()))),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
}

/// OffsetDelete (KIP-496): a group's committed offsets of a partition are
/// deleted, unless the group still has members subscribed to its topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_are_deleted_unless_the_group_reads_the_topic() {
    let cluster = cluster(1).await;
    cluster.create_topic("kept", 2).expect("topic");
    let admin = admin(&cluster);
    let offsets = BTreeMap::from([
        (tp("kept", 0), OffsetAndMetadata::new(4)),
        (tp("kept", 1), OffsetAndMetadata::new(9)),
    ]);
    admin
        .alter_consumer_group_offsets("pruned", &offsets)
        .await
        .expect("alter")
        .all()
        .expect("committed");
    admin
        .delete_consumer_group_offsets("pruned", &[tp("kept", 0)])
        .await
        .expect("delete")
        .all()
        .expect("deleted");
    let left = admin
        .list_consumer_group_offsets("pruned", None)
        .await
        .expect("offsets");
    assert_eq!(
        left.keys().cloned().collect::<Vec<_>>(),
        [tp("kept", 1)],
        "only the other partition's offset is left"
    );
    let unknown = admin
        .delete_consumer_group_offsets("never-was", &[tp("kept", 0)])
        .await
        .expect("delete");
    assert_eq!(
        code_of(unknown.get(&tp("kept", 0))),
        Some(ErrorCode::GroupIdNotFound)
    );

    let mut settings = ConsumerSettings::new(&cluster.bootstrap_servers());
    settings.group_id = Some("pruned".into());
    settings.enable_auto_commit = false;
    settings.heartbeat_interval = Duration::from_millis(100);
    settings.session_timeout = Duration::from_secs(6);
    let mut member = Consumer::new(settings).expect("consumer");
    member.subscribe(&["kept"]).expect("subscribe");
    for _ in 0..100 {
        member.poll(Duration::from_millis(50)).await.expect("poll");
        if !member.assignment().is_empty() {
            break;
        }
    }
    assert!(!member.assignment().is_empty(), "joined");
    let refused = admin
        .delete_consumer_group_offsets("pruned", &[tp("kept", 1)])
        .await
        .expect("delete");
    assert_eq!(
        code_of(refused.get(&tp("kept", 1))),
        Some(ErrorCode::GroupSubscribedToTopic)
    );
    member.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_by_broker_with_an_error_for_a_broker_that_fails() {
    let cluster = cluster(3).await;
    cluster.create_topic("tracked", 1).expect("topic");
    let admin = admin(&cluster);
    let names: Vec<String> = (0..9).map(|i| format!("listed-{i}")).collect();
    for name in &names {
        admin
            .alter_consumer_group_offsets(
                name,
                &BTreeMap::from([(tp("tracked", 0), OffsetAndMetadata::new(0))]),
            )
            .await
            .expect("commit")
            .all()
            .expect("committed");
    }
    let by_broker = admin
        .list_consumer_groups_by_broker()
        .await
        .expect("listed")
        .all()
        .expect("every broker answered");
    let mut all: Vec<&str> = by_broker
        .values()
        .flatten()
        .map(|g| g.group_id.as_str())
        .collect();
    all.sort();
    assert_eq!(all, names.iter().map(String::as_str).collect::<Vec<_>>());
    let (&down, down_groups) = by_broker
        .iter()
        .find(|(_, groups)| !groups.is_empty())
        .expect("a broker coordinates some group");

    // That broker drops every ListGroups: its error comes back on its own,
    // with what the others answered.
    let mut settings = AdminSettings::new(&cluster.bootstrap_servers());
    settings.default_api_timeout = Duration::from_millis(800);
    let impatient = Admin::new(settings).expect("admin");
    cluster.faults().add(
        FaultScope::api(ApiKey::ListGroups).on_broker(down),
        FaultAction::CloseConnection,
    );
    let outcome = impatient
        .list_consumer_groups_by_broker()
        .await
        .expect("the call itself succeeds");
    assert!(
        outcome.get(&down).is_some_and(Result::is_err),
        "{outcome:?}"
    );
    let others: usize = outcome
        .iter()
        .filter(|(id, _)| **id != down)
        .map(|(_, listed)| listed.as_ref().expect("answered").len())
        .sum();
    assert_eq!(others, names.len() - down_groups.len());
    assert!(
        impatient.list_consumer_groups().await.is_err(),
        "the merged listing fails as Java's all() does"
    );
}
