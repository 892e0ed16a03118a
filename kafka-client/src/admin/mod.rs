//! The admin client: topics, partitions, configs, consumer groups and their
//! offsets, records, and the cluster, as Java's `Admin` offers them.
//!
//! Each call runs until it has an answer for every item it was given (each
//! topic, group or partition succeeds or fails on its own, as in Kafka) or
//! `default.api.timeout.ms` passes. Answers that say "ask again" (the
//! controller or coordinator moved or is loading, a leader changed, a
//! connection broke) are retried with a backoff (KIP-580) on the items they
//! concern only, so a topic created by the first attempt is not reported
//! as already existing by the second.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let cluster = kafka_broker::Cluster::start(Default::default()).await?;
//! use kafka_client::admin::{Admin, AdminSettings, NewTopic};
//!
//! let admin = Admin::new(AdminSettings::new(&cluster.bootstrap_servers()))?;
//! admin
//!     .create_topics(&[NewTopic::new("orders", 3)])
//!     .await?
//!     .all()?;
//! let described = admin.describe_topics(&["orders"]).await?.all()?;
//! assert_eq!(described["orders"].partitions.len(), 3);
//! # Ok(())
//! # }
//! ```

mod cluster;
mod config;
mod configs;
mod groups;
mod records;
mod topics;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::ErrorCode;
use tokio::time::Instant;

pub use cluster::ClusterDescription;
pub use config::{AdminConfig, AdminSettings};
pub use configs::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};
pub(crate) use groups::by_topic_indexes;
pub use groups::{ConsumerGroupDescription, GroupListing, MemberDescription, OffsetAndMetadata};
pub use records::{ListedOffset, OffsetSpec};
pub(crate) use topics::partitions_of;
pub use topics::{NewTopic, PartitionDescription, TopicDescription, TopicListing, TopicOptions};

use crate::network::{Backoff, Network};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// What a call did for each of its items (topics, groups, partitions,
/// config resources): each succeeds or fails on its own, as in Kafka.
#[derive(Debug)]
pub struct Outcome<K: Ord, V = ()> {
    items: BTreeMap<K, Result<V>>,
}

impl<K: Ord, V> Outcome<K, V> {
    /// The result for `key`, if the call was given it.
    pub fn get(&self, key: &K) -> Option<&Result<V>> {
        self.items.get(key)
    }

    /// Every item's value, or the first item's error (in key order).
    pub fn all(self) -> Result<BTreeMap<K, V>> {
        self.items
            .into_iter()
            .map(|(key, result)| result.map(|value| (key, value)))
            .collect()
    }

    /// Every item's result.
    pub fn into_map(self) -> BTreeMap<K, Result<V>> {
        self.items
    }

    /// The items and their results, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &Result<V>)> {
        self.items.iter()
    }
}

/// A client for cluster administration; cheap to share behind an `Arc`
/// (every call takes `&self`).
#[derive(Debug)]
pub struct Admin {
    network: Arc<Network>,
    settings: AdminSettings,
}

impl Admin {
    /// An admin client; nothing connects until the first call.
    pub fn new(settings: AdminSettings) -> Result<Self> {
        if settings.network.bootstrap_servers.is_empty() {
            return Err(Error::config("bootstrap.servers", "is required"));
        }
        let network = Network::new(settings.network.clone())?;
        Ok(Self { network, settings })
    }

    /// An admin client on another client's connections (the consumer's
    /// offset lookups); `settings.network` is not used.
    pub(crate) fn over(network: Arc<Network>, settings: AdminSettings) -> Self {
        Self { network, settings }
    }

    /// Closes the connections.
    pub fn close(&self) {
        self.network.close();
    }

    fn deadline(&self, timeout: Option<Duration>) -> Instant {
        Instant::now() + timeout.unwrap_or(self.settings.default_api_timeout)
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(self.settings.retry_backoff, self.settings.retry_backoff_max)
    }

    /// Runs `attempt` until it succeeds, fails for good, or `deadline`.
    async fn retrying<T, F, Fut>(&self, deadline: Instant, what: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut backoff = self.backoff();
        loop {
            let error = match tokio::time::timeout_at(deadline, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if e.retriable() => e,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(timed_out(what, "no answer")),
            };
            let pause = backoff.next_delay();
            if Instant::now() + pause >= deadline {
                return Err(timed_out(what, &error.to_string()));
            }
            tracing::debug!(%error, what, "admin call retried");
            tokio::time::sleep(pause).await;
        }
    }

    /// Runs `attempt` on the items still waiting for an answer until each
    /// has a final one, or `deadline`; items still waiting then fail with a
    /// timeout. An attempt that fails as a whole, and retriably (a
    /// connection, a coordinator lookup), is retried for all of them.
    async fn per_item<K, V, F, Fut>(
        &self,
        deadline: Instant,
        what: &str,
        items: impl IntoIterator<Item = K>,
        mut attempt: F,
    ) -> Result<Outcome<K, V>>
    where
        K: Ord + Clone,
        F: FnMut(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, Answer<V>)>>>,
    {
        let mut pending: Vec<K> = items.into_iter().collect();
        pending.sort();
        pending.dedup();
        let mut done = BTreeMap::new();
        let mut backoff = self.backoff();
        while !pending.is_empty() {
            let last_error = match tokio::time::timeout_at(deadline, attempt(pending.clone())).await
            {
                Ok(Ok(answers)) => {
                    let mut last = None;
                    let mut again = Vec::new();
                    for (key, answer) in answers {
                        if !pending.contains(&key) || done.contains_key(&key) {
                            continue;
                        }
                        match answer {
                            Answer::Again(e) => {
                                last = Some(e.to_string());
                                again.push(key);
                            }
                            Answer::Final(result) => {
                                done.insert(key, result);
                            }
                        }
                    }
                    for key in pending.drain(..) {
                        if !done.contains_key(&key) && !again.contains(&key) {
                            done.insert(
                                key,
                                Err(Error::Protocol(format!(
                                    "{what}: the answer left out an item that was asked"
                                ))),
                            );
                        }
                    }
                    pending = again;
                    last
                }
                Ok(Err(e)) if e.retriable() => Some(e.to_string()),
                Ok(Err(e)) => return Err(e),
                Err(_) => Some("no answer".to_owned()),
            };
            if pending.is_empty() {
                break;
            }
            let pause = backoff.next_delay();
            if Instant::now() + pause >= deadline {
                let reason = last_error.unwrap_or_else(|| "no answer".into());
                for key in pending.drain(..) {
                    done.insert(key, Err(timed_out(what, &reason)));
                }
                break;
            }
            tokio::time::sleep(pause).await;
        }
        Ok(Outcome { items: done })
    }
}

/// One item's answer in one attempt.
pub(crate) enum Answer<V> {
    /// Done: this is its result.
    Final(Result<V>),
    /// Ask again (the controller, coordinator or leader moved or is busy).
    Again(Error),
}

impl<V> Answer<V> {
    /// `result`, to be asked again if it failed with one of `again`.
    fn of(result: Result<V>, again: &[ErrorCode]) -> Self {
        match result {
            Err(e) if e.code().is_some_and(|c| again.contains(&c)) => Answer::Again(e),
            result => Answer::Final(result),
        }
    }
}

/// A request that failed before any item had an answer: asked again if
/// retrying can help (a broken connection, a timeout), else final.
fn failed<V>(error: Error) -> Answer<V> {
    if error.retriable() {
        Answer::Again(error)
    } else {
        Answer::Final(Err(error))
    }
}

/// Codes that mean "the group's coordinator is elsewhere or not ready".
const COORDINATOR_MOVED: &[ErrorCode] = &[
    ErrorCode::NotCoordinator,
    ErrorCode::CoordinatorNotAvailable,
    ErrorCode::CoordinatorLoadInProgress,
];

/// Codes that mean "the partition's leader is elsewhere or not ready".
const LEADER_MOVED: &[ErrorCode] = &[
    ErrorCode::NotLeaderOrFollower,
    ErrorCode::LeaderNotAvailable,
    ErrorCode::RequestTimedOut,
];

fn timed_out(what: &str, last: &str) -> Error {
    Error::Timeout(format!(
        "{what}: not done within the call's timeout; last: {last}"
    ))
}

fn code(raw: i16) -> ErrorCode {
    ErrorCode::from_code(raw).unwrap_or(ErrorCode::UnknownServerError)
}

/// `Ok(())` for no error, else the code as an error, with the broker's
/// message when it sent one.
fn check(raw: i16, message: Option<&str>, context: &str) -> Result<()> {
    let code = code(raw);
    if code.is_ok() {
        return Ok(());
    }
    Err(Error::kafka(
        code,
        match message {
            Some(m) if !m.is_empty() => format!("{context}: {m}"),
            _ => context.to_owned(),
        },
    ))
}

/// `partitions` grouped by topic, each made into a request entry by `entry`.
fn by_topic<T>(
    partitions: &[TopicPartition],
    entry: impl Fn(&TopicPartition) -> T,
) -> Vec<(String, Vec<T>)> {
    crate::by_topic::by_topic(partitions.iter().map(|tp| (tp.topic.as_str(), entry(tp))))
}

fn millis(deadline: Instant) -> i32 {
    let left = deadline.saturating_duration_since(Instant::now());
    i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
}
