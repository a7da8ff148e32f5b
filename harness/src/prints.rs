//! Captures a test's own `println!`/`eprintln!` into its `test.log` and JUnit case, as libtest
//! captures output.
//!
//! Why macros and not the file descriptors: tests run in parallel on shared tokio worker
//! threads, so redirecting fd 1/2 (process-wide) would mix tests, and std's own capture
//! (`set_output_capture`) is unstable. Why not a glob import in the prelude: a glob-imported
//! `println` is ambiguous with std's (E0659), so every test file that prints would stop
//! compiling. Instead `#[cluster_test]` rewrites `println!`, `eprintln!`, `print!` and
//! `eprint!` written in the test's own body to these macros, which write to the running test's
//! log (a task-local set around the body); with `--nocapture` they also reach the real
//! stdout/stderr. Helpers opt in with `use harness::println;`. Output from tasks the test spawns
//! itself (`tokio::spawn`), from other threads or written with `std::io::stdout()` directly is
//! not captured (there is no test to give it to) and goes to the real stream, as before.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::artifacts::TestLog;

tokio::task_local! {
    static CAPTURE: TestLog;
    static TEST_DIR: std::path::PathBuf;
}

/// The running test's artifact directory (`target/cluster-sim/runs/<run>/<test>/`), created on
/// first use: files a test writes there (a `history.jsonl`, say) are kept and attached to its
/// JUnit case as `CLUSTER_SIM_KEEP` says. `None` outside a test body (or in tasks it spawned).
pub fn test_dir() -> Option<std::path::PathBuf> {
    let dir = TEST_DIR.try_with(|d| d.clone()).ok()?;
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}

/// Set by `--nocapture`: captured output also goes to the real stream.
static PASS_THROUGH: AtomicBool = AtomicBool::new(false);

/// Which stream a test wrote to.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// `print!`/`println!`.
    Stdout,
    /// `eprint!`/`eprintln!`.
    Stderr,
}

pub(crate) fn set_pass_through(on: bool) {
    PASS_THROUGH.store(on, Ordering::Relaxed);
}

/// Runs `fut` with its prints captured into `log`.
pub(crate) fn scope<F: Future>(log: TestLog, fut: F) -> impl Future<Output = F::Output> {
    CAPTURE.scope(log, fut)
}

/// Runs `fut` with `dir` as its [`test_dir`].
pub(crate) fn with_dir<F: Future>(
    dir: std::path::PathBuf,
    fut: F,
) -> impl Future<Output = F::Output> {
    TEST_DIR.scope(dir, fut)
}

/// What the macros call: one line of the log per line written (`[stdout]` or `[stderr]`).
#[doc(hidden)]
pub fn write(stream: Stream, text: String) {
    let captured = CAPTURE
        .try_with(|log| {
            let kind = match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            };
            let body = text.strip_suffix('\n').unwrap_or(&text);
            for line in body.split('\n') {
                log.note(kind, line);
            }
        })
        .is_ok();
    if !captured || PASS_THROUGH.load(Ordering::Relaxed) {
        // As std's macros do, but a closed stream is not worth a panic in a test.
        let _ = match stream {
            Stream::Stdout => std::io::stdout().lock().write_all(text.as_bytes()),
            Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
        };
    }
}

/// `println!` for tests: into the running test's log (see [`crate::prints`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __capture_println {
    () => {
        $crate::prints::write($crate::prints::Stream::Stdout, ::std::string::String::from("\n"))
    };
    ($($arg:tt)*) => {
        $crate::prints::write(
            $crate::prints::Stream::Stdout,
            ::std::format!("{}\n", ::std::format_args!($($arg)*)),
        )
    };
}

/// `eprintln!` for tests: into the running test's log (see [`crate::prints`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __capture_eprintln {
    () => {
        $crate::prints::write($crate::prints::Stream::Stderr, ::std::string::String::from("\n"))
    };
    ($($arg:tt)*) => {
        $crate::prints::write(
            $crate::prints::Stream::Stderr,
            ::std::format!("{}\n", ::std::format_args!($($arg)*)),
        )
    };
}

/// `print!` for tests: into the running test's log (see [`crate::prints`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __capture_print {
    ($($arg:tt)*) => {
        $crate::prints::write($crate::prints::Stream::Stdout, ::std::format!($($arg)*))
    };
}

/// `eprint!` for tests: into the running test's log (see [`crate::prints`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __capture_eprint {
    ($($arg:tt)*) => {
        $crate::prints::write($crate::prints::Stream::Stderr, ::std::format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prints_go_to_the_scoped_log() {
        let log = TestLog::new();
        scope(log.clone(), async {
            crate::__capture_println!("hello {}", 42);
            crate::__capture_eprintln!("two\nlines");
            crate::__capture_println!();
        })
        .await;
        let text = log.text();
        assert!(text.contains("[stdout] hello 42\n"), "{text}");
        assert!(text.contains("[stderr] two\n"), "{text}");
        assert!(text.contains("[stderr] lines\n"), "{text}");
        assert_eq!(text.lines().count(), 4, "{text}");
    }
}
