//! The lookup capability: finding clusters and their nodes without a `Cluster` handle (the
//! CLI's `ls`, `logs`, `down --all` and fault verbs, the server's registry, an ssh lab).

use async_trait::async_trait;

use super::types::{KeepMark, NodeAddr, NodeState};
use crate::error::BackendError;

/// One cluster as a backend finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// Cluster name.
    pub name: String,
    /// Whether it is kept on purpose (`cluster-sim up`): reapers leave it alone.
    pub kept: bool,
    /// What its keep mark says (who kept it, its spec's name and node count); empty when it
    /// is not kept, or was kept by an older version.
    pub mark: KeepMark,
    /// Its nodes in spec order (none when only part of a cluster is left: a name claim, a
    /// network).
    pub nodes: Vec<NodeSummary>,
}

/// One node as a backend finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Position in the spec.
    pub index: usize,
    /// Address other nodes reach it at.
    pub address: String,
    /// The cluster's working directory on the node.
    pub workdir: String,
    /// Its state.
    pub state: NodeState,
    /// Roles from the spec (empty where the backend did not record them).
    pub roles: Vec<String>,
    /// Where it runs, for people: the image on docker, the host on ssh.
    pub place: String,
    /// Published TCP ports: (port in the node, port on 127.0.0.1 of the test machine).
    pub ports: Vec<(u16, u16)>,
}

impl NodeSummary {
    /// The node's address triple, as `Backend::allocate` gave it.
    pub fn addr(&self) -> NodeAddr {
        NodeAddr {
            name: self.name.clone(),
            address: self.address.clone(),
            workdir: self.workdir.clone(),
        }
    }
}

/// A machine a backend places nodes on, from a fixed set (an ssh inventory's hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSummary {
    /// Its name in the backend's settings (the inventory).
    pub name: String,
    /// The address nodes on it are reached at.
    pub address: String,
    /// Roles it offers nodes.
    pub roles: Vec<String>,
}

/// Lookup a backend offers (see `Backend::lookup`).
#[async_trait]
pub trait Lookup: Send + Sync {
    /// Every cluster the backend holds, of any run, by name.
    async fn clusters(&self) -> Result<Vec<ClusterSummary>, BackendError>;

    /// One cluster's nodes in spec order; `BackendError::UnknownCluster` when nothing of it
    /// exists.
    async fn nodes(&self, cluster: &str) -> Result<Vec<NodeSummary>, BackendError>;

    /// The fixed machines this backend places nodes on (an ssh inventory's hosts); none where
    /// machines come and go with clusters (containers, in-process nodes).
    fn hosts(&self) -> Vec<HostSummary> {
        Vec::new()
    }

    /// Runs a shell command on one of [`Lookup::hosts`], outside any cluster (a probe):
    /// its exit code (`-1` when killed by a signal) and stdout.
    async fn host_exec(&self, host: &str, _script: &str) -> Result<(i64, Vec<u8>), BackendError> {
        Err(BackendError::refused(
            format!("host {host}"),
            "this backend has no fixed hosts",
        ))
    }
}
