//! Fault injection for tests: rules matched against each request a broker
//! receives, and holds on the transaction coordinator's marker writing.
//! Both are added through [`crate::Cluster`] (or [`Faults`]) and removed
//! through the [`FaultHandle`] they return (request rules also run out
//! after their count).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::{ApiKey, ErrorCode};
use tokio::sync::Notify;

use crate::state::lock;

/// What happens to a request that matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Apply the request but never send its response: the ambiguous case,
    /// where the client cannot tell whether it took effect. The connection
    /// then goes silent, as one whose path to the client broke: nothing
    /// more is answered on it and later requests are not applied, until the
    /// client times out and closes it.
    DropResponse,
    /// Apply the request and send its response after this delay.
    Delay(Duration),
    /// Close the connection before the request is applied.
    CloseConnection,
    /// Answer with this error code everywhere the response has one, without
    /// applying the request (for the APIs clients retry on: produce, fetch,
    /// list offsets, delete records, the group, offset and transaction
    /// APIs, and the admin calls CreateTopics, DescribeGroups and
    /// DeleteGroups; others are served normally).
    Error(ErrorCode),
}

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultScope {
    /// Only this API; `None` for every API.
    pub api: Option<ApiKey>,
    /// Only this broker; `None` for every broker.
    pub broker: Option<i32>,
    /// Only the next `count` matching requests; `None` for all of them.
    pub count: Option<u32>,
}

impl FaultScope {
    /// Every request of `api`.
    pub fn api(api: ApiKey) -> Self {
        Self {
            api: Some(api),
            ..Self::default()
        }
    }

    /// Only the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    /// Only requests to `broker`.
    pub fn on_broker(mut self, broker: i32) -> Self {
        self.broker = Some(broker);
        self
    }
}

#[derive(Debug)]
struct Rule {
    id: u64,
    scope: FaultScope,
    action: FaultAction,
    /// How many requests the rule has acted on.
    hits: u64,
}

/// Keeps the transactions of one transactional id in PrepareCommit /
/// PrepareAbort: their EndTxn is answered but the markers wait.
#[derive(Debug)]
struct TxnHold {
    id: u64,
    transactional_id: String,
    /// How many transactions entered a Prepare state under this hold.
    hits: u64,
}

#[derive(Debug, Default)]
struct Rules {
    next_id: u64,
    rules: Vec<Rule>,
    txn_holds: Vec<TxnHold>,
}

/// The fault rules of a cluster.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    rules: Arc<Mutex<Rules>>,
    /// Woken when a hold is removed, so held transactions complete without
    /// waiting for the coordinator's next timer tick.
    released: Arc<Notify>,
}

/// A rule that was added; [`remove`](Self::remove) undoes it. Dropping the
/// handle leaves the rule in place.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    id: u64,
    faults: Faults,
}

impl FaultHandle {
    /// Removes the rule; requests are served normally again, and held
    /// transactions go on to write their markers.
    pub fn remove(&self) {
        {
            let mut rules = lock(&self.faults.rules);
            rules.rules.retain(|r| r.id != self.id);
            rules.txn_holds.retain(|h| h.id != self.id);
        }
        self.faults.released.notify_one();
    }

    /// How many requests the rule has acted on so far, or for a hold how
    /// many transactions it has held (0 once removed).
    pub fn hits(&self) -> u64 {
        let rules = lock(&self.faults.rules);
        rules
            .rules
            .iter()
            .find(|r| r.id == self.id)
            .map(|r| r.hits)
            .or_else(|| {
                rules
                    .txn_holds
                    .iter()
                    .find(|h| h.id == self.id)
                    .map(|h| h.hits)
            })
            .unwrap_or(0)
    }
}

impl Faults {
    /// Adds a rule.
    pub fn add(&self, scope: FaultScope, action: FaultAction) -> FaultHandle {
        let mut rules = lock(&self.rules);
        rules.next_id += 1;
        let id = rules.next_id;
        rules.rules.push(Rule {
            id,
            scope,
            action,
            hits: 0,
        });
        FaultHandle {
            id,
            faults: self.clone(),
        }
    }

    /// Holds the COMMIT/ABORT markers of `transactional_id`'s transactions
    /// until the handle is removed. EndTxn is still answered, so the
    /// transaction stays in PrepareCommit / PrepareAbort, where the
    /// coordinator answers CONCURRENT_TRANSACTIONS and the partitions' last
    /// stable offset stays at the transaction's first offset. Aborts the
    /// coordinator starts itself (a fencing InitProducerId, a timeout) are
    /// held too. [`FaultHandle::hits`] counts the transactions that entered
    /// a Prepare state while the hold was in place.
    pub fn hold_txn_completion(&self, transactional_id: impl Into<String>) -> FaultHandle {
        let mut rules = lock(&self.rules);
        rules.next_id += 1;
        let id = rules.next_id;
        rules.txn_holds.push(TxnHold {
            id,
            transactional_id: transactional_id.into(),
            hits: 0,
        });
        FaultHandle {
            id,
            faults: self.clone(),
        }
    }

    /// Called as a transaction of `transactional_id` enters a Prepare
    /// state: counts it on the holds that will keep it there.
    pub(crate) fn txn_prepared(&self, transactional_id: &str) {
        for hold in lock(&self.rules)
            .txn_holds
            .iter_mut()
            .filter(|h| h.transactional_id == transactional_id)
        {
            hold.hits += 1;
        }
    }

    /// Whether the markers of `transactional_id` must wait.
    pub(crate) fn txn_completion_held(&self, transactional_id: &str) -> bool {
        lock(&self.rules)
            .txn_holds
            .iter()
            .any(|h| h.transactional_id == transactional_id)
    }

    /// Notified (one permit) whenever a hold or rule is removed.
    pub(crate) fn released(&self) -> Arc<Notify> {
        self.released.clone()
    }

    /// The action for a request of `api` arriving at `broker`, if a rule
    /// matches; counted rules are used up here.
    pub(crate) fn on_request(&self, broker: i32, api: ApiKey) -> Option<FaultAction> {
        let mut rules = lock(&self.rules);
        let index = rules.rules.iter().position(|r| {
            r.scope.api.is_none_or(|a| a == api)
                && r.scope.broker.is_none_or(|b| b == broker)
                && r.scope.count.is_none_or(|c| c > 0)
        })?;
        let rule = &mut rules.rules[index];
        rule.hits += 1;
        if let Some(count) = rule.scope.count.as_mut() {
            *count -= 1;
        }
        Some(rule.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_run_out_and_handles_remove_rules() {
        let faults = Faults::default();
        let handle = faults.add(
            FaultScope::api(ApiKey::Produce).times(2),
            FaultAction::DropResponse,
        );
        assert_eq!(faults.on_request(0, ApiKey::Fetch), None);
        assert_eq!(
            faults.on_request(0, ApiKey::Produce),
            Some(FaultAction::DropResponse)
        );
        assert_eq!(
            faults.on_request(1, ApiKey::Produce),
            Some(FaultAction::DropResponse)
        );
        assert_eq!(faults.on_request(0, ApiKey::Produce), None);
        assert_eq!(handle.hits(), 2);
        let close = faults.add(
            FaultScope::default().on_broker(1),
            FaultAction::CloseConnection,
        );
        assert_eq!(faults.on_request(0, ApiKey::Fetch), None);
        assert_eq!(
            faults.on_request(1, ApiKey::Fetch),
            Some(FaultAction::CloseConnection)
        );
        close.remove();
        assert_eq!(faults.on_request(1, ApiKey::Fetch), None);
    }

    #[test]
    fn transaction_holds_match_their_id_count_and_release() {
        let faults = Faults::default();
        let hold = faults.hold_txn_completion("held");
        assert!(faults.txn_completion_held("held"));
        assert!(!faults.txn_completion_held("other"));
        faults.txn_prepared("other");
        faults.txn_prepared("held");
        assert_eq!(hold.hits(), 1);
        // A request rule never matches a hold, and the other way round.
        assert_eq!(faults.on_request(0, ApiKey::EndTxn), None);
        let released = faults.released();
        hold.remove();
        assert!(!faults.txn_completion_held("held"));
        assert_eq!(hold.hits(), 0);
        // The removal left a permit for the coordinator's completion task.
        let woken = ready_at_once(released.notified());
        assert!(woken, "removing a hold wakes the coordinator");
    }

    /// Whether `future` is ready on its first poll.
    fn ready_at_once(future: impl std::future::Future<Output = ()>) -> bool {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        future.as_mut().poll(&mut cx).is_ready()
    }
}
