//! Faults: partitions, link impairments, service freeze/kill, clock skew and full disks, by
//! node name, on any backend that offers the [`FaultBackend`] capability.
//!
//! The neutral parts live here: the vocabulary ([`types`]), the per-node network plan each
//! fault set implies ([`plan`]), the ledger of active faults and how changes reach the nodes
//! ([`controller`]), the seeded [`nemesis`]. Both backends run Linux nodes, so the scripts that
//! turn a plan into nftables and tc state are shared too ([`linux`]); what differs per backend
//! (how a root shell is reached, where the service's pid and the state live, what must never
//! be cut, how a disk is filled) sits in `docker/fault.rs` and `ssh/fault.rs`.

pub mod capabilities;
pub mod controller;
pub mod error;
pub(crate) mod linux;
pub mod nemesis;
pub mod plan;
mod probe;
pub mod storage;
pub mod types;

pub use crate::backend::faults::{FaultBackend, NodeLayout};
pub use capabilities::{Capabilities, KERNEL_FEATURES};
pub use controller::Faults;
pub use error::FaultError;
pub use nemesis::{Nemesis, NemesisAction, NemesisFault, NemesisStep, SEED_VAR};
pub use probe::backend_capabilities;
pub use storage::{Corruption, IoOp, StorageFault};
pub use types::{
    format_offset, parse_offset, ActiveFault, Cuts, Direction, FaultKind, Impairment, Shape, Signal,
};
