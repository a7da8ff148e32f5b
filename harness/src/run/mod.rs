//! Running: how the planned cases run. `runner.rs` is the run from plan to finish and
//! `start.rs` what it does before the first test; `attempts.rs` gives a test its retries,
//! `attempt.rs` runs one attempt as a task and ends it, `body.rs` runs the test's body under
//! its deadline and `retention.rs` keeps or clears what an attempt left; `clusters/` gives a
//! test its cluster under the node budget (`budget.rs`); `requires.rs` skips what the backend can't run; `interrupt.rs` handles
//! Ctrl-C and SIGTERM. `ctx.rs` is the floor they share: the run's state.

mod attempt;
mod attempts;
mod body;
pub(crate) mod budget;
mod clusters;
mod ctx;
mod inject;
mod interrupt;
mod logcheck;
mod requires;
mod retention;
mod runner;
mod start;

pub use runner::{main, registered, run};
