//! An operation a checker has no meaning for (an `incr` in a register history, a txn whose
//! micro-operation is not a list), named by its place in the history so that the CLI can say
//! which line of the file it is.

use super::Completed;

/// An operation a checker can't judge: which record of the history it is (its invocation's
/// position among the history's records, [`Completed::index`]) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    /// The invocation's position among the history's records.
    pub index: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl OpError {
    /// `op` can't be judged because of `message`.
    pub fn new(op: &Completed, message: impl Into<String>) -> Self {
        OpError {
            index: op.index,
            message: message.into(),
        }
    }
}
