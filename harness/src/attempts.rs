//! A test's attempts: runs it once, and again on a fresh cluster while it fails and has
//! retries left (`retries = N` on the attribute, `CLUSTER_SIM_RETRIES`, or the file's
//! `retries`), then hands the combined result to the reporters. A test that failed and then
//! passed is flaky; one that failed every attempt fails.
//!
//! Attempt 1 keeps its artifacts in `<run>/<test>/`, attempt N in `<run>/<test>/attempt-N/`.

use std::path::PathBuf;
use std::sync::Arc;

use cluster_sim_report::{Status, TestRecord};
use libtest_mimic::Failed;

use crate::artifacts;
use crate::def::TestDef;
use crate::events::Event;
use crate::junit::{CaseStatus, Rerun};
use crate::runner::RunCtx;
use crate::trial::run_attempt;
use crate::writeup::Written;

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

fn rerun_of(w: &Written) -> Rerun {
    let (error, kind, message, detail) = match &w.case.status {
        CaseStatus::Error {
            kind,
            message,
            detail,
        } => (true, kind, message, detail),
        CaseStatus::Failure {
            kind,
            message,
            detail,
        } => (false, kind, message, detail),
        // Only failed attempts are retried.
        CaseStatus::Passed | CaseStatus::Skipped { .. } => {
            unreachable!("a rerun is a failed attempt")
        }
    };
    Rerun {
        error,
        kind: kind.clone(),
        message: format!("attempt {}: {message}", w.attempt.number),
        detail: detail.clone(),
        output: w.case.output.clone(),
    }
}

/// Runs every attempt the test gets and reports it; libtest-mimic's verdict on it.
pub(crate) fn run_trial(ctx: &Arc<RunCtx>, case: Arc<crate::plan::Case>) -> Result<(), Failed> {
    let def = case.def;
    let name = case.name.clone();
    let root = ctx.run_dir.join(artifacts::test_dir_name(&name));
    let tries = retries_of(ctx, def) + 1;
    let mut failed_attempts: Vec<Written> = Vec::new();
    let mut n = 1;
    let (last, gate) = loop {
        let (mut w, gate) = run_attempt(ctx, case.clone(), attempt_dir(&root, n));
        w.attempt.number = n;
        if w.failed.is_none() || n == tries {
            break (w, gate);
        }
        // Let an interrupt in between attempts: nothing of this test is running now.
        drop(gate);
        let why = match &w.case.status {
            CaseStatus::Failure { message, .. } | CaseStatus::Error { message, .. } => {
                message.lines().next().unwrap_or_default().to_string()
            }
            _ => String::new(),
        };
        ctx.reporters.emit(&Event::Retrying {
            name: &name,
            attempt: n,
            tries,
            why: &why,
        });
        failed_attempts.push(w);
        n += 1;
    };

    let flaky = last.failed.is_none() && !failed_attempts.is_empty();
    let mut case = last.case;
    // The test's time is its attempts' (each as its write-up measured it: a walk's excludes
    // its waits at barriers).
    case.duration += failed_attempts
        .iter()
        .map(|w| w.case.duration)
        .sum::<std::time::Duration>();
    case.reruns = failed_attempts.iter().map(rerun_of).collect();
    let mut attachments: Vec<PathBuf> = failed_attempts
        .iter()
        .flat_map(|w| w.case.attachments.iter().cloned())
        .collect();
    attachments.append(&mut case.attachments);
    attachments.dedup();
    case.attachments = attachments;
    if !failed_attempts.is_empty() {
        case.flush_now = true;
    }
    let mut failed = last.failed;
    if let (Some(text), true) = (&mut failed, tries > 1) {
        text.push_str(&format!("\n  all {tries} attempts failed"));
        if let CaseStatus::Failure { message, .. } | CaseStatus::Error { message, .. } =
            &mut case.status
        {
            *message = format!("all {tries} attempts failed; last: {message}");
        }
    }
    let status = match (&last.attempt.status, flaky) {
        (_, true) => Status::Flaky,
        (s, false) => *s,
    };
    let flaky = flaky.then_some((failed_attempts.len(), n, tries));
    let mut attempts: Vec<_> = failed_attempts.into_iter().map(|w| w.attempt).collect();
    attempts.push(last.attempt);
    let record = TestRecord {
        name: name.clone(),
        status,
        duration_ms: case.duration.as_millis() as u64,
        location: format!("{}:{}", def.file, def.line),
        rerun: Some(format!("{} {name} --exact", ctx.rerun_prefix)),
        skip_reason: None,
        properties: case.properties.clone(),
        attempts,
    };
    ctx.reporters.emit(&Event::TestEnded {
        case: &case,
        record: &record,
        flaky,
    });
    drop(gate);
    match failed {
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
