//! cluster-sim in one crate: the cluster library (`cluster-sim-core`: spec, backends, the
//! `Cluster`/`Node` handle, faults, images, your own service), histories, checkers and
//! workloads (`cluster-sim-check`), the run report (`cluster-sim-report`) and the REST server
//! (`cluster-sim-serve`), under the paths they have always had, plus the `cluster-sim` CLI.
//!
//! Tests run by the harness need none of this: `harness::cluster_sim` re-exports everything but
//! the server, without compiling its HTTP and SQLite stack.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cluster_sim::Error> {
//! use cluster_sim::{Cluster, ClusterSpec};
//!
//! let spec = ClusterSpec::from_file("fixtures/clusters/etcd3.toml")?;
//! let cluster = Cluster::builder(spec).up().await?;
//! cluster.node("n1")?.exec("etcdctl put k v").await?.check()?;
//! cluster.down().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub use cluster_sim_core::*;

/// Histories and checkers (`cluster-sim-check`), with the records from the core.
pub use cluster_sim_check::history;
/// Recorded workloads (`cluster-sim-check`).
pub use cluster_sim_check::workload;
/// The run report: `run.json`, `cases.jsonl`, `report.html` (`cluster-sim-report`).
pub use cluster_sim_report as report;
/// `cluster-sim serve`: the REST server (`cluster-sim-serve`).
pub use cluster_sim_serve as serve;

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
