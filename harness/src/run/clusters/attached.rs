//! Tests on a running cluster (`CLUSTER_SIM_CLUSTER=NAME`, one `cluster-sim up` made): a test
//! whose spec (name and node count, as `up` recorded them on the cluster, matrix values
//! applied) is the cluster's runs on it instead of provisioning; any other provisions as usual,
//! with one line saying why it did not attach. The tests on the cluster take turns; before each,
//! the spec's `[reuse] reset` runs on every node; after each, the spec's log rules judge what
//! the services logged during it (`fail_on_log`), the faults it made are undone and
//! nodes it stopped or froze are started again. The cluster is never torn down and takes no
//! node budget: it exists already.

use std::path::Path;
use std::sync::Arc;

use cluster_sim_core::{Cluster, ClusterSpec, ClusterSummary, EventSink, NodeState};

use super::provision::{self, TEARDOWN_LIMIT};
use crate::artifacts::TestLog;
use crate::outcome::{Status, TestFuture};
use crate::plan::Case;
use crate::run::body::run_body;
use crate::run::ctx::{AttemptState, RunCtx};

/// The run's attached cluster, if `CLUSTER_SIM_CLUSTER` names one.
pub(crate) struct Attached {
    name: Option<String>,
    /// The cluster as the backend's lookup found it, once per run, or why it can't be used.
    found: tokio::sync::OnceCell<Result<ClusterSummary, String>>,
    /// Held by the test running on the cluster: one at a time.
    turn: tokio::sync::Mutex<()>,
}

impl Attached {
    /// The cluster `name` names (`Settings::attach`), not yet looked up.
    pub(crate) fn new(name: Option<String>) -> Self {
        Self {
            name,
            found: tokio::sync::OnceCell::new(),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether a test asking for `spec` runs on the attached cluster: `None` when no cluster
    /// is named, `Some(Err(why not))` when it does not fit.
    pub(crate) async fn fits(
        &self,
        ctx: &RunCtx,
        spec: &ClusterSpec,
    ) -> Option<Result<(), String>> {
        self.found(ctx)
            .await
            .map(|found| found.and_then(|c| matches(c, spec)))
    }

    /// The named cluster as the backend's lookup found it (once per run), or why not.
    async fn found(&self, ctx: &RunCtx) -> Option<Result<&ClusterSummary, String>> {
        let name = self.name.as_deref()?;
        let found = self
            .found
            .get_or_init(|| async {
                let backend = ctx.backend().await.map_err(|e| e.to_string())?;
                let lookup = backend.lookup().ok_or_else(|| {
                    format!("the {} backend can't look clusters up", backend.kind())
                })?;
                let all = lookup.clusters().await.map_err(|e| e.to_string())?;
                all.into_iter().find(|c| c.name == name).ok_or_else(|| {
                    format!("no cluster named {name} on the {} backend", backend.kind())
                })
            })
            .await;
        Some(found.as_ref().map_err(Clone::clone))
    }
}

/// Whether the cluster was made from `spec`: the spec's name and node count as its keep mark
/// records them, and the same node names.
fn matches(c: &ClusterSummary, spec: &ClusterSpec) -> Result<(), String> {
    let want = format!("{} ({} nodes)", spec.name, spec.nodes.len());
    let (Some(made), Some(nodes)) = (&c.mark.spec, c.mark.nodes) else {
        return Err(format!(
            "{} records no spec (make it with `cluster-sim up SPEC --name {}`); this test asks \
             for {want}",
            c.name, c.name
        ));
    };
    if *made != spec.name || nodes != spec.nodes.len() {
        return Err(format!(
            "{} was made from {made} ({nodes} nodes); this test asks for {want}",
            c.name
        ));
    }
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    let wanted: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    if names != wanted {
        return Err(format!(
            "{} has nodes {} running; this test asks for {}",
            c.name,
            names.join(","),
            wanted.join(",")
        ));
    }
    Ok(())
}

/// Runs `body` of `case` on the attached cluster (see the module docs); `Attached::fits` said
/// yes.
#[expect(
    clippy::too_many_arguments,
    reason = "fresh::with_cluster's arguments, plus the attached cluster"
)]
pub(crate) async fn with_attached(
    ctx: &Arc<RunCtx>,
    attached: &Attached,
    case: &Case,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
    state: &Arc<AttemptState>,
) -> Status {
    let Some(Ok(found)) = attached.found(ctx).await else {
        unreachable!("only a test that fits the attached cluster comes here")
    };
    let name = found.name.as_str();
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
    state.set_phase("waiting for the attached cluster");
    log.note(
        "attach",
        &format!("waiting for {name} (CLUSTER_SIM_CLUSTER)"),
    );
    let _turn = attached.turn.lock().await;
    let backend = match provision::backend(ctx).await {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    let sink_log = log.clone();
    let sink: EventSink = Arc::new(move |e| sink_log.event(e));
    let timeout = case
        .def
        .timeout()
        .or(spec.timeout)
        .unwrap_or(ctx.settings.timeout);
    let reset = spec.reset.clone();
    let cluster = Cluster::attach_found(backend, found, spec, Some(sink));
    if let Some(reset) = reset.as_deref() {
        state.set_phase("resetting the attached cluster");
        log.note("attach", &format!("resetting {name} with {reset:?}"));
        // On every node at once: the reset is part of every attached test's time.
        let resets = cluster.nodes().into_iter().map(|node| async move {
            let failed = match node.exec(reset).await {
                Ok(o) => o.check().err().map(|e| e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            failed.map(|e| format!("resetting {name} on {}: {e}", node.name()))
        });
        let failed = futures::future::join_all(resets).await;
        if let Some(e) = failed.into_iter().flatten().next() {
            return Status::error("provision", e);
        }
    }
    log.note(
        "attach",
        &format!("running on {name} (CLUSTER_SIM_CLUSTER); it is not torn down"),
    );
    state.set_phase("running the test");
    // The service logs outlive every test on the cluster: the log check reads from here on.
    let since = cluster.log_marks().await;
    // From here an interrupt undoes what the test does to the cluster (run/interrupt.rs).
    *ctx.attached_now.lock().unwrap_or_else(|e| e.into_inner()) = Some(cluster.clone());
    let outcome = run_body(
        ctx,
        case.def,
        body(cluster.clone()),
        timeout,
        log,
        Some(&cluster),
        test_dir,
    )
    .await;
    let outcome = crate::run::logcheck::judge_logs(&cluster, &since, outcome, log).await;
    if !outcome.passed() {
        state.set_phase("collecting node logs");
        provision::collect(&cluster, test_dir, log).await;
    }
    state.set_phase("undoing the test's faults");
    if tokio::time::timeout(TEARDOWN_LIMIT, restore(&cluster, log))
        .await
        .is_err()
    {
        log.note("attach", &format!("undoing the faults on {name} timed out"));
    }
    *ctx.attached_now.lock().unwrap_or_else(|e| e.into_inner()) = None;
    outcome
}

/// Undoes what a test did to the attached cluster: its faults ended, stopped nodes started,
/// frozen ones thawed, so the next test (and the person who made it) finds it as it was.
pub(crate) async fn restore(cluster: &Cluster, log: &TestLog) {
    cluster.undo_all_faults().await;
    let restores = cluster.nodes().into_iter().map(|node| async move {
        let r = match node.state().await {
            Ok(NodeState::Paused) => node.unpause().await.map_err(|e| e.to_string()),
            Ok(NodeState::Exited | NodeState::Created) => {
                node.start().await.map_err(|e| e.to_string())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = r {
            log.note("attach", &format!("restoring {}: {e}", node.name()));
        }
    });
    futures::future::join_all(restores).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_sim_core::{KeepMark, NodeSummary};

    fn summary(mark: KeepMark, nodes: &[&str]) -> ClusterSummary {
        ClusterSummary {
            name: "demo".into(),
            kept: true,
            mark,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(index, n)| NodeSummary {
                    name: n.to_string(),
                    index,
                    address: String::new(),
                    workdir: String::new(),
                    state: NodeState::Running,
                    roles: Vec::new(),
                    place: String::new(),
                    ports: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_test_attaches_only_to_a_cluster_of_its_spec() {
        let spec = ClusterSpec::inline(3, None).unwrap();
        let mark = KeepMark::of(&spec, None);
        assert_eq!(
            matches(&summary(mark.clone(), &["n1", "n2", "n3"]), &spec),
            Ok(())
        );
        let other = KeepMark {
            spec: Some("kvd3".into()),
            ..mark.clone()
        };
        let why = matches(&summary(other, &["n1", "n2", "n3"]), &spec).unwrap_err();
        assert!(
            why.starts_with("demo was made from kvd3 (3 nodes)"),
            "{why}"
        );
        let bigger = ClusterSpec::inline(5, None).unwrap();
        assert!(matches(&summary(mark.clone(), &["n1", "n2", "n3"]), &bigger).is_err());
        let why = matches(&summary(KeepMark::default(), &["n1"]), &spec).unwrap_err();
        assert!(why.contains("records no spec"), "{why}");
        let why = matches(&summary(mark, &["a", "b", "c"]), &spec).unwrap_err();
        assert!(why.contains("has nodes a,b,c"), "{why}");
    }
}
