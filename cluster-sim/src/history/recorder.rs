//! `Recorder`: what client workers use to write a history as they go. Each operation is an
//! `invoke` and then exactly one of `ok`, `fail` or `info`; a `Pending` dropped without an
//! outcome (its task aborted at a deadline, say) records `info`, since it may have happened.

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
}

struct State {
    ops: Vec<Op>,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

/// A history being recorded. Cheap to clone; every clone adds to the same history.
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
    /// A history kept in memory.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                state: Mutex::new(State {
                    ops: Vec::new(),
                    file: None,
                }),
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

    fn now(&self) -> u64 {
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

    /// It took effect; `value` is what a read returned (for writes, pass the written value).
    pub fn ok(self, value: impl Into<Value>) {
        self.finish(OpType::Ok, value.into(), None)
    }

    /// It took effect, with the invocation's own value (writes, cas, adds).
    pub fn ok_same(self) {
        let v = self.value.clone();
        self.finish(OpType::Ok, v, None)
    }

    /// It is known not to have taken effect.
    pub fn fail(self, error: impl Into<String>) {
        let v = self.value.clone();
        self.finish(OpType::Fail, v, Some(error.into()))
    }

    /// Its outcome is unknown (timeout, connection lost).
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
