//! The JUnit reporter: translates each finished test (the runner's [`TestFinished`]) into a
//! case of its own shape, privately, as nextest's JUnit aggregator does, and keeps `junit.xml`
//! valid on disk as the run goes, so an interrupted run still leaves a report.
//!
//! One `<testsuite>` per component, `classname` = `<component>.<file>`. Suite properties carry
//! the backend and run id, and `<test>.spec|nodes|image` per test (the schema allows no
//! properties on a `<testcase>`).
//!
//! A run starts by replacing the report with an empty one that says `state=running` (a suite
//! named `cluster-sim` with no cases, carrying the run's properties), so a run killed before its
//! end never leaves the previous run's green report in place. Each case is rendered (sanitised
//! and capped) once, when it is recorded: a rewrite after every test then costs the size of the
//! report, not the raw failure texts again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::events::{Reporter, RunEvent, RunState};
use super::sanitize;
use crate::outcome::{Status, TestFinished};

/// How often trivial (cluster-less) results are flushed at most; a test with a cluster is
/// written as soon as it ends. Keeps 1,000 trivial trials from rewriting the file 1,000 times.
const FLUSH_EVERY: Duration = Duration::from_millis(250);

/// How a test ended, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CaseStatus {
    /// Passed.
    Passed,
    /// An assertion, a failed command or a timeout: `<failure>`.
    Failure {
        /// `type` attribute: `assertion`, `exec`, `panic`, `timeout`.
        kind: String,
        /// One-line message (node, command, code, tail, rerun command).
        message: String,
        /// The full text: error chain, artifacts, rerun command.
        detail: String,
    },
    /// The harness could not give the test its cluster (bad spec, image, engine), something
    /// panicked (in the body or in the harness), or a signal cut the run short: `<error>`.
    Error {
        /// `type` attribute: `provision`, `panic`, `teardown`, `interrupted`.
        kind: String,
        /// One-line message.
        message: String,
        /// The full text.
        detail: String,
    },
    /// Ignored, with the reason.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One finished test, as a case of the report.
#[derive(Debug, Clone)]
struct CaseRecord {
    /// Full name, `<component>::<file>::<fn>`.
    name: String,
    /// The suite it goes in.
    component: String,
    /// `<component>.<file>`.
    classname: String,
    /// Wall time, provisioning and teardown included.
    duration: Duration,
    /// Outcome.
    status: CaseStatus,
    /// The test's event log (sanitised and capped here).
    output: String,
    /// Files attached (`[[ATTACHMENT|...]]` lines).
    attachments: Vec<PathBuf>,
    /// `spec`, `nodes`, `image` of the test's cluster.
    properties: Vec<(String, String)>,
    /// Whether the record should reach the disk at once (tests with a cluster, failures).
    flush_now: bool,
    /// Earlier attempts that failed, first first: a test that then passed is flaky
    /// (`<flakyFailure>`), one that failed again carries them as `<rerunFailure>`, as Maven
    /// Surefire writes them (Jenkins and GitLab read these).
    reruns: Vec<Rerun>,
}

/// A failed attempt of a test that was retried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rerun {
    /// An `<error>`-kind attempt (no cluster, a panic) rather than a failure.
    error: bool,
    /// `type` attribute: `exec`, `timeout`, `provision`...
    kind: String,
    /// One-line message.
    message: String,
    /// The full text (the element's `<stackTrace>`).
    detail: String,
    /// The attempt's event log (its `<system-out>`).
    output: String,
}

/// The report's case for a finished test.
fn case_of(test: &TestFinished) -> CaseRecord {
    let (component, classname) = component_and_class(&test.name);
    let last = test.last();
    // With retries, the message says every attempt failed before it says how the last did.
    let all_failed = |message: &str| {
        if test.tries > 1 {
            format!("all {} attempts failed; last: {message}", test.tries)
        } else {
            message.to_string()
        }
    };
    let status = match &last.status {
        Status::Passed => CaseStatus::Passed,
        Status::Skipped { reason } => CaseStatus::Skipped {
            reason: reason.clone(),
        },
        Status::Failed {
            kind,
            message,
            detail,
        } => CaseStatus::Failure {
            kind: kind.clone(),
            message: all_failed(message),
            detail: detail.clone(),
        },
        Status::Error {
            kind,
            message,
            detail,
        } => CaseStatus::Error {
            kind: kind.clone(),
            message: all_failed(message),
            detail: detail.clone(),
        },
    };
    let reruns: Vec<Rerun> = test
        .earlier()
        .iter()
        .filter_map(|a| {
            let (kind, message, detail) = a.status.failure()?;
            Some(Rerun {
                error: matches!(a.status, Status::Error { .. }),
                kind: kind.to_string(),
                message: format!("attempt {}: {message}", a.number),
                detail: detail.to_string(),
                output: a.log.clone(),
            })
        })
        .collect();
    // A skipped test can wait for the next write; anything else that cost a cluster or failed
    // reaches the disk at once.
    let flush_now = test.skipped().is_none()
        && (test.on_cluster || !last.status.passed() || !reruns.is_empty());
    CaseRecord {
        name: test.name.clone(),
        component,
        classname,
        duration: test.duration(),
        status,
        output: last.log.clone(),
        attachments: test.attachments(),
        properties: test.properties(),
        flush_now,
        reruns,
    }
}

/// A test's name split into the JUnit grouping: (component, `<component>.<file>`).
fn component_and_class(full_name: &str) -> (String, String) {
    let parts: Vec<&str> = full_name.split("::").collect();
    match parts.as_slice() {
        [only] => ((*only).to_string(), (*only).to_string()),
        [component, _fn] => ((*component).to_string(), (*component).to_string()),
        [component, middle @ .., _fn] => (
            (*component).to_string(),
            format!("{component}.{}", middle.join(".")),
        ),
        [] => (String::new(), String::new()),
    }
}

impl Rerun {
    fn to_junit(&self) -> TestRerun {
        let mut r = TestRerun::new(if self.error {
            NonSuccessKind::Error
        } else {
            NonSuccessKind::Failure
        });
        // No timestamp or time: junit-10.xsd allows neither on these elements.
        r.set_type(self.kind.as_str());
        r.set_message(sanitize::for_report(&self.message, sanitize::MESSAGE_CAP));
        r.set_stack_trace(sanitize::for_report(
            &self.detail,
            sanitize::CASE_OUTPUT_CAP,
        ));
        if !self.output.is_empty() {
            r.set_system_out(sanitize::for_report(
                &self.output,
                sanitize::CASE_OUTPUT_CAP,
            ));
        }
        r
    }
}

/// A case as it goes into the report, rendered once.
struct Rendered {
    name: String,
    duration: Duration,
    properties: Vec<(String, String)>,
    case: TestCase,
}

struct State {
    suites: BTreeMap<String, Vec<Rendered>>,
    run_state: RunState,
    last_write: Option<Instant>,
}

/// The name of the status suite that carries `state` while a run is not finished.
const STATUS_SUITE: &str = "cluster-sim";

/// Writes `junit.xml` for one run.
pub(crate) struct JunitReporter {
    path: PathBuf,
    run_id: String,
    backend: String,
    started: Instant,
    merge: bool,
    /// Attachments are written relative to this directory (the project's), when set.
    project: Option<PathBuf>,
    state: Mutex<State>,
}

/// Writing the report failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the JUnit report {path}: {message}")]
pub(crate) struct ReportError {
    /// The report's path.
    path: String,
    /// Why.
    message: String,
}

impl JunitReporter {
    /// A reporter writing to `path`.
    pub(crate) fn new(path: PathBuf, run_id: &str, backend: &str) -> Self {
        Self {
            path,
            run_id: run_id.to_string(),
            backend: backend.to_string(),
            started: Instant::now(),
            merge: false,
            project: None,
            state: Mutex::new(State {
                suites: BTreeMap::new(),
                run_state: RunState::Running,
                last_write: None,
            }),
        }
    }

    /// Merges with the report on disk when it holds the same run id, under a file lock: under
    /// nextest every test is its own process, and each adds its case to one shared report.
    pub(crate) fn merging(mut self, merge: bool) -> Self {
        self.merge = merge;
        self
    }

    /// Writes attachment paths relative to `project` (`CI_PROJECT_DIR` or the workspace
    /// root), as GitLab and Jenkins resolve them from the job's checkout.
    pub(crate) fn relative_to(mut self, project: PathBuf) -> Self {
        self.project = Some(project);
        self
    }

    /// Where the report goes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces whatever report is on disk with this run's (no cases yet, `state=running`).
    /// Called before any cluster is made, so an unwritable path fails the run at once.
    pub(crate) fn start(&self) -> Result<(), ReportError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.write_locked(&mut st)
    }

    /// Sets the run's state and writes the report.
    pub(crate) fn finish(&self, state: RunState) -> Result<(), ReportError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.run_state = state;
        self.write_locked(&mut st)
    }

    /// Records a finished test and rewrites the report (at once for a test with a cluster,
    /// else at most every 250 ms; the run's end writes the rest). The case is
    /// sanitised and rendered here, once.
    fn record(&self, case: CaseRecord) -> Result<(), ReportError> {
        let rendered = Rendered {
            case: test_case(&case),
            name: case.name,
            duration: case.duration,
            properties: case.properties,
        };
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now_due = case.flush_now || st.last_write.is_none_or(|t| t.elapsed() >= FLUSH_EVERY);
        st.suites.entry(case.component).or_default().push(rendered);
        if now_due {
            self.write_locked(&mut st)?;
        }
        Ok(())
    }

    fn serialize(&self, report: Report) -> Result<String, ReportError> {
        let xml = report.to_string().map_err(|e| ReportError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(fix_root_attributes(&xml))
    }

    fn build(&self, st: &State) -> Report {
        let mut report = Report::new("cluster-sim");
        report.set_time(self.started.elapsed());
        // Under nextest each process adds its own case to a shared report; a per-process
        // state would be meaningless there.
        if st.run_state != RunState::Finished && !self.merge {
            let mut status = TestSuite::new(STATUS_SUITE);
            status.add_property(Property::new("backend", self.backend.as_str()));
            status.add_property(Property::new("run_id", self.run_id.as_str()));
            status.add_property(Property::new("state", st.run_state.as_str()));
            report.add_test_suite(status);
        }
        for (component, cases) in &st.suites {
            let mut suite = TestSuite::new(component.as_str());
            suite.add_property(Property::new("backend", self.backend.as_str()));
            suite.add_property(Property::new("run_id", self.run_id.as_str()));
            let mut time = Duration::ZERO;
            // By name, not by finish order: reports of two runs compare line by line.
            let mut cases: Vec<&Rendered> = cases.iter().collect();
            cases.sort_by(|a, b| a.name.cmp(&b.name));
            for c in cases {
                time += c.duration;
                for (k, v) in &c.properties {
                    suite.add_property(Property::new(format!("{}.{k}", c.name), v.as_str()));
                }
                suite.add_test_case(c.case.clone());
            }
            suite.set_time(time);
            report.add_test_suite(suite);
        }
        report
    }

    fn write_locked(&self, st: &mut State) -> Result<(), ReportError> {
        let err = |e: std::io::Error| ReportError {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut report = self.build(st);
        let _lock = if self.merge {
            let mut lock_path = self.path.clone().into_os_string();
            lock_path.push(".lock");
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(PathBuf::from(lock_path))
                .map_err(err)?;
            fs4::FileExt::lock(&f).map_err(err)?;
            if let Ok(text) = std::fs::read_to_string(&self.path) {
                if let Ok(old) = Report::deserialize_from_str(&text) {
                    merge_into(&mut report, old, &self.run_id);
                }
            }
            Some(f)
        } else {
            None
        };
        let xml = self.serialize(report)?;
        // Write beside the report, then rename: a reader (or a run killed mid-write) sees the
        // old report or the new one, never half of one.
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, xml).map_err(err)?;
        std::fs::rename(&tmp, &self.path).map_err(err)?;
        st.last_write = Some(Instant::now());
        Ok(())
    }
}

impl Reporter for JunitReporter {
    fn on_event(&self, event: &RunEvent<'_>) -> Result<(), String> {
        let r = match event {
            RunEvent::RunStarted => self.start(),
            RunEvent::TestEnded { test } => {
                let mut case = case_of(test);
                if let Some(project) = &self.project {
                    for a in &mut case.attachments {
                        *a = crate::artifacts::relative_to(a, project);
                    }
                }
                self.record(case)
            }
            RunEvent::RunEnded { state, .. } => self.finish(*state),
            _ => Ok(()),
        };
        r.map_err(|e| e.to_string())
    }
}

/// Adds to `report` the cases of `old` (a report of the same run) that it lacks.
fn merge_into(report: &mut Report, old: Report, run_id: &str) {
    for old_suite in old.test_suites {
        let same_run = old_suite
            .properties
            .iter()
            .any(|p| p.name.as_str() == "run_id" && p.value.as_str() == run_id);
        if !same_run {
            continue;
        }
        let idx = match report
            .test_suites
            .iter()
            .position(|s| s.name == old_suite.name)
        {
            Some(i) => i,
            None => {
                let mut s = TestSuite::new(old_suite.name.as_str());
                s.add_property(Property::new("run_id", run_id));
                s.add_properties(
                    old_suite
                        .properties
                        .iter()
                        .filter(|p| p.name.as_str() == "backend")
                        .cloned(),
                );
                report.add_test_suite(s);
                report.test_suites.len() - 1
            }
        };
        let suite = &mut report.test_suites[idx];
        let mut time = suite.time.unwrap_or_default();
        for case in old_suite.test_cases {
            if suite.test_cases.iter().any(|c| c.name == case.name) {
                continue;
            }
            let prefix = format!("{}.", case.name.as_str());
            suite.add_properties(
                old_suite
                    .properties
                    .iter()
                    .filter(|p| p.name.as_str().starts_with(&prefix))
                    .cloned(),
            );
            time += case.time.unwrap_or_default();
            suite.add_test_case(case);
        }
        suite.set_time(time);
    }
    report
        .test_suites
        .sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for s in &report.test_suites {
        tests += s.tests;
        failures += s.failures;
        errors += s.errors;
        skipped += s.skipped;
    }
    report.tests = tests;
    report.failures = failures;
    report.errors = errors;
    report.skipped = skipped;
}

#[cfg(test)]
static RENDERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn test_case(c: &CaseRecord) -> TestCase {
    #[cfg(test)]
    RENDERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let reruns = c.reruns.iter().map(Rerun::to_junit);
    let status = match &c.status {
        CaseStatus::Passed => {
            let mut s = TestCaseStatus::success();
            s.add_reruns(reruns);
            s
        }
        CaseStatus::Skipped { reason } => {
            let mut s = TestCaseStatus::skipped();
            if !reason.is_empty() {
                s.set_message(sanitize::for_report(reason, sanitize::MESSAGE_CAP));
            }
            s
        }
        CaseStatus::Failure {
            kind,
            message,
            detail,
        }
        | CaseStatus::Error {
            kind,
            message,
            detail,
        } => {
            let mut s =
                TestCaseStatus::non_success(if matches!(c.status, CaseStatus::Error { .. }) {
                    NonSuccessKind::Error
                } else {
                    NonSuccessKind::Failure
                });
            s.set_type(kind.as_str());
            s.set_message(sanitize::for_report(message, sanitize::MESSAGE_CAP));
            s.set_description(sanitize::for_report(detail, sanitize::CASE_OUTPUT_CAP));
            s.add_reruns(reruns);
            s
        }
    };
    let mut case = TestCase::new(c.name.as_str(), status);
    case.set_classname(c.classname.as_str());
    case.set_time(c.duration);
    let mut out = sanitize::for_report(&c.output, sanitize::CASE_OUTPUT_CAP);
    for a in &c.attachments {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("[[ATTACHMENT|{}]]\n", a.display()));
    }
    if !out.is_empty() {
        case.set_system_out(out);
    }
    case
}

/// quick-junit always writes `skipped` on `<testsuites>`, which junit-10.xsd (Jenkins' xUnit
/// schema) does not allow there: drop it from the root tag only.
fn fix_root_attributes(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let Some(len) = xml[start..].find('>') else {
        return xml.to_string();
    };
    let tag = &xml[start..start + len];
    let Some(at) = tag.find(" skipped=\"") else {
        return xml.to_string();
    };
    let value_end = tag[at + 10..].find('"').map(|i| at + 10 + i + 1);
    let Some(end) = value_end else {
        return xml.to_string();
    };
    let mut fixed = String::with_capacity(xml.len());
    fixed.push_str(&xml[..start + at]);
    fixed.push_str(&xml[start + end..]);
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_tag_loses_skipped_only() {
        let xml = "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"1\" skipped=\"0\" failures=\"0\"><testsuite skipped=\"0\"/></testsuites>";
        assert_eq!(
            fix_root_attributes(xml),
            "<?xml version=\"1.0\"?>\n<testsuites name=\"x\" tests=\"1\" failures=\"0\"><testsuite skipped=\"0\"/></testsuites>"
        );
    }

    #[test]
    fn cases_carry_status_output_and_attachments() {
        let dir = tempfile::tempdir().unwrap();
        let r = JunitReporter::new(dir.path().join("j.xml"), "RUN", "docker");
        r.record(CaseRecord {
            name: "etcd::election::kill_leader".into(),
            component: "etcd".into(),
            classname: "etcd.election".into(),
            duration: Duration::from_millis(1500),
            status: CaseStatus::Failure {
                kind: "exec".into(),
                message: "node n1: `false` exited 1".into(),
                detail: "\u{1b}[31mboom\u{1b}[0m\u{7}".into(),
            },
            output: "line\n".into(),
            attachments: vec![PathBuf::from("/abs/test.log")],
            properties: vec![("spec".into(), "etcd3".into())],
            flush_now: true,
            reruns: Vec::new(),
        })
        .unwrap();
        let xml = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
        assert!(
            xml.contains(
                "<failure message=\"node n1: `false` exited 1\" type=\"exec\">boom</failure>"
            ),
            "{xml}"
        );
        assert!(xml.contains("[[ATTACHMENT|/abs/test.log]]"), "{xml}");
        assert!(
            xml.contains("name=\"etcd::election::kill_leader.spec\" value=\"etcd3\""),
            "{xml}"
        );
        assert!(
            !xml.contains("<testsuites name=\"cluster-sim\" tests=\"1\" skipped"),
            "{xml}"
        );
    }

    fn case(name: &str, detail: String) -> CaseRecord {
        CaseRecord {
            name: format!("c::f::{name}"),
            component: "c".into(),
            classname: "c.f".into(),
            duration: Duration::from_millis(1),
            status: CaseStatus::Failure {
                kind: "assertion".into(),
                message: "boom".into(),
                detail,
            },
            output: String::new(),
            attachments: Vec::new(),
            properties: Vec::new(),
            flush_now: true,
            reruns: Vec::new(),
        }
    }

    #[test]
    fn retried_tests_are_flaky_or_carry_their_reruns_and_stay_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        let r = JunitReporter::new(path.clone(), "RUN", "docker");
        let rerun = Rerun {
            error: false,
            kind: "exec".into(),
            message: "attempt 1: `false` exited 1".into(),
            detail: "`false` exited 1\n  at f.rs:1".into(),
            output: "the attempt's log\n".into(),
        };
        let mut flaky = case("flaky", String::new());
        flaky.status = CaseStatus::Passed;
        flaky.reruns = vec![rerun.clone()];
        let mut failing = case("failing", "last".into());
        failing.reruns = vec![
            rerun.clone(),
            Rerun {
                error: true,
                kind: "provision".into(),
                ..rerun
            },
        ];
        r.record(flaky).unwrap();
        r.record(failing).unwrap();
        r.finish(RunState::Finished).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(
            xml.contains("<flakyFailure message=\"attempt 1: `false` exited 1\" type=\"exec\">"),
            "{xml}"
        );
        assert!(xml.contains("<stackTrace>`false` exited 1"), "{xml}");
        assert!(xml.contains("<rerunFailure "), "{xml}");
        assert!(xml.contains("<rerunError "), "{xml}");
        // A flaky test passed: it counts as neither failure nor error.
        assert!(
            xml.contains("tests=\"2\" failures=\"1\" errors=\"0\""),
            "{xml}"
        );
        if let Err(e) = junit_schema::validate_file(&path) {
            panic!("{e}\n{xml}");
        }
    }

    #[test]
    fn a_finished_test_becomes_one_case_with_its_earlier_attempts_as_reruns() {
        use crate::outcome::fixtures::{attempt, failed, test};
        use crate::outcome::{AttemptResult, Status};

        let flaky = case_of(&test(
            3,
            vec![
                attempt(1, failed("exec", "boom")),
                attempt(2, Status::Passed),
            ],
        ));
        assert_eq!(
            (flaky.component.as_str(), flaky.classname.as_str()),
            ("c", "c.f")
        );
        assert_eq!(flaky.status, CaseStatus::Passed);
        assert_eq!(flaky.duration, Duration::from_millis(300));
        assert_eq!(flaky.output, "attempt 2's log\n");
        assert_eq!(flaky.attachments.len(), 2);
        assert_eq!(flaky.reruns.len(), 1);
        assert_eq!(flaky.reruns[0].message, "attempt 1: boom");
        assert!(!flaky.reruns[0].error);
        assert_eq!(flaky.reruns[0].output, "attempt 1's log\n");
        assert!(flaky.flush_now);

        let failing = case_of(&test(
            2,
            vec![
                attempt(1, Status::error("provision", "no engine")),
                attempt(2, failed("exec", "boom")),
            ],
        ));
        assert!(
            matches!(&failing.status, CaseStatus::Failure { message, .. } if message == "all 2 attempts failed; last: boom"),
            "{:?}",
            failing.status
        );
        assert!(failing.reruns[0].error);

        let skipped = AttemptResult::skipped("slow".into(), String::new(), Vec::new());
        let skipped = case_of(&TestFinished::once(
            "a::b::c".into(),
            "f.rs:1".into(),
            None,
            skipped,
        ));
        assert_eq!(
            skipped.status,
            CaseStatus::Skipped {
                reason: "slow".into()
            }
        );
        assert!(!skipped.flush_now);
    }

    #[test]
    fn names_group_by_component_and_file() {
        assert_eq!(
            component_and_class("snapshot::basic::save"),
            ("snapshot".to_string(), "snapshot.basic".to_string())
        );
        assert_eq!(
            component_and_class("walks::redis3::cache::w0001[a=b]"),
            ("walks".to_string(), "walks.redis3.cache".to_string())
        );
        assert_eq!(component_and_class("t"), ("t".to_string(), "t".to_string()));
    }

    #[test]
    fn a_run_starts_by_replacing_the_report_with_an_empty_running_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.xml");
        std::fs::write(&path, "<testsuites name=\"old green run\"/>").unwrap();
        let r = JunitReporter::new(path.clone(), "RUN", "docker");
        r.start().unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(!xml.contains("old green run"), "{xml}");
        assert!(xml.contains("tests=\"0\""), "{xml}");
        assert!(
            xml.contains("<property name=\"state\" value=\"running\"/>"),
            "{xml}"
        );
        r.record(case("one", "x".into())).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(xml.contains("state\" value=\"running"), "{xml}");
        assert!(xml.contains("name=\"c::f::one\""), "{xml}");
        r.finish(RunState::Finished).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(!xml.contains("name=\"state\""), "{xml}");
        assert!(!xml.contains("<testsuite name=\"cluster-sim\""), "{xml}");
        assert!(xml.contains("tests=\"1\""), "{xml}");
    }

    #[test]
    fn an_unwritable_report_fails_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let r = JunitReporter::new(dir.path().join("file/j.xml"), "RUN", "docker");
        let e = r.start().unwrap_err();
        assert!(
            e.to_string().starts_with("cannot write the JUnit report "),
            "{e}"
        );
    }

    #[test]
    fn each_case_is_rendered_once_however_often_the_report_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let r = JunitReporter::new(dir.path().join("j.xml"), "RUN", "docker");
        let before = RENDERS.load(std::sync::atomic::Ordering::SeqCst);
        r.record(case("huge", "y".repeat(20 * 1024 * 1024)))
            .unwrap();
        for i in 0..20 {
            r.record(case(&format!("small{i}"), "z".into())).unwrap();
        }
        // Other tests render concurrently; this one's 21 cases account for 21 renders at most
        // of the ones this test caused. 21 records rewrote the file 21 times: a render per
        // rewrite would be 231.
        let renders = RENDERS.load(std::sync::atomic::Ordering::SeqCst) - before;
        assert!(renders < 60, "{renders} renders for 21 cases");
        let xml = std::fs::read_to_string(dir.path().join("j.xml")).unwrap();
        assert!(xml.len() < 1024 * 1024, "{}", xml.len());
        assert!(xml.contains("bytes cut ...]"));
    }
}
