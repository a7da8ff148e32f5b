//! Histories and checkers, Jepsen-style: the records a test's clients and nemesis leave
//! (`history.jsonl`, re-exported from `cluster-sim-core`), the checkers that judge them (a
//! register checked for linearizability per key, a set checked for lost acknowledged writes),
//! and recorded workloads that drive a real store on a cluster's nodes.
//!
//! ```
//! use cluster_sim_check::history::{self, Recorder, Register};
//! use serde_json::json;
//!
//! let rec = Recorder::new();
//! rec.invoke(0, "write", None, json!(1)).ok(json!(null));
//! rec.invoke(1, "read", None, json!(null)).ok(json!(1));
//! let report = history::check(&rec.ops(), &Register).unwrap();
//! assert!(report.valid(), "{report}");
//! ```
#![warn(missing_docs)]

pub mod history;
pub mod workload;

/// The crate README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
