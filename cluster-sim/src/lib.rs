//! Multi-node clusters for integration tests: a TOML spec, a `Backend` trait with docker and
//! ssh implementations, and the `Cluster`/`Node` handle that tests and the CLI drive.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster_sim_core::Error> {
//! use cluster_sim_core::{Cluster, ClusterSpec};
//!
//! let spec = ClusterSpec::from_file("fixtures/clusters/etcd3.toml")?;
//! let cluster = Cluster::builder(spec).up().await?;
//! let n1 = cluster.node("n1")?;
//! n1.exec("etcdctl put k v").await?.check()?;
//! let out = cluster.node("n3")?.exec("etcdctl get --print-value-only k").await?.check()?;
//! assert_eq!(out.out(), "v");
//! cluster.down().await?;
//! # Ok(()) }
//! ```
//!
//! The user guide (the spec, faults, histories and checkers, the backends, the CLI) is the
//! book in the repository's `book/` directory: `mdbook build book` writes it to `target/book/`.
#![warn(missing_docs)]

pub mod backend;
mod capture;
pub mod cluster;
pub mod docker;
pub mod duration;
pub mod error;
pub mod exec;
pub mod fault;
pub mod history;
pub mod image;
// Public for `cluster-sim-serve`'s check files, not part of the API.
#[doc(hidden)]
pub mod located;
pub mod rng;
pub mod service;
pub mod spec;
pub mod ssh;
pub mod template;
pub mod watchdog;

pub use backend::{Backend, Lease, NodeAction, NodeState};
pub use cluster::{
    Cluster, ClusterBuilder, Cmd, Event, EventKind, EventSink, ExecSummary, InFlight, LogWait,
    LogWaitError, Node,
};
pub use error::{
    BackendError, Error, ExecError, NodeError, ProvisionError, SpecError, TransferError,
};
pub use exec::{ExecOutput, ExecRequest, OutputCapture, Truncated};
pub use spec::{ClusterSpec, SpecParams};

/// Environment variable choosing the backend: `docker` (default) or `ssh`.
pub const BACKEND_VAR: &str = "CLUSTER_SIM_BACKEND";
/// Environment variable naming the ssh backend's inventory file.
pub const INVENTORY_VAR: &str = "CLUSTER_SIM_INVENTORY";

/// Connects the backend named `kind` (`docker`, or `ssh` with its inventory file). The one place
/// that knows every backend: the harness and the CLI choose through it.
pub async fn connect_backend(
    kind: &str,
    inventory: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn Backend>, BackendError> {
    match kind {
        "" | "docker" => Ok(std::sync::Arc::new(docker::DockerBackend::connect().await?)),
        "ssh" => {
            let path = inventory.ok_or_else(|| {
                BackendError::Other(format!(
                    "the ssh backend needs an inventory: set {INVENTORY_VAR}=FILE"
                ))
            })?;
            let backend =
                ssh::SshBackend::from_file(path).map_err(|e| BackendError::Other(e.to_string()))?;
            Ok(std::sync::Arc::new(backend))
        }
        other => Err(BackendError::Other(format!(
            "unknown backend {other:?} (expected docker or ssh)"
        ))),
    }
}

/// [`connect_backend`] with the choice read from `CLUSTER_SIM_BACKEND` and
/// `CLUSTER_SIM_INVENTORY`.
pub async fn connect_backend_from_env() -> Result<std::sync::Arc<dyn Backend>, BackendError> {
    let kind = std::env::var(BACKEND_VAR).unwrap_or_default();
    let inventory = std::env::var_os(INVENTORY_VAR).map(std::path::PathBuf::from);
    connect_backend(kind.trim(), inventory.as_deref()).await
}

/// The crate README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
