//! `wait_until`: poll a condition until it holds or a deadline passes, instead of sleeping.
//!
//! The check's return type says what "not yet" is, and only these types are accepted, so a
//! check can't pass by accident:
//!
//! | the check returns | holds when | not yet | error (quoted at the deadline) |
//! |---|---|---|---|
//! | `bool` | `true` | `false` | - |
//! | `Option<T>` | `Some(v)` (returns `v`) | `None` | - |
//! | `Result<(), E>` | `Ok(())` | - | `Err(e)` |
//! | `Result<bool, E>` | `Ok(true)` | `Ok(false)` | `Err(e)` |
//! | `Result<Option<T>, E>` | `Ok(Some(v))` (returns `v`) | `Ok(None)` | `Err(e)` |
//!
//! A general `Result<T, E>` is refused at compile time: with it, `Ok(false)` or `Ok(None)`
//! would read as success.
//!
//! ```compile_fail
//! # use harness::prelude::*;
//! # async fn demo() {
//! // error: `wait_until`'s check returns `Result<u32, anyhow::Error>`, which does not say what
//! // "not yet" is. Return `Ok(Some(1))` instead.
//! let _ = wait_until(Duration::from_secs(1), || async { anyhow::Ok(1u32) }).await;
//! # }
//! ```

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// First pause between two checks; it grows to [`MAX_INTERVAL`].
const FIRST_INTERVAL: Duration = Duration::from_millis(100);
/// Longest pause between two checks.
const MAX_INTERVAL: Duration = Duration::from_secs(1);
/// Least time a try gets, even when the deadline is nearer: a check started just before the
/// deadline still runs long enough to say why it fails.
const MIN_TRY: Duration = Duration::from_secs(1);

/// A condition did not hold before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct WaitError {
    /// The deadline.
    pub timeout: Duration,
    /// How many times the check ran.
    pub tries: u32,
    /// The last error a check returned (command, node, exit code, output...), if any did.
    pub last: Option<String>,
    /// Whether a try after that error said "not yet" (so the error is from an earlier try).
    pub last_is_older: bool,
    /// When the final try was still running at its bound and was cut: how long it had run.
    pub final_try_cut: Option<Duration>,
}

impl WaitError {
    fn describe(&self) -> String {
        let mut s = format!(
            "condition not met within {} ({} {})",
            humantime::format_duration(self.timeout),
            self.tries,
            if self.tries == 1 { "try" } else { "tries" }
        );
        if let Some(last) = &self.last {
            if self.last_is_older {
                s.push_str(&format!("; last error (from an earlier try): {last}"));
            } else {
                s.push_str(&format!("; last error: {last}"));
            }
        }
        if let Some(cut) = self.final_try_cut {
            s.push_str(&format!(
                "; the final try was still running after {} and was cut",
                humantime::format_duration(Duration::from_millis(cut.as_millis() as u64))
            ));
        }
        s
    }
}

/// What one try of a check found.
#[derive(Debug)]
pub enum Check<T> {
    /// The condition holds; `wait_until` returns the value.
    Holds(T),
    /// Not yet; try again.
    NotYet,
    /// Not yet, with an error worth quoting if the deadline passes.
    Failed(String),
}

/// What a check may return: `bool`, `Option<T>`, `Result<(), E>`, `Result<bool, E>` or
/// `Result<Option<T>, E>` (see the [module docs](self) for what each means).
#[diagnostic::on_unimplemented(
    message = "`wait_until`'s check returns `{Self}`, which does not say what \"not yet\" is",
    label = "the check's future resolves to `{Self}`",
    note = "return `bool` or `Result<bool, E>` (false = not yet), `Option<T>` or \
            `Result<Option<T>, E>` (None = not yet; Some(v) is returned), or `Result<(), E>`",
    note = "to return a value once the check passes, wrap it: `Ok(Some(value))`; to wait for \
            a command, end the check with `.check().map(|_| ())` or `.map(|o| o.success())`"
)]
pub trait Outcome {
    /// What `wait_until` returns once the condition holds.
    type Value;
    /// What this try found.
    fn into_check(self) -> Check<Self::Value>;
}

impl Outcome for bool {
    type Value = ();
    fn into_check(self) -> Check<()> {
        if self {
            Check::Holds(())
        } else {
            Check::NotYet
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_check(self) -> Check<T> {
        match self {
            Some(v) => Check::Holds(v),
            None => Check::NotYet,
        }
    }
}

fn failed<T, E: Display>(e: E) -> Check<T> {
    Check::Failed(format!("{e:#}"))
}

impl<E: Display> Outcome for Result<(), E> {
    type Value = ();
    fn into_check(self) -> Check<()> {
        match self {
            Ok(()) => Check::Holds(()),
            Err(e) => failed(e),
        }
    }
}

impl<E: Display> Outcome for Result<bool, E> {
    type Value = ();
    fn into_check(self) -> Check<()> {
        match self {
            Ok(b) => b.into_check(),
            Err(e) => failed(e),
        }
    }
}

impl<T, E: Display> Outcome for Result<Option<T>, E> {
    type Value = T;
    fn into_check(self) -> Check<T> {
        match self {
            Ok(o) => o.into_check(),
            Err(e) => failed(e),
        }
    }
}

/// Calls `check` until it reports success or `timeout` passes, pausing a little longer after
/// each miss (100 ms up to 1 s). What the check returns says what "not yet" is (see the
/// [module docs](self)).
///
/// Every try runs to its end, or to the later of the deadline and a grace (twice the longest
/// try so far, at least 1 s): a try started just before the deadline still gets the time to say
/// why it fails, so the error quoted is the check's own (command, node, exit code, output).
///
/// ```no_run
/// # use harness::prelude::*;
/// # use std::time::Duration;
/// # async fn demo(n1: Node) -> TestResult {
/// // Result<Option<T>, E>: Ok(None) is "not yet", Ok(Some(v)) returns v.
/// let status = wait_until(Duration::from_secs(20), || async {
///     let out = n1.exec("etcdctl endpoint status -w json").await?.check()?;
///     let text = out.out().into_owned();
///     anyhow::Ok(text.contains("leader").then_some(text))
/// })
/// .await?;
/// // Result<(), E>: holds once the command exits 0.
/// wait_until(Duration::from_secs(20), || async {
///     n1.exec("etcdctl endpoint health").await?.check().map(|_| ())
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn wait_until<F, Fut, O>(timeout: Duration, mut check: F) -> Result<O::Value, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
    O: Outcome,
{
    let deadline = Instant::now() + timeout;
    let mut interval = FIRST_INTERVAL;
    let mut last = None;
    let mut last_is_older;
    let mut longest = Duration::ZERO;
    let mut tries = 0u32;
    loop {
        let started = Instant::now();
        let left = deadline.saturating_duration_since(started);
        let grace = (longest * 2).clamp(MIN_TRY, timeout.max(MIN_TRY));
        tries += 1;
        match tokio::time::timeout(left.max(grace), check()).await {
            Ok(o) => {
                longest = longest.max(started.elapsed());
                match o.into_check() {
                    Check::Holds(v) => return Ok(v),
                    Check::Failed(e) => {
                        last = Some(e);
                        last_is_older = false;
                    }
                    Check::NotYet => last_is_older = last.is_some(),
                }
            }
            Err(_) => {
                return Err(WaitError {
                    timeout,
                    tries,
                    last,
                    last_is_older: false,
                    final_try_cut: Some(started.elapsed()),
                })
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError {
                timeout,
                tries,
                last,
                last_is_older,
                final_try_cut: None,
            });
        }
        tokio::time::sleep(interval.min(deadline - now)).await;
        interval = (interval * 3 / 2).min(MAX_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn option_returns_the_value_once_some() {
        let n = AtomicU32::new(0);
        let v = wait_until(Duration::from_secs(5), || async {
            (n.fetch_add(1, Ordering::SeqCst) >= 2).then_some("done")
        })
        .await
        .unwrap();
        assert_eq!(v, "done");
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn bool_false_is_not_yet() {
        let e = wait_until(Duration::from_millis(200), || async { false })
            .await
            .unwrap_err();
        assert!(e.last.is_none());
        assert!(e.tries >= 2, "{e}");
        let n = AtomicU32::new(0);
        wait_until(Duration::from_secs(5), || async {
            n.fetch_add(1, Ordering::SeqCst) == 1
        })
        .await
        .unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn result_bool_ok_false_is_not_yet() {
        let e = wait_until(Duration::from_millis(200), || async {
            Ok::<bool, String>(false)
        })
        .await
        .unwrap_err();
        assert!(
            e.to_string().starts_with("condition not met within 200ms"),
            "{e}"
        );
        let n = AtomicU32::new(0);
        wait_until(Duration::from_secs(5), || async {
            Ok::<_, String>(n.fetch_add(1, Ordering::SeqCst) == 2)
        })
        .await
        .unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn result_option_ok_none_is_not_yet() {
        let e = wait_until(Duration::from_millis(200), || async {
            Ok::<Option<u8>, String>(None)
        })
        .await
        .unwrap_err();
        assert!(e.last.is_none(), "{e}");
        let n = AtomicU32::new(0);
        let v = wait_until(Duration::from_secs(5), || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>((i == 1).then_some(i))
        })
        .await
        .unwrap();
        assert_eq!(v, 1);
    }

    #[tokio::test]
    async fn result_unit_quotes_the_last_error() {
        let e = wait_until(Duration::from_millis(250), || async {
            Err::<(), _>("no leader yet")
        })
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("condition not met within 250ms ("),
            "{e}"
        );
        assert!(
            e.to_string().ends_with("; last error: no leader yet"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_error_followed_by_not_yet_is_marked_older() {
        let n = AtomicU32::new(0);
        let e = wait_until(Duration::from_millis(300), || async {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                Err("connection refused")
            } else {
                Ok(false)
            }
        })
        .await
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("last error (from an earlier try): connection refused"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_last_try_gets_its_full_time() {
        // Each try takes 300 ms; the deadline passes while the second one runs. It must still
        // finish and report its own error, not "ran past the deadline".
        let n = AtomicU32::new(0);
        let e = wait_until(Duration::from_millis(400), || async {
            let i = n.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            Err::<(), _>(format!("node n1: `probe` exited 7 (try {i})"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.final_try_cut, None, "{e}");
        let last = e.last.clone().unwrap();
        assert!(last.starts_with("node n1: `probe` exited 7"), "{e}");
        assert_eq!(
            last,
            format!("node n1: `probe` exited 7 (try {})", e.tries - 1)
        );
    }

    #[tokio::test]
    async fn a_try_that_hangs_is_cut_and_the_real_error_kept() {
        let n = AtomicU32::new(0);
        let e = wait_until(Duration::from_millis(300), || async {
            if n.fetch_add(1, Ordering::SeqCst) == 0 {
                Err::<(), _>("exited 3: stderr: boom")
            } else {
                std::future::pending().await
            }
        })
        .await
        .unwrap_err();
        assert_eq!(e.last.as_deref(), Some("exited 3: stderr: boom"));
        assert!(e.final_try_cut.is_some());
        assert!(
            e.to_string().contains("the final try was still running"),
            "{e}"
        );
    }
}
