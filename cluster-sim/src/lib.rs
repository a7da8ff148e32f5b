//! Multi-node clusters for integration tests: a TOML spec, a `Backend` trait with docker and
//! ssh implementations, and the `Cluster`/`Node` handle that tests and the CLI drive.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster_sim::Error> {
//! use cluster_sim::{Cluster, ClusterSpec};
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
pub mod cluster;
pub mod docker;
pub mod error;
pub mod exec;
pub mod image;
pub mod spec;
pub mod template;

pub use backend::{Backend, NodeAction, NodeState};
pub use cluster::{Cluster, ClusterBuilder, Cmd, Event, EventKind, EventSink, Node};
pub use error::{
    BackendError, Error, ExecError, NodeError, ProvisionError, SpecError, TransferError,
};
pub use exec::{ExecOutput, ExecRequest};
pub use spec::ClusterSpec;
