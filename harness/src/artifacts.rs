//! Where a run's evidence goes: `<artifacts>/<run id>/<test name>/test.log` (timestamped
//! events) and `nodes/<node>/...` (collected by cluster-sim), kept per `CLUSTER_SIM_KEEP`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use cluster_sim_core::Event;
use cluster_sim_report::EventRecord;

/// A run's identity: UTC start time and process id, e.g. `20261125T213001Z-4242`.
pub fn new_run_id() -> String {
    let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = ts.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
}

/// How recently a run directory must have changed to count as possibly in use by another run.
const IN_USE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes earlier runs' directories under `artifacts` beyond the newest `keep` (by last
/// change), leaving `current`, anything that is not a run directory, and any run changed in the
/// last 15 minutes (another run may be writing it). Returns what was removed.
pub fn prune_runs(artifacts: &Path, keep: usize, current: &str) -> Vec<PathBuf> {
    if keep == 0 {
        return Vec::new();
    }
    let is_run = |name: &str| {
        name.starts_with("nextest-")
            || name.split_once('-').is_some_and(|(ts, pid)| {
                ts.len() == 16
                    && ts.ends_with('Z')
                    && ts.as_bytes()[8] == b'T'
                    && !pid.is_empty()
                    && pid.chars().all(|c| c.is_ascii_digit())
            })
    };
    let mut runs: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(artifacts)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != current && is_run(&name)
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.0));
    let now = SystemTime::now();
    let mut removed = Vec::new();
    for (changed, dir) in runs.into_iter().skip(keep) {
        let recent = now.duration_since(changed).map_or(true, |age| age < IN_USE);
        if !recent && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// A test's directory name: its full name, with anything but `[A-Za-z0-9_.:-]` replaced.
pub fn test_dir_name(full_name: &str) -> String {
    full_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.:-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

struct Inner {
    started: Instant,
    lines: Vec<String>,
    /// The same lines, structured, for the HTML report's timeline.
    events: Vec<EventRecord>,
    file: Option<File>,
}

/// A test's timeline. Lines go to memory (for the report) and, once [`TestLog::stream_to`] is
/// called, to `test.log` as they happen, so a hung test can be watched with `tail -f`.
#[derive(Clone)]
pub struct TestLog {
    inner: Arc<Mutex<Inner>>,
}

impl Default for TestLog {
    fn default() -> Self {
        Self::new()
    }
}

impl TestLog {
    /// An empty log, its clock started.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                started: Instant::now(),
                lines: Vec::new(),
                events: Vec::new(),
                file: None,
            })),
        }
    }

    /// Streams the lines so far, and every later one, to `path`.
    pub fn stream_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = File::create(path)?;
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for l in &g.lines {
            writeln!(f, "{l}")?;
        }
        g.file = Some(f);
        Ok(())
    }

    /// Adds a line: `<UTC time> +<seconds since start> [<kind>] <node>: <message>`.
    pub fn line(&self, at: SystemTime, kind: &str, node: Option<&str>, message: &str) {
        self.record(EventRecord::note(at, kind, node, message));
    }

    fn record(&self, event: EventRecord) {
        let (kind, node, message) = (&event.kind, event.node.as_deref(), &event.message);
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(event.at_ms);
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let since = g.started.elapsed().as_secs_f64();
        let node = node.map(|n| format!("{n}: ")).unwrap_or_default();
        let line = format!(
            "{} +{since:.3}s [{kind}] {node}{message}",
            humantime::format_rfc3339_millis(at)
        );
        if let Some(f) = g.file.as_mut() {
            // Best effort: the in-memory copy still reaches the report.
            let _ = writeln!(f, "{line}");
        }
        g.lines.push(line);
        g.events.push(event);
    }

    /// Adds a line stamped now.
    pub fn note(&self, kind: &str, message: &str) {
        self.line(SystemTime::now(), kind, None, message);
    }

    /// Adds a cluster-sim event (an exec's result kept structured for the report).
    pub fn event(&self, e: &Event) {
        self.record(EventRecord::from_event(e));
    }

    /// Every event so far, structured.
    pub fn events(&self) -> Vec<EventRecord> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.events.clone()
    }

    /// Every line so far.
    pub fn text(&self) -> String {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut s = g.lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Writes the whole log to `path` (when it was not streamed there).
    pub fn persist(&self, path: &Path) -> std::io::Result<()> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.file.as_mut() {
            return f.flush();
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut s = g.lines.join("\n");
        s.push('\n');
        std::fs::write(path, s)
    }

    /// Stops streaming (closes the file).
    pub fn close(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.file = None;
    }
}

/// Every regular file under `dir`, sorted (the attachments of a kept test).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// `path` as seen from `base`: relative (with `..` where `path` lies outside `base`), so a
/// CI server that resolves report attachments from the project directory finds it. Both are
/// made absolute first; on different roots (another drive) `path` stays absolute.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (path, base) = (abs(path), abs(base));
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return path;
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::relative_to;
    use std::path::Path;

    #[test]
    fn attachments_are_relative_to_the_project() {
        let p = |s: &str| Path::new(s).to_path_buf();
        assert_eq!(
            relative_to(&p("/ws/target/cluster-sim/runs/r/t/test.log"), &p("/ws")),
            p("target/cluster-sim/runs/r/t/test.log")
        );
        assert_eq!(
            relative_to(&p("/tmp/t/runs/r/test.log"), &p("/ws/proj")),
            p("../../tmp/t/runs/r/test.log")
        );
    }

    #[test]
    fn old_runs_beyond_the_newest_are_pruned_but_recent_and_foreign_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let make = |name: &str, aged: bool| {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.join("t")).unwrap();
            if aged {
                let f = std::fs::File::open(&p).unwrap();
                f.set_modified(old).unwrap();
            }
            p
        };
        let a = make("20260101T000000Z-1", true);
        let b = make("20260102T000000Z-2", true);
        let c = make("nextest-abc", true);
        let fresh = make("20260103T000000Z-3", false);
        let mine = make("20260104T000000Z-4", true);
        let foreign = make("my-notes", true);
        // Keep 1: the newest other run (the fresh one) stays; of the aged ones none is newer.
        let mut removed = prune_runs(dir.path(), 1, "20260104T000000Z-4");
        removed.sort();
        let mut want = vec![a, b, c];
        want.sort();
        assert_eq!(removed, want);
        assert!(fresh.exists() && mine.exists() && foreign.exists());
        // 0 keeps everything.
        assert!(prune_runs(dir.path(), 0, "x").is_empty());
    }

    use super::*;

    #[test]
    fn run_ids_and_dir_names() {
        let id = new_run_id();
        assert_eq!(
            id.len(),
            "20261125T213001Z".len() + 1 + std::process::id().to_string().len()
        );
        assert_eq!(
            test_dir_name("etcd::election::kill leader"),
            "etcd::election::kill_leader"
        );
    }

    #[test]
    fn log_streams_and_keeps_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = TestLog::new();
        log.note("start", "one");
        log.stream_to(&dir.path().join("t/test.log")).unwrap();
        log.line(SystemTime::now(), "exec", Some("n1"), "`true` -> exit 0");
        log.close();
        let text = std::fs::read_to_string(dir.path().join("t/test.log")).unwrap();
        assert_eq!(text, log.text());
        assert!(text.contains("[exec] n1: `true` -> exit 0"));
        assert_eq!(files_under(dir.path()), vec![dir.path().join("t/test.log")]);
    }
}
