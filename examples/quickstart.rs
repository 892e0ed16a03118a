//! The quickstart: an exactly-once consume-process-produce service, end to
//! end on one machine with nothing to install.
//!
//! ```text
//! cargo run --release --example quickstart [-- --orders N]
//! ```
//!
//! It starts the bundled broker in this process, creates an `orders` and an
//! `invoices` topic, and writes N orders (100,000 by default). An invoicing
//! worker then reads the orders in a consumer group and, in one
//! transaction per batch, writes an invoice for each together with the
//! consumer's offsets. Part way through the worker crashes with a
//! transaction open (its invoices sent, nothing committed) and a new
//! instance with the same `transactional.id` takes over: it fences the
//! crashed one, whose open transaction is aborted, and goes on from the
//! last committed offsets. Finally a `read_committed` reader counts the
//! invoices: each order must have exactly one.

use std::time::{Duration, Instant};

use kafka_broker::{BrokerConfig, Cluster};
use kafka_sdk::client::consumer::{Consumer, ConsumerConfig, ConsumerRecord};
use kafka_sdk::client::producer::{Producer, ProducerConfig, ProducerRecord, TopicPartition};
use kafka_sdk::client::worker::{Round, TransactionalWorker};

const PARTITIONS: i32 = 6;
const TIMEOUT: Duration = Duration::from_secs(30);

/// Whatever went wrong, for the demo's purposes.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let orders = parse_orders()?;
    let report = run(orders).await?;
    println!();
    println!("records in:   {}", report.orders);
    println!("records out:  {} (read_committed)", report.seen);
    println!("duplicates:   {}", report.duplicates);
    println!("missing:      {}", report.missing);
    println!(
        "time taken:   {:.2?} in all, {:.2?} processing ({:.0} orders/s through the exactly-once worker)",
        report.total,
        report.processing,
        report.orders as f64 / report.processing.as_secs_f64()
    );
    if !report.exactly_once() {
        return Err("exactly-once check failed".into());
    }
    println!("exactly once: yes");
    Ok(())
}

/// What a run saw.
pub struct Report {
    /// Orders written.
    pub orders: usize,
    /// Invoices a read_committed reader saw.
    pub seen: usize,
    /// Orders invoiced more than once (extra invoices).
    pub duplicates: usize,
    /// Orders never invoiced.
    pub missing: usize,
    /// Invoices the crashed worker left in its open transaction.
    pub left_open: usize,
    /// The whole run.
    pub total: Duration,
    /// From the first worker's start to the last commit.
    pub processing: Duration,
}

impl Report {
    /// Every order has exactly one invoice.
    pub fn exactly_once(&self) -> bool {
        self.seen == self.orders && self.duplicates == 0 && self.missing == 0
    }
}

/// The whole demo with `orders` orders, printing what happens.
pub async fn run(orders: usize) -> Result<Report, Error> {
    let started = Instant::now();

    // The broker: three brokers in this process, on free loopback ports.
    let mut config = BrokerConfig {
        brokers: 3,
        ..BrokerConfig::default()
    };
    // A crashed member leaves the group after its session timeout; the
    // broker's default minimum (6 s) would make the demo wait.
    config.set("group.min.session.timeout.ms", "1000")?;
    let cluster = Cluster::start(config).await?;
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("orders", PARTITIONS)?;
    cluster.create_topic("invoices", PARTITIONS)?;
    println!("broker:     3 brokers at {bootstrap}");

    let written = Instant::now();
    produce_orders(&bootstrap, orders).await?;
    println!("orders:     {orders} written in {:.2?}", written.elapsed());

    // The first worker instance processes part of the input, then crashes
    // in the middle of a transaction.
    let processing = Instant::now();
    let mut worker = invoicer(&bootstrap)?;
    worker.init().await?;
    let mut committed = 0;
    let crash_after = orders / 3;
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed < crash_after {
        if Instant::now() > deadline {
            return Err(
                format!("only {committed} of {orders} orders were invoiced in time").into(),
            );
        }
        if let Round::Committed { records } =
            worker.run_once(Duration::from_millis(200), invoice).await?
        {
            committed += records;
        }
    }
    let left_open = crash_mid_transaction(worker).await?;
    println!(
        "crash:      worker 1 died after committing {committed} invoices, with {left_open} more sent in an open transaction"
    );

    // The replacement fences the crashed instance and carries on.
    let mut worker = invoicer(&bootstrap)?;
    worker.init().await?;
    let mut aborted_rounds = 0;
    while committed < orders {
        if Instant::now() > deadline {
            return Err(
                format!("only {committed} of {orders} orders were invoiced in time").into(),
            );
        }
        match worker.run_once(Duration::from_millis(200), invoice).await? {
            Round::Committed { records } => committed += records,
            Round::Aborted { cause } => {
                aborted_rounds += 1;
                eprintln!("round aborted and retried: {cause}");
            }
            Round::Idle => {}
        }
    }
    let (consumer, producer) = worker.into_parts();
    consumer.close().await?;
    producer.close(TIMEOUT).await?;
    let processing = processing.elapsed();
    println!(
        "restart:    worker 2 fenced worker 1 and invoiced the rest ({aborted_rounds} rounds aborted and retried)"
    );

    let check = verify(&bootstrap, orders).await?;
    cluster.shutdown().await;
    Ok(Report {
        orders,
        seen: check.seen,
        duplicates: check.duplicates,
        missing: check.missing,
        left_open,
        total: started.elapsed(),
        processing,
    })
}

fn parse_orders() -> Result<usize, Error> {
    let mut args = std::env::args().skip(1);
    let mut orders = 100_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--orders" => {
                orders = args
                    .next()
                    .ok_or("--orders needs a number")?
                    .parse()
                    .map_err(|e| format!("--orders: {e}"))?;
            }
            other => return Err(format!("unknown argument `{other}` (try --orders N)").into()),
        }
    }
    if orders == 0 {
        return Err("--orders must be at least 1".into());
    }
    Ok(orders)
}

/// Order `i` of customer `i % 1000` for `i % 500 + 1` euros.
async fn produce_orders(bootstrap: &str, orders: usize) -> Result<(), Error> {
    let producer = Producer::new(
        ProducerConfig::new()
            .set("bootstrap.servers", bootstrap)?
            .set("linger.ms", "5")?
            .build()?,
    )?;
    let mut deliveries = Vec::with_capacity(orders);
    for i in 0..orders {
        let record = ProducerRecord::new("orders")
            .key(format!("customer-{}", i % 1000))
            .value(format!("order-{i}:{}", i % 500 + 1));
        deliveries.push(producer.send(record).await?);
    }
    for delivery in deliveries {
        delivery.await?;
    }
    producer.close(TIMEOUT).await?;
    Ok(())
}

/// A worker: a read_committed group consumer of `orders` and a
/// transactional producer, always with the same `transactional.id`.
fn invoicer(bootstrap: &str) -> Result<TransactionalWorker, Error> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new()
            .set("bootstrap.servers", bootstrap)?
            .set("group.id", "invoicer")?
            .set("isolation.level", "read_committed")?
            .set("enable.auto.commit", "false")?
            .set("auto.offset.reset", "earliest")?
            .set("session.timeout.ms", "1000")?
            .set("heartbeat.interval.ms", "100")?
            .set("max.poll.records", "2000")?
            .build()?,
    )?;
    consumer.subscribe(&["orders"])?;
    let producer = Producer::new(
        ProducerConfig::new()
            .set("bootstrap.servers", bootstrap)?
            .set("transactional.id", "invoicer-1")?
            .set("transaction.timeout.ms", "10000")?
            .build()?,
    )?;
    Ok(TransactionalWorker::new(consumer, producer).with_timeout(TIMEOUT))
}

/// The processing: an invoice with 20% VAT for each order, keyed by
/// customer so each customer's invoices stay in order.
async fn invoice(orders: Vec<ConsumerRecord>) -> Vec<ProducerRecord> {
    orders
        .iter()
        .filter_map(|order| {
            let value = std::str::from_utf8(order.value.as_deref()?).ok()?;
            let (id, amount) = value.split_once(':')?;
            let amount: u64 = amount.parse().ok()?;
            let mut invoice = ProducerRecord::new("invoices")
                .value(format!("invoice-for-{id}:{}", amount * 6 / 5));
            if let Some(key) = &order.key {
                invoice = invoice.key(key.clone());
            }
            Some(invoice)
        })
        .collect()
}

/// One more round by hand that stops between sending and committing, as a
/// process that dies there would; the worker is dropped without closing
/// (no LeaveGroup, no commit, no abort). Returns how many invoices it left
/// in the open transaction.
async fn crash_mid_transaction(mut worker: TransactionalWorker) -> Result<usize, Error> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let records = loop {
        let records = worker.consumer().poll(Duration::from_millis(200)).await?;
        if !records.is_empty() {
            break records;
        }
        if Instant::now() > deadline {
            return Err("no orders left to crash on".into());
        }
    };
    let producer = worker.producer().clone();
    producer.begin_transaction()?;
    let mut sent = 0;
    let mut deliveries = Vec::new();
    for invoice in invoice(records).await {
        deliveries.push(producer.send(invoice).await?);
        sent += 1;
    }
    for delivery in deliveries {
        delivery.await?;
    }
    drop(producer);
    drop(worker);
    Ok(sent)
}

struct Check {
    seen: usize,
    duplicates: usize,
    missing: usize,
}

/// Reads every invoice as a read_committed consumer does.
async fn verify(bootstrap: &str, orders: usize) -> Result<Check, Error> {
    let mut reader = Consumer::new(
        ConsumerConfig::new()
            .set("bootstrap.servers", bootstrap)?
            .set("isolation.level", "read_committed")?
            .set("auto.offset.reset", "earliest")?
            .set("fetch.max.wait.ms", "100")?
            .build()?,
    )?;
    reader.assign((0..PARTITIONS).map(|partition| TopicPartition {
        topic: "invoices".into(),
        partition,
    }));
    let mut per_order = vec![0u32; orders];
    let mut seen = 0;
    let mut quiet = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && (seen < orders || quiet < 3) {
        let records = reader.poll(Duration::from_millis(200)).await?;
        quiet = if records.is_empty() { quiet + 1 } else { 0 };
        for record in records {
            seen += 1;
            let id = record
                .value
                .as_deref()
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.strip_prefix("invoice-for-order-"))
                .and_then(|v| v.split_once(':'))
                .and_then(|(id, _)| id.parse::<usize>().ok());
            if let Some(count) = id.and_then(|id| per_order.get_mut(id)) {
                *count += 1;
            }
        }
    }
    Ok(Check {
        seen,
        duplicates: per_order.iter().map(|c| c.saturating_sub(1) as usize).sum(),
        missing: per_order.iter().filter(|c| **c == 0).count(),
    })
}
