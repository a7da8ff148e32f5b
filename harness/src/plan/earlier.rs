//! What earlier runs of this workspace recorded, read from their run directories
//! (`<artifacts>/<run>/run.json` and `cases.jsonl`): the tests that failed in the latest one
//! (`--failed`) and how long each test took (`--partition time:M/N`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cluster_sim_report::{RunDir, Status};

/// How many earlier runs are read for durations, newest first (a run of a few tests adds to
/// what the runs before it recorded).
const DURATION_RUNS: usize = 20;

/// Run directories under `artifacts` holding a `run.json`, newest first (by when `run.json`
/// was last written: a run rewrites it at its start and end). `except` (this run) is left out.
pub(crate) fn runs(artifacts: &Path, except: Option<&str>) -> Vec<PathBuf> {
    let mut found: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(artifacts)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| except.is_none_or(|x| e.file_name() != x))
        .filter_map(|e| {
            let info = e.path().join("run.json");
            let at = std::fs::metadata(&info).and_then(|m| m.modified()).ok()?;
            Some((at, e.path()))
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, p)| p).collect()
}

/// Why `--failed` has nothing to go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FailedError {
    /// No run directory under the artifacts directory.
    #[error("--failed: no earlier run in {0}: run the tests once first")]
    NoRun(String),
    /// The latest run's records can't be read.
    #[error("--failed: {0}")]
    Unreadable(String),
}

/// The latest earlier run's directory and the names of its cases that failed or errored.
pub(crate) fn failed_last_time(
    artifacts: &Path,
) -> Result<(PathBuf, HashSet<String>), FailedError> {
    let latest = runs(artifacts, None)
        .into_iter()
        .next()
        .ok_or_else(|| FailedError::NoRun(artifacts.display().to_string()))?;
    let run = RunDir::new(&latest)
        .load()
        .map_err(|e| FailedError::Unreadable(e.to_string()))?;
    let failed = run
        .tests
        .into_iter()
        .filter(|t| matches!(t.status, Status::Failed | Status::Error))
        .map(|t| t.name)
        .collect();
    Ok((latest, failed))
}

/// Each test's duration in milliseconds, as the newest of the last earlier runs that ran it
/// recorded (skipped tests left out). Unreadable runs are passed over.
pub(crate) fn durations(artifacts: &Path) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for dir in runs(artifacts, None).into_iter().take(DURATION_RUNS) {
        let Ok(run) = RunDir::new(dir).load() else {
            continue;
        };
        for t in run.tests {
            if t.status != Status::Skipped {
                out.entry(t.name).or_insert(t.duration_ms);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_sim_report::TestRecord;

    fn record(name: &str, status: Status, ms: u64) -> TestRecord {
        serde_json::from_value(serde_json::json!({
            "name": name, "status": status.as_str(), "duration_ms": ms,
        }))
        .unwrap()
    }

    fn write_run(artifacts: &Path, id: &str, tests: &[TestRecord]) {
        let dir = RunDir::new(artifacts.join(id));
        let info: cluster_sim_report::RunInfo = serde_json::from_value(serde_json::json!({
            "run_id": id, "backend": "docker", "started_ms": 0, "state": "finished",
        }))
        .unwrap();
        dir.write_info(&info).unwrap();
        for t in tests {
            dir.append(t).unwrap();
        }
    }

    #[test]
    fn the_latest_runs_failures_and_every_runs_durations() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            failed_last_time(d.path()),
            Err(FailedError::NoRun(_))
        ));
        write_run(
            d.path(),
            "old",
            &[
                record("a", Status::Failed, 10),
                record("b", Status::Passed, 20),
            ],
        );
        // A later modification time than the first run's, without sleeping.
        let newer = SystemTime::now() + std::time::Duration::from_secs(5);
        write_run(
            d.path(),
            "new",
            &[
                record("a", Status::Passed, 30),
                record("c", Status::Error, 40),
            ],
        );
        std::fs::File::options()
            .write(true)
            .open(d.path().join("new/run.json"))
            .unwrap()
            .set_modified(newer)
            .unwrap();
        let (dir, failed) = failed_last_time(d.path()).unwrap();
        assert_eq!(dir, d.path().join("new"));
        assert_eq!(failed, HashSet::from(["c".to_string()]));
        let t = durations(d.path());
        assert_eq!((t["a"], t["b"], t["c"]), (30, 20, 40));
    }
}
