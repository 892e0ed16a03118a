//! Broker ingest and fetch throughput over loopback.
//!
//! Starts the `kafka-broker` binary as a child process (so its CPU time can
//! be read from /proc apart from the load generator's), then drives it with
//! raw requests built with `kafka-protocol`: several connections, each
//! producing 1,000 x 100-byte batches to its own partition with several
//! requests in flight, then fetching everything back. Prints MB/s and the
//! broker's CPU seconds per GB for each phase.
//!
//! `cargo bench -p kafka-broker --bench throughput` (env `BENCH_MB` sets the
//! data volume per phase, default 1024; `BENCH_BROKER_PID` plus
//! `BENCH_BOOTSTRAP` drive an already running broker instead, e.g. one
//! started under a profiler).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{FrameDecoder, decode_response_as, encode_request};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, ProduceRequest,
    ProduceResponse,
};
use kafka_protocol::records::BatchBuilder;
use kafka_protocol::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 4;
const IN_FLIGHT: usize = 8;
const RECORDS: usize = 1_000;
const VALUE_LEN: usize = 100;
const TOPIC: &str = "bench";

struct Conn {
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
    correlation: i32,
}

impl Conn {
    async fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            input: BytesMut::with_capacity(1 << 20),
            decoder: FrameDecoder::new(1 << 30),
            correlation: 0,
        }
    }

    async fn send<R: Request>(&mut self, version: i16, request: &R) {
        let mut out = BytesMut::new();
        self.correlation += 1;
        encode_request(&mut out, self.correlation, Some("bench"), version, request)
            .expect("encode");
        self.stream.write_all(&out).await.expect("write");
    }

    async fn receive<R: Response>(&mut self, version: i16) -> R {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.input).expect("frame") {
                return decode_response_as::<R>(frame, version).expect("response").1;
            }
            let n = self.stream.read_buf(&mut self.input).await.expect("read");
            assert!(n > 0, "broker closed the connection");
        }
    }
}

fn batch() -> Bytes {
    let mut builder = BatchBuilder::new(1 << 20);
    let value = [b'x'; VALUE_LEN];
    // Current timestamps, or the broker's 7-day retention drops the data.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for i in 0..RECORDS {
        builder
            .append(now + i as i64, None, Some(&value), &[])
            .expect("append");
    }
    builder.finish().expect("finish")
}

/// The child's user + system CPU seconds so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let clock_ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    (ticks(11) + ticks(12)) / clock_ticks
}

async fn produce(addr: &str, partition: i32, batches: usize, wire: Bytes) -> usize {
    let mut conn = Conn::connect(addr).await;
    let request = ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: TOPIC.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(wire.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut sent = 0;
    let mut acked = 0;
    while acked < batches {
        while sent < batches && sent - acked < IN_FLIGHT {
            conn.send(9, &request).await;
            sent += 1;
        }
        let response: ProduceResponse = conn.receive(9).await;
        let code = response.responses[0].partition_responses[0].error_code;
        assert_eq!(code, 0, "produce error");
        acked += 1;
    }
    batches * wire.len()
}

async fn fetch(addr: &str, partition: i32, until: i64) -> usize {
    let mut conn = Conn::connect(addr).await;
    let mut offset = 0;
    let mut bytes = 0;
    while offset < until {
        let request = FetchRequest {
            replica_id: -1,
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 64 << 20,
            topics: vec![FetchTopic {
                topic: TOPIC.into(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 16 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        conn.send(12, &request).await;
        let response: FetchResponse = conn.receive(12).await;
        let data = &response.responses[0].partitions[0];
        assert_eq!(data.error_code, 0, "fetch error");
        let records = data.records.clone().unwrap_or_default();
        bytes += records.len();
        let mut last = offset;
        // Only the offsets are needed here; checking CRCs would measure the
        // load generator rather than the broker.
        let options = kafka_protocol::records::DecodeOptions {
            verify_crc: false,
            ..Default::default()
        };
        for batch in kafka_protocol::records::Batches::with_options(records, options) {
            last = batch.expect("batch").next_offset();
        }
        offset = last;
    }
    bytes
}

fn report(phase: &str, bytes: usize, elapsed: Duration, cpu: f64) {
    let mb = bytes as f64 / 1e6;
    let gb = bytes as f64 / 1e9;
    println!(
        "{phase:<8} {mb:>8.0} MB in {:>6.2} s = {:>7.0} MB/s; broker CPU {cpu:>5.2} s = {:>5.2} CPU-s/GB",
        elapsed.as_secs_f64(),
        mb / elapsed.as_secs_f64(),
        cpu / gb
    );
}

fn main() {
    // `cargo bench` passes --bench; there are no criterion options to parse.
    let megabytes: usize = std::env::var("BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let external = std::env::var("BENCH_BOOTSTRAP").ok().zip(
        std::env::var("BENCH_BROKER_PID")
            .ok()
            .and_then(|p| p.parse().ok()),
    );
    let mut child = None;
    let (addr, pid) = match external {
        Some(found) => found,
        None => {
            let mut broker = Command::new(env!("CARGO_BIN_EXE_kafka-broker"))
                .args(["--listen", "127.0.0.1:0", "--brokers", "1"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("start kafka-broker");
            let mut line = String::new();
            BufReader::new(broker.stdout.take().expect("stdout"))
                .read_line(&mut line)
                .expect("bootstrap line");
            let pid = broker.id();
            child = Some(broker);
            (line.trim().to_owned(), pid)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut admin = Conn::connect(&addr).await;
        admin
            .send(
                5,
                &CreateTopicsRequest {
                    topics: vec![CreatableTopic {
                        name: TOPIC.into(),
                        num_partitions: CONNECTIONS as i32,
                        replication_factor: 1,
                        ..Default::default()
                    }],
                    timeout_ms: 10_000,
                    ..Default::default()
                },
            )
            .await;
        let created: CreateTopicsResponse = admin.receive(5).await;
        assert_eq!(created.topics[0].error_code, 0, "create topic");

        let wire = batch();
        let per_connection = (megabytes << 20) / wire.len() / CONNECTIONS;
        println!(
            "{CONNECTIONS} connections x {per_connection} batches of {RECORDS} x {VALUE_LEN} B ({} B each), {IN_FLIGHT} in flight",
            wire.len()
        );
        let cpu = cpu_seconds(pid);
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|p| tokio::spawn({
                let (addr, wire) = (addr.clone(), wire.clone());
                async move { produce(&addr, p as i32, per_connection, wire).await }
            }))
            .collect();
        let mut bytes = 0;
        for task in tasks {
            bytes += task.await.expect("producer");
        }
        report("produce", bytes, start.elapsed(), cpu_seconds(pid) - cpu);

        let until = (per_connection * RECORDS) as i64;
        let cpu = cpu_seconds(pid);
        let start = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|p| tokio::spawn({
                let addr = addr.clone();
                async move { fetch(&addr, p as i32, until).await }
            }))
            .collect();
        let mut bytes = 0;
        for task in tasks {
            bytes += task.await.expect("fetcher");
        }
        report("fetch", bytes, start.elapsed(), cpu_seconds(pid) - cpu);
    });
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}
