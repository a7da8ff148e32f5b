//! Faults: partitions, link impairments, service freeze/kill, clock skew and full disks, by
//! node name, on any backend that offers the [`FaultBackend`] capability.
//!
//! The neutral parts live here: the vocabulary ([`types`]), the per-node network plan each
//! fault set implies ([`plan`]), the ledger of active faults and how changes reach the nodes
//! ([`controller`]), the seeded [`nemesis`]. Both backends run Linux nodes, so the scripts that
//! turn a plan into nftables and tc state are shared too ([`linux`]); what differs per backend
//! (how a root shell is reached, where the service's pid and the state live, what must never
//! be cut, how a disk is filled) sits in `docker/fault.rs` and `ssh/fault.rs`.

use async_trait::async_trait;

use crate::backend::NodeAddr;
use crate::error::BackendError;
use crate::exec::ExecOutput;

pub mod controller;
pub(crate) mod linux;
pub mod nemesis;
pub mod plan;
pub mod types;

pub use controller::{Capabilities, Faults, KERNEL_FEATURES};
pub use nemesis::{Nemesis, NemesisAction, NemesisFault, NemesisStep};
pub use types::{
    format_offset, parse_offset, ActiveFault, Cuts, Direction, FaultKind, Impairment, Shape, Signal,
};

/// Environment variable holding the nemesis seed to replay.
pub const SEED_VAR: &str = "CLUSTER_SIM_SEED";

/// Why a fault could not be started or ended.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The node lacks a kernel module or tool the fault needs.
    #[error("node {node}: {what} needs {missing}, which this node lacks")]
    Unsupported {
        /// The node.
        node: String,
        /// What was asked for (`latency`).
        what: String,
        /// The missing kernel module or tool (`sch_netem`).
        missing: String,
    },
    /// The backend offers no such fault.
    #[error("{what} is not available on the {backend} backend")]
    NotOnBackend {
        /// Backend kind.
        backend: String,
        /// What was asked for.
        what: String,
    },
    /// No node of that name in the cluster.
    #[error("no node named {0} in the cluster")]
    UnknownNode(String),
    /// No active fault with that id.
    #[error("no active fault #{0}")]
    UnknownFault(u64),
    /// A request that makes no sense (bad groups, a percentage over 100).
    #[error("{0}")]
    Invalid(String),
    /// A node had no running service to signal.
    #[error("node {node}: no running service to {action}")]
    NoService {
        /// The node.
        node: String,
        /// freeze, thaw, kill.
        action: String,
    },
    /// A step failed on a node.
    #[error("node {node}: {step} failed (exit {code}): {detail}")]
    Apply {
        /// The node.
        node: String,
        /// What was being done.
        step: String,
        /// Exit code.
        code: i64,
        /// Output tail.
        detail: String,
    },
    /// The backend failed to run the step.
    #[error("node {node}: {step}: {source}")]
    Backend {
        /// The node.
        node: String,
        /// What was being done.
        step: String,
        /// Why.
        #[source]
        source: BackendError,
    },
}

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
    /// `docker` or `ssh`, for messages.
    fn fault_backend_kind(&self) -> &'static str;

    /// Every node of a running cluster with its address, for callers without a `Cluster`
    /// handle (the CLI).
    async fn fault_nodes(&self, cluster: &str) -> Result<Vec<NodeAddr>, FaultError>;

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

    /// Probes the kernel features (nft, tc, htb, netem) of the backend's hosts without a
    /// cluster, running the same checks as [`Faults::capabilities`] in a namespace of its own:
    /// docker, a throwaway container of the node image; ssh, every inventory host (a feature
    /// counts only where every host has it). For tests that declare `requires`.
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

/// The kernel features of a backend's hosts (see [`FaultBackend::probe_kernel`]); a backend
/// without the fault capability has none of them.
pub async fn backend_capabilities(
    backend: &dyn crate::Backend,
) -> Result<Capabilities, FaultError> {
    match backend.faults() {
        Some(fb) => fb.probe_kernel().await,
        None => Err(FaultError::NotOnBackend {
            backend: backend.kind().into(),
            what: "faults".into(),
        }),
    }
}
