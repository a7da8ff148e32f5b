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

pub(crate) async fn on_interrupt(ctx: Arc<RunCtx>) {
    wait_for_signal().await;
    ctx.interrupted.store(true, Ordering::SeqCst);
    tokio::spawn(async {
        wait_for_signal().await;
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
        // Twice: a create the engine was still serving when its trial stopped lands after
        // the first pass has listed the cluster; the second finds it (and is quick otherwise).
        for pass in 0..2 {
            let downs = names
                .iter()
                .map(|n| tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(n)));
            let results = futures::future::join_all(downs).await;
            if pass == 1 {
                for (n, r) in names.iter().zip(results) {
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => eprintln!("warning: teardown of {n}: {e}"),
                        Err(_) => eprintln!("warning: teardown of {n} took over 2 minutes"),
                    }
                }
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

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
