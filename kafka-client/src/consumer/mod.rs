//! The consumer: manually assigned partitions (`assign`, starting at the
//! committed offsets of `group.id` when one is set) or a consumer
//! group (`subscribe`: join, the leader's range, round-robin or
//! cooperative-sticky assignment, background heartbeats,
//! `max.poll.interval.ms`, static membership), `poll` or a `Stream`,
//! `seek`, `position`, `pause`/`resume`, offsets for times,
//! `auto.offset.reset`, commits (sync, async, automatic) and
//! `read_committed`, rebalance events (`poll_events`) and counters
//! (`stats`).
//!
//! Rebalancing is eager with `range` and `roundrobin` (every partition is
//! revoked before rejoining) and incremental with `cooperative-sticky`
//! alone (KIP-429): only partitions that move are revoked, the others keep
//! their positions and buffered records across the rebalance, and a
//! partition that moves is assigned to its new owner in a follow-up
//! rebalance, after its old owner revoked it. Listing several strategies
//! (`cooperative-sticky,range`) offers them all in JoinGroup; the
//! coordinator picks one every member supports, and, as in Java, the
//! consumer rebalances cooperatively only if all of them can.
//!
//! The fetcher (`fetcher.rs`) keeps what it fetched as undecoded batches,
//! zero-copy slices of the fetch responses, and decodes records only as
//! they are handed out (CRC checked with `check.crcs`, one batch
//! decompressed at a time), so memory follows the fetch limits whatever the
//! compression ratio. Each poll sends the next fetch for the partitions it
//! drained before returning (at most one fetch in flight per broker, none
//! for a partition holding `max.partition.fetch.bytes` or while the buffer
//! holds `fetch.max.bytes`), so the broker's answer arrives while the
//! application processes; an answer for a partition whose position moved
//! meanwhile (seek, reset, reassignment, rebalance) is dropped.
//!
//! Keys and values are zero-copy slices of the fetch response. With `read_committed`, fetches
//! stop at the last stable offset, records of aborted transactions are
//! dropped using the response's aborted-transaction list, and control
//! records never surface.

pub mod assignor;
mod config;
mod fetch_request;
mod fetch_session;
mod fetch_watch;
mod fetcher;
mod group;
mod heartbeat;
mod sticky;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::records::Headers;
pub use kafka_protocol::records::TimestampType;
use kafka_protocol::{ApiKey, ErrorCode};
use tracing::Instrument;

pub use config::ConsumerConfig;

pub use crate::admin::OffsetAndMetadata;
use crate::admin::{
    Admin, AdminSettings, Answer, ListedOffset, OffsetSpec, PartitionDescription, partitions_of,
};
use crate::network::{Backoff, Network, NetworkConfig};
use crate::topic_partition::TopicPartition;
use crate::{Error, Result};

/// Where to start when a partition has no valid position
/// (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The first offset still stored.
    Earliest,
    /// The end of the log: only new records.
    Latest,
    /// Fail instead.
    None,
}

impl OffsetReset {
    /// The `auto.offset.reset` value: `earliest`, `latest` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            OffsetReset::Earliest => "earliest",
            OffsetReset::Latest => "latest",
            OffsetReset::None => "none",
        }
    }
}

/// Which records a consumer sees (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    /// Everything up to the high watermark, aborted transactions included.
    ReadUncommitted,
    /// Only committed data, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The `isolation.level` value: `read_uncommitted` or `read_committed`.
    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read_uncommitted",
            IsolationLevel::ReadCommitted => "read_committed",
        }
    }
}

/// The consumer's settings, typed; Java's defaults.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// The network layer's settings.
    pub network: NetworkConfig,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level` (default read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// `max.poll.records` (default 500).
    pub max_poll_records: usize,
    /// `fetch.min.bytes` (default 1).
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes` (default 52428800).
    pub fetch_max_bytes: i32,
    /// `fetch.max.wait.ms` (default 500).
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes` (default 1048576).
    pub max_partition_fetch_bytes: i32,
    /// `check.crcs` (default true).
    pub check_crcs: bool,
    /// `group.id`, needed by [`Consumer::subscribe`] and commits.
    pub group_id: Option<String>,
    /// `group.instance.id` for static membership.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (default 45000).
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3000).
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 300000), sent as the rebalance timeout.
    pub max_poll_interval: Duration,
    /// The assignors offered to the group, preferred first
    /// (`partition.assignment.strategy`, default `range,cooperative-sticky`
    /// as in Java 3.x). The coordinator picks one all members offer and the
    /// leader runs it. The consumer rebalances cooperatively (KIP-429) only
    /// if every one of them supports it, i.e. with `cooperative-sticky`
    /// alone.
    pub assignors: Vec<Arc<dyn assignor::Assignor>>,
    /// `enable.auto.commit` (default true, as in Java). Workers that must
    /// not lose records should turn it off and commit after processing:
    /// auto-commit commits what `poll` handed out, processed or not.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5000).
    pub auto_commit_interval: Duration,
    /// `default.api.timeout.ms` (default 60000): how long
    /// [`Consumer::offsets_for_times`], [`Consumer::beginning_offsets`] and
    /// [`Consumer::end_offsets`] may take, retries included.
    pub default_api_timeout: Duration,
    /// `retry.backoff.ms` (default 100): the first pause before asking
    /// again for offsets a lookup could not get (a leader moved or is
    /// unreachable).
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (default 1000): the longest such pause.
    pub retry_backoff_max: Duration,
}

impl ConsumerSettings {
    /// Java's defaults for the given bootstrap servers.
    pub fn new(bootstrap_servers: &str) -> Self {
        let mut network = NetworkConfig::new(
            bootstrap_servers
                .split(',')
                .map(|s| s.trim().to_owned())
                .collect(),
        );
        network.allow_auto_create_topics = false;
        Self {
            network,
            auto_offset_reset: OffsetReset::Latest,
            isolation_level: IsolationLevel::ReadUncommitted,
            max_poll_records: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 52_428_800,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1_048_576,
            check_crcs: true,
            group_id: None,
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![
                Arc::new(assignor::RangeAssignor),
                Arc::new(assignor::CooperativeStickyAssignor),
            ],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            default_api_timeout: Duration::from_secs(60),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

/// A record handed out by [`Consumer::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp (ms since the epoch).
    pub timestamp: i64,
    /// Who set the timestamp: the producer (create time) or the broker
    /// (log append time, the topic's `message.timestamp.type`).
    pub timestamp_type: TimestampType,
    /// The key (a slice of the fetched bytes).
    pub key: Option<Bytes>,
    /// The value (a slice of the fetched bytes).
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Headers,
    /// The leader epoch of the batch, or -1.
    pub leader_epoch: i32,
}

/// What identifies this consumer in its group, as Java's
/// `KafkaConsumer.groupMetadata()` returns it: the transactional producer's
/// `send_offsets_to_transaction` sends it along so that the coordinator
/// fences offsets committed by a member of an older generation (KIP-447).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// `group.id`; empty for a consumer without one (where Java's
    /// `groupMetadata()` throws `InvalidGroupIdException`).
    pub group_id: String,
    /// The generation joined last; -1 without a group or before joining.
    pub generation_id: i32,
    /// The member id the coordinator gave; empty without a group or before
    /// joining.
    pub member_id: String,
    /// `group.instance.id`, for a static member.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Java's values for a consumer that has not joined: generation -1 and
    /// an empty member id.
    fn unjoined(group_id: Option<&str>, group_instance_id: Option<&str>) -> Self {
        Self {
            group_id: group_id.unwrap_or_default().to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: group_instance_id.map(str::to_owned),
        }
    }

    fn of(group: &group::Group) -> Self {
        Self {
            group_id: group.group_id().to_owned(),
            generation_id: group.generation(),
            member_id: group.member_id().to_owned(),
            group_instance_id: group.instance_id().map(str::to_owned),
        }
    }
}

/// A consumer of manually assigned partitions.
#[derive(Debug)]
pub struct Consumer {
    settings: ConsumerSettings,
    network: Arc<Network>,
    /// Offset and topic lookups (an admin client on `network`).
    admin: Admin,
    /// Per assigned partition, where its next fetch starts (past what is
    /// buffered); `None` until looked up.
    positions: BTreeMap<TopicPartition, Option<i64>>,
    /// Fetched and not handed out, undecoded.
    buffered: fetcher::Buffer,
    /// At most one fetch per broker, by broker id.
    in_flight: HashMap<i32, fetcher::InFlight>,
    /// A fetch failed in a way that a metadata refresh may cure.
    refresh_due: bool,
    /// Fetch errors and surprises reported so far.
    watch: fetch_watch::FetchWatch,
    /// Incremental fetch sessions (KIP-227), by broker id.
    sessions: HashMap<i32, fetch_session::FetchSession>,
    /// A decoding failure met while handing out, reported by the next poll.
    failed: Option<Error>,
    /// The offset after the last record handed out, per partition: what
    /// `commit` commits.
    consumed: BTreeMap<TopicPartition, i64>,
    group: Option<group::Group>,
    subscription: Vec<String>,
    /// Partitions whose next position comes from the start or the end of
    /// the log (`seek_to_beginning`, `seek_to_end`), until a lookup gets it.
    reset_to: HashMap<TopicPartition, OffsetSpec>,
    /// Partitions assigned by hand (with a `group.id`) whose position is to
    /// come from the group's committed offset.
    awaiting_committed: std::collections::BTreeSet<TopicPartition>,
    /// The commit in flight (`commit_async`) holds a standalone group.
    standalone_in_flight: bool,
    /// After a position lookup that left partitions without one: the
    /// backoff and when to look again.
    reset_backoff: Option<(Backoff, tokio::time::Instant)>,
    paused: std::collections::BTreeSet<TopicPartition>,
    last_auto_commit: tokio::time::Instant,
    /// The group identity as of the last join or leave, kept here so that
    /// `group_metadata` answers even while the group is busy elsewhere.
    metadata: ConsumerGroupMetadata,
    /// The last commit `commit_async` started. While it runs it owns the
    /// group (taken out of `group`) and hands it back when done; see
    /// `commit_async` for why.
    commit_in_flight: Option<tokio::task::JoinHandle<Option<group::Group>>>,
    /// `poll_events` has reported the revocation of the current
    /// assignment (eager) or its loss (cooperative); the next call rejoins.
    revocation_reported: bool,
    /// Cooperative rebalancing: partitions just revoked, whose consumed
    /// offsets stay committable until the application's next call (its
    /// chance to commit them), then are forgotten so that a late commit
    /// cannot move a new owner's committed offset back.
    revoking: Vec<TopicPartition>,
    /// Cooperative rebalancing: the `Assigned` event that follows a
    /// `Revoked` one from the same rebalance.
    pending_assigned: Option<Vec<TopicPartition>>,
    /// `subscribe` changed the topics of a member: the next poll rejoins.
    resubscribed: bool,
    /// The pattern of `subscribe_pattern`, if that is the subscription.
    pattern: Option<TopicPattern>,
    counters: Counters,
}

/// A `subscribe_pattern` subscription.
#[derive(Debug)]
struct TopicPattern {
    regex: regex::Regex,
    /// When to list the cluster's topics next (`None`: at the next poll).
    next_listing: Option<tokio::time::Instant>,
}

/// A snapshot of a consumer's counters ([`Consumer::stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Records handed to the application.
    pub records_consumed: u64,
    /// Key and value bytes of those records.
    pub bytes_consumed: u64,
    /// Fetch requests answered.
    pub fetch_requests: u64,
    /// Mean time from sending a fetch to its answer (long polls included).
    pub average_fetch_latency: Duration,
    /// Commits the coordinator accepted (sync, async and automatic).
    pub commits: u64,
    /// Rebalances this member completed (joins of the group).
    pub rebalances: u64,
    /// Time spent joining them, in all.
    pub rebalance_time: Duration,
    /// Per assigned partition: the high watermark (the last stable offset
    /// with `read_committed`) of the last fetch minus the position, i.e.
    /// records not yet handed out.
    pub lag: BTreeMap<TopicPartition, i64>,
    /// Fetched data not yet handed out, in bytes as fetched (compressed
    /// batches count compressed): records are decoded only as they are
    /// handed out. Fetching ahead stops at `fetch.max.bytes` in all and
    /// at `max.partition.fetch.bytes` per partition, so this stays under
    /// about twice those limits.
    pub buffered_bytes: u64,
}

/// The counters behind [`ConsumerStats`]; commits are shared with the
/// tasks `commit_async` starts.
#[derive(Debug, Default)]
struct Counters {
    records: u64,
    bytes: u64,
    fetches: u64,
    fetch_time: Duration,
    commits: Arc<std::sync::atomic::AtomicU64>,
    rebalances: u64,
    rebalance_time: Duration,
    high_watermarks: BTreeMap<TopicPartition, i64>,
}

/// What one rejoin changed (see `Consumer::rejoin_if_needed`).
struct Rebalanced {
    revoked: Vec<TopicPartition>,
    added: Vec<TopicPartition>,
}

/// What [`Consumer::poll_events`] hands the application: records, or a step
/// of a rebalance, in the order they happen.
#[derive(Debug)]
pub enum ConsumerEvent {
    /// Records, as [`Consumer::poll`] returns them (none when the timeout
    /// passed first).
    Records(Vec<ConsumerRecord>),
    /// These partitions are being taken from this consumer; offsets of
    /// what was processed can be committed now, before anyone else reads
    /// them. With `enable.auto.commit`, what was handed out has already
    /// been committed, as the Java client does before rejoining.
    ///
    /// With eager assignors (range, round-robin) this comes before the
    /// rejoin and lists the whole assignment. With cooperative-sticky it
    /// comes after the rejoin and lists only the partitions that move to
    /// another member (never reported for a rebalance that moves none of
    /// ours): the rest stay assigned and keep their positions. The
    /// consumer rejoins on the next call so the partitions can be handed
    /// to their new owners; until then nobody reads them.
    ///
    /// If the consumer had lost its membership (fenced, forgotten by the
    /// coordinator, or left after `max.poll.interval.ms`), the partitions
    /// may already be someone else's: that is reported as a revocation of
    /// everything, and the offsets not yet committed are dropped rather
    /// than committed (Java's `onPartitionsLost`).
    Revoked(Vec<TopicPartition>),
    /// The rebalance finished; these partitions were added and their
    /// positions start at their committed offsets. Eagerly that is the
    /// whole assignment; cooperatively only what is new (possibly nothing),
    /// and [`Consumer::assignment`] gives the whole.
    Assigned(Vec<TopicPartition>),
}

/// The outcome of one [`Consumer::commit_async`]: await it for the result,
/// or drop it to have a failure logged instead (Java's commit without a
/// callback).
#[derive(Debug)]
pub struct CommitHandle {
    result: tokio::sync::oneshot::Receiver<Result<()>>,
}

impl Future for CommitHandle {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // The sender goes away unanswered only if the commit task was
        // cancelled (its runtime shut down).
        Pin::new(&mut self.result)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(Error::Closed)))
    }
}

/// The records of a [`Consumer`] as a [`Stream`](futures_core::Stream);
/// see [`Consumer::stream`].
pub struct RecordStream<'a> {
    state: StreamState<'a>,
}

type Filling<'a> = Pin<Box<dyn Future<Output = (&'a mut Consumer, Result<bool>)> + Send + 'a>>;

enum StreamState<'a> {
    /// Between fetches: records are taken from the consumer's buffer.
    Idle(&'a mut Consumer),
    /// `fill` running; it hands the consumer back when done.
    Filling(Filling<'a>),
    /// Only while switching between the two.
    Moving,
}

impl std::fmt::Debug for RecordStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            StreamState::Idle(_) => "idle",
            StreamState::Filling(_) => "fetching",
            StreamState::Moving => "moving",
        };
        f.debug_struct("RecordStream")
            .field("state", &state)
            .finish()
    }
}

impl RecordStream<'_> {
    /// The next record (or error); never `None`. The same as
    /// `futures_util::StreamExt::next`, for callers without that crate.
    pub async fn next(&mut self) -> Option<Result<ConsumerRecord>> {
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut *self), cx)).await
    }
}

impl futures_core::Stream for RecordStream<'_> {
    type Item = Result<ConsumerRecord>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.state, StreamState::Moving) {
                StreamState::Idle(consumer) => {
                    if let Some(record) = consumer.ready_record() {
                        this.state = StreamState::Idle(consumer);
                        return Poll::Ready(Some(Ok(record)));
                    }
                    // Short fills, so that each one counts as a poll for
                    // max.poll.interval.ms while nothing arrives.
                    let wait = consumer
                        .settings
                        .fetch_max_wait
                        .max(Duration::from_millis(100));
                    this.state = StreamState::Filling(Box::pin(async move {
                        let result = consumer.fill(wait, true).await;
                        if matches!(result, Ok(false))
                            && consumer.positions.is_empty()
                            && consumer.group.is_none()
                        {
                            // Nothing assigned and no group to assign
                            // anything: fill returned at once.
                            tokio::time::sleep(wait).await;
                        }
                        (consumer, result)
                    }));
                }
                StreamState::Filling(mut filling) => match filling.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = StreamState::Filling(filling);
                        return Poll::Pending;
                    }
                    Poll::Ready((consumer, result)) => {
                        this.state = StreamState::Idle(consumer);
                        if let Err(e) = result {
                            return Poll::Ready(Some(Err(e)));
                        }
                    }
                },
                StreamState::Moving => {
                    return Poll::Ready(Some(Err(Error::Protocol(
                        "record stream polled after a panic".into(),
                    ))));
                }
            }
        }
    }
}

fn no_group(what: &str) -> Error {
    Error::config(
        "group.id",
        format!("{what} needs a group.id, and a subscription or an assignment"),
    )
}

fn code(raw: i16) -> ErrorCode {
    ErrorCode::from_code(raw).unwrap_or(ErrorCode::UnknownServerError)
}

impl Consumer {
    /// A consumer; connects on first use.
    pub fn new(settings: ConsumerSettings) -> Result<Self> {
        let network = Network::new(settings.network.clone())?;
        // Offset and topic lookups, on this consumer's connections.
        let admin = Admin::over(
            Arc::clone(&network),
            AdminSettings {
                network: settings.network.clone(),
                default_api_timeout: settings.default_api_timeout,
                retry_backoff: settings.retry_backoff,
                retry_backoff_max: settings.retry_backoff_max,
            },
        );
        Ok(Self {
            admin,
            network,
            positions: BTreeMap::new(),
            buffered: fetcher::Buffer::default(),
            in_flight: HashMap::new(),
            refresh_due: false,
            watch: fetch_watch::FetchWatch::default(),
            sessions: HashMap::new(),
            failed: None,
            consumed: BTreeMap::new(),
            group: None,
            subscription: Vec::new(),
            reset_to: HashMap::new(),
            reset_backoff: None,
            awaiting_committed: std::collections::BTreeSet::new(),
            standalone_in_flight: false,
            paused: std::collections::BTreeSet::new(),
            last_auto_commit: tokio::time::Instant::now(),
            metadata: ConsumerGroupMetadata::unjoined(
                settings.group_id.as_deref(),
                settings.group_instance_id.as_deref(),
            ),
            settings,
            commit_in_flight: None,
            revocation_reported: false,
            resubscribed: false,
            pattern: None,
            revoking: Vec::new(),
            pending_assigned: None,
            counters: Counters::default(),
        })
    }

    /// This consumer's group identity (Java's `groupMetadata()`), to hand to
    /// the transactional producer's `send_offsets_to_transaction`. Without
    /// a group, or before the first join, the generation is -1 and the
    /// member id empty, as in Java; after a join they are the ones the
    /// coordinator gave, updated on every rejoin.
    pub fn group_metadata(&self) -> ConsumerGroupMetadata {
        self.metadata.clone()
    }

    /// Consumes exactly these partitions (replacing any earlier assignment).
    ///
    /// With a `group.id` and no subscription, as with Java's consumer, each
    /// newly assigned partition starts at the group's committed offset (or
    /// `auto.offset.reset` without one), and commits (auto-commit included)
    /// go to that group, as commits of a group without members: the
    /// consumer does not join it.
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) {
        let wanted: Vec<TopicPartition> = partitions.into_iter().collect();
        let added: Vec<TopicPartition> = wanted
            .iter()
            .filter(|tp| !self.positions.contains_key(*tp))
            .cloned()
            .collect();
        self.set_assignment(wanted);
        let positions = &self.positions;
        self.awaiting_committed
            .retain(|tp| positions.contains_key(tp));
        if self.subscribed() {
            return;
        }
        let Some(group_id) = self.settings.group_id.clone() else {
            return;
        };
        if self.group.is_none() && self.commit_in_flight.is_none() {
            let group = group::Group::standalone(self.group_config(group_id));
            self.metadata = ConsumerGroupMetadata::of(&group);
            self.group = Some(group);
        }
        self.awaiting_committed.extend(added);
    }

    /// Whether the consumer is a member of its group (subscribed), rather
    /// than using it for committed offsets only or not at all.
    fn subscribed(&self) -> bool {
        match &self.group {
            Some(group) => !group.is_standalone(),
            None => self.commit_in_flight.is_some() && !self.standalone_in_flight,
        }
    }

    fn group_config(&self, group_id: String) -> group::GroupConfig {
        group::GroupConfig {
            group_id,
            instance_id: self.settings.group_instance_id.clone(),
            session_timeout: self.settings.session_timeout,
            rebalance_timeout: self.settings.max_poll_interval,
            heartbeat_interval: self.settings.heartbeat_interval,
            require_stable: self.settings.isolation_level == IsolationLevel::ReadCommitted,
        }
    }

    /// The partitions' positions from the group's committed offsets, for
    /// those just assigned by hand; the others get `auto.offset.reset`.
    async fn positions_from_committed(&mut self) -> Result<()> {
        if self.awaiting_committed.is_empty() {
            return Ok(());
        }
        let partitions: Vec<TopicPartition> = self.awaiting_committed.iter().cloned().collect();
        let Some(group) = self.group.as_mut() else {
            self.awaiting_committed.clear();
            return Ok(());
        };
        let committed = group.committed(&self.network, &partitions).await?;
        for tp in partitions {
            self.awaiting_committed.remove(&tp);
            let Some(&offset) = committed.get(&tp) else {
                continue;
            };
            if let Some(position @ None) = self.positions.get_mut(&tp) {
                *position = Some(offset);
                self.consumed.insert(tp, offset);
            }
        }
        Ok(())
    }

    /// Sets the assignment (by hand or from the group).
    fn set_assignment(&mut self, wanted: Vec<TopicPartition>) {
        self.positions.retain(|tp, _| wanted.contains(tp));
        self.reset_to.retain(|tp, _| wanted.contains(tp));
        for tp in wanted {
            self.positions.entry(tp).or_insert(None);
        }
        let topics: Vec<&str> = self.positions.keys().map(|tp| tp.topic.as_str()).collect();
        self.network.track(&topics);
        let positions = &self.positions;
        self.buffered.retain(|tp| positions.contains_key(tp));
        for fetch in self.in_flight.values_mut() {
            fetch.sent.retain(|tp, _| positions.contains_key(tp));
        }
    }

    /// Joins the consumer group (`group.id`) for these topics; partitions
    /// are assigned by the group on the next poll, starting from the
    /// group's committed offsets (or `auto.offset.reset`).
    ///
    /// Called again while a member, it changes the topics of the same
    /// membership: the next poll rejoins with them (revoking what the new
    /// subscription leaves out), as Java's consumer does.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        let group_id = self
            .settings
            .group_id
            .clone()
            .ok_or_else(|| Error::config("group.id", "subscribe needs a group.id"))?;
        let mut subscription: Vec<String> = topics.iter().map(|t| (*t).to_owned()).collect();
        subscription.sort();
        subscription.dedup();
        self.pattern = None;
        self.network.track(topics);
        if self.group.as_ref().is_some_and(group::Group::is_standalone) {
            // Assigned by hand until now: a member from here on.
            self.group = None;
            self.awaiting_committed.clear();
        }
        if self.subscribed() {
            // A second member in its place would wait in the coordinator's
            // rebalance until this one's session timed out.
            if subscription != self.subscription {
                self.subscription = subscription;
                self.resubscribed = true;
            }
            return Ok(());
        }
        self.subscription = subscription;
        let config = self.group_config(group_id);
        let group = group::Group::new(config, self.settings.assignors.clone());
        self.metadata = ConsumerGroupMetadata::of(&group);
        self.group = Some(group);
        Ok(())
    }

    /// Joins the consumer group for every topic whose whole name matches
    /// `pattern` (a regular expression), as Java's `subscribe(Pattern)`.
    /// The topics are listed at the first poll and again every
    /// `metadata.max.age.ms`; a topic created or deleted that changes the
    /// match makes the member rejoin with it. Kafka's internal topics are
    /// left out.
    pub fn subscribe_pattern(&mut self, pattern: &str) -> Result<()> {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::config("subscribe_pattern", format!("`{pattern}`: {e}")))?;
        if !self.subscribed() {
            self.subscribe(&[])?;
        } else {
            self.settings
                .group_id
                .as_ref()
                .ok_or_else(|| Error::config("group.id", "subscribe needs a group.id"))?;
        }
        self.pattern = Some(TopicPattern {
            regex,
            next_listing: None,
        });
        Ok(())
    }

    /// Lists the cluster's topics for a pattern subscription when due, and
    /// resubscribes when the matching topics changed.
    async fn refresh_pattern(&mut self) -> Result<()> {
        let Some(pattern) = &self.pattern else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        if pattern.next_listing.is_some_and(|at| now < at) {
            return Ok(());
        }
        // A broker that does not answer must not hold every poll for a
        // request timeout: bounded as the coordinator lookups are, and
        // tried again a second later rather than at the next poll.
        let listing = self.network.describe_topics(None);
        let listed = match tokio::time::timeout(Duration::from_secs(2), listing).await {
            Ok(listed) => listed,
            Err(_) => Err(Error::Timeout("listing topics for the pattern".into())),
        };
        let response = match listed {
            Ok(response) => response,
            Err(e) => {
                if let Some(pattern) = self.pattern.as_mut() {
                    pattern.next_listing = Some(now + Duration::from_secs(1));
                }
                return Err(e);
            }
        };
        let Some(pattern) = &self.pattern else {
            return Ok(());
        };
        let mut matched: Vec<String> = response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0 && !t.is_internal)
            .filter_map(|t| t.name)
            .filter(|name| pattern.regex.is_match(name))
            .collect();
        matched.sort();
        let max_age = self.settings.network.metadata_max_age;
        if let Some(pattern) = self.pattern.as_mut() {
            pattern.next_listing = Some(tokio::time::Instant::now() + max_age);
        }
        if matched != self.subscription {
            tracing::info!(topics = ?matched, "the topics matching the subscribed pattern changed");
            let topics: Vec<&str> = matched.iter().map(String::as_str).collect();
            self.network.track(&topics);
            self.subscription = matched;
            self.resubscribed = true;
        }
        Ok(())
    }

    /// Leaves the group and drops the subscription and every partition
    /// (subscribed or assigned); the consumer can subscribe or assign again.
    /// With `enable.auto.commit`, what was handed out is committed first.
    /// A static member (`group.instance.id`) does not send LeaveGroup, as
    /// on close.
    pub async fn unsubscribe(&mut self) -> Result<()> {
        let settled = self.settle_commits().await;
        if settled.is_ok() {
            self.auto_commit_now().await;
        }
        let left = match self.group.take() {
            Some(mut group) => group.leave(&self.network).await,
            None => Ok(()),
        };
        self.subscription.clear();
        self.pattern = None;
        self.resubscribed = false;
        self.metadata = ConsumerGroupMetadata::unjoined(
            self.settings.group_id.as_deref(),
            self.settings.group_instance_id.as_deref(),
        );
        self.set_assignment(Vec::new());
        self.awaiting_committed.clear();
        self.consumed.clear();
        self.paused.clear();
        self.reset_to.clear();
        self.revoking.clear();
        self.pending_assigned = None;
        self.revocation_reported = false;
        settled.and(left)
    }

    /// Commits the offsets of every record handed out so far, after any
    /// [`commit_async`](Self::commit_async) still running (so this one
    /// supersedes them).
    pub async fn commit(&mut self) -> Result<()> {
        self.settle_commits().await?;
        let group = self.group.as_mut().ok_or_else(|| no_group("commit"))?;
        group.commit(&self.network, &self.consumed).await?;
        self.counted_commit();
        Ok(())
    }

    fn counted_commit(&self) {
        self.counters
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Commits the offsets of every record handed out so far without
    /// waiting for the answer (Java's `commitAsync()`), and returns a handle
    /// to await for the result or to drop (a failure is then logged).
    ///
    /// Ordering is Java's: commits reach the coordinator in the order they
    /// were made, so a later `commit_async`, [`commit`](Self::commit) or
    /// [`commit_offsets`](Self::commit_offsets) supersedes an earlier one.
    /// A failed commit is reported through the handle, not retried with
    /// the old offsets (the next commit carries newer ones); a commit
    /// refused because the group rebalanced makes the next poll rejoin.
    ///
    /// Design: the group's state (coordinator, generation, member id) is
    /// owned by the consumer and used through `&mut`. Rather than share it
    /// behind a lock, the commit takes it into a task and gives it back when
    /// the coordinator answered; a second `commit_async` meanwhile queues
    /// behind the first (that is what keeps the order), and `poll`,
    /// `commit`, `committed` and `close` first wait for the commits still
    /// running. Usually the answer is back while the application processes
    /// the records, so `poll` does not wait at all. Each call is one
    /// OffsetCommit request: call it once per poll, not per record.
    ///
    /// Must be called within a Tokio runtime. Without a `group.id` (and a
    /// subscription or an assignment) the handle answers with a
    /// configuration error naming `group.id`.
    pub fn commit_async(&mut self) -> CommitHandle {
        let (answer, result) = tokio::sync::oneshot::channel();
        let handle = CommitHandle { result };
        let previous = self.commit_in_flight.take();
        let group = self.group.take();
        if let Some(group) = &group {
            self.standalone_in_flight = group.is_standalone();
        }
        if group.is_none() && previous.is_none() {
            let _ = answer.send(Err(no_group("commit_async")));
            return handle;
        }
        let offsets = self.consumed.clone();
        let network = self.network.clone();
        let commits = self.counters.commits.clone();
        self.commit_in_flight = Some(tokio::spawn(async move {
            let mut group = match (group, previous) {
                (Some(group), _) => group,
                (None, Some(previous)) => match previous.await {
                    Ok(Some(group)) => group,
                    Ok(None) | Err(_) => {
                        let _ = answer.send(Err(Error::Closed));
                        return None;
                    }
                },
                (None, None) => return None,
            };
            let result = group.commit(&network, &offsets).await;
            if result.is_ok() {
                commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            if let Err(Err(e)) = answer.send(result) {
                tracing::warn!(error = %e, "commit_async failed");
            }
            Some(group)
        }));
        handle
    }

    /// Waits for the commits `commit_async` started and takes the group back.
    async fn settle_commits(&mut self) -> Result<()> {
        if let Some(task) = self.commit_in_flight.take() {
            match task.await {
                // A standalone group's commit that ran past `subscribe`:
                // the member's group stays.
                Ok(Some(group)) if group.is_standalone() && self.group.is_some() => {}
                Ok(Some(group)) => self.group = Some(group),
                // The chain lost the group only if a commit task was cancelled.
                Ok(None) => return Err(Error::Closed),
                Err(e) => return Err(Error::Protocol(format!("commit task: {e}"))),
            }
        }
        Ok(())
    }

    /// Leaves the group (if any) and closes the connections. With
    /// `enable.auto.commit`, what was handed out is committed first, as
    /// Java's close does, so the partitions' next owner starts after it.
    pub async fn close(mut self) -> Result<()> {
        self.in_flight.clear();
        let settled = self.settle_commits().await;
        if settled.is_ok() {
            self.auto_commit_now().await;
        }
        let result = match self.group.as_mut() {
            Some(group) => group.leave(&self.network).await,
            None => Ok(()),
        };
        self.network.close();
        settled.and(result)
    }

    /// Whether the group rebalances cooperatively (KIP-429).
    fn cooperative(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.protocol() == assignor::RebalanceProtocol::Cooperative)
    }

    /// Forgets the consumed offsets of partitions revoked by the last
    /// cooperative rebalance (the application had its chance to commit).
    fn forget_revoked(&mut self) {
        for tp in std::mem::take(&mut self.revoking) {
            if !self.positions.contains_key(&tp) {
                self.consumed.remove(&tp);
            }
        }
    }

    /// Stops reading `tp`: no position, nothing buffered, not paused.
    fn drop_partition(&mut self, tp: &TopicPartition) {
        self.positions.remove(tp);
        self.paused.remove(tp);
        self.reset_to.remove(tp);
        self.counters.high_watermarks.remove(tp);
        self.discard(tp);
    }

    /// Drops what is buffered for `tp` and makes the answers of fetches in
    /// flight for it be ignored: its position is about to move (or go).
    fn discard(&mut self, tp: &TopicPartition) {
        self.buffered.discard(tp);
        for fetch in self.in_flight.values_mut() {
            fetch.sent.remove(tp);
        }
    }

    /// [`discard`](Self::discard) for every partition.
    fn discard_all(&mut self) {
        self.buffered.clear();
        for fetch in self.in_flight.values_mut() {
            fetch.sent.clear();
        }
    }

    /// Drops every partition as lost: positions, buffered records and
    /// consumed offsets, none of which may be committed now. Returns them.
    fn drop_lost(&mut self) -> Vec<TopicPartition> {
        let lost = self.assignment();
        for tp in &lost {
            self.drop_partition(tp);
            self.consumed.remove(tp);
        }
        self.discard_all();
        self.revoking.clear();
        lost
    }

    /// Rejoins if the group asked for it; `(revoked, added)` when it did.
    /// Eagerly everything was revoked before (so `revoked` is empty) and
    /// everything assigned is added; cooperatively only the differences,
    /// and a member that revoked something asks for the follow-up
    /// rebalance at once.
    async fn rejoin_if_needed(&mut self) -> Result<Option<Rebalanced>> {
        let Some(group) = self.group.as_ref() else {
            return Ok(None);
        };
        if !group.needs_join() {
            return Ok(None);
        }
        let generation_lost = group.generation_lost();
        let cooperative = self.cooperative();
        self.forget_revoked();
        let mut lost = Vec::new();
        if cooperative && generation_lost {
            lost = self.drop_lost();
        }
        if !self.revocation_reported {
            self.auto_commit_now().await;
        }
        let owned = self.assignment();
        let Some(group) = self.group.as_mut() else {
            return Ok(None);
        };
        let started = tokio::time::Instant::now();
        let joined = group.join(&self.network, &self.subscription, &owned).await;
        if joined.is_ok() {
            self.counters.rebalances += 1;
            self.counters.rebalance_time += started.elapsed();
        }
        self.metadata = ConsumerGroupMetadata::of(group);
        let joined = joined?;
        let partitions: Vec<TopicPartition> = joined
            .assignment
            .iter()
            .flat_map(|(topic, ps)| {
                ps.iter().map(|p| TopicPartition {
                    topic: topic.clone(),
                    partition: *p,
                })
            })
            .collect();
        if !cooperative {
            let committed = group.committed(&self.network, &partitions).await?;
            // Eagerly, everything was revoked: each partition starts again
            // at its committed offset (or auto.offset.reset). Records and
            // positions from before the join are dropped: handing those
            // records out and then fetching from the committed offset would
            // deliver them twice, and keeping a position past records that
            // were dropped would skip them.
            self.discard_all();
            self.positions.clear();
            self.consumed.clear();
            self.set_assignment(partitions.clone());
            for (tp, offset) in committed {
                self.positions.insert(tp.clone(), Some(offset));
                self.consumed.insert(tp, offset);
            }
            return Ok(Some(Rebalanced {
                revoked: Vec::new(),
                added: partitions,
            }));
        }
        if joined.lost {
            // Fenced while joining: what it held may be someone else's now.
            lost.extend(self.drop_lost());
        }
        let revoked: Vec<TopicPartition> = self
            .positions
            .keys()
            .filter(|tp| !partitions.contains(tp))
            .cloned()
            .collect();
        let added: Vec<TopicPartition> = partitions
            .iter()
            .filter(|tp| !self.positions.contains_key(tp))
            .cloned()
            .collect();
        for tp in &revoked {
            self.drop_partition(tp);
        }
        if !revoked.is_empty() {
            // Fetched but not handed out: the next owner reads them.
            for tp in &revoked {
                self.discard(tp);
            }
            self.revoking = revoked.clone();
        }
        let Some(group) = self.group.as_mut() else {
            return Ok(None);
        };
        let committed = group.committed(&self.network, &added).await?;
        for tp in &added {
            let offset = committed.get(tp).copied();
            self.positions.insert(tp.clone(), offset);
            match offset {
                Some(offset) => self.consumed.insert(tp.clone(), offset),
                None => self.consumed.remove(tp),
            };
        }
        if !revoked.is_empty() {
            // KIP-429's second phase: rejoin so that what was given up can
            // be assigned to its new owner.
            if let Some(group) = self.group.as_ref() {
                group.request_rejoin();
            }
        }
        let mut all_revoked = lost;
        all_revoked.extend(revoked);
        all_revoked.sort();
        all_revoked.dedup();
        tracing::debug!(
            revoked = ?all_revoked,
            added = ?added,
            "cooperative rebalance"
        );
        Ok(Some(Rebalanced {
            revoked: all_revoked,
            added,
        }))
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.positions.keys().cloned().collect()
    }

    /// The topics subscribed to, as Java's `subscription()`: with
    /// [`subscribe_pattern`](Self::subscribe_pattern), those the pattern
    /// matched at the last listing; empty after [`assign`](Self::assign).
    pub fn subscription(&self) -> Vec<String> {
        self.subscription.clone()
    }

    /// The partitions of `topic` with their leaders and replicas, as Java's
    /// `partitionsFor`: empty when the cluster has no such topic. Retried
    /// (a partition without a leader yet) until `default.api.timeout.ms`.
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionDescription>> {
        partitions_of(&self.admin, topic).await
    }

    /// Every topic but Kafka's internal ones, with its partitions, as
    /// Java's `listTopics`.
    pub async fn list_topics(&self) -> Result<BTreeMap<String, Vec<PartitionDescription>>> {
        Ok(self
            .admin
            .describe_all_topics(false)
            .await?
            .into_iter()
            .map(|(name, topic)| (name, topic.partitions))
            .collect())
    }

    /// Makes the next poll of `tp` start at `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let position = self.positions.get_mut(tp).ok_or_else(|| {
            Error::config(
                "assignment",
                format!("{}-{} is not assigned", tp.topic, tp.partition),
            )
        })?;
        *position = Some(offset);
        self.reset_to.remove(tp);
        self.awaiting_committed.remove(tp);
        self.discard(tp);
        Ok(())
    }

    /// The offset of the next record `poll` will hand out for `tp`, if known.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.buffered.position(tp).or(*self.positions.get(tp)?)
    }

    fn auto_commit_due(&self) -> bool {
        self.settings.enable_auto_commit
            && self.group.is_some()
            && self.last_auto_commit.elapsed() >= self.settings.auto_commit_interval
    }

    /// Commits what was handed out when `auto.commit.interval.ms` has passed
    /// (with `enable.auto.commit`). A failed auto-commit is logged and
    /// retried at the next interval, as in the Java client.
    async fn auto_commit(&mut self) {
        if !self.auto_commit_due() {
            return;
        }
        self.last_auto_commit = tokio::time::Instant::now();
        if let Err(e) = self.commit().await {
            tracing::warn!(error = %e, "auto-commit failed");
        }
    }

    /// Up to `max.poll.records` records, waiting up to `timeout` for some.
    ///
    /// While the group's coordinator or the partitions' leaders cannot be
    /// reached, polls return no records (and log why) rather than an error,
    /// as the Java client's do: a broker restart does not stop the
    /// application's loop. Errors that retrying cannot fix (authentication,
    /// authorization, configuration, a fenced member, `max.poll.interval.ms`
    /// exceeded) are returned.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if !self.fill(timeout, true).await? {
            return Ok(Vec::new());
        }
        Ok(self.hand_out(self.settings.max_poll_records))
    }

    /// Like [`poll`](Self::poll), but a rebalance is reported rather than
    /// handled silently: first [`ConsumerEvent::Revoked`] with the partitions
    /// about to be taken (the application commits what it processed, with
    /// the consumer in hand), then, on the next call, the rejoin and
    /// [`ConsumerEvent::Assigned`], then records of the new assignment.
    ///
    /// With `cooperative-sticky` as the only strategy (KIP-429) a rebalance
    /// reads differently: the call that rejoins reports `Revoked` with only
    /// the partitions that move away (if any), the next one `Assigned` with
    /// the partitions added (possibly none), and records of the partitions
    /// that stayed go on from where they were, including those fetched
    /// before the rebalance. A member that revoked something rejoins on the
    /// following call, and the follow-up rebalance hands those partitions
    /// to their new owners, so the application sees a move as `Revoked` on
    /// one member and, a rebalance later, `Assigned` on another, and never
    /// both members holding a partition at once. Fetching pauses while a
    /// JoinGroup/SyncGroup round is in flight (the call waits for it); it
    /// does not lose positions.
    ///
    /// Events come from the call the application makes anyway, rather than
    /// from a listener object the consumer calls back into: a listener would
    /// need the consumer (to commit) while the consumer is busy calling it,
    /// which in Rust means shared mutable state; here the borrow checker
    /// keeps the order right instead.
    ///
    /// ```no_run
    /// # async fn run(mut consumer: kafka_client::consumer::Consumer) -> kafka_client::Result<()> {
    /// use kafka_client::consumer::ConsumerEvent;
    /// use std::time::Duration;
    ///
    /// loop {
    ///     match consumer.poll_events(Duration::from_millis(500)).await? {
    ///         ConsumerEvent::Records(records) => {
    ///             for record in records {
    ///                 println!("{}-{}@{}", record.topic, record.partition, record.offset);
    ///             }
    ///         }
    ///         // Commit what was processed before the partitions move.
    ///         ConsumerEvent::Revoked(_) => consumer.commit().await?,
    ///         ConsumerEvent::Assigned(partitions) => println!("now reading {partitions:?}"),
    ///     }
    /// }
    /// # }
    /// ```
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn poll_events(&mut self, timeout: Duration) -> Result<ConsumerEvent> {
        if let Some(added) = self.pending_assigned.take() {
            return Ok(ConsumerEvent::Assigned(added));
        }
        // Before any rebalance event: the application first hears that it
        // left the group, then (next call) what that cost it.
        self.check_poll_interval()?;
        self.rejoin_if_topics_changed().await;
        // Two rounds at most: a fill can end because a rebalance began.
        for _ in 0..2 {
            if self.group.as_ref().is_some_and(group::Group::needs_join) && self.cooperative() {
                self.settle_commits().await?;
                let lost = self
                    .group
                    .as_ref()
                    .is_some_and(group::Group::generation_lost);
                if lost && !self.revocation_reported && !self.positions.is_empty() {
                    // Reported before rejoining, as eagerly; nothing of it
                    // is committed (the generation is over).
                    self.revocation_reported = true;
                    return Ok(ConsumerEvent::Revoked(self.drop_lost()));
                }
                let rebalanced = match self.rejoin_if_needed().await {
                    Ok(rebalanced) => rebalanced,
                    Err(e) => return self.outage(e, None).await.map(ConsumerEvent::Records),
                };
                self.revocation_reported = false;
                let Some(Rebalanced { revoked, added }) = rebalanced else {
                    continue;
                };
                if revoked.is_empty() {
                    return Ok(ConsumerEvent::Assigned(added));
                }
                self.pending_assigned = Some(added);
                return Ok(ConsumerEvent::Revoked(revoked));
            }
            if self.group.as_ref().is_some_and(group::Group::needs_join) {
                if !self.revocation_reported && !self.positions.is_empty() {
                    self.settle_commits().await?;
                    self.auto_commit_now().await;
                    // Fetched but not handed out: the next owner reads them.
                    self.discard_all();
                    self.revocation_reported = true;
                    return Ok(ConsumerEvent::Revoked(self.assignment()));
                }
                if let Err(e) = self.rejoin_if_needed().await {
                    return self.outage(e, None).await.map(ConsumerEvent::Records);
                }
                self.revocation_reported = false;
                return Ok(ConsumerEvent::Assigned(self.assignment()));
            }
            if self.fill(timeout, false).await? {
                let records = self.hand_out(self.settings.max_poll_records);
                return Ok(ConsumerEvent::Records(records));
            }
        }
        Ok(ConsumerEvent::Records(Vec::new()))
    }

    /// A failure of the group, metadata or offsets calls a poll makes. As in
    /// the Java client, a retriable one (no coordinator yet, a broker down or
    /// slow) is not the application's to handle: it is logged, the poll
    /// waits out its time (up to `deadline`, at once without one) and returns
    /// no records, and the next poll tries again. Anything else is returned.
    async fn outage(
        &mut self,
        error: Error,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Vec<ConsumerRecord>> {
        if !error.retriable() {
            return Err(error);
        }
        tracing::warn!(%error, "poll could not reach the group or the cluster; retrying at the next poll");
        if let Some(deadline) = deadline {
            tokio::time::sleep_until(deadline).await;
        }
        Ok(Vec::new())
    }

    /// With `enable.auto.commit`, commits what was handed out, before the
    /// member rejoins (Java's onJoinPrepare), leaves or unsubscribes, so the
    /// partitions' next owner starts after it. A failure is logged: the
    /// next owner then reads those records again, as with Java.
    async fn auto_commit_now(&mut self) {
        if !self.settings.enable_auto_commit || self.positions.is_empty() || self.group.is_none() {
            return;
        }
        if let Err(e) = self.commit().await {
            tracing::warn!(error = %e, "auto-commit before rebalancing or leaving failed");
        }
    }

    /// The records as a [`Stream`](futures_core::Stream), in offset order
    /// per partition, built on the same work as [`poll`](Self::poll):
    /// group membership, auto-commit and `max.poll.interval.ms` behave as
    /// they do with `poll`, each record counting as one. It never ends;
    /// an error is yielded as an item and the stream can go on, as `poll`
    /// can be called again after an error.
    ///
    /// A record counts as handed out (what [`commit`](Self::commit) and
    /// auto-commit commit) once the stream yields it, not before: records
    /// fetched but not yet yielded stay in the consumer, so dropping the
    /// stream loses nothing. Dropping it while it waits cancels a fetch
    /// as dropping a `poll` future does.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let cluster = kafka_broker::Cluster::start(Default::default()).await?;
    /// # cluster.create_topic("events", 1)?;
    /// # let bootstrap = cluster.bootstrap_servers();
    /// # let producer = kafka_client::producer::Producer::new(
    /// #     kafka_client::producer::ProducerSettings::new(&bootstrap))?;
    /// # for i in 0..3 {
    /// #     producer.send(kafka_client::producer::ProducerRecord::new("events")
    /// #         .value(format!("event-{i}"))).await?.await?;
    /// # }
    /// use kafka_client::consumer::{Consumer, ConsumerConfig, OffsetReset};
    /// use kafka_client::producer::TopicPartition;
    ///
    /// let settings = ConsumerConfig::new()
    ///     .bootstrap_servers(&bootstrap)?
    ///     .auto_offset_reset(OffsetReset::Earliest)?
    ///     .build()?;
    /// let mut consumer = Consumer::new(settings)?;
    /// consumer.assign([TopicPartition { topic: "events".into(), partition: 0 }]);
    /// let mut records = consumer.stream();
    /// // `next` is also `futures_util::StreamExt::next`.
    /// while let Some(record) = records.next().await {
    ///     let record = record?;
    ///     println!("{}: {:?}", record.offset, record.value);
    ///     if record.offset == 2 {
    ///         break;
    ///     }
    /// }
    /// # drop(records);
    /// # consumer.close().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&mut self) -> RecordStream<'_> {
        RecordStream {
            state: StreamState::Idle(self),
        }
    }

    /// Poll's work short of handing records out: the group's bookkeeping,
    /// then fetching until a record is ready or `timeout` passed. Whether
    /// one is ready.
    ///
    /// Without `rejoin`, a rebalance that is due ends the fill (with no
    /// record ready) instead of being joined, for `poll_events` to report.
    async fn fill(&mut self, timeout: Duration, rejoin: bool) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.settle_commits().await?;
        self.forget_revoked();
        self.check_poll_interval()?;
        self.rejoin_if_topics_changed().await;
        self.auto_commit().await;
        let mut waited = false;
        loop {
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            if rejoin {
                if let Err(e) = self.rejoin_if_needed().await {
                    return self.outage(e, Some(deadline)).await.map(|_| false);
                }
            } else if self.group.as_ref().is_some_and(group::Group::needs_join) {
                return Ok(false);
            }
            let in_flight = &mut self.in_flight;
            let answers = std::future::poll_fn(|cx| Poll::Ready(finished(in_flight, cx))).await;
            self.apply_fetches(answers)?;
            if self.has_ready() {
                return Ok(true);
            }
            if self.positions.is_empty() {
                // Nothing to fetch (a cooperative member waiting for the
                // follow-up rebalance, or an empty share): wait out the
                // timeout as Java's poll does, in short steps so that a
                // rebalance is joined (or reported) as soon as it is due,
                // rather than returning at once and making the
                // application's poll loop spin.
                let now = tokio::time::Instant::now();
                if now >= deadline || self.group.is_none() {
                    return Ok(false);
                }
                tokio::time::sleep((deadline - now).min(Duration::from_millis(20))).await;
                continue;
            }
            // Records of paused partitions stay buffered: only the deadline
            // ends the wait (after at least one round, even with no time).
            if waited && tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            if std::mem::take(&mut self.refresh_due) {
                match self.network.refresh().await {
                    Ok(metadata) => self.check_gone_topics(&metadata)?,
                    Err(e) => {
                        self.refresh_due = true;
                        return self.outage(e, Some(deadline)).await.map(|_| false);
                    }
                }
            }
            if let Err(e) = self.positions_from_committed().await {
                return self.outage(e, Some(deadline)).await.map(|_| false);
            }
            if let Err(e) = self.reset_positions().await {
                return self.outage(e, Some(deadline)).await.map(|_| false);
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.send_fetches(remaining.min(self.settings.fetch_max_wait));
            if self.in_flight.is_empty() {
                waited = true;
                // Nothing fetchable: every partition paused, buffered up to
                // the bound, or without a known leader (refreshed next round).
                tokio::time::sleep(remaining.min(Duration::from_millis(50))).await;
                continue;
            }
            // Until every fetch in flight is answered, as when poll awaited
            // its fetches: each was sent with a wait within a poll's
            // timeout (or none, fetched ahead), so none outlives the poll by
            // much to hold the connection the group's requests share. The
            // first round waits even past a zero timeout (bounded by
            // `fetch.max.wait.ms`), so that every poll fetches.
            let until = if waited {
                deadline
            } else {
                deadline.max(tokio::time::Instant::now() + self.settings.fetch_max_wait)
            };
            waited = true;
            let mut answers = Vec::new();
            let in_flight = &mut self.in_flight;
            let _ = tokio::time::timeout_at(
                until,
                std::future::poll_fn(|cx| {
                    answers.extend(finished(in_flight, cx));
                    if in_flight.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }),
            )
            .await;
            self.apply_fetches(answers)?;
        }
    }

    /// Counts this call as a poll; fails (once) if the member left the
    /// group because the previous poll was longer ago than
    /// `max.poll.interval.ms`.
    fn check_poll_interval(&self) -> Result<()> {
        if let Some(group) = &self.group {
            group.polled();
            if group.take_poll_timeout() {
                // Java's CommitFailed/"poll timeout" case: the application
                // hears of it once; the next poll rejoins.
                return Err(Error::Timeout(format!(
                    "max.poll.interval.ms ({:?}) passed between polls; this consumer left the group and will rejoin",
                    self.settings.max_poll_interval
                )));
            }
        }
        Ok(())
    }

    /// The leader's check that the topics it assigned still have the
    /// partitions it assigned (see `Group::rejoin_if_metadata_changed`),
    /// against the metadata the network keeps fresh.
    /// Also rejoins after `subscribe` changed the topics.
    async fn rejoin_if_topics_changed(&mut self) {
        if let Err(e) = self.refresh_pattern().await {
            // Tried again at the next poll; the subscription stays as it was.
            tracing::warn!(error = %e, "listing topics for the subscribed pattern failed");
        }
        if let Some(group) = &self.group {
            if std::mem::take(&mut self.resubscribed) {
                group.request_rejoin();
            }
            group.rejoin_if_metadata_changed(&self.network.metadata());
        }
    }

    /// Whether a buffered record of a partition not paused is waiting.
    fn has_ready(&self) -> bool {
        self.buffered.has_ready(&self.paused)
    }

    /// Takes up to `max` buffered records of partitions not paused, in
    /// order, decoding them now, and counts them as handed out (what
    /// `commit` commits). Then fetches ahead what the hand-out made room
    /// for, while the application processes these.
    fn hand_out(&mut self, max: usize) -> Vec<ConsumerRecord> {
        let mut records = Vec::with_capacity(max.min(4096));
        let chunks = self.buffered.len();
        if let Some(failure) = self.buffered.take(max, &self.paused, &mut records) {
            // The records before the bad batch are handed out; fetching
            // resumes after them and the next poll reports the failure.
            self.discard(&failure.tp);
            if let Some(position) = self.positions.get_mut(&failure.tp) {
                *position = Some(failure.resume);
            }
            self.failed = Some(failure.error);
        }
        if self.buffered.len() < chunks || self.in_flight.is_empty() {
            self.prefetch();
        }
        for (i, r) in records.iter().enumerate() {
            self.counters.bytes += (r.key.as_ref().map_or(0, Bytes::len)
                + r.value.as_ref().map_or(0, Bytes::len)) as u64;
            // Records come in runs of one partition: its consumed offset is
            // the run's last, so the key is built once a run, not a record.
            let run_ends = records
                .get(i + 1)
                .is_none_or(|next| next.partition != r.partition || next.topic != r.topic);
            if run_ends {
                self.consumed.insert(
                    TopicPartition {
                        topic: r.topic.clone(),
                        partition: r.partition,
                    },
                    r.offset + 1,
                );
            }
        }
        self.counters.records += records.len() as u64;
        records
    }

    /// A snapshot of the consumer's counters, with each assigned
    /// partition's lag as of the last fetch.
    pub fn stats(&self) -> ConsumerStats {
        let fetches = self.counters.fetches;
        let lag = self
            .positions
            .iter()
            .filter_map(|(tp, position)| {
                let high_watermark = *self.counters.high_watermarks.get(tp)?;
                let next = self.consumed.get(tp).copied().or(*position)?;
                Some((tp.clone(), (high_watermark - next).max(0)))
            })
            .collect();
        ConsumerStats {
            records_consumed: self.counters.records,
            bytes_consumed: self.counters.bytes,
            fetch_requests: fetches,
            average_fetch_latency: if fetches == 0 {
                Duration::ZERO
            } else {
                self.counters.fetch_time / u32::try_from(fetches).unwrap_or(u32::MAX)
            },
            commits: self
                .counters
                .commits
                .load(std::sync::atomic::Ordering::Relaxed),
            rebalances: self.counters.rebalances,
            rebalance_time: self.counters.rebalance_time,
            lag,
            buffered_bytes: self.buffered.bytes().0 as u64,
        }
    }

    /// The next record without awaiting anything, if one is buffered and
    /// no group work is due; otherwise the stream runs `fill` first.
    fn ready_record(&mut self) -> Option<ConsumerRecord> {
        if self.commit_in_flight.is_some() {
            return None;
        }
        if let Some(group) = &self.group {
            // Each record counts as a poll for max.poll.interval.ms.
            group.polled();
            if group.needs_join() || self.auto_commit_due() {
                return None;
            }
        }
        self.hand_out(1).pop()
    }

    /// Looks up the starting offset of partitions without a position.
    async fn reset_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .positions
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if missing.is_empty() {
            self.reset_backoff = None;
            return Ok(());
        }
        if let Some((_, retry_at)) = &self.reset_backoff
            && tokio::time::Instant::now() < *retry_at
        {
            return Ok(());
        }
        let default = match self.settings.auto_offset_reset {
            OffsetReset::Earliest => Some(OffsetSpec::Earliest),
            OffsetReset::Latest => Some(OffsetSpec::Latest),
            OffsetReset::None => None,
        };
        let mut specs = BTreeMap::new();
        for tp in missing {
            // seek_to_beginning / seek_to_end pick their own end of the log;
            // kept until the lookup succeeds, so a failed one loses no seek.
            let spec = match self.reset_to.get(&tp) {
                Some(&spec) => spec,
                None => default.ok_or_else(|| {
                    Error::config(
                        "auto.offset.reset",
                        format!("none: {}-{} has no position", tp.topic, tp.partition),
                    )
                })?,
            };
            specs.insert(tp, spec);
        }
        // One round, a request per leader; what it could not get is asked
        // again at a later poll, after a backoff, as Java's fetcher does.
        let answers = self
            .admin
            .list_offsets_once(
                specs.keys().cloned().collect(),
                &specs,
                self.settings.isolation_level,
            )
            .await?;
        let mut again = None;
        for (tp, answer) in answers {
            if !specs.contains_key(&tp) {
                continue;
            }
            match answer {
                Answer::Final(Ok(listed)) if listed.offset >= 0 => {
                    self.reset_to.remove(&tp);
                    if let Some(position) = self.positions.get_mut(&tp) {
                        *position = Some(listed.offset);
                    }
                }
                Answer::Final(Ok(_)) => {
                    again.get_or_insert_with(|| {
                        Error::Protocol(format!("ListOffsets gave {tp} no offset"))
                    });
                }
                Answer::Final(Err(e)) if !e.retriable() => return Err(e),
                Answer::Final(Err(e)) | Answer::Again(e) => {
                    again.get_or_insert(e);
                }
            }
        }
        match again {
            None => self.reset_backoff = None,
            Some(error) => {
                self.refresh_due = true;
                let (backoff, retry_at) = self.reset_backoff.get_or_insert_with(|| {
                    (
                        Backoff::new(self.settings.retry_backoff, self.settings.retry_backoff_max),
                        tokio::time::Instant::now(),
                    )
                });
                *retry_at = tokio::time::Instant::now() + backoff.next_delay();
                tracing::debug!(%error, "offset lookup for some partitions is retried");
            }
        }
        Ok(())
    }

    /// The offset `spec` names for each partition, at their leaders (a
    /// request per leader), retried until `default.api.timeout.ms`.
    async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
    ) -> Result<BTreeMap<TopicPartition, ListedOffset>> {
        let deadline = tokio::time::Instant::now() + self.settings.default_api_timeout;
        self.admin
            .list_offsets_until(specs, self.settings.isolation_level, deadline)
            .await?
            .all()
    }

    /// The first offset whose timestamp is at or after each given time,
    /// with that record's timestamp; `None` when no such record exists yet.
    pub async fn offsets_for_times(
        &self,
        times: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Option<(i64, i64)>)>> {
        // A partition asked about at several times goes into one lookup per
        // time: a request names each partition once.
        let mut lookups: Vec<BTreeMap<TopicPartition, OffsetSpec>> = Vec::new();
        let mut placed = Vec::with_capacity(times.len());
        for (tp, time) in times {
            let round = lookups.iter().position(|l| !l.contains_key(tp));
            let round = round.unwrap_or_else(|| {
                lookups.push(BTreeMap::new());
                lookups.len() - 1
            });
            lookups[round].insert(tp.clone(), OffsetSpec::Timestamp(*time));
            placed.push(round);
        }
        let mut found = Vec::with_capacity(lookups.len());
        for specs in &lookups {
            found.push(self.list_offsets(specs).await?);
        }
        Ok(times
            .iter()
            .zip(placed)
            .map(|((tp, _), round)| {
                let listed = found[round].get(tp).filter(|listed| listed.offset >= 0);
                (tp.clone(), listed.map(|l| (l.offset, l.timestamp)))
            })
            .collect())
    }

    /// The first offset of each partition (its log start), as Java's
    /// `beginningOffsets`.
    pub async fn beginning_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.offsets_at(partitions, OffsetSpec::Earliest).await
    }

    /// The offset after the last record of each partition that this
    /// consumer can read: the high watermark, or with `read_committed` the
    /// last stable offset, as Java's `endOffsets`. With the committed
    /// offsets it gives the group's lag.
    pub async fn end_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.offsets_at(partitions, OffsetSpec::Latest).await
    }

    async fn offsets_at(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        let specs = partitions.iter().map(|tp| (tp.clone(), spec)).collect();
        let found = self.list_offsets(&specs).await?;
        Ok(found
            .into_iter()
            .map(|(tp, listed)| (tp, listed.offset))
            .collect())
    }

    /// Moves these partitions to the start of their logs on the next poll.
    pub fn seek_to_beginning(&mut self, partitions: &[TopicPartition]) {
        self.seek_to(partitions, OffsetSpec::Earliest);
    }

    /// Moves these partitions to the end of their logs on the next poll.
    pub fn seek_to_end(&mut self, partitions: &[TopicPartition]) {
        self.seek_to(partitions, OffsetSpec::Latest);
    }

    fn seek_to(&mut self, partitions: &[TopicPartition], spec: OffsetSpec) {
        for tp in partitions {
            if let Some(position) = self.positions.get_mut(tp) {
                *position = None;
                self.reset_to.insert(tp.clone(), spec);
                self.awaiting_committed.remove(tp);
                self.discard(tp);
            }
        }
    }

    /// Stops fetching these partitions until `resume`; records already
    /// fetched for them are not handed out meanwhile.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if self.positions.contains_key(tp) {
                self.paused.insert(tp.clone());
            }
        }
    }

    /// Fetches these partitions again.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.paused.remove(tp);
        }
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    /// Commits the given offsets (the next offset to read, per partition).
    /// Like [`commit`](Self::commit), it comes after any `commit_async`
    /// still running.
    pub async fn commit_offsets(&mut self, offsets: &BTreeMap<TopicPartition, i64>) -> Result<()> {
        self.settle_commits().await?;
        let group = self.group.as_mut().ok_or_else(|| no_group("commit"))?;
        group.commit(&self.network, offsets).await?;
        self.counted_commit();
        Ok(())
    }

    /// The group's committed offsets for these partitions, including those
    /// of any `commit_async` still running (it waits for them).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>> {
        self.settle_commits().await?;
        let group = self.group.as_mut().ok_or_else(|| no_group("committed"))?;
        group.committed(&self.network, partitions).await
    }

    /// [`commit_offsets`](Self::commit_offsets) with a leader epoch and a
    /// metadata string per partition, as Java's `commitSync` with
    /// `OffsetAndMetadata`; [`committed_with_metadata`](Self::committed_with_metadata)
    /// reads them back.
    pub async fn commit_offsets_with_metadata(
        &mut self,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
    ) -> Result<()> {
        self.settle_commits().await?;
        let group = self.group.as_mut().ok_or_else(|| no_group("commit"))?;
        group.commit_with_metadata(&self.network, offsets).await?;
        self.counted_commit();
        Ok(())
    }

    /// [`committed`](Self::committed) with each offset's leader epoch and
    /// the metadata committed with it.
    pub async fn committed_with_metadata(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, OffsetAndMetadata>> {
        self.settle_commits().await?;
        let group = self.group.as_mut().ok_or_else(|| no_group("committed"))?;
        group
            .committed_with_metadata(&self.network, partitions)
            .await
    }

    /// Fetches ahead after a hand-out (which made room); the next `poll`
    /// takes the answer.
    ///
    /// Without a long-poll wait: the broker answers at once with what it
    /// has. Brokers answer a connection's requests in order, and this
    /// fetch shares the connection with the group's requests (commits,
    /// heartbeats, JoinGroup): a fetch waiting out `fetch.max.wait.ms` on
    /// the broker while the application works would hold those back. The
    /// long poll is left to `poll` itself when nothing is buffered, bounded
    /// by its timeout, as before prefetching.
    fn prefetch(&mut self) {
        self.send_fetches(Duration::ZERO);
    }

    /// Sends a fetch to each leader that has none in flight, for its
    /// partitions that have a position, are not paused, not already being
    /// fetched and hold less than `max.partition.fetch.bytes` of buffered
    /// (undecoded) data; nothing while the buffer holds `fetch.max.bytes`
    /// in all. So buffered data stays under about twice the fetch limits,
    /// per partition and in all, whatever the compression ratio: records
    /// are decoded only as they are handed out.
    ///
    /// The fetches run in tasks of their own, so they proceed while the
    /// application processes what `poll` returned (Java's prefetch); their
    /// answers are applied by the next `poll`.
    fn send_fetches(&mut self, max_wait: Duration) {
        let fetch_max = usize::try_from(self.settings.fetch_max_bytes).unwrap_or(0);
        let partition_max = usize::try_from(self.settings.max_partition_fetch_bytes).unwrap_or(0);
        let metadata = self.network.metadata();
        let fetched: std::collections::BTreeSet<&str> =
            self.positions.keys().map(|tp| tp.topic.as_str()).collect();
        let recreated = self.watch.recreated(&metadata, fetched);
        for topic in recreated {
            let partitions: Vec<TopicPartition> = self
                .positions
                .keys()
                .filter(|tp| tp.topic == topic)
                .cloned()
                .collect();
            for tp in partitions {
                self.discard(&tp);
                self.positions.insert(tp, None);
            }
        }
        let (total, per_partition) = self.buffered.bytes();
        if total >= fetch_max.max(1) {
            return;
        }
        let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64)>> = HashMap::new();
        for (tp, position) in &self.positions {
            let Some(position) = position else { continue };
            if self.paused.contains(tp)
                || per_partition.get(tp).copied().unwrap_or(0) >= partition_max.max(1)
                || self.in_flight.values().any(|f| f.sent.contains_key(tp))
            {
                continue;
            }
            match metadata.leader(&tp.topic, tp.partition) {
                Some(leader) if !self.in_flight.contains_key(&leader.id) => by_leader
                    .entry(leader.id)
                    .or_default()
                    .push((tp.clone(), *position)),
                Some(_) => {}
                None => self.refresh_due = true,
            }
        }
        drop(per_partition);
        let read_committed = self.settings.isolation_level == IsolationLevel::ReadCommitted;
        for (leader, partitions) in by_leader {
            let topics = fetch_request::topics(
                &partitions,
                &metadata,
                self.settings.max_partition_fetch_bytes,
            );
            let mut request = FetchRequest {
                replica_id: -1,
                max_wait_ms: i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX),
                min_bytes: self.settings.fetch_min_bytes,
                max_bytes: self.settings.fetch_max_bytes,
                isolation_level: i8::from(read_committed),
                session_epoch: -1,
                topics,
                ..Default::default()
            };
            // The version decides whether there is a session and whether it
            // names topics by id; it is known once the broker is connected.
            let version = self
                .network
                .open_connection(leader)
                .and_then(|c| c.negotiated(ApiKey::Fetch))
                .map(|newest| fetch_request::version(&request, newest));
            let names = fetch_request::names(&request.topics);
            let session = self
                .sessions
                .entry(leader)
                .or_default()
                .build(std::mem::take(&mut request.topics), version);
            request.session_id = session.session_id;
            request.session_epoch = session.session_epoch;
            request.topics = session.topics;
            request.forgotten_topics_data = session.forgotten;
            let network = self.network.clone();
            let task = tokio::spawn(
                async move {
                    let connection = network.broker(leader).await?;
                    let sent = tokio::time::Instant::now();
                    let response =
                        fetch_request::send(&connection, &request, version, &names).await?;
                    Ok::<_, Error>((response, sent.elapsed()))
                }
                .instrument(tracing::debug_span!("fetch", broker = leader)),
            );
            self.in_flight.insert(
                leader,
                fetcher::InFlight {
                    task,
                    sent: partitions.into_iter().collect(),
                },
            );
        }
    }

    /// Topics a fetch called unknown and a metadata refresh does not list:
    /// deleted. Partitions assigned by hand are the application's to
    /// change, so that is an error of `poll` (UNKNOWN_TOPIC_OR_PARTITION);
    /// a group member's subscription loses them in the rebalance the
    /// deletion starts, so for it the deletion is only logged.
    fn check_gone_topics(&mut self, metadata: &crate::network::ClusterMetadata) -> Result<()> {
        let gone = self.watch.gone(metadata);
        if gone.is_empty() {
            return Ok(());
        }
        tracing::warn!(topics = ?gone, "fetched topics no longer exist");
        if self.subscribed() {
            return Ok(());
        }
        Err(Error::kafka(
            ErrorCode::UnknownTopicOrPartition,
            format!(
                "assigned topic {} no longer exists (deleted); assign other partitions to go on",
                gone.join(", ")
            ),
        ))
    }

    /// Applies answered fetches; the first failure is returned after all
    /// of them are applied.
    fn apply_fetches(&mut self, answers: Vec<FetchDone>) -> Result<()> {
        let mut first_error = None;
        for (broker, sent, answer) in answers {
            if let Err(e) = self.apply_fetch(broker, sent, answer) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Buffers one fetch's answer, partition by partition, for the
    /// partitions still wanted from the offset they were fetched at. The
    /// rest is stale (the position was moved by a seek, a reset, a
    /// rebalance or a revocation while the fetch was in flight) and is
    /// dropped: buffering it would hand out records twice or skip some.
    fn apply_fetch(
        &mut self,
        broker: i32,
        sent: HashMap<TopicPartition, i64>,
        answer: std::result::Result<fetcher::FetchAnswer, tokio::task::JoinError>,
    ) -> Result<()> {
        let session = self.sessions.entry(broker).or_default();
        match &answer {
            Ok(Ok((response, _))) => session.answered(response),
            _ => session.failed(),
        }
        let response = match answer {
            Ok(Ok((response, latency))) => {
                self.counters.fetches += 1;
                self.counters.fetch_time += latency;
                response
            }
            Ok(Err(e)) if e.retriable() => {
                tracing::debug!(broker, error = %e, "fetch failed; metadata is refreshed");
                self.refresh_due = true;
                return Ok(());
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(Error::Protocol(format!("fetch task: {e}"))),
        };
        // A whole-request error (v7+: a fetch session the broker lost, a
        // throttled or refused request) answers no partition.
        let top = code(response.error_code);
        if !top.is_ok() {
            tracing::warn!(
                broker,
                error = top.name(),
                "fetch answered an error for the whole request"
            );
            if top.retriable() {
                self.refresh_due = true;
                return Ok(());
            }
            return Err(Error::kafka(top, format!("fetch from broker {broker}")));
        }
        let read_committed = self.settings.isolation_level == IsolationLevel::ReadCommitted;
        let mut first_error = None;
        for topic in response.responses {
            for data in topic.partitions {
                let tp = TopicPartition {
                    topic: topic.topic.clone(),
                    partition: data.partition_index,
                };
                let Some(&offset) = sent.get(&tp) else {
                    self.watch.unasked(&tp, broker);
                    continue;
                };
                if self.positions.get(&tp) != Some(&Some(offset)) {
                    continue;
                }
                let error = code(data.error_code);
                if error.is_ok() {
                    self.watch.partition_ok(&tp);
                } else {
                    self.watch.partition_error(&tp, broker, error);
                }
                match error {
                    ErrorCode::None => {}
                    ErrorCode::OffsetOutOfRange
                        if self.settings.auto_offset_reset == OffsetReset::None =>
                    {
                        // Java's OffsetOutOfRangeException: the position
                        // stays, the application seeks. The rest of the
                        // response is still used.
                        first_error.get_or_insert(Error::kafka(
                            ErrorCode::OffsetOutOfRange,
                            format!(
                                "fetch {}-{} at offset {offset} with auto.offset.reset=none; seek to go on",
                                tp.topic, tp.partition,
                            ),
                        ));
                        continue;
                    }
                    ErrorCode::OffsetOutOfRange => {
                        tracing::info!(
                            topic = tp.topic,
                            partition = tp.partition,
                            reset = self.settings.auto_offset_reset.name(),
                            "position out of range; resetting"
                        );
                        self.discard(&tp);
                        self.positions.insert(tp, None);
                        continue;
                    }
                    c if c.retriable() => {
                        self.refresh_due = true;
                        continue;
                    }
                    c => {
                        first_error.get_or_insert(Error::kafka(
                            c,
                            format!("fetch {}-{}", tp.topic, tp.partition),
                        ));
                        continue;
                    }
                }
                // read_committed consumers can only get to the last
                // stable offset, so their lag is measured from it (as
                // Java's records-lag is).
                let end = if read_committed && data.last_stable_offset >= 0 {
                    data.last_stable_offset
                } else {
                    data.high_watermark
                };
                self.counters.high_watermarks.insert(tp.clone(), end);
                let aborted: Vec<(i64, i64)> = data
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|t| (t.producer_id, t.first_offset))
                    .collect();
                let records = data.records.unwrap_or_default();
                match fetcher::Chunk::new(
                    tp.clone(),
                    records,
                    offset,
                    aborted,
                    self.settings.check_crcs,
                ) {
                    Ok((chunk, next)) => {
                        self.positions.insert(tp, Some(next));
                        if let Some(chunk) = chunk {
                            self.buffered.push(chunk);
                        }
                    }
                    // The position stays: the next fetch meets it again.
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A fetch that was answered: its broker, the partitions it was still
/// wanted for, and its answer.
type FetchDone = (
    i32,
    HashMap<TopicPartition, i64>,
    std::result::Result<fetcher::FetchAnswer, tokio::task::JoinError>,
);

/// Takes the fetches in flight that have been answered.
fn finished(
    in_flight: &mut HashMap<i32, fetcher::InFlight>,
    cx: &mut Context<'_>,
) -> Vec<FetchDone> {
    let mut ready = Vec::new();
    for (broker, fetch) in in_flight.iter_mut() {
        if let Poll::Ready(answer) = Pin::new(&mut fetch.task).poll(cx) {
            ready.push((*broker, answer));
        }
    }
    let mut done = Vec::with_capacity(ready.len());
    for (broker, answer) in ready {
        if let Some(mut fetch) = in_flight.remove(&broker) {
            done.push((broker, std::mem::take(&mut fetch.sent), answer));
        }
    }
    done
}
