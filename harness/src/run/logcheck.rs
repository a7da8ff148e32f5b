//! The spec's log checker after a test body: a body that passed fails when a node's service
//! log holds a line `fail_on_log` catches (and `allow_log` does not exempt), naming node, line
//! number and line. It runs on the test's cluster after the body and before teardown.

use cluster_sim_core::cluster::{LogCheckError, LogMarks};
use cluster_sim_core::Cluster;

use crate::artifacts::TestLog;
use crate::outcome::Status;

/// `outcome` unless it passed and the logs written since `since` fail the spec's log rules.
pub(crate) async fn judge_logs(
    cluster: &Cluster,
    since: &LogMarks,
    outcome: Status,
    log: &TestLog,
) -> Status {
    if !outcome.passed() || cluster.spec().log_rules.is_empty() {
        return outcome;
    }
    match cluster.check_logs_since(since).await {
        Ok(()) => outcome,
        Err(e) => {
            let message = e.to_string();
            log.note("log-check", &message);
            let detail = match &e {
                LogCheckError::Matched { findings } => {
                    let mut d = String::from("service log lines matched fail_on_log:");
                    for f in findings {
                        d.push_str(&format!(
                            "\n  {} line {}: {}",
                            f.node, f.line_number, f.line
                        ));
                    }
                    d
                }
                LogCheckError::Read { .. } => message.clone(),
            };
            Status::Failed {
                kind: "log".into(),
                message,
                detail,
            }
        }
    }
}
