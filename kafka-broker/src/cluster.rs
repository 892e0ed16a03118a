//! Several brokers in one process, each with its own TCP listener, sharing
//! one [`Shared`] state.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use kafka_protocol::ErrorCode;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::BrokerConfig;
use crate::faults::{FaultAction, FaultHandle, FaultScope, Faults};
use crate::state::{BrokerAddr, Shared, lock};

/// Errors of the cluster's own API (not of requests from clients).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A listener could not be bound or accept failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// A setting the cluster cannot run with.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A broker id that does not exist.
    #[error("no broker {0}")]
    UnknownBroker(i32),
    /// A Kafka error, e.g. creating a topic that exists.
    #[error("{code}: {message}")]
    Kafka {
        /// Kafka's code for it.
        code: ErrorCode,
        /// Details.
        message: String,
    },
}

/// One broker of a running cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    /// The broker id (0-based).
    pub id: i32,
    /// Where it listens.
    pub addr: SocketAddr,
    /// False while stopped by [`Cluster::stop_broker`].
    pub running: bool,
}

#[derive(Debug)]
struct Slot {
    id: i32,
    addr: SocketAddr,
    task: Option<JoinHandle<()>>,
}

/// A running cluster of in-process brokers. Dropping it stops every
/// listener and connection.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), kafka_broker::ClusterError> {
/// use kafka_broker::{BrokerConfig, Cluster};
///
/// let mut config = BrokerConfig::default();
/// config.brokers = 3;
/// let cluster = Cluster::start(config).await?;
/// assert_eq!(cluster.bootstrap_servers().split(',').count(), 3);
/// cluster.create_topic("orders", 6)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Cluster {
    shared: Arc<Shared>,
    slots: Mutex<Vec<Slot>>,
    retention: JoinHandle<()>,
    transactions: JoinHandle<()>,
}

impl Cluster {
    /// Binds every broker's listener and starts serving. Returns once all of
    /// them accept connections.
    pub async fn start(config: BrokerConfig) -> Result<Self, ClusterError> {
        if config.brokers == 0 || config.brokers > 64 {
            return Err(ClusterError::Config(format!(
                "{} brokers: must be 1 to 64",
                config.brokers
            )));
        }
        // Credentials are derived before any port is bound, so a bad setting
        // fails the start without a listener having been up.
        let sasl = config
            .sasl
            .as_ref()
            .map(crate::security::sasl::SaslServer::new)
            .transpose()
            .map_err(|e| ClusterError::Config(e.to_string()))?
            .map(Arc::new);
        let mut listeners = Vec::new();
        for i in 0..config.brokers {
            let port = if config.port == 0 {
                0
            } else {
                config
                    .port
                    .checked_add(i as u16)
                    .ok_or_else(|| ClusterError::Config("port range overflows".into()))?
            };
            listeners.push(TcpListener::bind((config.host, port)).await?);
        }
        let host = config.host.to_string();
        let brokers = config.brokers as i32;
        let shared = Arc::new(Shared::open(config, brokers, sasl)?);
        let mut slots = Vec::new();
        {
            let mut brokers = shared.brokers.write().unwrap_or_else(|e| e.into_inner());
            for (i, listener) in listeners.iter().enumerate() {
                let addr = listener.local_addr()?;
                brokers.push(BrokerAddr {
                    node_id: i as i32,
                    host: host.clone(),
                    port: addr.port(),
                    running: true,
                });
                slots.push(Slot {
                    id: i as i32,
                    addr,
                    task: None,
                });
            }
        }
        for (slot, listener) in slots.iter_mut().zip(listeners) {
            slot.task = Some(tokio::spawn(accept_loop(listener, shared.clone(), slot.id)));
        }
        tracing::info!(brokers = slots.len(), "cluster started");
        let retention = tokio::spawn(enforce_retention(Arc::downgrade(&shared)));
        let transactions = tokio::spawn(crate::coordinator::txn::drive_transactions(
            Arc::downgrade(&shared),
            shared.txns.prepared(),
            shared.faults.released(),
        ));
        Ok(Self {
            shared,
            slots: Mutex::new(slots),
            retention,
            transactions,
        })
    }

    /// `host:port` of every broker, comma-separated: the `bootstrap.servers` value.
    pub fn bootstrap_servers(&self) -> String {
        lock(&self.slots)
            .iter()
            .map(|s| s.addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The brokers and their state.
    pub fn brokers(&self) -> Vec<Broker> {
        lock(&self.slots)
            .iter()
            .map(|s| Broker {
                id: s.id,
                addr: s.addr,
                running: s.task.is_some(),
            })
            .collect()
    }

    /// What the brokers' incremental fetch sessions (KIP-227) did so far.
    pub fn fetch_session_stats(&self) -> crate::FetchSessionStats {
        self.shared.fetch_sessions.stats()
    }

    /// The fault rules, to add any combination of scope and action.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Applies the next `count` requests of `api` but drops their responses,
    /// silencing each connection that carried one ([`FaultAction::DropResponse`]).
    pub fn drop_responses(&self, api: kafka_protocol::ApiKey, count: u32) -> FaultHandle {
        self.shared
            .faults
            .add(FaultScope::api(api).times(count), FaultAction::DropResponse)
    }

    /// Delays every response to `api` by `delay` until the handle is removed.
    pub fn delay_responses(
        &self,
        api: kafka_protocol::ApiKey,
        delay: std::time::Duration,
    ) -> FaultHandle {
        self.shared
            .faults
            .add(FaultScope::api(api), FaultAction::Delay(delay))
    }

    /// Answers the next `count` requests of `api` with `code` without
    /// applying them (see [`FaultAction::Error`]).
    pub fn inject_error(
        &self,
        api: kafka_protocol::ApiKey,
        code: ErrorCode,
        count: u32,
    ) -> FaultHandle {
        self.shared
            .faults
            .add(FaultScope::api(api).times(count), FaultAction::Error(code))
    }

    /// Keeps the transactions of `transactional_id` in PrepareCommit /
    /// PrepareAbort (EndTxn answered, markers not written) until the handle
    /// is removed (see [`Faults::hold_txn_completion`]).
    pub fn hold_txn_completion(&self, transactional_id: &str) -> FaultHandle {
        self.shared.faults.hold_txn_completion(transactional_id)
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) -> Result<(), ClusterError> {
        self.shared
            .create_topic(name, partitions, &[])
            .map(|_| ())
            .map_err(|(code, message)| ClusterError::Kafka { code, message })
    }

    /// Adds partitions to a topic, up to `count` in all (CreatePartitions).
    pub fn add_partitions(&self, name: &str, count: i32) -> Result<(), ClusterError> {
        self.shared
            .add_partitions(name, count)
            .map_err(|(code, message)| ClusterError::Kafka { code, message })
    }

    /// Moves the leadership of a partition to `broker`, bumping its leader
    /// epoch: clients talking to the old leader get NOT_LEADER_OR_FOLLOWER.
    pub fn move_leader(
        &self,
        topic: &str,
        partition: i32,
        broker: i32,
    ) -> Result<(), ClusterError> {
        if self.shared.broker(broker).is_none() {
            return Err(ClusterError::UnknownBroker(broker));
        }
        let unknown = || ClusterError::Kafka {
            code: ErrorCode::UnknownTopicOrPartition,
            message: format!("{topic}-{partition} does not exist"),
        };
        let part = self
            .shared
            .topic(topic)
            .ok_or_else(unknown)?
            .partition(partition)
            .ok_or_else(unknown)?;
        part.set_leader(broker);
        Ok(())
    }

    /// Stops a broker: its listener and connections close; partitions it
    /// leads are unavailable until it restarts.
    pub fn stop_broker(&self, id: i32) -> Result<(), ClusterError> {
        let mut slots = lock(&self.slots);
        let slot = slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(ClusterError::UnknownBroker(id))?;
        if let Some(task) = slot.task.take() {
            task.abort();
        }
        self.shared.set_running(id, false, None);
        tracing::info!(broker = id, "broker stopped");
        Ok(())
    }

    /// Restarts a stopped broker on its old address.
    pub async fn restart_broker(&self, id: i32) -> Result<(), ClusterError> {
        let addr = {
            let slots = lock(&self.slots);
            let slot = slots
                .iter()
                .find(|s| s.id == id)
                .ok_or(ClusterError::UnknownBroker(id))?;
            if slot.task.is_some() {
                return Ok(());
            }
            slot.addr
        };
        let listener = TcpListener::bind(addr).await?;
        let task = tokio::spawn(accept_loop(listener, self.shared.clone(), id));
        if let Some(slot) = lock(&self.slots).iter_mut().find(|s| s.id == id) {
            slot.task = Some(task);
        }
        self.shared.set_running(id, true, None);
        tracing::info!(broker = id, "broker restarted");
        Ok(())
    }

    /// Serves one request frame (without its size prefix) on broker 0 as a
    /// connection would, without a socket: the response frame with its size
    /// prefix, `None` when none is sent, or why the connection would close.
    /// For fuzzing the request path in-process.
    #[doc(hidden)]
    pub async fn handle_frame(&self, frame: bytes::Bytes) -> Result<Option<bytes::Bytes>, String> {
        crate::connection::handle_one(self.shared.clone(), 0, frame).await
    }

    /// Stops every broker and waits for their tasks to end.
    pub async fn shutdown(self) {
        let tasks: Vec<JoinHandle<()>> = lock(&self.slots)
            .iter_mut()
            .filter_map(|s| s.task.take())
            .collect();
        self.retention.abort();
        self.transactions.abort();
        // EndTxn answered success for these: their markers are owed before
        // the logs are left (unless a test holds them).
        self.shared.txns.complete_prepared(&self.shared);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.retention.abort();
        self.transactions.abort();
        for slot in lock(&self.slots).iter_mut() {
            if let Some(task) = slot.task.take() {
                task.abort();
            }
        }
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, which
/// aborts every connection of this broker.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, broker_id: i32) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(crate::connection::serve(shared.clone(), broker_id, stream, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(broker_id, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Applies `retention.ms` and `retention.bytes` to every partition once a
/// second, until the cluster is gone.
async fn enforce_retention(shared: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for topic in shared.topics() {
            topic.enforce_retention(now_ms);
        }
    }
}
