//! Histories of client operations and the checkers that judge them: a register checked for
//! linearizability per key, a set checked for lost acknowledged writes. A checker implements
//! [`Checker`] and has a line in [`CHECKERS`], the table the CLI and tests choose from by name.

mod check;
mod counter;
mod counterexample;
mod jepsen_log;
mod op_error;
mod queue;
mod register;
mod set;
pub mod synthetic;
mod timeline;
pub mod txn;
mod unique_ids;

pub use check::{
    by_key, by_name, check, CheckError, CheckReport, Checker, Details, FileError, CHECKERS,
};
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
pub use timeline::timeline_svg;
pub use unique_ids::{IdCounts, UniqueIds};

/// Operations that no valid execution explains, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The key (`None` for a history of one register or set).
    pub key: Option<String>,
    /// One line: what is wrong.
    pub summary: String,
    /// How the checker got there.
    pub explanation: String,
    /// The few operations involved, in invocation order.
    pub ops: Vec<Completed>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(k) = &self.key {
            write!(f, "key {k}: ")?;
        }
        writeln!(f, "{}", self.summary)?;
        for op in &self.ops {
            writeln!(f, "  {op}")?;
        }
        write!(f, "  ({})", self.explanation)
    }
}

/// Nanoseconds as seconds with millisecond precision, for messages.
fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// A completed client op for checker tests: process `p`, from `start` to `end` (open-ended
/// when `outcome` is `info`), no key.
#[cfg(test)]
fn for_test(
    p: u64,
    f: &str,
    (input, output): (serde_json::Value, serde_json::Value),
    outcome: OpType,
    start: u64,
    end: u64,
) -> Completed {
    Completed {
        process: Process::Client(p),
        f: f.into(),
        key: None,
        input,
        output,
        outcome,
        start,
        end: (outcome != OpType::Info).then_some(end),
        index: start as usize,
    }
}
