//! On-demand runs of the `tests_d` suite: the built test binary with a filter, its own JUnit
//! file and artifacts under the server's runs folder, one run at a time, cancelled with SIGINT
//! to its process group (the harness then tears its clusters down and exits).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::store::now_ms;

/// How long a cancelled run may take to tear down before its process group is killed.
const CANCEL_GRACE: Duration = Duration::from_secs(120);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Finding (building) the suite binary.
    Building,
    /// The suite runs.
    Running,
    /// Every selected test passed.
    Passed,
    /// Some test failed (or the suite exited non-zero).
    Failed,
    /// Cancelled by `DELETE`.
    Cancelled,
    /// The suite could not be started.
    Error,
    /// The server stopped while the run was under way.
    Lost,
}

impl RunState {
    fn finished(self) -> bool {
        !matches!(self, RunState::Building | RunState::Running)
    }
}

/// A run's record (also saved as `run.json` in its folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// Run id.
    pub id: String,
    /// The test filter (`snapshot::basic`).
    pub filter: String,
    /// Where it is.
    pub state: RunState,
    /// When it was asked for (Unix ms).
    pub created_ms: i64,
    /// When it ended (Unix ms).
    pub ended_ms: Option<i64>,
    /// The suite's exit code.
    pub exit_code: Option<i32>,
    /// Why it could not run.
    pub error: Option<String>,
}

/// Test counts from the run's JUnit file.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Test cases.
    pub tests: usize,
    /// Passed.
    pub passed: usize,
    /// Failed (`<failure>`).
    pub failures: usize,
    /// Errors (`<error>`: provisioning, panics, timeouts, interruptions).
    pub errors: usize,
    /// Skipped (ignored).
    pub skipped: usize,
}

/// Counts `<testcase>`, `<failure>`, `<error>` and `<skipped>` elements (flaky and rerun
/// elements have other names, so a passed retry is not a failure).
pub fn count_junit(xml: &str) -> Counts {
    let n = |tag: &str| {
        xml.match_indices(tag)
            .filter(|(i, _)| {
                xml[i + tag.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c == ' ' || c == '>' || c == '/' || c == '\n')
            })
            .count()
    };
    let tests = n("<testcase");
    let failures = n("<failure");
    let errors = n("<error");
    let skipped = n("<skipped");
    Counts {
        tests,
        passed: tests.saturating_sub(failures + errors + skipped),
        failures,
        errors,
        skipped,
    }
}

/// Why a run was not started.
#[derive(Debug)]
pub enum StartError {
    /// Another run is under way (its id).
    Busy(String),
    /// The request is unusable.
    Bad(String),
    /// The run's folder could not be made.
    Io(String),
}

/// Why a run was not cancelled.
#[derive(Debug)]
pub enum CancelError {
    /// No run of that id.
    NotFound,
    /// It has ended.
    Finished(RunInfo),
}

struct Active {
    id: String,
    pgid: Option<u32>,
    cancel: Arc<tokio::sync::Notify>,
    cancelled: bool,
}

/// Where the suite binary comes from.
#[derive(Debug, Clone)]
pub enum Suite {
    /// A given path.
    Binary(PathBuf),
    /// Built and found with cargo in this workspace (once, on the first run).
    Cargo(PathBuf),
}

/// The runs.
pub struct Runs {
    dir: PathBuf,
    suite: Suite,
    found: tokio::sync::Mutex<Option<PathBuf>>,
    runs: Mutex<BTreeMap<String, RunInfo>>,
    active: Mutex<Option<Active>>,
}

fn random_hex() -> String {
    use std::io::Read;
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        b = (std::process::id()).to_le_bytes();
    }
    hex::encode(b)
}

impl Runs {
    /// Runs kept under `dir`; earlier runs found there are listed again (one cut short by a
    /// server stop is `lost`).
    pub fn new(dir: PathBuf, suite: Suite) -> std::io::Result<Runs> {
        std::fs::create_dir_all(&dir)?;
        let mut runs = BTreeMap::new();
        for e in std::fs::read_dir(&dir)?.flatten() {
            let Ok(text) = std::fs::read_to_string(e.path().join("run.json")) else {
                continue;
            };
            if let Ok(mut r) = serde_json::from_str::<RunInfo>(&text) {
                if !r.state.finished() {
                    r.state = RunState::Lost;
                }
                runs.insert(r.id.clone(), r);
            }
        }
        Ok(Runs {
            dir,
            suite,
            found: tokio::sync::Mutex::new(None),
            runs: Mutex::new(runs),
            active: Mutex::new(None),
        })
    }

    /// A run's folder.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Every run, newest first.
    pub fn list(&self) -> Vec<RunInfo> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<RunInfo> = runs.values().cloned().collect();
        v.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
        v
    }

    /// One run.
    pub fn get(&self, id: &str) -> Option<RunInfo> {
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Its JUnit counts, when the file exists.
    pub fn counts(&self, id: &str) -> Option<Counts> {
        let xml = std::fs::read_to_string(self.run_dir(id).join("junit.xml")).ok()?;
        Some(count_junit(&xml))
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut RunInfo)) {
        let saved = {
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            let Some(r) = runs.get_mut(id) else { return };
            f(r);
            r.clone()
        };
        self.save(&saved);
    }

    fn save(&self, r: &RunInfo) {
        let path = self.run_dir(&r.id).join("run.json");
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(r).unwrap_or_default();
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!("run {}: cannot save {}: {e}", r.id, path.display());
        }
    }

    /// Starts a run of the tests matching `filter` (every test when empty).
    pub fn start(self: &Arc<Self>, filter: String) -> Result<RunInfo, StartError> {
        if filter.starts_with('-') {
            return Err(StartError::Bad(format!(
                "filter {filter:?}: a filter is a test name or its prefix, not a flag"
            )));
        }
        if filter.len() > 512 || filter.chars().any(char::is_control) {
            return Err(StartError::Bad(
                "filter: at most 512 characters, no control characters".into(),
            ));
        }
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = &*active {
            return Err(StartError::Busy(a.id.clone()));
        }
        let id = format!("{}-{}", now_ms(), random_hex());
        let dir = self.run_dir(&id);
        std::fs::create_dir_all(dir.join("artifacts"))
            .map_err(|e| StartError::Io(format!("{}: {e}", dir.display())))?;
        let info = RunInfo {
            id: id.clone(),
            filter,
            state: RunState::Building,
            created_ms: now_ms(),
            ended_ms: None,
            exit_code: None,
            error: None,
        };
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), info.clone());
        self.save(&info);
        let cancel = Arc::new(tokio::sync::Notify::new());
        *active = Some(Active {
            id: id.clone(),
            pgid: None,
            cancel: cancel.clone(),
            cancelled: false,
        });
        drop(active);
        let me = self.clone();
        let filter = info.filter.clone();
        tokio::spawn(async move {
            let (state, code, error) = me.execute(&id, &filter, &cancel).await;
            // Finished and no longer active in one step: a DELETE that sees the run finished
            // must not find it still active (and get 202 for a run that already ended).
            let mut active = me.active.lock().unwrap_or_else(|e| e.into_inner());
            me.update(&id, |r| {
                r.state = state;
                r.exit_code = code;
                r.error = error;
                r.ended_ms = Some(now_ms());
            });
            *active = None;
        });
        Ok(info)
    }

    fn cancelled(&self) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|a| a.cancelled)
    }

    async fn execute(
        &self,
        id: &str,
        filter: &str,
        cancel: &tokio::sync::Notify,
    ) -> (RunState, Option<i32>, Option<String>) {
        let bin = tokio::select! {
            b = self.suite_binary() => b,
            () = cancel.notified() => return (RunState::Cancelled, None, None),
        };
        let bin = match bin {
            Ok(b) => b,
            Err(e) => return (RunState::Error, None, Some(e)),
        };
        if self.cancelled() {
            return (RunState::Cancelled, None, None);
        }
        let dir = self.run_dir(id);
        let log = match std::fs::File::create(dir.join("output.log")) {
            Ok(f) => f,
            Err(e) => return (RunState::Error, None, Some(format!("output.log: {e}"))),
        };
        let log2 = match log.try_clone() {
            Ok(f) => f,
            Err(e) => return (RunState::Error, None, Some(format!("output.log: {e}"))),
        };
        let mut cmd = tokio::process::Command::new(&bin);
        if !filter.is_empty() {
            cmd.arg(filter);
        }
        cmd.env("CLUSTER_SIM_JUNIT", dir.join("junit.xml"))
            .env("CLUSTER_SIM_ARTIFACTS", dir.join("artifacts"))
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2)
            // Its own process group, so a cancel reaches the suite and whatever it started,
            // and nothing of the server.
            .process_group(0);
        if let Suite::Cargo(ws) = &self.suite {
            cmd.current_dir(ws);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return (
                    RunState::Error,
                    None,
                    Some(format!("cannot start {}: {e}", bin.display())),
                )
            }
        };
        let pgid = child.id();
        let cancelled_before = {
            let mut a = self.active.lock().unwrap_or_else(|e| e.into_inner());
            match a.as_mut() {
                Some(a) => {
                    a.pgid = pgid;
                    a.cancelled
                }
                None => false,
            }
        };
        self.update(id, |r| r.state = RunState::Running);
        if cancelled_before {
            if let Some(p) = pgid {
                signal_group(p, "INT").await;
            }
        }
        let status = child.wait().await;
        let code = status.as_ref().ok().and_then(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.code().or_else(|| s.signal().map(|n| 128 + n))
        });
        let state = if self.cancelled() {
            RunState::Cancelled
        } else if code == Some(0) {
            RunState::Passed
        } else {
            RunState::Failed
        };
        (state, code, status.err().map(|e| e.to_string()))
    }

    /// The suite binary: the configured one, or found with cargo once.
    async fn suite_binary(&self) -> Result<PathBuf, String> {
        let ws = match &self.suite {
            Suite::Binary(p) => return Ok(p.clone()),
            Suite::Cargo(ws) => ws,
        };
        let mut found = self.found.lock().await;
        if let Some(p) = &*found {
            return Ok(p.clone());
        }
        let p = locate_with_cargo(ws).await?;
        *found = Some(p.clone());
        Ok(p)
    }

    /// Cancels a run: SIGINT to its process group (or, before it started, it never starts);
    /// SIGKILL if it has not ended [`CANCEL_GRACE`] later.
    pub fn cancel(self: &Arc<Self>, id: &str) -> Result<RunInfo, CancelError> {
        let info = self.get(id).ok_or(CancelError::NotFound)?;
        let (pgid, notify) = {
            let mut a = self.active.lock().unwrap_or_else(|e| e.into_inner());
            match a.as_mut() {
                Some(a) if a.id == id => {
                    a.cancelled = true;
                    (a.pgid, a.cancel.clone())
                }
                _ => return Err(CancelError::Finished(info)),
            }
        };
        notify.notify_one();
        if let Some(p) = pgid {
            let me = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                signal_group(p, "INT").await;
                tokio::time::sleep(CANCEL_GRACE).await;
                let still = me
                    .active
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_some_and(|a| a.id == id);
                if still {
                    tracing::warn!("run {id}: still running {CANCEL_GRACE:?} after SIGINT; killing its process group");
                    signal_group(p, "KILL").await;
                }
            });
        }
        Ok(self.get(id).unwrap_or(info))
    }

    /// A file (or folder listing) of a run, for `GET /v1/runs/{id}/files/...`; never outside
    /// the run's folder.
    pub fn file(&self, id: &str, rel: &str) -> Option<PathBuf> {
        self.get(id)?;
        let rel = Path::new(rel);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        let base = self.run_dir(id).canonicalize().ok()?;
        let p = base.join(rel).canonicalize().ok()?;
        p.starts_with(&base).then_some(p)
    }
}

/// `kill -SIG -- -PGID`: the process group of a run (the workspace forbids unsafe code, so
/// no direct `kill(2)`).
async fn signal_group(pgid: u32, sig: &str) {
    let r = tokio::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    if let Err(e) = r {
        tracing::warn!("kill -{sig} -- -{pgid}: {e}");
    }
}

/// `cargo test --no-run --message-format=json --workspace --test tests_d` in the workspace; the
/// artifact's executable. Resolved for the whole workspace, as `cargo test --workspace` resolves
/// it, so it reuses that build instead of compiling a second copy with other features.
async fn locate_with_cargo(ws: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = tokio::process::Command::new(cargo)
        .args([
            "test",
            "--no-run",
            "--message-format=json",
            "--workspace",
            "--test",
            "tests_d",
        ])
        .current_dir(ws)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run cargo in {}: {e}", ws.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout.lines().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["reason"] == "compiler-artifact" && v["target"]["name"] == "tests_d")
            .then(|| v["executable"].as_str().map(PathBuf::from))
            .flatten()
    });
    match exe {
        Some(p) => Ok(p),
        None => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!(
                "cargo test --no-run found no tests_d binary in {} ({}): {last}",
                ws.display(),
                out.status
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_junit_cases() {
        let xml = r#"<testsuites><testsuite name="a" tests="4">
<testcase name="x"/>
<testcase name="y"><failure message="m">t</failure></testcase>
<testcase name="z"><error type="panic"/></testcase>
<testcase name="w"><skipped/></testcase>
<testcase name="v"><flakyFailure/></testcase>
</testsuite></testsuites>"#;
        assert_eq!(
            count_junit(xml),
            Counts {
                tests: 5,
                passed: 2,
                failures: 1,
                errors: 1,
                skipped: 1
            }
        );
    }
}
