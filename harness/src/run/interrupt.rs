//! Ctrl-C and SIGTERM: stop every trial, undo what a test did to a live cluster it ran on
//! (`CLUSTER_SIM_CLUSTER`), remove every cluster of the run by name (those still
//! provisioning and those mid-teardown included), report every test that started, leave a
//! valid report and exit 130. A second signal exits at once (the next run's reaper cleans up).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::clusters::attached::restore;
use super::clusters::provision::{destroy_all, TEARDOWN_LIMIT};
use super::ctx::{RunCtx, Running};
use crate::artifacts::TestLog;
use crate::outcome::{AttemptResult, Status, TestFinished};
use crate::report::{RunEvent, RunState};

/// How long the handler waits for the trials' tasks to stop after aborting them.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// The run's Ctrl-C and SIGTERM, registered before the first trial starts (a signal that
/// arrived before registration would kill the process with its clusters alive).
pub(crate) struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers; needs the runtime entered.
    pub(crate) fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => {}
                _ = self.term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub(crate) async fn on_interrupt(ctx: Arc<RunCtx>, mut signals: Signals) {
    signals.recv().await;
    ctx.interrupted.store(true, Ordering::SeqCst);
    tokio::spawn(async move {
        signals.recv().await;
        eprintln!("interrupted again: exiting without teardown");
        std::process::exit(130);
    });
    // From here no trial starts, registers a cluster or is reported: the process exits with
    // this guard held.
    let _gate = ctx.gate.write().await;

    let running: Vec<(String, Running)> = ctx
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    // Stop the trials first, and wait until their futures are gone: a cluster still being
    // provisioned would otherwise gain a container after its teardown.
    for (_, r) in &running {
        r.task.abort();
    }
    let stopped = futures::future::join_all(running.iter().map(|(_, r)| r.ended.notified()));
    let _ = tokio::time::timeout(STOP_LIMIT, stopped).await;

    // A test on a live cluster (CLUSTER_SIM_CLUSTER) stopped mid-way: the cluster stays, and
    // what the test did to it (faults, stopped or frozen nodes) is undone, as after any test.
    let attached = ctx
        .attached_now
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    if let Some(cluster) = attached {
        eprintln!(
            "\ninterrupted: undoing what the test did to {} (CLUSTER_SIM_CLUSTER; it stays up)",
            cluster.name()
        );
        let log = TestLog::new();
        if tokio::time::timeout(TEARDOWN_LIMIT, restore(&cluster, &log))
            .await
            .is_err()
        {
            eprintln!(
                "warning: undoing the faults on {} timed out",
                cluster.name()
            );
        }
    }

    // Clusters without a handle were still being provisioned when their trial stopped.
    let (names, provisioning): (Vec<String>, Vec<String>) = {
        let clusters = ctx.clusters.lock().unwrap_or_else(|e| e.into_inner());
        (
            clusters.keys().cloned().collect(),
            clusters
                .iter()
                .filter(|(_, c)| c.handle.is_none())
                .map(|(n, _)| n.clone())
                .collect(),
        )
    };
    eprintln!(
        "\ninterrupted: tearing down {} cluster(s), then writing {}",
        names.len(),
        ctx.settings.junit.display()
    );
    if let Some(backend) = ctx.backend.get() {
        let mut failed = destroy_all(backend.as_ref(), &names).await;
        // A request the engine was serving when its trial stopped (a network or container
        // create) still completes after the trial's future is gone, and may land after the
        // pass above: sweep the clusters that were mid-provision again once it has had time to.
        for settle in [Duration::from_millis(300), Duration::from_millis(900)] {
            if provisioning.is_empty() {
                break;
            }
            tokio::time::sleep(settle).await;
            failed = destroy_all(backend.as_ref(), &names).await;
        }
        for (n, e) in failed {
            eprintln!("warning: teardown of {n}: {e}");
        }
    }

    for (name, r) in running {
        let duration = r.started.elapsed();
        let message = format!(
            "interrupted after {:.1}s; rerun: {}",
            duration.as_secs_f64(),
            ctx.rerun_command(&name)
        );
        r.log.note("interrupted", &message);
        let log_path = r.test_dir.join("test.log");
        let attachments = match r.log.persist(&log_path) {
            Ok(()) => vec![std::path::absolute(&log_path).unwrap_or(log_path)],
            Err(_) => Vec::new(),
        };
        let rerun = Some(ctx.rerun_command(&name));
        let attempt = AttemptResult {
            number: r.number,
            status: Status::error("interrupted", message),
            started: std::time::SystemTime::now() - duration,
            duration,
            log: r.log.text(),
            events: r.log.events(),
            attachments,
            properties: Vec::new(),
            seeds: Vec::new(),
            dir: None,
        };
        ctx.report(&TestFinished::once(name, r.location, rerun, attempt));
    }
    ctx.reporters.emit(&RunEvent::RunEnded {
        state: RunState::Interrupted,
        reported_any: true,
        artifacts: None,
    });
    std::process::exit(130);
}
