//! What the log checker (`logcheck.rs`) finds and the marks it reads from: plain data, kept
//! apart from the checking so the cluster handle can re-export them without an import cycle.

use std::collections::BTreeMap;

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

impl LogMarks {
    pub(super) fn insert(&mut self, node: String, mark: (usize, usize)) {
        self.at.insert(node, mark);
    }

    pub(super) fn get(&self, node: &str) -> Option<(usize, usize)> {
        self.at.get(node).copied()
    }
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
