//! History records, Jepsen-style: the operations clients and the nemesis perform, read from and
//! written to `history.jsonl`. The checkers that judge a history live in `cluster-sim-check`;
//! the records live here because the nemesis writes them too.

mod op;
mod recorder;

pub use op::{
    complete, parse_lines, read_history, Completed, HistoryError, Op, OpType, Process, Records,
};
pub use recorder::{Pending, Recorder};
