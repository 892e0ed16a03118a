//! Requests captured from real clients (`kcat`/librdkafka and kafka-python)
//! decode, re-encode byte for byte, and carry exactly what was sent.
//!
//! The fixtures under `tests/fixtures/<client>/` are raw request frames
//! without the 4-byte size prefix, named `<api>_v<version>[_<what>].bin`.
//! They were captured by `tests/capture_fixtures.rs` (see the README there);
//! these tests need no tools.

#[allow(dead_code)]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::frame::{decode_request, peek_request};
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, Decode, Encode};
use support::batch::{self, Batch};

/// Every fixture the capture is expected to produce, per client.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "kcat",
        &[
            "api_versions_v3.bin",
            "metadata_v4.bin",
            "produce_v7_none.bin",
            "produce_v7_gzip.bin",
            "produce_v7_snappy.bin",
            "produce_v7_lz4.bin",
            "produce_v7_zstd.bin",
            "list_offsets_v2.bin",
            "fetch_v11.bin",
            "find_coordinator_v2.bin",
            "join_group_v5.bin",
            "join_group_v5_rejoin.bin",
            "sync_group_v3.bin",
            "offset_fetch_v7.bin",
            "heartbeat_v3.bin",
            "offset_commit_v7.bin",
            "leave_group_v1.bin",
            "init_producer_id_v4_idempotent.bin",
            "produce_v7_idempotent.bin",
            "find_coordinator_v2_transaction.bin",
            "init_producer_id_v4_transactional.bin",
            "add_partitions_to_txn_v0.bin",
            "produce_v7_transactional.bin",
            "end_txn_v1.bin",
        ],
    ),
    (
        "kafka_python",
        &[
            "api_versions_v4.bin",
            "metadata_v12.bin",
            "produce_v9_none.bin",
            "produce_v9_gzip.bin",
            "produce_v9_snappy.bin",
            "produce_v9_lz4.bin",
            "produce_v9_zstd.bin",
            "list_offsets_v10.bin",
            "fetch_v12.bin",
            "find_coordinator_v6.bin",
            "join_group_v7.bin",
            "join_group_v7_rejoin.bin",
            "sync_group_v5.bin",
            "offset_fetch_v8.bin",
            "heartbeat_v4.bin",
            "offset_commit_v8.bin",
            "leave_group_v5.bin",
            "init_producer_id_v4_idempotent.bin",
            "produce_v9_idempotent.bin",
            "find_coordinator_v6_transaction.bin",
            "init_producer_id_v4_transactional.bin",
            "add_partitions_to_txn_v3.bin",
            "produce_v9_transactional.bin",
            "end_txn_v3.bin",
        ],
    ),
];

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `kafka_python` -> `kafka-python`: how the values, topics and client ids
/// spell the client.
fn label(client: &str) -> String {
    client.replace('_', "-")
}

struct Fixture {
    client: String,
    file: String,
    api: ApiKey,
    version: i16,
    what: String,
    frame: Bytes,
}

/// Splits `join_group_v5_rejoin.bin` into (`join_group`, 5, `rejoin`).
fn parse_name(file: &str) -> Option<(String, i16, String)> {
    let stem = file.strip_suffix(".bin")?;
    let mut search = 0;
    while let Some(found) = stem[search..].find("_v") {
        let at = search + found;
        let rest = &stem[at + 2..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let after = &rest[digits.len()..];
        if !digits.is_empty() && (after.is_empty() || after.starts_with('_')) {
            let what = after.strip_prefix('_').unwrap_or("").to_owned();
            return Some((stem[..at].to_owned(), digits.parse().ok()?, what));
        }
        search = at + 2;
    }
    None
}

fn api_by_snake_name(name: &str) -> Option<ApiKey> {
    ApiKey::ALL
        .iter()
        .copied()
        .find(|api| support::snake_case(*api) == name)
}

fn all_fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut clients: Vec<_> = std::fs::read_dir(fixtures_root())
        .expect("tests/fixtures exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    clients.sort();
    for dir in clients {
        let client = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        files.sort();
        for path in files {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let (api_name, version, what) =
                parse_name(&file).unwrap_or_else(|| panic!("{client}/{file}: bad fixture name"));
            let api = api_by_snake_name(&api_name)
                .unwrap_or_else(|| panic!("{client}/{file}: no API named {api_name}"));
            out.push(Fixture {
                client: client.clone(),
                file,
                api,
                version,
                what,
                frame: Bytes::from(std::fs::read(&path).unwrap()),
            });
        }
    }
    out
}

/// Decodes header and body step by step, returning what is left over.
fn decode_fully(frame: &Bytes) -> Result<(RequestHeader, RequestKind, usize), String> {
    let preamble = peek_request(frame).map_err(|e| format!("preamble: {e}"))?;
    let api = ApiKey::try_from(preamble.api_key).map_err(|e| format!("api key: {e}"))?;
    let version = preamble.api_version;
    let mut buf = frame.clone();
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
        .map_err(|e| format!("header: {e}"))?;
    let header_len = frame.len() - buf.len();
    let body = RequestKind::decode(api, &mut buf, version)
        .map_err(|e| format!("body (starting at byte {header_len}): {e}"))?;
    Ok((header, body, buf.remaining()))
}

/// The one fixture of `client` for `api` with this `what` (any version).
fn load(client: &str, api: ApiKey, what: &str) -> (RequestHeader, RequestKind, i16) {
    let fixture = all_fixtures()
        .into_iter()
        .find(|f| f.client == client && f.api == api && f.what == what)
        .unwrap_or_else(|| panic!("no {client} fixture for {} ({what})", api.name()));
    let (header, body, left) =
        decode_fully(&fixture.frame).unwrap_or_else(|e| panic!("{client}/{}: {e}", fixture.file));
    assert_eq!(left, 0, "{client}/{}: bytes left", fixture.file);
    assert_eq!(
        header.client_id.as_deref(),
        Some(format!("fixture-{}", label(client)).as_str())
    );
    (header, body, fixture.version)
}

fn values(client: &str, what: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("fixture-{}-{what}-{i}", label(client)))
        .collect()
}

#[test]
fn every_expected_fixture_is_present() {
    let fixtures = all_fixtures();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &fixtures {
        *counts.entry(f.client.as_str()).or_default() += 1;
    }
    for (client, count) in &counts {
        eprintln!("{client}: {count} fixtures");
    }
    let mut missing = Vec::new();
    for (client, files) in EXPECTED {
        for file in *files {
            if !fixtures
                .iter()
                .any(|f| f.client == *client && f.file == *file)
            {
                missing.push(format!("{client}/{file}"));
            }
        }
    }
    let unexpected: Vec<String> = fixtures
        .iter()
        .filter(|f| {
            !EXPECTED
                .iter()
                .any(|(c, files)| *c == f.client && files.contains(&f.file.as_str()))
        })
        .map(|f| format!("{}/{}", f.client, f.file))
        .collect();
    assert!(missing.is_empty(), "missing fixtures: {missing:?}");
    assert!(
        unexpected.is_empty(),
        "fixtures not in the EXPECTED table (add them): {unexpected:?}"
    );
}

#[test]
fn every_fixture_decodes_as_its_name_says_and_consumes_the_whole_frame() {
    let fixtures = all_fixtures();
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());
    let mut failures = Vec::new();
    for f in &fixtures {
        let name = format!("{}/{}", f.client, f.file);
        let preamble = peek_request(&f.frame).expect("preamble");
        if preamble.api_key != f.api as i16 || preamble.api_version != f.version {
            failures.push(format!(
                "{name}: header says key {} v{}",
                preamble.api_key, preamble.api_version
            ));
            continue;
        }
        match decode_fully(&f.frame) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok((header, body, left)) => {
                if left != 0 {
                    failures.push(format!("{name}: {left} bytes left after the body"));
                }
                if body.api_key() != f.api || header.request_api_version != f.version {
                    failures.push(format!("{name}: decoded as {}", body.api_key().name()));
                }
                // The public entry point agrees with the step-by-step decode.
                match decode_request(f.frame.clone()) {
                    Ok((h, b)) if h == header && b == body => {}
                    Ok(_) => failures.push(format!("{name}: decode_request disagrees")),
                    Err(e) => failures.push(format!("{name}: decode_request: {e}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_re_encodes_to_the_bytes_the_client_sent() {
    let mut failures = Vec::new();
    for f in all_fixtures() {
        let (header, body, _) = decode_fully(&f.frame).expect("decodes");
        let mut out = BytesMut::new();
        let encoded = header
            .encode(&mut out, f.api.request_header_version(f.version))
            .and_then(|()| body.encode(&mut out, f.version));
        match encoded {
            Err(e) => failures.push(format!("{}/{}: encode: {e}", f.client, f.file)),
            Ok(()) if out[..] != f.frame[..] => {
                let at = out
                    .iter()
                    .zip(f.frame.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(out.len().min(f.frame.len()));
                failures.push(format!(
                    "{}/{}: re-encoded {} bytes vs {} captured, first difference at byte {at}",
                    f.client,
                    f.file,
                    out.len(),
                    f.frame.len()
                ));
            }
            Ok(()) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_carries_the_client_id_it_was_sent_with() {
    for f in all_fixtures() {
        let (header, _, _) = decode_fully(&f.frame).expect("decodes");
        assert_eq!(
            header.client_id.as_deref(),
            Some(format!("fixture-{}", label(&f.client)).as_str()),
            "{}/{}",
            f.client,
            f.file
        );
    }
}

// ---------------------------------------------------------------- Produce

/// Checks a Produce fixture: topic `fixture-<client>-<what>`, partition 0,
/// batches compressed with `codec`, valid CRCs, and the ten values sent, in
/// order. Returns the request and its batches for further checks.
fn check_produce(client: &str, what: &str, codec: i16) -> (ProduceRequest, Vec<Batch>) {
    let (_, body, _) = load(client, ApiKey::Produce, what);
    let RequestKind::Produce(request) = body else {
        panic!("not a Produce request")
    };
    assert_eq!(request.topic_data.len(), 1);
    let topic = &request.topic_data[0];
    assert_eq!(topic.name, format!("fixture-{}-{what}", label(client)));
    assert_eq!(topic.partition_data.len(), 1);
    assert_eq!(topic.partition_data[0].index, 0);
    let records = topic.partition_data[0]
        .records
        .as_ref()
        .expect("records are present");
    let batches = batch::parse_batches(records).expect("record batches parse");
    assert!(!batches.is_empty());
    let mut sent = Vec::new();
    for b in &batches {
        assert_eq!(b.magic, 2);
        assert_eq!(b.crc, b.computed_crc, "CRC-32C of the batch");
        assert_eq!(
            b.compression(),
            codec,
            "compression codec in the attributes"
        );
        assert_eq!(b.last_offset_delta as usize + 1, b.records.len());
        for (i, r) in b.records.iter().enumerate() {
            assert_eq!(r.offset_delta as usize, i);
            assert_eq!(r.key, None);
            sent.push(String::from_utf8(r.value.clone().expect("value")).expect("utf-8"));
        }
    }
    assert_eq!(sent, values(client, what, 10));
    (request, batches)
}

macro_rules! produce_tests {
    ($($name:ident: $client:literal, $what:literal, $codec:expr;)*) => {$(
        #[test]
        fn $name() {
            let (request, batches) = check_produce($client, $what, $codec);
            assert_eq!(request.transactional_id, None);
            assert_eq!(request.acks, -1);
            assert!(batches.iter().all(|b| b.producer_id == -1 && !b.is_transactional()));
        }
    )*};
}

produce_tests! {
    kcat_uncompressed_produce_carries_the_values_sent: "kcat", "none", batch::NONE;
    kcat_gzip_produce_carries_the_values_sent: "kcat", "gzip", batch::GZIP;
    kcat_snappy_produce_carries_the_values_sent: "kcat", "snappy", batch::SNAPPY;
    kcat_lz4_produce_carries_the_values_sent: "kcat", "lz4", batch::LZ4;
    kcat_zstd_produce_carries_the_values_sent: "kcat", "zstd", batch::ZSTD;
    kafka_python_uncompressed_produce_carries_the_values_sent: "kafka_python", "none", batch::NONE;
    kafka_python_gzip_produce_carries_the_values_sent: "kafka_python", "gzip", batch::GZIP;
    kafka_python_snappy_produce_carries_the_values_sent: "kafka_python", "snappy", batch::SNAPPY;
    kafka_python_lz4_produce_carries_the_values_sent: "kafka_python", "lz4", batch::LZ4;
    kafka_python_zstd_produce_carries_the_values_sent: "kafka_python", "zstd", batch::ZSTD;
}

fn check_idempotent_produce(client: &str) {
    let (request, batches) = check_produce(client, "idempotent", batch::NONE);
    assert_eq!(request.transactional_id, None);
    assert_eq!(request.acks, -1, "idempotence requires acks=all");
    assert_eq!(batches[0].base_sequence, 0);
    for b in &batches {
        assert_eq!(b.producer_id, 1000, "the id InitProducerId handed out");
        assert_eq!(b.producer_epoch, 0);
        assert!(!b.is_transactional());
    }
}

#[test]
fn kcat_idempotent_produce_carries_producer_id_and_sequence() {
    check_idempotent_produce("kcat");
}

#[test]
fn kafka_python_idempotent_produce_carries_producer_id_and_sequence() {
    check_idempotent_produce("kafka_python");
}

fn check_transactional_produce(client: &str) {
    let (request, batches) = check_produce(client, "transactional", batch::NONE);
    assert_eq!(
        request.transactional_id,
        Some(format!("fixture-{}-txn", label(client)))
    );
    for b in &batches {
        assert_eq!(b.producer_id, 1000);
        assert_eq!(b.producer_epoch, 0);
        assert!(b.is_transactional(), "transactional bit in the attributes");
    }
}

#[test]
fn kcat_transactional_produce_is_marked_transactional() {
    check_transactional_produce("kcat");
}

#[test]
fn kafka_python_transactional_produce_is_marked_transactional() {
    check_transactional_produce("kafka_python");
}

// ------------------------------------------------------ Producer id / txn

fn check_init_producer_id(client: &str, what: &str, transactional_id: Option<String>) {
    let (_, body, version) = load(client, ApiKey::InitProducerId, what);
    let RequestKind::InitProducerId(r) = body else {
        panic!("not InitProducerId")
    };
    assert_eq!(r.transactional_id, transactional_id);
    if transactional_id.is_some() {
        assert!(r.transaction_timeout_ms > 0);
    }
    if version >= 3 {
        // A first initialisation: no previous id to bump.
        assert_eq!((r.producer_id, r.producer_epoch), (-1, -1));
    }
}

#[test]
fn kcat_idempotent_init_producer_id_has_no_transactional_id() {
    check_init_producer_id("kcat", "idempotent", None);
}

#[test]
fn kafka_python_idempotent_init_producer_id_has_no_transactional_id() {
    check_init_producer_id("kafka_python", "idempotent", None);
}

#[test]
fn kcat_transactional_init_producer_id_names_the_transaction() {
    check_init_producer_id("kcat", "transactional", Some("fixture-kcat-txn".into()));
}

#[test]
fn kafka_python_transactional_init_producer_id_names_the_transaction() {
    check_init_producer_id(
        "kafka_python",
        "transactional",
        Some("fixture-kafka-python-txn".into()),
    );
}

fn check_add_partitions_and_end_txn(client: &str) {
    let txn = format!("fixture-{}-txn", label(client));
    let topic = format!("fixture-{}-transactional", label(client));
    let (_, body, version) = load(client, ApiKey::AddPartitionsToTxn, "");
    let RequestKind::AddPartitionsToTxn(r) = body else {
        panic!("not AddPartitionsToTxn")
    };
    let (id, producer_id, epoch, topics) = if version <= 3 {
        (
            r.v3_and_below_transactional_id,
            r.v3_and_below_producer_id,
            r.v3_and_below_producer_epoch,
            r.v3_and_below_topics,
        )
    } else {
        let t = r.transactions.into_iter().next().expect("a transaction");
        (
            t.transactional_id,
            t.producer_id,
            t.producer_epoch,
            t.topics,
        )
    };
    assert_eq!((id.as_str(), producer_id, epoch), (txn.as_str(), 1000, 0));
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0].name, topic);
    assert_eq!(topics[0].partitions, vec![0]);

    let (_, body, _) = load(client, ApiKey::EndTxn, "");
    let RequestKind::EndTxn(r) = body else {
        panic!("not EndTxn")
    };
    assert_eq!(r.transactional_id, txn);
    assert_eq!((r.producer_id, r.producer_epoch), (1000, 0));
    assert!(r.committed, "the transaction was committed");

    let (_, body, version) = load(client, ApiKey::FindCoordinator, "transaction");
    let RequestKind::FindCoordinator(r) = body else {
        panic!("not FindCoordinator")
    };
    assert_eq!(r.key_type, 1, "transaction coordinator");
    if version < 4 {
        assert_eq!(r.key, txn);
    } else {
        assert_eq!(r.coordinator_keys, vec![txn]);
    }
}

#[test]
fn kcat_transaction_adds_its_partition_and_commits() {
    check_add_partitions_and_end_txn("kcat");
}

#[test]
fn kafka_python_transaction_adds_its_partition_and_commits() {
    check_add_partitions_and_end_txn("kafka_python");
}

// ------------------------------------------------- ApiVersions / Metadata

#[test]
fn api_versions_requests_name_the_client_software() {
    for (client, software) in [("kcat", "librdkafka"), ("kafka_python", "kafka-python")] {
        let (_, body, version) = load(client, ApiKey::ApiVersions, "");
        let RequestKind::ApiVersions(r) = body else {
            panic!("not ApiVersions")
        };
        assert!(version >= 3, "{client} sends a flexible ApiVersions first");
        assert_eq!(r.client_software_name, software);
        assert!(!r.client_software_version.is_empty());
    }
}

#[test]
fn metadata_requests_name_the_topic_asked_for() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::Metadata, "");
        let RequestKind::Metadata(r) = body else {
            panic!("not Metadata")
        };
        let names: Vec<_> = r
            .topics
            .expect("a topic list")
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(
            names,
            vec![Some(format!("fixture-{}-metadata", label(client)))]
        );
    }
}

// --------------------------------------------------------- Consuming

#[test]
fn list_offsets_asks_for_the_earliest_offset_of_the_consumed_partition() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::ListOffsets, "");
        let RequestKind::ListOffsets(r) = body else {
            panic!("not ListOffsets")
        };
        assert_eq!(r.replica_id, -1, "a consumer, not a replica");
        assert_eq!(r.topics.len(), 1);
        assert_eq!(
            r.topics[0].name,
            format!("fixture-{}-consume", label(client))
        );
        assert_eq!(r.topics[0].partitions.len(), 1);
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.partition_index, 0);
        assert_eq!(p.timestamp, -2, "EARLIEST");
    }
}

#[test]
fn fetch_asks_for_the_consumed_partition_from_offset_zero() {
    // librdkafka defaults to read_committed, kafka-python to read_uncommitted.
    for (client, isolation) in [("kcat", 1), ("kafka_python", 0)] {
        let (_, body, version) = load(client, ApiKey::Fetch, "");
        let RequestKind::Fetch(r) = body else {
            panic!("not Fetch")
        };
        let topic = format!("fixture-{}-consume", label(client));
        assert_eq!(r.isolation_level, isolation, "{client}");
        assert_eq!(r.topics.len(), 1);
        if version >= 13 {
            assert_eq!(r.topics[0].topic_id, support::topic_id(&topic));
        } else {
            assert_eq!(r.topics[0].topic, topic);
        }
        assert_eq!(r.topics[0].partitions.len(), 1);
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.partition, p.fetch_offset), (0, 0));
        assert!(p.partition_max_bytes > 0);
    }
}

// ------------------------------------------------------- Consumer groups

fn group(client: &str) -> String {
    format!("fixture-{}-group", label(client))
}

fn group_topic(client: &str) -> String {
    format!("fixture-{}-group-topic", label(client))
}

fn member(client: &str) -> String {
    // What the capture listener assigns in its MEMBER_ID_REQUIRED answer.
    format!("fixture-{}-fixture-member", label(client))
}

#[test]
fn find_coordinator_asks_for_the_group() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, version) = load(client, ApiKey::FindCoordinator, "");
        let RequestKind::FindCoordinator(r) = body else {
            panic!("not FindCoordinator")
        };
        assert_eq!(r.key_type, 0, "group coordinator");
        if version < 4 {
            assert_eq!(r.key, group(client));
        } else {
            assert_eq!(r.coordinator_keys, vec![group(client)]);
        }
    }
}

/// The subscription inside a JoinGroup protocol's metadata.
fn subscription(metadata: &Bytes) -> ConsumerProtocolSubscription {
    let mut buf = metadata.clone();
    let version = buf.get_i16();
    ConsumerProtocolSubscription::decode(&mut buf, version).expect("subscription decodes")
}

#[test]
fn join_group_subscribes_to_the_topic_then_rejoins_with_its_member_id() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::JoinGroup, "");
        let RequestKind::JoinGroup(first) = body else {
            panic!("not JoinGroup")
        };
        assert_eq!(first.group_id, group(client));
        assert_eq!(first.protocol_type, "consumer");
        assert_eq!(first.member_id, "", "a new member");
        assert!(first.session_timeout_ms > 0 && first.rebalance_timeout_ms > 0);
        assert!(!first.protocols.is_empty());
        for protocol in &first.protocols {
            assert!(!protocol.name.is_empty());
            assert_eq!(
                subscription(&protocol.metadata).topics,
                vec![group_topic(client)],
                "{client} {}",
                protocol.name
            );
        }

        let (_, body, _) = load(client, ApiKey::JoinGroup, "rejoin");
        let RequestKind::JoinGroup(again) = body else {
            panic!("not JoinGroup")
        };
        assert_eq!(again.group_id, group(client));
        assert_eq!(again.member_id, member(client), "KIP-394 member id echoed");
        assert_eq!(again.protocols, first.protocols);
    }
}

#[test]
fn sync_group_leader_assigns_the_partition_to_itself() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::SyncGroup, "");
        let RequestKind::SyncGroup(r) = body else {
            panic!("not SyncGroup")
        };
        assert_eq!(r.group_id, group(client));
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.member_id, member(client));
        assert_eq!(r.assignments.len(), 1, "the leader assigns");
        assert_eq!(r.assignments[0].member_id, member(client));
        let mut buf = r.assignments[0].assignment.clone();
        let version = buf.get_i16();
        let assignment =
            ConsumerProtocolAssignment::decode(&mut buf, version).expect("assignment decodes");
        assert_eq!(assignment.assigned_partitions.len(), 1);
        assert_eq!(assignment.assigned_partitions[0].topic, group_topic(client));
        assert_eq!(assignment.assigned_partitions[0].partitions, vec![0]);
    }
}

#[test]
fn offset_fetch_asks_for_the_group_offsets() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, version) = load(client, ApiKey::OffsetFetch, "");
        let RequestKind::OffsetFetch(r) = body else {
            panic!("not OffsetFetch")
        };
        let (group_id, topics): (String, Vec<(String, Vec<i32>)>) = if version < 8 {
            let topics = r.topics.expect("topics");
            (
                r.group_id,
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect(),
            )
        } else {
            let g = r.groups.into_iter().next().expect("a group");
            let topics = g.topics.expect("topics");
            (
                g.group_id,
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect(),
            )
        };
        assert_eq!(group_id, group(client));
        assert_eq!(topics, vec![(group_topic(client), vec![0])]);
    }
}

#[test]
fn offset_commit_commits_past_the_three_records_consumed() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::OffsetCommit, "");
        let RequestKind::OffsetCommit(r) = body else {
            panic!("not OffsetCommit")
        };
        assert_eq!(r.group_id, group(client));
        assert_eq!(r.generation_id_or_member_epoch, 1);
        assert_eq!(r.member_id, member(client));
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].name, group_topic(client));
        assert_eq!(r.topics[0].partitions.len(), 1);
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.committed_offset), (0, 3), "{client}");
    }
}

#[test]
fn heartbeat_and_leave_group_name_the_member() {
    for client in ["kcat", "kafka_python"] {
        let (_, body, _) = load(client, ApiKey::Heartbeat, "");
        let RequestKind::Heartbeat(r) = body else {
            panic!("not Heartbeat")
        };
        assert_eq!(r.group_id, group(client));
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.member_id, member(client));

        let (_, body, version) = load(client, ApiKey::LeaveGroup, "");
        let RequestKind::LeaveGroup(r) = body else {
            panic!("not LeaveGroup")
        };
        assert_eq!(r.group_id, group(client));
        if version < 3 {
            assert_eq!(r.member_id, member(client));
        } else {
            assert_eq!(r.members.len(), 1);
            assert_eq!(r.members[0].member_id, member(client));
        }
    }
}

#[test]
fn fixture_names_parse() {
    assert_eq!(
        parse_name("join_group_v5_rejoin.bin"),
        Some(("join_group".into(), 5, "rejoin".into()))
    );
    assert_eq!(
        parse_name("api_versions_v3.bin"),
        Some(("api_versions".into(), 3, String::new()))
    );
    assert_eq!(
        api_by_snake_name("add_partitions_to_txn"),
        Some(ApiKey::AddPartitionsToTxn)
    );
}

// ------------------------------------- Cross-check with the records module

/// The crate's own `records` module reads every captured Produce payload the
/// same way the independent reader in `support::batch` does: CRC, codec,
/// producer fields and every record value, in order.
#[test]
fn records_module_reads_every_produce_fixture_like_the_independent_reader() {
    use kafka_protocol::records::{Batches, Compression};
    let mut checked = 0;
    for f in all_fixtures()
        .into_iter()
        .filter(|f| f.api == ApiKey::Produce)
    {
        let name = format!("{}/{}", f.client, f.file);
        let (_, body, _) = decode_fully(&f.frame).expect("decodes");
        let RequestKind::Produce(request) = body else {
            panic!("{name}: not Produce")
        };
        let records = request.topic_data[0].partition_data[0]
            .records
            .clone()
            .expect("records");
        let expected = batch::parse_batches(&records).expect("independent reader");
        let actual: Vec<_> = Batches::new(records)
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{name}: records module: {e}"));
        assert_eq!(actual.len(), expected.len(), "{name}: batch count");
        for (ours, theirs) in actual.iter().zip(&expected) {
            ours.verify_crc()
                .unwrap_or_else(|e| panic!("{name}: CRC: {e}"));
            let header = ours.header();
            assert_eq!(header.crc, theirs.crc, "{name}");
            assert_eq!(header.attributes, theirs.attributes, "{name}");
            let codec = match theirs.compression() {
                batch::NONE => Compression::None,
                batch::GZIP => Compression::Gzip,
                batch::SNAPPY => Compression::Snappy,
                batch::LZ4 => Compression::Lz4,
                _ => Compression::Zstd,
            };
            assert_eq!(header.compression().expect("codec"), codec, "{name}");
            assert_eq!(header.producer_id, theirs.producer_id, "{name}");
            assert_eq!(header.producer_epoch, theirs.producer_epoch, "{name}");
            assert_eq!(header.base_sequence, theirs.base_sequence, "{name}");
            assert_eq!(ours.is_transactional(), theirs.is_transactional(), "{name}");
            let values: Vec<Option<Vec<u8>>> = ours
                .to_records()
                .unwrap_or_else(|e| panic!("{name}: records: {e}"))
                .into_iter()
                .map(|r| r.value.map(|v| v.to_vec()))
                .collect();
            let want: Vec<Option<Vec<u8>>> =
                theirs.records.iter().map(|r| r.value.clone()).collect();
            assert_eq!(values, want, "{name}: record values");
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} Produce batches checked");
}
