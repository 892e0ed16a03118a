//! IncrementalAlterConfigs (KIP-339) and the legacy AlterConfigs, for
//! topics.
//!
//! AlterConfigs replaces a topic's whole set of explicit settings (what it
//! leaves out returns to the default); IncrementalAlterConfigs applies SET,
//! DELETE, APPEND and SUBTRACT to single names, APPEND and SUBTRACT only to
//! list-valued ones as Kafka's `ConfigAdminManager` allows. Either way the
//! result is validated as CreateTopics validates configs and nothing of a
//! resource is applied unless all of it is valid. Broker settings are fixed
//! at start-up here, so BROKER resources are refused.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ErrorCode;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};

use super::RequestContext;

/// Kafka's `ConfigResource.Type` ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Kafka's `AlterConfigOp.OpType` ids.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Topic settings whose values are comma-separated lists, with their
/// defaults (the base an APPEND to an unset name starts from).
const LIST_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("leader.replication.throttled.replicas", ""),
    ("follower.replication.throttled.replicas", ""),
];

type Refusal = (ErrorCode, String);

fn invalid_request(message: String) -> Refusal {
    (ErrorCode::InvalidRequest, message)
}

/// IncrementalAlterConfigs: each resource's operations, applied together
/// or not at all.
pub(crate) fn incremental(
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let ops: Vec<(String, i8, Option<String>)> = resource
                .configs
                .into_iter()
                .map(|c| (c.name, c.config_operation, c.value))
                .collect();
            let outcome = alter(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                ops.iter().map(|(name, _, _)| name.as_str()),
                |current| apply_ops(current, &ops),
            );
            let (error_code, error_message) = split(outcome);
            incremental_alter_configs_response::AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: resource.resource_type,
                resource_name: resource.resource_name,
                ..Default::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

/// AlterConfigs: each resource's explicit settings become exactly those
/// given; a null value leaves that name out, as Kafka's does.
pub(crate) fn replace(ctx: &RequestContext, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let configs = &resource.configs;
            let outcome = alter(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                configs.iter().map(|c| c.name.as_str()),
                |_| {
                    Ok(configs
                        .iter()
                        .filter_map(|c| Some((c.name.clone(), c.value.clone()?)))
                        .collect())
                },
            );
            let (error_code, error_message) = split(outcome);
            alter_configs_response::AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: resource.resource_type,
                resource_name: resource.resource_name,
                ..Default::default()
            }
        })
        .collect();
    AlterConfigsResponse {
        responses,
        ..Default::default()
    }
}

fn split(outcome: Result<(), Refusal>) -> (i16, Option<String>) {
    match outcome {
        Ok(()) => (ErrorCode::None.code(), None),
        Err((code, message)) => (code.code(), Some(message)),
    }
}

/// The checks both APIs share, then the topic's change.
fn alter<'a>(
    ctx: &RequestContext,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    mut names: impl Iterator<Item = &'a str>,
    edit: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, Refusal>,
) -> Result<(), Refusal> {
    match resource_type {
        TOPIC => {}
        BROKER => {
            return Err(invalid_request(format!(
                "broker `{name}`: broker configs are fixed when this broker starts \
                 (BrokerConfig or --config) and cannot be altered"
            )));
        }
        other => {
            return Err(invalid_request(format!(
                "resource type {other} is not supported"
            )));
        }
    }
    let mut seen = HashSet::new();
    if let Some(duplicate) = names.find(|n| !seen.insert(*n)) {
        return Err(invalid_request(format!(
            "config `{duplicate}` is named more than once"
        )));
    }
    ctx.shared.alter_topic_config(name, validate_only, edit)
}

/// The explicit settings after IncrementalAlterConfigs' operations, in
/// request order.
fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, i8, Option<String>)],
) -> Result<BTreeMap<String, String>, Refusal> {
    let mut entries = current.clone();
    for (name, op, value) in ops {
        let value = value.as_deref();
        match (*op, value) {
            (DELETE, _) => {
                entries.remove(name);
            }
            (SET | APPEND | SUBTRACT, None) => {
                return Err(invalid_request(format!("null value for config `{name}`")));
            }
            (SET, Some(value)) => {
                entries.insert(name.clone(), value.to_owned());
            }
            (APPEND | SUBTRACT, Some(value)) => {
                let default = list_default(name)?;
                let base = entries.get(name).map_or(default, String::as_str);
                let mut items: Vec<&str> = split_list(base);
                let given = split_list(value);
                if *op == APPEND {
                    // Kafka adds only what is not there yet.
                    for item in given {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    }
                } else {
                    items.retain(|item| !given.contains(item));
                }
                let joined = items.join(",");
                entries.insert(name.clone(), joined);
            }
            (other, _) => {
                return Err(invalid_request(format!(
                    "unknown config operation {other} for `{name}`"
                )));
            }
        }
    }
    Ok(entries)
}

/// The default of a list-valued setting, or why APPEND/SUBTRACT cannot
/// apply to `name`.
fn list_default(name: &str) -> Result<&'static str, Refusal> {
    if let Some(&(_, default)) = LIST_CONFIGS.iter().find(|(n, _)| *n == name) {
        Ok(default)
    } else if crate::topic_config_names::is_known(name) {
        Err(invalid_request(format!(
            "config `{name}` is not a list: APPEND and SUBTRACT do not apply to it"
        )))
    } else {
        Err((
            ErrorCode::InvalidConfig,
            format!("unknown topic config name `{name}`"),
        ))
    }
}

fn split_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, op: i8, value: Option<&str>) -> (String, i8, Option<String>) {
        (name.to_owned(), op, value.map(str::to_owned))
    }

    #[test]
    fn operations_apply_in_order_and_lists_append_and_subtract_items() {
        let current = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
        let result = apply_ops(
            &current,
            &[
                op("retention.bytes", SET, Some("77")),
                op("retention.ms", DELETE, None),
                op(
                    "leader.replication.throttled.replicas",
                    APPEND,
                    Some("0:1,0:2"),
                ),
                op(
                    "leader.replication.throttled.replicas",
                    APPEND,
                    Some("0:2,1:1"),
                ),
                op(
                    "leader.replication.throttled.replicas",
                    SUBTRACT,
                    Some("0:1"),
                ),
                op("cleanup.policy", APPEND, Some("delete")),
            ],
        )
        .unwrap();
        assert_eq!(
            result,
            BTreeMap::from([
                ("retention.bytes".to_owned(), "77".to_owned()),
                (
                    "leader.replication.throttled.replicas".to_owned(),
                    "0:2,1:1".to_owned()
                ),
                ("cleanup.policy".to_owned(), "delete".to_owned()),
            ])
        );
    }

    #[test]
    fn append_to_a_scalar_unknown_names_null_values_and_bad_ops_are_refused() {
        let none = BTreeMap::new();
        let code = |ops| apply_ops(&none, &[ops]).unwrap_err().0;
        assert_eq!(
            code(op("retention.ms", APPEND, Some("1"))),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(op("retention.ms", SUBTRACT, Some("1"))),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(op("no.such.config", APPEND, Some("1"))),
            ErrorCode::InvalidConfig
        );
        assert_eq!(
            code(op("retention.ms", SET, None)),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(op("retention.ms", 9, Some("1"))),
            ErrorCode::InvalidRequest
        );
    }
}
