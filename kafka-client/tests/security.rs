//! The client over TLS and SASL against the bundled broker's secured
//! listeners: every `security.protocol`, every SASL mechanism, and the
//! failures a misconfigured client must report at once and by name
//! (wrong password, untrusted CA, certificate for another host).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_broker::{BrokerConfig, Cluster, SaslMechanism, SaslSettings, TlsIdentity};
use kafka_client::Error;
use kafka_client::consumer::{Consumer, ConsumerConfig};
use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
use kafka_client::protocol::ErrorCode;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// A CA, and a server certificate it signed for `names`.
struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

impl Pki {
    /// A client certificate and key signed by this CA, PEM.
    fn client(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("client certificate");
        (cert.pem(), key.serialize_pem())
    }
}

fn pki(names: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kafka-sdk test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let server_key = KeyPair::generate().expect("server key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let server = CertificateParams::new(names)
        .expect("server params")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");
    Pki {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
        ca,
        ca_key,
    }
}

const USER: &str = "alice";
const PASSWORD: &str = "wonderland";

async fn secured_cluster(pki: Option<&Pki>, brokers: u32) -> Cluster {
    let tls = pki.map(|p| {
        TlsIdentity::from_pem(&p.server_cert_pem, &p.server_key_pem).expect("TLS identity")
    });
    let sasl = SaslSettings {
        mechanisms: vec![
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ],
        users: BTreeMap::from([(USER.to_owned(), PASSWORD.to_owned())]),
        ..Default::default()
    };
    Cluster::start(BrokerConfig {
        brokers,
        tls,
        sasl: Some(sasl),
        ..Default::default()
    })
    .await
    .expect("cluster")
}

async fn tls_only_cluster(pki: &Pki) -> Cluster {
    Cluster::start(BrokerConfig {
        tls: Some(
            TlsIdentity::from_pem(&pki.server_cert_pem, &pki.server_key_pem).expect("identity"),
        ),
        ..Default::default()
    })
    .await
    .expect("cluster")
}

/// Producer properties for `cluster` with `security` on top.
fn producer(cluster: &Cluster, security: &[(&str, &str)]) -> Result<Producer, Error> {
    let mut config = ProducerConfig::new();
    config
        .set("bootstrap.servers", &cluster.bootstrap_servers())?
        .set("max.block.ms", "20000")?
        .set("reconnect.backoff.ms", "20")?;
    for (name, value) in security {
        config.set(name, value)?;
    }
    Producer::new(config.build()?)
}

fn consumer(cluster: &Cluster, group: &str, security: &[(&str, &str)]) -> Consumer {
    let mut config = ConsumerConfig::new();
    config
        .set("bootstrap.servers", &cluster.bootstrap_servers())
        .and_then(|c| c.set("group.id", group))
        .and_then(|c| c.set("auto.offset.reset", "earliest"))
        .expect("consumer properties");
    for (name, value) in security {
        config.set(name, value).expect("security property");
    }
    Consumer::new(config.build().expect("consumer settings")).expect("consumer")
}

/// Reads `count` values of `topic` through a group, within 20 s.
async fn consume(consumer: &mut Consumer, topic: &str, count: usize) -> Vec<String> {
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut values = Vec::new();
    while values.len() < count {
        assert!(Instant::now() < deadline, "read only {values:?}");
        for record in consumer
            .poll(Duration::from_millis(200))
            .await
            .expect("poll")
        {
            let value = record.value.expect("value");
            values.push(String::from_utf8(value.to_vec()).expect("utf-8"));
        }
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mechanism_produces_and_consumes_over_sasl_ssl_and_sasl_plaintext() {
    let pki = pki(&["127.0.0.1", "localhost"]);
    let tls_cluster = secured_cluster(Some(&pki), 2).await;
    let plain_cluster = secured_cluster(None, 1).await;
    let cases = [
        (&tls_cluster, "SASL_SSL", "SCRAM-SHA-512"),
        (&tls_cluster, "SASL_SSL", "SCRAM-SHA-256"),
        (&tls_cluster, "SASL_SSL", "PLAIN"),
        (&plain_cluster, "SASL_PLAINTEXT", "SCRAM-SHA-256"),
        (&plain_cluster, "SASL_PLAINTEXT", "PLAIN"),
    ];
    for (index, (cluster, protocol, mechanism)) in cases.into_iter().enumerate() {
        let topic = format!("secured-{index}");
        cluster.create_topic(&topic, 3).expect("topic");
        let security = [
            ("security.protocol", protocol),
            ("sasl.mechanism", mechanism),
            ("sasl.username", USER),
            ("sasl.password", PASSWORD),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ];
        let producer = producer(cluster, &security).expect("producer");
        let sent: Vec<String> = (0..30).map(|i| format!("{mechanism}-{i}")).collect();
        let mut deliveries = Vec::new();
        for value in &sent {
            deliveries.push(
                producer
                    .send(ProducerRecord::new(topic.as_str()).value(value.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("{protocol} {mechanism}: {e}")),
            );
        }
        for delivery in deliveries {
            delivery.await.expect("acknowledged");
        }
        producer.close(Duration::from_secs(5)).await.expect("close");
        let mut consumer = consumer(cluster, &format!("g-{index}"), &security);
        let mut read = consume(&mut consumer, &topic, sent.len()).await;
        read.sort();
        let mut expected = sent.clone();
        expected.sort();
        assert_eq!(read, expected, "{protocol} {mechanism}");
        consumer.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_commits_over_sasl_ssl_with_a_jaas_config() {
    let pki = pki(&["127.0.0.1"]);
    let cluster = secured_cluster(Some(&pki), 1).await;
    cluster.create_topic("txn-secured", 1).expect("topic");
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required \
         username=\"{USER}\" password=\"{PASSWORD}\";"
    );
    let security = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.jaas.config", jaas.as_str()),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.certificates", pki.ca_pem.as_str()),
        ("transactional.id", "secured-txn"),
    ];
    let producer = producer(&cluster, &security).expect("producer");
    producer
        .init_transactions(Duration::from_secs(10))
        .await
        .expect("init");
    producer.begin_transaction().expect("begin");
    producer
        .send(ProducerRecord::new("txn-secured").value("committed"))
        .await
        .expect("send");
    producer
        .commit_transaction(Duration::from_secs(10))
        .await
        .expect("commit");
    let mut consumer = consumer(
        &cluster,
        "txn-reader",
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", jaas.as_str()),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ],
    );
    assert_eq!(
        consume(&mut consumer, "txn-secured", 1).await,
        ["committed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_expire_are_renewed_without_a_failed_request() {
    // The broker ends SASL sessions after 1.5 s (connections.max.reauth.ms):
    // a connection that sends anything later is closed.
    let pki = pki(&["127.0.0.1"]);
    let lifetime = Duration::from_millis(1500);
    let cluster = Cluster::start(BrokerConfig {
        tls: Some(TlsIdentity::from_pem(&pki.server_cert_pem, &pki.server_key_pem).expect("tls")),
        sasl: Some(SaslSettings {
            mechanisms: vec![SaslMechanism::ScramSha256],
            users: BTreeMap::from([(USER.to_owned(), PASSWORD.to_owned())]),
            session_lifetime: Some(lifetime),
        }),
        ..Default::default()
    })
    .await
    .expect("cluster");
    cluster.create_topic("renewed", 2).expect("topic");
    let security = [
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
        ("ssl.ca.pem", pki.ca_pem.as_str()),
    ];
    // No retries: a request lost to an expired session fails its record.
    let mut strict = security.to_vec();
    strict.extend([
        ("enable.idempotence", "false"),
        ("retries", "0"),
        ("linger.ms", "0"),
    ]);
    let producer = producer(&cluster, &strict).expect("producer");
    let mut consumer = consumer(&cluster, "renewed-group", &security);
    consumer.subscribe(&["renewed"]).expect("subscribe");
    // Over three session lifetimes, one record at a time, read as it goes.
    let started = Instant::now();
    let mut sent = 0;
    let mut read = Vec::new();
    while started.elapsed() < lifetime * 3 {
        producer
            .send_and_wait(ProducerRecord::new("renewed").value(format!("r-{sent}")))
            .await
            .unwrap_or_else(|e| panic!("record {sent} after {:?}: {e}", started.elapsed()));
        sent += 1;
        for record in consumer
            .poll(Duration::from_millis(50))
            .await
            .expect("poll")
        {
            read.push(String::from_utf8(record.value.expect("value").to_vec()).expect("utf-8"));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while read.len() < sent && Instant::now() < deadline {
        for record in consumer
            .poll(Duration::from_millis(100))
            .await
            .expect("poll")
        {
            read.push(String::from_utf8(record.value.expect("value").to_vec()).expect("utf-8"));
        }
    }
    read.sort();
    let mut expected: Vec<String> = (0..sent).map(|i| format!("r-{i}")).collect();
    expected.sort();
    assert_eq!(read, expected, "every record read once");
    let stats = producer.stats();
    assert_eq!((stats.errors, stats.retries), (0, 0), "{stats:?}");
    assert_eq!(
        consumer.stats().rebalances,
        1,
        "the member never dropped out"
    );
}

/// The error a first send gets, and how long it took to come.
async fn first_send_error(producer: &Producer, topic: &str) -> (Error, Duration) {
    let started = Instant::now();
    let sent = tokio::time::timeout(
        Duration::from_secs(30),
        producer.send_and_wait(ProducerRecord::new(topic).value("x")),
    )
    .await
    .expect("an answer within 30 s");
    match sent {
        Ok(metadata) => panic!("sent to {metadata:?}"),
        Err(e) => (e, started.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_at_once_with_an_authentication_error() {
    let pki = pki(&["127.0.0.1"]);
    let cluster = secured_cluster(Some(&pki), 1).await;
    cluster.create_topic("refused", 1).expect("topic");
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
        let producer = producer(
            &cluster,
            &[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", USER),
                ("sasl.password", "not the password"),
                ("ssl.ca.pem", pki.ca_pem.as_str()),
            ],
        )
        .expect("producer");
        let (error, took) = first_send_error(&producer, "refused").await;
        assert!(
            matches!(
                &error,
                Error::Authentication {
                    code: Some(ErrorCode::SaslAuthenticationFailed),
                    ..
                }
            ),
            "{mechanism}: {error:?}"
        );
        assert!(!error.retriable());
        assert!(
            took < Duration::from_secs(10),
            "{mechanism}: took {took:?}, not max.block.ms"
        );
    }
    // An unknown user is refused the same way.
    let producer = producer(
        &cluster,
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "mallory"),
            ("sasl.password", PASSWORD),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ],
    )
    .expect("producer");
    let (error, _) = first_send_error(&producer, "refused").await;
    assert_eq!(
        error.code(),
        Some(ErrorCode::SaslAuthenticationFailed),
        "{error:?}"
    );
    // A consumer's poll returns the refusal instead of empty-handed retries.
    let mut consumer = consumer(
        &cluster,
        "refused-group",
        &[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.username", USER),
            ("sasl.password", "not the password"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ],
    );
    consumer.subscribe(&["refused"]).expect("subscribe");
    let started = Instant::now();
    let polled = tokio::time::timeout(
        Duration::from_secs(30),
        consumer.poll(Duration::from_secs(5)),
    )
    .await
    .expect("a poll ends");
    assert!(
        matches!(&polled, Err(Error::Authentication { .. })),
        "{polled:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trusts_only_the_given_ca_and_checks_the_host_name() {
    let pki = pki(&["127.0.0.1"]);
    let cluster = tls_only_cluster(&pki).await;
    cluster.create_topic("tls", 1).expect("topic");

    let trusted = producer(
        &cluster,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ],
    )
    .expect("producer");
    trusted
        .send_and_wait(ProducerRecord::new("tls").value("over TLS"))
        .await
        .expect("sent over TLS");

    // Another CA: the broker's certificate is not trusted.
    let stranger = self::pki(&["127.0.0.1"]);
    let untrusting = producer(
        &cluster,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", stranger.ca_pem.as_str()),
        ],
    )
    .expect("producer");
    let (error, took) = first_send_error(&untrusting, "tls").await;
    assert!(
        matches!(&error, Error::Authentication { code: None, reason, .. } if reason.contains("TLS")),
        "{error:?}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // A plain-text client on a TLS listener gets no answer it can read:
    // it fails (a network error or a timeout), it does not hang.
    let plain = producer(
        &cluster,
        &[("request.timeout.ms", "1000"), ("max.block.ms", "3000")],
    )
    .expect("producer");
    let (error, _) = first_send_error(&plain, "tls").await;
    assert!(
        matches!(error, Error::Timeout(_) | Error::Network { .. }),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_requires_client_certificates_takes_only_those_its_ca_signed() {
    let pki = pki(&["127.0.0.1"]);
    let cluster = Cluster::start(BrokerConfig {
        tls: Some(
            TlsIdentity::requiring_client_certificates(
                &pki.server_cert_pem,
                &pki.server_key_pem,
                &pki.ca_pem,
            )
            .expect("identity"),
        ),
        ..Default::default()
    })
    .await
    .expect("cluster");
    cluster.create_topic("mutual", 1).expect("topic");
    let (cert, key) = pki.client("orders-service");
    let signed = producer(
        &cluster,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
            ("ssl.certificate.pem", cert.as_str()),
            ("ssl.key.pem", key.as_str()),
        ],
    )
    .expect("producer");
    signed
        .send_and_wait(ProducerRecord::new("mutual").value("with a certificate"))
        .await
        .expect("sent with a client certificate");

    let stranger = self::pki(&["127.0.0.1"]);
    let (foreign_cert, foreign_key) = stranger.client("mallory");
    let cases = [
        ("no certificate", None),
        (
            "another CA's",
            Some((foreign_cert.as_str(), foreign_key.as_str())),
        ),
    ];
    for (case, identity) in cases {
        let mut security = vec![
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ];
        if let Some((cert, key)) = identity {
            security.extend([("ssl.certificate.pem", cert), ("ssl.key.pem", key)]);
        }
        let refused = producer(&cluster, &security).expect("producer");
        let (error, took) = first_send_error(&refused, "mutual").await;
        assert!(
            matches!(error, Error::Authentication { .. }),
            "{case}: {error:?}"
        );
        assert!(took < Duration::from_secs(10), "{case}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_host_is_refused_unless_host_checks_are_off() {
    // The broker's certificate names only `kafka.example`, not 127.0.0.1.
    let pki = pki(&["kafka.example"]);
    let cluster = tls_only_cluster(&pki).await;
    cluster.create_topic("names", 1).expect("topic");
    let checking = producer(
        &cluster,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
        ],
    )
    .expect("producer");
    let (error, _) = first_send_error(&checking, "names").await;
    assert!(matches!(error, Error::Authentication { .. }), "{error:?}");

    let unchecked = producer(
        &cluster,
        &[
            ("security.protocol", "SSL"),
            ("ssl.ca.pem", pki.ca_pem.as_str()),
            ("ssl.endpoint.identification.algorithm", "none"),
        ],
    )
    .expect("producer");
    unchecked
        .send_and_wait(ProducerRecord::new("names").value("chain checked, name not"))
        .await
        .expect("sent");
}

#[tokio::test]
async fn bad_security_settings_are_refused_when_the_client_is_built() {
    let mut config = ProducerConfig::new();
    config
        .set("bootstrap.servers", "127.0.0.1:9092")
        .and_then(|c| c.set("security.protocol", "SASL_SSL"))
        .expect("properties");
    let built = config.build().and_then(Producer::new);
    assert!(
        matches!(&built, Err(Error::Config { property, .. }) if property == "sasl.username"),
        "{:?}",
        built.err()
    );
    config
        .set("sasl.username", "u")
        .and_then(|c| c.set("sasl.password", "p"))
        .and_then(|c| {
            c.set(
                "ssl.ca.pem",
                "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            )
        })
        .expect("properties");
    let built = config.build().and_then(Producer::new);
    assert!(
        matches!(&built, Err(Error::Config { property, .. }) if property == "ssl.ca.location"),
        "{:?}",
        built.err()
    );
}
