//! The ssh backend: clusters on real hosts listed in an inventory, driven over system OpenSSH
//! (one multiplexed master per host). A local lab of sshd containers to test it against is
//! `crate::lab`.

pub(crate) mod backend;
mod binary;
mod conn;
mod fault;
mod hosts;
pub mod inventory;
mod janitor;
mod launch;
mod lookup;
mod membership;
mod owner;
mod placement;
mod said;
mod shell;
mod workdir;

/// Moved beside the backends (`crate::lab`): a lab uses one backend to make the other's hosts.
pub use crate::lab::{provision_lab, write_lab_inventory, LabError, LabFiles};
pub use backend::SshBackend;
pub use inventory::{Host, Inventory, InventoryError};
