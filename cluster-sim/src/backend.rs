//! The `Backend` trait: what a place to run nodes (docker, ssh) must offer. Kept small; knobs
//! specific to one backend live on that backend's own builder.

use std::fmt;

use async_trait::async_trait;

use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::{ClusterSpec, NodeSpec};

/// A node's identity once the backend has placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// Node name.
    pub name: String,
    /// Address other nodes reach it at.
    pub address: String,
    /// A directory on the node that belongs to this cluster alone (empty at start, removed at
    /// teardown): where data directories and generated files should go, so the same spec works on
    /// containers and on long-lived hosts.
    pub workdir: String,
}

/// How long a cluster may outlive its owner, fixed when it is made. A reaper that can prove
/// the owner is gone (same machine, same PID namespace) removes the cluster at once; any other
/// reaper only once it has expired. The harness sets it from the test's deadline plus its
/// provisioning and teardown limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// When the cluster expires; `None`: never (only a provably dead owner frees it).
    pub expires: Option<std::time::SystemTime>,
}

impl Lease {
    /// A lease ending `d` from now.
    pub fn for_duration(d: std::time::Duration) -> Lease {
        Lease {
            expires: std::time::SystemTime::now().checked_add(d),
        }
    }
}

/// A node ready to launch: its spec, its address and its rendered files.
#[derive(Debug, Clone)]
pub struct NodeLaunch {
    /// The node's spec.
    pub spec: NodeSpec,
    /// Its address.
    pub address: String,
    /// Files to place before the service starts: (path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Workspace binaries to place before the service starts, after checking that they can
    /// run on the node (`Placement::check`).
    pub binaries: Vec<crate::service::Placement>,
}

/// Lifecycle actions on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// SIGKILL the node's processes; it stays down until `Start`.
    Kill,
    /// Stop gracefully (SIGTERM, then SIGKILL after a grace period).
    Stop,
    /// Start a stopped or killed node, with the same name, address and data.
    Start,
    /// Stop then start.
    Restart,
    /// Freeze every process of the node.
    Pause,
    /// Thaw a paused node.
    Unpause,
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Restart => "restart",
            NodeAction::Pause => "pause",
            NodeAction::Unpause => "unpause",
        })
    }
}

/// A node's state as the backend sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Created but never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Stopped, killed or exited.
    Exited,
    /// Anything else.
    Unknown,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Created => "created",
            NodeState::Running => "running",
            NodeState::Paused => "paused",
            NodeState::Exited => "exited",
            NodeState::Unknown => "unknown",
        })
    }
}

/// A place to run clusters. Clusters are named; nodes within them by their spec names.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// `docker` or `ssh`.
    fn kind(&self) -> &'static str;

    /// Reserves what the cluster needs (its name, network, hosts) and returns each node's
    /// address. All or nothing: on error nothing of it is left, and a name another cluster
    /// holds is an error.
    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &Lease,
    ) -> Result<Vec<NodeAddr>, BackendError>;

    /// Creates and starts the nodes, files in place before each service starts.
    async fn launch(&self, cluster: &str, nodes: &[NodeLaunch]) -> Result<(), BackendError>;

    /// Runs a command; the deadline in the request kills it.
    async fn exec(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError>;

    /// Writes a file (parents created).
    async fn write_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError>;

    /// Reads a file.
    async fn read_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
    ) -> Result<Vec<u8>, BackendError>;

    /// The node's service log (stdout and stderr, interleaved).
    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError>;

    /// Applies a lifecycle action.
    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError>;

    /// The node's current state.
    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError>;

    /// Marks a ready cluster kept on purpose (`cluster-sim up`): reapers leave it alone whatever
    /// its lease, until `destroy`. Backends without a reaper have nothing to mark.
    async fn keep(&self, _cluster: &str) -> Result<(), BackendError> {
        Ok(())
    }

    /// Removes everything the cluster holds. Idempotent.
    async fn destroy(&self, cluster: &str) -> Result<(), BackendError>;

    /// The fault capability (partitions, impairments, service, clock and disk faults), where
    /// this backend offers it.
    fn faults(&self) -> Option<&dyn crate::fault::FaultBackend> {
        None
    }
}
