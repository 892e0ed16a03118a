//! The network layer against the bundled broker: version negotiation,
//! pipelining, timeouts, bootstrap fallback, metadata refresh, reconnects
//! and idle close.

mod support;

use std::time::Duration;

use kafka_broker::{FaultAction, FaultScope};
use kafka_client::Error;
use kafka_client::network::{Network, NetworkConfig};
use kafka_client::protocol::ApiKey;
use kafka_client::protocol::messages::{MetadataRequest, ProduceRequest};
use support::cluster;

fn config(bootstrap: &str) -> NetworkConfig {
    let mut config = NetworkConfig::new(bootstrap.split(',').map(str::to_owned).collect());
    config.client_id = Some("network-test".into());
    config
}

/// Polls `condition` every 10 ms for up to `limit`.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    condition()
}

#[tokio::test]
async fn versions_are_negotiated_and_requests_pipeline() {
    let cluster = cluster(1).await;
    let network = Network::new(config(&cluster.bootstrap_servers())).expect("network");
    let connection = network.any().await.expect("connect");
    // The bundled broker serves every request at the newest version the
    // client implements, so the integration tests exercise exactly those.
    for &(api, max) in kafka_client::network::versions::CLIENT_VERSIONS {
        if matches!(api, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate) {
            continue; // Offered only on SASL listeners (tests/security.rs).
        }
        assert_eq!(
            connection.negotiated(api),
            Some(max),
            "{api:?}: the client implements v{max}"
        );
    }
    assert_eq!(
        connection.version_for::<ProduceRequest>().expect("produce"),
        kafka_client::network::versions::PRODUCE_MAX
    );
    // 100 requests in flight at once on one connection.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let connection = connection.clone();
        requests.spawn(async move {
            connection
                .send(&MetadataRequest {
                    topics: None,
                    ..Default::default()
                })
                .await
        });
    }
    let mut answered = 0;
    while let Some(response) = requests.join_next().await {
        assert_eq!(response.expect("task").expect("metadata").brokers.len(), 1);
        answered += 1;
    }
    assert_eq!(answered, 100);
}

#[tokio::test]
async fn a_request_without_an_answer_times_out_and_closes_the_connection() {
    let cluster = cluster(1).await;
    let mut config = config(&cluster.bootstrap_servers());
    config.request_timeout = Duration::from_millis(200);
    let network = Network::new(config).expect("network");
    let connection = network.any().await.expect("connect");
    let _drop = cluster
        .faults()
        .add(FaultScope::api(ApiKey::Metadata), FaultAction::DropResponse);
    let started = std::time::Instant::now();
    let result = connection
        .send(&MetadataRequest {
            topics: None,
            ..Default::default()
        })
        .await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(eventually(Duration::from_secs(2), || connection.is_closed()).await);
}

#[tokio::test]
async fn bootstrap_skips_an_unreachable_server() {
    let cluster = cluster(1).await;
    // A port that was just free: nothing listens there.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let bootstrap = format!("{dead},{}", cluster.bootstrap_servers());
    let network = Network::new(config(&bootstrap)).expect("network");
    network.track(&["fallback"]);
    let metadata = network
        .refresh()
        .await
        .expect("metadata through the live server");
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(
        metadata.partition_count("fallback"),
        Some(1),
        "auto-created"
    );
}

#[tokio::test]
async fn metadata_refresh_follows_a_moved_leader() {
    let cluster = cluster(2).await;
    cluster.create_topic("moving", 1).expect("topic");
    let network = Network::new(config(&cluster.bootstrap_servers())).expect("network");
    let before = network.metadata_for("moving").await.expect("metadata");
    let leader = before.leader("moving", 0).expect("leader").id;
    cluster.move_leader("moving", 0, 1 - leader).expect("move");
    // Still cached: no request made.
    assert_eq!(
        network
            .metadata_for("moving")
            .await
            .expect("cached")
            .leader("moving", 0)
            .map(|b| b.id),
        Some(leader)
    );
    let after = network.refresh().await.expect("refresh");
    assert_eq!(after.leader("moving", 0).map(|b| b.id), Some(1 - leader));
}

#[tokio::test]
async fn metadata_older_than_its_max_age_is_refreshed_in_the_background() {
    let cluster = cluster(2).await;
    cluster.create_topic("aging", 1).expect("topic");
    let mut config = config(&cluster.bootstrap_servers());
    config.metadata_max_age = Duration::from_millis(300);
    let network = Network::new(config).expect("network");
    let before = network.metadata_for("aging").await.expect("metadata");
    let leader = before.leader("aging", 0).expect("leader").id;
    cluster.move_leader("aging", 0, 1 - leader).expect("move");
    // No call into the network: only its own refresh can see the move.
    let moved = eventually(Duration::from_secs(5), || {
        network.metadata().leader("aging", 0).map(|b| b.id) == Some(1 - leader)
    })
    .await;
    assert!(moved, "the moved leader shows up within a few max ages");
}

#[tokio::test]
async fn a_restarted_broker_is_reconnected_after_backoff() {
    let cluster = cluster(1).await;
    let mut config = config(&cluster.bootstrap_servers());
    config.reconnect_backoff = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(100);
    config.connection_setup_timeout = Duration::from_millis(500);
    let network = Network::new(config).expect("network");
    let first = network.any().await.expect("connect");
    cluster.stop_broker(0).expect("stop");
    assert!(
        eventually(Duration::from_secs(2), || first.is_closed()).await,
        "the broker's close is seen"
    );
    assert!(
        network.any().await.is_err(),
        "nothing listens while stopped"
    );
    cluster.restart_broker(0).await.expect("restart");
    let mut reconnected = None;
    for _ in 0..50 {
        match network.any().await {
            Ok(connection) => {
                reconnected = Some(connection);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let connection = reconnected.expect("reconnected within 50 tries");
    assert!(!connection.is_closed());
    connection
        .send(&MetadataRequest {
            topics: None,
            ..Default::default()
        })
        .await
        .expect("usable");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let cluster = cluster(1).await;
    let mut config = config(&cluster.bootstrap_servers());
    config.connections_max_idle = Duration::from_millis(200);
    let network = Network::new(config).expect("network");
    let connection = network.any().await.expect("connect");
    assert!(!connection.is_closed());
    assert!(eventually(Duration::from_secs(3), || connection.is_closed()).await);
}

#[tokio::test]
async fn a_connection_closed_by_the_broker_fails_its_requests() {
    let cluster = cluster(1).await;
    let network = Network::new(config(&cluster.bootstrap_servers())).expect("network");
    let connection = network.any().await.expect("connect");
    let _close = cluster.faults().add(
        FaultScope::api(ApiKey::Metadata),
        FaultAction::CloseConnection,
    );
    let result = connection
        .send(&MetadataRequest {
            topics: None,
            ..Default::default()
        })
        .await;
    assert!(matches!(result, Err(Error::Network { .. })), "{result:?}");
}
