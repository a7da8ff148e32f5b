//! Writes a finished attempt up: keeps or removes its artifacts (per `CLUSTER_SIM_KEEP`) and
//! makes its case, with the failure text, rerun command and attachments, for the reporters
//! (`attempts.rs` combines the attempts of a retried test and hands the result over).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::artifacts::{self, TestLog};
use crate::body::Outcome;
use crate::def::{component_and_class, TestDef};
use cluster_sim_report::{model::unix_ms, Attempt, Status};

use crate::junit::{CaseRecord, CaseStatus};
use crate::runner::RunCtx;
use crate::trial::TrialState;
use cluster_sim_core::fault::SEED_VAR;

/// The replay hint as a line of the failure text, or nothing.
fn replay_line(replay: &str) -> String {
    if replay.is_empty() {
        String::new()
    } else {
        format!("\n  {replay}")
    }
}

/// One attempt, written up.
pub(crate) struct Written {
    /// The failure text, if it failed.
    pub(crate) failed: Option<String>,
    /// Its JUnit case.
    pub(crate) case: CaseRecord,
    /// Its record for the HTML report.
    pub(crate) attempt: Attempt,
}

/// Writes the attempt's artifacts and makes its report case.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are the trial's own"
)]
pub(crate) fn write_up(
    ctx: &RunCtx,
    def: &'static TestDef,
    name: &str,
    started: Instant,
    test_dir: &Path,
    log: &TestLog,
    state: &TrialState,
    outcome: Outcome,
) -> Written {
    let passed = outcome.passed();
    let rerun = format!("{} {name} --exact", ctx.rerun_prefix);
    ctx.reporters.emit(&crate::events::Event::AttemptEnded {
        log,
        summary: &match &outcome {
            Outcome::Passed => format!("passed in {:.2?}", started.elapsed()),
            Outcome::Failure { message, .. } => format!("FAILED: {message}"),
            Outcome::Error { message, .. } => format!("ERROR: {message}"),
        },
    });
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
        let trace = state
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .filter(|t| t.is_file());
        match trace {
            // A walk's trace stays: it is how the walk is compared with its replay.
            Some(trace) => {
                for entry in std::fs::read_dir(test_dir).into_iter().flatten().flatten() {
                    let p = entry.path();
                    if p != trace {
                        let _ = if p.is_dir() {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                    }
                }
                attachments.push(std::path::absolute(&trace).unwrap_or(trace));
            }
            None => {
                if test_dir.exists() {
                    let _ = std::fs::remove_dir_all(test_dir);
                }
            }
        }
    }
    let shown_dir = std::path::absolute(test_dir).unwrap_or(test_dir.to_path_buf());
    let seeds = state
        .seeds
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // A failure under a nemesis is only useful with its seed: say how to replay it.
    let replay = match seeds.as_slice() {
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
    let with_replay = |message: String| {
        if replay.is_empty() {
            message
        } else {
            format!("{message}; {replay}")
        }
    };
    let (component, classname) = component_and_class(name);
    let attempt_status = match &outcome {
        Outcome::Passed => Status::Passed,
        Outcome::Failure { .. } => Status::Failed,
        Outcome::Error { .. } => Status::Error,
    };
    let (status, failed) = match outcome {
        Outcome::Passed => (CaseStatus::Passed, None),
        Outcome::Failure {
            kind,
            message,
            detail,
        } => {
            let text = format!(
                "{detail}\n  at {}:{}\n  artifacts: {}\n  rerun: {rerun}{}",
                def.file,
                def.line,
                shown_dir.display(),
                replay_line(&replay)
            );
            (
                CaseStatus::Failure {
                    kind: kind.into(),
                    message: format!("{}; rerun: {rerun}", with_replay(message)),
                    detail: text.clone(),
                },
                Some(text),
            )
        }
        Outcome::Error { kind, message } => {
            let text = format!(
                "{message}\n  at {}:{}\n  artifacts: {}\n  rerun: {rerun}{}",
                def.file,
                def.line,
                shown_dir.display(),
                replay_line(&replay)
            );
            (
                CaseStatus::Error {
                    kind: kind.into(),
                    message: format!("{}; rerun: {rerun}", with_replay(message)),
                    detail: text.clone(),
                },
                Some(text),
            )
        }
    };
    let mut properties =
        std::mem::take(&mut *state.properties.lock().unwrap_or_else(|e| e.into_inner()));
    if !seeds.is_empty() {
        let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
        properties.push(("seed".into(), list.join(",")));
    }
    let (kind, message, detail) = match &status {
        CaseStatus::Failure {
            kind,
            message,
            detail,
        }
        | CaseStatus::Error {
            kind,
            message,
            detail,
        } => (
            Some(kind.clone()),
            Some(message.clone()),
            Some(detail.clone()),
        ),
        _ => (None, None, None),
    };
    let duration = state
        .duration
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_else(|| started.elapsed());
    let attempt = Attempt {
        number: 1,
        status: attempt_status,
        kind,
        message,
        detail,
        started_ms: unix_ms(std::time::SystemTime::now() - duration),
        duration_ms: duration.as_millis() as u64,
        dir: keep
            .then(|| test_dir.strip_prefix(&ctx.run_dir).ok())
            .flatten()
            .map(|d| d.display().to_string()),
        events: log.events(),
        dropped_events: 0,
    };
    Written {
        case: CaseRecord {
            name: name.to_string(),
            component,
            classname,
            duration,
            status,
            output: log.text(),
            attachments,
            properties,
            flush_now: def.needs_cluster() || failed.is_some(),
            reruns: Vec::new(),
        },
        failed,
        attempt,
    }
}
