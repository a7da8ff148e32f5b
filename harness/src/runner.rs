//! The engine: turns registered tests into libtest-mimic trials, provisions a cluster per test
//! under a node budget, enforces deadlines, tears down whatever happens, and hands each result
//! to the artifacts and the JUnit reporter.
//!
//! Async stays in here: `main` is synchronous, and each trial blocks on its own future, which
//! runs as a task on one shared multi-thread runtime (so a deadline fires even if a test blocks
//! its thread, and a panic comes back as a `JoinError` instead of unwinding through us).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_sim::{Cluster, ClusterSpec, EventSink, ExecError, ProvisionError};
use libtest_mimic::{Arguments, Failed, Trial};
use tokio::sync::Semaphore;

use crate::artifacts::{self, TestLog};
use crate::config::{self, BackendKind, Keep, Settings};
use crate::def::{component_and_class, ClusterRequest, TestBody, TestDef, TestFuture};
use crate::junit::{CaseRecord, CaseStatus, JunitReporter};
use crate::wait::WaitError;

/// Longest a cluster may take to come up (a first run builds the node image, which can take
/// minutes); the test's own deadline starts once it is up.
const PROVISION_LIMIT: Duration = Duration::from_secs(20 * 60);
/// Longest collecting node logs may take.
const COLLECT_LIMIT: Duration = Duration::from_secs(60);
/// Longest a teardown may take.
const TEARDOWN_LIMIT: Duration = Duration::from_secs(120);
/// Slack on a cluster's lease beyond every limit above.
const LEASE_GRACE: Duration = Duration::from_secs(5 * 60);

/// Every registered test, sorted by name.
pub fn registered() -> Vec<&'static TestDef> {
    let mut defs: Vec<&'static TestDef> = inventory::iter::<TestDef>.into_iter().collect();
    defs.sort_by_cached_key(|d| d.full_name());
    defs
}

/// Runs the tests registered in this binary with libtest's command line, and exits.
pub fn main() -> ! {
    // A copy of this binary started as the run's watchdog does its job here and exits.
    cluster_sim::watchdog::intercept();
    let args = Arguments::from_args();
    let code = run(&args, &registered());
    std::process::exit(code)
}

/// A test in progress, for the interrupt handler.
struct Running {
    started: Instant,
    test_dir: PathBuf,
}

struct RunCtx {
    settings: Settings,
    run_dir: PathBuf,
    reporter: JunitReporter,
    budget: Arc<Semaphore>,
    handle: tokio::runtime::Handle,
    rerun_prefix: String,
    seq: AtomicU64,
    live: Mutex<HashMap<u64, Cluster>>,
    running: Mutex<HashMap<String, Running>>,
    interrupted: AtomicBool,
    kept_any: AtomicBool,
    /// One backend for the whole run, connected when the first cluster test starts, so
    /// `--list` and cluster-free runs never touch Docker or SSH.
    backend: tokio::sync::OnceCell<Arc<dyn cluster_sim::Backend>>,
}

/// Runs `defs` under `args` and returns the process exit code (0 passed, 101 failed, 2 bad
/// settings, 130 interrupted).
pub fn run(args: &Arguments, defs: &[&'static TestDef]) -> i32 {
    let mut names = std::collections::HashSet::new();
    for d in defs {
        if !names.insert(d.full_name()) {
            eprintln!(
                "error: two tests are named {} ({}:{}); rename one",
                d.full_name(),
                d.file,
                d.line
            );
            return 2;
        }
    }
    if args.list {
        // Listing touches nothing: no settings, no runtime, no engine.
        let trials = defs
            .iter()
            .map(|d| Trial::test(d.full_name(), || Ok(())).with_ignored_flag(d.ignore.is_some()))
            .collect();
        // The conclusion of a listing is empty; nothing ran.
        let _ = libtest_mimic::run(args, trials);
        return 0;
    }

    let start_dir = defs
        .first()
        .map(|d| PathBuf::from(d.manifest_dir))
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let workspace = config::find_workspace_root(&start_dir);
    let target = config::find_target_dir(&workspace);
    let settings = match Settings::load(&workspace, &target) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in &settings.warnings {
        eprintln!("warning: {w}");
    }

    // Under nextest every test is its own process: share one run id (and so one run directory
    // and one merged report) across them.
    let nextest_run = std::env::var("NEXTEST_RUN_ID")
        .ok()
        .filter(|s| !s.is_empty());
    let run_id = match &nextest_run {
        Some(id) => format!("nextest-{id}"),
        None => artifacts::new_run_id(),
    };
    let run_dir = settings.artifacts.join(&run_id);
    let reporter = JunitReporter::new(settings.junit.clone(), &run_id, settings.backend.as_str())
        .merging(nextest_run.is_some());

    let workers = args.test_threads.unwrap_or(2).clamp(2, 16);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 2;
        }
    };

    // Which tests will run (and which are skipped as ignored), by libtest's own rules.
    let mut to_run: Vec<&'static TestDef> = Vec::new();
    let mut skipped: Vec<&'static TestDef> = Vec::new();
    for d in defs {
        let probe = Trial::test(d.full_name(), || Ok(())).with_ignored_flag(d.ignore.is_some());
        if args.is_filtered_out(&probe) {
            continue;
        }
        if args.is_ignored(&probe) {
            skipped.push(d);
        } else {
            to_run.push(d);
        }
    }

    if settings.backend == BackendKind::Docker && to_run.iter().any(|d| d.needs_cluster()) {
        reap(&rt);
        // Removes this run's clusters within seconds if the run is killed (even SIGKILL).
        match cluster_sim::watchdog::start() {
            Ok(()) | Err(cluster_sim::watchdog::WatchdogError::NotEnabled) => {}
            Err(e) => eprintln!("warning: {e}; a killed run's clusters wait for the next run"),
        }
    }

    let ctx = Arc::new(RunCtx {
        budget: Arc::new(Semaphore::new(settings.node_budget)),
        run_dir,
        reporter,
        handle: rt.handle().clone(),
        rerun_prefix: rerun_prefix(),
        seq: AtomicU64::new(0),
        live: Mutex::new(HashMap::new()),
        running: Mutex::new(HashMap::new()),
        interrupted: AtomicBool::new(false),
        kept_any: AtomicBool::new(false),
        backend: tokio::sync::OnceCell::new(),
        settings,
    });

    for d in &skipped {
        let name = d.full_name();
        let (component, classname) = component_and_class(&name);
        report(
            &ctx,
            CaseRecord {
                name,
                component,
                classname,
                duration: Duration::ZERO,
                status: CaseStatus::Skipped {
                    reason: d.ignore.unwrap_or_default().to_string(),
                },
                output: String::new(),
                attachments: Vec::new(),
                properties: Vec::new(),
                flush_now: false,
            },
        );
    }

    rt.spawn(on_interrupt(ctx.clone()));

    let trials = defs
        .iter()
        .map(|&d| {
            let ctx = ctx.clone();
            Trial::test(d.full_name(), move || run_trial(&ctx, d))
                .with_ignored_flag(d.ignore.is_some())
        })
        .collect();
    let conclusion = libtest_mimic::run(args, trials);

    if let Err(e) = ctx.reporter.flush() {
        eprintln!("error: {e}");
    }
    if !to_run.is_empty() || !skipped.is_empty() {
        eprintln!("JUnit report: {}", ctx.reporter.path().display());
    }
    if ctx.kept_any.load(Ordering::SeqCst) {
        eprintln!("artifacts: {}", ctx.run_dir.display());
    }
    // A run that kept nothing leaves no empty directory behind.
    let _ = std::fs::remove_dir(&ctx.run_dir);
    drop(ctx);
    rt.shutdown_timeout(Duration::from_secs(5));
    if conclusion.has_failed() {
        101
    } else {
        0
    }
}

/// Removes what dead harnesses left behind. Trouble here is a warning: each test then reports
/// its own provisioning error, with the engine's message.
fn reap(rt: &tokio::runtime::Runtime) {
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            cluster_sim::docker::DockerBackend::connect()
                .await?
                .reap()
                .await
        })
        .await
    });
    match r {
        Ok(Ok(removed)) if !removed.is_empty() => eprintln!(
            "removed {} cluster(s) left by harnesses that no longer run: {}",
            removed.len(),
            removed.join(", ")
        ),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("warning: could not look for leftover clusters: {e}"),
        Err(_) => eprintln!("warning: looking for leftover clusters took over 60s; skipped"),
    }
}

/// The command that reruns one test of this binary: `cargo test --test <target> --`, or
/// `cargo run --example <name> --` for a suite built as an example.
fn rerun_prefix() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_ref()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "tests_d".into());
    let target = match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem,
    };
    let in_examples = exe
        .as_ref()
        .and_then(|p| p.parent())
        .and_then(|d| d.file_name())
        .is_some_and(|n| n == "examples");
    if in_examples {
        format!("cargo run --example {target} --")
    } else {
        format!("cargo test --test {target} --")
    }
}

fn report(ctx: &RunCtx, case: CaseRecord) {
    if let Err(e) = ctx.reporter.record(case) {
        eprintln!("warning: {e}");
    }
}

/// On Ctrl-C or SIGTERM: tear down every live cluster, report the tests cut short, finish the
/// report and exit 130. A second signal exits at once (the next run's reaper cleans up).
async fn on_interrupt(ctx: Arc<RunCtx>) {
    wait_for_signal().await;
    ctx.interrupted.store(true, Ordering::SeqCst);
    tokio::spawn(async {
        wait_for_signal().await;
        eprintln!("interrupted again: exiting without teardown");
        std::process::exit(130);
    });
    let live: Vec<Cluster> = ctx
        .live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, c)| c)
        .collect();
    eprintln!(
        "\ninterrupted: tearing down {} cluster(s), then writing {}",
        live.len(),
        ctx.reporter.path().display()
    );
    let downs = live
        .iter()
        .map(|c| tokio::time::timeout(TEARDOWN_LIMIT, c.down()));
    for r in futures::future::join_all(downs).await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: teardown: {e}"),
            Err(_) => eprintln!("warning: a teardown took over 2 minutes"),
        }
    }
    let running: Vec<(String, Running)> = ctx
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .collect();
    for (name, r) in running {
        let (component, classname) = component_and_class(&name);
        let message = format!(
            "interrupted after {:.1}s; rerun: {} {name} --exact",
            r.started.elapsed().as_secs_f64(),
            ctx.rerun_prefix
        );
        let log = r.test_dir.join("test.log");
        report(
            &ctx,
            CaseRecord {
                name,
                component,
                classname,
                duration: r.started.elapsed(),
                status: CaseStatus::Error {
                    kind: "interrupted".into(),
                    message: message.clone(),
                    detail: message,
                },
                output: String::new(),
                attachments: if log.is_file() { vec![log] } else { Vec::new() },
                properties: Vec::new(),
                flush_now: true,
            },
        );
    }
    if let Err(e) = ctx.reporter.flush() {
        eprintln!("error: {e}");
    }
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

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

/// What the run learned about a test's cluster, for the report's properties.
#[derive(Default)]
struct ClusterInfo {
    properties: Vec<(String, String)>,
}

fn run_trial(ctx: &Arc<RunCtx>, def: &'static TestDef) -> Result<(), Failed> {
    let started = Instant::now();
    let name = def.full_name();
    let test_dir = ctx.run_dir.join(artifacts::test_dir_name(&name));
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            name.clone(),
            Running {
                started,
                test_dir: test_dir.clone(),
            },
        );
    let log = TestLog::new();
    log.note("start", &format!("{name} ({}:{})", def.file, def.line));
    let mut info = ClusterInfo::default();
    let outcome = ctx
        .handle
        .block_on(execute(ctx, def, &log, &test_dir, &mut info));
    if ctx.interrupted.load(Ordering::SeqCst) {
        // The interrupt handler reports this test and exits; don't race it.
        std::thread::park();
    }
    ctx.running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);

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
        attachments = artifacts::files_under(&test_dir)
            .into_iter()
            .map(|p| std::path::absolute(&p).unwrap_or(p))
            .collect();
        ctx.kept_any.store(true, Ordering::SeqCst);
    } else {
        log.close();
        if test_dir.exists() {
            let _ = std::fs::remove_dir_all(&test_dir);
        }
    }
    let shown_dir = std::path::absolute(&test_dir).unwrap_or(test_dir.clone());
    let (component, classname) = component_and_class(&name);
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
    report(
        ctx,
        CaseRecord {
            name,
            component,
            classname,
            duration: started.elapsed(),
            status,
            output: log.text(),
            attachments,
            properties: info.properties,
            flush_now: def.needs_cluster() || failed.is_some(),
        },
    );
    match failed {
        None => Ok(()),
        Some(text) => Err(text.into()),
    }
}

async fn execute(
    ctx: &Arc<RunCtx>,
    def: &'static TestDef,
    log: &TestLog,
    test_dir: &Path,
    info: &mut ClusterInfo,
) -> Outcome {
    match def.body {
        TestBody::Plain(body) => {
            let timeout = def.timeout().unwrap_or(ctx.settings.timeout);
            run_body(ctx, body(), timeout, log).await
        }
        TestBody::Cluster(body) => {
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
            info.properties.push(("spec".into(), label));
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
            info.properties
                .push(("nodes".into(), spec.nodes.len().to_string()));
            info.properties.push(("image".into(), images.join(",")));
            with_cluster(ctx, def, spec, body, log, test_dir).await
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
) -> Outcome {
    if let Err(e) = log.stream_to(&test_dir.join("test.log")) {
        eprintln!("warning: cannot write {}: {e}", test_dir.display());
    }
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
    let sink_log = log.clone();
    let sink: EventSink = Arc::new(move |e| sink_log.event(e));
    let up = Cluster::builder(spec)
        .backend(backend)
        .name(cluster_name.clone())
        // Past every limit this test can run into: only then may a reaper that can't see
        // whether this run lives (another PID namespace sharing the engine) remove it.
        .expires_after(PROVISION_LIMIT + timeout + COLLECT_LIMIT + TEARDOWN_LIMIT + LEASE_GRACE)
        .on_event(sink)
        .failure_artifacts(test_dir)
        .up();
    let cluster = match tokio::time::timeout(PROVISION_LIMIT, up).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Outcome::Error {
                kind: "provision",
                message: format!("provisioning failed: {e}"),
            }
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
    ctx.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(seq, cluster.clone());
    log.note(
        "test",
        &format!(
            "cluster {cluster_name} is up; running the test (deadline {})",
            humantime::format_duration(timeout)
        ),
    );

    let mut outcome = run_body(ctx, body(cluster.clone()), timeout, log).await;

    if !outcome.passed() || ctx.settings.keep == Keep::Always {
        log.note("collect", "collecting node logs");
        if tokio::time::timeout(COLLECT_LIMIT, cluster.collect_logs(test_dir))
            .await
            .is_err()
        {
            log.note("collect", "collecting node logs took over 60s; gave up");
        }
    }
    match tokio::time::timeout(TEARDOWN_LIMIT, cluster.down()).await {
        Ok(Ok(())) => {}
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
    ctx.live
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&seq);
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

/// Runs a test body as a task under its deadline. A panic or a timeout is a failure; the task
/// is aborted at the deadline (dropping the test's future and whatever it held).
async fn run_body(ctx: &RunCtx, fut: TestFuture, timeout: Duration, log: &TestLog) -> Outcome {
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
                let payload = join.into_panic();
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a non-string panic payload)".into());
                format!("panicked: {text}")
            } else {
                "the test's task was cancelled".to_string()
            };
            Outcome::Failure {
                kind: "panic",
                message: message.clone(),
                detail: message,
            }
        }
        Err(_) => {
            abort.abort();
            let message = format!(
                "timed out after {} (the test's deadline; set `timeout` on #[cluster_test] or in the spec)",
                humantime::format_duration(timeout)
            );
            log.note("timeout", &message);
            Outcome::Failure {
                kind: "timeout",
                message: message.clone(),
                detail: message,
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
