//! The docker backend: bollard against the local engine, a private network per cluster.

mod agent;
pub(crate) mod backend;
mod binary;
mod engine;
mod exec;
mod fault;
mod janitor;
pub(crate) mod labels;
mod live_log;
mod lookup;
mod membership;
mod network;
mod node;
mod part;
mod shell;
pub(crate) mod subnet;
mod teardown;

/// Moved to [`crate::backend::janitor`]; here for callers of earlier versions.
pub use crate::backend::janitor::Reaped;
/// Moved to [`crate::backend::ownership`] (every backend judges owners the same way); here for
/// callers of earlier versions.
pub use crate::backend::ownership::{current_owner, judge, owner_alive, run_id, Owner, Verdict};
pub use backend::DockerBackend;
pub(crate) use engine::DOCKER_WORKDIR;
pub use labels::{
    LABEL_ADDRESS, LABEL_CLUSTER, LABEL_EXPIRES, LABEL_INDEX, LABEL_KEEP, LABEL_MARKER, LABEL_NODE,
    LABEL_OWNER, LABEL_ROLES, LABEL_RUN, LABEL_SPEC,
};
pub use lookup::{ClusterResources, ContainerInfo, Resource, ResourceKind};
pub(crate) use part::OVERLAY_RESERVED;
pub use subnet::DEFAULT_POOL;
