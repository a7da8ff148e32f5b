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
#![warn(missing_docs)]

pub mod backend;
mod capture;
pub mod cluster;
pub mod connect;
pub mod docker;
pub mod duration;
pub mod error;
pub mod exec;
pub mod fault;
pub mod history;
pub mod image;
pub mod lab;
pub mod memory;
// Public for `cluster-sim-serve`'s check files, not part of the API.
#[doc(hidden)]
pub mod located;
pub mod rng;
pub mod service;
pub mod shell;
pub mod spec;
pub mod ssh;
pub mod swarm;
pub mod template;
pub mod watchdog;

pub use backend::{
    Backend, ClusterSummary, Janitor, KeepMark, Lease, LogChunk, LogStream, Lookup, Membership,
    NodeAction, NodeState, NodeSummary, Reaped,
};
pub use cluster::{
    Cluster, ClusterBuilder, Cmd, Event, EventKind, EventSink, ExecSummary, InFlight,
    MembershipError, Node, NodeOptions, RollingError, VersionError,
};
pub use connect::{
    connect_backend, connect_backend_from_env, BackendChoice, BACKEND_VAR, ENGINES_VAR,
    INVENTORY_VAR,
};
pub use error::{
    BackendError, Error, ExecError, NodeError, ProvisionError, SpecError, TransferError,
};
pub use exec::{ExecOutput, ExecRequest, OutputCapture, Truncated};
pub use spec::{ClusterSpec, SpecParams};
