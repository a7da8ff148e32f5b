//! What reporters hear: the run emits test-level events and every reporter consumes the same
//! stream, as nextest's reporters consume its `TestEvent`s. The runner never calls a reporter
//! directly, and the events carry the runner's own record of a test ([`TestFinished`]): each
//! reporter translates it into its own shape privately.

use std::path::Path;

use crate::artifacts::TestLog;
use crate::outcome::TestFinished;

/// Something that happened to the run or to one of its tests.
pub(crate) enum RunEvent<'a> {
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
        /// `passed in 1.2s`, `FAILED: ...`, `ERROR: ...`, `SKIPPED: ...`.
        summary: &'a str,
    },
    /// A failed attempt is followed by another.
    Retrying {
        name: &'a str,
        attempt: u32,
        tries: u32,
        why: &'a str,
    },
    /// A test's result: every attempt (or skipped, or interrupted).
    TestEnded { test: &'a TestFinished },
    /// The run ends (finished or interrupted).
    RunEnded {
        state: RunState,
        /// Whether any test ran or was skipped (else no report paths are shown).
        reported_any: bool,
        /// The run's artifacts, when any were kept.
        artifacts: Option<&'a Path>,
    },
}

/// Where the run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    /// Tests are still running: a report holds the tests finished so far.
    Running,
    /// A signal ended the run: tests cut short are errors of kind `interrupted`.
    Interrupted,
    /// The run ended: the reports are complete.
    Finished,
}

impl RunState {
    /// `running`, `interrupted`, `finished`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Interrupted => "interrupted",
            RunState::Finished => "finished",
        }
    }
}

/// A consumer of the run's events. An error is a report that could not be written: the run
/// then ends with exit code 2, after its tests.
pub(crate) trait Reporter: Send + Sync {
    fn on_event(&self, event: &RunEvent<'_>) -> Result<(), String>;
}
