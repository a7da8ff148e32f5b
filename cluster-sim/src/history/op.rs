//! History records, Jepsen-style: one JSON object per line, `invoke` then `ok`, `fail` or `info`
//! for each operation of a process, read and written with line-numbered errors.

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a history line says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// A process started an operation.
    Invoke,
    /// It completed and took effect.
    Ok,
    /// It completed and is known not to have taken effect.
    Fail,
    /// Its outcome is unknown (timeout, crash): it may or may not have taken effect.
    Info,
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// One line of `history.jsonl`.
///
/// `process` is a client worker's number (the nemesis uses `"nemesis"` as its process and is
/// ignored by checkers), `f` the function (`read`, `write`, `cas`, `add`, or a nemesis action),
/// `value` its argument or, on a read's `ok`, what it read; `time` is monotonic nanoseconds
/// since the history began.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// The client process (a number), or a name such as `nemesis`.
    pub process: Process,
    /// invoke, ok, fail or info.
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The function.
    pub f: String,
    /// The key, when the history holds several registers or sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Argument, or the value read.
    #[serde(default)]
    pub value: Value,
    /// Monotonic nanoseconds since the history began.
    pub time: u64,
    /// Why it failed or what is unknown, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A process id: a client's number, or a name (`nemesis`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    /// A client worker.
    Client(u64),
    /// Anything else (the nemesis).
    Named(String),
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(n) => write!(f, "{n}"),
            Process::Named(s) => f.write_str(s),
        }
    }
}

/// A history file that can't be read, or a line that isn't a history record.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid record, or breaks the invoke/complete pairing.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// One-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads a `history.jsonl` file. Blank lines are skipped; anything else must be a record.
/// With `cluster_sim::history::check` (in `cluster-sim-check`), this judges a saved history
/// from Rust as `cluster-sim check` does, with no cluster.
///
/// ```no_run
/// use cluster_sim_core::history;
/// use std::path::Path;
///
/// # fn demo() -> Result<(), history::HistoryError> {
/// let ops = history::read_history(Path::new("history.jsonl"))?; // `history.jsonl:7: ...` if malformed
/// // then: let report = cluster_sim::history::check(&ops, &cluster_sim::history::Register)?;
/// println!("{} records", ops.len());
/// # Ok(()) }
/// ```
pub fn read_history(path: &Path) -> Result<Vec<Op>, HistoryError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_lines(std::io::BufReader::new(file), &shown)
}

/// Parses history lines from any reader; `name` stands for it in errors.
pub fn parse_lines(reader: impl BufRead, name: &str) -> Result<Vec<Op>, HistoryError> {
    Records::new(reader, name)
        .map(|r| r.map(|(_, op)| op))
        .collect()
}

/// A history's records one at a time, each with its line number, checked as they come as
/// [`parse_lines`] checks them: for a history too large to hold as `Op`s all at once.
/// Iteration ends at the first error.
pub struct Records<R> {
    lines: std::io::Lines<R>,
    name: String,
    line: usize,
    /// Each process's open invocation: its function and line.
    open: std::collections::HashMap<Process, (String, usize)>,
    last_time: std::collections::HashMap<Process, u64>,
    failed: bool,
}

impl Records<std::io::BufReader<std::fs::File>> {
    /// The records of a `history.jsonl` file.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let shown = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| HistoryError::Read {
            path: shown.clone(),
            source,
        })?;
        Ok(Records::new(std::io::BufReader::new(file), &shown))
    }
}

impl<R: BufRead> Records<R> {
    /// The records of `reader`; `name` stands for it in errors.
    pub fn new(reader: R, name: &str) -> Self {
        Records {
            lines: reader.lines(),
            name: name.to_string(),
            line: 0,
            open: Default::default(),
            last_time: Default::default(),
            failed: false,
        }
    }

    fn bad(&self, line: usize, message: String) -> HistoryError {
        HistoryError::Malformed {
            path: self.name.clone(),
            line,
            message,
        }
    }

    fn record(&self, line: usize, text: &str) -> Result<Op, HistoryError> {
        serde_json::from_str(text).map_err(|e| {
            self.bad(
                line,
                // serde_json adds " at line 1 column N" of the one-line document: the file's
                // line number is already in front, so keep only the column.
                format!(
                    "not a history record: {} (column {})",
                    e.to_string()
                        .rsplit_once(" at line ")
                        .map_or(e.to_string(), |(m, _)| m.to_string()),
                    e.column()
                ),
            )
        })
    }

    /// Every completion follows an invoke of the same process and function, a process has
    /// one operation open at a time, and time never goes backwards within a process.
    fn pair(&mut self, line: usize, op: &Op) -> Result<(), HistoryError> {
        if let Some(t) = self.last_time.insert(op.process.clone(), op.time) {
            if op.time < t {
                return Err(self.bad(
                    line,
                    format!(
                        "time {} of process {} is before its previous record's {t}",
                        op.time, op.process
                    ),
                ));
            }
        }
        match op.kind {
            OpType::Invoke => {
                let prev = self.open.insert(op.process.clone(), (op.f.clone(), line));
                // A nemesis may start overlapping actions; clients may not.
                if let (Some((prev, at)), Process::Client(_)) = (prev, &op.process) {
                    return Err(self.bad(
                        line,
                        format!(
                            "process {} invokes {} while its {prev} from line {at} is still open",
                            op.process, op.f
                        ),
                    ));
                }
            }
            _ => match self.open.remove(&op.process) {
                None => {
                    return Err(self.bad(
                        line,
                        format!(
                            "{} of {} by process {} without an invoke",
                            op.kind, op.f, op.process
                        ),
                    ))
                }
                Some((f, at)) if f != op.f => {
                    return Err(self.bad(
                        line,
                        format!(
                            "{} of {} by process {} completes the {f} invoked at line {at}",
                            op.kind, op.f, op.process
                        ),
                    ))
                }
                Some(_) => {}
            },
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for Records<R> {
    type Item = Result<(usize, Op), HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let result = loop {
            let text = match self.lines.next()? {
                Ok(t) => t,
                Err(source) => {
                    break Err(HistoryError::Read {
                        path: self.name.clone(),
                        source,
                    })
                }
            };
            self.line += 1;
            if text.trim().is_empty() {
                continue;
            }
            let line = self.line;
            break self
                .record(line, &text)
                .and_then(|op| self.pair(line, &op).map(|()| (line, op)));
        };
        self.failed = result.is_err();
        Some(result)
    }
}

/// An operation with its invocation and completion paired up, as checkers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    /// The process.
    pub process: Process,
    /// The function.
    pub f: String,
    /// The key (`None` for a history of one register or set).
    pub key: Option<String>,
    /// The invocation's value (a write's value, a cas's `[old, new]`, an add's element).
    pub input: Value,
    /// The completion's value (what a read returned), `Null` otherwise.
    pub output: Value,
    /// ok, fail or info (info also for an invoke that never completed).
    pub outcome: OpType,
    /// When it was invoked.
    pub start: u64,
    /// When it completed (`None`: info or never completed, i.e. open-ended).
    pub end: Option<u64>,
    /// Position of the invoke in the history (for stable reporting).
    pub index: usize,
}

impl fmt::Display for Completed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self
            .key
            .as_ref()
            .map(|k| format!(" {k}"))
            .unwrap_or_default();
        let what = match (self.f.as_str(), self.outcome) {
            // What these returned is what matters: a transaction's reads are filled in only
            // in its completion.
            ("read" | "dequeue" | "drain" | "generate", OpType::Ok) => {
                format!("{}{key} -> {}", self.f, self.output)
            }
            ("txn", OpType::Ok) => format!("txn{key} {}", self.output),
            ("read" | "dequeue" | "drain" | "generate", _) => format!("{}{key}", self.f),
            (func, _) => format!("{func}{key} {}", self.input),
        };
        let end = match self.end {
            Some(e) => secs(e),
            None => "?".into(),
        };
        write!(
            f,
            "process {} {what} ({}, {}..{})",
            self.process,
            self.outcome,
            secs(self.start),
            end
        )
    }
}

/// Nanoseconds as seconds with millisecond precision, for messages.
pub(crate) fn secs(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// Pairs invocations with completions, for client processes only (the nemesis is context, not
/// a client). An invoke that never completed counts as `info`.
pub fn complete(ops: &[Op]) -> Vec<Completed> {
    let mut open: std::collections::HashMap<&Process, usize> = Default::default();
    let mut out: Vec<Completed> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if !matches!(op.process, Process::Client(_)) {
            continue;
        }
        match op.kind {
            OpType::Invoke => {
                open.insert(&op.process, out.len());
                out.push(Completed {
                    process: op.process.clone(),
                    f: op.f.clone(),
                    key: op.key.clone(),
                    input: op.value.clone(),
                    output: Value::Null,
                    outcome: OpType::Info,
                    start: op.time,
                    end: None,
                    index: i,
                });
            }
            kind => {
                if let Some(at) = open.remove(&op.process) {
                    let c = &mut out[at];
                    c.outcome = kind;
                    if kind != OpType::Info {
                        c.end = Some(op.time);
                    }
                    if kind == OpType::Ok {
                        c.output = op.value.clone();
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Op>, HistoryError> {
        parse_lines(text.as_bytes(), "h.jsonl")
    }

    #[test]
    fn lines_parse_and_pair() {
        let ops = parse(
            r#"{"process":0,"type":"invoke","f":"write","key":"k1","value":3,"time":1}
{"process":0,"type":"ok","f":"write","key":"k1","value":3,"time":2}

{"process":1,"type":"invoke","f":"read","value":null,"time":3}
{"process":"nemesis","type":"invoke","f":"partition","value":"halves","time":3}
"#,
        )
        .unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[0].process, Process::Client(0));
        let done = complete(&ops);
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].outcome, OpType::Ok);
        assert_eq!(done[1].outcome, OpType::Info);
        assert_eq!(done[1].end, None);
    }

    #[test]
    fn malformed_lines_are_named() {
        let e = parse("{\"process\":0}\n").unwrap_err().to_string();
        assert!(
            e.starts_with("h.jsonl:1: not a history record: missing field"),
            "{e}"
        );
        let e = parse(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"time\":1}\n{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1,\"time\":2}\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "h.jsonl:2: process 0 invokes write while its read from line 1 is still open"
        );
        let e = parse("{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"time\":1}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "h.jsonl:1: ok of read by process 0 without an invoke");
        let e = parse("not json\n").unwrap_err().to_string();
        assert!(e.starts_with("h.jsonl:1: not a history record"), "{e}");
    }
}
