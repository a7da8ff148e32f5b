//! The run's reporters, fed the same events in order: a new output (another report format, a
//! live dashboard) is one more [`Reporter`] in [`Reporters::new`].

use std::sync::atomic::{AtomicBool, Ordering};

use super::console::ConsoleReporter;
use super::events::{Reporter, RunEvent};
use super::html::HtmlReporter;
use super::junit::JunitReporter;
use super::testlog::TestLogReporter;

/// Every reporter of the run.
pub(crate) struct Reporters {
    list: Vec<Box<dyn Reporter>>,
    failed: AtomicBool,
}

impl Reporters {
    /// The run's reporters: the tests' logs, JUnit, HTML and the console.
    pub(crate) fn new(junit: JunitReporter, html: HtmlReporter) -> Self {
        let console = ConsoleReporter::new(junit.path().to_path_buf(), html.path().to_path_buf());
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
    pub(crate) fn emit(&self, event: &RunEvent<'_>) -> bool {
        let mut ok = true;
        for r in &self.list {
            if let Err(e) = r.on_event(event) {
                ok = false;
                self.failed.store(true, Ordering::SeqCst);
                eprintln!("error: {e}");
                if matches!(event, RunEvent::RunStarted) {
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
