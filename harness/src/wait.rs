//! `wait_until`: poll a condition until it holds or a deadline passes, instead of sleeping.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// First pause between two checks; it grows to [`MAX_INTERVAL`].
const FIRST_INTERVAL: Duration = Duration::from_millis(100);
/// Longest pause between two checks.
const MAX_INTERVAL: Duration = Duration::from_secs(1);

/// A condition did not hold before its deadline.
#[derive(Debug, thiserror::Error)]
#[error("condition not met within {}{}", humantime::format_duration(*.timeout), last.as_ref().map(|l| format!("; last error: {l}")).unwrap_or_default())]
pub struct WaitError {
    /// The deadline.
    pub timeout: Duration,
    /// The last error the condition returned, if it returned one.
    pub last: Option<String>,
}

/// What a condition's check may return: `bool`, `Option<T>` (holds when `Some`), or
/// `Result<T, E>` (holds when `Ok`; the last error is quoted if the deadline passes).
pub trait Outcome {
    /// What `wait_until` returns once the condition holds.
    type Value;
    /// `Ok(value)` when the condition holds; else `Err` with the error to quote, if any.
    fn into_outcome(self) -> Result<Self::Value, Option<String>>;
}

impl Outcome for bool {
    type Value = ();
    fn into_outcome(self) -> Result<(), Option<String>> {
        if self {
            Ok(())
        } else {
            Err(None)
        }
    }
}

impl<T> Outcome for Option<T> {
    type Value = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: Display> Outcome for Result<T, E> {
    type Value = T;
    fn into_outcome(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(format!("{e:#}")))
    }
}

/// Calls `check` until it reports success or `timeout` passes, pausing a little longer after
/// each miss (100 ms up to 1 s). The last check starts before the deadline.
///
/// ```no_run
/// # use harness::prelude::*;
/// # use std::time::Duration;
/// # async fn demo(n1: Node) -> TestResult {
/// let leader = wait_until(Duration::from_secs(20), || async {
///     let out = n1.exec("etcdctl endpoint status -w json").await?.check()?;
///     anyhow::Ok(out.stdout)
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
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left.max(Duration::from_millis(1)), check()).await {
            Ok(o) => match o.into_outcome() {
                Ok(v) => return Ok(v),
                Err(Some(e)) => last = Some(e),
                Err(None) => {}
            },
            Err(_) => last = Some("the check itself ran past the deadline".into()),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError { timeout, last });
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
    async fn returns_once_the_condition_holds() {
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
    async fn times_out_quoting_the_last_error() {
        let e = wait_until(Duration::from_millis(250), || async {
            Err::<(), _>("no leader yet")
        })
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "condition not met within 250ms; last error: no leader yet"
        );
    }
}
