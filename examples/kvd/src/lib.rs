//! kvd as a library: a client of its line protocol, for tests that drive kvd from their own
//! process (`tests_d/jepsen/kvd_register.rs`). The server is the `kvd` binary (`main.rs`).
//! Standard library only.
#![warn(missing_docs)]

mod client;

pub use client::{Client, Error, Info};
