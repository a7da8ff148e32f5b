//! The backend contract: node life ([`Backend`]) and the optional capabilities beside it:
//! cleanup ([`Janitor`]), lookup without a handle ([`Lookup`]) and faults ([`FaultBackend`]).
//! Who owns a cluster, and when a reaper may remove it, is judged the same way on every backend
//! ([`ownership`]).

pub mod contract;
pub mod faults;
pub mod janitor;
pub mod lookup;
pub mod membership;
pub mod ownership;
pub mod shell;
pub mod types;

pub use contract::Backend;
pub use faults::{FaultBackend, NodeLayout};
pub use janitor::{Janitor, Reaped};
pub use lookup::{ClusterSummary, HostSummary, Lookup, NodeSummary};
pub use membership::Membership;
pub use shell::{ShellBackend, ShellTerm};
pub use types::{
    KeepMark, Lease, LogChunk, LogStream, NodeAction, NodeAddr, NodeLaunch, NodeState,
};
