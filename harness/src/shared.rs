//! Shared clusters: tests with `share = "group"` run one at a time on one cluster per group
//! (and per spec and matrix values, which must match to share), provisioned by the group's first
//! test and reset between tests with the spec's `[reuse] reset` command on every node. A failed
//! test's cluster is discarded (its logs collected into that test's artifacts) and the next test
//! provisions a new one; the group's last test tears it down. Fresh clusters stay the default.
//!
//! A shared cluster is registered in the run's cluster list under `share:<key>`, not under a
//! test, so one test's leftover sweep never removes it, and an interrupt still does.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_sim_core::{Cluster, ClusterSpec, EventSink};

use crate::artifacts::TestLog;
use crate::body::{run_body, Outcome};
use crate::def::TestFuture;
use crate::plan::Case;
use crate::runner::RunCtx;
use crate::trial::TEARDOWN_LIMIT;

/// A shared cluster's lease: long enough for a whole group of tests.
const LEASE: Duration = Duration::from_secs(6 * 3600);

/// The run's groups, by key.
#[derive(Default)]
pub(crate) struct Groups {
    map: Mutex<HashMap<String, Arc<Group>>>,
}

struct Group {
    /// The live cluster; the lock makes the group's tests take turns on it.
    slot: tokio::sync::Mutex<Option<Live>>,
    /// Tests of the group still to end in this run.
    remaining: AtomicUsize,
}

struct Live {
    cluster: Cluster,
    name: String,
    /// Its share of the node budget, held while it lives.
    _permits: crate::budget::NodePermit,
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
                down(ctx, live, None).await;
            }
        }
    }
}

/// Counts a test of the group as ended, even if its trial panicked.
struct Ending<'a>(&'a Group);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        self.0.remaining.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn down(ctx: &RunCtx, live: Live, log: Option<&TestLog>) -> Option<String> {
    let r = match tokio::time::timeout(TEARDOWN_LIMIT, live.cluster.down()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("teardown of {} failed: {e}", live.name)),
        Err(_) => Some(format!("tearing down {} took over 2 minutes", live.name)),
    };
    if r.is_none() {
        ctx.clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&live.name);
    }
    if let (Some(log), Some(e)) = (log, &r) {
        log.note("teardown", e);
    }
    r
}

/// Runs a `share = ".."` case on its group's cluster (see the module docs).
pub(crate) async fn with_shared_cluster(
    ctx: &Arc<RunCtx>,
    case: &Case,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
) -> Outcome {
    let Some(k) = key(case) else {
        unreachable!("only shared cases come here")
    };
    let group = ctx
        .shared
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&k)
        .cloned();
    let Some(group) = group else {
        return Outcome::Error {
            kind: "provision",
            message: format!("no shared group {k} was planned"),
        };
    };
    let _ending = Ending(&group);
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
                down(ctx, live, Some(log)).await;
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
    let mut outcome = run_body(
        ctx,
        case.def,
        body(cluster.clone()),
        timeout,
        log,
        Some(&cluster),
        test_dir,
    )
    .await;

    if !outcome.passed() {
        // A failed test's cluster is suspect: its logs go with the test, and it goes.
        log.note(
            "collect",
            "collecting node logs; the shared cluster is discarded",
        );
        crate::provision::collect(&cluster, test_dir, log).await;
        if let Some(live) = slot.take() {
            down(ctx, live, Some(log)).await;
        }
    }
    // The group's last test tears the cluster down.
    if group.remaining.load(Ordering::SeqCst) == 1 {
        if let Some(live) = slot.take() {
            if let Some(e) = down(ctx, live, Some(log)).await {
                if outcome.passed() {
                    outcome = Outcome::Error {
                        kind: "teardown",
                        message: e,
                    };
                }
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
) -> Result<Live, Outcome> {
    let backend = crate::provision::backend(ctx).await?;
    let permits = crate::provision::permits(ctx, spec.nodes.len(), log).await?;
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst);
    let group = key.split('|').next().unwrap_or("shared");
    let name = crate::trial::cluster_name(&spec.name, group, seq);
    let sink_log = log.clone();
    let sink: EventSink = Arc::new(move |e| sink_log.event(e));
    log.note("share", &format!("provisioning {name} for group {group}"));
    let request = crate::provision::Request {
        name: &name,
        owner: format!("share:{key}"),
        lease: LEASE,
        sink,
        test_dir,
    };
    let cluster = crate::provision::up(ctx, &backend, spec, request).await?;
    Ok(Live {
        cluster,
        name,
        _permits: permits,
    })
}
