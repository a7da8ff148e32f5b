//! The docker backend: bollard against the local engine, a private network per cluster.

mod agent;
mod backend;
mod binary;
mod exec;
mod fault;
mod owner;
mod reaper;
mod subnet;

pub use backend::{ContainerInfo, DockerBackend};
pub use owner::{
    current_owner, owner_alive, LABEL_ADDRESS, LABEL_CLUSTER, LABEL_INDEX, LABEL_KEEP, LABEL_NODE,
    LABEL_OWNER, LABEL_SPEC,
};
pub use subnet::DEFAULT_POOL;
