//! The docker backend: bollard against the local engine, a private network per cluster.

mod agent;
mod backend;
mod binary;
mod exec;
mod fault;
mod lookup;
mod owner;
mod reaper;
mod subnet;

pub use backend::DockerBackend;
pub use lookup::{ClusterResources, ContainerInfo, Resource, ResourceKind};
pub use owner::{
    current_owner, judge, owner_alive, run_id, Owner, Verdict, LABEL_ADDRESS, LABEL_CLUSTER,
    LABEL_EXPIRES, LABEL_INDEX, LABEL_KEEP, LABEL_MARKER, LABEL_NODE, LABEL_OWNER, LABEL_ROLES,
    LABEL_RUN, LABEL_SPEC,
};
pub use reaper::Reaped;
pub use subnet::DEFAULT_POOL;
