//! The engine: turns registered tests into libtest-mimic trials, keeps the run's shared state
//! (settings, node budget, report, the clusters the run owns) and finishes the run.
//!
//! Async stays in here: `main` is synchronous, and each trial runs as a task on one shared
//! multi-thread runtime (`trial.rs`), so a deadline fires even if a test blocks its thread and
//! a panic anywhere in a trial comes back as a `JoinError` instead of unwinding through us.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_sim_core::Cluster;
use libtest_mimic::{Completion, Trial};
use tokio::sync::{Notify, RwLock};

use crate::args::Args;
use crate::artifacts::{self, TestLog};
use crate::budget::NodeBudget;
use crate::config::{self, BackendKind, Settings};
use crate::def::{component_and_class, TestDef};
use crate::events::{Event, Reporters};
use crate::html::HtmlReporter;
use crate::inject::Inject;
use crate::junit::{CaseRecord, CaseStatus, JunitReporter, RunState};
use crate::plan::Case;

/// Every registered test, sorted by name.
pub fn registered() -> Vec<&'static TestDef> {
    let mut defs: Vec<&'static TestDef> = inventory::iter::<TestDef>.into_iter().collect();
    defs.sort_by_cached_key(|d| d.full_name());
    defs
}

/// Runs the tests registered in this binary with libtest's command line, and exits.
pub fn main() -> ! {
    // A copy of this binary started as the run's watchdog does its job here and exits.
    cluster_sim_core::watchdog::intercept();
    let args = Args::from_env();
    let code = run(&args, &registered());
    std::process::exit(code)
}

/// A test in progress, for the interrupt handler.
pub(crate) struct Running {
    pub(crate) started: Instant,
    pub(crate) test_dir: PathBuf,
    pub(crate) log: TestLog,
    /// Aborts the trial's task.
    pub(crate) task: tokio::task::AbortHandle,
    /// Notified when the trial's task has ended (its future dropped: no engine call of it is
    /// still in flight).
    pub(crate) ended: Arc<Notify>,
}

/// A cluster the run owns, registered by name before provisioning starts and dropped once its
/// teardown succeeded: whatever ends a trial (panic, deadline, signal), the name is enough to
/// remove it (`Backend::destroy` works by label and is idempotent).
pub(crate) struct OwnedCluster {
    /// The test it belongs to.
    pub(crate) test: String,
    /// Its nodes, to collect their logs by name when no handle exists (a panic mid-provision).
    pub(crate) nodes: Vec<String>,
    /// The handle, once provisioning returned it.
    pub(crate) handle: Option<Cluster>,
}

pub(crate) struct RunCtx {
    pub(crate) settings: Settings,
    pub(crate) run_dir: PathBuf,
    /// JUnit, HTML, the tests' logs and the console, fed the run's events.
    pub(crate) reporters: Reporters,
    pub(crate) budget: NodeBudget,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) rerun_prefix: String,
    pub(crate) seq: AtomicU64,
    /// Clusters of this run not yet torn down, by cluster name.
    pub(crate) clusters: Mutex<HashMap<String, OwnedCluster>>,
    /// Tests started and not yet reported, by test name.
    pub(crate) running: Mutex<HashMap<String, Running>>,
    pub(crate) interrupted: AtomicBool,
    /// Readers: a trial starting, registering a cluster or being reported. The writer: the
    /// interrupt handler, which holds it until the process exits, so nothing starts or is
    /// reported twice once it has taken stock.
    pub(crate) gate: RwLock<()>,
    pub(crate) kept_any: AtomicBool,
    pub(crate) inject: Inject,
    /// One backend for the whole run, connected when the first cluster test starts, so
    /// `--list` and cluster-free runs never touch Docker or SSH.
    pub(crate) backend: tokio::sync::OnceCell<Arc<dyn cluster_sim_core::Backend>>,
    /// Shared clusters (`share = "group"`), by group.
    pub(crate) shared: crate::shared::Groups,
    /// Walk definitions (`#[cluster_walk]`), each run by one coordinator on one cluster.
    pub(crate) walks: crate::walks::Suites,
}

/// Runs `defs` under `args` and returns the process exit code (0 passed, 101 failed, 2 bad
/// settings or an unwritable report, 130 interrupted).
pub fn run(args: &Args, defs: &[&'static TestDef]) -> i32 {
    // Every case (a test, or one combination of its matrix) is a trial.
    let cases = match crate::plan::plan(defs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut names = HashSet::new();
    for c in &cases {
        if !names.insert(c.name.clone()) {
            eprintln!(
                "error: two tests are named {} ({}:{}); rename one",
                c.name, c.def.file, c.def.line
            );
            return 2;
        }
    }
    // A shard sees only its own cases, listing included.
    let cases: Vec<Arc<Case>> = match &args.partition {
        Some(p) => {
            let names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
            cases
                .into_iter()
                .zip(p.select(&names))
                .filter_map(|(c, keep)| keep.then_some(c))
                .collect()
        }
        None => cases,
    };
    let all_names: Vec<String> = cases.iter().map(|c| c.name.clone()).collect();
    let mimic_args = args.for_mimic(&all_names);
    if args.libtest.list {
        // Listing touches nothing: no settings, no runtime, no engine.
        let trials = cases
            .iter()
            .map(|c| {
                Trial::test(c.name.clone(), || Ok(())).with_ignored_flag(c.def.ignore.is_some())
            })
            .collect();
        // The conclusion of a listing is empty; nothing ran.
        let _ = libtest_mimic::run(&mimic_args, trials);
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
        Ok(mut s) => {
            // Each shard writes its own report, unless CLUSTER_SIM_JUNIT names one for it.
            if let Some(p) = &args.partition {
                if std::env::var_os("CLUSTER_SIM_JUNIT").is_none_or(|v| v.is_empty()) {
                    s.junit = p.report_path(&s.junit);
                }
            }
            s
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in &settings.warnings {
        eprintln!("warning: {w}");
    }
    let inject = match Inject::from_env() {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    crate::capture::set_pass_through(args.libtest.nocapture);

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
    // Earlier runs' evidence beyond the newest CLUSTER_SIM_KEEP_RUNS goes.
    artifacts::prune_runs(&settings.artifacts, settings.keep_runs, &run_id);
    let junit = JunitReporter::new(settings.junit.clone(), &run_id, settings.backend.as_str())
        .merging(nextest_run.is_some());
    let html = HtmlReporter::new(
        settings.report.clone(),
        &run_dir,
        &run_id,
        settings.backend.as_str(),
        &settings.junit,
    )
    .merging(nextest_run.is_some());
    let reporters = Reporters::new(junit, html);
    // Replace the last run's reports before anything else: a run killed from here on leaves
    // an honest "running" report, never the previous run's green one. A report that can't be
    // written fails the run now, before any cluster exists.
    if !reporters.emit(&Event::RunStarted) {
        return 2;
    }

    let workers = args.libtest.test_threads.unwrap_or(2).clamp(2, 16);
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

    let signals = {
        let _rt = rt.enter();
        match crate::interrupt::Signals::new() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot watch for Ctrl-C and SIGTERM: {e}");
                return 2;
            }
        }
    };

    // Which tests will run (and which are skipped as ignored), by libtest's own rules.
    let mut to_run: Vec<&Arc<Case>> = Vec::new();
    let mut skipped: Vec<&Arc<Case>> = Vec::new();
    for c in &cases {
        let probe =
            Trial::test(c.name.clone(), || Ok(())).with_ignored_flag(c.def.ignore.is_some());
        if args.is_filtered_out(&probe) {
            continue;
        }
        if mimic_args.is_ignored(&probe) {
            skipped.push(c);
        } else {
            to_run.push(c);
        }
    }

    if settings.backend == BackendKind::Docker && to_run.iter().any(|c| c.def.needs_cluster()) {
        reap(&rt);
        // Removes this run's clusters within seconds if the run is killed (even SIGKILL).
        match cluster_sim_core::watchdog::start() {
            Ok(()) | Err(cluster_sim_core::watchdog::WatchdogError::NotEnabled) => {}
            Err(e) => eprintln!("warning: {e}; a killed run's clusters wait for the next run"),
        }
    }
    if settings.backend == BackendKind::Ssh && to_run.iter().any(|c| c.def.needs_cluster()) {
        if let Some(inv) = &settings.inventory {
            reap_ssh(&rt, inv);
            // The ssh hosts' share of the same promise: the watchdog reconnects to them.
            match cluster_sim_core::watchdog::start_ssh(inv) {
                Ok(()) | Err(cluster_sim_core::watchdog::WatchdogError::NotEnabled) => {}
                Err(e) => eprintln!("warning: {e}; a killed run's clusters wait for the next run"),
            }
        }
    }

    let ctx = Arc::new(RunCtx {
        // Under target/cluster-sim/ (beside the runs), so every process of a run (nextest runs
        // one per test) draws from one budget.
        budget: NodeBudget::new(
            settings.node_budget,
            settings.artifacts.parent().map(|p| p.join("budget")),
        ),
        run_dir,
        reporters,
        handle: rt.handle().clone(),
        rerun_prefix: rerun_prefix(),
        seq: AtomicU64::new(0),
        clusters: Mutex::new(HashMap::new()),
        running: Mutex::new(HashMap::new()),
        interrupted: AtomicBool::new(false),
        gate: RwLock::new(()),
        kept_any: AtomicBool::new(false),
        inject,
        backend: tokio::sync::OnceCell::new(),
        shared: crate::shared::Groups::new(to_run.iter().copied()),
        walks: crate::walks::Suites::new(to_run.iter().copied()),
        settings,
    });

    for c in &skipped {
        let name = c.name.clone();
        let d = c.def;
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
                reruns: Vec::new(),
            },
        );
    }

    rt.spawn(crate::interrupt::on_interrupt(ctx.clone(), signals));

    // Planning: a test whose required kernel feature the backend lacks is skipped, with why.
    let planned: Vec<&'static TestDef> = to_run.iter().map(|c| c.def).collect();
    let features = crate::requires::probe(&ctx, &planned);
    let trials = cases
        .iter()
        .map(|c| {
            let ctx = ctx.clone();
            let case = c.clone();
            let d = c.def;
            let trial = match features.unmet(d, ctx.settings.backend.as_str()) {
                Some(reason) => Trial::ignorable_test(c.name.clone(), move || {
                    crate::requires::report_skipped(&ctx, &case, &reason);
                    Ok(Completion::ignored_with(reason))
                }),
                None => Trial::test(c.name.clone(), move || {
                    crate::attempts::run_trial(&ctx, case)
                }),
            };
            trial.with_ignored_flag(d.ignore.is_some())
        })
        .collect();
    let conclusion = libtest_mimic::run(&mimic_args, trials);

    // A group whose last test never ended normally leaves its cluster: remove it now.
    rt.block_on(ctx.shared.teardown_all(&ctx));
    // Walk definitions tear their clusters down after their last walk ended: wait for that.
    rt.block_on(ctx.walks.finish());
    let mut code = if conclusion.has_failed() { 101 } else { 0 };
    let kept = ctx.kept_any.load(Ordering::SeqCst);
    ctx.reporters.emit(&Event::RunEnded {
        state: RunState::Finished,
        reported_any: !to_run.is_empty() || !skipped.is_empty(),
        artifacts: kept.then_some(ctx.run_dir.as_path()),
    });
    if ctx.reporters.failed() {
        code = 2;
    }
    drop(ctx);
    rt.shutdown_timeout(Duration::from_secs(5));
    code
}

/// [`reap`] on an ssh inventory's hosts (owner files; see the ssh backend).
fn reap_ssh(rt: &tokio::runtime::Runtime, inventory: &std::path::Path) {
    let r = rt.block_on(async {
        let ssh = cluster_sim_core::ssh::SshBackend::from_file(inventory)
            .map_err(|e| cluster_sim_core::BackendError::Other(e.to_string()))?;
        let r = tokio::time::timeout(Duration::from_secs(60), ssh.reap()).await;
        ssh.close().await;
        r.unwrap_or_else(|_| {
            Err(cluster_sim_core::BackendError::Other(
                "took over 60s".into(),
            ))
        })
    });
    match r {
        Ok(removed) if !removed.is_empty() => eprintln!(
            "removed {} cluster(s) left on the ssh hosts by harnesses that no longer run: {}",
            removed.len(),
            removed.join(", ")
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not look for leftover clusters on the ssh hosts: {e}"),
    }
}

/// Removes what dead harnesses left behind. Trouble here is a warning: each test then reports
/// its own provisioning error, with the engine's message.
fn reap(rt: &tokio::runtime::Runtime) {
    let r = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            cluster_sim_core::docker::DockerBackend::connect()
                .await?
                .reap_report()
                .await
        })
        .await
    });
    match r {
        Ok(Ok(reaped)) => {
            if !reaped.removed.is_empty() {
                eprintln!(
                    "removed {} cluster(s) left by harnesses that no longer run: {}",
                    reaped.removed.len(),
                    reaped.removed.join(", ")
                );
            }
            for (name, why) in &reaped.failed {
                eprintln!("warning: could not remove {name}, left by a harness that no longer runs: {why}");
            }
        }
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

/// Hands a test that did not run its course (skipped, interrupted) to the reporters.
pub(crate) fn report(ctx: &RunCtx, case: CaseRecord) {
    let record = crate::html::record_of(&case);
    ctx.reporters.emit(&Event::TestEnded {
        case: &case,
        record: &record,
        flaky: None,
    });
}
