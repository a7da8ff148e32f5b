//! Ctrl-C and SIGTERM: stop every trial, remove every cluster of the run by name (those still
//! provisioning and those mid-teardown included), report every test that started, leave a
//! valid report and exit 130. A second signal exits at once (the next run's reaper cleans up).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::def::component_and_class;
use crate::junit::{CaseRecord, CaseStatus, RunState};
use crate::runner::{report, RunCtx, Running};
use crate::trial::TEARDOWN_LIMIT;

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

    let names: Vec<String> = ctx
        .clusters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .keys()
        .cloned()
        .collect();
    eprintln!(
        "\ninterrupted: tearing down {} cluster(s), then writing {}",
        names.len(),
        ctx.reporter.path().display()
    );
    if let Some(backend) = ctx.backend.get() {
        // Until a pass succeeds for every cluster, and at least twice: a create the engine was
        // still serving when its trial stopped lands after the first pass listed the cluster,
        // and a stopped trial's own safety net may be removing the same cluster concurrently.
        let mut left = names.clone();
        let mut pause = Duration::from_millis(100);
        for pass in 0..5 {
            let downs = left
                .iter()
                .map(|n| tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(n)));
            let results = futures::future::join_all(downs).await;
            let mut failed = Vec::new();
            for (n, r) in left.iter().zip(results) {
                match r {
                    Ok(Ok(())) if pass == 0 => failed.push((n.clone(), None)),
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failed.push((n.clone(), Some(e.to_string()))),
                    Err(_) => failed.push((n.clone(), Some("took over 2 minutes".into()))),
                }
            }
            if failed.is_empty() {
                break;
            }
            if pass == 4 {
                for (n, e) in failed
                    .iter()
                    .filter_map(|(n, e)| e.as_ref().map(|e| (n, e)))
                {
                    eprintln!("warning: teardown of {n}: {e}");
                }
                break;
            }
            left = failed.into_iter().map(|(n, _)| n).collect();
            if pass > 0 {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }

    for (name, r) in running {
        let (component, classname) = component_and_class(&name);
        let message = format!(
            "interrupted after {:.1}s; rerun: {} {name} --exact",
            r.started.elapsed().as_secs_f64(),
            ctx.rerun_prefix
        );
        r.log.note("interrupted", &message);
        let log_path = r.test_dir.join("test.log");
        let attachments = match r.log.persist(&log_path) {
            Ok(()) => vec![std::path::absolute(&log_path).unwrap_or(log_path)],
            Err(_) => Vec::new(),
        };
        report(
            &ctx,
            CaseRecord {
                name,
                component,
                classname,
                duration: r.started.elapsed(),
                status: CaseStatus::Error {
                    kind: "interrupted".into(),
                    message: message.clone(),
                    detail: message,
                },
                output: r.log.text(),
                attachments,
                properties: Vec::new(),
                flush_now: false,
            },
        );
    }
    if let Err(e) = ctx.reporter.finish(RunState::Interrupted) {
        eprintln!("error: {e}");
    }
    std::process::exit(130);
}
