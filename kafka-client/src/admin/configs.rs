//! Reading and changing topic and broker configs.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};

use super::{Admin, Answer, Outcome, check};
use crate::network::Connection;
use crate::{Error, Result};

/// What a config belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id (its configs are asked of that broker).
    Broker(i32),
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(name) => (2, name.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
        }
    }

    fn from_wire(resource_type: i8, name: &str) -> Option<Self> {
        match resource_type {
            2 => Some(ConfigResource::Topic(name.to_owned())),
            4 => name.parse().ok().map(ConfigResource::Broker),
            _ => None,
        }
    }
}

/// Where a config's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically on this broker.
    DynamicBroker,
    /// Set dynamically as the default of every broker.
    DynamicDefaultBroker,
    /// The broker's configuration file.
    StaticBroker,
    /// Kafka's default.
    Default,
    /// Something else (a logger, a group config...), by its code.
    Other(i8),
}

impl ConfigSource {
    fn from_wire(source: i8) -> Self {
        match source {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }
}

/// One config as [`Admin::describe_configs`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config's name, such as `retention.ms`.
    pub name: String,
    /// Its value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed at run time.
    pub read_only: bool,
    /// Whether its value is hidden (passwords).
    pub sensitive: bool,
}

/// One change of [`Admin::incremental_alter_configs`] (KIP-339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets the config to the value.
    Set(String, String),
    /// Removes the config, back to its default.
    Delete(String),
    /// Adds the value to a list config.
    Append(String, String),
    /// Removes the value from a list config.
    Subtract(String, String),
}

impl AlterConfigOp {
    fn wire(&self) -> AlterableConfig {
        let (name, operation, value) = match self {
            AlterConfigOp::Set(name, value) => (name, 0, Some(value.clone())),
            AlterConfigOp::Delete(name) => (name, 1, None),
            AlterConfigOp::Append(name, value) => (name, 2, Some(value.clone())),
            AlterConfigOp::Subtract(name, value) => (name, 3, Some(value.clone())),
        };
        AlterableConfig {
            name: name.clone(),
            config_operation: operation,
            value,
            ..Default::default()
        }
    }
}

impl Admin {
    /// The configs of topics and brokers.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Outcome<ConfigResource, Vec<ConfigEntry>>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "DescribeConfigs",
            resources.iter().cloned(),
            |resources| async move {
                let mut answers = Vec::new();
                for (node, resources) in by_node(resources) {
                    let connection = self.config_node(node).await?;
                    let request = DescribeConfigsRequest {
                        resources: resources
                            .iter()
                            .map(|r| {
                                let (resource_type, resource_name) = r.wire();
                                DescribeConfigsResource {
                                    resource_type,
                                    resource_name,
                                    configuration_keys: None,
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        ..Default::default()
                    };
                    let response = connection.send(&request).await?;
                    for result in response.results {
                        let Some(resource) =
                            ConfigResource::from_wire(result.resource_type, &result.resource_name)
                        else {
                            continue;
                        };
                        let entries = check(
                            result.error_code,
                            result.error_message.as_deref(),
                            &format!("configs of {resource:?}"),
                        )
                        .map(|()| {
                            result
                                .configs
                                .into_iter()
                                .map(|c| ConfigEntry {
                                    source: if c.config_source > 0 {
                                        ConfigSource::from_wire(c.config_source)
                                    } else if c.is_default {
                                        ConfigSource::Default
                                    } else {
                                        ConfigSource::Other(c.config_source)
                                    },
                                    name: c.name,
                                    value: c.value,
                                    read_only: c.read_only,
                                    sensitive: c.is_sensitive,
                                })
                                .collect()
                        });
                        answers.push((resource, Answer::of(entries, &[])));
                    }
                }
                Ok(answers)
            },
        )
        .await
    }

    /// Changes configs of topics and brokers, each resource on its own
    /// (KIP-339); with `validate_only` nothing changes.
    pub async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        validate_only: bool,
    ) -> Result<Outcome<ConfigResource>> {
        let deadline = self.deadline(None);
        self.per_item(
            deadline,
            "IncrementalAlterConfigs",
            changes.keys().cloned(),
            |resources| async move {
                let mut answers = Vec::new();
                for (node, resources) in by_node(resources) {
                    let connection = self.config_node(node).await?;
                    let request = IncrementalAlterConfigsRequest {
                        resources: resources
                            .iter()
                            .map(|r| {
                                let (resource_type, resource_name) = r.wire();
                                AlterConfigsResource {
                                    resource_type,
                                    resource_name,
                                    configs: changes
                                        .get(r)
                                        .map(|ops| ops.iter().map(AlterConfigOp::wire).collect())
                                        .unwrap_or_default(),
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        validate_only,
                        ..Default::default()
                    };
                    let response = connection.send(&request).await?;
                    for result in response.responses {
                        let Some(resource) =
                            ConfigResource::from_wire(result.resource_type, &result.resource_name)
                        else {
                            continue;
                        };
                        let outcome = check(
                            result.error_code,
                            result.error_message.as_deref(),
                            &format!("alter configs of {resource:?}"),
                        );
                        answers.push((resource, Answer::of(outcome, &[])));
                    }
                }
                Ok(answers)
            },
        )
        .await
    }

    /// The broker a config request goes to: a broker's own configs to that
    /// broker, topic configs to any.
    async fn config_node(&self, node: Option<i32>) -> Result<Connection> {
        match node {
            Some(id) => {
                if !self.network.metadata().brokers.contains_key(&id) {
                    self.network.refresh().await?;
                }
                if !self.network.metadata().brokers.contains_key(&id) {
                    return Err(Error::config(
                        "resource",
                        format!("broker {id} is not in the cluster"),
                    ));
                }
                self.network.broker(id).await
            }
            None => self.network.any().await,
        }
    }
}

/// Resources by the broker they must be asked of (`None`: any).
fn by_node(resources: Vec<ConfigResource>) -> BTreeMap<Option<i32>, Vec<ConfigResource>> {
    let mut by_node: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
    for resource in resources {
        let node = match &resource {
            ConfigResource::Broker(id) => Some(*id),
            ConfigResource::Topic(_) => None,
        };
        by_node.entry(node).or_default().push(resource);
    }
    by_node
}
