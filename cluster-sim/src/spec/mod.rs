//! The cluster spec: a TOML file naming the nodes, their image, roles, environment, files and
//! templates, the service command, a readiness check and per-node limits.
//!
//! Parsing keeps source spans so that every error names the file, the line and the key. The
//! rooms: the types (`model.rs`), the file as serde reads it (`raw.rs`), reading a file or
//! text (`load.rs`), resolving it section by section (`resolve.rs`), the service keys:
//! `[[binary]]` and its versions (`binaries.rs`), `[[dir]]` and `collect` (`service.rs`), `faulty_dirs` (`faulty.rs`),
//! and small values (`units.rs`).

mod binaries;
mod faulty;
mod load;
mod model;
mod raw;
mod resolve;
mod service;
mod units;

#[cfg(test)]
mod tests;

pub use crate::service::hooks::{HookSpec, HookWhen};
pub use crate::service::logrules::{LogPattern, LogRules};
pub use model::{
    BinarySource, BinarySpec, ClusterSpec, FileSpec, Limits, NodeBlueprint, NodeSpec, Placement,
    ReadySpec, SpecParams, DEFAULT_COLLECT_LIMIT, DEFAULT_READY_TIMEOUT, MAX_NODES,
};
pub(crate) use units::valid_node_name;
