//! What every broker of a cluster shares: topics and their partition logs,
//! the coordinators, the broker addresses and the fault rules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use kafka_protocol::ErrorCode;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::coordinator::group::GroupCoordinator;
use crate::faults::Faults;
use crate::log::{PartitionLog, partition_dir};

/// Locks a mutex, recovering from poisoning: a panicking test thread must
/// not take the broker down with it, and the data is still consistent
/// because no invariant spans a panic point.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// One partition: its leader and its log.
#[derive(Debug)]
pub(crate) struct Partition {
    pub index: i32,
    leader: AtomicI32,
    leader_epoch: AtomicI32,
    pub log: Mutex<PartitionLog>,
}

impl Partition {
    fn new(index: i32, leader: i32, log: PartitionLog) -> Self {
        Self {
            index,
            leader: AtomicI32::new(leader),
            leader_epoch: AtomicI32::new(0),
            log: Mutex::new(log),
        }
    }

    /// The broker leading this partition.
    pub(crate) fn leader(&self) -> i32 {
        self.leader.load(Ordering::Acquire)
    }

    /// The current leader epoch.
    pub(crate) fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Moves leadership to `broker`, bumping the epoch.
    pub(crate) fn set_leader(&self, broker: i32) {
        let mut log = lock(&self.log);
        self.leader.store(broker, Ordering::Release);
        let epoch = self.leader_epoch.fetch_add(1, Ordering::AcqRel) + 1;
        log.set_leader_epoch(epoch);
    }
}

/// Per-topic settings (`retention.ms`, `retention.bytes`, `cleanup.policy`
/// and whatever else was given at creation, reported back by DescribeConfigs).
#[derive(Debug, Clone)]
pub(crate) struct TopicConfig {
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub entries: BTreeMap<String, String>,
}

/// A topic and its partitions.
#[derive(Debug)]
pub(crate) struct Topic {
    pub name: String,
    pub id: Uuid,
    /// Replaced whole by AlterConfigs / IncrementalAlterConfigs; readers
    /// take a copy so no lock is held while they use it.
    config: RwLock<TopicConfig>,
    partitions: RwLock<Vec<Arc<Partition>>>,
}

impl Topic {
    /// The topic's current settings.
    pub(crate) fn config(&self) -> TopicConfig {
        read(&self.config).clone()
    }

    /// Applies `retention.ms` and `retention.bytes` to every partition;
    /// returns how many batches were dropped.
    pub(crate) fn enforce_retention(&self, now_ms: i64) -> usize {
        let config = self.config();
        let mut dropped = 0;
        for partition in self.partitions() {
            let count = lock(&partition.log).apply_retention(
                now_ms,
                config.retention_ms,
                config.retention_bytes,
            );
            if count > 0 {
                tracing::debug!(
                    topic = self.name,
                    partition = partition.index,
                    dropped = count,
                    "retention"
                );
            }
            dropped += count;
        }
        dropped
    }

    /// Partition `index`, if it exists.
    pub(crate) fn partition(&self, index: i32) -> Option<Arc<Partition>> {
        let index = usize::try_from(index).ok()?;
        read(&self.partitions).get(index).cloned()
    }

    /// Every partition, in index order.
    pub(crate) fn partitions(&self) -> Vec<Arc<Partition>> {
        read(&self.partitions).clone()
    }

    /// How many partitions there are.
    pub(crate) fn partition_count(&self) -> i32 {
        read(&self.partitions).len() as i32
    }
}

/// A broker's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrokerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: u16,
    pub running: bool,
}

/// Kafka's topic name rules.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name `{name}` is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!("topic name is {} characters, over 249", name.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("topic name contains `{bad}`"));
    }
    Ok(())
}

/// The most partitions one topic may have here: a guard against requests
/// that would allocate without bound.
pub(crate) const MAX_PARTITIONS: i32 = 10_000;

/// The cluster-wide state every broker task reaches through an `Arc`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: BrokerConfig,
    pub brokers: RwLock<Vec<BrokerAddr>>,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions.
    pub txns: crate::coordinator::txn::TransactionCoordinator,
    next_producer_id: AtomicI64,
    /// Woken on every append, so long-polling fetches can look again.
    pub appended: Notify,
    pub faults: Faults,
    /// Serialises snapshots of committed offsets (disk mode).
    offsets_file: Mutex<()>,
    /// Mechanisms and credentials when connections must authenticate.
    pub sasl: Option<Arc<crate::security::sasl::SaslServer>>,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: crate::fetch_sessions::FetchSessionCache,
}

impl Shared {
    /// The shared state; with a data dir, the topics found there, their
    /// logs recovered. `brokers` is the cluster size, for leader placement.
    pub(crate) fn open(
        config: BrokerConfig,
        brokers: i32,
        sasl: Option<Arc<crate::security::sasl::SaslServer>>,
    ) -> std::io::Result<Self> {
        let groups = GroupCoordinator::new(config.group.clone());
        let fetch_sessions = crate::fetch_sessions::FetchSessionCache::new(
            config.fetch_session_slots,
            std::time::Duration::from_millis(config.fetch_session_eviction_ms),
        );
        let shared = Self {
            config,
            brokers: RwLock::new(Vec::new()),
            topics: RwLock::new(BTreeMap::new()),
            groups,
            txns: Default::default(),
            // Producer ids must not repeat across restarts of a disk-mode
            // broker: start from the clock.
            next_producer_id: AtomicI64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1000, |d| d.as_millis() as i64 * 1000),
            ),
            appended: Notify::new(),
            faults: Faults::default(),
            offsets_file: Mutex::new(()),
            sasl,
            fetch_sessions,
        };
        if let Some(dir) = shared.config.data_dir.clone() {
            std::fs::create_dir_all(&dir)?;
            // Before the logs: their recovery leaves open the transactions
            // the coordinator will end itself.
            let txns = crate::txn_store::load(&dir)?;
            tracing::info!(
                transactional_ids = txns.len(),
                "recovered transaction state"
            );
            shared.txns.restore(&shared.faults, txns);
            shared.load_topics(&dir, brokers.max(1))?;
            let restored = crate::offsets_store::restore(&dir, &shared.groups)?;
            tracing::info!(restored, "recovered committed offsets");
        }
        Ok(shared)
    }

    /// In disk mode, writes the committed offsets of every group before the
    /// change that called this is acknowledged.
    pub(crate) fn persist_offsets(&self) {
        let Some(dir) = &self.config.data_dir else {
            return;
        };
        let _guard = lock(&self.offsets_file);
        if let Err(e) = crate::offsets_store::save(dir, &self.groups) {
            tracing::error!(error = %e, "could not save committed offsets");
        }
    }

    fn load_topics(&self, dir: &std::path::Path, brokers: i32) -> std::io::Result<()> {
        let mut metas: Vec<std::path::PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "topic"))
            .collect();
        metas.sort();
        let mut topics = write(&self.topics);
        for path in metas {
            let Some(meta) = TopicMeta::read(&path) else {
                tracing::warn!(path = %path.display(), "unreadable topic file skipped");
                continue;
            };
            let first = (topics.len() as i32) % brokers;
            let mut partitions = Vec::new();
            for p in 0..meta.partitions {
                let mut log = PartitionLog::open(partition_dir(dir, &meta.name, p), 0)?;
                let aborted = log.abort_orphaned_transactions(
                    crate::coordinator::txn::now_ms(),
                    |producer_id| self.txns.will_end(producer_id, &meta.name, p),
                );
                if aborted > 0 {
                    tracing::warn!(
                        topic = meta.name,
                        partition = p,
                        aborted,
                        "aborted transactions left open before the restart"
                    );
                }
                partitions.push(Arc::new(Partition::new(p, (first + p) % brokers, log)));
            }
            let configs: Vec<(String, Option<String>)> = meta
                .configs
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect();
            let config = self.topic_config(&configs).unwrap_or_else(|_| TopicConfig {
                retention_ms: self.config.retention_ms,
                retention_bytes: self.config.retention_bytes,
                entries: BTreeMap::new(),
            });
            tracing::info!(
                topic = meta.name,
                partitions = meta.partitions,
                "recovered topic"
            );
            topics.insert(
                meta.name.clone(),
                Arc::new(Topic {
                    name: meta.name,
                    id: meta.id,
                    config: RwLock::new(config),
                    partitions: RwLock::new(partitions),
                }),
            );
        }
        Ok(())
    }

    fn new_log(&self, topic: &str, partition: i32) -> Result<PartitionLog, (ErrorCode, String)> {
        match &self.config.data_dir {
            None => Ok(PartitionLog::new(0)),
            Some(dir) => PartitionLog::open(partition_dir(dir, topic, partition), 0)
                .map_err(|e| (ErrorCode::KafkaStorageError, e.to_string())),
        }
    }

    /// In disk mode, writes the topic's file with `config` as its settings
    /// (passed in, as a config change saves before it is applied).
    fn save_meta(&self, topic: &Topic, config: &TopicConfig) -> Result<(), (ErrorCode, String)> {
        let Some(dir) = &self.config.data_dir else {
            return Ok(());
        };
        TopicMeta {
            name: topic.name.clone(),
            id: topic.id,
            partitions: topic.partition_count(),
            configs: config.entries.clone().into_iter().collect(),
        }
        .write(dir)
        .map_err(|e| (ErrorCode::KafkaStorageError, e.to_string()))
    }

    /// Broker addresses, running or not.
    pub(crate) fn brokers(&self) -> Vec<BrokerAddr> {
        read(&self.brokers).clone()
    }

    pub(crate) fn set_running(&self, node_id: i32, running: bool, port: Option<u16>) {
        let mut brokers = write(&self.brokers);
        if let Some(b) = brokers.iter_mut().find(|b| b.node_id == node_id) {
            b.running = running;
            if let Some(port) = port {
                b.port = port;
            }
        }
    }

    /// The broker `node_id`, if it exists.
    pub(crate) fn broker(&self, node_id: i32) -> Option<BrokerAddr> {
        read(&self.brokers)
            .iter()
            .find(|b| b.node_id == node_id)
            .cloned()
    }

    /// The topic called `name`.
    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        read(&self.topics).get(name).cloned()
    }

    /// The topic with id `id`.
    pub(crate) fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        read(&self.topics).values().find(|t| t.id == id).cloned()
    }

    /// Every topic, by name.
    pub(crate) fn topics(&self) -> Vec<Arc<Topic>> {
        read(&self.topics).values().cloned().collect()
    }

    /// A fresh producer id.
    pub(crate) fn allocate_producer_id(&self) -> i64 {
        self.next_producer_id.fetch_add(1, Ordering::AcqRel)
    }

    /// Creates a topic with `partitions` partitions spread over the brokers.
    pub(crate) fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(String, Option<String>)],
    ) -> Result<Arc<Topic>, (ErrorCode, String)> {
        validate_topic_name(name).map_err(|m| (ErrorCode::InvalidTopicException, m))?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err((
                ErrorCode::InvalidPartitions,
                format!("{partitions} partitions: must be 1 to {MAX_PARTITIONS}"),
            ));
        }
        let config = self.topic_config(configs)?;
        let mut topics = write(&self.topics);
        if topics.contains_key(name) {
            return Err((
                ErrorCode::TopicAlreadyExists,
                format!("topic `{name}` already exists"),
            ));
        }
        let brokers = read(&self.brokers).len().max(1) as i32;
        // Spread each topic's first partition over the brokers too.
        let first = (topics.len() as i32) % brokers;
        let mut parts = Vec::new();
        for p in 0..partitions {
            let log = self.new_log(name, p)?;
            parts.push(Arc::new(Partition::new(p, (first + p) % brokers, log)));
        }
        let topic = Arc::new(Topic {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            config: RwLock::new(config.clone()),
            partitions: RwLock::new(parts),
        });
        self.save_meta(&topic, &config)?;
        topics.insert(name.to_owned(), topic.clone());
        tracing::info!(topic = name, partitions, "created topic");
        Ok(topic)
    }

    /// The settings `configs` give a topic (names not set take the broker's
    /// defaults), or INVALID_CONFIG for a value this broker cannot honour.
    pub(crate) fn topic_config(
        &self,
        configs: &[(String, Option<String>)],
    ) -> Result<TopicConfig, (ErrorCode, String)> {
        let mut config = TopicConfig {
            retention_ms: self.config.retention_ms,
            retention_bytes: self.config.retention_bytes,
            entries: BTreeMap::new(),
        };
        for (name, value) in configs {
            if !crate::topic_config_names::is_known(name) {
                return Err((
                    ErrorCode::InvalidConfig,
                    format!("unknown topic config `{name}`"),
                ));
            }
            let Some(value) = value else { continue };
            let bad = |reason: &str| {
                (
                    ErrorCode::InvalidConfig,
                    format!("invalid value `{value}` for `{name}`: {reason}"),
                )
            };
            crate::topic_config_names::check_value(name, value).map_err(|reason| bad(&reason))?;
            match name.as_str() {
                "retention.ms" => {
                    config.retention_ms = value.parse().map_err(|_| bad("not an integer"))?
                }
                "retention.bytes" => {
                    config.retention_bytes = value.parse().map_err(|_| bad("not an integer"))?
                }
                "cleanup.policy" if value != "delete" => {
                    return Err(bad("only `delete` is supported by this broker"));
                }
                _ => {}
            }
            config.entries.insert(name.clone(), value.clone());
        }
        Ok(config)
    }

    /// Adds partitions to a topic, up to `count` in all.
    pub(crate) fn add_partitions(&self, name: &str, count: i32) -> Result<(), (ErrorCode, String)> {
        let topic = self.topic(name).ok_or_else(|| {
            (
                ErrorCode::UnknownTopicOrPartition,
                format!("topic `{name}` does not exist"),
            )
        })?;
        let mut parts = write(&topic.partitions);
        let current = parts.len() as i32;
        if count <= current || count > MAX_PARTITIONS {
            return Err((
                ErrorCode::InvalidPartitions,
                format!(
                    "topic `{name}` has {current} partitions; {count} is not more (or over {MAX_PARTITIONS})"
                ),
            ));
        }
        let brokers = read(&self.brokers).len().max(1) as i32;
        for p in current..count {
            let log = self.new_log(name, p)?;
            parts.push(Arc::new(Partition::new(p, p % brokers, log)));
        }
        drop(parts);
        self.save_meta(&topic, &topic.config())
    }

    /// Replaces a topic's explicit settings with what `edit` makes of the
    /// current ones, validated as at creation. With `validate_only` nothing
    /// changes. The change is saved (disk mode) before it is applied, and
    /// retention runs at once under the new limits.
    pub(crate) fn alter_topic_config(
        &self,
        name: &str,
        validate_only: bool,
        edit: impl FnOnce(
            &BTreeMap<String, String>,
        ) -> Result<BTreeMap<String, String>, (ErrorCode, String)>,
    ) -> Result<(), (ErrorCode, String)> {
        let topic = self.topic(name).ok_or_else(|| {
            (
                ErrorCode::UnknownTopicOrPartition,
                format!("topic `{name}` does not exist"),
            )
        })?;
        let updated = {
            // Held from read to write so concurrent changes do not lose each other.
            let mut current = write(&topic.config);
            let entries = edit(&current.entries)?;
            let configs: Vec<(String, Option<String>)> =
                entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
            let updated = self.topic_config(&configs)?;
            if validate_only {
                return Ok(());
            }
            self.save_meta(&topic, &updated)?;
            *current = updated.clone();
            updated
        };
        tracing::info!(topic = name, configs = ?updated.entries, "altered topic configs");
        let now_ms = crate::coordinator::txn::now_ms();
        topic.enforce_retention(now_ms);
        Ok(())
    }

    /// Deletes a topic.
    pub(crate) fn delete_topic(&self, name: &str) -> Option<Arc<Topic>> {
        let removed = write(&self.topics).remove(name);
        if let Some(topic) = &removed {
            for partition in topic.partitions() {
                lock(&partition.log).delete_files();
            }
            if let Some(dir) = &self.config.data_dir {
                let _ = std::fs::remove_file(TopicMeta::path(dir, name));
            }
            tracing::info!(topic = name, "deleted topic");
        }
        removed
    }
}

/// A topic's identity and settings, kept beside its partition directories
/// in disk mode as `<name>.topic` lines of `key=value`.
struct TopicMeta {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: Vec<(String, String)>,
}

impl TopicMeta {
    fn path(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
        dir.join(format!("{name}.topic"))
    }

    fn read(path: &std::path::Path) -> Option<Self> {
        let name = path.file_stem()?.to_str()?.to_owned();
        validate_topic_name(&name).ok()?;
        let text = std::fs::read_to_string(path).ok()?;
        let mut id = None;
        let mut partitions = None;
        let mut configs = Vec::new();
        for line in text.lines() {
            let (key, value) = line.split_once('=')?;
            match key {
                "id" => id = Uuid::parse_str(value).ok(),
                "partitions" => partitions = value.parse().ok(),
                _ => {
                    if let Some(name) = key.strip_prefix("config.") {
                        configs.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
        let partitions: i32 = partitions?;
        (1..=MAX_PARTITIONS).contains(&partitions).then_some(())?;
        Some(Self {
            name,
            id: id?,
            partitions,
            configs,
        })
    }

    /// Writes the file atomically (temporary file, then rename).
    fn write(&self, dir: &std::path::Path) -> std::io::Result<()> {
        let mut text = format!("id={}\npartitions={}\n", self.id, self.partitions);
        for (key, value) in &self.configs {
            text.push_str(&format!("config.{key}={value}\n"));
        }
        let path = Self::path(dir, &self.name);
        let temp = path.with_extension("topic.tmp");
        std::fs::write(&temp, text)?;
        std::fs::rename(temp, path)
    }
}
