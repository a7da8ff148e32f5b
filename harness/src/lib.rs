//! The harness: runs `tests_d/<component>/*.rs` tests on freshly provisioned clusters from
//! `cargo test`, with libtest's flags, a deadline and a teardown per test, artifacts under
//! `target/cluster-sim/runs/` and a JUnit report for Jenkins and GitLab.
//!
//! ```no_run
//! // tests_d/snapshot/basic.rs
//! use harness::prelude::*;
//!
//! #[cluster_test(cluster = "etcd3")] // fixtures/clusters/etcd3.toml
//! async fn put_and_get(cluster: &Cluster) -> TestResult {
//!     cluster.node("n1")?.exec("etcdctl put k v").await?.check()?;
//!     let out = cluster.node("n2")?.exec("etcdctl get --print-value-only k").await?.check()?;
//!     ensure!(out.out() == "v", "n2 read {:?}", out.out());
//!     Ok(())
//! }
//!
//! #[cluster_test] // no parameter: a trial that needs no cluster
//! async fn parses_config() -> TestResult {
//!     Ok(())
//! }
//! # fn main() {}
//! ```
//!
//! The test binary's `main` is `fn main() { harness::main() }`; the root build script generates
//! the module tree from `tests_d/`, so a new file needs no registration.
//!
//! The user guide (writing tests, many cases from one test, results, faults, histories, the
//! spec, the CLI, variables) is the book in the repository's `book/` directory: `mdbook build
//! book` writes it to `target/book/`.
#![warn(missing_docs)]

pub mod artifacts;
pub mod config;
pub mod libtest;
mod logs;
mod outcome;
mod plan;
#[doc(hidden)]
pub mod prints;
mod report;
mod run;
mod wait;

pub use prints::test_dir;

pub use plan::{partition, walk};
pub use report::sanitize;

/// `println!` and friends that write into the running test's `test.log` and JUnit case (and
/// to the terminal too with `--nocapture`). `#[cluster_test]` already routes the prints written
/// in a test's own body here; a helper function can `use harness::println;` to do the same.
pub use crate::{
    __capture_eprint as eprint, __capture_eprintln as eprintln, __capture_print as print,
    __capture_println as println,
};
pub use plan::Args;

/// The cluster library, for what the prelude doesn't name: the core (`cluster-sim-core`), with
/// the checkers and workloads (`cluster-sim-check`) and the run report (`cluster-sim-report`)
/// at the paths the `cluster-sim` crate gives them. The server is not here.
pub mod cluster_sim {
    pub use cluster_sim_core::*;

    pub use cluster_sim_check::{history, workload};
    pub use cluster_sim_report as report;
}
pub use cluster_sim_core::{Cluster, ClusterSpec, ExecOutput, Node};
pub use harness_macros::{cluster_test, cluster_walk};
pub use outcome::{TestFuture, TestResult};
pub use plan::{ClusterRequest, TestBody, TestDef};

/// For `impl Action<S> for ...` and `impl SerialAction<S> for ...` (`#[harness::async_trait]`).
pub use async_trait::async_trait;
#[doc(hidden)]
pub use plan::__param;
pub use plan::{case, Axis, Case, FromParam, ParamValue};
pub use run::{main, registered, run};
pub use wait::{wait_until, Check, Outcome, WaitError};

/// Re-exported so `#[cluster_test]` registers tests without the user depending on `inventory`.
#[doc(hidden)]
pub use inventory;

/// Re-exported for tests: `TestResult`'s error type, `bail!`, `ensure!`, `Context`.
pub use anyhow;

/// What a test file needs: `use harness::prelude::*;`.
pub mod prelude {
    pub use crate::async_trait;
    /// Faults and the nemesis, histories and checkers, recorded workloads.
    pub use crate::cluster_sim::{fault, history, workload};
    pub use crate::prints::test_dir;
    pub use crate::walk::{Action, SerialAction, Walk, Walks};
    pub use crate::{
        cluster_test, cluster_walk, wait_until, Cluster, ExecOutput, Node, TestResult,
    };
    pub use anyhow::{anyhow, bail, ensure, Context as _};
    pub use std::time::Duration;
}
