//! The spec's log checker (`fail_on_log`, `allow_log`), as Jepsen's: after a test body passes,
//! every node's service log is read and any line matching a `fail_on_log` pattern and no
//! `allow_log` pattern fails the test, named by node, line number and text. A cluster that
//! outlives one test (a shared group) is checked from marks taken when the test began.

use super::handle::Cluster;
use super::logfindings::{LogCheckError, LogFinding, LogMarks};

impl Cluster {
    /// Marks where every node's service log ends now (for a check of what follows).
    pub async fn log_marks(&self) -> LogMarks {
        let mut marks = LogMarks::default();
        if self.inner.spec.log_rules.is_empty() {
            return marks;
        }
        for n in self.nodes() {
            if let Ok(log) = n.logs().await {
                let complete = log.rfind('\n').map_or(0, |i| i + 1);
                let lines = log[..complete].lines().count();
                marks.insert(n.name.clone(), (complete, lines));
            }
        }
        marks
    }

    /// Checks every node's whole service log against the spec's `fail_on_log` and `allow_log`
    /// (nothing to do when the spec sets none).
    pub async fn check_logs(&self) -> Result<(), LogCheckError> {
        self.check_logs_since(&LogMarks::default()).await
    }

    /// [`Cluster::check_logs`] over what each node logged after `marks`.
    pub async fn check_logs_since(&self, marks: &LogMarks) -> Result<(), LogCheckError> {
        let rules = &self.inner.spec.log_rules;
        if rules.is_empty() {
            return Ok(());
        }
        let reads = self.nodes().into_iter().map(|n| async move {
            let log = n.logs().await.map_err(|source| LogCheckError::Read {
                node: n.name.clone(),
                source,
            })?;
            Ok::<_, LogCheckError>((n.name.clone(), log))
        });
        let mut findings = Vec::new();
        for r in futures::future::join_all(reads).await {
            let (node, log) = r?;
            let (mut from, mut skipped) = marks.get(&node).unwrap_or((0, 0));
            // A log shorter than its mark was replaced: check it whole.
            if log.len() < from || !log.is_char_boundary(from) {
                (from, skipped) = (0, 0);
            }
            for (i, line) in log[from..].lines().enumerate() {
                if rules.fails(line) {
                    findings.push(LogFinding {
                        node: node.clone(),
                        line_number: skipped + i + 1,
                        line: line.to_string(),
                    });
                }
            }
        }
        if findings.is_empty() {
            Ok(())
        } else {
            Err(LogCheckError::Matched { findings })
        }
    }
}
