//! Histories of client operations and the checkers that judge them: a register checked for
//! linearizability per key, a set checked for lost acknowledged writes.

mod check;
mod op;
mod recorder;
mod register;
mod set;
pub mod synthetic;
mod timeline;

pub use check::{check, CheckReport, Model};
pub use op::{complete, parse_lines, read_history, Completed, HistoryError, Op, OpType, Process};
pub use recorder::{Pending, Recorder};
pub use register::BadOp;
pub use set::SetCounts;
pub use timeline::timeline_svg;

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
