//! A sample integration suite, written the way an SDK user would: a small
//! service turns orders into invoices, and each test starts its own Kafka
//! cluster with `kafka-testcontainers` (in-process: no Docker, milliseconds).
//!
//! The service reads `orders` (key: order id, value:
//! `customer=<name>;amount=<cents>`), writes one invoice per order to
//! `invoices` (20% VAT added), sends orders it cannot read to
//! `orders.dead-letter`, and commits its offsets after each batch.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_sdk::client::consumer::{Consumer, ConsumerRecord};
use kafka_sdk::client::producer::{Producer, ProducerRecord};
use kafka_testcontainers::{
    ApiKey, ErrorCode, KafkaCluster, RunningCluster, collect_records, unique_group, unique_topic,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const LIMIT: Duration = Duration::from_secs(30);

/// The service under test.
mod invoicer {
    use super::*;

    /// Where the service reads and writes.
    #[derive(Debug, Clone)]
    pub struct Topics {
        pub orders: String,
        pub invoices: String,
        pub dead_letters: String,
    }

    /// The invoice for an order value, or why the order is unreadable.
    pub fn invoice(order_id: &str, order: &str) -> Result<String, String> {
        let mut customer = None;
        let mut amount = None;
        for field in order.split(';') {
            match field.split_once('=') {
                Some(("customer", c)) if !c.is_empty() => customer = Some(c),
                Some(("amount", a)) => {
                    amount = Some(a.parse::<u64>().map_err(|e| format!("amount `{a}`: {e}"))?)
                }
                _ => return Err(format!("unknown field `{field}`")),
            }
        }
        let customer = customer.ok_or("no customer")?;
        let net = amount.ok_or("no amount")?;
        let vat = net / 5;
        Ok(format!(
            "order={order_id};customer={customer};net={net};vat={vat};total={}",
            net + vat
        ))
    }

    /// A running service; [`Running::stop`] ends it after its current batch.
    pub struct Running {
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<usize, String>>,
    }

    impl Running {
        /// Stops the service; how many orders it handled.
        pub async fn stop(self) -> usize {
            let _ = self.stop.send(());
            self.task
                .await
                .expect("service task")
                .expect("service ran cleanly")
        }
    }

    /// Starts the service as `group` against `bootstrap_servers`.
    pub fn spawn(cluster: &RunningCluster, group: &str, topics: Topics) -> Running {
        let mut config = cluster.consumer_config(group).expect("consumer config");
        config.enable_auto_commit(false).expect("manual commits");
        let mut consumer = Consumer::new(config.build().expect("settings")).expect("consumer");
        consumer.subscribe(&[&topics.orders]).expect("subscribe");
        let producer = cluster.producer().expect("producer");
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut handled = 0;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    polled = consumer.poll(Duration::from_millis(100)) => {
                        let records = polled.map_err(|e| e.to_string())?;
                        if records.is_empty() {
                            continue;
                        }
                        for record in &records {
                            handle(&producer, &topics, record).await?;
                            handled += 1;
                        }
                        // Only once every invoice of the batch is acknowledged:
                        // a crash before this line repeats the batch, never skips it.
                        consumer.commit().await.map_err(|e| e.to_string())?;
                    }
                }
            }
            producer
                .close(Duration::from_secs(5))
                .await
                .map_err(|e| e.to_string())?;
            consumer.close().await.map_err(|e| e.to_string())?;
            Ok(handled)
        });
        Running { stop, task }
    }

    async fn handle(
        producer: &Producer,
        topics: &Topics,
        record: &ConsumerRecord,
    ) -> Result<(), String> {
        let key = record.key.clone().unwrap_or_default();
        let order_id = String::from_utf8_lossy(&key).into_owned();
        let value =
            String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
        let out = match invoice(&order_id, &value) {
            Ok(invoice) => ProducerRecord::new(&topics.invoices)
                .key(key)
                .value(invoice),
            Err(reason) => ProducerRecord::new(&topics.dead_letters)
                .key(key)
                .value(value)
                .header("error", reason),
        };
        producer
            .send_and_wait(out)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// A cluster with the three topics, each unique to the calling test.
async fn cluster_with_topics() -> (RunningCluster, invoicer::Topics) {
    let topics = invoicer::Topics {
        orders: unique_topic("orders"),
        invoices: unique_topic("invoices"),
        dead_letters: unique_topic("orders.dead-letter"),
    };
    let cluster = KafkaCluster::new()
        .brokers(3)
        .topic(&topics.orders, 3)
        .topic(&topics.invoices, 3)
        .topic(&topics.dead_letters, 1)
        .start()
        .await
        .expect("cluster");
    (cluster, topics)
}

async fn place_orders(cluster: &RunningCluster, topic: &str, orders: &[(&str, &str)]) {
    let producer = cluster.producer().expect("producer");
    for (id, order) in orders {
        producer
            .send_and_wait(
                ProducerRecord::new(topic)
                    .key(id.to_string())
                    .value(order.to_string()),
            )
            .await
            .expect("order placed");
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
}

/// Reads `count` records of `topic` from the beginning: key -> value.
async fn read(cluster: &RunningCluster, topic: &str, count: usize) -> BTreeMap<String, String> {
    let mut consumer = cluster
        .consumer(&unique_group("reader"), &[topic])
        .expect("reader");
    let records = collect_records(&mut consumer, count, LIMIT)
        .await
        .expect("records");
    let text = |b: &Option<bytes::Bytes>| {
        String::from_utf8_lossy(b.as_deref().unwrap_or_default()).into_owned()
    };
    let by_key: BTreeMap<String, String> = records
        .iter()
        .map(|r| (text(&r.key), text(&r.value)))
        .collect();
    assert_eq!(
        by_key.len(),
        records.len(),
        "one record per key: {records:?}"
    );
    by_key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_gets_exactly_one_invoice_with_vat() {
    let (cluster, topics) = cluster_with_topics().await;
    place_orders(
        &cluster,
        &topics.orders,
        &[
            ("o-1", "customer=alice;amount=1000"),
            ("o-2", "customer=bob;amount=250"),
            ("o-3", "customer=carol;amount=99"),
        ],
    )
    .await;

    let service = invoicer::spawn(&cluster, &unique_group("invoicer"), topics.clone());
    let invoices = read(&cluster, &topics.invoices, 3).await;
    assert_eq!(service.stop().await, 3, "orders handled");

    assert_eq!(
        invoices["o-1"],
        "order=o-1;customer=alice;net=1000;vat=200;total=1200"
    );
    assert_eq!(
        invoices["o-2"],
        "order=o-2;customer=bob;net=250;vat=50;total=300"
    );
    assert_eq!(
        invoices["o-3"],
        "order=o-3;customer=carol;net=99;vat=19;total=118"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_orders_go_to_the_dead_letter_topic() {
    let (cluster, topics) = cluster_with_topics().await;
    place_orders(
        &cluster,
        &topics.orders,
        &[
            ("o-1", "customer=alice;amount=ten"),
            ("o-2", "customer=bob;amount=500"),
            ("o-3", "amount=7"),
        ],
    )
    .await;

    let service = invoicer::spawn(&cluster, &unique_group("invoicer"), topics.clone());
    let dead = read(&cluster, &topics.dead_letters, 2).await;
    let invoices = read(&cluster, &topics.invoices, 1).await;
    assert_eq!(service.stop().await, 3);

    assert_eq!(
        dead.keys().collect::<Vec<_>>(),
        ["o-1", "o-3"],
        "dead letters: {dead:?}"
    );
    assert_eq!(dead["o-1"], "customer=alice;amount=ten", "kept as placed");
    assert_eq!(invoices.keys().collect::<Vec<_>>(), ["o-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_resumes_after_its_last_commit() {
    let (cluster, topics) = cluster_with_topics().await;
    let group = unique_group("invoicer");
    place_orders(
        &cluster,
        &topics.orders,
        &[
            ("o-1", "customer=alice;amount=100"),
            ("o-2", "customer=bob;amount=200"),
        ],
    )
    .await;
    let first = invoicer::spawn(&cluster, &group, topics.clone());
    read(&cluster, &topics.invoices, 2).await;
    assert_eq!(first.stop().await, 2);

    // Orders placed while no instance runs are picked up by the next one,
    // and the orders already invoiced are not invoiced again.
    place_orders(
        &cluster,
        &topics.orders,
        &[
            ("o-3", "customer=carol;amount=300"),
            ("o-4", "customer=dave;amount=400"),
        ],
    )
    .await;
    let second = invoicer::spawn(&cluster, &group, topics.clone());
    let invoices = read(&cluster, &topics.invoices, 4).await;
    assert_eq!(second.stop().await, 2, "only the new orders");
    assert_eq!(
        invoices.keys().collect::<Vec<_>>(),
        ["o-1", "o-2", "o-3", "o-4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_are_written_once_through_transient_broker_errors() {
    let (cluster, topics) = cluster_with_topics().await;
    place_orders(
        &cluster,
        &topics.orders,
        &[
            ("o-1", "customer=alice;amount=100"),
            ("o-2", "customer=bob;amount=200"),
            ("o-3", "customer=carol;amount=300"),
        ],
    )
    .await;
    // The next three produce requests (the service's invoices) fail with a
    // retriable error; the idempotent producer retries them.
    let fault = cluster
        .inject_error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower, 3)
        .expect("fault injection");

    let service = invoicer::spawn(&cluster, &unique_group("invoicer"), topics.clone());
    let invoices = read(&cluster, &topics.invoices, 3).await;
    assert_eq!(service.stop().await, 3);
    assert_eq!(fault.hits(), 3, "every injected error was answered");
    assert_eq!(invoices.len(), 3, "one invoice per order: {invoices:?}");
}
