//! The Docker mode (feature `docker`). Without a Docker daemon, or built
//! without the feature, each test prints why it was skipped and checks
//! only that starting a Docker cluster fails with a typed error.
//!
//! ```text
//! cargo test -p kafka-testcontainers --features docker --test docker
//! ```

#[cfg(feature = "docker")]
mod with_docker {
    use std::time::Duration;

    use kafka_client::producer::ProducerRecord;
    use kafka_testcontainers::docker::DockerImage;
    use kafka_testcontainers::{
        Error, KafkaCluster, Mode, RunningCluster, collect_records, docker_available, unique_group,
        unique_topic,
    };

    /// `None` (after saying why) when Docker is not there; then starting a
    /// Docker cluster must fail with `DockerUnavailable`, not hang or panic.
    async fn docker_or_skip(image: DockerImage) -> Option<KafkaCluster> {
        let cluster = KafkaCluster::new()
            .mode(Mode::Docker(image))
            .startup_timeout(Duration::from_secs(180));
        if let Err(why) = docker_available() {
            eprintln!("skipped: {why}");
            let err = cluster.start().await.expect_err("no Docker");
            assert!(matches!(err, Error::DockerUnavailable(_)), "{err}");
            return None;
        }
        Some(cluster)
    }

    async fn round_trip(cluster: &RunningCluster) {
        let topic = unique_topic("docker");
        cluster.create_topic(&topic, 3).await.expect("topic");
        let producer = cluster.producer().expect("producer");
        for i in 0..9 {
            producer
                .send_and_wait(
                    ProducerRecord::new(&topic)
                        .partition(i % 3)
                        .value(format!("v{i}")),
                )
                .await
                .expect("acknowledged");
        }
        let mut consumer = cluster
            .consumer(&unique_group("docker"), &[&topic])
            .expect("consumer");
        let records = collect_records(&mut consumer, 9, Duration::from_secs(60))
            .await
            .expect("all nine");
        assert_eq!(records.len(), 9, "{records:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apache_kafka_in_kraft_mode_round_trip() {
        let Some(cluster) = docker_or_skip(DockerImage::apache_kafka()).await else {
            return;
        };
        let cluster = cluster.start().await.expect("apache/kafka starts");
        round_trip(&cluster).await;
        let err = cluster
            .drop_responses(kafka_testcontainers::ApiKey::Produce, 1)
            .expect_err("in-process only");
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bundled_broker_image_round_trip() {
        let Some(cluster) = docker_or_skip(DockerImage::bundled()).await else {
            return;
        };
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        tokio::task::spawn_blocking(move || {
            kafka_testcontainers::docker::build_bundled_image(&workspace)
        })
        .await
        .expect("build task")
        .expect("docker build");
        let cluster = cluster.brokers(2).start().await.expect("image starts");
        assert_eq!(cluster.bootstrap_servers().split(',').count(), 2);
        round_trip(&cluster).await;
    }

    #[tokio::test]
    async fn apache_kafka_runs_one_broker_only() {
        let Some(cluster) = docker_or_skip(DockerImage::apache_kafka()).await else {
            return;
        };
        let err = cluster.brokers(3).start().await.expect_err("3 brokers");
        assert!(matches!(err, Error::Config(_)), "{err}");
    }
}

#[cfg(not(feature = "docker"))]
#[test]
fn docker_mode_needs_the_docker_feature() {
    let why = kafka_testcontainers::docker_available().expect_err("feature off");
    eprintln!(
        "skipped: {why} (run `cargo test -p kafka-testcontainers --features docker --test docker`)"
    );
    assert!(why.contains("`docker` feature"), "{why}");
}
