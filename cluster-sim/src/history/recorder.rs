//! `Recorder`: what client workers use to write a history as they go. Each operation is an
//! `invoke` and then exactly one of `ok`, `fail` or `info`; a `Pending` dropped without an
//! outcome (its task aborted at a deadline, say) records `info`, since it may have happened.
//! A recorder also carries the history's stop signal: whoever judges the history as it grows
//! (`Watch`, in `cluster-sim-check`) stops it at the first anomaly, and the clients and the
//! nemesis that record into it stop with it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use super::op::{Op, OpType, Process};

struct Inner {
    started: Instant,
    /// Records and the file they are appended to, under one lock, so that file order, memory
    /// order and time order are the same.
    state: Mutex<State>,
    /// `Some(why)` once the history is stopped.
    stop: tokio::sync::watch::Sender<Option<String>>,
}

struct State {
    ops: Vec<Op>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

/// A history being recorded. Cheap to clone; every clone adds to the same history.
///
/// Each operation is [`Recorder::invoke`] and then one outcome on the [`Pending`] it returns:
/// [`Pending::ok`] (it took effect; a read's value), [`Pending::ok_same`] (it took effect with
/// the invocation's value: writes, cas, adds), [`Pending::fail`] (known not to have happened) or
/// [`Pending::info`] (unknown). Checkers (`cluster_sim::history::check`, in
/// `cluster-sim-check`) take a write's, a cas's and an add's value from the invocation and a
/// read's from its `ok`.
///
/// ```
/// use cluster_sim_core::history::{OpType, Recorder};
/// use serde_json::{json, Value};
///
/// let rec = Recorder::new(); // in memory; Recorder::to_file also appends to a file
/// rec.invoke(0, "write", Some("k1"), 3).ok_same();
/// rec.invoke(1, "cas", Some("k1"), json!([3, 4])).ok_same(); // value [old, new]
/// rec.invoke(2, "cas", Some("k1"), json!([7, 8])).fail("compare failed");
/// rec.invoke(0, "read", Some("k1"), Value::Null).ok(4); // what the read returned
/// rec.invoke(1, "write", Some("k1"), 5).info("timed out"); // may or may not have happened
/// let ops = rec.ops();
/// assert_eq!(ops.len(), 10); // an invoke and an outcome each
/// assert_eq!((ops[5].kind, ops[5].error.as_deref()), (OpType::Fail, Some("compare failed")));
/// assert_eq!(ops[7].value, json!(4));
/// ```
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field(
                "ops",
                &self.inner.state.lock().map(|s| s.ops.len()).unwrap_or(0),
            )
            .finish()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A history kept in memory only (read it with [`Recorder::ops`], save it with
    /// [`Recorder::write_jsonl`]); its clock starts now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                state: Mutex::new(State {
                    ops: Vec::new(),
                    file: None,
                }),
                stop: tokio::sync::watch::Sender::new(None),
            }),
        }
    }

    /// A history kept in memory and also appended, a line per record, to `path` as it is made,
    /// so a test killed half-way leaves what it recorded.
    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::File::create(path)?;
        let r = Self::new();
        r.inner.state.lock().unwrap_or_else(|e| e.into_inner()).file =
            Some(std::io::BufWriter::new(file));
        Ok(r)
    }

    /// Nanoseconds since the history began: the clock its records' `time` is read from.
    pub fn now(&self) -> u64 {
        self.inner.started.elapsed().as_nanos() as u64
    }

    /// Stamps `op` with the time and appends it; the stamp is taken under the lock so that
    /// records are in time order.
    fn push(&self, mut op: Op) {
        let mut st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        op.time = self.now();
        if let Some(w) = st.file.as_mut() {
            if let Ok(line) = serde_json::to_string(&op) {
                let _ = writeln!(w, "{line}").and_then(|()| w.flush());
            }
        }
        st.ops.push(op);
    }

    /// Records client `process` invoking `f` on `key` with `value`; complete it on the result.
    ///
    /// - `process`: the client's number. After an `info` outcome, go on as a new number (as
    ///   Jepsen does): the old operation may still take effect.
    /// - `f`: `read`, `write` or `cas` for the register model; `add` or `read` for the set.
    /// - `key`: which register or set (`None` for a history of one).
    /// - `value`: the argument, anything that converts into JSON: a write's value, a cas's
    ///   `[old, new]` (`null` for "absent"), an add's element, `Value::Null` for a read.
    ///
    /// The returned [`Pending`] records `info` if dropped without an outcome.
    #[must_use = "complete the operation with ok, fail or info"]
    pub fn invoke(
        &self,
        process: u64,
        f: &str,
        key: Option<&str>,
        value: impl Into<Value>,
    ) -> Pending {
        let op = Op {
            process: Process::Client(process),
            kind: OpType::Invoke,
            f: f.to_string(),
            key: key.map(str::to_string),
            value: value.into(),
            time: 0,
            error: None,
        };
        let pending = Pending {
            rec: self.clone(),
            process: op.process.clone(),
            f: op.f.clone(),
            key: op.key.clone(),
            value: op.value.clone(),
            done: false,
        };
        self.push(op);
        pending
    }

    /// Records a nemesis action (context for people; checkers skip it), `kind` invoke or info.
    pub fn nemesis(&self, kind: OpType, f: &str, value: impl Into<Value>) {
        self.push(Op {
            process: Process::Named("nemesis".into()),
            kind,
            f: f.to_string(),
            key: None,
            value: value.into(),
            time: 0,
            error: None,
        });
    }

    /// Stops the history: asks everyone recording into it to stop (the workers of
    /// `cluster_sim::workload::Workers` invoke nothing more and abandon what is in
    /// flight as `info`; a nemesis that records here stops and leaves its fault in force).
    /// The first reason given is kept; later calls change nothing. Records are still taken
    /// after a stop: the stop is a request, and what is in flight still ends.
    ///
    /// ```
    /// use cluster_sim_core::history::Recorder;
    ///
    /// let rec = Recorder::new();
    /// assert!(!rec.is_stopped());
    /// rec.stop("key k1: a stale read");
    /// rec.stop("another reason");
    /// assert_eq!(rec.stop_reason().as_deref(), Some("key k1: a stale read"));
    /// ```
    pub fn stop(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.inner.stop.send_if_modified(|s| {
            if s.is_some() {
                return false;
            }
            *s = Some(reason);
            true
        });
    }

    /// Whether the history was stopped ([`Recorder::stop`]).
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.borrow().is_some()
    }

    /// Why the history was stopped, if it was.
    pub fn stop_reason(&self) -> Option<String> {
        self.inner.stop.borrow().clone()
    }

    /// Resolves when the history is stopped (at once if it already is): for a task to
    /// `select!` on beside its work.
    pub async fn stopped(&self) {
        let mut rx = self.inner.stop.subscribe();
        // The sender lives as long as `self`, so waiting can't fail.
        let _ = rx.wait_for(Option::is_some).await;
    }

    /// How many records the history holds.
    pub fn len(&self) -> usize {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ops
            .len()
    }

    /// Whether the history holds no record yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records from the `from`-th on (none when `from` is past the end): for a reader
    /// that follows the history as it grows without copying it all each time.
    pub fn ops_from(&self, from: usize) -> Vec<Op> {
        let st = self.inner.state.lock().unwrap_or_else(|e| e.into_inner());
        st.ops.get(from..).map(<[Op]>::to_vec).unwrap_or_default()
    }

    /// Every record so far.
    pub fn ops(&self) -> Vec<Op> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ops
            .clone()
    }

    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let mut out = String::new();
        for op in self.ops() {
            out.push_str(&serde_json::to_string(&op).map_err(std::io::Error::other)?);
            out.push('\n');
        }
        std::fs::write(path, out)
    }
}

/// An invoked operation awaiting its outcome.
#[derive(Debug)]
pub struct Pending {
    rec: Recorder,
    process: Process,
    f: String,
    key: Option<String>,
    value: Value,
    done: bool,
}

impl Pending {
    fn finish(mut self, kind: OpType, value: Value, error: Option<String>) {
        self.done = true;
        self.rec.push(Op {
            process: self.process.clone(),
            kind,
            f: self.f.clone(),
            key: self.key.clone(),
            value,
            time: 0,
            error,
        });
    }

    /// It took effect; `value` is what a read returned (`Value::Null` for nothing, an array for
    /// a set's read). For writes, cas and adds the checkers use the invocation's value, so pass
    /// the same value, or call [`Pending::ok_same`].
    pub fn ok(self, value: impl Into<Value>) {
        self.finish(OpType::Ok, value.into(), None)
    }

    /// It took effect, with the invocation's own value (writes, cas, adds).
    pub fn ok_same(self) {
        let v = self.value.clone();
        self.finish(OpType::Ok, v, None)
    }

    /// It is known not to have taken effect (a cas whose compare failed, a request refused
    /// before it was sent); `error` is a text for people.
    pub fn fail(self, error: impl Into<String>) {
        let v = self.value.clone();
        self.finish(OpType::Fail, v, Some(error.into()))
    }

    /// Its outcome is unknown (timeout, connection lost); `error` is a text for people. The
    /// checkers let it take effect at any time after its call, or never.
    pub fn info(self, error: impl Into<String>) {
        let v = self.value.clone();
        self.finish(OpType::Info, v, Some(error.into()))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            self.rec.push(Op {
                process: self.process.clone(),
                kind: OpType::Info,
                f: self.f.clone(),
                key: self.key.clone(),
                value: self.value.clone(),
                time: 0,
                error: Some("dropped without an outcome".into()),
            });
        }
    }
}
