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

use cluster_sim::{Cluster, ClusterSpec, EventKind, EventSink, ExecError, ProvisionError};
use libtest_mimic::Failed;
use tokio::sync::Notify;

use crate::artifacts::{self, TestLog};
use crate::config::{BackendKind, Keep};
use crate::def::{component_and_class, ClusterRequest, TestBody, TestDef, TestFuture};
use crate::junit::{CaseRecord, CaseStatus};
use crate::runner::{report, OwnedCluster, RunCtx, Running};
use crate::wait::WaitError;

/// Longest a cluster may take to come up (a first run builds the node image, which can take
/// minutes); the test's own deadline starts once it is up.
const PROVISION_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Longest collecting node logs may take.
const COLLECT_LIMIT: Duration = Duration::from_secs(60);
/// Longest a teardown may take.
pub(crate) const TEARDOWN_LIMIT: Duration = Duration::from_secs(120);

/// How one test ended, before it is written up.
enum Outcome {
    Passed,
    Failure {
        kind: &'static str,
        message: String,
        detail: String,
    },
    Error {
        kind: &'static str,
        message: String,
    },
}

impl Outcome {
    fn passed(&self) -> bool {
        matches!(self, Outcome::Passed)
    }
}

/// What the run learned about a test while it ran: where it was (for a panic's message) and
/// its cluster's properties (for the report). Shared with the trial's task, so it survives a
/// panic there.
#[derive(Default)]
struct TrialState {
    phase: Mutex<&'static str>,
    properties: Mutex<Vec<(String, String)>>,
}

impl TrialState {
    fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }
    fn phase(&self) -> &'static str {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn property(&self, key: &str, value: String) {
        self.properties
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key.to_string(), value));
    }
}

/// Test-only hook for the harness's self-tests: `CLUSTER_SIM_INJECT_PANIC=<phase>:<fn>[,...]`
/// makes the harness itself panic in that phase of the test whose function is `<fn>`, to prove
/// a panic anywhere still yields a complete report and no leftovers. Phases: `provision` (after
/// the nodes started), `ready` (when a node passed its readiness check), `body` (as the test
/// starts) and `teardown` (before the cluster is removed). Not for users.
#[derive(Debug, Default)]
pub(crate) struct Inject {
    points: Vec<(String, String)>,
}

const INJECT_PHASES: &[&str] = &["provision", "ready", "body", "teardown"];

impl Inject {
    pub(crate) fn from_env() -> Result<Self, String> {
        let Ok(v) = std::env::var("CLUSTER_SIM_INJECT_PANIC") else {
            return Ok(Self::default());
        };
        let mut points = Vec::new();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once(':') {
                Some((phase, func)) if INJECT_PHASES.contains(&phase) && !func.is_empty() => {
                    points.push((phase.to_string(), func.to_string()))
                }
                _ => {
                    return Err(format!(
                        "CLUSTER_SIM_INJECT_PANIC: bad item {item:?}; expected <phase>:<fn> with \
                         a phase of {}",
                        INJECT_PHASES.join(", ")
                    ))
                }
            }
        }
        Ok(Self { points })
    }

    fn at(&self, phase: &str, def: &TestDef) -> bool {
        self.points
            .iter()
            .any(|(p, f)| p == phase && f.as_str() == def.name)
    }
}

fn injected_panic(phase: &str) -> ! {
    panic!("injected panic in {phase} (CLUSTER_SIM_INJECT_PANIC)")
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

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-string panic payload)".into())
}

pub(crate) fn run_trial(ctx: &Arc<RunCtx>, def: &'static TestDef) -> Result<(), Failed> {
    let started = Instant::now();
    let name = def.full_name();
    let test_dir = ctx.run_dir.join(artifacts::test_dir_name(&name));
    let log = TestLog::new();
    log.note("start", &format!("{name} ({}:{})", def.file, def.line));
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
        let fut = execute(
            ctx.clone(),
            def,
            log.clone(),
            test_dir.clone(),
            state.clone(),
            Ended(ended.clone()),
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
    let failed = write_up(ctx, def, &name, started, &test_dir, &log, &state, outcome);
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    drop(gate);
    match failed {
        None => Ok(()),
        Some(text) => Err(text.into()),
    }
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
                    Some(c) => c.collect_logs(test_dir).await,
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

/// Writes the test's artifacts and its report case; returns the failure text, if it failed.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are the trial's own"
)]
fn write_up(
    ctx: &RunCtx,
    def: &'static TestDef,
    name: &str,
    started: Instant,
    test_dir: &Path,
    log: &TestLog,
    state: &TrialState,
    outcome: Outcome,
) -> Option<String> {
    let passed = outcome.passed();
    let rerun = format!("{} {name} --exact", ctx.rerun_prefix);
    log.note(
        "result",
        &match &outcome {
            Outcome::Passed => format!("passed in {:.2?}", started.elapsed()),
            Outcome::Failure { message, .. } => format!("FAILED: {message}"),
            Outcome::Error { message, .. } => format!("ERROR: {message}"),
        },
    );
    let keep = ctx.settings.keep.keeps(passed);
    let mut attachments = Vec::new();
    if keep {
        let log_path = test_dir.join("test.log");
        if let Err(e) = log.persist(&log_path) {
            eprintln!("warning: cannot write {}: {e}", log_path.display());
        }
        log.close();
        attachments = artifacts::files_under(test_dir)
            .into_iter()
            .map(|p| std::path::absolute(&p).unwrap_or(p))
            .collect();
        ctx.kept_any.store(true, Ordering::SeqCst);
    } else {
        log.close();
        if test_dir.exists() {
            let _ = std::fs::remove_dir_all(test_dir);
        }
    }
    let shown_dir = std::path::absolute(test_dir).unwrap_or(test_dir.to_path_buf());
    let (component, classname) = component_and_class(name);
    let (status, failed) = match outcome {
        Outcome::Passed => (CaseStatus::Passed, None),
        Outcome::Failure {
            kind,
            message,
            detail,
        } => {
            let text = format!(
                "{detail}\n  at {}:{}\n  artifacts: {}\n  rerun: {rerun}",
                def.file,
                def.line,
                shown_dir.display()
            );
            (
                CaseStatus::Failure {
                    kind: kind.into(),
                    message: format!("{message}; rerun: {rerun}"),
                    detail: text.clone(),
                },
                Some(text),
            )
        }
        Outcome::Error { kind, message } => {
            let text = format!(
                "{message}\n  at {}:{}\n  artifacts: {}\n  rerun: {rerun}",
                def.file,
                def.line,
                shown_dir.display()
            );
            (
                CaseStatus::Error {
                    kind: kind.into(),
                    message: format!("{message}; rerun: {rerun}"),
                    detail: text.clone(),
                },
                Some(text),
            )
        }
    };
    let properties =
        std::mem::take(&mut *state.properties.lock().unwrap_or_else(|e| e.into_inner()));
    report(
        ctx,
        CaseRecord {
            name: name.to_string(),
            component,
            classname,
            duration: started.elapsed(),
            status,
            output: log.text(),
            attachments,
            properties,
            flush_now: def.needs_cluster() || failed.is_some(),
        },
    );
    failed
}

async fn execute(
    ctx: Arc<RunCtx>,
    def: &'static TestDef,
    log: TestLog,
    test_dir: PathBuf,
    state: Arc<TrialState>,
    _ended: Ended,
) -> Outcome {
    match def.body {
        TestBody::Plain(body) => {
            let timeout = def.timeout().unwrap_or(ctx.settings.timeout);
            state.set_phase("running the test");
            run_body(&ctx, def, body(), timeout, &log, None).await
        }
        TestBody::Cluster(body) => {
            state.set_phase("reading the cluster spec");
            let (spec, label) = match def.cluster {
                ClusterRequest::Spec(s) => {
                    let path = def.spec_path(s);
                    (ClusterSpec::from_file(&path), s.to_string())
                }
                ClusterRequest::Inline { nodes, image } => (
                    ClusterSpec::inline(nodes as usize, image),
                    "inline".to_string(),
                ),
                ClusterRequest::None => {
                    unreachable!("the attribute pairs a cluster body with a request")
                }
            };
            state.property("spec", label);
            let spec = match spec {
                Ok(s) => s,
                Err(e) => {
                    return Outcome::Error {
                        kind: "provision",
                        message: format!("bad cluster spec: {e}"),
                    }
                }
            };
            let mut images: Vec<&str> = spec.nodes.iter().map(|n| n.image.as_str()).collect();
            images.sort_unstable();
            images.dedup();
            state.property("nodes", spec.nodes.len().to_string());
            state.property("image", images.join(","));
            with_cluster(&ctx, def, spec, body, &log, &test_dir, &state).await
        }
    }
}

async fn with_cluster(
    ctx: &Arc<RunCtx>,
    def: &'static TestDef,
    spec: ClusterSpec,
    body: fn(Cluster) -> TestFuture,
    log: &TestLog,
    test_dir: &Path,
    state: &Arc<TrialState>,
) -> Outcome {
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
    state.set_phase("connecting to the backend");
    let backend = match ctx
        .backend
        .get_or_try_init(|| {
            cluster_sim::connect_backend(
                ctx.settings.backend.as_str(),
                ctx.settings.inventory.as_deref(),
            )
        })
        .await
    {
        Ok(b) => b.clone(),
        Err(e) => {
            return Outcome::Error {
                kind: "provision",
                message: format!("{} backend: {e}", ctx.settings.backend.as_str()),
            }
        }
    };
    let budget = ctx.settings.node_budget;
    // Inventory hosts are shared by every cluster of the run (same ports, same hosts): on ssh,
    // cluster tests take the whole budget, one at a time.
    let need = if ctx.settings.backend == BackendKind::Ssh {
        budget
    } else {
        spec.nodes.len().clamp(1, budget)
    };
    state.set_phase("waiting for the node budget");
    let permits = match ctx.budget.clone().try_acquire_many_owned(need as u32) {
        Ok(p) => p,
        Err(_) => {
            log.note(
                "budget",
                &format!(
                    "waiting for {need} of {budget} nodes (CLUSTER_SIM_NODE_BUDGET) to free up"
                ),
            );
            match ctx.budget.clone().acquire_many_owned(need as u32).await {
                Ok(p) => p,
                Err(_) => {
                    return Outcome::Error {
                        kind: "provision",
                        message: "the node budget was closed".into(),
                    }
                }
            }
        }
    };
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst);
    let cluster_name = cluster_name(&spec.name, def.name, seq);
    let timeout = def
        .timeout()
        .or(spec.timeout)
        .unwrap_or(ctx.settings.timeout);

    // Register the name before anything exists under it, unless an interrupt has taken stock
    // (it then owns teardown and is about to exit).
    {
        let gate = ctx.gate.try_read();
        if gate.is_err() || ctx.interrupted.load(Ordering::SeqCst) {
            return Outcome::Error {
                kind: "interrupted",
                message: "interrupted before provisioning".into(),
            };
        }
        ctx.clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                cluster_name.clone(),
                OwnedCluster {
                    test: def.full_name(),
                    nodes: spec.nodes.iter().map(|n| n.name.clone()).collect(),
                    handle: None,
                },
            );
    }

    let sink_log = log.clone();
    let sink_state = state.clone();
    let panic_provision = ctx.inject.at("provision", def);
    let panic_ready = ctx.inject.at("ready", def);
    let sink: EventSink = Arc::new(move |e| {
        sink_log.event(e);
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
    let up = Cluster::builder(spec)
        .backend(backend.clone())
        .name(cluster_name.clone())
        .on_event(sink)
        .failure_artifacts(test_dir)
        .up();
    let cluster = match tokio::time::timeout(PROVISION_LIMIT, up).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            // `up` removed what it made; confirm by name (idempotent, quick) before letting go
            // of the name. Left registered if that fails, for the trial's leftover sweep.
            if matches!(
                tokio::time::timeout(TEARDOWN_LIMIT, backend.destroy(&cluster_name)).await,
                Ok(Ok(()))
            ) {
                ctx.clusters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&cluster_name);
            }
            return Outcome::Error {
                kind: "provision",
                message: format!("provisioning failed: {e}"),
            };
        }
        Err(_) => {
            return Outcome::Error {
                kind: "provision",
                message: format!(
                    "provisioning {cluster_name} took over {}",
                    humantime::format_duration(PROVISION_LIMIT)
                ),
            }
        }
    };
    if let Some(owned) = ctx
        .clusters
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&cluster_name)
    {
        owned.handle = Some(cluster.clone());
    }
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
    )
    .await;

    if !outcome.passed() || ctx.settings.keep == Keep::Always {
        state.set_phase("collecting node logs");
        log.note("collect", "collecting node logs");
        if tokio::time::timeout(COLLECT_LIMIT, cluster.collect_logs(test_dir))
            .await
            .is_err()
        {
            log.note("collect", "collecting node logs took over 60s; gave up");
        }
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
fn cluster_name(spec: &str, func: &str, seq: u64) -> String {
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

/// What was still running on the cluster, one `node: `command` (for 1.2s)` per command.
fn still_running(cluster: &Cluster) -> Vec<String> {
    cluster
        .in_flight()
        .into_iter()
        .map(|c| {
            format!(
                "{}: `{}` (for {:.1}s)",
                c.node,
                c.command,
                c.started.elapsed().as_secs_f64()
            )
        })
        .collect()
}

/// Runs a test body as a task under its deadline, its prints captured into its log. A panic is
/// an error, an error returned a failure; at the deadline the task is aborted (dropping the
/// test's future and whatever it held) and the failure names the commands still running.
async fn run_body(
    ctx: &RunCtx,
    def: &'static TestDef,
    fut: TestFuture,
    timeout: Duration,
    log: &TestLog,
    cluster: Option<&Cluster>,
) -> Outcome {
    let panic_body = ctx.inject.at("body", def);
    let fut = crate::capture::scope(log.clone(), async move {
        if panic_body {
            injected_panic("body");
        }
        fut.await
    });
    let task = ctx.handle.spawn(fut);
    let abort = task.abort_handle();
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(Ok(()))) => Outcome::Passed,
        Ok(Ok(Err(e))) => {
            let kind = classify(&e);
            // The chain, one cause a line; `{:?}` would add a backtrace when RUST_BACKTRACE is set.
            let detail = e
                .chain()
                .enumerate()
                .map(|(i, c)| {
                    if i == 0 {
                        c.to_string()
                    } else {
                        format!("caused by: {c}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            Outcome::Failure {
                kind,
                message: format!("{e:#}"),
                detail,
            }
        }
        Ok(Err(join)) => {
            let message = if join.is_panic() {
                format!("panicked: {}", panic_text(join.into_panic().as_ref()))
            } else {
                "the test's task was cancelled".to_string()
            };
            log.note("panic", &message);
            Outcome::Error {
                kind: "panic",
                message,
            }
        }
        Err(_) => {
            // Read what was running before the abort drops it.
            let running = cluster.map(still_running).unwrap_or_default();
            abort.abort();
            let mut message = format!(
                "timed out after {} (the test's deadline; set `timeout` on #[cluster_test] or in the spec)",
                humantime::format_duration(timeout)
            );
            let mut detail = message.clone();
            if running.is_empty() {
                message.push_str("; no command was running");
            } else {
                message.push_str(&format!("; still running: {}", running.join(", ")));
                detail.push_str("\nstill running:");
                for r in &running {
                    detail.push_str(&format!("\n  {r}"));
                }
            }
            log.note("timeout", &message);
            Outcome::Failure {
                kind: "timeout",
                message,
                detail,
            }
        }
    }
}

/// The `type` of a failure, from the error's chain.
fn classify(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if cause.is::<ExecError>() {
            return "exec";
        }
        if cause.is::<WaitError>() {
            return "wait";
        }
        if cause.is::<ProvisionError>() || cause.is::<cluster_sim::NodeError>() {
            return "node";
        }
        if cause.is::<cluster_sim::TransferError>() {
            return "transfer";
        }
    }
    "assertion"
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

    #[test]
    fn errors_are_classified_by_their_chain() {
        let e = anyhow::Error::new(ExecError::Failed {
            node: "n1".into(),
            command: "false".into(),
            code: 1,
            tail: String::new(),
        })
        .context("writing keys");
        assert_eq!(classify(&e), "exec");
        assert_eq!(classify(&anyhow::anyhow!("keys differ")), "assertion");
    }
}
