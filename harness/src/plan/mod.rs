//! Planning: what tests exist and which of them run. Each registered test ([`TestDef`], made by
//! `#[cluster_test]` and `#[cluster_walk]`) becomes one or more [`Case`]s: one per combination of
//! its matrix, or one per generated walk ([`walk`]). The command line ([`Args`]) and a shard
//! ([`partition`]) choose among them.

mod args;
mod cases;
mod def;
mod earlier;
mod help;
mod matrix;
pub mod partition;
pub mod walk;

pub use args::Args;
#[doc(hidden)]
pub use cases::__param;
pub use cases::{case, Case};
pub(crate) use cases::{scoped, select};
pub use def::{ClusterRequest, TestBody, TestDef};
pub(crate) use earlier::{durations, failed_last_time};
pub use matrix::{Axis, FromParam, ParamValue};
