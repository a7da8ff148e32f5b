//! `Cluster` and `Node`: the handle tests and the CLI drive, the same on every backend.
//!
//! The rooms: the handles (`handle.rs`), building and provisioning (`builder.rs`,
//! `provision.rs`), what a node does (`node.rs`), the events a cluster sends (`event.rs`),
//! its faults (`faults.rs`; storage faults in `storage.rs`), gathering files back (`collect.rs`), waiting on node logs
//! (`logwait.rs`), readiness (`ready.rs`), hooks (`hooks.rs`), the spec's log rules
//! (`logcheck.rs`, `logfindings.rs`), attaching to a kept cluster (`attach.rs`), the versions
//! of a node's binaries (`versions.rs`, remembered in `chosen.rs`), rolling restarts
//! (`rolling.rs`), and nodes joining and leaving at run time (`members.rs`, the list;
//! `membership.rs`, the verbs).

mod attach;
mod builder;
mod chosen;
mod collect;
mod event;
mod faults;
mod handle;
mod hooks;
mod logcheck;
mod logfindings;
mod logwait;
mod members;
mod membership;
mod node;
mod provision;
mod ready;
mod rolling;
mod storage;
mod versions;

pub use crate::error::HookError;
pub use builder::{check_cluster_name, unique_name, ClusterBuilder, MAX_CLUSTER_NAME};
pub use collect::Collected;
pub use event::{Event, EventKind, EventSink, ExecSummary};
pub use faults::NemesisHandle;
pub use handle::{Cluster, InFlight, Node};
pub use logfindings::{LogCheckError, LogFinding, LogMarks};
pub use logwait::{LogWait, LogWaitError};
pub use membership::{MembershipError, NodeOptions};
pub use node::Cmd;
pub use rolling::RollingError;
pub use versions::VersionError;
