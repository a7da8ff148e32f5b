//! Why a fault could not be started or ended.

use crate::error::BackendError;

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
    /// A node's kill or start, part of a fault (`lose_unsynced`), failed.
    #[error(transparent)]
    Node(#[from] crate::error::NodeError),
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

impl FaultError {
    /// For `map_err`: the backend failed at `step` on `node`.
    pub fn backend(node: &str, step: &str) -> impl FnOnce(BackendError) -> FaultError {
        let (node, step) = (node.to_string(), step.to_string());
        move |source| FaultError::Backend { node, step, source }
    }
}
