//! Renders a run's records into one self-contained HTML page (minijinja; inline CSS, JS and
//! data, nothing loaded from the network): the summary, then per test its attempts, each with a
//! timeline drawn by the page's script (a lane per node) when the test is opened.
//!
//! Budgets keep a big run's page small: events per attempt and node-log bytes are shared out
//! over the whole run, so 1,000 tests with 20 MB of logs stay well under 10 MB. Every file stays
//! linked in full.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Serialize;

use super::logs::{self, NodeLog};
use super::model::{cap_tail, Attempt, EventRecord, Run, RunDir, Status, TestRecord};
use crate::error::ReportError;

/// The page's template.
const TEMPLATE: &str = include_str!("report.html.j2");

/// Events drawn over the whole report, shared out per attempt.
const EVENT_BUDGET: usize = 24_000;
/// Events drawn per attempt, however small the run.
const EVENTS_MAX: usize = 1_500;
/// Events drawn per attempt, however big the run.
const EVENTS_MIN: usize = 60;
/// Bytes of node logs embedded over the whole report, shared out per attempt.
const LOG_BUDGET: usize = 3 * 1024 * 1024;
/// Bytes of node logs embedded per attempt, however small the run.
const LOG_MAX: usize = 512 * 1024;
/// Bytes of node logs embedded per attempt, however big the run.
const LOG_MIN: usize = 2 * 1024;
/// Output tail shown for a command that exited 0, and for one that did not.
const TAIL_OK: usize = 256;
const TAIL_BAD: usize = 4 * 1024;
/// Largest `history.svg` embedded in the page (a bigger one is linked).
const HISTORY_MAX: u64 = 512 * 1024;

#[derive(Serialize)]
struct Page {
    run_id: String,
    backend: String,
    state: String,
    started: String,
    wall: String,
    test_time: String,
    seed: Option<String>,
    junit: Option<minijinja::Value>,
    total: usize,
    passed: usize,
    failed: usize,
    flaky: usize,
    skipped: usize,
    tests: Vec<TestView>,
}

#[derive(Serialize)]
struct TestView {
    id: usize,
    name: String,
    status: &'static str,
    open: bool,
    duration: String,
    location: String,
    rerun: Option<String>,
    skip_reason: Option<String>,
    message: Option<String>,
    seeds: Vec<String>,
    properties: Vec<(String, String)>,
    attempts: Vec<AttemptView>,
    /// JSON for the timeline script (escaped for a `<script>` element).
    data: minijinja::Value,
}

#[derive(Serialize)]
struct AttemptView {
    number: u32,
    status: &'static str,
    kind: Option<String>,
    message: Option<String>,
    detail: Option<String>,
    duration: String,
    dir: Option<minijinja::Value>,
    artifacts: Vec<(String, minijinja::Value)>,
    history: Option<minijinja::Value>,
    history_href: Option<minijinja::Value>,
    dropped_events: usize,
}

/// What the timeline script gets for one attempt.
#[derive(Serialize)]
struct AttemptData {
    n: u32,
    status: &'static str,
    t0: u64,
    t1: u64,
    nodes: Vec<String>,
    /// `[ms since t0, node, kind, message (none for a command: the page words it), command,
    /// code, duration_ms, tail, timed_out]`.
    events: Vec<EventData>,
    failure: Option<FailureData>,
    logs: Vec<NodeLog>,
}

#[derive(Serialize)]
struct EventData(
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<u64>,
    Option<String>,
    bool,
);

#[derive(Serialize)]
struct FailureData {
    /// Milliseconds since the attempt's start.
    at: i64,
    node: Option<String>,
    message: String,
}

/// Human duration from milliseconds: `850ms`, `12.3s`, `4m 05s`.
fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// A link from the report at `out` to `target`: relative when the report's directory holds it
/// (the pair moves together), else a `file://` URL. Safe in an attribute as it is (the
/// characters HTML cares about are percent-encoded), so the template doesn't escape it again.
fn href(out: &Path, target: &Path) -> minijinja::Value {
    minijinja::Value::from_safe_string(href_text(out, target))
}

fn href_text(out: &Path, target: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let target = abs(target);
    let base = abs(out).parent().map(Path::to_path_buf).unwrap_or_default();
    let (prefix, rest) = match target.strip_prefix(&base) {
        Ok(rel) => ("./".to_string(), rel.to_path_buf()),
        Err(_) => ("file://".to_string(), target.clone()),
    };
    let mut s = prefix;
    for c in rest.to_string_lossy().chars() {
        match c {
            ' ' => s.push_str("%20"),
            '<' => s.push_str("%3C"),
            '>' => s.push_str("%3E"),
            '&' => s.push_str("%26"),
            '\'' => s.push_str("%27"),
            '#' => s.push_str("%23"),
            '?' => s.push_str("%3F"),
            '%' => s.push_str("%25"),
            '"' => s.push_str("%22"),
            c => s.push(c),
        }
    }
    s
}

/// Files of an attempt's directory (not those of later attempts nested in it), sorted.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    let nested_attempt =
                        d == dir && e.file_name().to_string_lossy().starts_with("attempt-");
                    if !nested_attempt {
                        stack.push(p);
                    }
                }
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The events an attempt's timeline draws: all of them when they fit `cap`, else the ones
/// that tell the story (faults, lifecycle, readiness, failed commands, notes) and then the
/// latest of the rest.
fn pick_events(events: &[EventRecord], cap: usize) -> Vec<&EventRecord> {
    if events.len() <= cap {
        return events.iter().collect();
    }
    let routine = |e: &EventRecord| {
        matches!(e.kind.as_str(), "exec" | "transfer" | "print") && e.code.unwrap_or(0) == 0
    };
    let mut keep: Vec<usize> = (0..events.len())
        .filter(|&i| !routine(&events[i]))
        .collect();
    if keep.len() > cap {
        let extra = keep.len() - cap;
        keep.drain(cap / 4..cap / 4 + extra);
    } else {
        let room = cap - keep.len();
        let rest: Vec<usize> = (0..events.len()).filter(|&i| routine(&events[i])).collect();
        keep.extend(&rest[rest.len().saturating_sub(room)..]);
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| &events[i]).collect()
}

/// Nodes in their spec order: the provisioning event `allocated n1=... n2=...` names them all;
/// nodes seen only in later events follow in order of appearance.
fn lanes(events: &[EventRecord]) -> Vec<String> {
    let mut nodes: Vec<String> = Vec::new();
    for e in events {
        if e.kind == "provision" {
            if let Some(rest) = e.message.strip_prefix("allocated ") {
                for pair in rest.split_whitespace() {
                    if let Some((n, _)) = pair.split_once('=') {
                        if !nodes.iter().any(|x| x == n) {
                            nodes.push(n.to_string());
                        }
                    }
                }
            }
        }
    }
    for e in events {
        if let Some(n) = &e.node {
            if !nodes.contains(n) {
                nodes.push(n.clone());
            }
        }
    }
    nodes
}

/// Where an attempt failed: the harness's `result`, `timeout` or `panic` note, placed at the
/// failing command when one shows in the message.
fn failure_of(a: &Attempt, t0: u64) -> Option<FailureData> {
    if a.status.ok() {
        return None;
    }
    let end = a.started_ms + a.duration_ms;
    let note = a
        .events
        .iter()
        .find(|e| matches!(e.kind.as_str(), "timeout" | "panic"))
        .or_else(|| a.events.iter().rev().find(|e| e.kind == "result"));
    // A failed command named in the message marks the spot on its node's lane.
    let message = a.message.clone().unwrap_or_default();
    let failing_exec = a.events.iter().rev().find(|e| {
        e.kind == "exec"
            && e.code != Some(0)
            && e.command
                .as_ref()
                .is_some_and(|c| message.contains(c.as_str()))
    });
    let at = failing_exec.or(note).map(|e| e.at_ms).unwrap_or(end);
    Some(FailureData {
        at: at as i64 - t0 as i64,
        node: failing_exec.and_then(|e| e.node.clone()),
        message: if message.is_empty() {
            note.map(|e| e.message.clone()).unwrap_or_default()
        } else {
            message
        },
    })
}

/// The nemesis seeds a test's timeline names (`nemesis seed=N ...`).
fn seeds_of(t: &TestRecord) -> Vec<String> {
    let mut seeds: Vec<String> = t
        .properties
        .iter()
        .filter(|(k, _)| k.contains("seed"))
        .map(|(_, v)| v.clone())
        .collect();
    for a in &t.attempts {
        for e in &a.events {
            if let Some(rest) = e.message.strip_prefix("nemesis seed=") {
                let seed: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if !seed.is_empty() && !seeds.contains(&seed) {
                    seeds.push(seed);
                }
            }
        }
    }
    seeds
}

/// JSON safe inside a `<script>` element.
fn script_json<T: Serialize>(v: &T) -> Result<minijinja::Value, ReportError> {
    let s = serde_json::to_string(v).map_err(|e| ReportError::Template(e.to_string()))?;
    Ok(minijinja::Value::from_safe_string(
        s.replace("</", "<\\/").replace("<!--", "<\\!--"),
    ))
}

fn attempt_view(
    run_dir: &Path,
    out: &Path,
    a: &Attempt,
    event_cap: usize,
    log_budget: usize,
) -> Result<(AttemptView, AttemptData), ReportError> {
    let dir = a
        .dir
        .as_ref()
        .map(|d| run_dir.join(d))
        .filter(|d| d.is_dir());
    let files = dir.as_deref().map(files_of).unwrap_or_default();
    let artifacts = files
        .iter()
        .map(|f| {
            let label = dir
                .as_deref()
                .and_then(|d| f.strip_prefix(d).ok())
                .unwrap_or(f)
                .display()
                .to_string();
            (label, href(out, f))
        })
        .collect();
    let history_file = dir
        .as_deref()
        .map(|d| d.join("history.svg"))
        .filter(|p| p.is_file());
    let history = history_file
        .as_deref()
        .filter(|p| {
            std::fs::metadata(p)
                .map(|m| m.len() <= HISTORY_MAX)
                .unwrap_or(false)
        })
        .and_then(|p| std::fs::read(p).ok())
        .map(|b| {
            minijinja::Value::from_safe_string(format!(
                "data:image/svg+xml;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(b)
            ))
        });

    let t0 = a
        .started_ms
        .min(a.events.first().map_or(u64::MAX, |e| e.at_ms));
    let t1 = (a.started_ms + a.duration_ms).max(a.events.last().map_or(0, |e| e.at_ms));
    let nodes = lanes(&a.events);
    let mut node_logs = Vec::new();
    if let Some(d) = dir.as_deref() {
        let with_logs: Vec<(&String, PathBuf)> = nodes
            .iter()
            .map(|n| (n, d.join("nodes").join(n).join("service.log")))
            .filter(|(_, p)| p.is_file())
            .collect();
        let each = log_budget / with_logs.len().max(1);
        for (n, p) in with_logs {
            if let Some(l) = logs::read(n, &p, href_text(out, &p), each, t0) {
                node_logs.push(l);
            }
        }
    }
    let events = pick_events(&a.events, event_cap)
        .into_iter()
        .map(|e| {
            let tail = e.tail.clone().map(|mut t| {
                cap_tail(&mut t, if e.code == Some(0) { TAIL_OK } else { TAIL_BAD });
                t
            });
            EventData(
                e.at_ms as i64 - t0 as i64,
                e.node.clone(),
                e.kind.clone(),
                Some(e.message.clone()).filter(|_| e.command.is_none()),
                e.command.clone(),
                e.code,
                e.duration_ms,
                tail,
                e.timed_out,
            )
        })
        .collect();
    let data = AttemptData {
        n: a.number,
        status: a.status.as_str(),
        t0,
        t1,
        nodes,
        events,
        failure: failure_of(a, t0),
        logs: node_logs,
    };
    let view = AttemptView {
        number: a.number,
        status: a.status.as_str(),
        kind: a.kind.clone(),
        message: a.message.clone(),
        detail: a.detail.clone(),
        duration: human_ms(a.duration_ms),
        dir: dir.as_deref().map(|d| href(out, d)),
        artifacts,
        history,
        history_href: history_file.as_deref().map(|p| href(out, p)),
        dropped_events: a.dropped_events + a.events.len().saturating_sub(event_cap),
    };
    Ok((view, data))
}

/// Renders `run` as HTML, its links relative to where the page will be written (`out`).
pub fn render(run: &Run, out: &Path) -> Result<String, ReportError> {
    let attempts: usize = run
        .tests
        .iter()
        .map(|t| t.attempts.len())
        .sum::<usize>()
        .max(1);
    let event_cap = (EVENT_BUDGET / attempts).clamp(EVENTS_MIN, EVENTS_MAX);
    let log_budget = (LOG_BUDGET / attempts).clamp(LOG_MIN, LOG_MAX);

    // Failures first, then flaky, then the rest; by name within each.
    let mut tests: Vec<&TestRecord> = run.tests.iter().collect();
    let rank = |s: Status| match s {
        Status::Failed | Status::Error => 0,
        Status::Flaky => 1,
        Status::Passed => 2,
        Status::Skipped => 3,
    };
    tests.sort_by(|a, b| {
        rank(a.status)
            .cmp(&rank(b.status))
            .then(a.name.cmp(&b.name))
    });

    let mut views = Vec::new();
    for (id, t) in tests.iter().enumerate() {
        let mut attempt_views = Vec::new();
        let mut data = Vec::new();
        for a in &t.attempts {
            let (v, d) = attempt_view(&run.dir, out, a, event_cap, log_budget)?;
            attempt_views.push(v);
            data.push(d);
        }
        let message = t
            .attempts
            .iter()
            .rev()
            .find(|a| !a.status.ok())
            .and_then(|a| a.message.clone());
        views.push(TestView {
            id,
            name: t.name.clone(),
            status: t.status.as_str(),
            open: !t.status.ok(),
            duration: human_ms(t.duration_ms),
            location: t.location.clone(),
            rerun: t.rerun.clone(),
            skip_reason: t.skip_reason.clone(),
            message,
            seeds: seeds_of(t),
            properties: t.properties.clone(),
            attempts: attempt_views,
            data: script_json(&data)?,
        });
    }
    let count = |s: &[Status]| run.tests.iter().filter(|t| s.contains(&t.status)).count();
    let wall = run
        .info
        .finished_ms
        .map(|f| human_ms(f.saturating_sub(run.info.started_ms)))
        .unwrap_or_else(|| "still running".into());
    let page = Page {
        run_id: run.info.run_id.clone(),
        backend: run.info.backend.clone(),
        state: run.info.state.clone(),
        started: rfc3339(run.info.started_ms),
        wall,
        test_time: human_ms(run.tests.iter().map(|t| t.duration_ms).sum()),
        seed: run.info.seed.clone(),
        junit: run.info.junit.as_ref().map(|j| href(out, Path::new(j))),
        total: run.tests.len(),
        passed: count(&[Status::Passed]),
        failed: count(&[Status::Failed, Status::Error]),
        flaky: count(&[Status::Flaky]),
        skipped: count(&[Status::Skipped]),
        tests: views,
    };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)
        .map_err(|e| ReportError::Template(e.to_string()))?;
    env.get_template("report.html")
        .and_then(|t| t.render(&page))
        .map_err(|e| ReportError::Template(format!("{e:#}")))
}

/// Renders `run` and writes it to `out` (atomically: a reader sees the old page or the new).
pub fn write_report(run: &Run, out: &Path) -> Result<(), ReportError> {
    let html = render(run, out)?;
    let io = |p: &Path| {
        let p = p.display().to_string();
        move |source| ReportError::Io { path: p, source }
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, html).map_err(io(&tmp))?;
    std::fs::rename(&tmp, out).map_err(io(out))
}

/// Reads the run in `run_dir` and writes its report to `out`.
pub fn render_run_dir(run_dir: &Path, out: &Path) -> Result<(), ReportError> {
    let run = RunDir::new(run_dir).load()?;
    write_report(&run, out)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
