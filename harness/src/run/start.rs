//! Starting a run: where its settings and reports come from, the command that reruns a test,
//! and the clean-up of what dead runs left before this one makes anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifacts;
use std::sync::Arc;

use crate::config::{self, Settings};
use crate::plan::{Args, TestDef};
use crate::report::{HtmlReporter, JunitReporter, Reporters};

/// The run's settings: defaults, the workspace's settings file, the environment; a shard
/// writes its own report unless `CLUSTER_SIM_JUNIT` names one for it.
pub(crate) fn settings(args: &Args, defs: &[&'static TestDef]) -> Result<Settings, String> {
    let start_dir = defs
        .first()
        .map(|d| PathBuf::from(d.manifest_dir))
        .or_else(|| std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let workspace = config::find_workspace_root(&start_dir);
    let target = config::find_target_dir(&workspace);
    let mut s = Settings::load(&workspace, &target).map_err(|e| e.to_string())?;
    if let Some(p) = &args.partition {
        if std::env::var_os("CLUSTER_SIM_JUNIT").is_none_or(|v| v.is_empty()) {
            s.junit = p.report_path(&s.junit);
        }
    }
    Ok(s)
}

/// The run's id, and whether this process is one of many sharing it: under nextest every test
/// is its own process, and they share one run id (so one run directory and one merged report).
pub(crate) fn run_id() -> (String, bool) {
    match std::env::var("NEXTEST_RUN_ID")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(id) => (format!("nextest-{id}"), true),
        None => (artifacts::new_run_id(), false),
    }
}

/// The run's reporters, writing where the settings say.
pub(crate) fn reporters(
    settings: &Settings,
    run_dir: &Path,
    run_id: &str,
    merging: bool,
) -> Reporters {
    let backend = settings.backend.as_str();
    let junit = JunitReporter::new(settings.junit.clone(), run_id, backend)
        .merging(merging)
        .relative_to(settings.project_dir.clone());
    let html = HtmlReporter::new(
        settings.report.clone(),
        run_dir,
        run_id,
        backend,
        &settings.junit,
    )
    .merging(merging);
    Reporters::new(junit, html)
}

/// Before the first cluster: connects the run's backend and, where it offers cleanup, removes
/// what dead runs left behind and starts this run's watchdog, which removes this run's clusters
/// within seconds if it is killed (even SIGKILL). Trouble here is a warning: each test then
/// reports its own provisioning error. The backend connected here serves the run.
pub(crate) fn clean_up_and_watch(
    rt: &tokio::runtime::Runtime,
    settings: &Settings,
) -> Option<Arc<dyn cluster_sim_core::Backend>> {
    let choice = cluster_sim_core::BackendChoice {
        kind: settings.backend.as_str().to_string(),
        inventory: settings.inventory.clone(),
        engines: None,
    };
    let backend = match rt.block_on(choice.connect()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("warning: could not look for leftover clusters: {e}");
            return None;
        }
    };
    let janitor = backend.janitor()?;
    // The timer is made inside the runtime: a timeout built outside it has no clock.
    let r =
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), janitor.reap()).await });
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
    if janitor.outlives_owner() {
        match cluster_sim_core::watchdog::start_for(&choice) {
            Ok(()) | Err(cluster_sim_core::watchdog::WatchdogError::NotEnabled) => {}
            Err(e) => eprintln!("warning: {e}; a killed run's clusters wait for the next run"),
        }
    }
    Some(backend)
}

/// The command that reruns one test of this binary: `cargo test --test <target> --`, or
/// `cargo run --example <name> --` for a suite built as an example.
pub(crate) fn rerun_prefix() -> String {
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
