//! One attempt at a test: runs it as one task (on a cluster of its own, its group's shared one,
//! or its walk definition's, as `clusters/` provides), removes what it left, and ends it: its
//! artifacts kept or cleared, its record made.
//!
//! The whole attempt runs as one task: a panic anywhere in it (provisioning, readiness, the
//! body, teardown) comes back as a `JoinError` and becomes an error of kind `panic` with its
//! artifacts and rerun line, and the clusters it registered are removed by name.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use cluster_sim_core::fault::SEED_VAR;
use tokio::sync::{Notify, RwLockReadGuard};

use super::body::run_body;
use super::clusters::attached::{with_attached, Attached};
use super::clusters::fresh::with_cluster;
use super::clusters::provision::{collect_owned, destroy_all, spec_of};
use super::clusters::shared::{with_shared_cluster, Groups};
use super::clusters::walks::{run_walk, Suites};
use super::ctx::{AttemptState, OwnedCluster, RunCtx, Running};
use super::retention::retain;
use crate::artifacts::TestLog;
use crate::outcome::{panic_text, AttemptResult, Status};
use crate::plan::{Case, TestBody};
use crate::report::RunEvent;

/// The clusters that outlive an attempt, held by the run and handed to every attempt: the
/// groups of `share = ".."` tests, the walk definitions' coordinators and the running cluster
/// `CLUSTER_SIM_CLUSTER` names.
pub(crate) struct SharedClusters {
    pub(crate) groups: Groups,
    pub(crate) suites: Suites,
    pub(crate) attached: Attached,
}

/// Notifies the interrupt handler when a trial's future is gone (finished or dropped).
struct NotifyOnDrop(Arc<Notify>);

impl Drop for NotifyOnDrop {
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

/// Runs attempt `number` at a test case in `test_dir` (on a fresh cluster) and ends it. Returns
/// its result with the run's gate still held for reading, so the caller reports it before an
/// interrupt can take stock (which would report the test a second time).
pub(crate) fn run_attempt<'a>(
    ctx: &'a Arc<RunCtx>,
    lasting: &Arc<SharedClusters>,
    case: Arc<Case>,
    number: u32,
    test_dir: PathBuf,
) -> (AttemptResult, RwLockReadGuard<'a, ()>) {
    let started = Instant::now();
    let name = case.name.clone();
    let location = case.def.location();
    let log = TestLog::new();
    ctx.reporters.emit(&RunEvent::AttemptStarted {
        name: &name,
        location: &location,
        log: &log,
    });
    let state = Arc::new(AttemptState::default());
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
            // Library events in the attempt (provisioning, teardown) go to its log.
            crate::logs::scope(
                log.clone(),
                execute(
                    ctx.clone(),
                    lasting.clone(),
                    case.clone(),
                    log.clone(),
                    test_dir.clone(),
                    state.clone(),
                    NotifyOnDrop(ended.clone()),
                ),
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
                    location: location.clone(),
                    number,
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
                Status::error("panic", message)
            }
            Err(_) => Status::error("interrupted", "the test's task was cancelled"),
        };
        if !ctx.interrupted.load(Ordering::SeqCst) {
            crate::logs::scope(log.clone(), remove_leftovers(ctx, &name, &test_dir, &log)).await;
        }
        outcome
    });

    let gate = ctx.gate.blocking_read();
    if ctx.interrupted.load(Ordering::SeqCst) {
        // The interrupt handler reports this test and exits; don't race it.
        drop(gate);
        park_forever();
    }
    let ended = AttemptEnd {
        number,
        location: &location,
        started,
        test_dir: &test_dir,
        log: &log,
        state: &state,
    };
    let result = ended.finish(ctx, &name, outcome);
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    (result, gate)
}

/// An attempt that has ended, and what it knows.
struct AttemptEnd<'a> {
    number: u32,
    location: &'a str,
    started: Instant,
    test_dir: &'a Path,
    log: &'a TestLog,
    state: &'a AttemptState,
}

impl AttemptEnd<'_> {
    /// The attempt's result line in its log, its artifacts kept or cleared, and its record,
    /// whose failure text points at the test, its artifacts, the rerun command and the seeds
    /// that replay its nemeses.
    fn finish(self, ctx: &RunCtx, name: &str, status: Status) -> AttemptResult {
        let summary = match &status {
            Status::Passed => format!("passed in {:.2?}", self.started.elapsed()),
            Status::Failed { message, .. } => format!("FAILED: {message}"),
            Status::Error { message, .. } => format!("ERROR: {message}"),
            Status::Skipped { reason } => format!("SKIPPED: {reason}"),
        };
        ctx.reporters.emit(&RunEvent::AttemptEnded {
            log: self.log,
            summary: &summary,
        });
        let kept = retain(
            ctx,
            self.test_dir,
            self.log,
            self.state.trace(),
            status.passed(),
        );
        let seeds = self.state.seeds();
        let status = pointed(
            status,
            self.location,
            self.test_dir,
            &ctx.rerun_command(name),
            &seeds,
        );
        let duration = self
            .state
            .take_duration()
            .unwrap_or_else(|| self.started.elapsed());
        AttemptResult {
            number: self.number,
            status,
            started: std::time::SystemTime::now() - duration,
            duration,
            log: self.log.text(),
            events: self.log.events(),
            attachments: kept.attachments,
            properties: self.state.take_properties(),
            seeds,
            dir: kept.dir,
        }
    }
}

/// A failure's text, made to point at the test (`at file:line`), its artifacts, the command
/// that reruns it and, under a nemesis, the seed that replays it (a failure under a nemesis is
/// only useful with its seed).
fn pointed(status: Status, location: &str, dir: &Path, rerun: &str, seeds: &[u64]) -> Status {
    let replay = match seeds {
        [] => String::new(),
        [one] => format!("nemesis seed {one} (replay with {SEED_VAR}={one})"),
        many => format!(
            "nemesis seeds {} (replay one with {SEED_VAR}=N)",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let shown_dir = std::path::absolute(dir).unwrap_or(dir.to_path_buf());
    let message = |message: String| match replay.as_str() {
        "" => format!("{message}; rerun: {rerun}"),
        r => format!("{message}; {r}; rerun: {rerun}"),
    };
    let detail = |detail: String| {
        let replay_line = match replay.as_str() {
            "" => String::new(),
            r => format!("\n  {r}"),
        };
        format!(
            "{detail}\n  at {location}\n  artifacts: {}\n  rerun: {rerun}{replay_line}",
            shown_dir.display()
        )
    };
    match status {
        Status::Failed {
            kind,
            message: m,
            detail: d,
        } => Status::Failed {
            kind,
            message: message(m),
            detail: detail(d),
        },
        Status::Error {
            kind,
            message: m,
            detail: d,
        } => Status::Error {
            kind,
            message: message(m),
            detail: detail(d),
        },
        other => other,
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
            collect_owned(backend.as_ref(), &cluster, &owned, test_dir, log).await;
        }
        match destroy_all(backend.as_ref(), std::slice::from_ref(&cluster))
            .await
            .pop()
        {
            None => log.note("teardown", &format!("removed {cluster}")),
            Some((_, e)) => log.note("teardown", &format!("removing {cluster} failed: {e}")),
        }
    }
}

/// The attempt's task: the test on the cluster its kind asks for.
async fn execute(
    ctx: Arc<RunCtx>,
    lasting: Arc<SharedClusters>,
    case: Arc<Case>,
    log: TestLog,
    test_dir: PathBuf,
    state: Arc<AttemptState>,
    _ended: NotifyOnDrop,
) -> Status {
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
            run_walk(&ctx, &lasting.suites, &case, &log, &test_dir, &state).await
        }
        TestBody::Cluster(body) => {
            state.set_phase("reading the cluster spec");
            let (spec, label) = spec_of(&case);
            state.property("spec", label);
            let spec = match spec {
                Ok(s) => s,
                Err(message) => return Status::error("provision", message),
            };
            let mut images: Vec<&str> = spec.nodes.iter().map(|n| n.image.as_str()).collect();
            images.sort_unstable();
            images.dedup();
            state.property("nodes", spec.nodes.len().to_string());
            state.property("image", images.join(","));
            match lasting.attached.fits(&ctx, &spec).await {
                Some(Ok(())) => {
                    state.property("attached", "true".into());
                    return with_attached(
                        &ctx,
                        &lasting.attached,
                        &case,
                        spec,
                        body,
                        &log,
                        &test_dir,
                        &state,
                    )
                    .await;
                }
                Some(Err(why)) => {
                    // One line per test that provisions its own instead.
                    let line = format!("not attaching (CLUSTER_SIM_CLUSTER): {why}");
                    log.note("attach", &line);
                    eprintln!("{}: {line}", case.name);
                }
                None => {}
            }
            if def.share.is_some() {
                state.set_phase("running on the shared cluster");
                return with_shared_cluster(
                    &ctx,
                    &lasting.groups,
                    &case,
                    spec,
                    body,
                    &log,
                    &test_dir,
                )
                .await;
            }
            with_cluster(&ctx, &case, spec, body, &log, &test_dir, &state).await
        }
    }
}
