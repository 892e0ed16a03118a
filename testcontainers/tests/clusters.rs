//! Clusters started in-process and as a child process, driven through
//! kafka-client: round trips, fault controls, kill -9, clean-up on drop.

use std::collections::BTreeSet;
use std::time::Duration;

use kafka_client::producer::{Producer, ProducerRecord};
use kafka_testcontainers::{
    ApiKey, ClusterSecurity, Error, ErrorCode, KafkaCluster, Mode, RunningCluster, SaslMechanism,
    collect_records, unique_group, unique_topic, wait_for,
};

const LIMIT: Duration = Duration::from_secs(30);

/// Sends `value-0..count` round-robin over `partitions`, waits for every ack.
async fn produce(producer: &Producer, topic: &str, partitions: i32, count: usize) {
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = ProducerRecord::new(topic)
            .partition(i as i32 % partitions)
            .key(format!("key-{i}"))
            .value(format!("value-{i}"));
        deliveries.push(producer.send(record).await.expect("queued"));
    }
    for delivery in deliveries {
        delivery.await.expect("acknowledged");
    }
}

/// Consumes `count` records with a fresh group and checks they are exactly
/// `value-0..count`, each once.
async fn consume_all(cluster: &RunningCluster, topic: &str, count: usize) {
    let mut consumer = cluster
        .consumer(&unique_group("check"), &[topic])
        .expect("consumer");
    let records = collect_records(&mut consumer, count, LIMIT)
        .await
        .expect("every record");
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let distinct: BTreeSet<&String> = values.iter().collect();
    let expected: BTreeSet<String> = (0..count).map(|i| format!("value-{i}")).collect();
    assert_eq!(values.len(), count, "duplicates: {values:?}");
    assert_eq!(
        distinct,
        expected.iter().collect::<BTreeSet<_>>(),
        "consumed vs produced"
    );
}

async fn round_trip(cluster: &RunningCluster, partitions: i32, count: usize) {
    let topic = unique_topic("round-trip");
    cluster
        .create_topic(&topic, partitions)
        .await
        .expect("topic");
    let producer = cluster.producer().expect("producer");
    produce(&producer, &topic, partitions, count).await;
    producer.close(Duration::from_secs(5)).await.expect("close");
    consume_all(cluster, &topic, count).await;
}

async fn refuses_connections(addr: &str) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_three_brokers_round_trip() {
    let cluster = KafkaCluster::new().brokers(3).start().await.expect("start");
    assert_eq!(cluster.mode(), &Mode::InProcess);
    assert_eq!(cluster.bootstrap_servers().split(',').count(), 3);
    round_trip(&cluster, 6, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process_round_trip() {
    let cluster = KafkaCluster::new()
        .child_process()
        .brokers(2)
        .start()
        .await
        .expect("start");
    assert_eq!(cluster.mode(), &Mode::ChildProcess);
    assert!(cluster.pid().is_some(), "a child process runs");
    assert_eq!(cluster.bootstrap_servers().split(',').count(), 2);
    round_trip(&cluster, 4, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_clusters_round_trip_with_the_settings_they_hand_out() {
    let cases = [
        (
            Mode::InProcess,
            ClusterSecurity::SaslSsl(SaslMechanism::ScramSha512),
        ),
        (
            Mode::InProcess,
            ClusterSecurity::SaslPlaintext(SaslMechanism::Plain),
        ),
        (Mode::ChildProcess, ClusterSecurity::Ssl),
        (
            Mode::ChildProcess,
            ClusterSecurity::SaslSsl(SaslMechanism::ScramSha256),
        ),
    ];
    for (mode, security) in cases {
        let cluster = KafkaCluster::new()
            .mode(mode.clone())
            .security(security)
            .start()
            .await
            .unwrap_or_else(|e| panic!("{mode} {security:?}: {e}"));
        // Topics are created through the secured listener too.
        round_trip(&cluster, 2, 10).await;
        // A client without the settings gets nothing from it.
        let mut plain = kafka_client::producer::ProducerConfig::new();
        plain
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .and_then(|c| c.set("max.block.ms", "1500"))
            .and_then(|c| c.set("request.timeout.ms", "500"))
            .expect("properties");
        let plain = Producer::new(plain.build().expect("settings")).expect("producer");
        let refused = plain
            .send_and_wait(ProducerRecord::new("anything").value("x"))
            .await;
        assert!(
            refused.is_err(),
            "{mode} {security:?}: a plain client got in"
        );
        let protocol = cluster
            .security_properties()
            .into_iter()
            .find(|(name, _)| *name == "security.protocol")
            .map(|(_, value)| value);
        let expected = match security {
            ClusterSecurity::Plaintext => "PLAINTEXT",
            ClusterSecurity::Ssl => "SSL",
            ClusterSecurity::SaslPlaintext(_) => "SASL_PLAINTEXT",
            ClusterSecurity::SaslSsl(_) => "SASL_SSL",
        };
        assert_eq!(protocol.as_deref(), Some(expected));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_and_properties_given_up_front_apply_in_both_modes() {
    for mode in [Mode::InProcess, Mode::ChildProcess] {
        let topic = unique_topic("upfront");
        let cluster = KafkaCluster::new()
            .mode(mode.clone())
            .broker_property("auto.create.topics.enable", "false")
            .topic(&topic, 3)
            .start()
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        let err = cluster
            .create_topic(&topic, 3)
            .await
            .expect_err("exists already");
        assert!(
            matches!(
                err,
                Error::Kafka {
                    code: ErrorCode::TopicAlreadyExists,
                    ..
                }
            ),
            "{mode}: {err}"
        );
        let producer = cluster.producer().expect("producer");
        produce(&producer, &topic, 3, 9).await;
        consume_all(&cluster, &topic, 9).await;
    }
}

#[tokio::test]
async fn bad_settings_are_refused_before_anything_starts() {
    let unknown = KafkaCluster::new()
        .broker_property("no.such.property", "1")
        .start()
        .await
        .expect_err("unknown property");
    assert!(
        unknown.to_string().contains("no.such.property"),
        "{unknown}"
    );
    let unknown = KafkaCluster::new()
        .child_process()
        .broker_property("no.such.property", "1")
        .start()
        .await
        .expect_err("unknown property, child process");
    assert!(matches!(unknown, Error::BrokerConfig(_)), "{unknown}");
    let replication = KafkaCluster::new()
        .brokers(2)
        .replication_factor(3)
        .start()
        .await
        .expect_err("replication factor above brokers");
    assert!(matches!(replication, Error::Config(_)), "{replication}");
    let brokers = KafkaCluster::new()
        .brokers(0)
        .start()
        .await
        .expect_err("no brokers");
    assert!(brokers.to_string().contains("0 brokers"), "{brokers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_errors_are_retried_by_the_producer_and_counted() {
    let topic = unique_topic("faults");
    let cluster = KafkaCluster::new()
        .topic(&topic, 1)
        .start()
        .await
        .expect("start");
    let fault = cluster
        .inject_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower, 2)
        .expect("in-process fault");
    let producer = cluster.producer().expect("producer");
    let delivered = producer
        .send_and_wait(ProducerRecord::new(&topic).value("once"))
        .await
        .expect("delivered after two retriable errors");
    assert_eq!(delivered.offset, 0);
    assert_eq!(fault.hits(), 2, "both injected errors were answered");
    let mut consumer = cluster
        .consumer(&unique_group("faults"), &[&topic])
        .expect("consumer");
    let records = collect_records(&mut consumer, 1, LIMIT).await.expect("one");
    assert_eq!(records.len(), 1, "written once: {records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_broker_refuses_connections_until_restarted() {
    let cluster = KafkaCluster::new().brokers(2).start().await.expect("start");
    let second = cluster
        .bootstrap_servers()
        .split(',')
        .nth(1)
        .expect("two brokers")
        .to_owned();
    cluster.stop_broker(1).expect("stop");
    wait_for("broker 1 to refuse connections", LIMIT, || {
        refuses_connections(&second)
    })
    .await
    .expect("stopped");
    cluster.restart_broker(1).await.expect("restart");
    assert!(
        tokio::net::TcpStream::connect(&second).await.is_ok(),
        "broker 1 accepts again on {second}"
    );
    round_trip(&cluster, 2, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_controls_outside_in_process_are_typed_errors() {
    let mut cluster = KafkaCluster::new()
        .child_process()
        .start()
        .await
        .expect("start");
    let calls: Vec<(&str, Result<(), Error>)> = vec![
        (
            "drop_responses",
            cluster.drop_responses(ApiKey::Produce, 1).map(|_| ()),
        ),
        (
            "delay_responses",
            cluster
                .delay_responses(ApiKey::Fetch, Duration::from_millis(1))
                .map(|_| ()),
        ),
        (
            "inject_error",
            cluster
                .inject_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower, 1)
                .map(|_| ()),
        ),
        (
            "hold_txn_completion",
            cluster.hold_txn_completion("t").map(|_| ()),
        ),
        ("move_leader", cluster.move_leader("t", 0, 0)),
        ("stop_broker", cluster.stop_broker(0)),
        ("restart_broker", cluster.restart_broker(0).await),
        ("faults", cluster.faults().map(|_| ())),
    ];
    for (name, result) in calls {
        match result {
            Err(Error::Unsupported {
                operation, mode, ..
            }) => {
                assert_eq!(operation, name);
                assert_eq!(mode, Mode::ChildProcess);
            }
            other => panic!("{name}: expected Unsupported, got {other:?}"),
        }
    }
    assert!(cluster.broker_cluster().is_none());

    let mut in_process = KafkaCluster::new().start().await.expect("start");
    let err = in_process.kill().await.expect_err("no process to kill");
    assert!(err.to_string().contains("in-process mode"), "{err}");
    let err = in_process.restart().await.expect_err("no process");
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    // The child process is unharmed by all of that.
    cluster.restart().await.expect("restart");
    round_trip(&cluster, 1, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_child_process_restarts_with_acknowledged_records_on_disk() {
    let topic = unique_topic("durable");
    let mut cluster = KafkaCluster::new()
        .child_process()
        .temp_data_dir()
        .topic(&topic, 2)
        .start()
        .await
        .expect("start");
    let producer = cluster.producer().expect("producer");
    produce(&producer, &topic, 2, 20).await;
    let bootstrap = cluster.bootstrap_servers().to_owned();
    let pid = cluster.pid().expect("pid");

    cluster.kill().await.expect("kill -9");
    assert!(
        refuses_connections(&bootstrap).await,
        "nothing listens on {bootstrap} after kill -9 of {pid}"
    );
    cluster.restart().await.expect("restart");
    assert_ne!(cluster.pid(), Some(pid), "a new process");
    assert_eq!(cluster.bootstrap_servers(), bootstrap, "same address");
    consume_all(&cluster, &topic, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_frees_ports_processes_and_temp_dirs() {
    for mode in [Mode::InProcess, Mode::ChildProcess] {
        let cluster = KafkaCluster::new()
            .mode(mode.clone())
            .brokers(2)
            .temp_data_dir()
            .start()
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
        round_trip(&cluster, 2, 4).await;
        let servers: Vec<String> = cluster
            .bootstrap_servers()
            .split(',')
            .map(str::to_owned)
            .collect();
        let dir = cluster.data_dir().expect("a temp dir").to_path_buf();
        assert!(
            dir.is_dir(),
            "{mode}: {} exists while running",
            dir.display()
        );
        let pid = cluster.pid();
        drop(cluster);

        assert!(!dir.exists(), "{mode}: {} removed on drop", dir.display());
        for server in &servers {
            wait_for(&format!("{mode}: {server} to close"), LIMIT, || {
                refuses_connections(server)
            })
            .await
            .expect("port freed");
        }
        if let Some(pid) = pid {
            wait_for(&format!("process {pid} to be gone"), LIMIT, || async move {
                !std::path::Path::new(&format!("/proc/{pid}")).exists()
            })
            .await
            .expect("child reaped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clusters_run_side_by_side_in_one_test_binary() {
    let clusters = futures_join(8).await;
    let servers: BTreeSet<&str> = clusters.iter().map(|c| c.bootstrap_servers()).collect();
    assert_eq!(servers.len(), 8, "distinct addresses: {servers:?}");
    for cluster in &clusters {
        round_trip(cluster, 1, 2).await;
    }
}

/// Starts `n` clusters concurrently.
async fn futures_join(n: usize) -> Vec<RunningCluster> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(async { KafkaCluster::new().start().await });
    }
    let mut clusters = Vec::new();
    while let Some(started) = tasks.join_next().await {
        clusters.push(started.expect("task").expect("start"));
    }
    clusters
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_records_reports_what_arrived_against_what_was_expected() {
    let topic = unique_topic("short");
    let cluster = KafkaCluster::new()
        .topic(&topic, 1)
        .start()
        .await
        .expect("start");
    let producer = cluster.producer().expect("producer");
    produce(&producer, &topic, 1, 2).await;
    let mut consumer = cluster
        .consumer(&unique_group("short"), &[&topic])
        .expect("consumer");
    let err = collect_records(&mut consumer, 3, Duration::from_secs(3))
        .await
        .expect_err("only 2 of 3");
    let message = err.to_string();
    assert!(message.contains("expected 3 records"), "{message}");
    assert!(message.contains("received 2"), "{message}");
    assert!(
        message.contains(&format!("{topic}-0@0 key=\"key-0\" value=\"value-0\"")),
        "{message}"
    );
    assert!(message.contains(&format!("{topic}-0@1")), "{message}");
}

/// One cluster for the shared-cluster tests below, on its own runtime.
fn shared() -> &'static RunningCluster {
    static CLUSTER: std::sync::OnceLock<RunningCluster> = std::sync::OnceLock::new();
    CLUSTER.get_or_init(|| {
        KafkaCluster::new()
            .brokers(3)
            .start_blocking()
            .expect("shared cluster")
    })
}

#[tokio::test]
async fn a_shared_cluster_serves_tests_on_their_own_runtimes() {
    round_trip(shared(), 3, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_cluster_keeps_tests_apart_by_topic_and_group() {
    round_trip(shared(), 2, 8).await;
}

#[tokio::test]
async fn a_blocking_started_cluster_stops_when_dropped() {
    let cluster = KafkaCluster::new().start_blocking().expect("start");
    round_trip(&cluster, 1, 2).await;
    let server = cluster.bootstrap_servers().to_owned();
    drop(cluster);
    wait_for(&format!("{server} to close"), LIMIT, || {
        refuses_connections(&server)
    })
    .await
    .expect("stopped");
}
