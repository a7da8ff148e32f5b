//! A fresh cluster for one attempt: the node budget, the cluster provisioned under its limit
//! with the attempt's events in its log, the body under its deadline, node logs collected when
//! it failed (or as `CLUSTER_SIM_KEEP` says), and the teardown, whose failure fails a test that
//! passed, or the cluster kept as `CLUSTER_SIM_KEEP_CLUSTER` says.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use cluster_sim_core::{Cluster, ClusterSpec, EventKind, EventSink};

use super::provision::{cluster_name, COLLECT_LIMIT, LEASE_GRACE, PROVISION_LIMIT, TEARDOWN_LIMIT};
use crate::artifacts::TestLog;
use crate::config::Keep;
use crate::outcome::{Status, TestFuture};
use crate::plan::Case;
use crate::run::body::run_body;
use crate::run::ctx::{AttemptState, RunCtx};
use crate::run::inject::injected_panic;

/// Runs `body` of `case` on a cluster of its own made from `spec`.
pub(crate) async fn with_cluster(
    ctx: &Arc<RunCtx>,
    case: &Case,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
    state: &Arc<AttemptState>,
) -> Status {
    let def = case.def;
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
    state.set_phase("connecting to the backend");
    let backend = match super::provision::backend(ctx).await {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    state.set_phase("waiting for the node budget");
    let permits = match super::provision::permits(ctx, spec.nodes.len(), log).await {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst);
    let cluster_name = cluster_name(&spec.name, def.name, seq);
    let timeout = def
        .timeout()
        .or(spec.timeout)
        .unwrap_or(ctx.settings.timeout);

    let sink_log = log.clone();
    let sink_state = state.clone();
    let panic_provision = ctx.inject.at("provision", def);
    let panic_ready = ctx.inject.at("ready", def);
    let sink: EventSink = Arc::new(move |e| {
        sink_log.event(e);
        if let EventKind::Nemesis { seed } = e.kind {
            sink_state.seed(seed);
        }
        match e.kind {
            EventKind::Provision if e.message == "nodes started" => {
                if panic_provision {
                    injected_panic("provision");
                }
                sink_state.set_phase("waiting for the nodes to be ready");
            }
            EventKind::Ready if panic_ready => injected_panic("ready"),
            _ => {}
        }
    });
    state.set_phase("provisioning");
    let request = super::provision::Request {
        name: &cluster_name,
        owner: case.name.clone(),
        lease: PROVISION_LIMIT + timeout + COLLECT_LIMIT + TEARDOWN_LIMIT + LEASE_GRACE,
        sink,
        test_dir,
    };
    let cluster = match super::provision::up(ctx, &backend, spec, request).await {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    log.note(
        "test",
        &format!(
            "cluster {cluster_name} is up; running the test (deadline {})",
            humantime::format_duration(timeout)
        ),
    );

    state.set_phase("running the test");
    let since = cluster.log_marks().await;
    let outcome = run_body(
        ctx,
        def,
        body(cluster.clone()),
        timeout,
        log,
        Some(&cluster),
        test_dir,
    )
    .await;
    state.set_phase("checking the service logs");
    let mut outcome = crate::run::logcheck::judge_logs(&cluster, &since, outcome, log).await;

    if !outcome.passed() || ctx.settings.keep == Keep::Always {
        state.set_phase("collecting node logs");
        log.note("collect", "collecting node logs");
        super::provision::collect(&cluster, test_dir, log).await;
    }
    state.set_phase("tearing down");
    if ctx.inject.at("teardown", def) {
        injected_panic("teardown");
    }
    let passed = outcome.passed();
    match super::keep::keep_or_down(ctx, &cluster, &cluster_name, &case.name, passed, Some(log))
        .await
    {
        Ok(None) => {}
        Ok(Some(advice)) => super::keep::tell(&mut outcome, &case.name, &advice),
        // A test that passed but left its cluster behind fails: the next one may not fit.
        Err(e) if passed => outcome = Status::error("teardown", e),
        Err(_) => {}
    }
    // Kept or not, the cluster's share of the node budget goes back, as after a teardown.
    drop(permits);
    outcome
}
