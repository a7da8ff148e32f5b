//! Histories of client operations and the checkers that judge them: a register checked for
//! linearizability per key, a set checked for lost acknowledged writes. A checker implements
//! [`Checker`] and has a line in [`CHECKERS`], the table the CLI and tests choose from by name.
//! [`Watch`] judges a history while it is recorded and stops it at the first anomaly.

mod check;
mod counter;
mod counterexample;
mod jepsen_log;
mod linearize;
mod op_error;
mod queue;
mod register;
mod set;
pub mod synthetic;
mod table;
mod timeline;
pub mod txn;
mod unique_ids;
mod violation;
mod watch;

pub use check::{by_key, check, CheckError, CheckReport, Checker, Details, FileError};
pub use cluster_sim_core::history::{
    complete, parse_lines, read_history, Completed, HistoryError, Op, OpType, Pending, Process,
    Recorder, Records,
};
pub use counter::{Counter, CounterCounts};
pub use jepsen_log::{parse_jepsen_log, read_jepsen_log};
pub use op_error::OpError;
pub use queue::{Queue, QueueCounts};
pub use register::{BadOp, Register};
pub use set::{Set, SetCounts};
pub use table::{by_name, CHECKERS};
pub use timeline::timeline_svg;
pub use unique_ids::{IdCounts, UniqueIds};
#[cfg(test)]
pub(crate) use violation::for_test;
pub(crate) use violation::secs;
pub use violation::Violation;
pub use watch::{Found, Watch};
