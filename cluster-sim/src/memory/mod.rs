//! The memory backend: nodes are records in this process, each with a directory on this
//! machine where its commands run as ordinary processes. No engine, no hosts, no faults: a
//! small honest backend that proves the contract (node life, cleanup, lookup, membership) is
//! complete, and
//! lets the harness test itself without Docker (`CLUSTER_SIM_BACKEND=memory`).
//!
//! What it does not do, it refuses with one clear line: a service command (no process
//! supervisor), files or binaries outside a node's working directory (its nodes share this
//! machine), running a command as another user.

pub(crate) mod backend;
mod janitor;
mod membership;
mod process;

pub use backend::MemoryBackend;
