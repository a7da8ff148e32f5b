//! What an attempt leaves on disk: its artifacts kept or cleared as `CLUSTER_SIM_KEEP` says
//! (a walk's `trace.json` stays either way: it is how the walk is compared with its replay),
//! and the files its report attaches.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::ctx::RunCtx;
use crate::artifacts::{self, TestLog};

/// What an attempt kept.
pub(crate) struct Retained {
    /// The files to attach to its report, absolute.
    pub(crate) attachments: Vec<PathBuf>,
    /// Its directory relative to the run's, when its artifacts were kept.
    pub(crate) dir: Option<String>,
}

/// Keeps the attempt's artifacts in `test_dir` (its log written out) or clears them, as the
/// settings say for an attempt that `passed` or not; `trace` is a walk's trace file.
pub(crate) fn retain(
    ctx: &RunCtx,
    test_dir: &Path,
    log: &TestLog,
    trace: Option<PathBuf>,
    passed: bool,
) -> Retained {
    if ctx.settings.keep.keeps(passed) {
        let log_path = test_dir.join("test.log");
        if let Err(e) = log.persist(&log_path) {
            eprintln!("warning: cannot write {}: {e}", log_path.display());
        }
        log.close();
        ctx.kept_any.store(true, Ordering::SeqCst);
        return Retained {
            attachments: log_first(test_dir, artifacts::files_under(test_dir))
                .into_iter()
                .map(|p| std::path::absolute(&p).unwrap_or(p))
                .collect(),
            dir: test_dir
                .strip_prefix(&ctx.run_dir)
                .ok()
                .map(|d| d.display().to_string()),
        };
    }
    log.close();
    let mut attachments = Vec::new();
    match trace.filter(|t| t.is_file()) {
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
    Retained {
        attachments,
        dir: None,
    }
}

/// The attempt's own `test.log` first, the rest in their order: GitLab links only a failed
/// case's first attachment, and the log is where a failure is read from.
fn log_first(test_dir: &Path, mut files: Vec<PathBuf>) -> Vec<PathBuf> {
    let log = test_dir.join("test.log");
    if let Some(i) = files.iter().position(|f| *f == log) {
        let log = files.remove(i);
        files.insert(0, log);
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempts_log_comes_first() {
        let d = Path::new("/r/t");
        let files = vec![
            d.join("attempt-2/test.log"),
            d.join("nodes/n1/service.log"),
            d.join("test.log"),
        ];
        assert_eq!(
            log_first(d, files),
            vec![
                d.join("test.log"),
                d.join("attempt-2/test.log"),
                d.join("nodes/n1/service.log"),
            ]
        );
    }
}
