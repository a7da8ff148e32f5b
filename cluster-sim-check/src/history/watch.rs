//! `Watch`: judging a history while the test runs, and stopping it at the first anomaly. A
//! background task takes the records the [`Recorder`] gained, asks the checker for its bare
//! verdict on everything so far (operations still running count as `info`), and at the first
//! `invalid` stops the recorder: the workers of [`Workers`](crate::workload::Workers) and a
//! nemesis that records into it stop too, so the cluster still shows the state that lied.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{complete, CheckError, CheckReport, Checker, Op, Recorder};

/// How often a watch judges the history by default.
const EVERY: Duration = Duration::from_millis(100);

/// Where a [`Watch`] found the history invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// How many records the history held: the first prefix found invalid.
    pub records: usize,
    /// The time of that prefix's last record (nanoseconds since the history began): the
    /// anomaly was recorded by then.
    pub at: u64,
    /// When the watch stopped the history (nanoseconds since the history began).
    pub stopped: u64,
}

/// A checker judging a history as it is recorded; [`Watch::finish`] gives the verdict on the
/// whole history. At the first anomaly it stops the recorder ([`Recorder::stop`]), which stops
/// the [`Workers`](crate::workload::Workers) recording into it and a nemesis that records there
/// (it leaves its fault in force). The test then fails with the counterexample, and under
/// `CLUSTER_SIM_KEEP_CLUSTER=on-failure` its cluster is kept as it was when it lied.
///
/// Only a checker whose verdict on a prefix holds for the whole history can watch
/// ([`Checker::judges_prefixes`]: register, counter, unique-ids, list-append, rw-register).
///
/// ```no_run
/// use cluster_sim_check::history::{Recorder, Register, Watch};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let rec = Recorder::new();
/// let watch = Watch::start(Register, &rec)?;
/// // ... clients record into `rec` until their deadline, or until the watch stops them ...
/// let report = watch.finish().await?; // the whole history, as `history::check` judges it
/// assert!(report.valid(), "{report}");
/// # Ok(()) }
/// ```
pub struct Watch {
    rec: Recorder,
    checker: Arc<dyn Checker>,
    found: Arc<Mutex<Option<Found>>>,
    task: tokio::task::JoinHandle<Result<(), CheckError>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("checker", &self.checker.name())
            .field("found", &self.found())
            .finish()
    }
}

impl Watch {
    /// Starts watching `rec` with `checker`, judging it every 100 ms. `Err` for a checker
    /// that can't judge a history before it ends (the set and the queue). Needs a tokio
    /// runtime (a `#[cluster_test]` has one).
    pub fn start(checker: impl Checker + 'static, rec: &Recorder) -> Result<Watch, CheckError> {
        Self::start_every(checker, rec, EVERY)
    }

    /// [`Watch::start`], judging every `every`. A check that takes long widens the interval to
    /// ten times its own duration, so the watch never takes more than a tenth of a core.
    pub fn start_every(
        checker: impl Checker + 'static,
        rec: &Recorder,
        every: Duration,
    ) -> Result<Watch, CheckError> {
        if !checker.judges_prefixes() {
            return Err(CheckError::Unfit(format!(
                "the {} model judges a history only once it has ended (its final read): \
                 check it after the run with history::check instead of watching it",
                checker.name()
            )));
        }
        let checker: Arc<dyn Checker> = Arc::new(checker);
        let found = Arc::new(Mutex::new(None));
        let task = tokio::spawn(watch(checker.clone(), rec.clone(), every, found.clone()));
        Ok(Watch {
            rec: rec.clone(),
            checker,
            found,
            task,
        })
    }

    /// Where the watch found the history invalid, if it has.
    pub fn found(&self) -> Option<Found> {
        self.found.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops watching and judges the whole history (with the checker's explanation of any
    /// anomaly: the counterexample). `Err` when the history can't be judged (an operation
    /// the model has no meaning for).
    pub async fn finish(mut self) -> Result<CheckReport, CheckError> {
        self.task.abort();
        if let Ok(Err(e)) = (&mut self.task).await {
            return Err(e);
        }
        let checker = self.checker.clone();
        let ops = self.rec.ops();
        tokio::task::spawn_blocking(move || checker.check(&complete(&ops)))
            .await
            .unwrap_or_else(|e| Err(CheckError::Unfit(format!("the checker panicked: {e}"))))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The watch's task: judge what is new every `every` (or ten times the last check's duration),
/// until the history is found invalid, stopped by someone else, or the task is aborted.
async fn watch(
    checker: Arc<dyn Checker>,
    rec: Recorder,
    every: Duration,
    found: Arc<Mutex<Option<Found>>>,
) -> Result<(), CheckError> {
    let mut ops: Vec<Op> = Vec::new();
    let mut judged = 0;
    let mut wait = every;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = rec.stopped() => return Ok(()),
        }
        ops.extend(rec.ops_from(ops.len()));
        if ops.len() == judged {
            continue;
        }
        let began = Instant::now();
        let c = checker.clone();
        // A check is CPU work: off the runtime's threads, so the clients it watches go on.
        let (back, verdict) = tokio::task::spawn_blocking(move || {
            let verdict = c.verdict(&complete(&ops));
            (ops, verdict)
        })
        .await
        .map_err(|e| CheckError::Unfit(format!("the checker panicked: {e}")))?;
        ops = back;
        wait = every.max(began.elapsed() * 10);
        match verdict {
            Ok(true) => judged = ops.len(),
            Ok(false) => {
                let at = ops.last().map_or(0, |o| o.time);
                let f = Found {
                    records: ops.len(),
                    at,
                    stopped: rec.now(),
                };
                *found.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
                rec.stop(format!(
                    "the history is not {} by its record {} ({:.3}s): stopped at the first anomaly",
                    checker.what(),
                    ops.len(),
                    at as f64 / 1e9
                ));
                return Ok(());
            }
            Err(e) => {
                rec.stop(format!("the history can't be judged: {e}"));
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Register, Set};
    use crate::workload::{Done, Invocation, Workers};
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn the_first_stale_read_stops_the_workers() {
        let rec = Recorder::new();
        let watch = Watch::start_every(Register, &rec, Duration::from_millis(10)).unwrap();
        // Worker 0 writes 1, 2, 3...; worker 1 reads a replica that stops following at 20.
        let (primary, replica) = (AtomicU64::new(0), AtomicU64::new(0));
        let ran = Workers::new(2)
            .duration(Duration::from_secs(60))
            .run(
                &rec,
                |d| match d.worker {
                    0 => Invocation::write(d.unique),
                    _ => Invocation::read(),
                },
                |call| {
                    let (primary, replica) = (&primary, &replica);
                    async move {
                        if let Some(v) = call.op.value.as_u64() {
                            primary.store(v, Ordering::SeqCst);
                            if v <= 20 {
                                replica.store(v, Ordering::SeqCst);
                            }
                            return Done::Ok;
                        }
                        match replica.load(Ordering::SeqCst) {
                            0 => Done::Returned(serde_json::Value::Null),
                            v => Done::Returned(v.into()),
                        }
                    }
                },
            )
            .await;
        let found = watch.found().expect("the watch found the stale read");
        let report = watch.finish().await.unwrap();
        assert!(!report.valid());
        assert!(
            ran.stopped.as_deref().unwrap().contains("not linearizable"),
            "{ran:?}"
        );
        // Nothing was invoked after the stop but what was already under way.
        let ops = rec.ops();
        let late = ops
            .iter()
            .filter(|o| o.kind == OpType::Invoke && o.time > found.stopped)
            .count();
        assert!(late <= 2, "{late} operations invoked after the stop");
    }

    #[tokio::test]
    async fn a_checker_that_needs_the_whole_history_cannot_watch() {
        let e = Watch::start(Set, &Recorder::new()).unwrap_err().to_string();
        assert!(
            e.starts_with("the set model judges a history only once it has ended"),
            "{e}"
        );
        assert!(Watch::start(
            crate::history::by_name("register").unwrap(),
            &Recorder::new()
        )
        .is_ok());
    }
}
