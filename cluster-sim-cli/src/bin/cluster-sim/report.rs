//! `cluster-sim report [RUN_DIR]`: renders a run's HTML report again from the records it left in
//! its run directory. Needs no engine: reporters never touch a cluster.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cluster_sim::report::model::RUN_FILE;

/// The runs directory: `$CARGO_TARGET_DIR/cluster-sim/runs`, else `target/cluster-sim/runs` in
/// the nearest ancestor of the current directory that has one.
fn runs_dir() -> Option<PathBuf> {
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        return Some(PathBuf::from(t).join("cluster-sim/runs"));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|d| d.join("target/cluster-sim/runs"))
        .find(|d| d.is_dir())
}

/// The newest run under `runs` (by the modification time of its `run.json`).
fn newest_run(runs: &Path) -> Option<PathBuf> {
    std::fs::read_dir(runs)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let t = e.path().join(RUN_FILE).metadata().ok()?.modified().ok()?;
            Some((t, e.path()))
        })
        .max()
        .map(|(_, p)| p)
}

/// Renders the report of `run_dir` (default: the newest run) to `out` (default:
/// `<run dir>/report.html`); prints where it went.
pub fn report(run_dir: Option<&Path>, out: Option<&Path>) -> ExitCode {
    let run_dir = match run_dir {
        Some(d) => d.to_path_buf(),
        None => {
            let Some(runs) = runs_dir() else {
                eprintln!(
                    "cluster-sim: error: no target/cluster-sim/runs here or above; name a run directory"
                );
                return ExitCode::from(2);
            };
            match newest_run(&runs) {
                Some(d) => d,
                None => {
                    eprintln!("cluster-sim: error: {}: no runs", runs.display());
                    return ExitCode::from(2);
                }
            }
        }
    };
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run_dir.join("report.html"));
    match cluster_sim::report::render_run_dir(&run_dir, &out) {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cluster-sim: error: {e}");
            ExitCode::from(2)
        }
    }
}
