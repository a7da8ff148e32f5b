//! The console reporter: what the harness adds to libtest's own lines (retries, flaky tests,
//! where the reports and artifacts are).

use std::path::PathBuf;
use std::sync::Mutex;

use super::events::{Reporter, RunEvent, RunState};

/// Writes the harness's lines to stderr.
pub(crate) struct ConsoleReporter {
    junit: PathBuf,
    html: PathBuf,
    flaky: Mutex<Vec<String>>,
}

impl ConsoleReporter {
    /// A reporter that names the two reports at the run's end.
    pub(crate) fn new(junit: PathBuf, html: PathBuf) -> Self {
        Self {
            junit,
            html,
            flaky: Mutex::new(Vec::new()),
        }
    }
}

impl Reporter for ConsoleReporter {
    fn on_event(&self, event: &RunEvent<'_>) -> Result<(), String> {
        match event {
            RunEvent::Retrying {
                name,
                attempt,
                tries,
                why,
            } => eprintln!("retrying {name}: attempt {attempt} of {tries} failed: {why}"),
            RunEvent::TestEnded { test } if test.is_flaky() => {
                let n = test.attempts.len();
                eprintln!(
                    "FLAKY {}: failed {} time(s), then passed on attempt {n} of {}",
                    test.name,
                    n - 1,
                    test.tries
                );
                self.flaky
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(test.name.clone());
            }
            RunEvent::RunEnded {
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
