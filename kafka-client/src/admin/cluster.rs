//! The cluster's brokers, controller and id.

use super::Admin;
use crate::Result;
use crate::network::BrokerInfo;

/// The cluster, as [`Admin::describe_cluster`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id, if the brokers report one.
    pub cluster_id: Option<String>,
    /// The controller (under KRaft, a broker that forwards to it), if any.
    pub controller: Option<BrokerInfo>,
    /// The live brokers, by id.
    pub brokers: Vec<BrokerInfo>,
}

impl Admin {
    /// The cluster's live brokers, controller and id.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let deadline = self.deadline(None);
        let metadata = self
            .retrying(deadline, "Metadata", || self.network.refresh())
            .await?;
        let mut brokers: Vec<BrokerInfo> = metadata.brokers.values().cloned().collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: metadata.cluster_id.clone(),
            controller: metadata.brokers.get(&metadata.controller).cloned(),
            brokers,
        })
    }
}
