//! Reads a topic and prints one value per line, like Kafka's
//! `kafka-console-consumer`.
//!
//! ```text
//! cargo run --example console_consumer -- --bootstrap-server HOST:PORT --topic T \
//!     [--group G] [--from-beginning] [--isolation-level read_committed] \
//!     [--max-messages N] [--timeout-ms MS] \
//!     [--property print.key=true]... [--consumer.config FILE] \
//!     [--consumer-property name=value]...
//! ```
//!
//! `--consumer.config` reads a Java properties file (a `client.properties`
//! with `security.protocol`, `sasl.jaas.config`, ...); `--consumer-property`
//! settings given after it win.
//!
//! As in Kafka's tool, `--property` sets formatter options and
//! `--consumer-property` sets consumer configuration by Kafka property name:
//!
//! | `--property` | default | prints |
//! | --- | --- | --- |
//! | `print.timestamp` | `false` | `CreateTime:<ms>` |
//! | `print.partition` | `false` | `Partition:<n>` |
//! | `print.offset` | `false` | `Offset:<n>` |
//! | `print.headers` | `false` | `k:v` joined by `headers.separator` (`,`), or `NO_HEADERS` |
//! | `print.key` | `false` | the key, `null` when there is none |
//! | `print.value` | `true` | the value, `null` when there is none |
//! | `key.separator` | tab | between the columns above |
//! | `line.separator` | newline | after each record |
//!
//! Differences from Kafka's tool:
//! - Without `--group` (or a `group.id` consumer property) this tool assigns
//!   every partition of the topic to itself and joins no group, so it
//!   commits nothing. Kafka's tool joins a generated group
//!   (`console-consumer-<random>`) instead, which leaves that group's
//!   offsets behind on the cluster.
//! - With a group, the offsets of the records printed are committed every
//!   `auto.commit.interval.ms` and on exit (when `enable.auto.commit` is on,
//!   the default), not those of records fetched but cut off by
//!   `--max-messages`.
//! - The timestamp is always labelled `CreateTime`: the consumer does not
//!   report the batch's timestamp type yet.
//!
//! The tool exits after `--max-messages` records, after `--timeout-ms` with
//! no record, or on Ctrl-C; otherwise it waits for records indefinitely, as
//! Kafka's does. The count of records printed goes to stderr at the end.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use kafka_sdk::client::consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetReset,
};
use kafka_sdk::client::network::Network;
use kafka_sdk::client::producer::TopicPartition;

/// The command line, parsed.
#[derive(Debug, Clone, Default)]
pub struct Args {
    bootstrap: String,
    topic: String,
    group: Option<String>,
    from_beginning: bool,
    isolation_level: Option<IsolationLevel>,
    max_messages: Option<u64>,
    timeout: Option<Duration>,
    format: Format,
    consumer_properties: Vec<(String, String)>,
}

/// What each record prints (the `--property` options).
#[derive(Debug, Clone)]
struct Format {
    timestamp: bool,
    partition: bool,
    offset: bool,
    headers: bool,
    key: bool,
    value: bool,
    key_separator: String,
    line_separator: String,
    headers_separator: String,
}

impl Default for Format {
    fn default() -> Self {
        Self {
            timestamp: false,
            partition: false,
            offset: false,
            headers: false,
            key: false,
            value: true,
            key_separator: "\t".into(),
            line_separator: "\n".into(),
            headers_separator: ",".into(),
        }
    }
}

const USAGE: &str = "usage: console_consumer --bootstrap-server HOST:PORT --topic T [--group G] [--from-beginning] [--isolation-level read_uncommitted|read_committed] [--max-messages N] [--timeout-ms MS] [--property name=value]... [--consumer.config FILE] [--consumer-property name=value]...";

/// Parses the arguments after the program name.
pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args::default();
    let mut bootstrap = None;
    let mut topic = None;
    while let Some(flag) = args.next() {
        if flag == "--from-beginning" {
            parsed.from_beginning = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let pair = |v: &str| {
            v.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{flag} {v}: expected name=value"))
        };
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|e| format!("{flag} {v}: not a count ({e})"))
        };
        match flag.as_str() {
            "--bootstrap-server" => bootstrap = Some(value),
            "--topic" => topic = Some(value),
            "--group" => parsed.group = Some(value),
            "--isolation-level" => {
                parsed.isolation_level = Some(match value.as_str() {
                    "read_committed" => IsolationLevel::ReadCommitted,
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    other => {
                        return Err(format!(
                            "--isolation-level {other}: read_committed or read_uncommitted"
                        ));
                    }
                })
            }
            "--max-messages" => parsed.max_messages = Some(number(&value)?),
            "--timeout-ms" => parsed.timeout = Some(Duration::from_millis(number(&value)?)),
            "--property" => {
                let (name, v) = pair(&value)?;
                let f = &mut parsed.format;
                let flag = |v: &str| match v {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(format!("--property {name}={v}: true or false")),
                };
                match name.as_str() {
                    "print.timestamp" => f.timestamp = flag(&v)?,
                    "print.partition" => f.partition = flag(&v)?,
                    "print.offset" => f.offset = flag(&v)?,
                    "print.headers" => f.headers = flag(&v)?,
                    "print.key" => f.key = flag(&v)?,
                    "print.value" => f.value = flag(&v)?,
                    "key.separator" => f.key_separator = v,
                    "line.separator" => f.line_separator = v,
                    "headers.separator" => f.headers_separator = v,
                    other => return Err(format!("unknown --property {other}")),
                }
            }
            "--consumer-property" => parsed.consumer_properties.push(pair(&value)?),
            "--consumer.config" => parsed.consumer_properties.extend(
                kafka_sdk::client::properties_file::load(&value).map_err(|e| e.to_string())?,
            ),
            other => return Err(format!("unknown option {other}")),
        }
    }
    parsed.bootstrap = bootstrap.ok_or("--bootstrap-server is required")?;
    parsed.topic = topic.ok_or("--topic is required")?;
    // Kafka's tool takes a group.id consumer property as --group.
    if let Some((_, id)) = parsed
        .consumer_properties
        .iter()
        .find(|(name, _)| name == "group.id")
    {
        match &parsed.group {
            Some(group) if group != id => {
                return Err(format!(
                    "--group {group} and --consumer-property group.id={id} disagree"
                ));
            }
            _ => parsed.group = Some(id.clone()),
        }
    }
    Ok(parsed)
}

/// Writes one record as Kafka's `DefaultMessageFormatter` does.
fn write_record(out: &mut impl Write, format: &Format, r: &ConsumerRecord) -> std::io::Result<()> {
    let text = |b: Option<&[u8]>| match b {
        Some(b) => String::from_utf8_lossy(b).into_owned(),
        None => "null".to_owned(),
    };
    let mut columns = Vec::new();
    if format.timestamp {
        columns.push(format!("CreateTime:{}", r.timestamp));
    }
    if format.partition {
        columns.push(format!("Partition:{}", r.partition));
    }
    if format.offset {
        columns.push(format!("Offset:{}", r.offset));
    }
    if format.headers {
        let headers: Vec<String> = r
            .headers
            .iter()
            .map(|h| format!("{}:{}", h.key(), text(h.value().map(|v| &v[..]))))
            .collect();
        columns.push(if headers.is_empty() {
            "NO_HEADERS".to_owned()
        } else {
            headers.join(&format.headers_separator)
        });
    }
    if format.key {
        columns.push(text(r.key.as_deref()));
    }
    if format.value {
        columns.push(text(r.value.as_deref()));
    }
    write!(
        out,
        "{}{}",
        columns.join(&format.key_separator),
        format.line_separator
    )
}

/// Consumes and prints until `--max-messages`, `--timeout-ms` or `stop`;
/// returns how many records were printed.
pub async fn run(
    args: &Args,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<u64, String> {
    let mut config = ConsumerConfig::new();
    config
        .bootstrap_servers(&args.bootstrap)
        .map_err(|e| e.to_string())?;
    for (name, value) in &args.consumer_properties {
        config.set(name, value).map_err(|e| e.to_string())?;
    }
    if let Some(group) = &args.group {
        config.group_id(group).map_err(|e| e.to_string())?;
    }
    if let Some(level) = args.isolation_level {
        config.isolation_level(level).map_err(|e| e.to_string())?;
    }
    let explicit_reset = args
        .consumer_properties
        .iter()
        .find(|(name, _)| name == "auto.offset.reset")
        .map(|(_, v)| v.as_str());
    match (args.from_beginning, explicit_reset) {
        (true, Some(reset)) if reset != "earliest" => {
            return Err(format!(
                "--from-beginning contradicts --consumer-property auto.offset.reset={reset}"
            ));
        }
        (true, _) => {
            config
                .auto_offset_reset(OffsetReset::Earliest)
                .map_err(|e| e.to_string())?;
        }
        // Kafka's tool reads only new records unless told otherwise.
        (false, None) => {
            config
                .auto_offset_reset(OffsetReset::Latest)
                .map_err(|e| e.to_string())?;
        }
        (false, Some(_)) => {}
    }
    let mut settings = config.build().map_err(|e| e.to_string())?;
    // The tool commits what it printed itself (on the auto-commit interval
    // and on exit): the consumer's own auto-commit, and its commit on
    // close, would also commit records fetched but cut off by
    // --max-messages, which the next run would then never print.
    let auto_commit = (args.group.is_some() && settings.enable_auto_commit)
        .then_some(settings.auto_commit_interval);
    let commit_on_exit = auto_commit.is_some();
    settings.enable_auto_commit = false;
    let network = Network::new(settings.network.clone()).map_err(|e| e.to_string())?;
    let mut consumer = Consumer::new(settings).map_err(|e| e.to_string())?;
    if args.group.is_some() {
        consumer
            .subscribe(&[args.topic.as_str()])
            .map_err(|e| e.to_string())?;
    } else {
        let metadata = network
            .metadata_for(&args.topic)
            .await
            .map_err(|e| e.to_string())?;
        let count = metadata
            .partition_count(&args.topic)
            .ok_or_else(|| format!("topic {} does not exist", args.topic))?;
        consumer.assign((0..count as i32).map(|partition| TopicPartition {
            topic: args.topic.clone(),
            partition,
        }));
    }
    network.close();
    let result = print_records(args, &mut consumer, out, stop, auto_commit).await;
    let committed = match &result {
        Ok((_, printed)) if commit_on_exit && !printed.is_empty() => consumer
            .commit_offsets(printed)
            .await
            .map_err(|e| format!("commit on exit: {e}")),
        _ => Ok(()),
    };
    let closed = consumer.close().await.map_err(|e| e.to_string());
    let count = result?.0;
    committed?;
    closed?;
    Ok(count)
}

/// The loop of `run`: the count printed and, per partition, the offset
/// after the last record printed.
async fn print_records(
    args: &Args,
    consumer: &mut Consumer,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
    auto_commit: Option<Duration>,
) -> Result<(u64, std::collections::BTreeMap<TopicPartition, i64>), String> {
    let mut stop = std::pin::pin!(stop);
    let mut last_commit = tokio::time::Instant::now();
    let mut printed = std::collections::BTreeMap::new();
    let mut count = 0u64;
    let mut last_record = tokio::time::Instant::now();
    while args.max_messages.is_none_or(|max| count < max) {
        let polled = tokio::select! {
            () = &mut stop => break,
            polled = consumer.poll(Duration::from_millis(200)) => polled,
        };
        let records = polled.map_err(|e| e.to_string())?;
        if records.is_empty() {
            if args.timeout.is_some_and(|t| last_record.elapsed() >= t) {
                break;
            }
            continue;
        }
        last_record = tokio::time::Instant::now();
        for r in &records {
            if args.max_messages.is_some_and(|max| count >= max) {
                break;
            }
            write_record(out, &args.format, r).map_err(|e| format!("writing: {e}"))?;
            printed.insert(
                TopicPartition {
                    topic: r.topic.clone(),
                    partition: r.partition,
                },
                r.offset + 1,
            );
            count += 1;
        }
        out.flush().map_err(|e| format!("writing: {e}"))?;
        if auto_commit.is_some_and(|interval| last_commit.elapsed() >= interval) {
            last_commit = tokio::time::Instant::now();
            if let Err(e) = consumer.commit_offsets(&printed).await {
                // As the consumer's auto-commit: noted, tried again later.
                eprintln!("auto-commit failed: {e}");
            }
        }
    }
    Ok((count, printed))
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
    let ctrl_c = async {
        // Without a signal handler there is no Ctrl-C to wait for.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(run(&args, &mut stdout, ctrl_c)) {
        Ok(count) => {
            eprintln!("Processed a total of {count} messages");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("console_consumer: {e}");
            ExitCode::FAILURE
        }
    }
}
