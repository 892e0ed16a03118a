//! Producer throughput and latency, the way `kafka-producer-perf-test` reports
//! them.
//!
//! ```text
//! cargo run --release --example perf -- produce --topic perf --num-records 1000000 \
//!     --record-size 100 [--bootstrap-server HOST:PORT] [--partitions 6] [--property k=v]...
//! ```
//!
//! Without `--bootstrap-server` it starts the bundled broker in-process.
//! `--client librdkafka` (with `--features rdkafka`) runs the same load
//! through librdkafka instead, for a side-by-side comparison; the client's
//! CPU time and peak RSS are printed too (run the broker as a separate
//! process so they are the client's alone).
//! Properties: `acks`, `linger.ms`, `batch.size`, `buffer.memory`,
//! `compression.type`, `enable.idempotence`,
//! `max.in.flight.requests.per.connection`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use kafka_sdk::client::producer::{Producer, ProducerRecord, ProducerSettings};
use kafka_sdk::protocol::records::Compression;

struct Args {
    bootstrap: Option<String>,
    topic: String,
    records: u64,
    record_size: usize,
    partitions: i32,
    properties: Vec<(String, String)>,
    client: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    if args.next().as_deref() != Some("produce") {
        return Err("the first argument must be `produce`".into());
    }
    let mut parsed = Args {
        bootstrap: None,
        topic: "perf".into(),
        records: 1_000_000,
        record_size: 100,
        partitions: 6,
        properties: Vec::new(),
        client: "ours".into(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--bootstrap-server" => parsed.bootstrap = Some(value),
            "--topic" => parsed.topic = value,
            "--num-records" => parsed.records = number(&value)?,
            "--record-size" => parsed.record_size = number(&value)? as usize,
            "--partitions" => parsed.partitions = number(&value)? as i32,
            "--client" => parsed.client = value,
            "--property" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--property {value}: expected key=value"))?;
                parsed.properties.push((k.to_owned(), v.to_owned()));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(parsed)
}

fn apply(settings: &mut ProducerSettings, name: &str, value: &str) -> Result<(), String> {
    let bad = |e: &dyn std::fmt::Display| format!("{name}={value}: {e}");
    let millis = |v: &str| {
        v.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| bad(&e))
    };
    match name {
        "acks" => {
            settings.acks = match value {
                "all" | "-1" => -1,
                "0" => 0,
                "1" => 1,
                _ => return Err(bad(&"expected all, -1, 0 or 1")),
            }
        }
        "linger.ms" => settings.linger = millis(value)?,
        "batch.size" => settings.batch_size = value.parse().map_err(|e| bad(&e))?,
        "buffer.memory" => settings.buffer_memory = value.parse().map_err(|e| bad(&e))?,
        "enable.idempotence" => settings.idempotence = value.parse().map_err(|e| bad(&e))?,
        "max.in.flight.requests.per.connection" => {
            settings.max_in_flight = value.parse().map_err(|e| bad(&e))?
        }
        "compression.type" => {
            settings.compression = match value {
                "none" => Compression::None,
                "gzip" => Compression::Gzip,
                "snappy" => Compression::Snappy,
                "lz4" => Compression::Lz4,
                "zstd" => Compression::Zstd,
                _ => return Err(bad(&"unknown codec")),
            }
        }
        _ => return Err(format!("property {name} is not supported by this tool")),
    }
    Ok(())
}

/// This process's user + system CPU seconds and peak RSS in MB, from /proc.
fn resources() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let peak_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, peak_kb / 1024.0)
}

fn report(
    client: &str,
    latencies: &mut [u32],
    errors: u64,
    record_size: usize,
    elapsed: f64,
    cpu: f64,
) {
    latencies.sort_unstable();
    let records = latencies.len() as f64;
    let mb = records * record_size as f64 / 1e6;
    let (_, peak_mb) = resources();
    println!(
        "{client}: {} records sent, {:.0} records/sec ({:.2} MB/sec), {:.1} ms p50 latency, {:.1} ms p99, {:.1} ms max, {} errors, {:.2} µs CPU/record, peak RSS {:.0} MB",
        latencies.len(),
        records / elapsed,
        mb / elapsed,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0),
        errors,
        cpu * 1e6 / records.max(1.0),
        peak_mb
    );
}

#[cfg(feature = "rdkafka")]
async fn run_librdkafka(args: &Args, bootstrap: &str) -> Result<(), String> {
    use rdkafka::config::ClientConfig;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5");
    for (name, value) in &args.properties {
        config.set(name, value);
    }
    let producer: FutureProducer = config.create().map_err(|e| e.to_string())?;
    let value = vec![b'x'; args.record_size];
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(Instant, rdkafka::producer::DeliveryFuture)>(200_000);
    let collector = tokio::spawn(async move {
        let mut latencies: Vec<u32> = Vec::new();
        let mut errors = 0u64;
        while let Some((sent, delivery)) = rx.recv().await {
            match delivery.await {
                Ok(Ok(_)) => {
                    latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
                }
                _ => errors += 1,
            }
        }
        (latencies, errors)
    });
    let (cpu_before, _) = resources();
    let started = Instant::now();
    // Keyless records: librdkafka's default (sticky) partitioner spreads them.
    for _ in 0..args.records {
        let mut record = FutureRecord::<(), [u8]>::to(&args.topic).payload(&value);
        let delivery = loop {
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                    tokio::task::yield_now().await;
                }
                Err((e, _)) => return Err(e.to_string()),
            }
        };
        if tx.send((Instant::now(), delivery)).await.is_err() {
            return Err("the latency collector stopped".into());
        }
    }
    drop(tx);
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| e.to_string())?;
    let (mut latencies, errors) = collector.await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_after, _) = resources();
    report(
        "librdkafka",
        &mut latencies,
        errors,
        args.record_size,
        elapsed,
        cpu_after - cpu_before,
    );
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

async fn run(args: Args) -> Result<(), String> {
    let mut embedded = None;
    let bootstrap = match &args.bootstrap {
        Some(b) => b.clone(),
        None => {
            let cluster = kafka_broker::Cluster::start(kafka_broker::BrokerConfig::default())
                .await
                .map_err(|e| e.to_string())?;
            cluster
                .create_topic(&args.topic, args.partitions)
                .map_err(|e| e.to_string())?;
            let bootstrap = cluster.bootstrap_servers();
            embedded = Some(cluster);
            bootstrap
        }
    };
    if args.client == "librdkafka" {
        #[cfg(feature = "rdkafka")]
        return run_librdkafka(&args, &bootstrap).await;
        #[cfg(not(feature = "rdkafka"))]
        return Err("build with --features rdkafka for --client librdkafka".into());
    }
    if args.client != "ours" {
        return Err(format!(
            "--client {}: expected ours or librdkafka",
            args.client
        ));
    }
    let mut settings = ProducerSettings::new(&bootstrap);
    for (name, value) in &args.properties {
        apply(&mut settings, name, value)?;
    }
    let producer = Producer::new(settings.clone()).map_err(|e| e.to_string())?;
    let value = vec![b'x'; args.record_size];
    let value = bytes::Bytes::from(value);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(Instant, _)>(200_000);
    let collector = tokio::spawn(async move {
        let mut latencies: Vec<u32> = Vec::new();
        let mut errors = 0u64;
        while let Some((sent, delivery)) = rx.recv().await {
            match delivery.await {
                Ok(_) => {
                    latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
                }
                Err(_) => errors += 1,
            }
        }
        (latencies, errors)
    });
    let (cpu_before, _) = resources();
    let started = Instant::now();
    // Keyless records: the default (sticky) partitioner spreads them.
    for _ in 0..args.records {
        let record = ProducerRecord::new(args.topic.clone()).value(value.clone());
        let delivery = producer.send(record).await.map_err(|e| e.to_string())?;
        if tx.send((Instant::now(), delivery)).await.is_err() {
            return Err("the latency collector stopped".into());
        }
    }
    drop(tx);
    producer.flush().await.map_err(|e| e.to_string())?;
    let (mut latencies, errors) = collector.await.map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_secs_f64();
    let (cpu_after, _) = resources();
    report(
        "ours",
        &mut latencies,
        errors,
        args.record_size,
        elapsed,
        cpu_after - cpu_before,
    );
    let stats = producer.stats();
    println!(
        "batches {}, {:.0} records/batch, retries {}, requests {}",
        stats.batches_sent,
        stats.average_batch_records(),
        stats.retries,
        stats.requests_sent
    );
    producer
        .close(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    drop(embedded);
    Ok(())
}

fn main() -> ExitCode {
    // RUST_LOG=kafka_client=debug shows retries and their causes.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "{e}\nusage: perf produce --topic T --num-records N --record-size S [--bootstrap-server HOST:PORT] [--partitions P] [--property k=v]..."
            );
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf: {e}");
            ExitCode::FAILURE
        }
    }
}
