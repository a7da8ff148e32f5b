//! The run, from plan to finish: turns registered tests into trials of the console runner
//! (`crate::libtest`), starts the run's services, hands each trial to its attempts and ends the
//! run.
//!
//! Async stays in here: `main` is synchronous, and each trial runs as a task on one shared
//! multi-thread runtime (`attempt.rs`), so a deadline fires even if a test blocks its thread
//! and a panic anywhere in a trial comes back as a `JoinError` instead of unwinding through us.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::libtest::{Completion, Trial};
use tokio::sync::RwLock;

use super::attempt::SharedClusters;
use super::attempts::run_trial;
use super::budget::NodeBudget;
use super::clusters::attached::Attached;
use super::clusters::shared::Groups;
use super::clusters::walks::Suites;
use super::ctx::RunCtx;
use super::inject::Inject;
use super::interrupt::{on_interrupt, Signals};
use super::requires::{probe, report_skipped};
use super::start;
use crate::artifacts;
use crate::outcome::{AttemptResult, TestFinished};
use crate::plan::partition::Scheme;
use crate::plan::{select, Args, Case, TestDef};
use crate::report::{RunEvent, RunState};

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

/// Every case (a test, or one combination of its matrix, or one walk) of the shard, as a trial
/// each; with `--failed`, only those that failed or errored in the latest earlier run. Earlier
/// runs are read (settings first, for where they are) only for `--failed` and `time` shards.
fn cases_to_run(args: &Args, defs: &[&'static TestDef]) -> Result<Vec<Arc<Case>>, String> {
    let timed = args.partition.is_some_and(|p| p.scheme == Scheme::Time);
    let artifacts = if args.failed || timed {
        Some(start::settings(args, defs)?.artifacts)
    } else {
        None
    };
    let durations = match (&artifacts, timed) {
        (Some(dir), true) => crate::plan::durations(dir),
        _ => HashMap::new(),
    };
    let mut cases = select(defs, args.partition.as_ref(), &durations)?;
    if let (Some(dir), true) = (&artifacts, args.failed) {
        let (run, failed) = crate::plan::failed_last_time(dir).map_err(|e| e.to_string())?;
        cases.retain(|c| failed.contains(&c.name));
        let run = run.file_name().unwrap_or_default().to_string_lossy();
        if cases.is_empty() {
            eprintln!("--failed: nothing failed in the last run ({run}); nothing to run");
        } else {
            eprintln!(
                "--failed: running the {} test(s) that failed in the last run ({run})",
                cases.len()
            );
        }
    }
    Ok(cases)
}

/// Runs `defs` under `args` and returns the process exit code (0 passed, 101 failed, 2 bad
/// settings or an unwritable report, 130 interrupted).
pub fn run(args: &Args, defs: &[&'static TestDef]) -> i32 {
    let cases = match cases_to_run(args, defs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
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
        let _ = crate::libtest::run(&mimic_args, trials);
        return 0;
    }

    // Library events: into the running test's log, or to stderr outside any test.
    crate::logs::install();
    let settings = match start::settings(args, defs) {
        Ok(s) => s,
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
    crate::prints::set_pass_through(args.libtest.nocapture);

    let (run_id, merging) = start::run_id();
    let run_dir = settings.artifacts.join(&run_id);
    // Earlier runs' evidence beyond the newest CLUSTER_SIM_KEEP_RUNS goes.
    artifacts::prune_runs(&settings.artifacts, settings.keep_runs, &run_id);
    let reporters = start::reporters(&settings, &run_dir, &run_id, merging);
    // Replace the last run's reports before anything else: a run killed from here on leaves
    // an honest "running" report, never the previous run's green one. A report that can't be
    // written fails the run now, before any cluster exists.
    if !reporters.emit(&RunEvent::RunStarted) {
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
        match Signals::new() {
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

    let backend = tokio::sync::OnceCell::new();
    if to_run.iter().any(|c| c.def.needs_cluster()) {
        if let Some(b) = start::clean_up_and_watch(&rt, &settings) {
            let _ = backend.set(b);
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
        rerun_prefix: start::rerun_prefix(),
        seq: AtomicU64::new(0),
        clusters: Mutex::new(HashMap::new()),
        running: Mutex::new(HashMap::new()),
        interrupted: AtomicBool::new(false),
        gate: RwLock::new(()),
        kept_any: AtomicBool::new(false),
        inject,
        backend,
        attached_now: Mutex::new(None),
        settings,
    });
    let lasting = Arc::new(SharedClusters {
        groups: Groups::new(to_run.iter().copied()),
        suites: Suites::new(to_run.iter().copied()),
        attached: Attached::new(ctx.settings.attach.clone()),
    });

    for c in &skipped {
        let reason = c.def.ignore.unwrap_or_default().to_string();
        let attempt = AttemptResult::skipped(reason, String::new(), Vec::new());
        ctx.report(&TestFinished::once(
            c.name.clone(),
            c.def.location(),
            None,
            attempt,
        ));
    }

    rt.spawn(on_interrupt(ctx.clone(), signals));

    // Planning: a test whose required kernel feature the backend lacks is skipped, with why.
    let planned: Vec<&'static TestDef> = to_run.iter().map(|c| c.def).collect();
    let features = probe(&ctx, &planned);
    let trials = cases
        .iter()
        .map(|c| {
            let ctx = ctx.clone();
            let lasting = lasting.clone();
            let case = c.clone();
            let d = c.def;
            let trial = match features.unmet(d, ctx.settings.backend.as_str()) {
                Some(reason) => Trial::ignorable_test(c.name.clone(), move || {
                    report_skipped(&ctx, &case, &reason);
                    Ok(Completion::ignored_with(reason))
                }),
                None => Trial::test(c.name.clone(), move || run_trial(&ctx, &lasting, case)),
            };
            trial.with_ignored_flag(d.ignore.is_some())
        })
        .collect();
    let conclusion = crate::libtest::run(&mimic_args, trials);

    // A group whose last test never ended normally leaves its cluster: remove it now.
    rt.block_on(lasting.groups.teardown_all(&ctx));
    // Walk definitions tear their clusters down after their last walk ended: wait for that.
    rt.block_on(lasting.suites.finish());
    let mut code = if conclusion.has_failed() { 101 } else { 0 };
    let kept = ctx.kept_any.load(Ordering::SeqCst);
    ctx.reporters.emit(&RunEvent::RunEnded {
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
