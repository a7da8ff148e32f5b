//! Getting a test its cluster, the same way for a fresh cluster (`fresh.rs`), a group's shared
//! one (`shared.rs`) and a walk definition's (`walks.rs`): the spec a case asks for, the run's
//! one backend, the node budget, a name registered with the run before anything exists under
//! it, `up` under its limit, and a failed `up` confirmed gone by name before the name is let
//! go. The limits every cluster lives under are here too.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use cluster_sim_core::{Backend, Cluster, ClusterSpec, EventSink};

use crate::artifacts::TestLog;
use crate::outcome::Status;
use crate::plan::{Case, ClusterRequest};
use crate::run::budget::NodePermit;
use crate::run::ctx::{OwnedCluster, RunCtx};

/// Longest a cluster may take to come up (a first run builds the node image, which can take
/// minutes); the test's own deadline starts once it is up.
pub(crate) const PROVISION_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Longest collecting node logs may take.
pub(crate) const COLLECT_LIMIT: Duration = Duration::from_secs(60);
/// Longest a teardown may take.
pub(crate) const TEARDOWN_LIMIT: Duration = Duration::from_secs(120);
/// Slack on a cluster's lease beyond every limit above.
pub(crate) const LEASE_GRACE: Duration = Duration::from_secs(5 * 60);

fn provision_error(message: String) -> Status {
    Status::error("provision", message)
}

/// The run's backend (connected by the first test that needs a cluster).
pub(crate) async fn backend(ctx: &RunCtx) -> Result<Arc<dyn Backend>, Status> {
    ctx.backend()
        .await
        .map_err(|e| provision_error(format!("{} backend: {e}", ctx.settings.backend.as_str())))
}

/// The cluster spec a case asks for (a matrix's values applied) and its label for the report.
pub(crate) fn spec_of(case: &Case) -> (Result<ClusterSpec, String>, String) {
    let def = case.def;
    let (spec, label) = match def.cluster {
        ClusterRequest::Spec(s) => {
            let path = def.spec_path(s);
            (
                ClusterSpec::from_file_with(&path, &case.spec_params()),
                s.to_string(),
            )
        }
        ClusterRequest::Inline { nodes, image } => (
            // A matrix's `nodes` sizes an inline cluster too.
            ClusterSpec::inline(case.get("nodes").unwrap_or(nodes as usize), image),
            "inline".to_string(),
        ),
        ClusterRequest::None => {
            return (
                Err("the test asks for no cluster".into()),
                "none".to_string(),
            )
        }
    };
    (spec.map_err(|e| format!("bad cluster spec: {e}")), label)
}

/// Node permits for a cluster of `nodes` on the run's backend (connected by [`backend`] first),
/// waiting (with a note in the log) when the budget is spent. Where every cluster shares the
/// backend's hosts (an ssh inventory: same ports, same hosts), a cluster takes the whole
/// budget, one at a time.
pub(crate) async fn permits(
    ctx: &RunCtx,
    nodes: usize,
    log: &TestLog,
) -> Result<NodePermit, Status> {
    let budget = ctx.budget.total();
    let need = if ctx.backend.get().is_some_and(|b| b.shares_hosts()) {
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
) -> Result<Cluster, Status> {
    let name = req.name.to_string();
    // Register the name before anything exists under it, unless an interrupt has taken stock
    // (it then owns teardown and is about to exit).
    {
        let gate = ctx.gate.try_read();
        if gate.is_err() || ctx.interrupted.load(Ordering::SeqCst) {
            return Err(Status::error(
                "interrupted",
                "interrupted before provisioning",
            ));
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

/// Tears down `cluster`, registered with the run as `name`, under [`TEARDOWN_LIMIT`]; once it is
/// gone the name leaves the registry. A failure is one line, noted in `log`; the cluster then
/// stays registered, so the run's end (or an interrupt) tries again by name.
pub(crate) async fn down(
    ctx: &RunCtx,
    cluster: &Cluster,
    name: &str,
    log: Option<&TestLog>,
) -> Result<(), String> {
    let e = match tokio::time::timeout(TEARDOWN_LIMIT, cluster.down()).await {
        Ok(Ok(())) => {
            ctx.clusters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Ok(());
        }
        Ok(Err(e)) => format!("teardown of {name} failed: {e}"),
        Err(_) => format!(
            "tearing down {name} took over {}; the next run's reaper removes it",
            humantime::format_duration(TEARDOWN_LIMIT)
        ),
    };
    if let Some(log) = log {
        log.note("teardown", &e);
    }
    Err(e)
}

/// Removes every named cluster by name, retrying each a few times (a stopped trial's own safety
/// net may be removing the same cluster, and the two trip over each other: "network has active
/// endpoints" while the other removes the containers); a removal that ran past
/// [`TEARDOWN_LIMIT`] is not tried again. Returns what still failed, with why.
pub(crate) async fn destroy_all(backend: &dyn Backend, names: &[String]) -> Vec<(String, String)> {
    let mut left: Vec<String> = names.to_vec();
    let mut failed = Vec::new();
    let mut pause = Duration::from_millis(100);
    for attempt in 0..5 {
        let downs = left
            .iter()
            .map(|n| tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(n)));
        let results = futures::future::join_all(downs).await;
        let mut retry = Vec::new();
        for (name, r) in left.into_iter().zip(results) {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) if attempt < 4 => retry.push((name, e.to_string())),
                Ok(Err(e)) => failed.push((name, e.to_string())),
                Err(_) => failed.push((
                    name,
                    format!("took over {}", humantime::format_duration(TEARDOWN_LIMIT)),
                )),
            }
        }
        if retry.is_empty() {
            break;
        }
        left = retry.into_iter().map(|(n, _)| n).collect();
        // Back off: the other remover needs a moment to finish what it started.
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    failed
}

/// Collects the node logs of a cluster the run still owns, whatever state its test left it in:
/// through its handle when provisioning returned one, else node by node by name (a panic
/// mid-provision), giving up after [`COLLECT_LIMIT`].
pub(crate) async fn collect_owned(
    backend: &dyn Backend,
    name: &str,
    owned: &OwnedCluster,
    dir: &Path,
    log: &TestLog,
) {
    if let Some(c) = &owned.handle {
        return collect(c, dir, log).await;
    }
    let by_name = async {
        for node in &owned.nodes {
            let body = match backend.logs(name, node).await {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => format!("(could not read the log: {e})\n"),
            };
            let node_dir = dir.join("nodes").join(node);
            if std::fs::create_dir_all(&node_dir).is_ok() {
                let _ = std::fs::write(node_dir.join("service.log"), body);
            }
        }
    };
    if tokio::time::timeout(COLLECT_LIMIT, by_name).await.is_err() {
        log.note("collect", "collecting node logs took over 60s; gave up");
    }
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

/// `<spec>-<fn>-<pid>-<seq>`, lowercase, at most 48 characters: unique per test and run, and
/// short enough for container and network names.
pub(crate) fn cluster_name(spec: &str, func: &str, seq: u64) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(max)
            .collect::<String>()
            .trim_matches('-')
            .to_string()
    };
    format!(
        "{}-{}-{}-{seq}",
        clean(spec, 12),
        clean(func, 20),
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_are_short_and_clean() {
        let n = cluster_name("etcd3", "Save_And_Restore_a_very_long_function_name", 7);
        assert!(n.starts_with("etcd3-save-and-restore-a-v-"), "{n}");
        assert!(n.ends_with("-7"));
        assert!(n.len() <= 48);
    }
}
