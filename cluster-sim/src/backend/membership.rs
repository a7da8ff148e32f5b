//! The membership capability: one node more or one node fewer in a running cluster
//! (`Cluster::add_node`, `Cluster::remove_node`, `cluster-sim add-node`/`remove-node`). Docker
//! gives a new node an address on the cluster's network; ssh takes a spare host of the
//! inventory. A backend without it says so through `Backend::membership` returning `None`.

use async_trait::async_trait;

use super::types::NodeAddr;
use crate::error::BackendError;
use crate::spec::NodeSpec;

/// Growing and shrinking a running cluster (see `Backend::membership`).
#[async_trait]
pub trait Membership: Send + Sync {
    /// Reserves a place for one more node of the running `cluster` (which another process may
    /// have made): an address on its network, a spare host, its working directory. The node is
    /// then made by `Backend::launch` with that one node, and carries the cluster's ownership
    /// (labels, owner file), so the reaper and teardown treat it like the others. A name the
    /// cluster already has, or no place left, is an error; nothing is left behind on error.
    async fn allocate_node(&self, cluster: &str, node: &NodeSpec)
        -> Result<NodeAddr, BackendError>;

    /// Stops one node and removes everything of it (container, or the service and working
    /// directory on its host, with its fault rules); the rest of the cluster runs on.
    /// `BackendError::UnknownNode` when the cluster has no such node.
    async fn remove_node(&self, cluster: &str, node: &str) -> Result<(), BackendError>;
}
