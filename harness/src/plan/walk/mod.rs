//! Combinatorial walks: actions, each with a set of typed options, combined into walks that take
//! one option of every action in order, on one shared cluster.
//!
//! ```no_run
//! use harness::prelude::*;
//! use harness::walk::{Action, SerialAction, Walk, Walks};
//!
//! #[derive(Clone, Default)]
//! struct Model {
//!     written: String,
//! }
//!
//! struct Write;
//!
//! #[harness::async_trait]
//! impl Action<Model> for Write {
//!     type Opt = &'static str;
//!     fn name(&self) -> &str {
//!         "write"
//!     }
//!     fn options(&self) -> Vec<&'static str> {
//!         vec!["small", "big"]
//!     }
//!     async fn run(&self, size: &&'static str, walk: &mut Walk<Model>) -> TestResult {
//!         let value = if *size == "big" { "x".repeat(4096) } else { "x".into() };
//!         let key = walk.key("k");
//!         walk.cluster().node("n1")?.exec(format!("redis-cli set {key} {value}")).await?.check()?;
//!         walk.state.written = value;
//!         Ok(())
//!     }
//! }
//!
//! struct Policy;
//!
//! #[harness::async_trait]
//! impl SerialAction<Model> for Policy {
//!     type Opt = &'static str;
//!     fn name(&self) -> &str {
//!         "policy"
//!     }
//!     fn options(&self) -> Vec<&'static str> {
//!         vec!["noeviction", "allkeys-lru"]
//!     }
//!     async fn run(&self, p: &&'static str, cluster: &Cluster, _walks: &mut [&mut Walk<Model>]) -> TestResult {
//!         for node in cluster.nodes() {
//!             node.exec(format!("redis-cli config set maxmemory-policy {p}")).await?.check()?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[cluster_walk(cluster = "redis3")]
//! fn cache() -> Walks<Model> {
//!     Walks::new(Model::default()).action(Write).serial(Policy)
//! }
//! # fn main() {}
//! ```
//!
//! Each walk is a trial named `<test>::w0003[write=big,policy=allkeys-lru]`: a stable id (its
//! place in the generated list) and a readable label. Walks run in parallel, each on its own
//! clone of the initial state. A [`SerialAction`] is a barrier: every walk runs up to it, then it
//! runs once per option, one option at a time, and the walks that chose that option go on in
//! parallel (up to the next barrier) before the next option runs, so what a serial action does to
//! the cluster holds for the walks that chose it. A failing action fails its walk; the walk's
//! later actions don't run. Every walk leaves `trace.json` (actions, options, timings, results,
//! notes) in its artifacts; `cargo test -- --exact <walk name>` replays one walk alone.
//!
//! The generator is every combination ([`Walks::all`], the default) or a seeded pairwise covering
//! subset ([`Walks::pairwise`]): every pair of options of any two actions appears in some walk.
//!
//! The rooms: `api.rs` (what a test writes: actions, walks, the definition), `generate.rs`
//! (which walks a definition yields), `execute.rs` (running them on one cluster, barriers
//! included) and `trace.rs` (what each walk leaves behind).

mod api;
mod execute;
mod generate;
mod trace;

pub use api::{Action, Plan, SerialAction, Walk, Walks};
pub use generate::{generate, validate, Chosen, Generator, Shape, StepShape};
pub use trace::{complete_trace, Finished, StepStatus, StepTrace, Trace};
