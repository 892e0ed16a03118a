//! Reads lines from stdin and produces them, like Kafka's
//! `kafka-console-producer`.
//!
//! ```text
//! cargo run --example console_producer -- --bootstrap-server HOST:PORT --topic T \
//!     [--property parse.key=true] [--key-separator SEP] [--producer.config FILE] \
//!     [--producer-property name=value]...
//! ```
//!
//! `--producer.config` reads a Java properties file (a `client.properties`
//! with `security.protocol`, `sasl.jaas.config`, ...); `--producer-property`
//! settings given after it win.
//!
//! With `parse.key=true` each line is `key<SEP>value` (SEP defaults to a
//! tab). Every record is acknowledged before the tool exits; failures are
//! printed and make the exit code non-zero.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::Duration;

use kafka_sdk::client::producer::{Producer, ProducerConfig, ProducerRecord};

pub struct Args {
    bootstrap: String,
    topic: String,
    parse_key: bool,
    separator: String,
    producer_properties: Vec<(String, String)>,
}

const USAGE: &str = "usage: console_producer --bootstrap-server HOST:PORT --topic T [--property parse.key=true] [--key-separator SEP] [--producer.config FILE] [--producer-property name=value]...";

pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut bootstrap = None;
    let mut topic = None;
    let mut parsed = Args {
        bootstrap: String::new(),
        topic: String::new(),
        parse_key: false,
        separator: "\t".into(),
        producer_properties: Vec::new(),
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let pair = |v: &str| {
            v.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{flag} {v}: expected name=value"))
        };
        match flag.as_str() {
            "--bootstrap-server" => bootstrap = Some(value),
            "--topic" => topic = Some(value),
            "--key-separator" => parsed.separator = value,
            "--property" => match pair(&value)? {
                (k, v) if k == "parse.key" => parsed.parse_key = v == "true",
                (k, v) if k == "key.separator" => parsed.separator = v,
                (k, _) => return Err(format!("unknown --property {k}")),
            },
            "--producer-property" => parsed.producer_properties.push(pair(&value)?),
            "--producer.config" => parsed.producer_properties.extend(
                kafka_sdk::client::properties_file::load(&value).map_err(|e| e.to_string())?,
            ),
            other => return Err(format!("unknown option {other}")),
        }
    }
    parsed.bootstrap = bootstrap.ok_or("--bootstrap-server is required")?;
    parsed.topic = topic.ok_or("--topic is required")?;
    Ok(parsed)
}

/// Produces every line `input` gives; the number of records that failed.
pub async fn run(args: Args, input: impl BufRead) -> Result<u64, String> {
    let mut config = ProducerConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap)
        .map_err(|e| e.to_string())?;
    for (name, value) in &args.producer_properties {
        config.set(name, value).map_err(|e| e.to_string())?;
    }
    let producer =
        Producer::new(config.build().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let mut deliveries = Vec::new();
    for line in input.lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let mut record = ProducerRecord::new(args.topic.clone());
        record = match line.split_once(args.separator.as_str()) {
            Some((key, value)) if args.parse_key => {
                record.key(key.to_owned()).value(value.to_owned())
            }
            None if args.parse_key => return Err(format!("no key separator in line: {line}")),
            _ => record.value(line),
        };
        deliveries.push(producer.send(record).await.map_err(|e| e.to_string())?);
    }
    producer.flush().await.map_err(|e| e.to_string())?;
    let mut failed = 0;
    for delivery in deliveries {
        if let Err(e) = delivery.await {
            eprintln!("error: {e}");
            failed += 1;
        }
    }
    producer
        .close(Duration::from_secs(30))
        .await
        .map_err(|e| e.to_string())?;
    Ok(failed)
}

fn main() -> ExitCode {
    // Logs go to stderr, filtered by RUST_LOG (warnings by default), so a
    // consumer that cannot read says why.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
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
    match runtime.block_on(run(args, std::io::stdin().lock())) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{failed} records failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("console_producer: {e}");
            ExitCode::FAILURE
        }
    }
}
