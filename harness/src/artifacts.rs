//! Where a run's evidence goes: `<artifacts>/<run id>/<test name>/test.log` (timestamped
//! events) and `nodes/<node>/...` (collected by cluster-sim), kept per `CLUSTER_SIM_KEEP`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use cluster_sim::report::EventRecord;
use cluster_sim::Event;

/// A run's identity: UTC start time and process id, e.g. `20261125T213001Z-4242`.
pub fn new_run_id() -> String {
    let ts = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let compact: String = ts.chars().filter(|c| *c != '-' && *c != ':').collect();
    format!("{compact}-{}", std::process::id())
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

#[cfg(test)]
mod tests {
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
