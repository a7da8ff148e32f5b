//! Getting a test its cluster, the same way for a fresh cluster (`trial.rs`) and a group's
//! shared one (`shared.rs`): the run's one backend, the node budget, the name registered with
//! the run before anything exists under it, `up` under its limit, and a failed `up` confirmed
//! gone by name before the name is let go.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cluster_sim_core::{Backend, Cluster, ClusterSpec, EventSink};

use crate::artifacts::TestLog;
use crate::body::Outcome;
use crate::budget::NodePermit;
use crate::config::BackendKind;
use crate::runner::{OwnedCluster, RunCtx};
use crate::trial::{COLLECT_LIMIT, PROVISION_LIMIT, TEARDOWN_LIMIT};

fn provision_error(message: String) -> Outcome {
    Outcome::Error {
        kind: "provision",
        message,
    }
}

/// The run's backend, connected by the first test that needs a cluster (so `--list` and
/// cluster-free runs never touch Docker or SSH).
pub(crate) async fn backend(ctx: &RunCtx) -> Result<Arc<dyn Backend>, Outcome> {
    ctx.backend
        .get_or_try_init(|| {
            cluster_sim_core::connect_backend(
                ctx.settings.backend.as_str(),
                ctx.settings.inventory.as_deref(),
            )
        })
        .await
        .map(Arc::clone)
        .map_err(|e| provision_error(format!("{} backend: {e}", ctx.settings.backend.as_str())))
}

/// Node permits for a cluster of `nodes`, waiting (with a note in the log) when the budget is
/// spent. Inventory hosts are shared by every cluster of the run (same ports, same hosts): on
/// ssh, a cluster takes the whole budget, one at a time.
pub(crate) async fn permits(
    ctx: &RunCtx,
    nodes: usize,
    log: &TestLog,
) -> Result<NodePermit, Outcome> {
    let budget = ctx.budget.total();
    let need = if ctx.settings.backend == BackendKind::Ssh {
        budget
    } else {
        nodes.clamp(1, budget)
    };
    let failed = |e: std::io::Error| provision_error(format!("the node budget: {e}"));
    if let Some(p) = ctx.budget.try_acquire(need).map_err(failed)? {
        return Ok(p);
    }
    log.note(
        "budget",
        &format!(
            "waiting for {need} of {budget} nodes (CLUSTER_SIM_NODE_BUDGET, shared by this \
             run's processes) to free up"
        ),
    );
    ctx.budget.acquire(need).await.map_err(failed)
}

/// What [`up`] needs besides the spec.
pub(crate) struct Request<'a> {
    /// The cluster's name (registered with the run before `up`).
    pub(crate) name: &'a str,
    /// Who owns it in the run's registry (a test, or `share:<group>`).
    pub(crate) owner: String,
    /// How long a reaper that can't see this run must leave the cluster alone.
    pub(crate) lease: Duration,
    /// Where the cluster's events go.
    pub(crate) sink: EventSink,
    /// Node logs of a failed provisioning, and spooled command output, go here.
    pub(crate) test_dir: &'a Path,
}

/// Registers the name, brings the cluster up under [`PROVISION_LIMIT`] and records its handle.
/// On failure the cluster is removed by name; the name stays registered only if that removal
/// could not be confirmed, for the run's leftover sweeps.
pub(crate) async fn up(
    ctx: &RunCtx,
    backend: &Arc<dyn Backend>,
    spec: ClusterSpec,
    req: Request<'_>,
) -> Result<Cluster, Outcome> {
    let name = req.name.to_string();
    // Register the name before anything exists under it, unless an interrupt has taken stock
    // (it then owns teardown and is about to exit).
    {
        let gate = ctx.gate.try_read();
        if gate.is_err() || ctx.interrupted.load(Ordering::SeqCst) {
            return Err(Outcome::Error {
                kind: "interrupted",
                message: "interrupted before provisioning".into(),
            });
        }
        ctx.clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.clone(),
                OwnedCluster {
                    test: req.owner,
                    nodes: spec.nodes.iter().map(|n| n.name.clone()).collect(),
                    handle: None,
                },
            );
    }
    let up = Cluster::builder(spec)
        .backend(backend.clone())
        .name(name.clone())
        // Past every limit the cluster's user can run into: only then may a reaper that can't
        // see whether this run lives (another PID namespace sharing the engine) remove it.
        .expires_after(req.lease)
        .on_event(req.sink)
        .failure_artifacts(req.test_dir)
        // Output past the in-memory limit is spooled into the test's artifacts.
        .spool_dir(req.test_dir)
        .up();
    let cluster = match tokio::time::timeout(PROVISION_LIMIT, up).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            // `up` removed what it made; confirm by name (idempotent, quick) before letting go
            // of the name.
            if matches!(
                tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(&name)).await,
                Ok(Ok(()))
            ) {
                ctx.clusters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&name);
            }
            return Err(provision_error(format!("provisioning failed: {e}")));
        }
        Err(_) => {
            return Err(provision_error(format!(
                "provisioning {name} took over {}",
                humantime::format_duration(PROVISION_LIMIT)
            )))
        }
    };
    if let Some(owned) = ctx
        .clusters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&name)
    {
        owned.handle = Some(cluster.clone());
    }
    Ok(cluster)
}

/// Collects the nodes' service logs, then the spec's `collect` files (`nodes/<node>/files/`),
/// into `dir`, giving up after [`COLLECT_LIMIT`] with a note in `log`.
pub(crate) async fn collect(cluster: &Cluster, dir: &Path, log: &TestLog) {
    let collect = async {
        cluster.collect_logs(dir).await;
        cluster.collect_files(dir).await
    };
    if tokio::time::timeout(COLLECT_LIMIT, collect).await.is_err() {
        log.note("collect", "collecting node logs took over 60s; gave up");
    }
}
