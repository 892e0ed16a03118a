//! Connections to the cluster and what the client knows of it.
//!
//! [`Network`] keeps at most one [`Connection`] per broker, opened on first
//! use and again after a failure with exponential backoff and jitter,
//! closed when idle for `connections.max.idle.ms`. Host names are resolved
//! on every connect. Metadata is fetched from any reachable broker (the
//! bootstrap servers first, before any metadata is known), refreshed when
//! it is older than `metadata.max.age.ms` and whenever a caller reports
//! that it is stale (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a
//! lost connection).
//!
//! TLS and SASL (`security.protocol`, see [`Security`]) happen inside
//! connecting; nothing above it changes.

mod backoff;
mod connection;
mod coordinator;
mod metadata;
mod sasl;
mod scram;
mod security;
pub mod versions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

pub use backoff::Backoff;
pub use connection::{Connection, PendingResponse};
pub use coordinator::{CoordinatorKind, find_coordinator};
pub use metadata::{BrokerInfo, ClusterMetadata, PartitionInfo, TopicInfo};
pub(crate) use security::PROPERTIES as SECURITY_PROPERTIES;
pub use security::{SaslMechanism, Security, SecurityProtocol};
pub(crate) use security::{set as set_security_property, value_shown as security_value_shown};

use crate::{Error, Result};

/// The settings the network layer needs (a subset of the client configs).
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// `bootstrap.servers`, as `host:port` entries.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`.
    pub client_id: Option<String>,
    /// `request.timeout.ms`.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`.
    pub connection_setup_timeout: Duration,
    /// `reconnect.backoff.ms`.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`.
    pub reconnect_backoff_max: Duration,
    /// `connections.max.idle.ms`.
    pub connections_max_idle: Duration,
    /// `metadata.max.age.ms`.
    pub metadata_max_age: Duration,
    /// Whether Metadata may create missing topics (`allow.auto.create.topics`).
    pub allow_auto_create_topics: bool,
    /// `security.protocol` and the `ssl.*` and `sasl.*` settings.
    pub security: Security,
}

impl NetworkConfig {
    /// Java's defaults, for `bootstrap`.
    pub fn new(bootstrap_servers: Vec<String>) -> Self {
        Self {
            bootstrap_servers,
            client_id: None,
            request_timeout: Duration::from_secs(30),
            connection_setup_timeout: Duration::from_secs(10),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            connections_max_idle: Duration::from_secs(540),
            metadata_max_age: Duration::from_secs(300),
            allow_auto_create_topics: true,
            security: Security::new(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    connection: Option<Connection>,
    backoff: Backoff,
    next_attempt: Instant,
    last_used: Instant,
}

/// Connections to every broker, and the cluster metadata.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
    /// By address, so bootstrap servers and brokers share connections.
    slots: Mutex<HashMap<String, Slot>>,
    metadata: RwLock<Arc<ClusterMetadata>>,
    /// Topics metadata is kept for.
    topics: Mutex<Vec<String>>,
    /// Serialises refreshes so a burst of errors causes one Metadata request.
    refreshing: tokio::sync::Mutex<()>,
    /// Tells the idle sweep to stop when the network is dropped.
    shutdown: Arc<tokio::sync::Notify>,
    /// TLS and SASL, built from `config.security`.
    connector: security::Connector,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Network {
    /// A network layer; nothing connects until first used. Starts the idle
    /// sweep, which ends when the returned `Arc` is dropped.
    pub fn new(config: NetworkConfig) -> Result<Arc<Self>> {
        if config.bootstrap_servers.is_empty() {
            return Err(Error::config("bootstrap.servers", "no servers given"));
        }
        let connector = security::Connector::new(&config.security)?;
        let network = Arc::new(Self {
            config,
            connector,
            slots: Mutex::new(HashMap::new()),
            metadata: RwLock::new(Arc::new(ClusterMetadata::default())),
            topics: Mutex::new(Vec::new()),
            refreshing: tokio::sync::Mutex::new(()),
            shutdown: Arc::new(tokio::sync::Notify::new()),
        });
        tokio::spawn(maintain(Arc::downgrade(&network), network.shutdown.clone()));
        Ok(network)
    }

    /// The settings.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// A connection to `addr`, reused if open; waits out the backoff of a
    /// recent failure first.
    pub async fn connect(&self, addr: &str) -> Result<Connection> {
        let wait = {
            let mut slots = lock(&self.slots);
            let now = Instant::now();
            let slot = slots.entry(addr.to_owned()).or_insert_with(|| Slot {
                connection: None,
                backoff: Backoff::new(
                    self.config.reconnect_backoff,
                    self.config.reconnect_backoff_max,
                ),
                next_attempt: now,
                last_used: now,
            });
            slot.last_used = now;
            if let Some(connection) = slot.connection.as_ref().filter(|c| !c.is_closed()) {
                return Ok(connection.clone());
            }
            slot.next_attempt.saturating_duration_since(now)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let result = Connection::open(
            addr,
            self.config.client_id.as_deref(),
            self.config.connection_setup_timeout,
            self.config.request_timeout,
            &self.connector,
        )
        .await;
        let mut slots = lock(&self.slots);
        let Some(slot) = slots.get_mut(addr) else {
            return result;
        };
        match &result {
            Ok(connection) => {
                slot.backoff.reset();
                // Another task may have connected meanwhile: keep one.
                if let Some(existing) = slot.connection.as_ref().filter(|c| !c.is_closed()) {
                    connection.close();
                    return Ok(existing.clone());
                }
                slot.connection = Some(connection.clone());
            }
            Err(e) => {
                let delay = slot.backoff.next_delay();
                slot.next_attempt = Instant::now() + delay;
                tracing::debug!(broker = addr, error = %e, ?delay, "connect failed");
            }
        }
        result
    }

    /// The open connection to broker `node_id`, if there is one; never
    /// connects.
    pub fn open_connection(&self, node_id: i32) -> Option<Connection> {
        let addr = self.metadata().brokers.get(&node_id)?.addr.clone();
        let mut slots = lock(&self.slots);
        let slot = slots.get_mut(&addr)?;
        slot.last_used = Instant::now();
        slot.connection.as_ref().filter(|c| !c.is_closed()).cloned()
    }

    /// A connection to broker `node_id`, by the current metadata.
    pub async fn broker(&self, node_id: i32) -> Result<Connection> {
        let addr = self
            .metadata()
            .brokers
            .get(&node_id)
            .map(|b| b.addr.clone())
            .ok_or_else(|| Error::Network {
                broker: format!("node {node_id}"),
                reason: "not in the cluster metadata".into(),
            })?;
        self.connect(&addr).await
    }

    /// A connection to any reachable broker: known brokers first, then the
    /// bootstrap servers.
    pub async fn any(&self) -> Result<Connection> {
        let mut candidates: Vec<String> = self
            .metadata()
            .brokers
            .values()
            .map(|b| b.addr.clone())
            .collect();
        candidates.sort();
        for addr in &self.config.bootstrap_servers {
            if !candidates.contains(addr) {
                candidates.push(addr.clone());
            }
        }
        // An open connection beats a new one.
        {
            let slots = lock(&self.slots);
            if let Some(open) = candidates.iter().find_map(|a| {
                slots
                    .get(a)
                    .and_then(|s| s.connection.as_ref())
                    .filter(|c| !c.is_closed())
            }) {
                return Ok(open.clone());
            }
        }
        let mut last = None;
        for addr in &candidates {
            match self.connect(addr).await {
                Ok(connection) => return Ok(connection),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::config("bootstrap.servers", "no servers given")))
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.metadata
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds topics to those metadata is kept for.
    pub fn track(&self, topics: &[&str]) {
        let mut tracked = lock(&self.topics);
        for topic in topics {
            if !tracked.iter().any(|t| t == topic) {
                tracked.push((*topic).to_owned());
            }
        }
    }

    /// Fetches metadata for the tracked topics now.
    pub async fn refresh(&self) -> Result<Arc<ClusterMetadata>> {
        let before = self.metadata().fetched_at;
        let _one_at_a_time = self.refreshing.lock().await;
        // Someone else refreshed while we waited: that answer is fresh enough.
        let current = self.metadata();
        if current.fetched_at > before {
            return Ok(current);
        }
        let topics = lock(&self.topics).clone();
        let allow_auto_create = self.config.allow_auto_create_topics;
        let mut last = None;
        for _ in 0..3 {
            let connection = match self.any().await {
                Ok(c) => c,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let answer = match connection.version_for::<MetadataRequest>() {
                Ok(version) => {
                    let request = metadata_request(Some(&topics), allow_auto_create, version);
                    connection.call(&request, version).await
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(response) => return Ok(self.apply(&response)),
                Err(e) => {
                    connection.close();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Timeout("metadata".into())))
    }

    fn apply(&self, response: &MetadataResponse) -> Arc<ClusterMetadata> {
        let mut guard = self.metadata.write().unwrap_or_else(|e| e.into_inner());
        let next = Arc::new(ClusterMetadata::merge(&guard, response));
        *guard = next.clone();
        next
    }

    /// The Metadata answer for `topics` (every topic for `None`), asked of
    /// any broker, never creating a topic, and left out of the cache: for
    /// listings (the admin client, a consumer's pattern subscription) that
    /// must not make the cache track every topic.
    pub async fn describe_topics(&self, topics: Option<&[String]>) -> Result<MetadataResponse> {
        let connection = self.any().await?;
        let version = connection.version_for::<MetadataRequest>()?;
        let request = metadata_request(topics, false, version);
        connection.call(&request, version).await
    }

    /// Metadata that covers `topic` and is younger than `metadata.max.age.ms`,
    /// refreshing if needed.
    pub async fn metadata_for(&self, topic: &str) -> Result<Arc<ClusterMetadata>> {
        self.track(&[topic]);
        let current = self.metadata();
        let fresh = current.fetched_at.elapsed() < self.config.metadata_max_age;
        if fresh && current.topics.contains_key(topic) {
            return Ok(current);
        }
        self.refresh().await
    }

    /// Closes every connection.
    pub fn close(&self) {
        for slot in lock(&self.slots).values_mut() {
            if let Some(connection) = slot.connection.take() {
                connection.close();
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.close();
        // A stored permit: the sweep stops even if it is not waiting yet.
        self.shutdown.notify_one();
    }
}

/// Closes connections unused for `connections.max.idle.ms`, and refreshes
/// the metadata of the tracked topics once it is older than
/// `metadata.max.age.ms`, as the Java client does: leadership that moved
/// without any request failing (a preferred leader election, new
/// partitions) is seen within that age even by an idle client.
async fn maintain(network: Weak<Network>, shutdown: Arc<tokio::sync::Notify>) {
    let period = match network.upgrade() {
        Some(n) => (n.config.connections_max_idle / 4)
            .min(n.config.metadata_max_age / 4)
            .max(Duration::from_millis(100)),
        None => return,
    };
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.notified() => return,
        }
        let Some(network) = network.upgrade() else {
            return;
        };
        let idle = network.config.connections_max_idle;
        for (addr, slot) in lock(&network.slots).iter_mut() {
            if slot.last_used.elapsed() > idle
                && let Some(connection) = slot.connection.take()
            {
                tracing::debug!(broker = addr, "closing idle connection");
                connection.close();
            }
        }
        let stale = network.metadata().fetched_at.elapsed() >= network.config.metadata_max_age;
        if stale && !lock(&network.topics).is_empty() {
            // Bounded by the request timeout; a failure is retried next tick.
            let refreshed = tokio::select! {
                refreshed = network.refresh() => refreshed,
                _ = shutdown.notified() => return,
            };
            if let Err(e) = refreshed {
                tracing::debug!(error = %e, "periodic metadata refresh failed");
            }
        }
    }
}

/// A Metadata request for `topics` (all topics for `None`) in the shape
/// `version` carries: v0 says "all topics" with an empty list, and before
/// v4 auto-creation is the broker's own setting, so the field is left out
/// (as Java's client does) rather than failing to encode.
fn metadata_request(
    topics: Option<&[String]>,
    allow_auto_create: bool,
    version: i16,
) -> MetadataRequest {
    let topics = match topics {
        Some(names) => Some(
            names
                .iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name.clone()),
                    ..Default::default()
                })
                .collect(),
        ),
        None if version == 0 => Some(Vec::new()),
        None => None,
    };
    MetadataRequest {
        topics,
        allow_auto_topic_creation: allow_auto_create || version < 4,
        ..Default::default()
    }
}
