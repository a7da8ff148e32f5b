//! One trial: provisions a cluster under the node budget, runs the body under its deadline,
//! collects node logs, tears down whatever happens, and writes the test up.
//!
//! The whole trial runs as one task: a panic anywhere in it (provisioning, readiness, the body,
//! teardown) comes back as a `JoinError` and becomes an `<error type="panic">` case with its
//! artifacts and rerun line, and the clusters it registered are removed by name.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_sim_core::{Cluster, ClusterSpec, EventKind, EventSink};
use tokio::sync::{Notify, RwLockReadGuard};

use crate::artifacts::TestLog;
use crate::body::{panic_text, run_body, Outcome};
use crate::config::Keep;
use crate::def::{ClusterRequest, TestBody, TestFuture};
use crate::inject::injected_panic;
use crate::plan::Case;
use crate::runner::{OwnedCluster, RunCtx, Running};

/// Longest a cluster may take to come up (a first run builds the node image, which can take
/// minutes); the test's own deadline starts once it is up.
pub(crate) const PROVISION_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Longest collecting node logs may take.
pub(crate) const COLLECT_LIMIT: Duration = Duration::from_secs(60);
/// Longest a teardown may take.
pub(crate) const TEARDOWN_LIMIT: Duration = Duration::from_secs(120);
/// Slack on a cluster's lease beyond every limit above.
const LEASE_GRACE: Duration = Duration::from_secs(5 * 60);

/// What the run learned about a test while it ran: where it was (for a panic's message) and
/// its cluster's properties (for the report). Shared with the trial's task, so it survives a
/// panic there.
#[derive(Default)]
pub(crate) struct TrialState {
    phase: Mutex<&'static str>,
    pub(crate) properties: Mutex<Vec<(String, String)>>,
    /// Seeds of the nemeses the test started, in order.
    pub(crate) seeds: Mutex<Vec<u64>>,
    /// A walk's `trace.json`: kept even when the rest of a passed test's artifacts go.
    pub(crate) trace: Mutex<Option<PathBuf>>,
    /// The test's own running time, when it is not the trial's (a walk's, without the time it
    /// waited for other walks at barriers or before its trial started).
    pub(crate) duration: Mutex<Option<Duration>>,
}

impl TrialState {
    fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }
    fn phase(&self) -> &'static str {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
    pub(crate) fn property(&self, key: &str, value: String) {
        self.properties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.to_string(), value));
    }
}

/// Notifies the interrupt handler when a trial's future is gone (finished or dropped).
struct Ended(Arc<Notify>);

impl Drop for Ended {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// Parks this thread for good: the interrupt handler reports the test and exits the process.
fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// Runs one attempt at a test case in `test_dir` (on a fresh cluster) and writes it up. Returns
/// it with the run's gate still held for reading, so the caller reports it before an interrupt
/// can take stock (which would report the test a second time).
pub(crate) fn run_attempt<'a>(
    ctx: &'a Arc<RunCtx>,
    case: Arc<Case>,
    test_dir: PathBuf,
) -> (crate::writeup::Written, RwLockReadGuard<'a, ()>) {
    let started = Instant::now();
    let def = case.def;
    let name = case.name.clone();
    let log = TestLog::new();
    ctx.reporters.emit(&crate::events::Event::AttemptStarted {
        name: &name,
        location: &format!("{}:{}", def.file, def.line),
        log: &log,
    });
    let state = Arc::new(TrialState::default());
    let ended = Arc::new(Notify::new());

    // Start the trial's task and list it as running in one step, unless an interrupt has
    // already taken stock.
    let task = {
        let gate = ctx.gate.blocking_read();
        if ctx.interrupted.load(Ordering::SeqCst) {
            drop(gate);
            park_forever();
        }
        let fut = crate::plan::scoped(
            Some(case.clone()),
            execute(
                ctx.clone(),
                case.clone(),
                log.clone(),
                test_dir.clone(),
                state.clone(),
                Ended(ended.clone()),
            ),
        );
        let task = ctx.handle.spawn(fut);
        ctx.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.clone(),
                Running {
                    started,
                    test_dir: test_dir.clone(),
                    log: log.clone(),
                    task: task.abort_handle(),
                    ended,
                },
            );
        task
    };

    let outcome = ctx.handle.block_on(async {
        let outcome = match task.await {
            Ok(o) => o,
            Err(join) if join.is_panic() => {
                let text = panic_text(join.into_panic().as_ref());
                let message = format!("the harness panicked while {}: {text}", state.phase());
                log.note("panic", &message);
                Outcome::Error {
                    kind: "panic",
                    message,
                }
            }
            Err(_) => Outcome::Error {
                kind: "interrupted",
                message: "the test's task was cancelled".into(),
            },
        };
        if !ctx.interrupted.load(Ordering::SeqCst) {
            remove_leftovers(ctx, &name, &test_dir, &log).await;
        }
        outcome
    });

    let gate = ctx.gate.blocking_read();
    if ctx.interrupted.load(Ordering::SeqCst) {
        // The interrupt handler reports this test and exits; don't race it.
        drop(gate);
        park_forever();
    }
    let written =
        crate::writeup::write_up(ctx, def, &name, started, &test_dir, &log, &state, outcome);
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    (written, gate)
}

/// Tears down, by name, any cluster of test `name` still registered: one whose trial panicked
/// (even mid-provision, before a handle existed) or whose teardown failed. Node logs are
/// collected first.
async fn remove_leftovers(ctx: &RunCtx, name: &str, test_dir: &Path, log: &TestLog) {
    let left: Vec<(String, OwnedCluster)> = {
        let mut clusters = ctx.clusters.lock().unwrap_or_else(|e| e.into_inner());
        let names: Vec<String> = clusters
            .iter()
            .filter(|(_, c)| c.test == name)
            .map(|(n, _)| n.clone())
            .collect();
        names
            .into_iter()
            .filter_map(|n| clusters.remove(&n).map(|c| (n, c)))
            .collect()
    };
    let Some(backend) = ctx.backend.get() else {
        return;
    };
    for (cluster, owned) in left {
        log.note("teardown", &format!("removing {cluster} by name"));
        if !test_dir.join("nodes").exists() {
            let collect = async {
                match &owned.handle {
                    Some(c) => {
                        c.collect_logs(test_dir).await;
                        c.collect_files(test_dir).await;
                    }
                    None => {
                        for node in &owned.nodes {
                            let body = match backend.logs(&cluster, node).await {
                                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                                Err(e) => format!("(could not read the log: {e})\n"),
                            };
                            let dir = test_dir.join("nodes").join(node);
                            if std::fs::create_dir_all(&dir).is_ok() {
                                let _ = std::fs::write(dir.join("service.log"), body);
                            }
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(COLLECT_LIMIT, collect).await;
        }
        // A few tries: a cluster whose handle was dropped in a panic is also being removed by
        // the handle's own safety net, and the two trip over each other ("network has active
        // endpoints" while the other removes the containers).
        let mut last = None;
        let mut pause = Duration::from_millis(100);
        for _ in 0..5 {
            match tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(&cluster)).await {
                Ok(Ok(())) => {
                    last = None;
                    break;
                }
                Ok(Err(e)) => last = Some(e.to_string()),
                Err(_) => {
                    last = Some("took over 2 minutes".into());
                    break;
                }
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        match last {
            None => log.note("teardown", &format!("removed {cluster}")),
            Some(e) => log.note("teardown", &format!("removing {cluster} failed: {e}")),
        }
    }
}

async fn execute(
    ctx: Arc<RunCtx>,
    case: Arc<Case>,
    log: TestLog,
    test_dir: PathBuf,
    state: Arc<TrialState>,
    _ended: Ended,
) -> Outcome {
    let def = case.def;
    // A matrix case's values, as report properties (`param.nodes` = 3).
    for (n, v) in &case.params {
        state.property(&format!("param.{n}"), v.to_string());
    }
    match def.body {
        TestBody::Plain(body) => {
            let timeout = def.timeout().unwrap_or(ctx.settings.timeout);
            state.set_phase("running the test");
            run_body(&ctx, def, body(), timeout, &log, None, &test_dir).await
        }
        TestBody::Walks(_) => {
            state.set_phase("running the walk");
            crate::walks::run_walk(&ctx, &case, &log, &test_dir, &state).await
        }
        TestBody::Cluster(body) => {
            state.set_phase("reading the cluster spec");
            let (spec, label) = spec_of(&case);
            state.property("spec", label);
            let spec = match spec {
                Ok(s) => s,
                Err(message) => {
                    return Outcome::Error {
                        kind: "provision",
                        message,
                    }
                }
            };
            let mut images: Vec<&str> = spec.nodes.iter().map(|n| n.image.as_str()).collect();
            images.sort_unstable();
            images.dedup();
            state.property("nodes", spec.nodes.len().to_string());
            state.property("image", images.join(","));
            if def.share.is_some() {
                state.set_phase("running on the shared cluster");
                return crate::shared::with_shared_cluster(
                    &ctx, &case, spec, body, &log, &test_dir,
                )
                .await;
            }
            with_cluster(&ctx, &case, spec, body, &log, &test_dir, &state).await
        }
    }
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

async fn with_cluster(
    ctx: &Arc<RunCtx>,
    case: &Case,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
    state: &Arc<TrialState>,
) -> Outcome {
    let def = case.def;
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
    state.set_phase("connecting to the backend");
    let backend = match crate::provision::backend(ctx).await {
        Ok(b) => b,
        Err(outcome) => return outcome,
    };
    state.set_phase("waiting for the node budget");
    let permits = match crate::provision::permits(ctx, spec.nodes.len(), log).await {
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
        if let Some(seed) = e.nemesis_seed {
            sink_state
                .seeds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(seed);
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
    let request = crate::provision::Request {
        name: &cluster_name,
        owner: case.name.clone(),
        lease: PROVISION_LIMIT + timeout + COLLECT_LIMIT + TEARDOWN_LIMIT + LEASE_GRACE,
        sink,
        test_dir,
    };
    let cluster = match crate::provision::up(ctx, &backend, spec, request).await {
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
    let mut outcome = run_body(
        ctx,
        def,
        body(cluster.clone()),
        timeout,
        log,
        Some(&cluster),
        test_dir,
    )
    .await;

    if !outcome.passed() || ctx.settings.keep == Keep::Always {
        state.set_phase("collecting node logs");
        log.note("collect", "collecting node logs");
        crate::provision::collect(&cluster, test_dir, log).await;
    }
    state.set_phase("tearing down");
    if ctx.inject.at("teardown", def) {
        injected_panic("teardown");
    }
    match tokio::time::timeout(TEARDOWN_LIMIT, cluster.down()).await {
        Ok(Ok(())) => {
            ctx.clusters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&cluster_name);
        }
        Ok(Err(e)) => {
            log.note("teardown", &format!("failed: {e}"));
            if outcome.passed() {
                outcome = Outcome::Error {
                    kind: "teardown",
                    message: format!("teardown failed: {e}"),
                };
            }
        }
        Err(_) => {
            log.note(
                "teardown",
                "took over 2 minutes; the next run's reaper removes it",
            );
            if outcome.passed() {
                outcome = Outcome::Error {
                    kind: "teardown",
                    message: format!("tearing down {cluster_name} took over 2 minutes"),
                };
            }
        }
    }
    drop(permits);
    outcome
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
