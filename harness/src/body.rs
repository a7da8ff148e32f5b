//! One test body under its deadline: run as a task of its own with its prints captured, a
//! panic turned into an error, a returned error classified, and a timeout that names the
//! commands still running.

use std::time::Duration;

use cluster_sim_core::{Cluster, ExecError, ProvisionError};

use crate::artifacts::TestLog;
use crate::def::{TestDef, TestFuture};
use crate::inject::injected_panic;
use crate::runner::RunCtx;
use crate::wait::WaitError;

/// How one test ended, before it is written up.
pub(crate) enum Outcome {
    Passed,
    Failure {
        kind: &'static str,
        message: String,
        detail: String,
    },
    Error {
        kind: &'static str,
        message: String,
    },
}

impl Outcome {
    pub(crate) fn passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }
}

pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}

/// What was still running on the cluster, one `node: `command` (for 1.2s)` per command.
fn still_running(cluster: &Cluster) -> Vec<String> {
    cluster
        .in_flight()
        .into_iter()
        .map(|c| {
            format!(
                "{}: `{}` (for {:.1}s)",
                c.node,
                c.command,
                c.started.elapsed().as_secs_f64()
            )
        })
        .collect()
}

/// Runs a test body as a task under its deadline, its prints captured into its log. A panic is
/// an error, an error returned a failure; at the deadline the task is aborted (dropping the
/// test's future and whatever it held) and the failure names the commands still running.
pub(crate) async fn run_body(
    ctx: &RunCtx,
    def: &'static TestDef,
    fut: TestFuture,
    timeout: Duration,
    log: &TestLog,
    cluster: Option<&Cluster>,
    test_dir: &std::path::Path,
) -> Outcome {
    let panic_body = ctx.inject.at("body", def);
    // The attempt's own directory (`harness::test_dir()` in the body); the body's task keeps
    // the matrix case for `harness::case()`.
    let dir = test_dir.to_path_buf();
    let fut = crate::plan::scoped(crate::plan::case(), fut);
    let fut = crate::capture::scope(
        log.clone(),
        crate::capture::with_dir(dir, async move {
            if panic_body {
                injected_panic("body");
            }
            fut.await
        }),
    );
    let task = ctx.handle.spawn(fut);
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(()))) => Outcome::Passed,
        Ok(Ok(Err(e))) => {
            let kind = classify(&e);
            // The chain, one cause a line; `{:?}` would add a backtrace when RUST_BACKTRACE is set.
            let detail = e
                .chain()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        c.to_string()
                    } else {
                        format!("caused by: {c}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            Outcome::Failure {
                kind,
                message: format!("{e:#}"),
                detail,
            }
        }
        Ok(Err(join)) => {
            let message = if join.is_panic() {
                format!("panicked: {}", panic_text(join.into_panic().as_ref()))
            } else {
                "the test's task was cancelled".to_string()
            };
            log.note("panic", &message);
            Outcome::Error {
                kind: "panic",
                message,
            }
        }
        Err(_) => {
            // Read what was running before the abort drops it.
            let running = cluster.map(still_running).unwrap_or_default();
            abort.abort();
            let mut message = format!(
                "timed out after {} (the test's deadline; set `timeout` on #[cluster_test] or in the spec)",
                humantime::format_duration(timeout)
            );
            let mut detail = message.clone();
            if cluster.is_some() && running.is_empty() {
                message.push_str("; no command was running");
            } else if !running.is_empty() {
                message.push_str(&format!("; still running: {}", running.join(", ")));
                detail.push_str("\nstill running:");
                for r in &running {
                    detail.push_str(&format!("\n  {r}"));
                }
            }
            log.note("timeout", &message);
            Outcome::Failure {
                kind: "timeout",
                message,
                detail,
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
