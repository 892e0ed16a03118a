//! The exactly-once consume-transform-produce loop, as a small helper over
//! the raw API.
//!
//! Each round polls a batch of records, and in one transaction sends what
//! the application makes of them together with the consumer's offsets
//! (`send_offsets_to_transaction`), then commits. Either the output and
//! the offsets both become visible, or neither does: a `read_committed`
//! reader of the output sees each input record's result exactly once,
//! whatever crashes, rebalances and retries happen in between.
//!
//! When the transaction is abortable (a failed send, offsets refused
//! because a rebalance moved the partition, a transaction the broker timed
//! out), the round aborts it and seeks the consumer back to the round's
//! first offsets, so the same records are processed again in the next
//! round (or by the partition's new owner). A fatal error (the producer was
//! fenced by a newer instance with the same `transactional.id`) ends the
//! worker: it is returned and the caller should stop.
//!
//! The consumer must read `read_committed` with `enable.auto.commit=false`;
//! the producer needs a `transactional.id`.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::consumer::{Consumer, ConsumerRecord};
use crate::producer::{Producer, ProducerRecord};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// What one round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// The poll brought nothing; no transaction was begun.
    Idle,
    /// A transaction with the results of this many input records committed.
    Committed {
        /// Input records processed.
        records: usize,
    },
    /// The transaction was aborted and the consumer rewound; the records
    /// will be processed again.
    Aborted {
        /// Why.
        cause: Error,
    },
}

/// Drives a consumer and a transactional producer through
/// poll -> begin -> process and send -> send offsets -> commit.
///
/// ```no_run
/// # async fn run() -> kafka_client::Result<()> {
/// use std::time::Duration;
/// use kafka_client::consumer::{Consumer, ConsumerConfig};
/// use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
/// use kafka_client::worker::TransactionalWorker;
///
/// let mut consumer = Consumer::new(
///     ConsumerConfig::new()
///         .set("bootstrap.servers", "127.0.0.1:9092")?
///         .set("group.id", "uppercaser")?
///         .set("isolation.level", "read_committed")?
///         .set("enable.auto.commit", "false")?
///         .build()?,
/// )?;
/// consumer.subscribe(&["words"])?;
/// let producer = Producer::new(
///     ProducerConfig::new()
///         .set("bootstrap.servers", "127.0.0.1:9092")?
///         .set("transactional.id", "uppercaser-1")?
///         .build()?,
/// )?;
/// let mut worker = TransactionalWorker::new(consumer, producer);
/// worker.init().await?;
/// loop {
///     worker
///         .run_once(Duration::from_millis(500), |records| async move {
///             records
///                 .iter()
///                 .map(|r| {
///                     let upper = r.value.as_deref().unwrap_or_default().to_ascii_uppercase();
///                     ProducerRecord::new("shouted").value(upper)
///                 })
///                 .collect()
///         })
///         .await?;
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct TransactionalWorker {
    consumer: Consumer,
    producer: Producer,
    timeout: Duration,
}

/// How often a commit that timed out is resumed before the round gives up.
const COMMIT_ATTEMPTS: u32 = 3;

impl TransactionalWorker {
    /// A worker over `consumer` (subscribed or assigned) and a producer
    /// with a `transactional.id`. Transactional calls time out after 30 s
    /// (see [`with_timeout`](Self::with_timeout)).
    pub fn new(consumer: Consumer, producer: Producer) -> Self {
        Self {
            consumer,
            producer,
            timeout: Duration::from_secs(30),
        }
    }

    /// The timeout of each transactional call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The consumer, e.g. to subscribe or look at its assignment.
    pub fn consumer(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// The producer.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Gives the consumer and the producer back.
    pub fn into_parts(self) -> (Consumer, Producer) {
        (self.consumer, self.producer)
    }

    /// `init_transactions`: fences earlier instances with the same
    /// `transactional.id` and aborts what they left open.
    pub async fn init(&self) -> Result<()> {
        self.producer.init_transactions(self.timeout).await
    }

    /// One round: polls up to `poll_timeout`, hands the records to
    /// `process`, and sends its output and the records' offsets in one
    /// transaction. Returns `Err` only for what should stop the worker: a
    /// fatal producer error, or a consumer error.
    pub async fn run_once<F, Fut>(&mut self, poll_timeout: Duration, process: F) -> Result<Round>
    where
        F: FnOnce(Vec<ConsumerRecord>) -> Fut,
        Fut: Future<Output = Vec<ProducerRecord>>,
    {
        let records = self.consumer.poll(poll_timeout).await?;
        if records.is_empty() {
            return Ok(Round::Idle);
        }
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for record in &records {
            let tp = TopicPartition {
                topic: record.topic.clone(),
                partition: record.partition,
            };
            first.entry(tp.clone()).or_insert(record.offset);
            next.insert(tp, record.offset + 1);
        }
        let count = records.len();
        match self.transact(records, &next, process).await {
            Ok(()) => Ok(Round::Committed { records: count }),
            Err(e) if e.is_fatal() => Err(e),
            Err(cause) => {
                self.producer.abort_transaction(self.timeout).await?;
                for (tp, offset) in &first {
                    // A partition a rebalance took away is not ours to seek;
                    // its new owner starts from the committed offset.
                    if self.consumer.assignment().contains(tp) {
                        self.consumer.seek(tp, *offset)?;
                    }
                }
                tracing::info!(%cause, "transaction aborted; records will be processed again");
                Ok(Round::Aborted { cause })
            }
        }
    }

    async fn transact<F, Fut>(
        &mut self,
        records: Vec<ConsumerRecord>,
        offsets: &BTreeMap<TopicPartition, i64>,
        process: F,
    ) -> Result<()>
    where
        F: FnOnce(Vec<ConsumerRecord>) -> Fut,
        Fut: Future<Output = Vec<ProducerRecord>>,
    {
        self.producer.begin_transaction()?;
        // The commit flushes: its success means every record was delivered.
        for record in process(records).await {
            self.producer.send(record).await?;
        }
        let group = self.consumer.group_metadata();
        self.producer
            .send_offsets_to_transaction(offsets, &group, self.timeout)
            .await?;
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.producer.commit_transaction(self.timeout).await {
                Ok(()) => break,
                // The commit is still pending: resuming it is the only way on.
                Err(Error::Timeout(reason)) if attempts < COMMIT_ATTEMPTS => {
                    tracing::warn!(reason, "commit_transaction timed out; resuming it");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
