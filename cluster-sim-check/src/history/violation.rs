//! A checker's finding (operations no valid execution explains, with why), and the helpers
//! checkers share to say so.

use super::Completed;
#[cfg(test)]
use super::{OpType, Process};

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
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// A completed client op for checker tests: process `p`, from `start` to `end` (open-ended
/// when `outcome` is `info`), no key.
#[cfg(test)]
pub(crate) fn for_test(
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
