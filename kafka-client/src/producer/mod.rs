//! The producer: records are batched per partition in wire format by the
//! [`accumulator`], and sent by a background sender task, idempotently by
//! default.

pub mod accumulator;
mod config;
mod hash;
mod idempotence;
pub mod partitioner;
mod sender;
mod stats;
mod transaction;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::records::{Compression, Header};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use crate::topic_partition::TopicPartition;
use accumulator::{Accumulator, AccumulatorConfig, TryAppend, record_size};
pub use accumulator::{DeliveryFuture, RecordMetadata};
pub use config::ProducerConfig;
use idempotence::Idempotence;
use sender::SenderConfig;
pub use stats::ProducerStats;
use transaction::Transactions;

use crate::admin::{Admin, AdminSettings, PartitionDescription, partitions_of};
use crate::consumer::ConsumerGroupMetadata;
use crate::network::{ClusterMetadata, Network, NetworkConfig, TopicInfo};
use crate::{Error, Result};

/// A record to send: topic, optional partition, key, value, headers and
/// timestamp. Keys and values are bytes; serialize before building.
///
/// ```
/// use kafka_client::producer::ProducerRecord;
///
/// let record = ProducerRecord::new("orders")
///     .key("customer-7")
///     .value(r#"{"total": 42}"#)
///     .header("trace-id", "abc");
/// assert_eq!(record.topic(), "orders");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    topic: String,
    partition: Option<i32>,
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<Header>,
    timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, value or headers.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            ..Self::default()
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends to this partition, bypassing the partitioner.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// The key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The value; without one the record is a tombstone.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, Some(value.into())));
        self
    }

    /// Adds a header with a null value (Java's `new RecordHeader(key,
    /// null)`), which readers see as a header without a value, unlike an
    /// empty one.
    pub fn null_header(mut self, key: impl Into<String>) -> Self {
        self.headers.push(Header::new(key, None));
        self
    }

    /// The create timestamp in milliseconds since the epoch; now if unset.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// The producer's settings, typed. Built from a validated producer
/// configuration; the defaults are the Java client's.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// The network layer's settings (bootstrap servers, timeouts, backoff).
    pub network: NetworkConfig,
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    /// `batch.size`.
    pub batch_size: usize,
    /// `linger.ms`.
    pub linger: Duration,
    /// `buffer.memory`.
    pub buffer_memory: usize,
    /// `max.block.ms`.
    pub max_block: Duration,
    /// `compression.type`.
    pub compression: Compression,
    /// `compression.level`.
    pub compression_level: Option<i32>,
    /// `enable.idempotence`. With it (the default) retries never duplicate
    /// or reorder a partition's records. Without it, and with more than one
    /// request in flight, a retried batch can land after batches sent later
    /// and twice when its first response was lost: set
    /// `max_in_flight = 1` if order matters and idempotence is off.
    pub idempotence: bool,
    /// `max.in.flight.requests.per.connection`.
    pub max_in_flight: usize,
    /// `retries`.
    pub retries: u32,
    /// `retry.backoff.ms`.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`.
    pub retry_backoff_max: Duration,
    /// `delivery.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `max.request.size`.
    pub max_request_size: usize,
    /// Chooses partitions for records without an explicit one.
    pub partitioner: Arc<dyn partitioner::Partitioner>,
    /// `transactional.id`: with one, the producer is transactional (see
    /// [`Producer::init_transactions`]).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`: the coordinator aborts a transaction left
    /// open longer.
    pub transaction_timeout: Duration,
}

impl ProducerSettings {
    /// Java's defaults for the given bootstrap servers.
    pub fn new(bootstrap_servers: &str) -> Self {
        Self {
            network: NetworkConfig::new(
                bootstrap_servers
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .collect(),
            ),
            acks: -1,
            batch_size: 16_384,
            linger: Duration::from_millis(5),
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            compression: Compression::None,
            compression_level: None,
            idempotence: true,
            max_in_flight: 5,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            delivery_timeout: Duration::from_secs(120),
            max_request_size: 1024 * 1024,
            partitioner: Arc::new(partitioner::DefaultPartitioner::new(false)),
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// An async Kafka producer. Cheap to clone; clones share one sender task.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: ProducerSettings,
    network: Arc<Network>,
    accumulator: Arc<Accumulator>,
    sender: std::sync::Mutex<Option<JoinHandle<()>>>,
    stats: Arc<stats::Counters>,
    idempotence: Option<Arc<Idempotence>>,
    transactions: Option<Arc<Transactions>>,
}

/// The topic's entry if its partition count is known without error (what
/// [`ClusterMetadata::partition_count`] checks), in one lookup.
fn usable<'a>(metadata: &'a ClusterMetadata, topic: &str) -> Option<&'a TopicInfo> {
    metadata
        .topics
        .get(topic)
        .filter(|info| info.error.is_ok() && !info.partitions.is_empty())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Starts a producer; connects lazily on the first send.
    pub fn new(settings: ProducerSettings) -> Result<Self> {
        if settings.idempotence && settings.acks != -1 {
            return Err(Error::config(
                "acks",
                "must be all (-1) with enable.idempotence=true",
            ));
        }
        if settings.idempotence && settings.max_in_flight > 5 {
            return Err(Error::config(
                "max.in.flight.requests.per.connection",
                "must be at most 5 with enable.idempotence=true",
            ));
        }
        let transactional_id = settings
            .transactional_id
            .clone()
            .filter(|id| !id.is_empty());
        if transactional_id.is_some() && !settings.idempotence {
            return Err(Error::config(
                "enable.idempotence",
                "must be true with a transactional.id",
            ));
        }
        let network = Network::new(settings.network.clone())?;
        let accumulator = Arc::new(Accumulator::new(AccumulatorConfig {
            batch_size: settings.batch_size,
            linger: settings.linger,
            buffer_memory: settings.buffer_memory,
            compression: settings.compression,
            compression_level: settings.compression_level,
            transactional: transactional_id.is_some(),
        }));
        let idempotence = settings
            .idempotence
            .then(|| Arc::new(Idempotence::new(transactional_id.clone())));
        let transactions = transactional_id.map(|id| {
            Arc::new(Transactions::new(
                id,
                settings.transaction_timeout,
                settings.retry_backoff,
            ))
        });
        let stats = Arc::new(stats::Counters::default());
        let span = tracing::info_span!(
            "producer",
            client_id = settings.network.client_id.as_deref().unwrap_or("")
        );
        let sender = tokio::spawn(
            sender::run(
                network.clone(),
                accumulator.clone(),
                idempotence.clone(),
                transactions.clone(),
                SenderConfig {
                    acks: settings.acks,
                    request_timeout: settings.network.request_timeout,
                    delivery_timeout: settings.delivery_timeout,
                    retry_backoff: settings.retry_backoff,
                    retry_backoff_max: settings.retry_backoff_max,
                    retries: settings.retries,
                    max_in_flight: settings.max_in_flight.max(1),
                    max_request_size: settings.max_request_size,
                },
                stats.clone(),
            )
            .instrument(span),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                network,
                accumulator,
                sender: std::sync::Mutex::new(Some(sender)),
                stats,
                idempotence,
                transactions,
            }),
        })
    }

    /// Queues a record and returns its delivery future. Waits (up to
    /// `max.block.ms`) only for topic metadata and `buffer.memory`, never
    /// for the network send itself.
    ///
    /// A transactional producer sends only inside a transaction, between
    /// [`begin_transaction`](Self::begin_transaction) and its commit or
    /// abort; otherwise this fails with [`Error::InvalidState`], or with the
    /// error that made the transaction abortable or the producer unusable.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let settings = &self.inner.settings;
        if let Some(txn) = &self.inner.transactions {
            txn.check_send()?;
        }
        let size = record_size(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        );
        if size > settings.max_request_size {
            return Err(Error::RecordTooLarge {
                size,
                limit_name: "max.request.size",
                limit: settings.max_request_size,
            });
        }
        // The common case, once per record: the topic is known. The snapshot
        // stays fresh through the network's background refresh and the
        // sender's refresh on errors, so no clock is read and no lock taken
        // beyond the snapshot's.
        let current = self.inner.network.metadata();
        let waited;
        let topic = match usable(&current, &record.topic) {
            Some(topic) => topic,
            None => {
                // Boxed, as is `reserve` below: the slow paths' states would
                // otherwise make every send future (moved, by value, into
                // whatever awaits it) some 1.9 KB instead of a few hundred
                // bytes.
                waited = Box::pin(self.partitions(&record.topic)).await?;
                usable(&waited, &record.topic).ok_or_else(|| {
                    Error::Protocol(format!("metadata for `{}` vanished", record.topic))
                })?
            }
        };
        let partitions = topic.partitions.len();
        let info = partitioner::TopicPartitions {
            count: partitions,
            available: &topic.available,
        };
        let explicit = record.partition.is_some();
        let partition = match record.partition {
            Some(p) if p >= 0 && (p as usize) < partitions => p,
            Some(p) => {
                return Err(Error::kafka(
                    kafka_protocol::ErrorCode::UnknownTopicOrPartition,
                    format!(
                        "{}-{p}: the topic has {partitions} partitions",
                        record.topic
                    ),
                ));
            }
            None => settings.partitioner.partition(
                &record.topic,
                record.key.as_deref(),
                record.value.as_deref(),
                &info,
            ),
        };
        let mut timestamp = record.timestamp.unwrap_or_else(now_ms);
        let mut tp = TopicPartition {
            topic: record.topic,
            partition,
        };
        let accumulator = &self.inner.accumulator;
        // Memory is reserved by the append itself, under the same lock,
        // unless buffer.memory is full: then `reserve` waits for room first.
        let mut reserved = false;
        // Partitioner-chosen records do not start a new batch on a partition
        // whose batch just filled up: the partitioner moves on first (KIP-480).
        let mut abort_for_new_batch = !explicit && settings.partitioner.switches_on_new_batch();
        let appended = loop {
            let attempt = accumulator.try_append(
                &tp,
                timestamp,
                record.key.as_deref(),
                record.value.as_deref(),
                &record.headers,
                size,
                reserved,
                abort_for_new_batch,
            );
            match attempt {
                Ok(TryAppend::Appended(appended)) => break appended,
                Ok(TryAppend::NoMemory) => {
                    Box::pin(accumulator.reserve(size, settings.max_block)).await?;
                    reserved = true;
                    // The record is created when there is room for it.
                    timestamp = record.timestamp.unwrap_or_else(now_ms);
                }
                Ok(TryAppend::NeedsNewBatch) => {
                    settings
                        .partitioner
                        .on_new_batch(&tp.topic, tp.partition, &info);
                    tp.partition = settings.partitioner.partition(
                        &tp.topic,
                        record.key.as_deref(),
                        record.value.as_deref(),
                        &info,
                    );
                    abort_for_new_batch = false;
                }
                Err(e) => {
                    if reserved {
                        accumulator.unreserve(size);
                    }
                    return Err(e);
                }
            }
        };
        if !explicit {
            settings.partitioner.on_append(
                &tp.topic,
                record.key.as_deref(),
                tp.partition,
                size,
                appended.batch_full,
                &info,
            );
            if appended.batch_full && settings.partitioner.switches_on_new_batch() {
                // The sticky partition's batch is exactly full: move on now.
                settings
                    .partitioner
                    .on_new_batch(&tp.topic, tp.partition, &info);
            }
        }
        Ok(appended.delivery)
    }

    /// A snapshot of the producer's counters.
    pub fn stats(&self) -> ProducerStats {
        let available = self
            .inner
            .settings
            .buffer_memory
            .saturating_sub(self.inner.accumulator.used_memory());
        ProducerStats::from_counters(&self.inner.stats, available as u64)
    }

    /// Sends a record and waits for its acknowledgement.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// The partitions of `topic` with their leaders and replicas, as Java's
    /// `partitionsFor`: waits up to `max.block.ms` for the topic to be
    /// known (created by the broker if it allows auto-creation), then fails
    /// with a timeout, as [`send`](Self::send) would.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionDescription>> {
        self.partitions(topic).await?;
        let settings = &self.inner.settings;
        let admin = Admin::over(
            Arc::clone(&self.inner.network),
            AdminSettings {
                network: settings.network.clone(),
                default_api_timeout: settings.max_block,
                retry_backoff: settings.retry_backoff,
                retry_backoff_max: settings.retry_backoff_max,
            },
        );
        partitions_of(&admin, topic).await
    }

    /// The topic's partition count and the partitions with a leader now.
    /// Waits for it when the current snapshot does not have it.
    async fn partitions(&self, topic: &str) -> Result<Arc<ClusterMetadata>> {
        let network = &self.inner.network;
        let deadline = tokio::time::Instant::now() + self.inner.settings.max_block;
        let mut last_error = None;
        let mut first = true;
        loop {
            // Each attempt is cut off at the deadline too: a refresh that
            // retries unreachable brokers can take longer than max.block.ms.
            let attempt = tokio::time::timeout_at(deadline, async {
                if !first {
                    let _ = network.refresh().await;
                }
                network.metadata_for(topic).await
            })
            .await;
            first = false;
            match attempt {
                Ok(Ok(metadata)) if metadata.partition_count(topic).is_some() => {
                    return Ok(metadata);
                }
                // Refused credentials or certificates stay refused: say so
                // now rather than after max.block.ms.
                Ok(Err(e @ Error::Authentication { .. })) => return Err(e),
                Ok(Err(e)) => last_error = Some(e),
                Ok(Ok(_)) | Err(_) => {}
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(Error::Timeout(format!(
                    "no metadata for topic `{topic}` within max.block.ms ({:?}){}",
                    self.inner.settings.max_block,
                    last_error.map(|e| format!(": {e}")).unwrap_or_default()
                )));
            }
            tokio::time::sleep(self.inner.settings.retry_backoff.min(deadline - now)).await;
        }
    }

    /// Sends everything queued now, ignoring `linger.ms`, and waits until
    /// every record sent before this call is acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        // Bounded by delivery.timeout.ms: every queued batch completes or
        // expires by then.
        let deadline = tokio::time::Instant::now()
            + self.inner.settings.delivery_timeout
            + Duration::from_secs(1);
        self.flush_until(deadline, "delivery.timeout.ms").await
    }

    /// [`flush`](Self::flush) that gives up at `deadline`; `limit` names it
    /// in the error.
    async fn flush_until(&self, deadline: tokio::time::Instant, limit: &str) -> Result<()> {
        let accumulator = &self.inner.accumulator;
        accumulator.begin_flush();
        let emptied = accumulator.wait_empty(deadline).await;
        accumulator.end_flush();
        if emptied {
            Ok(())
        } else {
            Err(Error::Timeout(format!(
                "flush did not finish within {limit}"
            )))
        }
    }

    fn transactions(&self, call: &str) -> Result<(&Arc<Transactions>, &Arc<Idempotence>)> {
        match (&self.inner.transactions, &self.inner.idempotence) {
            (Some(txn), Some(idempotence)) => Ok((txn, idempotence)),
            _ => Err(Error::InvalidState(format!(
                "{call} needs a producer with a transactional.id"
            ))),
        }
    }

    /// Registers the `transactional.id` with its coordinator and gets the
    /// producer id and epoch. This fences any earlier producer with the same
    /// id (its next transactional call fails with `PRODUCER_FENCED`) and
    /// aborts the transaction it left open, waiting for that abort to
    /// finish. Call once, before anything else; after a timeout it may be
    /// called again.
    ///
    /// ```no_run
    /// # async fn run() -> kafka_client::Result<()> {
    /// use std::time::Duration;
    /// use kafka_client::producer::{Producer, ProducerConfig, ProducerRecord};
    ///
    /// let producer = Producer::new(
    ///     ProducerConfig::new()
    ///         .set("bootstrap.servers", "127.0.0.1:9092")?
    ///         .set("transactional.id", "invoicer-1")?
    ///         .build()?,
    /// )?;
    /// producer.init_transactions(Duration::from_secs(30)).await?;
    /// producer.begin_transaction()?;
    /// producer.send(ProducerRecord::new("invoices").value("42")).await?;
    /// producer.commit_transaction(Duration::from_secs(30)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn init_transactions(&self, timeout: Duration) -> Result<()> {
        let (txn, idempotence) = self.transactions("init_transactions")?;
        txn.init(&self.inner.network, idempotence, timeout).await
    }

    /// Starts a transaction. Local only: the coordinator hears of it when
    /// the first partition or offsets are added, so it takes no timeout.
    pub fn begin_transaction(&self) -> Result<()> {
        let (txn, _) = self.transactions("begin_transaction")?;
        txn.begin()
    }

    /// Commits a consumer's offsets with the current transaction: they
    /// become the group's committed offsets if and only if the transaction
    /// commits. `offsets` are the next offsets to read (last processed + 1);
    /// `group` comes from [`Consumer::group_metadata`], so that the group
    /// coordinator refuses offsets from a member that a rebalance replaced
    /// (that refusal makes the transaction abortable).
    ///
    /// [`Consumer::group_metadata`]: crate::consumer::Consumer::group_metadata
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: &ConsumerGroupMetadata,
        timeout: Duration,
    ) -> Result<()> {
        let (txn, idempotence) = self.transactions("send_offsets_to_transaction")?;
        txn.send_offsets(&self.inner.network, idempotence, offsets, group, timeout)
            .await
    }

    /// Flushes every record of the transaction and commits it. A
    /// [`Error::Timeout`] leaves the commit pending: call again to resume
    /// it. If a record could not be delivered, or the coordinator refused,
    /// the error is [`Error::AbortableTransaction`] (call
    /// [`abort_transaction`](Self::abort_transaction)) or [`Error::Fatal`].
    pub async fn commit_transaction(&self, timeout: Duration) -> Result<()> {
        let (txn, idempotence) = self.transactions("commit_transaction")?;
        let deadline = tokio::time::Instant::now() + timeout;
        txn.start_commit()?;
        let flushed = self
            .flush_until(deadline, "the commit_transaction timeout")
            .await;
        if let Some(error) = txn.blocked() {
            // A batch failed: the transaction cannot commit.
            return Err(error);
        }
        flushed?;
        // Partitions may have been added while the flush ran.
        if txn.start_commit()? {
            txn.end(&self.inner.network, idempotence, true, deadline)
                .await?;
        }
        txn.finished();
        Ok(())
    }

    /// Aborts the transaction: records not yet sent fail with
    /// [`Error::AbortableTransaction`], and those already written are never
    /// shown to `read_committed` consumers. The only call allowed after an
    /// abortable error. A [`Error::Timeout`] leaves the abort pending: call
    /// again to resume it.
    pub async fn abort_transaction(&self, timeout: Duration) -> Result<()> {
        let (txn, idempotence) = self.transactions("abort_transaction")?;
        let deadline = tokio::time::Instant::now() + timeout;
        txn.start_abort()?;
        // The sender fails what is queued; wait for what is in flight.
        let accumulator = &self.inner.accumulator;
        accumulator.data_ready.notify_one();
        if !accumulator.wait_empty(deadline).await {
            return Err(Error::Timeout(
                "abort_transaction: requests still in flight".into(),
            ));
        }
        if txn.start_abort()? {
            txn.end(&self.inner.network, idempotence, false, deadline)
                .await?;
        }
        if txn.needs_bump() || idempotence.needs_bump() {
            txn.bump(&self.inner.network, idempotence, deadline).await?;
        }
        txn.finished();
        Ok(())
    }

    /// Stops accepting records, sends what is queued, and waits up to
    /// `timeout` for it; whatever is still queued then fails with
    /// [`Error::Closed`].
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        self.inner.accumulator.close();
        let sender = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(sender) = sender else {
            return Ok(());
        };
        let abort = sender.abort_handle();
        let finished = tokio::time::timeout(timeout, sender).await;
        let result = match finished {
            Ok(_) => Ok(()),
            Err(_) => {
                abort.abort();
                self.inner.accumulator.abort_all(&Error::Closed);
                Err(Error::Timeout(format!(
                    "close: records still queued after {timeout:?}"
                )))
            }
        };
        self.inner.network.close();
        result
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accumulator.close();
        if let Some(sender) = self.sender.lock().unwrap_or_else(|e| e.into_inner()).take() {
            sender.abort();
        }
        self.accumulator.abort_all(&Error::Closed);
    }
}
