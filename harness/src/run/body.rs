//! One test body under its deadline: run as a task of its own with its prints captured, a
//! panic turned into an error, a returned error classified, and a timeout that names the
//! commands still running.

use std::time::Duration;

use cluster_sim_core::Cluster;

use super::ctx::RunCtx;
use super::inject::injected_panic;
use crate::artifacts::TestLog;
use crate::outcome::{classify, one_line, panic_text, Status, TestFuture};
use crate::plan::TestDef;

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
) -> Status {
    let panic_body = ctx.inject.at("body", def);
    // The attempt's own directory (`harness::test_dir()` in the body); the body's task keeps
    // the matrix case for `harness::case()`.
    let dir = test_dir.to_path_buf();
    let fut = crate::plan::scoped(crate::plan::case(), fut);
    let fut = crate::logs::scope(log.clone(), fut);
    let fut = crate::prints::scope(
        log.clone(),
        crate::prints::with_dir(dir, async move {
            if panic_body {
                injected_panic("body");
            }
            fut.await
        }),
    );
    let task = ctx.handle.spawn(fut);
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(()))) => Status::Passed,
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
            Status::Failed {
                kind: kind.into(),
                message: one_line(&e),
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
            Status::error("panic", message)
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
            Status::Failed {
                kind: "timeout".into(),
                message,
                detail,
            }
        }
    }
}
