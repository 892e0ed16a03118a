//! The background heartbeat of a joined group member: keeps the session
//! alive, notices when the group rebalances or forgot the member, and leaves
//! when the application stopped polling.
//!
//! A coordinator that cannot be reached or moved is not a rebalance: as in
//! Java's `AbstractCoordinator`, the member finds the coordinator again and
//! goes on heartbeating in the same generation, with a backoff between
//! attempts. Rejoining at once would make the coordinator rebalance the
//! whole group for one member's dropped connection. Only when a whole
//! session timeout passes without an answered heartbeat does the member
//! take its generation as over (the coordinator has removed it by then) and
//! rejoin owning nothing, so it does not go on handing out records of
//! partitions that may be someone else's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::{HeartbeatRequest, LeaveGroupRequest};
use tokio::time::Instant;

use crate::network::{Backoff, Connection, CoordinatorKind, Network, find_coordinator};

/// What the heartbeat shares with its [`Group`](super::group::Group).
#[derive(Debug, Clone)]
pub(crate) struct MemberFlags {
    /// Set when the member must rejoin before fetching.
    pub rejoin: Arc<AtomicBool>,
    /// Set when the member's generation is over: its partitions are lost.
    pub lost: Arc<AtomicBool>,
    /// Set when the member left because it did not poll in time.
    pub poll_timeout: Arc<AtomicBool>,
    /// When the application last polled, in ms since `clock`.
    pub last_poll: Arc<AtomicU64>,
    pub clock: std::time::Instant,
}

/// One member's heartbeat, run by [`Heartbeat::run`] until the member must
/// rejoin or leave.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    pub network: Arc<Network>,
    pub group_id: String,
    /// The connection the join used; replaced when it closes or the
    /// coordinator moves.
    pub coordinator: Connection,
    pub request: HeartbeatRequest,
    /// Whether to send LeaveGroup when `max.poll.interval.ms` passes
    /// without a poll (not for a static member, which keeps its membership
    /// until its session ends).
    pub leave: bool,
    pub interval: Duration,
    pub session_timeout: Duration,
    pub max_poll_interval: Duration,
    pub flags: MemberFlags,
}

/// What one heartbeat attempt showed.
enum Beat {
    /// Answered without error: the session goes on.
    Alive,
    /// The coordinator could not be reached, moved or is loading: find it
    /// again and retry.
    Unreachable(String),
    /// The member must rejoin; `lost` when its generation is over.
    Rejoin { lost: bool },
}

impl Heartbeat {
    pub(crate) async fn run(self) {
        let Heartbeat {
            network,
            group_id,
            coordinator,
            request,
            leave,
            interval,
            session_timeout,
            max_poll_interval,
            flags,
        } = self;
        let mut coordinator = Some(coordinator);
        let mut backoff = Backoff::new(
            Duration::from_millis(100),
            interval.max(Duration::from_millis(100)),
        );
        let mut last_answered = Instant::now();
        let mut pause = interval;
        loop {
            tokio::time::sleep(pause).await;
            let since_poll = (flags.clock.elapsed().as_millis() as u64)
                .saturating_sub(flags.last_poll.load(Ordering::Acquire));
            if since_poll > max_poll_interval.as_millis() as u64 {
                // As Java does: a consumer that stopped polling leaves so
                // its partitions go to members that are making progress.
                tracing::warn!(
                    since_poll,
                    "max.poll.interval.ms passed without a poll; leaving the group"
                );
                if let Some(c) = coordinator.as_ref().filter(|_| leave) {
                    send_leave(c, &request).await;
                }
                flags.lost.store(true, Ordering::Release);
                flags.poll_timeout.store(true, Ordering::Release);
                flags.rejoin.store(true, Ordering::Release);
                return;
            }
            // Nothing answered after the session ends matters: by then the
            // coordinator has removed this member.
            let session_end = last_answered + session_timeout;
            let beat = match coordinator.take().filter(|c| !c.is_closed()) {
                Some(c) => {
                    let beat = beat(&c, &request, session_end).await;
                    if matches!(beat, Beat::Alive) {
                        coordinator = Some(c);
                    }
                    beat
                }
                None => {
                    // A connection that retired (KIP-368) or broke, or a
                    // coordinator that moved: ask where it is now.
                    let deadline = session_end.max(Instant::now() + Duration::from_millis(100));
                    match find_coordinator(&network, CoordinatorKind::Group, &group_id, deadline)
                        .await
                    {
                        Ok(c) => {
                            let beat = beat(&c, &request, session_end).await;
                            if matches!(beat, Beat::Alive) {
                                coordinator = Some(c);
                            }
                            beat
                        }
                        Err(e) if e.retriable() => Beat::Unreachable(e.to_string()),
                        // Refused credentials and the like: the join shows them.
                        Err(_) => Beat::Rejoin { lost: false },
                    }
                }
            };
            match beat {
                Beat::Alive => {
                    last_answered = Instant::now();
                    backoff.reset();
                    pause = interval;
                }
                Beat::Rejoin { lost } => {
                    if lost {
                        flags.lost.store(true, Ordering::Release);
                    }
                    flags.rejoin.store(true, Ordering::Release);
                    return;
                }
                Beat::Unreachable(reason) => {
                    if last_answered.elapsed() >= session_timeout {
                        tracing::warn!(
                            %reason,
                            "no heartbeat answered within session.timeout.ms; rejoining"
                        );
                        flags.lost.store(true, Ordering::Release);
                        flags.rejoin.store(true, Ordering::Release);
                        return;
                    }
                    tracing::debug!(%reason, "heartbeat failed; finding the coordinator again");
                    pause = backoff.next_delay();
                }
            }
        }
    }
}

/// Sends one heartbeat on `coordinator`, waiting no longer than `session_end`.
async fn beat(coordinator: &Connection, request: &HeartbeatRequest, session_end: Instant) -> Beat {
    let Ok(version) = coordinator.version_for::<HeartbeatRequest>() else {
        return Beat::Rejoin { lost: false };
    };
    let request = if version >= 3 {
        request.clone()
    } else {
        HeartbeatRequest {
            group_instance_id: None,
            ..request.clone()
        }
    };
    let deadline = session_end.max(Instant::now() + Duration::from_millis(100));
    let answer = match tokio::time::timeout_at(deadline, coordinator.call(&request, version)).await
    {
        Ok(answer) => answer,
        Err(_) => return Beat::Unreachable("no answer before the session ended".into()),
    };
    match answer {
        Ok(r) if r.error_code == 0 => Beat::Alive,
        Ok(r) => {
            let code = ErrorCode::from_code(r.error_code).unwrap_or(ErrorCode::UnknownServerError);
            if matches!(
                code,
                ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::CoordinatorLoadInProgress
            ) {
                return Beat::Unreachable(code.to_string());
            }
            tracing::debug!(%code, "heartbeat: rejoin needed");
            Beat::Rejoin {
                lost: super::group::generation_over(code),
            }
        }
        // A broken or retired connection, a timeout: the coordinator again.
        Err(e) if e.retriable() => Beat::Unreachable(e.to_string()),
        Err(e) => {
            tracing::debug!(error = %e, "heartbeat failed; rejoining");
            Beat::Rejoin { lost: false }
        }
    }
}

/// Leaves the group as the member `heartbeat` names. Best effort: the
/// member is gone either way once its session ends.
async fn send_leave(coordinator: &Connection, heartbeat: &HeartbeatRequest) {
    let Ok(version) = coordinator.version_for::<LeaveGroupRequest>() else {
        return;
    };
    let request = super::group::leave_request(
        version,
        &heartbeat.group_id,
        &heartbeat.member_id,
        Some("consumer poll timeout has expired"),
    );
    let _ = coordinator.call(&request, version).await;
}
