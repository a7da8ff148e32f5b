//! The HTML run report: the run's records on disk (`run.json` and `cases.jsonl` in the run
//! directory, [`model`]), and one self-contained `report.html` rendered from them ([`render`]).
//!
//! Both the harness (as it runs) and `cluster-sim report RUN_DIR` (afterwards) go through here,
//! so a report rendered again is the report the run wrote. Nothing here touches a cluster.
#![warn(missing_docs)]

mod error;
mod logs;
pub mod model;
mod render;

pub use error::ReportError;
pub use model::{Attempt, EventRecord, Run, RunDir, RunInfo, Status, TestRecord};
pub use render::{render, render_run_dir, write_report};
