//! Shared clusters: tests with `share = "group"` run one at a time on one cluster per group
//! (and per spec and matrix values, which must match to share), provisioned by the group's first
//! test and reset between tests with the spec's `[reuse] reset` command on every node. A failed
//! test's cluster is discarded (its logs collected into that test's artifacts; kept instead
//! when `CLUSTER_SIM_KEEP_CLUSTER` says so) and the next test provisions a new one; the group's
//! last test tears it down (or keeps it under `always`). Fresh clusters stay the default.
//!
//! A shared cluster is registered in the run's cluster list under `share:<key>`, not under a
//! test, so one test's leftover sweep never removes it, and an interrupt still does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_sim_core::{Cluster, ClusterSpec, EventSink};

use super::provision::{self, cluster_name};
use crate::artifacts::TestLog;
use crate::outcome::{Status, TestFuture};
use crate::plan::Case;
use crate::run::body::run_body;
use crate::run::ctx::RunCtx;

/// A shared cluster's lease: long enough for a whole group of tests.
const LEASE: Duration = Duration::from_secs(6 * 3600);

/// The run's groups, by key.
#[derive(Default)]
pub(crate) struct Groups {
    map: Mutex<HashMap<String, Arc<Group>>>,
}

struct Group {
    /// The live cluster; the lock makes the group's tests take turns on it.
    slot: tokio::sync::Mutex<Option<GroupCluster>>,
    /// Tests of the group still to end in this run.
    remaining: AtomicUsize,
}

struct GroupCluster {
    cluster: Cluster,
    name: String,
    /// Its share of the node budget, held while it lives.
    _permits: crate::run::budget::NodePermit,
}

/// The group a case shares a cluster with: its `share` name, spec and matrix values.
fn key(case: &Case) -> Option<String> {
    let group = case.def.share?;
    let values: Vec<String> = case
        .params
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    Some(format!(
        "{group}|{:?}|{}",
        case.def.cluster,
        values.join(",")
    ))
}

impl Groups {
    /// The groups of the cases about to run, each knowing how many tests it has.
    pub(crate) fn new<'a>(cases: impl IntoIterator<Item = &'a Arc<Case>>) -> Self {
        let mut map: HashMap<String, Arc<Group>> = HashMap::new();
        for c in cases {
            if let Some(k) = key(c) {
                map.entry(k)
                    .or_insert_with(|| {
                        Arc::new(Group {
                            slot: tokio::sync::Mutex::new(None),
                            remaining: AtomicUsize::new(0),
                        })
                    })
                    .remaining
                    .fetch_add(1, Ordering::SeqCst);
            }
        }
        Self {
            map: Mutex::new(map),
        }
    }

    /// Tears down what a group left (a test that never ended normally): at the run's end.
    pub(crate) async fn teardown_all(&self, ctx: &RunCtx) {
        let groups: Vec<Arc<Group>> = self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for g in groups {
            if let Some(live) = g.slot.lock().await.take() {
                // No test is left to carry the error: say it here. The cluster stays
                // registered, and its lease lets the next run's reaper remove it.
                if let Err(e) = down(ctx, live, None).await {
                    eprintln!("warning: a shared cluster: {e}");
                }
            }
        }
    }
}

/// Counts a test of the group as ended, even if its trial panicked.
struct EndOnDrop<'a>(&'a Group);

impl Drop for EndOnDrop<'_> {
    fn drop(&mut self) {
        self.0.remaining.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Tears a group's cluster down; its share of the node budget goes with it.
async fn down(ctx: &RunCtx, live: GroupCluster, log: Option<&TestLog>) -> Result<(), String> {
    provision::down(ctx, &live.cluster, &live.name, log).await
}

/// Ends a group's cluster after test `test` as `CLUSTER_SIM_KEEP_CLUSTER` says (kept: the
/// advice to show); its share of the node budget goes with it either way.
async fn end(
    ctx: &RunCtx,
    live: GroupCluster,
    test: &str,
    passed: bool,
    log: &TestLog,
) -> Result<Option<String>, String> {
    super::keep::keep_or_down(ctx, &live.cluster, &live.name, test, passed, Some(log)).await
}

/// Runs a `share = ".."` case on its group's cluster (see the module docs).
pub(crate) async fn with_shared_cluster(
    ctx: &Arc<RunCtx>,
    groups: &Groups,
    case: &Case,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
) -> Status {
    let Some(k) = key(case) else {
        unreachable!("only shared cases come here")
    };
    let group = groups
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&k)
        .cloned();
    let Some(group) = group else {
        return Status::error("provision", format!("no shared group {k} was planned"));
    };
    let _ending = EndOnDrop(&group);
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
    log.note("share", &format!("waiting for group {k}"));
    let mut slot = group.slot.lock().await;

    // Hand-over: reset a cluster the group's last test left; a reset that fails discards it.
    if let (Some(live), Some(reset)) = (slot.as_ref(), spec.reset.as_deref()) {
        log.note("share", &format!("resetting {} with {reset:?}", live.name));
        let mut failed = None;
        for node in live.cluster.nodes() {
            match node.exec(reset).await.map(|o| o.check().map(|_| ())) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(format!("{}: {e}", node.name())),
                Err(e) => failed = Some(format!("{}: {e}", node.name())),
            }
        }
        if let Some(e) = failed {
            log.note(
                "share",
                &format!("reset failed ({e}); provisioning a new cluster"),
            );
            if let Some(live) = slot.take() {
                // A failure is in the test's log; the next test provisions a new cluster.
                let _ = down(ctx, live, Some(log)).await;
            }
        }
    }
    if slot.is_none() {
        match provision(ctx, &k, spec, log, test_dir).await {
            Ok(live) => *slot = Some(live),
            Err(outcome) => return outcome,
        }
    } else {
        log.note("share", "reusing the group's cluster");
    }
    let Some(live) = slot.as_ref() else {
        unreachable!("provisioned above")
    };
    let cluster = live.cluster.clone();
    let timeout = case
        .def
        .timeout()
        .or(cluster.spec().timeout)
        .unwrap_or(ctx.settings.timeout);
    // A shared cluster's logs hold earlier tests' lines: this test answers for its own.
    let since = cluster.log_marks().await;
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
    let mut outcome = crate::run::logcheck::judge_logs(&cluster, &since, outcome, log).await;

    if !outcome.passed() {
        // A failed test's cluster is suspect: its logs go with the test, and it goes (or is
        // kept, as CLUSTER_SIM_KEEP_CLUSTER says); the group's next test provisions another.
        log.note(
            "collect",
            "collecting node logs; the shared cluster is discarded",
        );
        provision::collect(&cluster, test_dir, log).await;
        if let Some(live) = slot.take() {
            // The test already failed; a failed teardown is in its log.
            if let Ok(Some(advice)) = end(ctx, live, &case.name, false, log).await {
                super::keep::tell(&mut outcome, &case.name, &advice);
            }
        }
    }
    // The group's last test tears the cluster down (or keeps it).
    if group.remaining.load(Ordering::SeqCst) == 1 {
        if let Some(live) = slot.take() {
            match end(ctx, live, &case.name, true, log).await {
                Ok(None) => {}
                Ok(Some(advice)) => super::keep::tell(&mut outcome, &case.name, &advice),
                Err(e) if outcome.passed() => outcome = Status::error("teardown", e),
                Err(_) => {}
            }
        }
    }
    outcome
}

async fn provision(
    ctx: &Arc<RunCtx>,
    key: &str,
    spec: ClusterSpec,
    log: &TestLog,
    test_dir: &Path,
) -> Result<GroupCluster, Status> {
    let backend = provision::backend(ctx).await?;
    let permits = provision::permits(ctx, spec.nodes.len(), log).await?;
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst);
    let group = key.split('|').next().unwrap_or("shared");
    let name = cluster_name(&spec.name, group, seq);
    let sink_log = log.clone();
    let sink: EventSink = Arc::new(move |e| sink_log.event(e));
    log.note("share", &format!("provisioning {name} for group {group}"));
    let request = provision::Request {
        name: &name,
        owner: format!("share:{key}"),
        lease: LEASE,
        sink,
        test_dir,
    };
    let cluster = provision::up(ctx, &backend, spec, request).await?;
    Ok(GroupCluster {
        cluster,
        name,
        _permits: permits,
    })
}
