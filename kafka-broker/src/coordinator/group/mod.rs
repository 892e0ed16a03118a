//! The classic group coordinator: consumer-group membership (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup) and committed offsets, kept in memory.
//!
//! This follows Apache Kafka's classic `GroupCoordinator` / `GroupMetadata`
//! (the pre-KIP-848 protocol every client still speaks). One
//! [`GroupCoordinator`] holds every group of the cluster; the request
//! dispatcher checks that the broker coordinates the group, decodes the
//! request, calls the matching method and encodes the answer at the request's
//! version.
//!
//! # The state machine
//!
//! ```text
//!          first join                   every member rejoined
//!  Empty ─────────────► PreparingRebalance ─────────────────────► CompletingRebalance
//!    ▲                    ▲   │          (or the rebalance timeout)       │    │
//!    │   no member left   │   │                                           │    │ leader's
//!    └────────────────────┼───┘                                           │    │ SyncGroup
//!                         │          join, leave, session expiry          │    ▼
//!                         └───────────────────────────────────────────────┴─ Stable
//! ```
//!
//! - **Empty**: no members; may still hold committed offsets (a group used
//!   only for manual commits stays Empty forever).
//! - **PreparingRebalance**: members are (re)joining. Each JoinGroup call
//!   waits until every known member has rejoined, or until the rebalance
//!   timeout (the largest `rebalance_timeout_ms` of the members) expires;
//!   dynamic members that did not rejoin are then removed (static members
//!   stay until their session expires, as in Kafka). The first
//!   rebalance of an Empty group may wait `initial_rebalance_delay_ms` for
//!   more members (Kafka's `group.initial.rebalance.delay.ms`).
//! - **CompletingRebalance**: the generation was bumped and the protocol
//!   chosen; the leader received every member's metadata and computes the
//!   assignment. Followers' SyncGroup calls wait for the leader's. Members
//!   that send no SyncGroup within the rebalance timeout are removed and the
//!   group rebalances again.
//! - **Stable**: the assignment is known; members heartbeat. A join from the
//!   leader or with changed metadata, a leave, or a missed heartbeat starts
//!   the next rebalance.
//! - **Dead**: the group does not exist (reported by DescribeGroups for
//!   unknown groups; deleted groups are dropped from memory).
//!
//! Every member has a session deadline that heartbeats, joins and syncs push
//! back; a member that lets it pass is removed and the group rebalances.
//! Deadlines run on one tokio task per group that holds only a [`Weak`]
//! reference to the coordinator and a wake-up channel owned by the group, so
//! the task ends as soon as the group is deleted or the coordinator dropped.
//!
//! Committed offsets, including transactional offsets that only become
//! visible when their transaction commits, live in the same group state; see
//! [`GroupCoordinator::offset_commit`] and
//! [`GroupCoordinator::add_pending_txn_offsets`].

mod admin;
mod membership;
mod offset_delete;
mod offsets;
mod state;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::watch;
use tokio::time::{Duration, Instant};
use tracing::{debug, warn};

pub use self::offsets::MAX_OFFSET_METADATA_BYTES;
pub(crate) use self::offsets::OffsetEntry;
use self::state::Group;

/// Settings of the group coordinator, named after Kafka's broker properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: the smallest session timeout a member
    /// may ask for; JoinGroup below it fails with `INVALID_SESSION_TIMEOUT`.
    /// Default 6000.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`: the largest session timeout a member
    /// may ask for. Default 1 800 000 (30 minutes).
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an
    /// Empty group waits for more members before completing (extended by the
    /// same delay while members keep arriving, up to the rebalance timeout).
    /// Kafka defaults to 3000; ours is 0 so tests do not wait.
    pub initial_rebalance_delay_ms: u64,
    /// `group.max.size`: the most members a group may have; further joins fail
    /// with `GROUP_MAX_SIZE_REACHED`. Default `i32::MAX`.
    pub max_group_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 0,
            max_group_size: i32::MAX as usize,
        }
    }
}

/// An offset committed for one partition by a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1 when unknown
    /// (OffsetCommit before v6 does not carry it).
    pub leader_epoch: i32,
    /// The client's metadata string, as committed.
    pub metadata: Option<String>,
    /// When the commit was accepted (milliseconds since the Unix epoch), or
    /// the client's timestamp for OffsetCommit v1.
    pub commit_timestamp_ms: i64,
}

/// The state of a classic group, as Kafka names it in DescribeGroups and
/// ListGroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Members are (re)joining; JoinGroup calls wait for the rebalance to end.
    PreparingRebalance,
    /// The join phase ended; waiting for the leader's assignment (SyncGroup).
    CompletingRebalance,
    /// Every member has its assignment and heartbeats.
    Stable,
    /// The group does not exist.
    Dead,
}

impl GroupState {
    /// Kafka's name for the state ("Empty", "PreparingRebalance", ...).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::PreparingRebalance => "PreparingRebalance",
            Self::CompletingRebalance => "CompletingRebalance",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kafka's classic group coordinator for every group of the cluster.
///
/// Cheap to share: [`GroupCoordinator::new`] returns an [`Arc`], and the
/// membership calls take `self: &Arc<Self>` so that the per-group timer tasks
/// they start can hold a [`Weak`] reference back. Those tasks need a tokio
/// runtime; without one (a plain thread calling the synchronous methods)
/// session deadlines are not enforced and a warning is logged.
///
/// All state sits behind one [`Mutex`] that is never held across an
/// `.await`: a JoinGroup or SyncGroup that has to wait registers a oneshot
/// channel under the lock and awaits it after releasing the lock. A waiting
/// call may be dropped (its client disconnected) without harm.
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: Mutex<HashMap<String, Group>>,
}

impl fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("config", &self.config)
            .field("groups", &self.lock_groups().len())
            .finish()
    }
}

impl GroupCoordinator {
    /// Creates a coordinator with no groups.
    pub fn new(config: GroupConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            groups: Mutex::new(HashMap::new()),
        })
    }

    /// The settings this coordinator was created with.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The current state of a group, or `None` if the coordinator does not
    /// know it.
    pub fn group_state(&self, group_id: &str) -> Option<GroupState> {
        self.lock_groups().get(group_id).map(|group| group.state)
    }

    /// Locks the group map. A poisoned lock (a panic elsewhere while holding
    /// it) is taken over rather than propagated: the coordinator must keep
    /// answering, and every mutation leaves the map consistent between
    /// statements that can panic.
    fn lock_groups(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes sure the group's timer task sees its current deadlines: wakes
    /// the task if there is one, or starts one if the group has a deadline.
    fn touch_timer(self: &Arc<Self>, group: &mut Group) {
        if let Some(wake) = &group.timer {
            wake.send_replace(());
            return;
        }
        if group.next_deadline().is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            warn!(
                group = %group.group_id,
                "no tokio runtime: session and rebalance timeouts are not enforced for this group"
            );
            return;
        };
        let (wake, woken) = watch::channel(());
        runtime.spawn(run_group_timer(
            Arc::downgrade(self),
            group.group_id.clone(),
            woken,
        ));
        group.timer = Some(wake);
    }

    /// Runs whatever deadlines of the group have passed. Returns `None` if
    /// the group is gone, else its next deadline (if any).
    fn run_group_deadlines(&self, group_id: &str) -> Option<Option<Instant>> {
        let now = Instant::now();
        let mut groups = self.lock_groups();
        let group = groups.get_mut(group_id)?;
        Some(group.on_timer(&self.config, now))
    }
}

/// The shortest time between two runs of a group's timer task.
const MIN_TIMER_PERIOD: Duration = Duration::from_millis(10);

/// The timer task of one group: sleeps until the group's next deadline (a
/// member's session, a pending member id, the rebalance or sync timeout),
/// runs it, and starts over; woken early whenever the group changes.
///
/// It holds only a [`Weak`] reference to the coordinator and ends when the
/// coordinator is gone or when the wake-up sender (owned by the group) is
/// dropped, i.e. when the group is deleted or the coordinator dropped.
async fn run_group_timer(
    coordinator: Weak<GroupCoordinator>,
    group_id: String,
    mut woken: watch::Receiver<()>,
) {
    loop {
        let ran_at = Instant::now();
        let next = {
            let Some(coordinator) = coordinator.upgrade() else {
                break;
            };
            let Some(next) = coordinator.run_group_deadlines(&group_id) else {
                break;
            };
            next
            // The strong reference is dropped here, before sleeping.
        };
        let still_open = match next {
            Some(deadline) => tokio::select! {
                // Every passed deadline is handled (removed, pushed back or
                // cleared) by the run above; the floor only guards against a
                // bug turning this loop into a spin.
                () = tokio::time::sleep_until(deadline.max(ran_at + MIN_TIMER_PERIOD)) => true,
                changed = woken.changed() => changed.is_ok(),
            },
            None => woken.changed().await.is_ok(),
        };
        if !still_open {
            break;
        }
    }
    debug!(group = %group_id, "group timer stopped");
}
