//! The worker loop for any client: n workers draw operations from a seeded generator, perform
//! them with the user's own client (an async closure), and record each one in a [`Recorder`]
//! as Jepsen's clients do: `invoke`, then `ok`, `fail` or `info`. An operation whose outcome is
//! unknown retires its process, and the worker goes on as a new one (process `p + n`), since
//! the old operation may still take effect. The loop ends at its deadline, or at once when the
//! history is stopped ([`Recorder::stop`]: a [`Watch`](crate::history::Watch) found an anomaly).

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::history::Recorder;
use cluster_sim_core::rng::SplitMix64;

/// One operation: the function, its key and its argument, as the history records them.
///
/// ```
/// use cluster_sim_check::workload::Invocation;
/// use serde_json::json;
///
/// let op = Invocation::write(3).key("k1");
/// assert_eq!((op.f.as_str(), op.key.as_deref(), &op.value), ("write", Some("k1"), &json!(3)));
/// assert_eq!(Invocation::cas(1, 2).value, json!([1, 2]));
/// assert_eq!(Invocation::new("add", 7).f, "add");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The function: `read`, `write`, `cas` for the register; `add`, `txn`... for the others.
    pub f: String,
    /// Which register or set (`None` for a history of one).
    pub key: Option<String>,
    /// The argument (`null` for a read).
    pub value: Value,
}

impl Invocation {
    /// `f` with argument `value`, on no key.
    pub fn new(f: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            f: f.into(),
            key: None,
            value: value.into(),
        }
    }

    /// A register read.
    pub fn read() -> Self {
        Self::new("read", Value::Null)
    }

    /// A register write of `value`.
    pub fn write(value: impl Into<Value>) -> Self {
        Self::new("write", value)
    }

    /// A register compare-and-set from `old` to `new`.
    pub fn cas(old: impl Into<Value>, new: impl Into<Value>) -> Self {
        Self::new("cas", Value::Array(vec![old.into(), new.into()]))
    }

    /// The same operation on `key`.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// How an operation ended, as the perform closure tells the loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    /// It took effect, with the invocation's own value (a write, a cas, an add).
    Ok,
    /// It took effect and returned this value (what a read read).
    Returned(Value),
    /// It is known not to have taken effect (refused before it was sent, a cas whose compare
    /// failed, any failed read): why, for people.
    Fail(String),
    /// Its outcome is unknown (a timeout, a connection lost after the request was sent): why,
    /// for people. The worker goes on as a new process.
    Info(String),
}

/// What the generator is given to draw the next operation.
#[derive(Debug)]
pub struct Draw<'a> {
    /// The worker's own generator, seeded from [`Workers::seed`] and the worker's number, so a
    /// seed replays the same operations.
    pub rng: &'a mut SplitMix64,
    /// The worker (`0..n`).
    pub worker: usize,
    /// The process the operation will be recorded under.
    pub process: u64,
    /// A number no other draw of this run gets (from 1): unique values for writes, which make
    /// a stale read unmistakable.
    pub unique: u64,
}

/// The operation to perform, given to the perform closure.
#[derive(Debug, Clone)]
pub struct Call {
    /// The worker (`0..n`): pick its node or its connection with it.
    pub worker: usize,
    /// The process it is recorded under.
    pub process: u64,
    /// What to do.
    pub op: Invocation,
}

/// What a run did, for a test to check that it tested something.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    /// Operations invoked.
    pub invoked: usize,
    /// Operations that took effect.
    pub ok: usize,
    /// Operations known not to have taken effect.
    pub failed: usize,
    /// Operations whose outcome is unknown (timed out, abandoned at a stop).
    pub unknown: usize,
    /// Why the history was stopped, if the run ended that way.
    pub stopped: Option<String>,
}

/// The worker loop: `n` workers for a duration, each performing the operations a generator
/// draws with the user's own client and recording them. Built with setters; [`Workers::run`]
/// runs it. The defaults: 5 workers for 30 s, 3 s per operation, seed 1, no stagger.
///
/// ```no_run
/// use cluster_sim_check::history::{self, Recorder, Register, Watch};
/// use cluster_sim_check::workload::{Done, Invocation, Workers};
/// use std::time::Duration;
///
/// # async fn get(_node: usize) -> std::io::Result<Option<u64>> { Ok(None) }
/// # async fn set(_v: u64) -> std::io::Result<()> { Ok(()) }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let rec = Recorder::new();
/// let watch = Watch::start(Register, &rec)?; // stops the workers at the first anomaly
/// let ran = Workers::new(5)
///     .duration(Duration::from_secs(20))
///     .run(
///         &rec,
///         |d| match d.rng.below(2) {
///             0 => Invocation::read(),
///             _ => Invocation::write(d.unique),
///         },
///         |call| async move {
///             match call.op.f.as_str() {
///                 "read" => match get(call.worker).await {
///                     Ok(v) => Done::Returned(v.into()),
///                     Err(e) => Done::Fail(e.to_string()), // a read changes nothing
///                 },
///                 _ => match set(call.op.value.as_u64().unwrap_or(0)).await {
///                     Ok(()) => Done::Ok,
///                     Err(e) => Done::Info(e.to_string()), // it may have happened
///                 },
///             }
///         },
///     )
///     .await;
/// println!("{} operations, {} acknowledged", ran.invoked, ran.ok);
/// let report = watch.finish().await?;
/// assert!(report.valid(), "{report}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Workers {
    workers: usize,
    duration: Duration,
    op_timeout: Duration,
    seed: u64,
    stagger: Duration,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new(5)
    }
}

/// A failure or unknown outcome quicker than this is followed by a short pause, so a worker
/// whose node is down paces itself instead of spinning on instant errors.
const QUICK: Duration = Duration::from_millis(20);
const PAUSE: Duration = Duration::from_millis(50);

impl Workers {
    /// `n` workers (at least one) for 30 s, 3 s per operation, seed 1, no stagger.
    pub fn new(n: usize) -> Self {
        Self {
            workers: n.max(1),
            duration: Duration::from_secs(30),
            op_timeout: Duration::from_secs(3),
            seed: 1,
            stagger: Duration::ZERO,
        }
    }

    /// How long the workers invoke operations (one in flight at the end still completes).
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Deadline of one operation: past it the loop drops it and records `info`.
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Seed of the workers' generators (`Draw::rng`); the same seed draws the same operations.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// A pause between one worker's operations, drawn evenly from `0..2 * d` (Jepsen's
    /// stagger): `d` is the mean. Without it each worker runs its operations back to back.
    pub fn stagger(mut self, d: Duration) -> Self {
        self.stagger = d;
        self
    }

    /// Runs the workers until the duration passes or `rec` is stopped, and says what they did.
    ///
    /// - `generate(&mut Draw)` gives a worker's next operation.
    /// - `perform(Call)` performs it with your own client and says how it ended. It may
    ///   borrow from the caller (the workers run in the caller's task, not spawned), so a
    ///   blocking client goes through `tokio::task::spawn_blocking`. Past the operation
    ///   deadline, or when the history is stopped, its future is dropped and the operation
    ///   recorded `info`.
    pub async fn run<G, P, Fut>(&self, rec: &Recorder, generate: G, perform: P) -> Ran
    where
        G: Fn(&mut Draw<'_>) -> Invocation,
        P: Fn(Call) -> Fut,
        Fut: Future<Output = Done>,
    {
        let until = Instant::now() + self.duration;
        let unique = std::sync::atomic::AtomicU64::new(0);
        let workers =
            (0..self.workers).map(|w| self.worker(w, until, rec, &unique, &generate, &perform));
        let mut ran = Ran::default();
        for r in futures::future::join_all(workers).await {
            ran.invoked += r.invoked;
            ran.ok += r.ok;
            ran.failed += r.failed;
            ran.unknown += r.unknown;
        }
        ran.stopped = rec.stop_reason();
        ran
    }

    async fn worker<G, P, Fut>(
        &self,
        worker: usize,
        until: Instant,
        rec: &Recorder,
        unique: &std::sync::atomic::AtomicU64,
        generate: &G,
        perform: &P,
    ) -> Ran
    where
        G: Fn(&mut Draw<'_>) -> Invocation,
        P: Fn(Call) -> Fut,
        Fut: Future<Output = Done>,
    {
        let n = self.workers as u64;
        let mut rng = SplitMix64::new(
            self.seed
                .wrapping_mul(1_000_003)
                .wrapping_add(worker as u64),
        );
        let mut process = worker as u64;
        let mut ran = Ran::default();
        while Instant::now() < until && !rec.is_stopped() {
            let op = generate(&mut Draw {
                rng: &mut rng,
                worker,
                process,
                unique: unique.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            });
            let pending = rec.invoke(process, &op.f, op.key.as_deref(), op.value.clone());
            ran.invoked += 1;
            let began = Instant::now();
            let call = Call {
                worker,
                process,
                op,
            };
            let outcome = tokio::select! {
                r = tokio::time::timeout(self.op_timeout, perform(call)) => r.unwrap_or_else(|_| {
                    Done::Info(format!("timed out after {:?}", self.op_timeout))
                }),
                () = rec.stopped() => Done::Info("abandoned: the history was stopped".into()),
            };
            let quick = began.elapsed() < QUICK;
            let mut pause = Duration::ZERO;
            match outcome {
                Done::Ok => {
                    ran.ok += 1;
                    pending.ok_same();
                }
                Done::Returned(v) => {
                    ran.ok += 1;
                    pending.ok(v);
                }
                Done::Fail(e) => {
                    ran.failed += 1;
                    pending.fail(e);
                    if quick {
                        pause = PAUSE;
                    }
                }
                Done::Info(e) => {
                    ran.unknown += 1;
                    pending.info(e);
                    process += n;
                    if quick {
                        pause = PAUSE;
                    }
                }
            }
            if !self.stagger.is_zero() {
                let mean = self.stagger.as_micros().min(u64::MAX as u128) as u64;
                pause += Duration::from_micros(rng.below_u64(mean.saturating_mul(2).max(1)));
            }
            if !pause.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = rec.stopped() => {}
                }
            } else {
                // A client that answers at once never waits: let the other workers (and the
                // watch) run between its operations.
                tokio::task::yield_now().await;
            }
        }
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpType, Process};

    #[tokio::test]
    async fn an_unknown_outcome_retires_the_process_and_a_timeout_is_unknown() {
        let rec = Recorder::new();
        let ran = Workers::new(2)
            .duration(Duration::from_millis(300))
            .op_timeout(Duration::from_millis(50))
            .run(
                &rec,
                |d| Invocation::write(d.unique),
                |call| async move {
                    match (call.worker, call.process) {
                        // Worker 0's first process times out, its next one is told `info`.
                        (0, 0) => {
                            tokio::time::sleep(Duration::from_secs(5)).await;
                            Done::Ok
                        }
                        (0, 2) => Done::Info("lost".into()),
                        (0, _) => Done::Ok,
                        _ => Done::Fail("refused".into()),
                    }
                },
            )
            .await;
        let ops = rec.ops();
        let of = |p: u64| -> Vec<_> {
            ops.iter()
                .filter(|o| o.process == Process::Client(p))
                .map(|o| (o.kind, o.error.clone()))
                .collect()
        };
        assert_eq!(
            of(0),
            [
                (OpType::Invoke, None),
                (OpType::Info, Some("timed out after 50ms".into()))
            ]
        );
        assert_eq!(of(2)[1], (OpType::Info, Some("lost".into())));
        assert!(of(4).iter().any(|o| o.0 == OpType::Ok), "{:?}", of(4));
        // Worker 1's failures keep its process, and pace it.
        assert!(of(1).iter().all(|o| o.0 != OpType::Info));
        assert!(of(3).is_empty());
        assert_eq!(ran.invoked, ran.ok + ran.failed + ran.unknown);
        assert_eq!(ran.unknown, 2);
        assert!(ran.stopped.is_none());
    }
}
