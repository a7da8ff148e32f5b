//! How a test ends, as the runner records it: what its body returns ([`TestResult`]), how each
//! attempt ended ([`AttemptResult`]) and the test's one record ([`TestFinished`]), whether it ran
//! (once or with retries), was skipped, or was cut short by a signal. The runner owns these;
//! each reporter translates a `TestFinished` into its own shape privately (JUnit's cases, the
//! HTML report's records), as nextest's JUnit aggregator translates its runner's statuses.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use cluster_sim_core::{ExecError, ProvisionError};
use cluster_sim_report::EventRecord;

use crate::wait::WaitError;

/// What a test returns: `?` works on every cluster-sim error, on `std` errors and on `anyhow`.
pub type TestResult = Result<(), anyhow::Error>;

/// A test's body, boxed so tests of every shape fit one registry.
pub type TestFuture = Pin<Box<dyn Future<Output = TestResult> + Send + 'static>>;

/// How one attempt at a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// It passed.
    Passed,
    /// An assertion, a failed command or a timeout.
    Failed {
        /// What failed: `assertion`, `exec`, `wait`, `timeout`...
        kind: String,
        /// One line.
        message: String,
        /// The whole text (the error chain, where the test is, its artifacts, how to rerun it).
        detail: String,
    },
    /// The harness could not give the test its cluster, something panicked, the teardown
    /// failed, or a signal cut the run short.
    Error {
        /// What went wrong: `provision`, `panic`, `teardown`, `interrupted`.
        kind: String,
        /// One line.
        message: String,
        /// The whole text.
        detail: String,
    },
    /// The test did not run (ignored, or a kernel feature it needs is missing).
    Skipped {
        /// Why (may be empty).
        reason: String,
    },
}

impl Status {
    /// An error whose whole text is its one line.
    pub(crate) fn error(kind: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Status::Error {
            kind: kind.into(),
            detail: message.clone(),
            message,
        }
    }

    /// Whether the attempt passed.
    pub(crate) fn passed(&self) -> bool {
        matches!(self, Status::Passed)
    }

    /// `(kind, message, detail)` of a failure or an error.
    pub(crate) fn failure(&self) -> Option<(&str, &str, &str)> {
        match self {
            Status::Failed {
                kind,
                message,
                detail,
            }
            | Status::Error {
                kind,
                message,
                detail,
            } => Some((kind, message, detail)),
            Status::Passed | Status::Skipped { .. } => None,
        }
    }
}

/// One attempt at a test, as it ended.
#[derive(Debug, Clone)]
pub(crate) struct AttemptResult {
    /// 1 for the first attempt.
    pub(crate) number: u32,
    /// How it ended.
    pub(crate) status: Status,
    /// When it started (for a walk: its own running time back from its end).
    pub(crate) started: SystemTime,
    /// How long it ran (a walk's excludes its waits at barriers).
    pub(crate) duration: Duration,
    /// Its `test.log` text.
    pub(crate) log: String,
    /// The same log, structured.
    pub(crate) events: Vec<EventRecord>,
    /// The files it kept, to attach to the report.
    pub(crate) attachments: Vec<PathBuf>,
    /// What the report says about it: `spec`, `nodes`, `image`, `param.*`, `walk.*`.
    pub(crate) properties: Vec<(String, String)>,
    /// The seeds of the nemeses it started, in order.
    pub(crate) seeds: Vec<u64>,
    /// Its artifact directory relative to the run's, when kept.
    pub(crate) dir: Option<String>,
}

impl AttemptResult {
    /// The one attempt of a test that did not run: why, its log, the files that keep it.
    pub(crate) fn skipped(reason: String, log: String, attachments: Vec<PathBuf>) -> Self {
        Self {
            number: 1,
            status: Status::Skipped { reason },
            started: SystemTime::now(),
            duration: Duration::ZERO,
            log,
            events: Vec::new(),
            attachments,
            properties: Vec::new(),
            seeds: Vec::new(),
            dir: None,
        }
    }
}

/// How a test ended: every attempt it had, or the one that says it was skipped or interrupted.
#[derive(Debug, Clone)]
pub(crate) struct TestFinished {
    /// The full name (`<component>::<file>::<fn>`, with a matrix or walk suffix).
    pub(crate) name: String,
    /// `file:line` of the test.
    pub(crate) location: String,
    /// The command that reruns it alone, when it ran.
    pub(crate) rerun: Option<String>,
    /// Whether it runs on a cluster.
    pub(crate) on_cluster: bool,
    /// How many attempts it was allowed.
    pub(crate) tries: u32,
    /// Its attempts, first first; never empty.
    pub(crate) attempts: Vec<AttemptResult>,
}

impl TestFinished {
    /// A test with its one attempt.
    pub(crate) fn once(
        name: String,
        location: String,
        rerun: Option<String>,
        attempt: AttemptResult,
    ) -> Self {
        Self {
            name,
            location,
            rerun,
            on_cluster: false,
            tries: 1,
            attempts: vec![attempt],
        }
    }

    /// The attempt that decided the result.
    pub(crate) fn last(&self) -> &AttemptResult {
        self.attempts
            .last()
            .expect("a finished test has at least one attempt")
    }

    /// The attempts before the last: each one failed.
    pub(crate) fn earlier(&self) -> &[AttemptResult] {
        &self.attempts[..self.attempts.len().saturating_sub(1)]
    }

    /// Failed, then passed on a retry.
    pub(crate) fn is_flaky(&self) -> bool {
        self.attempts.len() > 1 && self.last().status.passed()
    }

    /// Why it was skipped, if it was.
    pub(crate) fn skipped(&self) -> Option<&str> {
        match &self.last().status {
            Status::Skipped { reason } => Some(reason),
            _ => None,
        }
    }

    /// Its time: every attempt's own.
    pub(crate) fn duration(&self) -> Duration {
        self.attempts.iter().map(|a| a.duration).sum()
    }

    /// Every attempt's attachments: the last attempt's `test.log` first (the one link GitLab
    /// shows for a failed case is to the log of the attempt that decided it), then every
    /// attempt's, first attempt first.
    pub(crate) fn attachments(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self
            .attempts
            .iter()
            .flat_map(|a| a.attachments.iter().cloned())
            .collect();
        let last_log = self
            .last()
            .attachments
            .first()
            .filter(|p| p.file_name().is_some_and(|n| n == "test.log"))
            .cloned();
        if let Some(log) = last_log {
            all.retain(|p| *p != log);
            all.insert(0, log);
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|p| seen.insert(p.clone()));
        all
    }

    /// The last attempt's properties, and its nemesis seeds as `seed`.
    pub(crate) fn properties(&self) -> Vec<(String, String)> {
        let last = self.last();
        let mut props = last.properties.clone();
        if !last.seeds.is_empty() {
            let list: Vec<String> = last.seeds.iter().map(u64::to_string).collect();
            props.push(("seed".into(), list.join(",")));
        }
        props
    }

    /// What libtest prints for a test that failed: the last attempt's text, and that every
    /// attempt failed when there were retries. `None` when it passed or was skipped.
    pub(crate) fn failure_text(&self) -> Option<String> {
        let (_, _, detail) = self.last().status.failure()?;
        let mut text = detail.to_string();
        if self.tries > 1 {
            text.push_str(&format!("\n  all {} attempts failed", self.tries));
        }
        Some(text)
    }
}

/// A panic's message, from its payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}

/// A failure's message: the error and its causes on one line, each once
/// ([`cluster_sim_core::error::one_line`]).
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    cluster_sim_core::error::one_line(e.as_ref())
}

/// The `type` of a failure, from the error's chain.
pub(crate) fn classify(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if cause.is::<ExecError>() {
            return "exec";
        }
        if cause.is::<WaitError>() {
            return "wait";
        }
        if cause.is::<ProvisionError>() || cause.is::<cluster_sim_core::NodeError>() {
            return "node";
        }
        if cause.is::<cluster_sim_core::TransferError>() {
            return "transfer";
        }
    }
    "assertion"
}

/// Records for the reporters' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// Attempt `number` with `status`, a one-line log and one attachment named after it.
    pub(crate) fn attempt(number: u32, status: Status) -> AttemptResult {
        AttemptResult {
            number,
            status,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
            duration: Duration::from_millis(100 * u64::from(number)),
            log: format!("attempt {number}'s log\n"),
            events: Vec::new(),
            attachments: vec![PathBuf::from(format!("/runs/t/attempt-{number}/test.log"))],
            properties: vec![("spec".into(), "etcd3".into())],
            seeds: Vec::new(),
            dir: Some(format!("t/attempt-{number}")),
        }
    }

    /// A failure of `kind`.
    pub(crate) fn failed(kind: &str, message: &str) -> Status {
        Status::Failed {
            kind: kind.into(),
            message: message.into(),
            detail: format!("{message}\n  at f.rs:1"),
        }
    }

    /// Test `c::f::t` on a cluster, allowed `tries`, with `attempts`.
    pub(crate) fn test(tries: u32, attempts: Vec<AttemptResult>) -> TestFinished {
        TestFinished {
            name: "c::f::t".into(),
            location: "f.rs:1".into(),
            rerun: Some("cargo test --test tests_d -- c::f::t --exact".into()),
            on_cluster: true,
            tries,
            attempts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{attempt, failed, test};
    use super::*;

    #[test]
    fn one_line_skips_a_cause_the_message_already_quotes() {
        #[derive(Debug, thiserror::Error)]
        #[error("node n1: `true`: {source}")]
        struct Outer {
            #[source]
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Outer {
            source: std::io::Error::other("refused"),
        })
        .context("step 2");
        assert_eq!(one_line(&e), "step 2: node n1: `true`: refused");
        assert_eq!(
            format!("{e:#}"),
            "step 2: node n1: `true`: refused: refused"
        );
    }

    #[test]
    fn a_test_is_its_attempts_combined() {
        let mut last = attempt(2, Status::Passed);
        last.seeds = vec![7, 9];
        let flaky = test(3, vec![attempt(1, failed("exec", "boom")), last]);
        assert!(flaky.is_flaky());
        assert_eq!(flaky.duration(), Duration::from_millis(300));
        assert_eq!(flaky.earlier().len(), 1);
        assert_eq!(
            flaky.attachments(),
            [
                PathBuf::from("/runs/t/attempt-2/test.log"),
                PathBuf::from("/runs/t/attempt-1/test.log"),
            ]
        );
        assert_eq!(
            flaky.properties(),
            [
                ("spec".into(), "etcd3".into()),
                ("seed".into(), "7,9".into())
            ]
        );
        assert_eq!(flaky.failure_text(), None);

        let failing = test(
            2,
            vec![
                attempt(1, failed("exec", "a")),
                attempt(2, failed("exec", "b")),
            ],
        );
        assert!(!failing.is_flaky());
        assert_eq!(
            failing.failure_text().unwrap(),
            "b\n  at f.rs:1\n  all 2 attempts failed"
        );
        let skipped = AttemptResult::skipped("slow".into(), String::new(), Vec::new());
        let skipped = TestFinished::once("c::f::s".into(), "f.rs:2".into(), None, skipped);
        assert_eq!(skipped.skipped(), Some("slow"));
        assert_eq!(skipped.failure_text(), None);
    }

    #[test]
    fn errors_are_classified_by_their_chain() {
        let e = anyhow::Error::new(ExecError::Failed {
            node: "n1".into(),
            command: "false".into(),
            code: 1,
            tail: String::new(),
        })
        .context("writing keys");
        assert_eq!(classify(&e), "exec");
        assert_eq!(classify(&anyhow::anyhow!("keys differ")), "assertion");
    }
}
