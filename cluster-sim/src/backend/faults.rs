//! The fault capability: what a backend says so that the neutral fault code (`fault/`) can
//! partition, impair, freeze, skew and fill its nodes: how a root shell is reached, where
//! state lives, what must never be cut, how a disk is filled.

use async_trait::async_trait;

use crate::exec::ExecOutput;
use crate::fault::capabilities::Capabilities;
use crate::fault::error::FaultError;

/// Where a backend keeps fault state on a node, and what it must leave alone.
#[derive(Debug, Clone)]
pub struct NodeLayout {
    /// A directory for the fault ledger and the clock file; it should vanish when the node's
    /// network state does (a container restart), so the two never disagree.
    pub state_dir: String,
    /// A shell snippet that prints the pid of the service, leader of its own process group.
    pub service_pid: String,
    /// The nftables table (family `inet`) that holds every rule of this cluster on the node.
    pub table: String,
    /// nftables statements put first in the input and output chains, to keep a link no fault
    /// may cut (the test host's own ssh connection): (input, output).
    pub keep: Option<(String, String)>,
    /// The file the service's libfaketime reads its offset from, if the backend set one up.
    pub clock_file: Option<String>,
}

/// The fault capability of a backend: what `Backend::faults()` returns where faults work.
#[async_trait]
pub trait FaultBackend: Send + Sync {
    /// Where state lives on the node and what must not be cut.
    async fn layout(&self, cluster: &str, node: &str) -> Result<NodeLayout, FaultError>;

    /// Runs a shell script as root on the node (network namespace of the node), with a short
    /// deadline.
    async fn run_root(
        &self,
        cluster: &str,
        node: &str,
        script: &str,
    ) -> Result<ExecOutput, FaultError>;

    /// Probes the kernel features (nft, tc, htb, netem, fuse) of the backend's hosts without a
    /// cluster, running the same checks as [`Faults::capabilities`] in a namespace of its own:
    /// docker, a throwaway container of the node image (and, for fuse, one given `/dev/fuse`
    /// and CAP_SYS_ADMIN as a node with `faulty_dirs` is, trying a mount); ssh, every inventory
    /// host (fuse as the login user; a feature counts only where every host has it). For tests
    /// that declare `requires`.
    async fn probe_kernel(&self) -> Result<Capabilities, FaultError>;

    /// Makes writes under `path` fail with ENOSPC (`full`), or undoes it.
    async fn disk(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        full: bool,
    ) -> Result<(), FaultError>;
}
