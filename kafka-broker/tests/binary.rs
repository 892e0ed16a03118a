//! The `kafka-broker` binary as a process: it serves until SIGTERM, then
//! shuts down cleanly.

mod support;

use std::time::Duration;

use kafka_broker::protocol::messages::{RequestKind, ResponseKind};
use support::{BrokerProcess, RawClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_broker_with_status_zero() {
    let broker = BrokerProcess::start(&["--brokers", "2"]);
    let first = broker
        .bootstrap
        .split(',')
        .next()
        .expect("a bootstrap server")
        .to_owned();
    // A client still connected must not hold the shutdown up.
    let mut client = RawClient::connect(&first).await;
    match client
        .call(&RequestKind::ApiVersions(Default::default()), 3)
        .await
    {
        ResponseKind::ApiVersions(r) => assert_eq!(r.error_code, 0),
        other => panic!("unexpected {other:?}"),
    }

    let status = tokio::task::spawn_blocking(move || broker.terminate(Duration::from_secs(5)))
        .await
        .expect("terminate")
        .expect("the broker exits within 5 s of SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        client.receive_frame(Duration::from_secs(5)).await.is_none(),
        "the connection is closed"
    );
    assert!(
        tokio::net::TcpStream::connect(&first).await.is_err(),
        "nothing listens on {first} any more"
    );
}
