//! The `Backend` trait: node life, from allocation to teardown, on a place that runs nodes
//! (docker, ssh, memory). Kept small: what only some backends can do is an optional capability
//! beside it (cleanup: [`Janitor`], listing without a handle: [`Lookup`], faults:
//! [`FaultBackend`], nodes joining and leaving: [`Membership`]), asked for with `janitor()`, `lookup()` and `faults()`, as Jepsen's `DB`
//! has optional `Kill`, `Pause` and `LogFiles` protocols. Knobs specific to one backend live on
//! that backend's own builder.

use std::fmt;

use async_trait::async_trait;

use super::faults::FaultBackend;
use super::janitor::Janitor;
use super::lookup::Lookup;
use super::membership::Membership;
use super::shell::ShellBackend;
use super::types::{
    KeepMark, Lease, LogChunk, LogStream, NodeAction, NodeAddr, NodeLaunch, NodeState,
};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::ClusterSpec;

/// A place to run clusters. Clusters are named; nodes within them by their spec names.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug {
    /// The name `CLUSTER_SIM_BACKEND` gives this backend (`docker`, `ssh`, `memory`).
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

    /// The node's service log past byte `offset`, to follow it without reading it all again
    /// (`cluster-sim logs --follow`). A log now shorter than `offset` was replaced or
    /// truncated: then all of it, `from` 0. Provided: slices `logs`; ssh and memory read only
    /// what lies past `offset`.
    async fn logs_from(
        &self,
        cluster: &str,
        node: &str,
        offset: u64,
    ) -> Result<LogChunk, BackendError> {
        Ok(LogChunk::past(self.logs(cluster, node).await?, offset))
    }

    /// The node's service log as a live stream, where the backend has one (docker, swarm):
    /// all of it, then what the service writes, across restarts of the node, until dropped or
    /// the node is gone (an error). `None` (provided): follow it with `logs_from`.
    async fn log_stream(
        &self,
        _cluster: &str,
        _node: &str,
    ) -> Result<Option<LogStream>, BackendError> {
        Ok(None)
    }

    /// Applies a lifecycle action.
    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError>;

    /// The node's current state.
    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError>;

    /// Puts another version of a binary at its destination on a node (`Node::set_version`),
    /// after checking that it can run there; the caller restarts the service. Only a
    /// placement marked `switchable` (the spec declares several versions of it) can be
    /// replaced. A backend that can't says so.
    async fn replace_binary(
        &self,
        _cluster: &str,
        node: &str,
        binary: &crate::service::Placement,
    ) -> Result<(), BackendError> {
        Err(BackendError::refused(
            format!("node {node}: place {}", binary.what),
            format!(
                "the {} backend can't replace a binary on a node",
                self.kind()
            ),
        ))
    }

    /// Marks a ready cluster kept on purpose (`cluster-sim up`, or a failed test under
    /// `CLUSTER_SIM_KEEP_CLUSTER`): reapers and watchdogs leave it alone whatever its lease,
    /// until `destroy`; `mark` (who kept it, its spec) comes back from `Lookup::clusters`.
    /// Backends without a reaper have nothing to mark.
    async fn keep(&self, _cluster: &str, _mark: &KeepMark) -> Result<(), BackendError> {
        Ok(())
    }

    /// Removes everything the cluster holds. Idempotent.
    async fn destroy(&self, cluster: &str) -> Result<(), BackendError>;

    /// Whether every cluster of this backend runs on the same few hosts (an inventory's), so
    /// two clusters at once would share ports and processes: a runner then gives each cluster
    /// its whole node budget. Containers and in-process nodes share nothing.
    fn shares_hosts(&self) -> bool {
        false
    }

    /// The fault capability (partitions, impairments, service, clock and disk faults), where
    /// this backend offers it.
    fn faults(&self) -> Option<&dyn FaultBackend> {
        None
    }

    /// The cleanup capability (reap dead owners' clusters, remove a run's), where this backend
    /// leaves clusters a reaper can find.
    fn janitor(&self) -> Option<&dyn Janitor> {
        None
    }

    /// The lookup capability (list clusters and their nodes without a handle), where this
    /// backend can find them.
    fn lookup(&self) -> Option<&dyn Lookup> {
        None
    }

    /// The interactive-shell capability (`cluster-sim shell`), where this backend offers it.
    fn shell(&self) -> Option<&dyn ShellBackend> {
        None
    }

    /// The membership capability (add a node to a running cluster, remove one), where this
    /// backend offers it.
    fn membership(&self) -> Option<&dyn Membership> {
        None
    }
}
