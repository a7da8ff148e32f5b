//! The HTML run report: the run's records on disk (`run.json` and `cases.jsonl` in the run
//! directory, [`model`]), and one self-contained `report.html` rendered from them ([`render`]).
//!
//! Both the harness (as it runs) and `cluster-sim report RUN_DIR` (afterwards) go through here,
//! so a report rendered again is the report the run wrote. Nothing here touches a cluster.
#![warn(missing_docs)]

mod logs;
pub mod model;
mod render;

pub use model::{Attempt, EventRecord, Run, RunDir, RunInfo, Status, TestRecord};
pub use render::{render, render_run_dir, write_report};

/// Reading a run's records or writing its report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record on disk is not what the report expects.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Its line (1-based; 1 for a whole-file JSON document).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The directory holds no run (no `run.json`).
    #[error("{0}: not a run directory (no run.json); runs live under target/cluster-sim/runs/")]
    NotARun(String),
    /// The template failed to render (a bug in the report, not in the run).
    #[error("rendering the report: {0}")]
    Template(String),
}
