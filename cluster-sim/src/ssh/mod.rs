//! The ssh backend: clusters on real hosts listed in an inventory, driven over system OpenSSH
//! (one multiplexed master per host), plus a local lab of sshd containers to test it against.

mod backend;
mod binary;
mod conn;
mod fault;
pub mod inventory;
mod janitor;
pub mod lab;
mod lookup;
mod owner;

pub use backend::SshBackend;
pub use inventory::{Host, Inventory, InventoryError};
pub use lab::{provision_lab, write_lab_inventory, LabError, LabFiles};
