//! A tiny Kafka-speaking TCP listener that records every request frame a real
//! client sends, and answers just enough for the client to carry on.
//!
//! - Binds 127.0.0.1:0 only; the port is in [`CaptureListener::port`].
//! - std only: one thread accepts, one thread per connection.
//! - Frames are cut with [`FrameDecoder`] and stored WITHOUT the 4-byte size
//!   prefix (exactly what [`decode_request`] takes).
//! - Bounded: every socket read has a short timeout, every loop checks a stop
//!   flag and an overall deadline, and the listener stops itself when the
//!   deadline passes (or when dropped / [`CaptureListener::stop`] is called).
//! - It never panics on network input: bad frames are noted in
//!   [`CaptureListener::notes`] and the connection is closed, as Kafka does.
//!
//! It plays a one-broker cluster (node 1 = itself) where every topic asked
//! for exists with `partitions` partitions led by node 1, carries a
//! deterministic topic id ([`super::topic_id`]), and (if configured) holds a
//! few uncompressed records at offset 0 of every partition.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{FrameDecoder, decode_request, encode_response, peek_request};
use kafka_protocol::messages::*;
use kafka_protocol::{ApiKey, EncodeError, Response};

use super::{batch, topic_id};

/// Kafka error codes the listener uses.
const UNSUPPORTED_VERSION: i16 = 35;
const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// The producer id InitProducerId hands out.
pub const PRODUCER_ID: i64 = 1000;

/// The APIs the listener answers, advertised in ApiVersions with the full
/// range this codec supports (clients then pick their newest common version).
pub const HANDLED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::SyncGroup,
    ApiKey::ApiVersions,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::EndTxn,
];

/// What the listener pretends to hold.
#[derive(Debug, Clone)]
pub struct Config {
    /// Topics listed when a client asks for all topics.
    pub topics: Vec<String>,
    /// Partitions of every topic.
    pub partitions: i32,
    /// Values of the records every partition holds from offset 0.
    pub fetch_values: Vec<String>,
    /// The listener stops itself this long after starting.
    pub deadline: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            topics: Vec::new(),
            partitions: 1,
            fetch_values: Vec::new(),
            deadline: Duration::from_secs(60),
        }
    }
}

/// One request frame as received.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Which accepted connection it came on (0, 1, ...).
    pub connection: usize,
    /// The raw API key and version from the header.
    pub api_key: i16,
    pub api_version: i16,
    /// The frame without its size prefix: header + body.
    pub frame: Bytes,
}

impl Captured {
    /// The API, if the key is known.
    pub fn api(&self) -> Option<ApiKey> {
        ApiKey::from_i16(self.api_key)
    }

    /// Whether the frame contains `needle` byte for byte.
    pub fn contains(&self, needle: &[u8]) -> bool {
        !needle.is_empty() && self.frame.windows(needle.len()).any(|w| w == needle)
    }
}

struct Shared {
    config: Config,
    host: String,
    port: i32,
    started: Instant,
    stop: AtomicBool,
    connections: AtomicUsize,
    captured: Mutex<Vec<Captured>>,
    notes: Mutex<Vec<String>>,
    /// Log end offset per (topic, partition).
    ends: Mutex<HashMap<(String, i32), i64>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::SeqCst) && self.started.elapsed() < self.config.deadline
    }

    fn note(&self, note: String) {
        lock(&self.notes).push(note);
    }

    fn end_offset(&self, topic: &str, partition: i32) -> i64 {
        let stored = self.config.fetch_values.len() as i64;
        *lock(&self.ends)
            .entry((topic.to_owned(), partition))
            .or_insert(stored)
    }

    fn append(&self, topic: &str, partition: i32, records: i64) -> i64 {
        let stored = self.config.fetch_values.len() as i64;
        let mut ends = lock(&self.ends);
        let end = ends.entry((topic.to_owned(), partition)).or_insert(stored);
        let base = *end;
        *end += records;
        base
    }

    fn topic_by_id(&self, id: uuid::Uuid) -> Option<String> {
        let known = lock(&self.ends);
        self.config
            .topics
            .iter()
            .chain(known.keys().map(|(t, _)| t))
            .find(|t| topic_id(t) == id)
            .cloned()
    }
}

/// A running capture listener.
pub struct CaptureListener {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl CaptureListener {
    /// Binds 127.0.0.1:0 and starts accepting.
    pub fn start(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            host: addr.ip().to_string(),
            port: i32::from(addr.port()),
            started: Instant::now(),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            captured: Mutex::new(Vec::new()),
            notes: Mutex::new(Vec::new()),
            ends: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = std::thread::spawn(move || accept_loop(&accept_shared, &listener));
        Ok(Self {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The port to point clients at (`127.0.0.1:PORT`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Everything captured so far, in arrival order.
    pub fn captured(&self) -> Vec<Captured> {
        lock(&self.shared.captured).clone()
    }

    /// Problems seen: undecodable frames, unhandled APIs, I/O errors.
    pub fn notes(&self) -> Vec<String> {
        lock(&self.shared.notes).clone()
    }

    /// Stops accepting, closes every connection, waits for all threads and
    /// returns what was captured.
    pub fn stop(mut self) -> (Vec<Captured>, Vec<String>) {
        self.shutdown();
        (self.captured(), self.notes())
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for CaptureListener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while shared.running() {
        match listener.accept() {
            Ok((stream, _)) => {
                let id = shared.connections.fetch_add(1, Ordering::SeqCst);
                let conn_shared = Arc::clone(shared);
                let handle = std::thread::spawn(move || {
                    if let Err(e) = serve(&conn_shared, id, stream) {
                        conn_shared.note(format!("connection {id}: {e}"));
                    }
                });
                lock(&shared.threads).push(handle);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                shared.note(format!("accept: {e}"));
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn serve(shared: &Shared, connection: usize, mut stream: TcpStream) -> Result<(), String> {
    stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(Duration::from_millis(50))))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("socket setup: {e}"))?;
    let decoder = FrameDecoder::new(16 * 1024 * 1024);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut chunk = [0u8; 64 * 1024];
    let result = 'conn: loop {
        if !shared.running() {
            break Ok(());
        }
        match stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("read: {e}")),
        }
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => break 'conn Err(format!("framing: {e}")),
            };
            match answer(shared, connection, frame) {
                Ok(Some(response)) => {
                    if let Err(e) = stream.write_all(&response) {
                        break 'conn Err(format!("write: {e}"));
                    }
                }
                Ok(None) => {}
                Err(e) => break 'conn Err(e),
            }
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    result
}

fn respond<R: Response>(correlation_id: i32, version: i16, body: &R) -> Result<BytesMut, String> {
    let mut out = BytesMut::new();
    encode_response(&mut out, correlation_id, version, body)
        .map_err(|e: EncodeError| format!("encoding {} v{version}: {e}", R::API_KEY.name()))?;
    Ok(out)
}

/// Records the frame and builds the response, if one is due.
fn answer(shared: &Shared, connection: usize, frame: Bytes) -> Result<Option<BytesMut>, String> {
    let preamble = peek_request(&frame).map_err(|e| format!("request preamble: {e}"))?;
    lock(&shared.captured).push(Captured {
        connection,
        api_key: preamble.api_key,
        api_version: preamble.api_version,
        frame: frame.clone(),
    });
    let correlation_id = preamble.correlation_id;
    let version = preamble.api_version;
    let api = ApiKey::from_i16(preamble.api_key)
        .ok_or_else(|| format!("unknown API key {}", preamble.api_key))?;
    if api == ApiKey::ApiVersions && !api.valid_versions().contains(version) {
        // As Kafka does: a v0 response with UNSUPPORTED_VERSION, listing the
        // ApiVersions range so the client can retry with one we speak.
        let body = api_versions(UNSUPPORTED_VERSION, &[ApiKey::ApiVersions]);
        return respond(correlation_id, 0, &body).map(Some);
    }
    if !HANDLED.contains(&api) {
        return Err(format!("unhandled API {} v{version}", api.name()));
    }
    let (header, request) = decode_request(frame)
        .map_err(|e| format!("CODEC: cannot decode {} v{version}: {e}", api.name()))?;
    let client_id = header.client_id.unwrap_or_default();
    let response = match request {
        RequestKind::ApiVersions(_) => respond(correlation_id, version, &api_versions(0, HANDLED))?,
        RequestKind::Metadata(r) => {
            respond(correlation_id, version, &metadata(shared, &r, version))?
        }
        RequestKind::Produce(r) => {
            let body = produce(shared, &r, version);
            if r.acks == 0 {
                return Ok(None);
            }
            respond(correlation_id, version, &body)?
        }
        RequestKind::ListOffsets(r) => {
            respond(correlation_id, version, &list_offsets(shared, &r, version))?
        }
        RequestKind::Fetch(r) => respond(correlation_id, version, &fetch(shared, &r, version))?,
        RequestKind::FindCoordinator(r) => {
            // v0-3 name one coordinator; v4+ answer per key (KIP-699).
            let single = version < 4;
            let body = FindCoordinatorResponse {
                node_id: if single { 1 } else { 0 },
                host: if single {
                    shared.host.clone()
                } else {
                    String::new()
                },
                port: if single { shared.port } else { 0 },
                coordinators: r
                    .coordinator_keys
                    .iter()
                    .map(|key| find_coordinator_response::Coordinator {
                        key: key.clone(),
                        node_id: 1,
                        host: shared.host.clone(),
                        port: shared.port,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            respond(correlation_id, version, &body)?
        }
        RequestKind::JoinGroup(r) => respond(
            correlation_id,
            version,
            &join_group(&r, &client_id, version),
        )?,
        RequestKind::SyncGroup(r) => {
            let assignment = r
                .assignments
                .iter()
                .find(|a| a.member_id == r.member_id)
                .map(|a| a.assignment.clone())
                .unwrap_or_default();
            let body = SyncGroupResponse {
                protocol_type: r.protocol_type.clone(),
                protocol_name: r.protocol_name.clone(),
                assignment,
                ..Default::default()
            };
            respond(correlation_id, version, &body)?
        }
        RequestKind::Heartbeat(_) => {
            respond(correlation_id, version, &HeartbeatResponse::default())?
        }
        RequestKind::LeaveGroup(r) => {
            let body = LeaveGroupResponse {
                members: r
                    .members
                    .iter()
                    .map(|m| leave_group_response::MemberResponse {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            respond(correlation_id, version, &body)?
        }
        RequestKind::OffsetFetch(r) => respond(correlation_id, version, &offset_fetch(&r))?,
        RequestKind::OffsetCommit(r) => {
            let body = OffsetCommitResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| offset_commit_response::OffsetCommitResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| offset_commit_response::OffsetCommitResponsePartition {
                                partition_index: p.partition_index,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            respond(correlation_id, version, &body)?
        }
        RequestKind::InitProducerId(_) => {
            let body = InitProducerIdResponse {
                producer_id: PRODUCER_ID,
                producer_epoch: 0,
                ..Default::default()
            };
            respond(correlation_id, version, &body)?
        }
        RequestKind::AddPartitionsToTxn(r) => {
            respond(correlation_id, version, &add_partitions_to_txn(&r))?
        }
        RequestKind::EndTxn(r) => {
            let body = if version >= 5 {
                EndTxnResponse {
                    producer_id: r.producer_id,
                    producer_epoch: r.producer_epoch,
                    ..Default::default()
                }
            } else {
                EndTxnResponse::default()
            };
            respond(correlation_id, version, &body)?
        }
        other => return Err(format!("unhandled API {}", other.api_key().name())),
    };
    Ok(Some(response))
}

fn api_versions(error_code: i16, apis: &[ApiKey]) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: apis
            .iter()
            .map(|api| {
                let range = api.valid_versions();
                api_versions_response::ApiVersion {
                    api_key: *api as i16,
                    min_version: range.min,
                    max_version: range.max,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

fn metadata(shared: &Shared, r: &MetadataRequest, version: i16) -> MetadataResponse {
    use metadata_response::*;
    // (name, error); an id we never handed out is UNKNOWN_TOPIC_ID.
    let wanted: Vec<(Option<String>, uuid::Uuid, i16)> = match &r.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => topics
            .iter()
            .map(|t| match &t.name {
                Some(name) => (Some(name.clone()), topic_id(name), 0),
                None => match shared.topic_by_id(t.topic_id) {
                    Some(name) => (Some(name), t.topic_id, 0),
                    None => (None, t.topic_id, UNKNOWN_TOPIC_ID),
                },
            })
            .collect(),
        _ => shared
            .config
            .topics
            .iter()
            .map(|name| (Some(name.clone()), topic_id(name), 0))
            .collect(),
    };
    MetadataResponse {
        brokers: vec![MetadataResponseBroker {
            node_id: 1,
            host: shared.host.clone(),
            port: shared.port,
            rack: None,
            ..Default::default()
        }],
        cluster_id: (version >= 2).then(|| "fixture-cluster".into()),
        controller_id: if version >= 1 { 1 } else { -1 },
        topics: wanted
            .into_iter()
            .map(|(name, id, error_code)| MetadataResponseTopic {
                error_code,
                name,
                topic_id: if version >= 10 { id } else { uuid::Uuid::nil() },
                partitions: if error_code == 0 {
                    (0..shared.config.partitions)
                        .map(|index| MetadataResponsePartition {
                            partition_index: index,
                            leader_id: 1,
                            leader_epoch: if version >= 7 { 0 } else { -1 },
                            replica_nodes: vec![1],
                            isr_nodes: vec![1],
                            ..Default::default()
                        })
                        .collect()
                } else {
                    Vec::new()
                },
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn produce(shared: &Shared, r: &ProduceRequest, version: i16) -> ProduceResponse {
    use produce_response::*;
    ProduceResponse {
        responses: r
            .topic_data
            .iter()
            .map(|t| TopicProduceResponse {
                name: t.name.clone(),
                partition_responses: t
                    .partition_data
                    .iter()
                    .map(|p| {
                        let records = p.records.as_deref().unwrap_or_default();
                        let count = batch::record_count(records).unwrap_or(1);
                        PartitionProduceResponse {
                            index: p.index,
                            base_offset: shared.append(&t.name, p.index, count),
                            log_append_time_ms: -1,
                            log_start_offset: if version >= 5 { 0 } else { -1 },
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn list_offsets(shared: &Shared, r: &ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    use list_offsets_response::*;
    ListOffsetsResponse {
        topics: r
            .topics
            .iter()
            .map(|t| ListOffsetsTopicResponse {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        // -1 latest, -2 earliest; anything else: the start.
                        let offset = if p.timestamp == -1 {
                            shared.end_offset(&t.name, p.partition_index)
                        } else {
                            0
                        };
                        if version == 0 {
                            ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                old_style_offsets: vec![offset],
                                ..Default::default()
                            }
                        } else {
                            ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                timestamp: -1,
                                offset,
                                leader_epoch: if version >= 4 { 0 } else { -1 },
                                ..Default::default()
                            }
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn fetch(shared: &Shared, r: &FetchRequest, version: i16) -> FetchResponse {
    use fetch_response::*;
    let mut any_data = false;
    let responses = r
        .topics
        .iter()
        .map(|t| {
            let name = if t.topic.is_empty() {
                shared.topic_by_id(t.topic_id).unwrap_or_default()
            } else {
                t.topic.clone()
            };
            FetchableTopicResponse {
                topic: t.topic.clone(),
                topic_id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let end = shared.end_offset(&name, p.partition);
                        let stored = &shared.config.fetch_values;
                        let records = match usize::try_from(p.fetch_offset) {
                            Ok(from) if from < stored.len() => {
                                any_data = true;
                                let now = SystemTime::now()
                                    .duration_since(UNIX_EPOCH)
                                    .map_or(0, |d| d.as_millis() as i64);
                                batch::build_batch(from as i64, now, &stored[from..])
                            }
                            _ => Vec::new(),
                        };
                        PartitionData {
                            partition_index: p.partition,
                            high_watermark: end,
                            last_stable_offset: if version >= 4 { end } else { -1 },
                            log_start_offset: if version >= 5 { 0 } else { -1 },
                            records: Some(Bytes::from(records)),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    if !any_data {
        // Be a little like a long poll, so idle consumers do not spin.
        let wait = u64::try_from(r.max_wait_ms).unwrap_or(0).min(200);
        std::thread::sleep(Duration::from_millis(wait));
    }
    FetchResponse {
        responses,
        ..Default::default()
    }
}

fn join_group(r: &JoinGroupRequest, client_id: &str, version: i16) -> JoinGroupResponse {
    use join_group_response::*;
    let member_id = if r.member_id.is_empty() {
        format!("{client_id}-fixture-member")
    } else {
        r.member_id.clone()
    };
    if r.member_id.is_empty() && version >= 4 {
        // KIP-394: a new member first learns its id, then joins again.
        return JoinGroupResponse {
            error_code: MEMBER_ID_REQUIRED,
            generation_id: -1,
            member_id,
            ..Default::default()
        };
    }
    let protocol = r.protocols.first();
    JoinGroupResponse {
        generation_id: 1,
        protocol_type: Some(r.protocol_type.clone()),
        protocol_name: protocol.map(|p| p.name.clone()),
        leader: member_id.clone(),
        member_id: member_id.clone(),
        members: vec![JoinGroupResponseMember {
            member_id,
            group_instance_id: r.group_instance_id.clone(),
            metadata: protocol.map(|p| p.metadata.clone()).unwrap_or_default(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn offset_fetch(r: &OffsetFetchRequest) -> OffsetFetchResponse {
    use offset_fetch_response::*;
    OffsetFetchResponse {
        topics: r
            .topics
            .iter()
            .flatten()
            .map(|t| OffsetFetchResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partition_indexes
                    .iter()
                    .map(|p| OffsetFetchResponsePartition {
                        partition_index: *p,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        metadata: Some(String::new()),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        groups: r
            .groups
            .iter()
            .map(|g| OffsetFetchResponseGroup {
                group_id: g.group_id.clone(),
                topics: g
                    .topics
                    .iter()
                    .flatten()
                    .map(|t| OffsetFetchResponseTopics {
                        name: t.name.clone(),
                        partitions: t
                            .partition_indexes
                            .iter()
                            .map(|p| OffsetFetchResponsePartitions {
                                partition_index: *p,
                                committed_offset: -1,
                                committed_leader_epoch: -1,
                                metadata: Some(String::new()),
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn add_partitions_to_txn(r: &AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    use add_partitions_to_txn_response::*;
    let topics = |topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        topics
            .iter()
            .map(|t| AddPartitionsToTxnTopicResult {
                name: t.name.clone(),
                results_by_partition: t
                    .partitions
                    .iter()
                    .map(|p| AddPartitionsToTxnPartitionResult {
                        partition_index: *p,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    AddPartitionsToTxnResponse {
        results_by_topic_v3_and_below: topics(&r.v3_and_below_topics),
        results_by_transaction: r
            .transactions
            .iter()
            .map(|t| AddPartitionsToTxnResult {
                transactional_id: t.transactional_id.clone(),
                topic_results: topics(&t.topics),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
