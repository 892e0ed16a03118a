//! Fault injection for tests: rules matched against each request a broker
//! receives. Rules are added through [`crate::Cluster`] and removed through
//! the [`FaultHandle`] they return (or run out after their count).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::{ApiKey, ErrorCode};

use crate::state::lock;

/// What happens to a request that matches a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// Apply the request but never send its response (the ambiguous case:
    /// the client cannot tell whether it took effect).
    DropResponse,
    /// Apply the request and send its response after this delay.
    Delay(Duration),
    /// Close the connection before the request is applied.
    CloseConnection,
    /// Answer with this error code everywhere the response has one, without
    /// applying the request (for the APIs clients retry on: produce, fetch,
    /// list offsets, the group, offset and transaction APIs; others are
    /// served normally).
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

#[derive(Debug, Default)]
struct Rules {
    next_id: u64,
    rules: Vec<Rule>,
}

/// The fault rules of a cluster.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    rules: Arc<Mutex<Rules>>,
}

/// A rule that was added; [`remove`](Self::remove) undoes it. Dropping the
/// handle leaves the rule in place.
#[derive(Debug, Clone)]
pub struct FaultHandle {
    id: u64,
    faults: Faults,
}

impl FaultHandle {
    /// Removes the rule; requests are served normally again.
    pub fn remove(&self) {
        lock(&self.faults.rules).rules.retain(|r| r.id != self.id);
    }

    /// How many requests the rule has acted on so far (0 once removed).
    pub fn hits(&self) -> u64 {
        lock(&self.faults.rules)
            .rules
            .iter()
            .find(|r| r.id == self.id)
            .map_or(0, |r| r.hits)
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
}
