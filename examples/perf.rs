//! Side-by-side client benchmark: this SDK ("ours") and librdkafka against
//! the same broker in one invocation, reported the way
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test` report (the
//! Performance sections of issues #4 and #5), and the transactional
//! consume-transform-produce loop (issue #6).
//!
//! ```text
//! # ours only (the default without the feature)
//! cargo run --release --example perf -- produce --num-records 200000 --record-size 100
//! cargo run --release --example perf -- consume --num-records 200000 --record-size 100
//!
//! # ours, then librdkafka, then a markdown table of both (the default with the feature)
//! cargo run --release --example perf --features rdkafka -- produce \
//!     --num-records 5000000 --record-size 100 [--property compression.type=lz4]
//! cargo run --release --example perf --features rdkafka -- consume \
//!     --num-records 5000000 --record-size 100 [--producer-property compression.type=lz4]
//! cargo run --release --example perf --features rdkafka -- transactions \
//!     --num-records 1000000 --record-size 100 --transaction-size 100,1000,10000
//! ```
//!
//! Options (every subcommand):
//! - `--num-records N` (required) and `--record-size S` (default 100): each
//!   record is one value of S bytes, no key. For `consume` the topic is first
//!   filled with N such records by our producer (not timed).
//! - `--bootstrap-server HOST:PORT`: an existing cluster, whose topics must
//!   exist or be auto-created. Without it the tool starts the bundled broker
//!   as a child process (this same binary, hidden `broker` subcommand), so
//!   that the CPU time and RSS measured in this process are the client's
//!   alone; the broker's own CPU seconds per run are reported beside them.
//! - `--topic T` (default `perf`). With `--client both` each client has its
//!   own topic, `T-ours` and `T-librdkafka`, so neither reads the other's data.
//! - `--partitions P` (default 6): partitions of the bundled broker's topics.
//! - `--property k=v`, repeatable: Kafka property names given to both
//!   clients (for `transactions`, to their producers), to ours through `ProducerConfig::set` / `ConsumerConfig::set`
//!   (so every property and check applies) and to librdkafka through
//!   `ClientConfig::set`. Produce starts from `acks=all`,
//!   `enable.idempotence=true`, `linger.ms=5` for both (so `acks=1` also
//!   needs `enable.idempotence=false`, in both clients); consume from
//!   `auto.offset.reset=earliest`, `enable.auto.commit=false`.
//! - `--producer-property k=v` (consume only): properties of the fill
//!   producer, e.g. `compression.type=lz4` to consume compressed batches.
//! - `--librdkafka-property k=v`: for librdkafka alone, for its own tuning
//!   names that our client refuses (`queued.min.messages`,
//!   `fetch.queue.backoff.ms`, `batch.num.messages`, ...). For
//!   `transactions` they, and `--property`, go to both its producer and
//!   its consumer (librdkafka only warns about the other's properties).
//! - `--client ours|librdkafka|both`: `both` (the default when built with
//!   `--features rdkafka`) runs ours first, then librdkafka.
//! - `--timeout-secs SECS`: the most one run may take (default 60 s plus
//!   1 s per 20,000 records); a run that has not finished by then fails.
//!
//! `perf transactions` runs the exactly-once loop: a consumer
//! (`isolation.level=read_committed`, `enable.auto.commit=false`, for ours
//! `max.poll.records` = the transaction size) subscribed to an input topic,
//! and a transactional producer that copies each record's value to the same
//! partition of an output topic; every `--transaction-size S` records
//! (default 100, 1,000 and 10,000; a list or repeated, one run each) it
//! sends the consumer's offsets with `send_offsets_to_transaction` and
//! calls `commit_transaction`, until all N records are committed. One
//! worker per client. Each client has its own input topic (`T-ours-in`,
//! `T-librdkafka-in`), filled with N records first (untimed) and read from
//! the start by a new group per size; output topic, `group.id` and
//! `transactional.id` are `T-CLIENT-S-out` / `T-CLIENT-S`. A run is timed
//! from its first record (joining the group and `init_transactions` are
//! start-up, printed beside it) and reports, instead of a delivery latency,
//! the time `commit_transaction` takes (the flush of the transaction's
//! records included), with the share of the run spent in it and in
//! `send_offsets_to_transaction`. The runs alternate ours, librdkafka per
//! size, and one markdown table has a row per size and client.
//!
//! Reported per client: records/s and MB/s (MB = 2^20 bytes, as Kafka's
//! tools count), latency p50/p99/max from `send` to the delivery
//! acknowledgement (produce), client CPU µs per record, and peak RSS.
//! Consumption reads all partitions by `assign` (no group) from the start
//! until N records have been counted.
//!
//! Each producer first sends one record and waits for its acknowledgement,
//! untimed: connecting, metadata and InitProducerId (which librdkafka
//! schedules on a timer, some 500 ms) are start-up, and would otherwise be
//! a large and uneven part of a short run (so a produce run's topic holds
//! N + 1 records; the fill before a consume run writes exactly N). Consume
//! runs include start-up; the time to the first record is printed beside
//! them.

use std::process::ExitCode;

fn main() -> ExitCode {
    // RUST_LOG=kafka_client=debug shows the client's retries and their causes.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(cli::Usage::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(cli::Usage::Error(e)) => {
            eprintln!("perf: {e}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let result = match command {
        cli::Command::Bench(args) => bench::run(&args),
        cli::Command::Broker(args) => broker::serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("perf: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Command-line parsing: every bad flag is an error that names it.
mod cli {
    use std::fmt::Display;
    use std::str::FromStr;
    use std::time::Duration;

    pub const USAGE: &str = "\
usage: perf produce --num-records N [--record-size S] [--topic T] [--partitions P]
                    [--bootstrap-server HOST:PORT] [--property k=v]...
                    [--librdkafka-property k=v]... [--client ours|librdkafka|both]
                    [--timeout-secs SECS]
       perf consume --num-records N [--record-size S] [--topic T] [--partitions P]
                    [--bootstrap-server HOST:PORT] [--property k=v]...
                    [--producer-property k=v]... [--librdkafka-property k=v]...
                    [--client ours|librdkafka|both] [--timeout-secs SECS]
       perf transactions --num-records N [--transaction-size S[,S...]]... [--record-size B]
                    [--topic T] [--partitions P] [--bootstrap-server HOST:PORT]
                    [--property k=v]... [--librdkafka-property k=v]...
                    [--client ours|librdkafka|both] [--timeout-secs SECS]";

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Workload {
        Produce,
        Consume,
        /// The consume-transform-produce loop in transactions (issue #6).
        Transactions,
    }

    impl Workload {
        pub fn name(self) -> &'static str {
            match self {
                Workload::Produce => "produce",
                Workload::Consume => "consume",
                Workload::Transactions => "transactions",
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Client {
        Ours,
        Librdkafka,
    }

    impl Client {
        pub fn name(self) -> &'static str {
            match self {
                Client::Ours => "ours",
                Client::Librdkafka => "librdkafka",
            }
        }
    }

    /// `perf produce` / `perf consume`.
    #[derive(Debug)]
    pub struct BenchArgs {
        pub workload: Workload,
        pub bootstrap: Option<String>,
        pub topic: String,
        pub records: u64,
        pub record_size: usize,
        pub partitions: i32,
        pub properties: Vec<(String, String)>,
        pub producer_properties: Vec<(String, String)>,
        /// For librdkafka only: its own tuning names (`queued.min.messages`,
        /// `fetch.queue.backoff.ms`, ...), which our client refuses.
        pub librdkafka_properties: Vec<(String, String)>,
        pub clients: Vec<Client>,
        /// Transactions only: records per transaction, one run per size.
        pub transaction_sizes: Vec<u64>,
        pub timeout: Duration,
    }

    /// The hidden `perf broker` the benchmark starts as its child.
    #[derive(Debug)]
    pub struct BrokerArgs {
        pub partitions: i32,
        pub topics: Vec<String>,
    }

    #[derive(Debug)]
    pub enum Command {
        Bench(BenchArgs),
        Broker(BrokerArgs),
    }

    #[derive(Debug)]
    pub enum Usage {
        Help,
        Error(String),
    }

    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, Usage> {
        let args: Vec<String> = args.into_iter().collect();
        if args.iter().any(|a| a == "--help" || a == "-h") {
            return Err(Usage::Help);
        }
        let Some((subcommand, rest)) = args.split_first() else {
            return Err(Usage::Error(
                "missing subcommand: produce, consume or transactions".into(),
            ));
        };
        let parsed = flags(rest).and_then(|flags| match subcommand.as_str() {
            "produce" => bench(Workload::Produce, flags).map(Command::Bench),
            "consume" => bench(Workload::Consume, flags).map(Command::Bench),
            "transactions" => bench(Workload::Transactions, flags).map(Command::Bench),
            "broker" => broker(flags).map(Command::Broker),
            other => Err(format!(
                "unknown subcommand `{other}`: expected produce, consume or transactions"
            )),
        });
        parsed.map_err(Usage::Error)
    }

    /// `--name value` or `--name=value` pairs; every flag takes a value.
    fn flags(args: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`"));
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("--{flag} needs a value"))?;
                    (flag.to_owned(), value.clone())
                }
            };
            out.push((name, value));
        }
        Ok(out)
    }

    fn bench(workload: Workload, flags: Vec<(String, String)>) -> Result<BenchArgs, String> {
        let mut args = BenchArgs {
            workload,
            bootstrap: None,
            topic: "perf".into(),
            records: 0,
            record_size: 100,
            partitions: 6,
            properties: Vec::new(),
            producer_properties: Vec::new(),
            librdkafka_properties: Vec::new(),
            clients: default_clients(),
            transaction_sizes: Vec::new(),
            timeout: Duration::ZERO,
        };
        let mut records = None;
        let mut timeout = None;
        for (name, value) in flags {
            match name.as_str() {
                "bootstrap-server" if !value.trim().is_empty() => {
                    args.bootstrap = Some(value.trim().to_owned())
                }
                "bootstrap-server" => return Err("--bootstrap-server is empty".into()),
                "topic" => args.topic = topic(&value)?,
                "num-records" => records = Some(at_least_one(&name, &value)?),
                "record-size" => args.record_size = at_least_one(&name, &value)?,
                "partitions" => args.partitions = at_least_one(&name, &value)?,
                "property" => args.properties.push(property(&name, &value)?),
                "producer-property" if workload == Workload::Consume => {
                    args.producer_properties.push(property(&name, &value)?)
                }
                "librdkafka-property" => args.librdkafka_properties.push(property(&name, &value)?),
                "transaction-size" if workload == Workload::Transactions => {
                    for size in value.split(',') {
                        args.transaction_sizes
                            .push(at_least_one(&name, size.trim())?);
                    }
                }
                "client" => args.clients = clients(&value)?,
                "timeout-secs" => timeout = Some(Duration::from_secs(at_least_one(&name, &value)?)),
                _ => {
                    return Err(format!("unknown option --{name} for {}", workload.name()));
                }
            }
        }
        args.records = records.ok_or("--num-records N is required")?;
        if workload == Workload::Transactions && args.transaction_sizes.is_empty() {
            args.transaction_sizes = vec![100, 1_000, 10_000];
        }
        // Generous: even a slow client moves 20,000 records a second, and
        // 2,000 a second in transactions of 100.
        let per_second = match workload {
            Workload::Transactions => 2_000,
            _ => 20_000,
        };
        args.timeout =
            timeout.unwrap_or_else(|| Duration::from_secs(60 + args.records / per_second));
        Ok(args)
    }

    fn broker(flags: Vec<(String, String)>) -> Result<BrokerArgs, String> {
        let mut args = BrokerArgs {
            partitions: 6,
            topics: Vec::new(),
        };
        for (name, value) in flags {
            match name.as_str() {
                "partitions" => args.partitions = at_least_one(&name, &value)?,
                "topic" => args.topics.push(topic(&value)?),
                _ => return Err(format!("unknown option --{name} for broker")),
            }
        }
        Ok(args)
    }

    fn default_clients() -> Vec<Client> {
        if cfg!(feature = "rdkafka") {
            vec![Client::Ours, Client::Librdkafka]
        } else {
            vec![Client::Ours]
        }
    }

    fn clients(value: &str) -> Result<Vec<Client>, String> {
        let clients = match value {
            "ours" => vec![Client::Ours],
            "librdkafka" => vec![Client::Librdkafka],
            "both" => vec![Client::Ours, Client::Librdkafka],
            _ => {
                return Err(format!(
                    "--client {value}: expected ours, librdkafka or both"
                ));
            }
        };
        if clients.contains(&Client::Librdkafka) && !cfg!(feature = "rdkafka") {
            return Err(format!(
                "--client {value} needs librdkafka: build with `--features rdkafka`"
            ));
        }
        Ok(clients)
    }

    fn at_least_one<T>(name: &str, value: &str) -> Result<T, String>
    where
        T: FromStr + PartialOrd + From<u8>,
        T::Err: Display,
    {
        let n: T = value
            .parse()
            .map_err(|e| format!("--{name} {value}: {e}"))?;
        if n < T::from(1) {
            return Err(format!("--{name} {value}: must be at least 1"));
        }
        Ok(n)
    }

    /// Kafka's rule for topic names, checked here so that a bad one fails
    /// before any broker starts (and the `-librdkafka` suffix still fits).
    fn topic(value: &str) -> Result<String, String> {
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if value.is_empty() || value.len() > 200 || !value.chars().all(legal) {
            return Err(format!(
                "--topic {value}: expected 1 to 200 of [a-zA-Z0-9._-]"
            ));
        }
        Ok(value.to_owned())
    }

    fn property(flag: &str, value: &str) -> Result<(String, String), String> {
        let (name, setting) = value
            .split_once('=')
            .ok_or_else(|| format!("--{flag} {value}: expected key=value"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("--{flag} {value}: the property name is empty"));
        }
        if name == "bootstrap.servers" {
            return Err(format!(
                "--{flag} {value}: use --bootstrap-server for the cluster"
            ));
        }
        Ok((name.to_owned(), setting.to_owned()))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn args(line: &str) -> Result<Command, Usage> {
            parse(line.split_whitespace().map(str::to_owned))
        }

        fn error(line: &str) -> String {
            match args(line) {
                Err(Usage::Error(e)) => e,
                other => panic!("{line}: expected an error, got {other:?}"),
            }
        }

        #[test]
        fn flags_take_both_spellings() {
            let Ok(Command::Bench(b)) = args(
                "produce --num-records=10 --record-size 7 --property acks=1 --property=linger.ms=0",
            ) else {
                panic!("not a bench command");
            };
            assert_eq!((b.records, b.record_size, b.partitions), (10, 7, 6));
            let properties: Vec<(&str, &str)> = b
                .properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(properties, [("acks", "1"), ("linger.ms", "0")]);
        }

        #[test]
        fn bad_flags_are_named() {
            assert!(error("produce").contains("--num-records"));
            assert!(error("produce --num-records ten").contains("--num-records ten"));
            assert!(error("produce --num-records 0").contains("at least 1"));
            assert!(error("produce --num-records 5 --partitions").contains("needs a value"));
            assert!(error("produce --num-records 5 --property acks").contains("key=value"));
            assert!(error("produce --num-records 5 --client java").contains("--client java"));
            assert!(error("produce --num-records 5 --producer-property a=b").contains("unknown"));
            assert!(error("produce --num-records 5 --topic a/b").contains("--topic"));
            assert!(error("fetch").contains("fetch"));
            assert!(error("produce --num-records 5 --transaction-size 9").contains("unknown"));
            assert!(
                error("transactions --num-records 5 --transaction-size 1,0").contains("at least")
            );
        }

        #[test]
        fn transaction_sizes_are_a_list_or_repeated() {
            let sizes = |line: &str| match args(line) {
                Ok(Command::Bench(b)) => b.transaction_sizes,
                other => panic!("{line}: {other:?}"),
            };
            assert_eq!(sizes("transactions --num-records 5"), [100, 1_000, 10_000]);
            assert_eq!(
                sizes(
                    "transactions --num-records 5 --transaction-size 10,20 --transaction-size=30"
                ),
                [10, 20, 30]
            );
        }
    }
}

/// CPU time, RSS and latency measurement.
mod measure {
    use std::time::{Duration, Instant};

    /// /proc reports CPU times in USER_HZ ticks, 100 per second on every
    /// Linux ABI (what `sysconf(_SC_CLK_TCK)` would say, without libc). So
    /// CPU figures have 10 ms resolution: fine for runs of seconds.
    const TICKS_PER_SECOND: f64 = 100.0;

    /// User + system CPU seconds of a process (all its threads, including
    /// ones that already exited) from `/proc/PID/stat`; `None` off Linux.
    pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_owned(),
        };
        stat_cpu_seconds(&std::fs::read_to_string(path).ok()?)
    }

    fn stat_cpu_seconds(stat: &str) -> Option<f64> {
        // Field 2, the command name, may hold spaces and parentheses: count
        // from the last ')'. utime and stime are fields 14 and 15.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
        let utime: f64 = fields.next()?.parse().ok()?;
        let stime: f64 = fields.next()?.parse().ok()?;
        Some((utime + stime) / TICKS_PER_SECOND)
    }

    /// The moment a timed run starts or ends.
    #[derive(Debug, Clone, Copy)]
    pub struct Sample {
        pub at: Instant,
        pub cpu: Option<f64>,
        pub broker_cpu: Option<f64>,
    }

    /// Takes samples of this process and, when it is ours, the broker's.
    #[derive(Debug, Clone, Copy)]
    pub struct Probe {
        pub broker_pid: Option<u32>,
    }

    impl Probe {
        pub fn sample(&self) -> Sample {
            Sample {
                at: Instant::now(),
                cpu: cpu_seconds(None),
                broker_cpu: self.broker_pid.and_then(|pid| cpu_seconds(Some(pid))),
            }
        }
    }

    /// Peak memory of one client run in this process.
    #[derive(Debug, Clone)]
    pub struct Memory {
        /// Why the high-water mark could not be reset, if it could not:
        /// then `peak_mb` is the whole process's peak so far.
        pub reset_error: Option<String>,
        /// VmRSS when the run started (what earlier runs left allocated).
        pub start_mb: Option<f64>,
        /// VmHWM after the run.
        pub peak_mb: Option<f64>,
    }

    /// Resets VmHWM to the current RSS so that the next reading is this
    /// run's peak, not an earlier run's (Linux 4.0+: `clear_refs` value 5).
    pub fn start_memory() -> Memory {
        release_free_heap();
        let reset_error = std::fs::write("/proc/self/clear_refs", "5")
            .err()
            .map(|e| format!("/proc/self/clear_refs: {e}"));
        Memory {
            reset_error,
            start_mb: status_mb("VmRSS:"),
            peak_mb: None,
        }
    }

    pub fn finish_memory(memory: &mut Memory) {
        memory.peak_mb = status_mb("VmHWM:");
    }

    /// Hands the heap an earlier run freed back to the OS (glibc keeps it
    /// otherwise), so that the next run starts from the RSS really in use
    /// and its peak is not the earlier run's leftovers plus its own.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn release_free_heap() {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only returns free pages of glibc's own heap.
        unsafe {
            malloc_trim(0);
        }
    }

    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    fn release_free_heap() {}

    /// A `/proc/self/status` field given in kB, as MB (2^20 bytes).
    fn status_mb(field: &str) -> Option<f64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        Some(kb / 1024.0)
    }

    /// Sub-buckets per power of two: 2^9 = 512, so a bucket is at most
    /// 1/512 (0.2 %) of its value wide.
    const SUB_BITS: u32 = 9;
    const EXACT: u64 = 1 << (SUB_BITS + 1);
    const BUCKETS: usize = ((64 - SUB_BITS as usize) << SUB_BITS) + EXACT as usize;

    /// Latencies in microseconds, log-linear: exact below 1024 µs, within
    /// 0.2 % above. Its memory is fixed (about 230 KB) where a `Vec` of
    /// 5,000,000 samples would add 20 MB to the RSS being measured.
    #[derive(Debug, Clone)]
    pub struct Histogram {
        counts: Vec<u64>,
        total: u64,
        max: u64,
    }

    impl Default for Histogram {
        fn default() -> Self {
            Self {
                counts: vec![0; BUCKETS],
                total: 0,
                max: 0,
            }
        }
    }

    fn bucket(micros: u64) -> usize {
        if micros < EXACT {
            return micros as usize;
        }
        let shift = 63 - micros.leading_zeros() - SUB_BITS;
        // (micros >> shift) is in [512, 1024): it carries its own offset.
        ((shift as usize) << SUB_BITS) + (micros >> shift) as usize
    }

    /// The middle of a bucket's range.
    fn value(bucket: usize) -> u64 {
        let bucket = bucket as u64;
        if bucket < EXACT {
            return bucket;
        }
        let shift = (bucket >> SUB_BITS) - 1;
        let low = ((bucket & ((1 << SUB_BITS) - 1)) | (1 << SUB_BITS)) << shift;
        low + ((1 << shift) >> 1)
    }

    impl Histogram {
        pub fn record(&mut self, latency: Duration) {
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.counts[bucket(micros)] += 1;
            self.total += 1;
            self.max = self.max.max(micros);
        }

        pub fn count(&self) -> u64 {
            self.total
        }

        /// The latency at quantile `q` (0..=1) in milliseconds; the max is exact.
        pub fn quantile_ms(&self, q: f64) -> f64 {
            if self.total == 0 {
                return 0.0;
            }
            let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
            if rank == self.total {
                return self.max as f64 / 1000.0;
            }
            let mut seen = 0;
            for (i, &n) in self.counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return value(i).min(self.max) as f64 / 1000.0;
                }
            }
            self.max as f64 / 1000.0
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn buckets_are_contiguous_and_close() {
            let mut previous = 0;
            for micros in [0, 1, 1023, 1024, 1025, 2047, 2048, 123_456, 10_000_000] {
                let b = bucket(micros);
                assert!(b >= previous && b < BUCKETS, "{micros} -> {b}");
                previous = b;
                let v = value(b) as f64;
                assert!((v - micros as f64).abs() <= micros as f64 / 512.0 + 0.5);
            }
            assert!(bucket(u64::MAX) < BUCKETS);
        }

        #[test]
        fn quantiles_of_a_uniform_spread() {
            let mut h = Histogram::default();
            for ms in 1..=1000 {
                h.record(Duration::from_millis(ms));
            }
            assert_eq!(h.count(), 1000);
            assert!((h.quantile_ms(0.5) - 500.0).abs() < 1.0);
            assert!((h.quantile_ms(0.99) - 990.0).abs() < 2.0);
            assert_eq!(h.quantile_ms(1.0), 1000.0);
        }

        #[test]
        fn stat_fields_count_from_the_last_parenthesis() {
            let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
            assert_eq!(stat_cpu_seconds(stat), Some(3.0));
        }
    }
}

/// The bundled broker in a child process, and the child's side of it.
mod broker {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use crate::cli::BrokerArgs;

    /// The child's one line on stdout: this prefix, then `bootstrap.servers`.
    const READY: &str = "bootstrap ";
    const START_TIMEOUT: Duration = Duration::from_secs(30);

    /// `perf broker`: the in-process cluster with the topics created,
    /// serving until stdin closes, which also happens when the parent dies,
    /// so a crashed benchmark leaves no broker behind.
    pub fn serve(args: &BrokerArgs) -> Result<(), String> {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(async {
            let config = kafka_broker::BrokerConfig {
                default_partitions: args.partitions,
                ..kafka_broker::BrokerConfig::default()
            };
            let cluster = kafka_broker::Cluster::start(config)
                .await
                .map_err(|e| format!("broker: {e}"))?;
            for topic in &args.topics {
                cluster
                    .create_topic(topic, args.partitions)
                    .map_err(|e| format!("broker: create topic {topic}: {e}"))?;
            }
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{READY}{}", cluster.bootstrap_servers())
                .and_then(|()| stdout.flush())
                .map_err(|e| format!("broker: stdout: {e}"))?;
            let _ = tokio::task::spawn_blocking(|| {
                std::io::copy(&mut std::io::stdin(), &mut std::io::sink())
            })
            .await;
            cluster.shutdown().await;
            Ok(())
        })
    }

    /// The broker child; killed when dropped.
    #[derive(Debug)]
    pub struct BrokerChild {
        child: Child,
        bootstrap: String,
    }

    impl BrokerChild {
        /// Starts `perf broker` (this executable) and waits for its
        /// bootstrap line.
        pub fn start(partitions: i32, topics: &[String]) -> Result<Self, String> {
            let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
            let mut command = Command::new(exe);
            command
                .args(["broker", "--partitions", &partitions.to_string()])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            for topic in topics {
                command.args(["--topic", topic]);
            }
            let mut child = command
                .spawn()
                .map_err(|e| format!("starting the broker child: {e}"))?;
            let stdout = child.stdout.take();
            // From here on the guard kills the child on every error path.
            let mut broker = BrokerChild {
                child,
                bootstrap: String::new(),
            };
            let line = read_line_within(stdout, START_TIMEOUT)?;
            broker.bootstrap = line
                .trim()
                .strip_prefix(READY)
                .ok_or_else(|| format!("the broker child printed {line:?} instead of its address"))?
                .to_owned();
            Ok(broker)
        }

        pub fn bootstrap(&self) -> &str {
            &self.bootstrap
        }

        pub fn pid(&self) -> u32 {
            self.child.id()
        }
    }

    impl Drop for BrokerChild {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The first line of the child's stdout, read on a thread so that a
    /// child that never answers cannot hang the benchmark.
    fn read_line_within(
        stdout: Option<std::process::ChildStdout>,
        timeout: Duration,
    ) -> Result<String, String> {
        let stdout = stdout.ok_or("the broker child has no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
        });
        match rx.recv_timeout(timeout) {
            Ok(Ok(line)) if !line.is_empty() => Ok(line),
            Ok(Ok(_)) => Err("the broker child exited before it was ready (see above)".into()),
            Ok(Err(e)) => Err(format!("reading the broker child's stdout: {e}")),
            Err(_) => Err(format!("the broker child was not ready within {timeout:?}")),
        }
    }
}

/// What one client run moved and measured, and how it is printed.
mod report {
    use std::fmt::Write as _;

    use crate::cli::{BenchArgs, Client, Workload};
    use crate::measure::{Histogram, Memory, Sample};

    /// What a run function returns: counts between two samples.
    #[derive(Debug)]
    pub struct Measured {
        pub records: u64,
        pub bytes: u64,
        pub start: Sample,
        pub end: Sample,
        /// Produce only.
        pub latency: Option<Histogram>,
        pub failed: u64,
        pub first_error: Option<String>,
        /// Client-specific context (batches, retries, ...).
        pub notes: Vec<String>,
    }

    #[derive(Debug)]
    pub struct Report {
        pub client: Client,
        pub topic: String,
        pub measured: Measured,
        pub memory: Memory,
    }

    impl Report {
        pub fn seconds(&self) -> f64 {
            let m = &self.measured;
            m.end.at.duration_since(m.start.at).as_secs_f64().max(1e-9)
        }

        pub fn records_per_second(&self) -> f64 {
            self.measured.records as f64 / self.seconds()
        }

        pub fn mb_per_second(&self) -> f64 {
            self.measured.bytes as f64 / (1024.0 * 1024.0) / self.seconds()
        }

        pub fn cpu_seconds(&self) -> Option<f64> {
            Some(self.measured.end.cpu? - self.measured.start.cpu?)
        }

        pub fn cpu_micros_per_record(&self) -> Option<f64> {
            Some(self.cpu_seconds()? * 1e6 / self.measured.records.max(1) as f64)
        }

        pub fn broker_cpu_seconds(&self) -> Option<f64> {
            Some(self.measured.end.broker_cpu? - self.measured.start.broker_cpu?)
        }
    }

    fn or_na(value: Option<f64>, decimals: usize) -> String {
        value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
    }

    /// One line per client, in the spirit of Kafka's perf tools.
    pub fn line(workload: Workload, r: &Report) -> String {
        let m = &r.measured;
        let verb = match workload {
            Workload::Produce => "sent to",
            Workload::Consume => "read from",
            Workload::Transactions => "through",
        };
        let mut out = format!(
            "{}: {} records {verb} {} in {:.2} s, {:.0} records/sec ({:.2} MB/sec)",
            r.client.name(),
            m.records,
            r.topic,
            r.seconds(),
            r.records_per_second(),
            r.mb_per_second()
        );
        if let Some(h) = &m.latency {
            let _ = write!(
                out,
                ", {} p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                latency_name(workload),
                h.quantile_ms(0.50),
                h.quantile_ms(0.99),
                h.quantile_ms(1.0)
            );
        }
        let _ = write!(
            out,
            "; client CPU {} µs/record ({} s), peak RSS {} MB (RSS {} MB at start)",
            or_na(r.cpu_micros_per_record(), 2),
            or_na(r.cpu_seconds(), 2),
            or_na(r.memory.peak_mb, 1),
            or_na(r.memory.start_mb, 1)
        );
        if let Some(e) = &r.memory.reset_error {
            let _ = write!(
                out,
                " [peak RSS not reset ({e}): it is the process's peak so far]"
            );
        }
        if let Some(broker) = r.broker_cpu_seconds() {
            let _ = write!(out, "; broker CPU {broker:.2} s");
        }
        if m.failed > 0 {
            let _ = write!(
                out,
                "; {} FAILED (first: {})",
                m.failed,
                m.first_error.as_deref().unwrap_or("?")
            );
        }
        for note in &m.notes {
            let _ = write!(out, "\n  {}: {note}", r.client.name());
        }
        out
    }

    /// What the histogram of a run times.
    fn latency_name(workload: Workload) -> &'static str {
        match workload {
            Workload::Transactions => "commit",
            _ => "latency",
        }
    }

    type Metric = Box<dyn Fn(&Report) -> Option<f64>>;

    fn latency(q: f64) -> Metric {
        Box::new(move |r| r.measured.latency.as_ref().map(|h| h.quantile_ms(q)))
    }

    /// The compared figures of a workload: name, value, decimals.
    fn metrics(workload: Workload) -> Vec<(String, Metric, usize)> {
        let mut rows: Vec<(String, Metric, usize)> = vec![
            (
                "records/s".into(),
                Box::new(|r| Some(r.records_per_second())),
                0,
            ),
            ("MB/s".into(), Box::new(|r| Some(r.mb_per_second())), 2),
        ];
        if workload != Workload::Consume {
            let name = latency_name(workload);
            rows.push((format!("{name} p50 (ms)"), latency(0.50), 2));
            rows.push((format!("{name} p99 (ms)"), latency(0.99), 2));
            rows.push((format!("{name} max (ms)"), latency(1.0), 2));
        }
        rows.push((
            "client CPU (µs/record)".into(),
            Box::new(Report::cpu_micros_per_record),
            3,
        ));
        rows.push((
            "client peak RSS (MB)".into(),
            Box::new(|r| r.memory.peak_mb),
            1,
        ));
        rows.push((
            "broker CPU (s)".into(),
            Box::new(Report::broker_cpu_seconds),
            2,
        ));
        rows
    }

    fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
        match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        }
    }

    fn heading(args: &BenchArgs) -> String {
        let properties: Vec<String> = args
            .properties
            .iter()
            .chain(&args.producer_properties)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "\n{} {} x {} B, properties: [{}]\n\n",
            args.workload.name(),
            args.records,
            args.record_size,
            properties.join(", ")
        )
    }

    const RATIO_NOTE: &str =
        "\nratio above 1 is better for throughput; below 1 is better for CPU, latency and RSS.";

    /// The markdown table of two runs, with ours/librdkafka per row.
    pub fn table(args: &BenchArgs, ours: &Report, theirs: &Report) -> String {
        let mut out = heading(args);
        out.push_str("| | ours | librdkafka | ours/librdkafka |\n|---|---:|---:|---:|\n");
        for (name, metric, decimals) in metrics(args.workload) {
            let (a, b) = (metric(ours), metric(theirs));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} |",
                or_na(a, decimals),
                or_na(b, decimals),
                or_na(ratio(a, b), 2)
            );
        }
        out.push_str(RATIO_NOTE);
        out
    }

    /// The markdown table of the transactional runs: a row per transaction
    /// size and client, and ours/librdkafka when both ran.
    pub fn transactions_table(args: &BenchArgs, runs: &[(u64, Vec<Report>)]) -> String {
        let metrics = metrics(args.workload);
        let mut out = heading(args);
        out.push_str("| transaction size | client |");
        for (name, _, _) in &metrics {
            let _ = write!(out, " {name} |");
        }
        out.push_str("\n|---:|---|");
        out.push_str(&"---:|".repeat(metrics.len()));
        out.push('\n');
        for (size, reports) in runs {
            for report in reports {
                let _ = write!(out, "| {size} | {} |", report.client.name());
                for (_, metric, decimals) in &metrics {
                    let _ = write!(out, " {} |", or_na(metric(report), *decimals));
                }
                out.push('\n');
            }
            if let [ours, theirs] = reports.as_slice() {
                let _ = write!(out, "| {size} | ours/librdkafka |");
                for (_, metric, _) in &metrics {
                    let _ = write!(out, " {} |", or_na(ratio(metric(ours), metric(theirs)), 2));
                }
                out.push('\n');
            }
        }
        if runs.iter().any(|(_, reports)| reports.len() == 2) {
            out.push_str(RATIO_NOTE);
        }
        out
    }
}

/// One random payload for every record, uppercase letters as
/// kafka-producer-perf-test makes them: compressible like text rather than
/// like a run of one byte, so that lz4 figures mean something.
fn payload(size: usize) -> Vec<u8> {
    // xorshift64: reproducible and needs no crate.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'A' + (x % 26) as u8
        })
        .collect()
}

/// What a run needs to know, for either client.
#[derive(Debug)]
struct Job<'a> {
    bootstrap: &'a str,
    topic: &'a str,
    records: u64,
    payload: &'a [u8],
    properties: &'a [(String, String)],
    /// Consume: the topic's partition count, all assigned.
    partitions: i32,
    /// Produce: send one untimed record first (see the module doc).
    warm_up: bool,
    deadline: std::time::Instant,
}

impl Job<'_> {
    fn timed_out(&self, what: &str) -> String {
        format!(
            "{what}: {} did not finish before the deadline (--timeout-secs)",
            self.topic
        )
    }

    fn short_read(&self, client: &str, records: u64) -> String {
        format!(
            "{client}: read only {records} of {} records from {} before the deadline \
             (--timeout-secs); does the topic hold that many?",
            self.records, self.topic
        )
    }
}

/// One run of the consume-transform-produce loop, for either client.
#[derive(Debug)]
struct TxnJob<'a> {
    bootstrap: &'a str,
    input: &'a str,
    output: &'a str,
    /// The consumer's group.id and the producer's transactional.id.
    group: &'a str,
    records: u64,
    transaction_size: u64,
    /// The producer's (and, for librdkafka, the consumer's too).
    properties: &'a [(String, String)],
    deadline: std::time::Instant,
}

impl TxnJob<'_> {
    /// The timeout of one transactional call: what is left of the run.
    fn call_timeout(&self) -> std::time::Duration {
        self.deadline
            .saturating_duration_since(std::time::Instant::now())
            .max(std::time::Duration::from_millis(1))
    }

    fn short(&self, client: &str, records: u64) -> String {
        format!(
            "{client}: processed only {records} of {} records from {} before the deadline \
             (--timeout-secs)",
            self.records, self.input
        )
    }
}

/// What both loops time in each transaction.
#[derive(Debug, Default)]
struct TxnTimes {
    offsets: measure::Histogram,
    commits: measure::Histogram,
    in_offsets: std::time::Duration,
    in_commits: std::time::Duration,
}

impl TxnTimes {
    fn offsets(&mut self, took: std::time::Duration) {
        self.offsets.record(took);
        self.in_offsets += took;
    }

    fn commit(&mut self, took: std::time::Duration) {
        self.commits.record(took);
        self.in_commits += took;
    }

    /// Where the run's time went, for a run of `run` seconds.
    fn note(&self, run: std::time::Duration) -> String {
        let share = |d: std::time::Duration| 100.0 * d.as_secs_f64() / run.as_secs_f64().max(1e-9);
        format!(
            "{} transactions; {:.0} % of the run in commit_transaction, {:.0} % in \
             send_offsets_to_transaction (p50 {:.2} ms, p99 {:.2} ms)",
            self.commits.count(),
            share(self.in_commits),
            share(self.in_offsets),
            self.offsets.quantile_ms(0.5),
            self.offsets.quantile_ms(0.99)
        )
    }
}

/// How long a consumer took to its first record: connecting, metadata and
/// offset lookups, the part of a short run that is not throughput.
fn first_record_note(first: Option<std::time::Duration>) -> String {
    match first {
        Some(first) => format!("first record after {:.0} ms", first.as_secs_f64() * 1000.0),
        None => "no record read".to_owned(),
    }
}

/// Where both clients start before the user's `--property` settings.
const PRODUCE_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
];
const CONSUME_DEFAULTS: &[(&str, &str)] = &[
    ("auto.offset.reset", "earliest"),
    ("enable.auto.commit", "false"),
];

/// The defaults, then the user's properties (later settings win).
fn with_defaults<'a>(
    defaults: &'a [(&'a str, &'a str)],
    properties: &'a [(String, String)],
) -> impl Iterator<Item = (&'a str, &'a str)> {
    defaults
        .iter()
        .copied()
        .chain(properties.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// This SDK's side.
mod ours {
    use std::collections::BTreeMap;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use kafka_sdk::client::consumer::{Consumer, ConsumerConfig, ConsumerSettings};
    use kafka_sdk::client::network::{Network, NetworkConfig};
    use kafka_sdk::client::producer::{
        DeliveryFuture, Producer, ProducerConfig, ProducerRecord, ProducerSettings, TopicPartition,
    };
    use tokio::time::timeout_at;

    use crate::measure::{Histogram, Probe};
    use crate::report::Measured;
    use crate::{
        CONSUME_DEFAULTS, Job, PRODUCE_DEFAULTS, TxnJob, TxnTimes, first_record_note, with_defaults,
    };

    /// Deliveries tracked at once. `buffer.memory` bounds what is really
    /// in flight (32 MB is ~300,000 small records); this only has to stay
    /// above that so that it never throttles the sender first.
    const TRACKED: usize = 1 << 20;

    pub fn producer_settings(
        bootstrap: &str,
        properties: &[(String, String)],
    ) -> Result<ProducerSettings, String> {
        let mut config = ProducerConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .map_err(|e| format!("ours: {e}"))?;
        for (name, value) in with_defaults(PRODUCE_DEFAULTS, properties) {
            config
                .set(name, value)
                .map_err(|e| format!("ours: {name}={value}: {e}"))?;
        }
        config.build().map_err(|e| format!("ours: {e}"))
    }

    pub fn consumer_settings(
        bootstrap: &str,
        properties: &[(String, String)],
    ) -> Result<ConsumerSettings, String> {
        let mut config = ConsumerConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .map_err(|e| format!("ours: {e}"))?;
        for (name, value) in with_defaults(CONSUME_DEFAULTS, properties) {
            config
                .set(name, value)
                .map_err(|e| format!("ours: {name}={value}: {e}"))?;
        }
        config.build().map_err(|e| format!("ours: {e}"))
    }

    /// Sends `job.records` keyless records (the sticky partitioner spreads
    /// them) and waits for every acknowledgement, after one untimed
    /// warm-up record (see the module doc).
    pub async fn produce(job: &Job<'_>, probe: &Probe) -> Result<Measured, String> {
        let producer = Producer::new(producer_settings(job.bootstrap, job.properties)?)
            .map_err(|e| format!("ours: producer: {e}"))?;
        let value = Bytes::copy_from_slice(job.payload);
        let deadline = tokio::time::Instant::from_std(job.deadline);
        if job.warm_up {
            let warm_up = ProducerRecord::new(job.topic).value(value.clone());
            timeout_at(deadline, producer.send_and_wait(warm_up))
                .await
                .map_err(|_| job.timed_out("ours: warm-up record"))?
                .map_err(|e| format!("ours: warm-up record: {e}"))?;
        }
        let (tx, rx) = tokio::sync::mpsc::channel(TRACKED);
        let collector = tokio::spawn(collect(rx));
        let start = probe.sample();
        for _ in 0..job.records {
            // Latency counts from before `send`, which may wait for
            // `buffer.memory`, as kafka-producer-perf-test counts it.
            let sent = Instant::now();
            let record = ProducerRecord::new(job.topic).value(value.clone());
            let delivery = timeout_at(deadline, producer.send(record))
                .await
                .map_err(|_| job.timed_out("ours: send"))?
                .map_err(|e| format!("ours: send: {e}"))?;
            tx.send((sent, delivery))
                .await
                .map_err(|_| "ours: the delivery collector stopped".to_owned())?;
        }
        drop(tx);
        let (latency, failed, first_error) = timeout_at(deadline, collector)
            .await
            .map_err(|_| job.timed_out("ours: waiting for acknowledgements"))?
            .map_err(|e| format!("ours: delivery collector: {e}"))?;
        let end = probe.sample();
        let stats = producer.stats();
        let _ = producer.close(Duration::from_secs(10)).await;
        Ok(Measured {
            records: latency.count(),
            bytes: latency.count() * job.payload.len() as u64,
            start,
            end,
            latency: Some(latency),
            failed,
            first_error,
            notes: vec![format!(
                "{} batches, {:.0} records/batch, {} requests, {} retries",
                stats.batches_sent,
                stats.average_batch_records(),
                stats.requests_sent,
                stats.retries
            )],
        })
    }

    /// Awaits deliveries in send order. A record acknowledged before an
    /// earlier one is timed when the earlier one is: that can only raise
    /// our latency figures, never flatter them.
    async fn collect(
        mut rx: tokio::sync::mpsc::Receiver<(Instant, DeliveryFuture)>,
    ) -> (Histogram, u64, Option<String>) {
        let mut latency = Histogram::default();
        let mut failed = 0;
        let mut first_error = None;
        while let Some((sent, delivery)) = rx.recv().await {
            match delivery.await {
                Ok(_) => latency.record(sent.elapsed()),
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        (latency, failed, first_error)
    }

    /// Reads every assigned partition from the start until `job.records`
    /// records have been counted.
    pub async fn consume(job: &Job<'_>, probe: &Probe) -> Result<Measured, String> {
        let settings = consumer_settings(job.bootstrap, job.properties)?;
        let deadline = tokio::time::Instant::from_std(job.deadline);
        let start = probe.sample();
        let mut consumer = Consumer::new(settings).map_err(|e| format!("ours: consumer: {e}"))?;
        let partitions: Vec<TopicPartition> = (0..job.partitions)
            .map(|partition| TopicPartition {
                topic: job.topic.to_owned(),
                partition,
            })
            .collect();
        consumer.assign(partitions.clone());
        consumer.seek_to_beginning(&partitions);
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut first = None;
        while records < job.records {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(job.short_read("ours", records));
            }
            let polled = timeout_at(deadline, consumer.poll(left.min(Duration::from_secs(1))))
                .await
                .map_err(|_| job.short_read("ours", records))?
                .map_err(|e| format!("ours: poll: {e}"))?;
            if first.is_none() && !polled.is_empty() {
                first = Some(start.at.elapsed());
            }
            for record in &polled {
                records += 1;
                bytes += record.value.as_ref().map_or(0, |v| v.len() as u64);
            }
        }
        let end = probe.sample();
        let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close()).await;
        Ok(Measured {
            records,
            bytes,
            start,
            end,
            latency: None,
            failed: 0,
            first_error: None,
            notes: vec![first_record_note(first)],
        })
    }

    /// The consume-transform-produce loop: every input record's value goes
    /// to the same partition of the output topic, `transaction_size` records
    /// to a transaction with their offsets (`send_offsets_to_transaction`),
    /// until `job.records` are committed. Timed from the first record, so
    /// joining the group and `init_transactions` are not.
    pub async fn transactions(job: &TxnJob<'_>, probe: &Probe) -> Result<Measured, String> {
        let created = Instant::now();
        let consumer_properties = [
            ("group.id", job.group.to_owned()),
            ("isolation.level", "read_committed".to_owned()),
            ("max.poll.records", job.transaction_size.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v));
        let mut consumer = Consumer::new(consumer_settings(job.bootstrap, &consumer_properties)?)
            .map_err(|e| format!("ours: consumer: {e}"))?;
        consumer
            .subscribe(&[job.input])
            .map_err(|e| format!("ours: subscribe: {e}"))?;
        let mut producer_properties = vec![("transactional.id".to_owned(), job.group.to_owned())];
        producer_properties.extend_from_slice(job.properties);
        let producer = Producer::new(producer_settings(job.bootstrap, &producer_properties)?)
            .map_err(|e| format!("ours: producer: {e}"))?;
        let deadline = tokio::time::Instant::from_std(job.deadline);
        let late = |what: &str| format!("ours: {what}: {}", job.short("ours", 0));
        timeout_at(deadline, producer.init_transactions(job.call_timeout()))
            .await
            .map_err(|_| late("init_transactions"))?
            .map_err(|e| format!("ours: init_transactions: {e}"))?;
        let mut times = TxnTimes::default();
        let mut offsets = BTreeMap::new();
        let (mut records, mut bytes, mut open) = (0u64, 0u64, 0u64);
        let mut start = None;
        while records < job.records {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(job.short("ours", records));
            }
            let polled = timeout_at(deadline, consumer.poll(left.min(Duration::from_secs(1))))
                .await
                .map_err(|_| job.short("ours", records))?
                .map_err(|e| format!("ours: poll: {e}"))?;
            if start.is_none() && !polled.is_empty() {
                start = Some((probe.sample(), created.elapsed()));
            }
            for record in polled {
                if records == job.records {
                    break;
                }
                if open == 0 {
                    producer
                        .begin_transaction()
                        .map_err(|e| format!("ours: begin_transaction: {e}"))?;
                }
                let mut copy = ProducerRecord::new(job.output).partition(record.partition);
                if let Some(value) = record.value {
                    bytes += value.len() as u64;
                    copy = copy.value(value);
                }
                // The commit flushes, and fails if a record was not
                // delivered: the delivery futures are not needed.
                timeout_at(deadline, producer.send(copy))
                    .await
                    .map_err(|_| job.short("ours", records))?
                    .map_err(|e| format!("ours: send: {e}"))?;
                let tp = TopicPartition {
                    topic: record.topic,
                    partition: record.partition,
                };
                offsets.insert(tp, record.offset + 1);
                (open, records) = (open + 1, records + 1);
                if open < job.transaction_size && records < job.records {
                    continue;
                }
                let group = consumer.group_metadata();
                let asked = Instant::now();
                producer
                    .send_offsets_to_transaction(&offsets, &group, job.call_timeout())
                    .await
                    .map_err(|e| format!("ours: send_offsets_to_transaction: {e}"))?;
                times.offsets(asked.elapsed());
                let asked = Instant::now();
                producer
                    .commit_transaction(job.call_timeout())
                    .await
                    .map_err(|e| format!("ours: commit_transaction: {e}"))?;
                times.commit(asked.elapsed());
                offsets.clear();
                open = 0;
            }
        }
        let end = probe.sample();
        let stats = producer.stats();
        let _ = producer.close(Duration::from_secs(10)).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close()).await;
        let (start, first) = start.ok_or("ours: no record read")?;
        Ok(Measured {
            records,
            bytes,
            start,
            end,
            notes: vec![
                first_record_note(Some(first)),
                times.note(end.at.duration_since(start.at)),
                format!(
                    "{} batches, {:.0} records/batch, {} requests",
                    stats.batches_sent,
                    stats.average_batch_records(),
                    stats.requests_sent,
                ),
            ],
            latency: Some(times.commits),
            failed: 0,
            first_error: None,
        })
    }

    /// The topic's partition count, from a metadata request (untimed), so
    /// that consumers assign every partition of any cluster's topic.
    pub async fn partition_count(bootstrap: &str, topic: &str) -> Result<i32, String> {
        let mut config = NetworkConfig::new(bootstrap.split(',').map(str::to_owned).collect());
        config.allow_auto_create_topics = false;
        let network = Network::new(config).map_err(|e| format!("metadata: {e}"))?;
        let metadata = timeout_at(
            tokio::time::Instant::now() + Duration::from_secs(30),
            network.metadata_for(topic),
        )
        .await
        .map_err(|_| format!("metadata for {topic}: no answer within 30 s"))?
        .map_err(|e| format!("metadata for {topic}: {e}"));
        network.close();
        let count = metadata?
            .partition_count(topic)
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        i32::try_from(count).map_err(|_| format!("topic {topic}: {count} partitions"))
    }
}

/// librdkafka's side, through the `rdkafka` crate's lowest-overhead API
/// (a `ThreadedProducer` with a delivery callback, a `BaseConsumer`), so
/// that it is compared at its best.
#[cfg(feature = "rdkafka")]
mod librdkafka {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use rdkafka::message::Message as _;
    use rdkafka::producer::{
        BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
    };
    use rdkafka::{ClientContext, Offset, TopicPartitionList};

    use crate::measure::{Histogram, Probe};
    use crate::report::Measured;
    use crate::{
        CONSUME_DEFAULTS, Job, PRODUCE_DEFAULTS, TxnJob, TxnTimes, first_record_note, with_defaults,
    };

    fn config(
        bootstrap: Option<&str>,
        defaults: &[(&str, &str)],
        properties: &[(String, String)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        if let Some(bootstrap) = bootstrap {
            config.set("bootstrap.servers", bootstrap);
        }
        for (name, value) in with_defaults(defaults, properties) {
            config.set(name, value);
        }
        config
    }

    /// Creates (and drops) a client so that librdkafka's checks of the
    /// properties run before any benchmark does. Without bootstrap servers
    /// it does not try to connect, so it logs no connection errors.
    pub fn check(produce: bool, properties: &[(String, String)]) -> Result<(), String> {
        let created = if produce {
            config(None, PRODUCE_DEFAULTS, properties)
                .create::<BaseProducer>()
                .map(drop)
        } else {
            config(None, CONSUME_DEFAULTS, properties)
                .create::<BaseConsumer>()
                .map(drop)
        };
        created.map_err(|e| format!("librdkafka: {e}"))
    }

    /// Times deliveries in librdkafka's delivery callback.
    struct Deliveries {
        epoch: Instant,
        latency: Mutex<Histogram>,
        failed: AtomicU64,
        first_error: Mutex<Option<String>>,
    }

    impl ClientContext for Deliveries {}

    impl ProducerContext for Deliveries {
        /// When the record was sent: microseconds since `epoch`.
        type DeliveryOpaque = usize;

        fn delivery(&self, result: &DeliveryResult<'_>, sent: usize) {
            match result {
                Ok(_) => {
                    let now = self.epoch.elapsed().as_micros() as u64;
                    let latency = Duration::from_micros(now.saturating_sub(sent as u64));
                    if let Ok(mut h) = self.latency.lock() {
                        h.record(latency);
                    }
                }
                Err((e, _)) => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut first) = self.first_error.lock() {
                        first.get_or_insert_with(|| e.to_string());
                    }
                }
            }
        }
    }

    /// One record sent and flushed before the timed run; its latency is
    /// start-up, so the histogram starts again after it.
    fn warm_up(producer: &ThreadedProducer<Deliveries>, job: &Job<'_>) -> Result<(), String> {
        let left = job.deadline.saturating_duration_since(Instant::now());
        let record = BaseRecord::<(), [u8], usize>::with_opaque_to(job.topic, 0);
        producer
            .send(record.payload(job.payload))
            .map_err(|(e, _)| format!("librdkafka: warm-up record: {e}"))?;
        producer
            .flush(left)
            .map_err(|e| format!("librdkafka: warm-up record: {e}"))?;
        let context = producer.context();
        if context.failed.load(Ordering::Relaxed) > 0 {
            let error = context.first_error.lock().ok().and_then(|e| e.clone());
            return Err(format!(
                "librdkafka: warm-up record: {}",
                error.as_deref().unwrap_or("not delivered")
            ));
        }
        if let Ok(mut latency) = context.latency.lock() {
            *latency = Histogram::default();
        }
        Ok(())
    }

    pub fn produce(job: &Job<'_>, probe: &Probe) -> Result<Measured, String> {
        let context = Deliveries {
            epoch: Instant::now(),
            latency: Mutex::new(Histogram::default()),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        };
        let producer: ThreadedProducer<Deliveries> =
            config(Some(job.bootstrap), PRODUCE_DEFAULTS, job.properties)
                .create_with_context(context)
                .map_err(|e| format!("librdkafka: producer: {e}"))?;
        if job.warm_up {
            warm_up(&producer, job)?;
        }
        let context = producer.context();
        let epoch = context.epoch;
        let start = probe.sample();
        for _ in 0..job.records {
            let now = Instant::now();
            if now >= job.deadline {
                return Err(job.timed_out("librdkafka: send"));
            }
            let sent = now.duration_since(epoch).as_micros() as usize;
            let mut record =
                BaseRecord::<(), [u8], usize>::with_opaque_to(job.topic, sent).payload(job.payload);
            // A full queue (queue.buffering.max.*) is librdkafka's
            // backpressure: serve delivery reports until there is room, as
            // its own rdkafka_performance tool does.
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        if Instant::now() >= job.deadline {
                            return Err(job.timed_out("librdkafka: send"));
                        }
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(format!("librdkafka: send: {e}")),
                }
            }
        }
        let left = job.deadline.saturating_duration_since(Instant::now());
        producer
            .flush(left)
            .map_err(|e| format!("librdkafka: flush: {e}"))?;
        let end = probe.sample();
        let context = producer.context();
        let latency = context
            .latency
            .lock()
            .map_err(|_| "librdkafka: a delivery callback panicked")?
            .clone();
        let first_error = context.first_error.lock().ok().and_then(|e| e.clone());
        Ok(Measured {
            records: latency.count(),
            bytes: latency.count() * job.payload.len() as u64,
            start,
            end,
            latency: Some(latency),
            failed: context.failed.load(Ordering::Relaxed),
            first_error,
            notes: Vec::new(),
        })
    }

    pub fn consume(job: &Job<'_>, probe: &Probe) -> Result<Measured, String> {
        let start = probe.sample();
        let mut config = config(Some(job.bootstrap), CONSUME_DEFAULTS, job.properties);
        // librdkafka refuses `assign` without a group.id ("Unknown group")
        // even though an assigned consumer never joins the group; any name
        // does, and a --property group.id=... still wins.
        if config.get("group.id").is_none() {
            config.set("group.id", "perf-librdkafka");
        }
        let consumer: BaseConsumer = config
            .create()
            .map_err(|e| format!("librdkafka: consumer: {e}"))?;
        // Assigned before it knows the leaders, librdkafka parks each
        // partition on its offset-query retry timer (about 500 ms here);
        // asking for the topic's metadata first, as a careful application
        // would, keeps that artifact out of short runs.
        let left = job.deadline.saturating_duration_since(Instant::now());
        consumer
            .fetch_metadata(Some(job.topic), left.min(Duration::from_secs(30)))
            .map_err(|e| format!("librdkafka: metadata: {e}"))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..job.partitions {
            assignment
                .add_partition_offset(job.topic, partition, Offset::Beginning)
                .map_err(|e| format!("librdkafka: assign: {e}"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| format!("librdkafka: assign: {e}"))?;
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut first = None;
        while records < job.records {
            let left = job.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(job.short_read("librdkafka", records));
            }
            match consumer.poll(left.min(Duration::from_secs(1))) {
                None => {}
                Some(Ok(message)) => {
                    first.get_or_insert_with(|| start.at.elapsed());
                    records += 1;
                    bytes += message.payload().map_or(0, |v| v.len() as u64);
                }
                Some(Err(e)) => return Err(format!("librdkafka: poll: {e}")),
            }
        }
        let end = probe.sample();
        Ok(Measured {
            records,
            bytes,
            start,
            end,
            latency: None,
            failed: 0,
            first_error: None,
            notes: vec![first_record_note(first)],
        })
    }

    /// The same loop as ours (see there), one message at a time as
    /// librdkafka's consumer hands them out. The producer is a
    /// `BaseProducer` served by this thread: the rdkafka crate's
    /// `commit_transaction` first flushes by polling in steps of up to
    /// 100 ms, and with a `ThreadedProducer` its own thread takes the
    /// delivery reports that poll waits for, so every commit took 100 ms.
    /// That flush calls `rd_kafka_flush` with a zero timeout, which does
    /// not keep librdkafka in its flushing state: the last batch still
    /// waits out `linger.ms` inside the commit.
    pub fn transactions(job: &TxnJob<'_>, probe: &Probe) -> Result<Measured, String> {
        let created = Instant::now();
        let mut producer_config = config(Some(job.bootstrap), PRODUCE_DEFAULTS, job.properties);
        producer_config.set("transactional.id", job.group);
        let producer: BaseProducer = producer_config
            .create()
            .map_err(|e| format!("librdkafka: producer: {e}"))?;
        producer
            .init_transactions(job.call_timeout())
            .map_err(|e| format!("librdkafka: init_transactions: {e}"))?;
        // librdkafka only warns about the producer's properties here, so
        // the consumer takes them too: that is how `--librdkafka-property`
        // reaches its fetch tuning (`fetch.queue.backoff.ms`, ...).
        let mut consumer_config = config(Some(job.bootstrap), CONSUME_DEFAULTS, job.properties);
        consumer_config
            .set("group.id", job.group)
            .set("isolation.level", "read_committed");
        let consumer: BaseConsumer = consumer_config
            .create()
            .map_err(|e| format!("librdkafka: consumer: {e}"))?;
        consumer
            .subscribe(&[job.input])
            .map_err(|e| format!("librdkafka: subscribe: {e}"))?;
        let mut times = TxnTimes::default();
        let mut offsets = BTreeMap::new();
        let (mut records, mut bytes, mut open) = (0u64, 0u64, 0u64);
        let mut start = None;
        while records < job.records {
            let left = job.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(job.short("librdkafka", records));
            }
            let message = match consumer.poll(left.min(Duration::from_secs(1))) {
                None => continue,
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(format!("librdkafka: poll: {e}")),
            };
            start.get_or_insert_with(|| (probe.sample(), created.elapsed()));
            if open == 0 {
                producer
                    .begin_transaction()
                    .map_err(|e| format!("librdkafka: begin_transaction: {e}"))?;
            }
            let value = message.payload().unwrap_or_default();
            bytes += value.len() as u64;
            let mut copy = BaseRecord::<(), [u8]>::to(job.output)
                .partition(message.partition())
                .payload(value);
            loop {
                match producer.send(copy) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        if Instant::now() >= job.deadline {
                            return Err(job.short("librdkafka", records));
                        }
                        copy = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => return Err(format!("librdkafka: send: {e}")),
                }
            }
            offsets.insert(message.partition(), message.offset() + 1);
            (open, records) = (open + 1, records + 1);
            if open < job.transaction_size && records < job.records {
                continue;
            }
            let mut list = TopicPartitionList::new();
            for (&partition, &offset) in &offsets {
                list.add_partition_offset(job.input, partition, Offset::Offset(offset))
                    .map_err(|e| format!("librdkafka: offsets: {e}"))?;
            }
            let group = consumer
                .group_metadata()
                .ok_or("librdkafka: the consumer has no group metadata")?;
            let asked = Instant::now();
            producer
                .send_offsets_to_transaction(&list, &group, job.call_timeout())
                .map_err(|e| format!("librdkafka: send_offsets_to_transaction: {e}"))?;
            times.offsets(asked.elapsed());
            let asked = Instant::now();
            producer
                .commit_transaction(job.call_timeout())
                .map_err(|e| format!("librdkafka: commit_transaction: {e}"))?;
            times.commit(asked.elapsed());
            offsets.clear();
            open = 0;
        }
        let end = probe.sample();
        let (start, first) = start.ok_or("librdkafka: no record read")?;
        Ok(Measured {
            records,
            bytes,
            start,
            end,
            notes: vec![
                first_record_note(Some(first)),
                times.note(end.at.duration_since(start.at)),
            ],
            latency: Some(times.commits),
            failed: 0,
            first_error: None,
        })
    }
}

/// The benchmark: broker, fill, one run per client, reports.
mod bench {
    use std::time::{Duration, Instant};

    use crate::broker::BrokerChild;
    use crate::cli::{BenchArgs, Client, Workload};
    use crate::measure::{self, Memory, Probe};
    use crate::report::{self, Measured, Report};
    use crate::{Job, TxnJob, ours, payload};

    /// A stand-in address for checking properties before any broker runs.
    const NO_BROKER: &str = "127.0.0.1:9";

    pub fn run(args: &BenchArgs) -> Result<(), String> {
        check_properties(args)?;
        let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("runtime: {e}"))?;
        if args.workload == Workload::Transactions {
            return transactions(&runtime, args);
        }
        let topics: Vec<(Client, String)> = args
            .clients
            .iter()
            .map(|&client| (client, topic_for(args, client)))
            .collect();
        let names: Vec<String> = topics.iter().map(|(_, t)| t.clone()).collect();
        // The child outlives every run and is killed when this returns.
        let (child, bootstrap, probe) = start_broker(args, &names)?;
        let payload = payload(args.record_size);
        let mut partitions = vec![0; topics.len()];
        if args.workload == Workload::Consume {
            for ((_, topic), count) in topics.iter().zip(&mut partitions) {
                fill(&runtime, args, &bootstrap, topic, &payload)?;
                *count = runtime.block_on(ours::partition_count(&bootstrap, topic))?;
            }
        }
        let mut reports = Vec::new();
        for ((client, topic), partitions) in topics.into_iter().zip(partitions) {
            let properties = properties_for(args, client);
            let job = Job {
                bootstrap: &bootstrap,
                topic: &topic,
                records: args.records,
                payload: &payload,
                properties: &properties,
                partitions,
                warm_up: true,
                deadline: Instant::now() + args.timeout,
            };
            let report = run_one(&runtime, args.workload, client, &job, &probe)?;
            println!("{}", report::line(args.workload, &report));
            reports.push(report);
        }
        if let [ours, theirs] = reports.as_slice() {
            println!("{}", report::table(args, ours, theirs));
        }
        drop(child);
        let failed: u64 = reports.iter().map(|r| r.measured.failed).sum();
        if failed > 0 {
            return Err(format!("{failed} records were not delivered (see above)"));
        }
        Ok(())
    }

    /// The bundled broker as a child with `topics` created, unless
    /// `--bootstrap-server` names a cluster; and the probe that samples it.
    fn start_broker(
        args: &BenchArgs,
        topics: &[String],
    ) -> Result<(Option<BrokerChild>, String, Probe), String> {
        let (child, bootstrap) = match &args.bootstrap {
            Some(bootstrap) => (None, bootstrap.clone()),
            None => {
                let child = BrokerChild::start(args.partitions, topics)?;
                let bootstrap = child.bootstrap().to_owned();
                (Some(child), bootstrap)
            }
        };
        let probe = Probe {
            broker_pid: child.as_ref().map(BrokerChild::pid),
        };
        eprintln!(
            "perf: {} {} x {} B records against {bootstrap}{}",
            args.workload.name(),
            args.records,
            args.record_size,
            if child.is_some() {
                " (bundled broker, child process)"
            } else {
                ""
            }
        );
        Ok((child, bootstrap, probe))
    }

    /// The consume-transform-produce loop: each client has one input topic,
    /// filled once (untimed) and read again from the start by a new group
    /// for every transaction size, and an output topic per size.
    fn transactions(runtime: &tokio::runtime::Runtime, args: &BenchArgs) -> Result<(), String> {
        let inputs: Vec<(Client, String)> = args
            .clients
            .iter()
            .map(|&client| (client, format!("{}-{}-in", args.topic, client.name())))
            .collect();
        // One name per (size, client): the output topic's stem, the group
        // and the transactional.id.
        let name = |size: u64, client: Client| format!("{}-{}-{size}", args.topic, client.name());
        let mut topics: Vec<String> = inputs.iter().map(|(_, t)| t.clone()).collect();
        for &size in &args.transaction_sizes {
            for &(client, _) in &inputs {
                topics.push(format!("{}-out", name(size, client)));
            }
        }
        let (child, bootstrap, probe) = start_broker(args, &topics)?;
        let payload = payload(args.record_size);
        for (_, input) in &inputs {
            fill(runtime, args, &bootstrap, input, &payload)?;
        }
        let mut runs = Vec::new();
        for &size in &args.transaction_sizes {
            let mut reports = Vec::new();
            for (client, input) in &inputs {
                let (client, group) = (*client, name(size, *client));
                let output = format!("{group}-out");
                let properties = properties_for(args, client);
                let job = TxnJob {
                    bootstrap: &bootstrap,
                    input,
                    output: &output,
                    group: &group,
                    records: args.records,
                    transaction_size: size,
                    properties: &properties,
                    deadline: Instant::now() + args.timeout,
                };
                let (measured, memory) = measured_run(|| match client {
                    Client::Ours => runtime.block_on(ours::transactions(&job, &probe)),
                    #[cfg(feature = "rdkafka")]
                    Client::Librdkafka => crate::librdkafka::transactions(&job, &probe),
                    #[cfg(not(feature = "rdkafka"))]
                    Client::Librdkafka => Err("librdkafka: build with --features rdkafka".into()),
                })?;
                let report = Report {
                    client,
                    topic: format!("{input} -> {output}"),
                    measured,
                    memory,
                };
                println!("{}", report::line(args.workload, &report));
                reports.push(report);
            }
            runs.push((size, reports));
        }
        println!("{}", report::transactions_table(args, &runs));
        drop(child);
        Ok(())
    }

    /// Both clients' property checks, so that a typo fails in a second,
    /// not after the first client's run.
    fn check_properties(args: &BenchArgs) -> Result<(), String> {
        let produce = args.workload != Workload::Consume;
        for &client in &args.clients {
            match client {
                Client::Ours if produce => {
                    ours::producer_settings(NO_BROKER, &args.properties).map(drop)?
                }
                Client::Ours => ours::consumer_settings(NO_BROKER, &args.properties).map(drop)?,
                #[cfg(feature = "rdkafka")]
                Client::Librdkafka => {
                    crate::librdkafka::check(produce, &properties_for(args, client))?
                }
                #[cfg(not(feature = "rdkafka"))]
                Client::Librdkafka => {
                    return Err("librdkafka: build with --features rdkafka".into());
                }
            }
        }
        if args.workload == Workload::Consume {
            ours::producer_settings(NO_BROKER, &args.producer_properties)
                .map(drop)
                .map_err(|e| format!("--producer-property: {e}"))?;
        }
        Ok(())
    }

    /// The properties a client runs with: `--property` for both, then
    /// `--librdkafka-property` for librdkafka alone.
    fn properties_for(args: &BenchArgs, client: Client) -> Vec<(String, String)> {
        let mut properties = args.properties.clone();
        if client == Client::Librdkafka {
            properties.extend(args.librdkafka_properties.iter().cloned());
        }
        properties
    }

    /// Each client its own topic when both run, so neither reads the
    /// other's records (and each produce run starts on an empty log).
    fn topic_for(args: &BenchArgs, client: Client) -> String {
        if args.clients.len() > 1 {
            format!("{}-{}", args.topic, client.name())
        } else {
            args.topic.clone()
        }
    }

    /// Writes the records a consume run reads, with our producer; untimed.
    fn fill(
        runtime: &tokio::runtime::Runtime,
        args: &BenchArgs,
        bootstrap: &str,
        topic: &str,
        payload: &[u8],
    ) -> Result<(), String> {
        let job = Job {
            bootstrap,
            topic,
            records: args.records,
            payload,
            properties: &args.producer_properties,
            partitions: 0,
            // Untimed anyway, and the consumers must find exactly N records.
            warm_up: false,
            deadline: Instant::now() + args.timeout,
        };
        let started = Instant::now();
        let filled = runtime
            .block_on(ours::produce(&job, &Probe { broker_pid: None }))
            .map_err(|e| format!("filling {topic}: {e}"))?;
        if filled.failed > 0 {
            return Err(format!(
                "filling {topic}: {} records not delivered (first: {})",
                filled.failed,
                filled.first_error.as_deref().unwrap_or("?")
            ));
        }
        eprintln!(
            "perf: filled {topic} with {} records in {:.1} s",
            filled.records,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn run_one(
        runtime: &tokio::runtime::Runtime,
        workload: Workload,
        client: Client,
        job: &Job<'_>,
        probe: &Probe,
    ) -> Result<Report, String> {
        let (measured, memory) = measured_run(|| match (client, workload) {
            (Client::Ours, Workload::Produce) => runtime.block_on(ours::produce(job, probe)),
            (Client::Ours, Workload::Consume) => runtime.block_on(ours::consume(job, probe)),
            (_, Workload::Transactions) => {
                Err("transactions are run by bench::transactions".into())
            }
            #[cfg(feature = "rdkafka")]
            (Client::Librdkafka, Workload::Produce) => crate::librdkafka::produce(job, probe),
            #[cfg(feature = "rdkafka")]
            (Client::Librdkafka, Workload::Consume) => crate::librdkafka::consume(job, probe),
            #[cfg(not(feature = "rdkafka"))]
            (Client::Librdkafka, _) => Err("librdkafka: build with --features rdkafka".into()),
        })?;
        Ok(Report {
            client,
            topic: job.topic.to_owned(),
            measured,
            memory,
        })
    }

    /// One client run with its own peak RSS.
    fn measured_run(
        run: impl FnOnce() -> Result<Measured, String>,
    ) -> Result<(Measured, Memory), String> {
        // Let the previous run's threads and connections wind down so that
        // they are not counted in this one.
        std::thread::sleep(Duration::from_millis(200));
        let mut memory = measure::start_memory();
        let measured = run()?;
        measure::finish_memory(&mut memory);
        Ok((measured, memory))
    }
}
