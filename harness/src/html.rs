//! The HTML reporter: consumes finished-test records (never a cluster), keeps them in the run
//! directory (`run.json`, `cases.jsonl`) and renders `report.html` from them with
//! `cluster_sim_core::report`, the same code `cluster-sim report RUN_DIR` runs afterwards.
//!
//! The page is rendered when the run starts (an empty "running" report replaces the last
//! run's, as the JUnit report is) and when it ends or is interrupted; a run killed outright
//! leaves its records, from which `cluster-sim report` renders the page.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use cluster_sim_report::{model::unix_ms, ReportError, RunDir, RunInfo, TestRecord};

/// Writes a run's report records and its HTML page.
pub struct HtmlReporter {
    out: PathBuf,
    run: RunDir,
    info: Mutex<RunInfo>,
    /// Under nextest every test is its own process: the page is rendered from the shared
    /// records after each test instead of once at the end.
    merge: bool,
}

impl HtmlReporter {
    /// A reporter keeping its records in `run_dir` and writing the page to `out`.
    pub fn new(out: PathBuf, run_dir: &Path, run_id: &str, backend: &str, junit: &Path) -> Self {
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
    pub fn merging(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }

    /// Where the page goes.
    pub fn path(&self) -> &Path {
        &self.out
    }

    /// Writes `run.json` and replaces the last run's page with this run's (empty, running).
    /// Under nextest the first process's `run.json` stays (it holds the run's start).
    pub fn start(&self) -> Result<(), ReportError> {
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
    pub fn record(&self, test: &TestRecord) -> Result<(), ReportError> {
        self.run.append(test)?;
        if self.merge {
            self.finish("running")?;
        }
        Ok(())
    }

    /// Marks the run `state` (`finished`, `interrupted`) and renders the page.
    pub fn finish(&self, state: &str) -> Result<(), ReportError> {
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

/// The report's record of a test known only by its JUnit case (skipped, or interrupted before
/// it was written up): its status and message, no timeline.
pub(crate) fn record_of(case: &crate::junit::CaseRecord) -> TestRecord {
    use crate::junit::CaseStatus;
    use cluster_sim_report::{Attempt, Status};
    let (status, kind, message, detail, skip) = match &case.status {
        CaseStatus::Passed => (Status::Passed, None, None, None, None),
        CaseStatus::Skipped { reason } => (Status::Skipped, None, None, None, Some(reason.clone())),
        CaseStatus::Failure {
            kind,
            message,
            detail,
        } => (
            Status::Failed,
            Some(kind),
            Some(message),
            Some(detail),
            None,
        ),
        CaseStatus::Error {
            kind,
            message,
            detail,
        } => (Status::Error, Some(kind), Some(message), Some(detail), None),
    };
    let attempts = if status == Status::Skipped {
        Vec::new()
    } else {
        let duration_ms = case.duration.as_millis() as u64;
        vec![Attempt {
            number: 1,
            status,
            kind: kind.cloned(),
            message: message.cloned(),
            detail: detail.cloned(),
            started_ms: unix_ms(SystemTime::now()).saturating_sub(duration_ms),
            duration_ms,
            dir: None,
            events: Vec::new(),
            dropped_events: 0,
        }]
    };
    TestRecord {
        name: case.name.clone(),
        status,
        duration_ms: case.duration.as_millis() as u64,
        location: String::new(),
        rerun: None,
        skip_reason: skip.filter(|r| !r.is_empty()),
        properties: case.properties.clone(),
        attempts,
    }
}
