//! The HTML reporter: translates each finished test (the runner's [`TestFinished`]) into the
//! report's record (`cluster_sim_report::TestRecord`, which the CLI reads too), keeps the
//! records in the run directory (`run.json`, `cases.jsonl`) and renders `report.html` from them
//! with `cluster_sim_report`, the same code `cluster-sim report RUN_DIR` runs afterwards.
//!
//! The page is rendered when the run starts (an empty "running" report replaces the last
//! run's, as the JUnit report is) and when it ends or is interrupted; a run killed outright
//! leaves its records, from which `cluster-sim report` renders the page.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use cluster_sim_report::{
    model::unix_ms, Attempt, ReportError, RunDir, RunInfo, Status as ReportStatus, TestRecord,
};

use super::events::{Reporter, RunEvent, RunState};
use crate::outcome::{AttemptResult, Status, TestFinished};

/// Writes a run's report records and its HTML page.
pub(crate) struct HtmlReporter {
    out: PathBuf,
    run: RunDir,
    info: Mutex<RunInfo>,
    /// Under nextest every test is its own process: the page is rendered from the shared
    /// records after each test instead of once at the end.
    merge: bool,
}

impl HtmlReporter {
    /// A reporter keeping its records in `run_dir` and writing the page to `out`.
    pub(crate) fn new(
        out: PathBuf,
        run_dir: &Path,
        run_id: &str,
        backend: &str,
        junit: &Path,
    ) -> Self {
        let seed = std::env::var(cluster_sim_core::fault::SEED_VAR)
            .ok()
            .filter(|s| !s.trim().is_empty());
        Self {
            out,
            run: RunDir::new(run_dir),
            info: Mutex::new(RunInfo {
                run_id: run_id.to_string(),
                backend: backend.to_string(),
                started_ms: unix_ms(SystemTime::now()),
                finished_ms: None,
                state: "running".into(),
                seed,
                junit: Some(
                    std::path::absolute(junit)
                        .unwrap_or_else(|_| junit.to_path_buf())
                        .display()
                        .to_string(),
                ),
            }),
            merge: false,
        }
    }

    /// Renders the shared records after every test (nextest: one process per test).
    pub(crate) fn merging(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }

    /// Where the page goes.
    pub(crate) fn path(&self) -> &Path {
        &self.out
    }

    /// Writes `run.json` and replaces the last run's page with this run's (empty, running).
    /// Under nextest the first process's `run.json` stays (it holds the run's start).
    pub(crate) fn start(&self) -> Result<(), ReportError> {
        let info = self.info.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !(self.merge
            && self
                .run
                .path()
                .join(cluster_sim_report::model::RUN_FILE)
                .is_file())
        {
            self.run.write_info(&info)?;
        }
        self.render()
    }

    /// Keeps a finished test's record.
    fn record(&self, test: &TestRecord) -> Result<(), ReportError> {
        self.run.append(test)?;
        if self.merge {
            self.finish("running")?;
        }
        Ok(())
    }

    /// Marks the run `state` (`finished`, `interrupted`) and renders the page.
    pub(crate) fn finish(&self, state: &str) -> Result<(), ReportError> {
        let info = {
            let mut info = self.info.lock().unwrap_or_else(|e| e.into_inner());
            info.state = state.to_string();
            info.finished_ms = Some(unix_ms(SystemTime::now()));
            info.clone()
        };
        if self.merge {
            // Keep the first process's start; the last one to finish says when the run ended.
            let mut on_disk = self.run.load().map(|r| r.info).unwrap_or(info.clone());
            on_disk.state = info.state;
            on_disk.finished_ms = info.finished_ms;
            self.run.write_info(&on_disk)?;
        } else {
            self.run.write_info(&info)?;
        }
        self.render()
    }

    fn render(&self) -> Result<(), ReportError> {
        cluster_sim_report::render_run_dir(self.run.path(), &self.out)
    }
}

impl Reporter for HtmlReporter {
    fn on_event(&self, event: &RunEvent<'_>) -> Result<(), String> {
        match event {
            RunEvent::RunStarted => self
                .start()
                .map_err(|e| format!("cannot write the HTML report: {e}")),
            RunEvent::TestEnded { test } => self
                .record(&record_of(test))
                .map_err(|e| format!("cannot keep the HTML report's record: {e}")),
            RunEvent::RunEnded { state, .. } => self
                .finish(match state {
                    RunState::Interrupted => "interrupted",
                    _ => "finished",
                })
                .map_err(|e| format!("cannot write the HTML report: {e}")),
            _ => Ok(()),
        }
    }
}

/// The report's record of a finished test: every attempt with its timeline (none for a
/// skipped test).
fn record_of(test: &TestFinished) -> TestRecord {
    let status = match &test.last().status {
        _ if test.is_flaky() => ReportStatus::Flaky,
        Status::Passed => ReportStatus::Passed,
        Status::Failed { .. } => ReportStatus::Failed,
        Status::Error { .. } => ReportStatus::Error,
        Status::Skipped { .. } => ReportStatus::Skipped,
    };
    let skipped = test.skipped();
    TestRecord {
        name: test.name.clone(),
        status,
        duration_ms: test.duration().as_millis() as u64,
        location: test.location.clone(),
        rerun: test.rerun.clone(),
        skip_reason: skipped.filter(|r| !r.is_empty()).map(str::to_string),
        properties: test.properties(),
        attempts: match skipped {
            Some(_) => Vec::new(),
            None => test.attempts.iter().map(attempt_of).collect(),
        },
    }
}

fn attempt_of(a: &AttemptResult) -> Attempt {
    let status = match &a.status {
        Status::Passed => ReportStatus::Passed,
        Status::Failed { .. } => ReportStatus::Failed,
        Status::Error { .. } => ReportStatus::Error,
        Status::Skipped { .. } => ReportStatus::Skipped,
    };
    let failure = a.status.failure();
    Attempt {
        number: a.number,
        status,
        kind: failure.map(|(k, _, _)| k.to_string()),
        message: failure.map(|(_, m, _)| m.to_string()),
        detail: failure.map(|(_, _, d)| d.to_string()),
        started_ms: unix_ms(a.started),
        duration_ms: a.duration.as_millis() as u64,
        dir: a.dir.clone(),
        events: a.events.clone(),
        dropped_events: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::fixtures::{attempt, failed, test};

    #[test]
    fn a_finished_test_becomes_a_record_with_every_attempt() {
        let flaky = record_of(&test(
            3,
            vec![
                attempt(1, failed("exec", "boom")),
                attempt(2, Status::Passed),
            ],
        ));
        assert_eq!(flaky.status, ReportStatus::Flaky);
        assert_eq!(flaky.duration_ms, 300);
        assert_eq!(flaky.location, "f.rs:1");
        assert_eq!(flaky.attempts.len(), 2);
        assert_eq!(flaky.attempts[0].status, ReportStatus::Failed);
        assert_eq!(flaky.attempts[0].message.as_deref(), Some("boom"));
        assert_eq!(flaky.attempts[0].dir.as_deref(), Some("t/attempt-1"));
        assert_eq!(flaky.attempts[1].kind, None);

        let skipped = AttemptResult::skipped("slow".into(), String::new(), Vec::new());
        let skipped = record_of(&TestFinished::once(
            "a::b::c".into(),
            "f.rs:9".into(),
            None,
            skipped,
        ));
        assert_eq!(skipped.status, ReportStatus::Skipped);
        assert_eq!(skipped.skip_reason.as_deref(), Some("slow"));
        assert!(skipped.attempts.is_empty());
    }
}
