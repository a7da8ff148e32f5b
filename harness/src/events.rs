//! Reporting: the run emits test-level events, and every reporter consumes the same stream,
//! as nextest's runner does. The runner never calls a reporter directly: a new output (a
//! different report format, a live dashboard) is one more [`Reporter`] in [`Reporters::new`].
//!
//! - [`JunitReporter`]: `junit.xml`, rewritten as tests end (`junit.rs`);
//! - [`HtmlReporter`]: the run's records and `report.html` (`html.rs`);
//! - [`TestLogReporter`]: the start and result lines of each test's `test.log`;
//! - [`ConsoleReporter`]: what the harness adds to libtest's console (retries, flaky tests,
//!   where the reports are).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use cluster_sim_report::TestRecord;

use crate::artifacts::TestLog;
use crate::html::HtmlReporter;
use crate::junit::{CaseRecord, JunitReporter, RunState};

/// Something that happened to the run or to one of its tests.
pub(crate) enum Event<'a> {
    /// The run begins, before any test or cluster: reports replace the last run's.
    RunStarted,
    /// An attempt at a test begins.
    AttemptStarted {
        name: &'a str,
        /// `file:line` of the test.
        location: &'a str,
        log: &'a TestLog,
    },
    /// An attempt ended; its log is about to be written.
    AttemptEnded {
        log: &'a TestLog,
        /// `passed in 1.2s`, `FAILED: ...`, `ERROR: ...`.
        summary: &'a str,
    },
    /// A failed attempt is followed by another.
    Retrying {
        name: &'a str,
        attempt: u32,
        tries: u32,
        why: &'a str,
    },
    /// A test's result: every attempt combined (or skipped, or interrupted).
    TestEnded {
        case: &'a CaseRecord,
        record: &'a TestRecord,
        /// `(failed attempts, the attempt that passed, attempts allowed)` for a flaky test.
        flaky: Option<(usize, u32, u32)>,
    },
    /// The run ends (finished or interrupted).
    RunEnded {
        state: RunState,
        /// Whether any test ran or was skipped (else no report paths are shown).
        reported_any: bool,
        /// The run's artifacts, when any were kept.
        artifacts: Option<&'a Path>,
    },
}

/// A consumer of the run's events. An error is a report that could not be written: the run
/// then ends with exit code 2, after its tests.
pub(crate) trait Reporter: Send + Sync {
    fn on_event(&self, event: &Event<'_>) -> Result<(), String>;
}

/// Every reporter of the run, fed the same events in order.
pub(crate) struct Reporters {
    list: Vec<Box<dyn Reporter>>,
    failed: AtomicBool,
}

impl Reporters {
    /// The run's reporters: JUnit, HTML, the tests' logs and the console.
    pub(crate) fn new(junit: JunitReporter, html: HtmlReporter) -> Self {
        let console = ConsoleReporter {
            junit: junit.path().to_path_buf(),
            html: html.path().to_path_buf(),
            flaky: Mutex::new(Vec::new()),
        };
        Self {
            list: vec![
                Box::new(TestLogReporter),
                Box::new(junit),
                Box::new(html),
                Box::new(console),
            ],
            failed: AtomicBool::new(false),
        }
    }

    /// Hands `event` to every reporter; returns whether all of them handled it. The run's
    /// start stops at the first report that can't be written (the run then ends at once, with
    /// that one error).
    pub(crate) fn emit(&self, event: &Event<'_>) -> bool {
        let mut ok = true;
        for r in &self.list {
            if let Err(e) = r.on_event(event) {
                ok = false;
                self.failed.store(true, Ordering::SeqCst);
                eprintln!("error: {e}");
                if matches!(event, Event::RunStarted) {
                    break;
                }
            }
        }
        ok
    }

    /// Whether a report could not be written at some point.
    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }
}

/// The start and result lines of each attempt's `test.log`.
pub(crate) struct TestLogReporter;

impl Reporter for TestLogReporter {
    fn on_event(&self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::AttemptStarted {
                name,
                location,
                log,
            } => log.note("start", &format!("{name} ({location})")),
            Event::AttemptEnded { log, summary } => log.note("result", summary),
            _ => {}
        }
        Ok(())
    }
}

impl Reporter for JunitReporter {
    fn on_event(&self, event: &Event<'_>) -> Result<(), String> {
        let r = match event {
            Event::RunStarted => self.start(),
            Event::TestEnded { case, .. } => self.record((*case).clone()),
            Event::RunEnded { state, .. } => self.finish(*state),
            _ => Ok(()),
        };
        r.map_err(|e| e.to_string())
    }
}

impl Reporter for HtmlReporter {
    fn on_event(&self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::RunStarted => self
                .start()
                .map_err(|e| format!("cannot write the HTML report: {e}")),
            Event::TestEnded { record, .. } => self
                .record(record)
                .map_err(|e| format!("cannot keep the HTML report's record: {e}")),
            Event::RunEnded { state, .. } => self
                .finish(match state {
                    RunState::Interrupted => "interrupted",
                    _ => "finished",
                })
                .map_err(|e| format!("cannot write the HTML report: {e}")),
            _ => Ok(()),
        }
    }
}

/// What the harness adds to libtest's own console lines.
pub(crate) struct ConsoleReporter {
    junit: PathBuf,
    html: PathBuf,
    flaky: Mutex<Vec<String>>,
}

impl Reporter for ConsoleReporter {
    fn on_event(&self, event: &Event<'_>) -> Result<(), String> {
        match event {
            Event::Retrying {
                name,
                attempt,
                tries,
                why,
            } => eprintln!("retrying {name}: attempt {attempt} of {tries} failed: {why}"),
            Event::TestEnded {
                case,
                flaky: Some((failures, passed_on, tries)),
                ..
            } => {
                eprintln!(
                    "FLAKY {}: failed {failures} time(s), then passed on attempt {passed_on} of {tries}",
                    case.name
                );
                self.flaky
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(case.name.clone());
            }
            Event::RunEnded {
                state: RunState::Finished,
                reported_any,
                artifacts,
            } => {
                let flaky = self.flaky.lock().unwrap_or_else(|e| e.into_inner());
                if !flaky.is_empty() {
                    eprintln!(
                        "{} flaky test(s) (failed, then passed on a retry): {}",
                        flaky.len(),
                        flaky.join(", ")
                    );
                }
                if *reported_any {
                    eprintln!("JUnit report: {}", self.junit.display());
                    eprintln!("HTML report: {}", self.html.display());
                }
                if let Some(dir) = artifacts {
                    eprintln!("artifacts: {}", dir.display());
                }
            }
            _ => {}
        }
        Ok(())
    }
}
