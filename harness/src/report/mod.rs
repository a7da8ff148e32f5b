//! Reporting: reporters consume the run's events (never a cluster) and translate the runner's
//! record of each test into their own shapes. `events.rs` is the floor they share; each
//! reporter is a file: `junit.rs` (`junit.xml`), `html.rs` (the run's records and
//! `report.html`), `testlog.rs` (each test's start and result lines), `console.rs` (retries,
//! flaky tests, where the reports are); `reporters.rs` lists them.

mod console;
mod events;
mod html;
mod junit;
mod reporters;
pub mod sanitize;
mod testlog;

pub(crate) use events::{RunEvent, RunState};
pub(crate) use html::HtmlReporter;
pub(crate) use junit::JunitReporter;
pub(crate) use reporters::Reporters;
