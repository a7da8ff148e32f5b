//! What a run leaves for its report: `run.json` (the run: id, backend, state, times) and
//! `cases.jsonl` (one finished test a line, every attempt with its structured events), both in
//! the run directory. Written by the harness as the run goes; read by the renderer.
//!
//! Records are capped when written (events per attempt, texts), so `cases.jsonl` of a long run
//! stays proportionate whatever a test printed; the whole evidence stays in each test's files.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::ReportError;
use cluster_sim_core::cluster::{Event, EventKind};

/// The run's record file in a run directory.
pub const RUN_FILE: &str = "run.json";
/// The finished tests' record file in a run directory.
pub const CASES_FILE: &str = "cases.jsonl";

/// Events kept per attempt in `cases.jsonl`: the first half and the last half of this many.
pub const MAX_EVENTS: usize = 2000;
/// Bytes kept of a message, a failure's detail or an output tail.
pub const MAX_TEXT: usize = 8 * 1024;

/// A run, as `run.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run id (also the run directory's name).
    pub run_id: String,
    /// `docker` or `ssh`.
    pub backend: String,
    /// When the run started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// When it ended, if it did.
    #[serde(default)]
    pub finished_ms: Option<u64>,
    /// `running`, `interrupted` or `finished`.
    pub state: String,
    /// The run's seed (`CLUSTER_SIM_SEED`), when one was given.
    #[serde(default)]
    pub seed: Option<String>,
    /// Where the JUnit report went.
    #[serde(default)]
    pub junit: Option<String>,
}

/// How a test, or one attempt of it, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Passed (on its first attempt, for a test).
    Passed,
    /// An assertion, a failed command or a timeout.
    Failed,
    /// No cluster, a panic, a teardown failure or an interrupt.
    Error,
    /// Failed, then passed on a retry (tests only).
    Flaky,
    /// Ignored (tests only).
    Skipped,
}

impl Status {
    /// The lowercase word (`passed`, `failed`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Error => "error",
            Status::Flaky => "flaky",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the test counts as passed (flaky included).
    pub fn ok(self) -> bool {
        matches!(self, Status::Passed | Status::Flaky | Status::Skipped)
    }
}

/// One event of an attempt's timeline: a cluster event or a note of the harness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The node concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `provision`, `ready`, `exec`, `transfer`, `lifecycle`, `teardown`, `fault`, or one of
    /// the harness's notes (`start`, `test`, `result`, `timeout`, `panic`, `print`...).
    pub kind: String,
    /// The line `test.log` shows.
    pub message: String,
    /// For `exec`: the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// For `exec`: the exit code (`None` when the backend failed to run it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// For `exec`: it hit its own deadline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// For `exec`: how long it ran, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// For `exec`: the end of its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
}

impl EventRecord {
    /// A note of the harness (no exec details).
    pub fn note(at: SystemTime, kind: &str, node: Option<&str>, message: &str) -> Self {
        Self {
            at_ms: unix_ms(at),
            node: node.map(str::to_string),
            kind: kind.to_string(),
            message: message.to_string(),
            command: None,
            code: None,
            timed_out: false,
            duration_ms: None,
            tail: None,
        }
    }

    /// A cluster event, with its command's result for an exec.
    pub fn from_event(e: &Event) -> Self {
        let mut r = Self::note(e.at, &e.kind.to_string(), e.node.as_deref(), &e.message);
        if let (EventKind::Exec, Some(x)) = (e.kind, &e.exec) {
            r.command = Some(x.command.clone());
            r.code = x.code;
            r.timed_out = x.timed_out;
            r.duration_ms = Some(x.duration.as_millis() as u64);
            r.tail = Some(x.tail.clone()).filter(|t| !t.is_empty());
        }
        r
    }

    fn cap(&mut self) {
        cap_text(&mut self.message, MAX_TEXT);
        if let Some(t) = &mut self.tail {
            cap_tail(t, MAX_TEXT);
        }
        if let Some(c) = &mut self.command {
            cap_text(c, MAX_TEXT);
        }
    }
}

/// One attempt at a test (a test without retries has one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// `passed`, `failed` or `error`.
    pub status: Status,
    /// The failure's type (`exec`, `timeout`, `provision`, `panic`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The one-line failure message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The failure's full text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// How long it took (provisioning and teardown included).
    pub duration_ms: u64,
    /// Its artifact directory relative to the run directory, when kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Its timeline.
    pub events: Vec<EventRecord>,
    /// Events left out of `events` (past [`MAX_EVENTS`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped_events: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Attempt {
    /// Keeps the first and last [`MAX_EVENTS`]/2 events and caps every text.
    pub fn cap(&mut self) {
        if self.events.len() > MAX_EVENTS {
            let extra = self.events.len() - MAX_EVENTS;
            self.events.drain(MAX_EVENTS / 2..MAX_EVENTS / 2 + extra);
            self.dropped_events += extra;
        }
        for e in &mut self.events {
            e.cap();
        }
        for t in [&mut self.message, &mut self.detail].into_iter().flatten() {
            cap_text(t, MAX_TEXT);
        }
    }
}

/// One finished test, as a line of `cases.jsonl` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRecord {
    /// `<component>::<file>::<fn>`.
    pub name: String,
    /// How it ended, all attempts considered.
    pub status: Status,
    /// Wall time over every attempt, in milliseconds.
    pub duration_ms: u64,
    /// Where it is written (`file:line`).
    #[serde(default)]
    pub location: String,
    /// The command that reruns just this test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<String>,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Properties of its cluster (`spec`, `nodes`, `image`, a nemesis seed...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<(String, String)>,
    /// Its attempts, first first (none for a skipped test).
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

impl TestRecord {
    /// The test's component (its name up to the first `::`).
    pub fn component(&self) -> &str {
        self.name.split("::").next().unwrap_or_default()
    }
}

/// A run directory's report records.
#[derive(Debug, Clone)]
pub struct RunDir {
    dir: PathBuf,
}

/// A run read back from its directory.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// `run.json`.
    pub info: RunInfo,
    /// `cases.jsonl`, in the order the tests finished.
    pub tests: Vec<TestRecord>,
}

impl RunDir {
    /// The records of the run in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The run directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
        move |source| ReportError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    /// Writes `run.json` (replacing it atomically).
    pub fn write_info(&self, info: &RunInfo) -> Result<(), ReportError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let path = self.dir.join(RUN_FILE);
        let text = serde_json::to_string_pretty(info).map_err(|e| ReportError::Parse {
            path: path.display().to_string(),
            line: 1,
            message: e.to_string(),
        })?;
        let tmp = self
            .dir
            .join(format!(".{RUN_FILE}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(Self::io(&path))
    }

    /// Appends a finished test to `cases.jsonl` (capped first), in one write under a file
    /// lock: under nextest every test is a process of its own appending to the same file.
    pub fn append(&self, test: &TestRecord) -> Result<(), ReportError> {
        let mut test = test.clone();
        for a in &mut test.attempts {
            a.cap();
        }
        let path = self.dir.join(CASES_FILE);
        let mut line = serde_json::to_string(&test).map_err(|e| ReportError::Parse {
            path: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        line.push('\n');
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        fs4::FileExt::lock(&f).map_err(Self::io(&path))?;
        f.write_all(line.as_bytes()).map_err(Self::io(&path))?;
        fs4::FileExt::unlock(&f).map_err(Self::io(&path))
    }

    /// Reads the run back. A test recorded twice (a nextest retry of the process) counts once,
    /// its last record winning.
    pub fn load(&self) -> Result<Run, ReportError> {
        let info_path = self.dir.join(RUN_FILE);
        let text = match std::fs::read_to_string(&info_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ReportError::NotARun(self.dir.display().to_string()))
            }
            Err(e) => return Err(Self::io(&info_path)(e)),
        };
        let info: RunInfo = serde_json::from_str(&text).map_err(|e| ReportError::Parse {
            path: info_path.display().to_string(),
            line: e.line(),
            message: e.to_string(),
        })?;
        let cases_path = self.dir.join(CASES_FILE);
        let text = match std::fs::read_to_string(&cases_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Self::io(&cases_path)(e)),
        };
        let mut tests: Vec<TestRecord> = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<TestRecord>(line) {
                Ok(t) => {
                    tests.retain(|old| old.name != t.name);
                    tests.push(t);
                }
                // The last line of a run killed mid-write may be cut short: skip it.
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
                Err(e) => {
                    return Err(ReportError::Parse {
                        path: cases_path.display().to_string(),
                        line: i + 1,
                        message: e.to_string(),
                    })
                }
            }
        }
        Ok(Run {
            dir: self.dir.clone(),
            info,
            tests,
        })
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// Cuts `s` to at most `max` bytes (at a character boundary), saying so.
pub(crate) fn cap_text(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let cut = s.len() - end;
        s.truncate(end);
        s.push_str(&format!("\n[... {cut} more bytes]"));
    }
}

/// Keeps the last `max` bytes of `s` (at a character boundary), saying so.
pub(crate) fn cap_tail(s: &mut String, max: usize) {
    if s.len() > max {
        let mut start = s.len() - max;
        while !s.is_char_boundary(start) {
            start += 1;
        }
        *s = format!("[... {start} bytes before]\n{}", &s[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, events: usize) -> TestRecord {
        TestRecord {
            name: name.into(),
            status: Status::Failed,
            duration_ms: 10,
            location: "f.rs:1".into(),
            rerun: None,
            skip_reason: None,
            properties: vec![],
            attempts: vec![Attempt {
                number: 1,
                status: Status::Failed,
                kind: Some("exec".into()),
                message: Some("x".repeat(MAX_TEXT * 2)),
                detail: None,
                started_ms: 1,
                duration_ms: 10,
                dir: None,
                events: (0..events)
                    .map(|i| {
                        EventRecord::note(
                            UNIX_EPOCH + Duration::from_millis(i as u64),
                            "exec",
                            Some("n1"),
                            &format!("e{i}"),
                        )
                    })
                    .collect(),
                dropped_events: 0,
            }],
        }
    }

    #[test]
    fn records_round_trip_capped_and_a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let rd = RunDir::new(dir.path());
        rd.write_info(&RunInfo {
            run_id: "R".into(),
            backend: "docker".into(),
            started_ms: 5,
            finished_ms: None,
            state: "running".into(),
            seed: None,
            junit: None,
        })
        .unwrap();
        rd.append(&record("a::b::c", MAX_EVENTS + 10)).unwrap();
        rd.append(&record("a::b::d", 3)).unwrap();
        let run = rd.load().unwrap();
        assert_eq!(run.tests.len(), 2);
        let a = &run.tests[0].attempts[0];
        assert_eq!(a.events.len(), MAX_EVENTS);
        assert_eq!(a.dropped_events, 10);
        assert_eq!(a.events[0].message, "e0");
        assert_eq!(
            a.events.last().unwrap().message,
            format!("e{}", MAX_EVENTS + 9)
        );
        assert!(a.message.as_ref().unwrap().len() < MAX_TEXT + 100);

        // A run killed mid-append leaves half a line: the rest still loads.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(CASES_FILE))
            .unwrap();
        f.write_all(b"{\"name\":\"half").unwrap();
        assert_eq!(rd.load().unwrap().tests.len(), 2);

        let e = RunDir::new(dir.path().join("nope")).load().unwrap_err();
        assert!(e.to_string().contains("not a run directory"), "{e}");
    }
}
