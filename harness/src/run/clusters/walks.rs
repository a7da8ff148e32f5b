//! Running walk definitions (`#[cluster_walk]`, see `walk.rs`): each definition's selected walks
//! run together on one cluster, driven by a coordinator task started by the first of their
//! trials; each trial then waits for its own walk's end and writes it up like a test (its
//! `trace.json`, its log, and on failure the nodes' logs).
//!
//! The coordinator registers its cluster with the run under `walks:<definition>`, so an
//! interrupt removes it; the run waits for every coordinator's teardown before it exits.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cluster_sim_core::EventSink;
use tokio::sync::oneshot;

use super::provision::{
    self, cluster_name, spec_of, COLLECT_LIMIT, LEASE_GRACE, PROVISION_LIMIT, TEARDOWN_LIMIT,
};
use crate::artifacts::{self, TestLog};
use crate::outcome::Status;
use crate::plan::walk::{complete_trace, Finished, StepStatus, StepTrace, Trace};
use crate::plan::{Case, TestBody, TestDef};
use crate::run::ctx::{AttemptState, RunCtx};

/// A walk's end, handed from the coordinator to the walk's trial.
pub(crate) struct WalkEnd {
    trace: Trace,
    outcome: Status,
    active: Duration,
}

/// The run's walk definitions, by name.
#[derive(Default)]
pub(crate) struct Suites {
    map: HashMap<String, Arc<Suite>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

struct Suite {
    def: &'static TestDef,
    /// The walks selected in this run (filters, shards), in plan order.
    cases: Vec<Arc<Case>>,
    /// Each walk's end, by trial name, taken by the trial.
    ends: Mutex<HashMap<String, oneshot::Receiver<WalkEnd>>>,
    /// The walks' ends' senders, in `cases` order, taken by whoever starts the coordinator.
    senders: Mutex<Option<Vec<oneshot::Sender<WalkEnd>>>>,
}

impl Suites {
    /// The definitions of the walks about to run.
    pub(crate) fn new<'a>(cases: impl IntoIterator<Item = &'a Arc<Case>>) -> Self {
        let mut by_def: HashMap<String, Vec<Arc<Case>>> = HashMap::new();
        for c in cases {
            if c.walk.is_some() {
                by_def.entry(c.def.full_name()).or_default().push(c.clone());
            }
        }
        let map = by_def
            .into_iter()
            .map(|(name, cases)| {
                let (senders, ends): (Vec<_>, HashMap<_, _>) = cases
                    .iter()
                    .map(|c| {
                        let (tx, rx) = oneshot::channel();
                        (tx, (c.name.clone(), rx))
                    })
                    .unzip();
                let suite = Suite {
                    def: cases[0].def,
                    cases,
                    ends: Mutex::new(ends),
                    senders: Mutex::new(Some(senders)),
                };
                (name, Arc::new(suite))
            })
            .collect();
        Self {
            map,
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Waits for every coordinator (its teardown included), at the run's end.
    pub(crate) async fn finish(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for t in tasks {
            let limit = PROVISION_LIMIT + TEARDOWN_LIMIT + COLLECT_LIMIT;
            let _ = tokio::time::timeout(limit, t).await;
        }
    }
}

/// Runs (or joins) the walk of `case` and returns how it ended; its trace goes to `test_dir`.
pub(crate) async fn run_walk(
    ctx: &Arc<RunCtx>,
    suites: &Suites,
    case: &Case,
    log: &TestLog,
    test_dir: &std::path::Path,
    state: &AttemptState,
) -> Status {
    let Some(walk) = &case.walk else {
        unreachable!("only walk cases come here")
    };
    let Some(suite) = suites.map.get(&case.def.full_name()).cloned() else {
        return Status::error("provision", "the walk's definition was not planned");
    };
    state.property("walk.id", walk.chosen.id.clone());
    state.property("walk.generator", walk.shape.generator.to_string());
    for (s, &o) in walk.shape.steps.iter().zip(&walk.chosen.options) {
        state.property(&format!("walk.{}", s.name), s.labels[o].clone());
    }
    let Some(rx) = suite
        .ends
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&case.name)
    else {
        return Status::error("provision", "this walk was already run");
    };
    suites.start(ctx, &suite);
    log.note(
        "walk",
        &format!(
            "{} [{}]: waiting for the walk on the definition's cluster",
            walk.chosen.id, walk.chosen.label
        ),
    );
    let ended = match rx.await {
        Ok(e) => e,
        Err(_) => {
            return Status::error(
                "panic",
                "the walks' coordinator ended without reporting this walk",
            )
        }
    };
    for s in &ended.trace.steps {
        let at = s
            .started_us
            .map(|us| SystemTime::UNIX_EPOCH + Duration::from_micros(us))
            .unwrap_or_else(SystemTime::now);
        let took = match (s.started_us, s.ended_us) {
            (Some(a), Some(b)) => format!(
                " in {}",
                cluster_sim_core::duration::human(Duration::from_micros(b - a))
            ),
            _ => String::new(),
        };
        let status = match s.status {
            StepStatus::Passed => "passed".to_string(),
            StepStatus::Failed => format!("FAILED: {}", s.error.as_deref().unwrap_or("")),
            StepStatus::NotRun => "not run".to_string(),
        };
        let serial = match s.walks {
            Some(n) => format!(" (serial, once for {n} walk(s))"),
            None => String::new(),
        };
        log.line(
            at,
            "step",
            None,
            &format!("{}={}{serial}: {status}{took}", s.action, s.option),
        );
        for n in &s.notes {
            log.line(at, "note", None, n);
        }
    }
    let trace_path = test_dir.join("trace.json");
    let written = std::fs::create_dir_all(test_dir).and_then(|()| {
        let text = serde_json::to_string_pretty(&ended.trace).map_err(std::io::Error::other)?;
        std::fs::write(&trace_path, text)
    });
    if let Err(e) = written {
        log.note(
            "walk",
            &format!("cannot write {}: {e}", trace_path.display()),
        );
    }
    state.set_trace(trace_path);
    state.set_duration(ended.active);
    ended.outcome
}

impl Suites {
    /// Starts the suite's coordinator, once: the first caller takes the senders.
    fn start(&self, ctx: &Arc<RunCtx>, suite: &Arc<Suite>) {
        let Some(senders) = suite
            .senders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        else {
            return;
        };
        let task = ctx
            .handle
            .spawn(coordinate(ctx.clone(), suite.clone(), senders));
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }
}

/// The definition's cluster, up and registered with the run.
struct SuiteCluster {
    cluster: cluster_sim_core::Cluster,
    name: String,
    timeout: Duration,
    _permits: crate::run::budget::NodePermit,
}

/// Reads the spec and brings the definition's cluster up (budget, registration, lease); the
/// error is what every walk of the suite reports.
async fn provision(
    ctx: &Arc<RunCtx>,
    suite: &Suite,
    log: &TestLog,
    suite_dir: &std::path::Path,
) -> Result<SuiteCluster, String> {
    let def = suite.def;
    let full = def.full_name();
    let first = suite.cases.first().ok_or("no walk was selected")?;
    let spec = spec_of(first).0?;
    let timeout = def
        .timeout()
        .or(spec.timeout)
        .unwrap_or(ctx.settings.timeout);
    let backend = provision::backend(ctx)
        .await
        .map_err(|o| outcome_message(&o))?;
    let permits = provision::permits(ctx, spec.nodes.len(), log)
        .await
        .map_err(|o| outcome_message(&o))?;
    let seq = ctx.seq.fetch_add(1, Ordering::SeqCst);
    let name = cluster_name(&spec.name, def.name, seq);
    let sink_log = log.clone();
    let sink: EventSink = Arc::new(move |e| sink_log.event(e));
    log.note(
        "walk",
        &format!(
            "provisioning {name} for {} walk(s) of {full}",
            suite.cases.len()
        ),
    );
    let request = provision::Request {
        name: &name,
        owner: format!("walks:{full}"),
        // Every walk may use its whole deadline, one serial run after another.
        lease: PROVISION_LIMIT
            + timeout * (suite.cases.len() as u32 + 1)
            + COLLECT_LIMIT
            + TEARDOWN_LIMIT
            + LEASE_GRACE,
        sink,
        test_dir: suite_dir,
    };
    match provision::up(ctx, &backend, spec, request).await {
        Ok(cluster) => Ok(SuiteCluster {
            cluster,
            name,
            timeout,
            _permits: permits,
        }),
        Err(o) => {
            let log_path = suite_dir.join("walks.log");
            let _ = log.persist(&log_path);
            Err(format!(
                "{} (log: {})",
                outcome_message(&o),
                log_path.display()
            ))
        }
    }
}

/// Provisions the definition's cluster, runs its selected walks, hands each walk's end to its
/// trial as it comes, and tears the cluster down.
async fn coordinate(ctx: Arc<RunCtx>, suite: Arc<Suite>, senders: Vec<oneshot::Sender<WalkEnd>>) {
    let def = suite.def;
    let TestBody::Walks(make) = def.body else {
        unreachable!("a walk suite's definition registers walks")
    };
    let suite_dir = ctx.run_dir.join(artifacts::test_dir_name(&def.full_name()));
    let log = TestLog::new();
    if let Some(attach) = &ctx.settings.attach {
        // Walks share one cluster a coordinator drives from its start: they never attach.
        let line = format!(
            "not attaching to {attach} (CLUSTER_SIM_CLUSTER): a walk definition provisions its own"
        );
        log.note("attach", &line);
        eprintln!("{}: {line}", def.full_name());
    }
    let up = match provision(&ctx, &suite, &log, &suite_dir).await {
        Ok(up) => up,
        Err(message) => {
            for (tx, case) in senders.into_iter().zip(&suite.cases) {
                let _ = tx.send(WalkEnd {
                    trace: trace_of(case, Vec::new(), "failed"),
                    outcome: Status::error("provision", message.clone()),
                    active: Duration::ZERO,
                });
            }
            return;
        }
    };
    let SuiteCluster {
        cluster,
        name,
        timeout,
        _permits: permits,
    } = up;
    log.note("walk", &format!("{name} is up; starting the walks"));

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Finished>();
    let chosen = suite
        .cases
        .iter()
        .filter_map(|c| c.walk.as_ref().map(|w| w.chosen.clone()))
        .collect();
    let run = make().execute(cluster.clone(), chosen, timeout, tx);
    let driver = tokio::spawn(run);
    let mut senders: Vec<Option<oneshot::Sender<WalkEnd>>> =
        senders.into_iter().map(Some).collect();
    let mut any_failed = false;
    while let Some(f) = rx.recv().await {
        let Some(case) = suite.cases.get(f.index) else {
            continue;
        };
        let outcome = match &f.error {
            None => Status::Passed,
            Some((kind, message)) => {
                any_failed = true;
                let step = f
                    .steps
                    .iter()
                    .find(|s| s.status == StepStatus::Failed)
                    .map(|s| format!("{}={}", s.action, s.option))
                    .unwrap_or_default();
                // The cluster as the failure left it: its logs go with the walk.
                let dir = ctx.run_dir.join(artifacts::test_dir_name(&case.name));
                provision::collect(&cluster, &dir, &log).await;
                let mut failed = Status::Failed {
                    kind: kind.to_string(),
                    message: format!("step {step}: {message}"),
                    detail: format!("step {step} failed: {message}"),
                };
                // A failed walk keeps the definition's cluster once every walk has ended.
                if ctx.settings.keep_cluster.keeps(false) {
                    let advice = super::keep::advice_when(
                        &cluster,
                        "is kept running once every walk of its definition has ended",
                    );
                    super::keep::tell(&mut failed, &case.name, &advice);
                }
                failed
            }
        };
        let result = if outcome.passed() { "passed" } else { "failed" };
        let trace = trace_of(case, f.steps, result);
        if let Some(tx) = senders.get_mut(f.index).and_then(Option::take) {
            let _ = tx.send(WalkEnd {
                trace,
                outcome,
                active: f.active,
            });
        }
    }
    if let Err(e) = driver.await {
        log.note("walk", &format!("the walks' driver ended: {e}"));
    }
    // A walk the driver never reported (its task was lost) still gets an end.
    for (tx, case) in senders.into_iter().zip(&suite.cases) {
        if let Some(tx) = tx {
            any_failed = true;
            let _ = tx.send(WalkEnd {
                trace: trace_of(case, Vec::new(), "failed"),
                outcome: Status::error("panic", "the walk never ended (its task was lost)"),
                active: Duration::ZERO,
            });
        }
    }
    let kept_by = format!("walks:{}", def.full_name());
    match super::keep::keep_or_down(&ctx, &cluster, &name, &kept_by, !any_failed, Some(&log)).await
    {
        Ok(None) => log.note("teardown", &format!("removed {name}")),
        Ok(Some(advice)) if !any_failed => eprintln!("{kept_by}: {advice}"),
        Ok(Some(_)) => {}
        Err(e) => {
            any_failed = true;
            eprintln!("warning: the walks' cluster: {e}");
        }
    }
    drop(permits);
    if ctx.settings.keep.keeps(!any_failed) {
        let _ = log.persist(&suite_dir.join("walks.log"));
    }
    log.close();
}

fn outcome_message(o: &Status) -> String {
    o.failure()
        .map(|(_, message, _)| message.to_string())
        .unwrap_or_default()
}

fn trace_of(case: &Case, steps: Vec<StepTrace>, result: &str) -> Trace {
    let Some(w) = &case.walk else {
        unreachable!("a walk case")
    };
    Trace {
        test: case.name.clone(),
        walk: w.chosen.id.clone(),
        label: w.chosen.label.clone(),
        generator: w.shape.generator.to_string(),
        result: result.to_string(),
        steps: complete_trace(&w.shape, &w.chosen, steps),
    }
}
