//! The spec's log checker (`fail_on_log`, `allow_log`), as Jepsen's: after a test body passes,
//! every node's service log is read and any line matching a `fail_on_log` pattern and no
//! `allow_log` pattern fails the test, named by node, line number and text. A cluster that
//! outlives one test (a shared group) is checked from marks taken when the test began.

use std::collections::BTreeMap;

use super::Cluster;
use crate::error::BackendError;

/// How many offending lines an error quotes (the count says how many more there were).
const QUOTED: usize = 10;

/// Where each node's service log ended at some moment, so a later check reads only what
/// came after (see [`Cluster::log_marks`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogMarks {
    /// Per node: bytes and complete lines before the mark.
    at: BTreeMap<String, (usize, usize)>,
}

/// A service log line that `fail_on_log` caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFinding {
    /// The node.
    pub node: String,
    /// One-based line number in the node's service log.
    pub line_number: usize,
    /// The line.
    pub line: String,
}

/// Why [`Cluster::check_logs`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LogCheckError {
    /// Lines matched `fail_on_log` (and no `allow_log`).
    #[error("fail_on_log: {}", findings_text(.findings))]
    Matched {
        /// Every offending line, node by node in spec order.
        findings: Vec<LogFinding>,
    },
    /// A node's log could not be read.
    #[error("fail_on_log: node {node}: reading the service log: {source}")]
    Read {
        /// The node.
        node: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
}

fn findings_text(findings: &[LogFinding]) -> String {
    let mut s = findings
        .iter()
        .take(QUOTED)
        .map(|f| format!("node {} line {}: {}", f.node, f.line_number, f.line))
        .collect::<Vec<_>>()
        .join("; ");
    if findings.len() > QUOTED {
        s.push_str(&format!("; and {} more", findings.len() - QUOTED));
    }
    s
}

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
                marks.at.insert(n.name.clone(), (complete, lines));
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
            let (mut from, mut skipped) = marks.at.get(&node).copied().unwrap_or((0, 0));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_node_line_and_text_and_counts_the_rest() {
        let findings: Vec<LogFinding> = (1..=12)
            .map(|i| LogFinding {
                node: "n2".into(),
                line_number: i,
                line: format!("thread 'main' panicked at src/x.rs:{i}"),
            })
            .collect();
        let e = LogCheckError::Matched { findings }.to_string();
        assert!(
            e.starts_with("fail_on_log: node n2 line 1: thread 'main' panicked at src/x.rs:1; "),
            "{e}"
        );
        assert!(e.ends_with("; and 2 more"), "{e}");
    }
}
