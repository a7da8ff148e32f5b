//! Transactional histories and an Elle-style checker: operations with `f = "txn"` whose value
//! is a list of micro-operations, list-append (`["append", k, v]`, `["r", k, [1, 2]]`) or
//! read-write register (`["w", k, v]`, `["r", k, v]`).
//!
//! The checker infers write-write, write-read and read-write dependencies between transactions
//! from what they wrote and read ([`append`] for lists, [`rw`] for registers), adds real-time
//! order, finds the strongly connected components of that graph and the shortest cycle of each
//! kind in each ([`cycles`]), and names every anomaly as Adya and Elle do ([`anomaly`]): which
//! transactions, each edge with the key and values that prove it, and which consistency models
//! the history rules out.

mod analysis;
mod anomaly;
mod append;
mod checker;
mod cycles;
mod graph;
mod rw;
mod svg;
pub mod synthetic;
mod txns;

pub(crate) use analysis::analyse;
#[cfg(test)]
pub(crate) use analysis::check_ops;
pub use analysis::TxnSummary;
pub use anomaly::{Anomaly, Consistency};
pub use checker::{ListAppend, RwRegister};
pub use svg::DrawnCycle;

pub(crate) use self::txns::{Flavor, Txns};

#[cfg(test)]
mod tests;
