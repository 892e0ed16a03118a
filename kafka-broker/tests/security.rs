//! TLS and SASL listeners end to end: librdkafka (kcat) and kafka-python
//! over SSL, SASL_PLAINTEXT and SASL_SSL with a CA and server certificate
//! made at test time, refused credentials and untrusted certificates, and
//! raw connections that misbehave before authenticating.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_broker::protocol::frame::{FrameDecoder, decode_response, write_size_prefixed};
use kafka_broker::protocol::messages::{self as m, RequestHeader, RequestKind, ResponseKind};
use kafka_broker::protocol::{ApiKey, Encode, ErrorCode};
use kafka_broker::{BrokerConfig, Cluster, SaslMechanism, SaslSettings, TlsIdentity};
use rustls::pki_types::{CertificateDer, ServerName};
use support::RawClient;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(120);
const USER: &str = "alice";
const PASSWORD: &str = "alice-secret";

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it,
/// as PEM, also written to a temporary directory for the tools.
struct Pki {
    dir: PathBuf,
    ca_der: Vec<u8>,
    server_chain: String,
    server_key: String,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kafka-broker test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let server_key = KeyPair::generate().expect("server key");
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server = params
            .signed_by(&server_key, &ca, &ca_key)
            .expect("server certificate");

        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "kafka-broker-security-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pki = Self {
            dir,
            ca_der: ca.der().to_vec(),
            server_chain: server.pem(),
            server_key: server_key.serialize_pem(),
        };
        std::fs::write(pki.ca_file(), ca.pem()).expect("write CA");
        std::fs::write(pki.dir.join("server.pem"), &pki.server_chain).expect("write cert");
        std::fs::write(pki.dir.join("server.key"), &pki.server_key).expect("write key");
        pki
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn identity(&self) -> TlsIdentity {
        TlsIdentity::from_pem(&self.server_chain, &self.server_key).expect("identity")
    }

    /// The broker binary's flags for this identity.
    fn flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.path("server.pem"),
            "--tls-key".into(),
            self.path("server.key"),
        ]
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sasl(mechanisms: &[SaslMechanism]) -> SaslSettings {
    let mut settings = SaslSettings {
        mechanisms: mechanisms.to_vec(),
        ..SaslSettings::default()
    };
    settings.users.insert(USER.into(), PASSWORD.into());
    settings.users.insert("bob".into(), "bob-secret".into());
    settings
}

async fn cluster(tls: Option<&Pki>, sasl: Option<SaslSettings>) -> Cluster {
    let config = BrokerConfig {
        brokers: 2,
        default_partitions: 2,
        tls: tls.map(Pki::identity),
        sasl,
        ..BrokerConfig::default()
    };
    Cluster::start(config).await.expect("cluster starts")
}

// --- kcat -------------------------------------------------------------------

fn kcat(bootstrap: &str, properties: &[(&str, &str)]) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", bootstrap, "-X", "broker.address.family=v4"]);
    for (name, value) in properties {
        command.arg("-X").arg(format!("{name}={value}"));
    }
    command
}

/// Produces `count` values and reads them all back through the same
/// security settings; fails the test unless exactly those values arrive.
async fn kcat_round_trip(bootstrap: &str, properties: &[(&str, &str)], topic: &str) {
    let values: Vec<String> = (0..500).map(|i| format!("{topic}-{i:04}")).collect();
    let mut produce = kcat(bootstrap, properties);
    produce.args(["-P", "-t", topic]);
    let input = values.join("\n") + "\n";
    support::run(&mut produce, Some(input.as_bytes()), LIMIT).await;
    let mut consume = kcat(bootstrap, properties);
    consume.args([
        "-C",
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%s\n",
    ]);
    let output = support::run(&mut consume, None, LIMIT).await;
    let mut seen: Vec<String> = String::from_utf8(output.stdout)
        .expect("utf-8 values")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(seen.len(), values.len(), "{topic}: count");
    seen.sort();
    assert_eq!(seen, values, "{topic}: values");
}

/// Runs `kcat -L` expecting it to fail; its stderr.
async fn kcat_metadata_fails(bootstrap: &str, properties: &[(&str, &str)]) -> String {
    let mut command = kcat(bootstrap, properties);
    command
        .args(["-L", "-m", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(LIMIT, command.output())
        .await
        .expect("kcat finishes")
        .expect("kcat runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "kcat -L succeeded:\n{}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn ssl_properties(pki: &Pki) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SSL".into()),
        ("ssl.ca.location", pki.ca_file().display().to_string()),
    ]
}

fn as_refs<'a>(properties: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    properties.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

fn sasl_properties(
    protocol: &str,
    mechanism: SaslMechanism,
    password: &str,
    pki: Option<&Pki>,
) -> Vec<(&'static str, String)> {
    let mut properties = vec![
        ("security.protocol", protocol.to_owned()),
        ("sasl.mechanisms", mechanism.name().to_owned()),
        ("sasl.username", USER.to_owned()),
        ("sasl.password", password.to_owned()),
    ];
    if let Some(pki) = pki {
        properties.push(("ssl.ca.location", pki.ca_file().display().to_string()));
    }
    properties
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trips_over_ssl_with_the_binary_tls_flags() {
    if support::tool("kcat").is_none() {
        return;
    }
    let pki = Pki::new();
    let flags = pki.flags();
    let mut args: Vec<&str> = vec!["--brokers", "2"];
    args.extend(flags.iter().map(String::as_str));
    let broker = support::BrokerProcess::start(&args);
    kcat_round_trip(
        &broker.bootstrap,
        &as_refs(&ssl_properties(&pki)),
        "over-ssl",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trips_over_sasl_plaintext_with_plain() {
    if support::tool("kcat").is_none() {
        return;
    }
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let properties = sasl_properties("SASL_PLAINTEXT", SaslMechanism::Plain, PASSWORD, None);
    kcat_round_trip(&cluster.bootstrap_servers(), &as_refs(&properties), "plain").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trips_over_sasl_ssl_with_scram_sha_256() {
    if support::tool("kcat").is_none() {
        return;
    }
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), Some(sasl(&SaslMechanism::ALL))).await;
    let properties = sasl_properties("SASL_SSL", SaslMechanism::ScramSha256, PASSWORD, Some(&pki));
    kcat_round_trip(
        &cluster.bootstrap_servers(),
        &as_refs(&properties),
        "scram-256",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trips_over_sasl_ssl_with_scram_sha_512_and_the_binary_sasl_flags() {
    if support::tool("kcat").is_none() {
        return;
    }
    let pki = Pki::new();
    let flags = pki.flags();
    let user = format!("{USER}:{PASSWORD}");
    let mut args: Vec<&str> = vec![
        "--sasl-mechanisms",
        "SCRAM-SHA-512,PLAIN",
        "--sasl-user",
        &user,
        "--sasl-user",
        "bob:bob-secret",
    ];
    args.extend(flags.iter().map(String::as_str));
    let broker = support::BrokerProcess::start(&args);
    let properties = sasl_properties("SASL_SSL", SaslMechanism::ScramSha512, PASSWORD, Some(&pki));
    kcat_round_trip(&broker.bootstrap, &as_refs(&properties), "scram-512").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_with_a_wrong_password_fails_to_authenticate() {
    if support::tool("kcat").is_none() {
        return;
    }
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), Some(sasl(&SaslMechanism::ALL))).await;
    let bootstrap = cluster.bootstrap_servers();
    for (mechanism, message) in [
        (
            SaslMechanism::ScramSha256,
            "Authentication failed during authentication due to invalid credentials with SASL \
             mechanism SCRAM-SHA-256",
        ),
        (
            SaslMechanism::Plain,
            "Authentication failed: Invalid username or password",
        ),
    ] {
        let properties = sasl_properties("SASL_SSL", mechanism, "not-the-password", Some(&pki));
        let stderr = kcat_metadata_fails(&bootstrap, &as_refs(&properties)).await;
        assert!(
            stderr.contains("SASL authentication error") && stderr.contains(message),
            "{mechanism}: no authentication error in:\n{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_that_does_not_trust_the_ca_fails_the_handshake() {
    if support::tool("kcat").is_none() {
        return;
    }
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), None).await;
    // No ssl.ca.location: the system's roots, which do not hold our CA.
    let stderr = kcat_metadata_fails(
        &cluster.bootstrap_servers(),
        &[("security.protocol", "SSL")],
    )
    .await;
    assert!(
        stderr.contains("SSL handshake failed") && stderr.contains("certificate verify failed"),
        "no certificate verification error in:\n{stderr}"
    );
}

// --- kafka-python -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_round_trips_over_sasl_ssl_with_scram_sha_256() {
    if !support::python_module("kafka") {
        return;
    }
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), Some(sasl(&[SaslMechanism::ScramSha256]))).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sasl_ssl.py");
    let mut command = Command::new("python3");
    command.args([
        script,
        &cluster.bootstrap_servers(),
        &pki.ca_file().display().to_string(),
        "SCRAM-SHA-256",
        USER,
        PASSWORD,
        "py-secure",
    ]);
    let output = support::run(&mut command, None, Duration::from_secs(180)).await;
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        report.contains(r#""produced": 200, "consumed": 200, "distinct": 200"#),
        "{report}"
    );
    assert!(
        !report.contains(r#""wrong_password_error": null"#),
        "a wrong password was accepted: {report}"
    );
    // kafka-python retries a refused login until its timeout, logging
    // Kafka's error each time.
    assert!(
        report.contains(
            "SaslAuthenticationFailedError: Authentication failed during authentication due to \
             invalid credentials with SASL mechanism SCRAM-SHA-256"
        ),
        "the wrong password failed for another reason: {report}"
    );
}

// --- raw connections --------------------------------------------------------

/// Sends one request on any stream and reads its response; `None` if the
/// broker closed the connection instead.
async fn call<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &RequestKind,
    version: i16,
) -> Option<ResponseKind> {
    let api = request.api_key();
    let header = RequestHeader {
        request_api_key: api as i16,
        request_api_version: version,
        correlation_id: 7,
        client_id: Some("security-test".into()),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    write_size_prefixed(&mut out, |buf| {
        header.encode(buf, api.request_header_version(version))?;
        request.encode(buf, version)
    })
    .expect("encode");
    stream.write_all(&out).await.ok()?;
    stream.flush().await.ok()?;
    let frame = read_frame(stream).await?;
    let (header, body) = decode_response(frame, api, version).expect("decodable response");
    assert_eq!(header.correlation_id, 7);
    Some(body)
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Bytes> {
    let decoder = FrameDecoder::new(1 << 20);
    let mut input = BytesMut::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(frame) = decoder.decode(&mut input).ok()? {
                return Some(frame);
            }
            match stream.read_buf(&mut input).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("an answer or a close within 30 s")
}

/// Whether the broker closes the connection within `limit`, whatever it
/// sends before (a TLS alert, say).
async fn closes_within<S: AsyncRead + Unpin>(stream: &mut S, limit: Duration) -> bool {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

fn handshake(mechanism: &str) -> RequestKind {
    RequestKind::SaslHandshake(m::SaslHandshakeRequest {
        mechanism: mechanism.into(),
    })
}

fn authenticate(token: &[u8]) -> RequestKind {
    RequestKind::SaslAuthenticate(m::SaslAuthenticateRequest {
        auth_bytes: Bytes::copy_from_slice(token),
        ..Default::default()
    })
}

fn plain_token(password: &str) -> Vec<u8> {
    format!("\0{USER}\0{password}").into_bytes()
}

fn metadata() -> RequestKind {
    RequestKind::Metadata(m::MetadataRequest::default())
}

async fn tls_connect(
    pki: &Pki,
    addr: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(pki.ca_der.clone()))
        .expect("CA root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

fn first_broker(cluster: &Cluster) -> String {
    cluster.brokers()[0].addr.to_string()
}

#[tokio::test]
async fn on_a_sasl_listener_metadata_before_authentication_closes_the_connection() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut client = RawClient::connect(&first_broker(&cluster)).await;
    // ApiVersions is served, and lists the SASL APIs.
    let ResponseKind::ApiVersions(versions) = client
        .call(&RequestKind::ApiVersions(Default::default()), 3)
        .await
    else {
        panic!("not ApiVersions")
    };
    let listed = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|a| a.api_key == key as i16)
            .map(|a| (a.min_version, a.max_version))
    };
    assert_eq!(listed(ApiKey::SaslHandshake), Some((0, 1)));
    assert_eq!(listed(ApiKey::SaslAuthenticate), Some((0, 2)));
    client.send(&metadata(), 12).await;
    assert!(
        client
            .receive_frame(Duration::from_secs(10))
            .await
            .is_none(),
        "Metadata was answered before authentication"
    );
}

#[tokio::test]
async fn plain_over_raw_kafka_frames_authenticates_then_serves_everything() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    let Some(ResponseKind::SaslHandshake(r)) = call(&mut stream, &handshake("PLAIN"), 1).await
    else {
        panic!("no SaslHandshake response")
    };
    assert_eq!((r.error_code, r.mechanisms), (0, vec!["PLAIN".to_owned()]));
    for version in [2] {
        let Some(ResponseKind::SaslAuthenticate(r)) =
            call(&mut stream, &authenticate(&plain_token(PASSWORD)), version).await
        else {
            panic!("no SaslAuthenticate response")
        };
        assert_eq!((r.error_code, r.session_lifetime_ms), (0, 0), "{r:?}");
    }
    let Some(ResponseKind::Metadata(r)) = call(&mut stream, &metadata(), 12).await else {
        panic!("Metadata not served after authentication")
    };
    assert_eq!(r.brokers.len(), 2);
    // A second handshake after authentication: ILLEGAL_SASL_STATE, then closed.
    let Some(ResponseKind::SaslHandshake(r)) = call(&mut stream, &handshake("PLAIN"), 1).await
    else {
        panic!("no SaslHandshake response")
    };
    assert_eq!(r.error_code, ErrorCode::IllegalSaslState.code());
    assert!(closes_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_wrong_plain_password_is_answered_then_the_connection_closes() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    call(&mut stream, &handshake("PLAIN"), 1)
        .await
        .expect("handshake");
    let Some(ResponseKind::SaslAuthenticate(r)) =
        call(&mut stream, &authenticate(&plain_token("wrong")), 1).await
    else {
        panic!("no SaslAuthenticate response")
    };
    assert_eq!(r.error_code, ErrorCode::SaslAuthenticationFailed.code());
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(closes_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_disabled_mechanism_is_refused_with_the_enabled_list() {
    let cluster = cluster(
        None,
        Some(sasl(&[
            SaslMechanism::ScramSha512,
            SaslMechanism::ScramSha256,
        ])),
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    let Some(ResponseKind::SaslHandshake(r)) = call(&mut stream, &handshake("PLAIN"), 1).await
    else {
        panic!("no SaslHandshake response")
    };
    assert_eq!(r.error_code, ErrorCode::UnsupportedSaslMechanism.code());
    assert_eq!(r.mechanisms, ["SCRAM-SHA-512", "SCRAM-SHA-256"]);
    assert!(closes_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn sasl_authenticate_without_a_handshake_is_an_illegal_state() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    let Some(ResponseKind::SaslAuthenticate(r)) =
        call(&mut stream, &authenticate(&plain_token(PASSWORD)), 2).await
    else {
        panic!("no SaslAuthenticate response")
    };
    assert_eq!(r.error_code, ErrorCode::IllegalSaslState.code());
    assert!(closes_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn after_a_v0_handshake_tokens_travel_bare() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    let Some(ResponseKind::SaslHandshake(r)) = call(&mut stream, &handshake("PLAIN"), 0).await
    else {
        panic!("no SaslHandshake response")
    };
    assert_eq!(r.error_code, 0);
    let token = plain_token(PASSWORD);
    let mut bare = (token.len() as u32).to_be_bytes().to_vec();
    bare.extend_from_slice(&token);
    stream.write_all(&bare).await.expect("write token");
    // PLAIN's answer is the empty token.
    assert_eq!(read_frame(&mut stream).await.as_deref(), Some(&[][..]));
    let Some(ResponseKind::Metadata(_)) = call(&mut stream, &metadata(), 12).await else {
        panic!("Metadata not served after a v0 authentication")
    };
}

#[tokio::test]
async fn an_oversized_frame_before_authentication_closes_the_connection() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    // 1 MiB announced: over the 512 KiB allowed before authentication,
    // far under socket.request.max.bytes.
    stream
        .write_all(&(1u32 << 20).to_be_bytes())
        .await
        .expect("write");
    assert!(closes_within(&mut stream, Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_garbage_client_hello_closes_the_connection_and_the_listener_serves_on() {
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), None).await;
    let addr = first_broker(&cluster);
    let garbage: [&[u8]; 3] = [
        // A TLS record header announcing a handshake, then nonsense.
        b"\x16\x03\x01\x00\x30not a client hello at all, just some bytes here!!",
        // A plain Kafka request on the TLS port.
        b"\x00\x00\x00\x0e\x00\x12\x00\x03\x00\x00\x00\x01\x00\x04test",
        b"\xff\xff\xff\xff\xff\xff\xff\xff",
    ];
    for bytes in garbage {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        stream.write_all(bytes).await.expect("write");
        assert!(
            closes_within(&mut stream, Duration::from_secs(10)).await,
            "{bytes:?} left the connection open"
        );
    }
    let mut tls = tls_connect(&pki, &addr).await;
    let Some(ResponseKind::ApiVersions(r)) =
        call(&mut tls, &RequestKind::ApiVersions(Default::default()), 3).await
    else {
        panic!("no ApiVersions over TLS")
    };
    assert_eq!(r.error_code, 0);
    // No SASL on this listener, so the SASL APIs are not offered.
    assert!(
        !r.api_keys
            .iter()
            .any(|a| a.api_key == ApiKey::SaslHandshake as i16)
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_nothing_is_dropped_after_the_tls_handshake_timeout() {
    let pki = Pki::new();
    let cluster = cluster(Some(&pki), None).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    // Paused time: the broker's 10 s handshake limit passes at once.
    let start = tokio::time::Instant::now();
    assert!(closes_within(&mut stream, Duration::from_secs(60)).await);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "closed after {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_authenticates_is_dropped() {
    let cluster = cluster(None, Some(sasl(&[SaslMechanism::Plain]))).await;
    let mut stream = tokio::net::TcpStream::connect(first_broker(&cluster))
        .await
        .expect("connect");
    let start = tokio::time::Instant::now();
    call(&mut stream, &handshake("PLAIN"), 1)
        .await
        .expect("handshake");
    assert!(closes_within(&mut stream, Duration::from_secs(120)).await);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(31),
        "closed after {waited:?}"
    );
}

#[test]
fn a_cluster_with_unusable_sasl_settings_does_not_start() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut settings = sasl(&[]);
    let start = |settings: SaslSettings| {
        runtime.block_on(Cluster::start(BrokerConfig {
            sasl: Some(settings),
            ..BrokerConfig::default()
        }))
    };
    let err = start(settings.clone()).expect_err("no mechanism");
    assert!(err.to_string().contains("no mechanism"), "{err}");
    settings.mechanisms.push(SaslMechanism::Plain);
    settings.users.clear();
    let err = start(settings).expect_err("no user");
    assert!(err.to_string().contains("no user"), "{err}");
}
