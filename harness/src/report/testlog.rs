//! The test-log reporter: the start and result lines of each attempt's `test.log` (the rest of
//! the log is written as the attempt runs).

use super::events::{Reporter, RunEvent};

/// Writes each attempt's start and result lines.
pub(crate) struct TestLogReporter;

impl Reporter for TestLogReporter {
    fn on_event(&self, event: &RunEvent<'_>) -> Result<(), String> {
        match event {
            RunEvent::AttemptStarted {
                name,
                location,
                log,
            } => log.note("start", &format!("{name} ({location})")),
            RunEvent::AttemptEnded { log, summary } => log.note("result", summary),
            _ => {}
        }
        Ok(())
    }
}
