//! libtest's console runner for the harness's trials: the command line (`args.rs`), the
//! trials and how a run concludes (`trial.rs`), what is printed (`printer.rs`: pretty, terse,
//! json, `--list`) and the run on a pool of threads (`run.rs`).
//!
//! Adapted from libtest-mimic 0.8.2 (Lukas Kalbertodt, MIT OR Apache-2.0), whose output it
//! keeps line for line (nextest and the self-tests read it), with two changes: the command line
//! is parsed here rather than by clap, so a test build compiles no clap, and benchmarks and
//! trial kinds, which the harness never makes, are gone.

mod args;
mod printer;
mod run;
mod trial;

pub use args::Arguments;
pub use run::run;
pub use trial::{Completion, Conclusion, Failed, Trial};
