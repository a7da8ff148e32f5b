//! A test's attempts: runs it once, and again on a fresh cluster while it fails and has
//! retries left (`retries = N` on the attribute, `CLUSTER_SIM_RETRIES`, or the file's
//! `retries`), then hands the test's record, every attempt in it, to the reporters. A test that
//! failed and then passed is flaky; one that failed every attempt fails.
//!
//! Attempt 1 keeps its artifacts in `<run>/<test>/`, attempt N in `<run>/<test>/attempt-N/`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::libtest::Failed;

use super::attempt::{run_attempt, SharedClusters};
use super::ctx::RunCtx;
use crate::artifacts;
use crate::outcome::TestFinished;
use crate::plan::{Case, TestDef};
use crate::report::RunEvent;

/// How many more attempts a failing test gets: the variable overrides the attribute, which
/// overrides the settings file.
pub(crate) fn retries_of(ctx: &RunCtx, def: &TestDef) -> u32 {
    // A walk runs once, with its definition's other walks: a retry would have no cluster of
    // its own to run on (replay it alone with `--exact` instead).
    if def.is_walks() {
        0
    } else if ctx.settings.retries_forced {
        ctx.settings.retries
    } else {
        def.retries.unwrap_or(ctx.settings.retries)
    }
}

/// The directory of attempt `n` of a test whose first attempt uses `root`.
pub(crate) fn attempt_dir(root: &std::path::Path, n: u32) -> PathBuf {
    if n == 1 {
        root.to_path_buf()
    } else {
        root.join(format!("attempt-{n}"))
    }
}

/// Runs every attempt the test gets and reports it; the runner's verdict on it.
pub(crate) fn run_trial(
    ctx: &Arc<RunCtx>,
    lasting: &Arc<SharedClusters>,
    case: Arc<Case>,
) -> Result<(), Failed> {
    let def = case.def;
    let name = case.name.clone();
    let root = ctx.run_dir.join(artifacts::test_dir_name(&name));
    let tries = retries_of(ctx, def) + 1;
    let mut attempts = Vec::new();
    let gate = loop {
        let n = attempts.len() as u32 + 1;
        let (attempt, gate) = run_attempt(ctx, lasting, case.clone(), n, attempt_dir(&root, n));
        let why = attempt
            .status
            .failure()
            .map(|(_, message, _)| message.lines().next().unwrap_or_default().to_string());
        attempts.push(attempt);
        let Some(why) = why.filter(|_| n < tries) else {
            break gate;
        };
        // Let an interrupt in between attempts: nothing of this test is running now.
        drop(gate);
        ctx.reporters.emit(&RunEvent::Retrying {
            name: &name,
            attempt: n,
            tries,
            why: &why,
        });
    };
    let test = TestFinished {
        rerun: Some(ctx.rerun_command(&name)),
        name,
        location: def.location(),
        on_cluster: def.needs_cluster(),
        tries,
        attempts,
    };
    ctx.reporters.emit(&RunEvent::TestEnded { test: &test });
    drop(gate);
    match test.failure_text() {
        None => Ok(()),
        Some(text) => Err(text.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_after_the_first_nest_in_its_directory() {
        let root = std::path::Path::new("/r/t");
        assert_eq!(attempt_dir(root, 1), root);
        assert_eq!(attempt_dir(root, 3), root.join("attempt-3"));
    }
}
