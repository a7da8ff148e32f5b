//! `check`: groups a history by key and runs the model's checker on each key.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::{complete, Completed, Op};
use super::{register, set, SetCounts, Violation};

/// What the history's operations are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// A read/write/cas register per key: linearizability.
    Register,
    /// A grow-only set per key: no acknowledged add lost.
    Set,
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(Model::Register),
            "set" => Ok(Model::Set),
            other => Err(format!(
                "unknown model {other:?} (expected register or set)"
            )),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Model::Register => "register",
            Model::Set => "set",
        })
    }
}

/// The verdict on a history. Its `Display` is what `cluster-sim check` prints.
///
/// ```
/// use cluster_sim_check::history::{self, Model, Recorder};
/// use serde_json::json;
///
/// let rec = Recorder::new();
/// rec.invoke(0, "add", None, 1).ok_same();
/// rec.invoke(1, "add", None, 2).ok_same();
/// rec.invoke(2, "add", None, 3).info("timed out");
/// rec.invoke(0, "read", None, json!(null)).ok(json!([1, 3]));
/// let report = history::check(&rec.ops(), Model::Set).unwrap();
/// assert!(!report.valid());
/// let counts = report.set_counts.clone().unwrap();
/// assert_eq!((counts.attempted, counts.acknowledged, counts.lost, counts.recovered), (3, 2, 1, 1));
/// for v in &report.violations {
///     println!("{:?}: {} ({} operations)", v.key, v.summary, v.ops.len());
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The model checked.
    pub model: Model,
    /// Client operations (invocations) in the history.
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// What was wrong, per key; empty when valid.
    pub violations: Vec<Violation>,
    /// For the set model: counts summed over keys.
    pub set_counts: Option<SetCounts>,
}

impl CheckReport {
    /// Whether the history is valid under the model.
    pub fn valid(&self) -> bool {
        self.violations.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.model {
            Model::Register => "linearizable",
            Model::Set => "without lost acknowledged adds",
        };
        if self.valid() {
            write!(
                f,
                "valid: {} operations over {} key(s) are {what}",
                self.ops, self.keys
            )?;
        } else {
            writeln!(
                f,
                "INVALID: {} of {} key(s) are not {what} ({} operations)",
                self.violations.len(),
                self.keys,
                self.ops
            )?;
            for (i, v) in self.violations.iter().enumerate() {
                if i > 0 {
                    writeln!(f)?;
                }
                write!(f, "{v}")?;
            }
        }
        if let Some(c) = &self.set_counts {
            write!(
                f,
                "\n{} adds attempted, {} acknowledged, {} lost, {} unknown but present, {} unexpected",
                c.attempted, c.acknowledged, c.lost, c.recovered, c.unexpected
            )?;
        }
        Ok(())
    }
}

/// Checks a history against a model. `Err` when an operation doesn't fit the model (a register
/// history with an `add`, a set history without a final read): one line naming it.
///
/// The history is a recorder's `ops()`, or a saved `history.jsonl` read back with
/// [`read_history`](crate::history::read_history), so a saved history is judged from Rust as
/// `cluster-sim check` does, with no cluster:
///
/// ```no_run
/// use cluster_sim_check::history::{self, Model};
/// use std::path::Path;
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let ops = history::read_history(Path::new("history.jsonl"))?; // `history.jsonl:7: ...` if malformed
/// let report = history::check(&ops, Model::Register)?;
/// println!("{report}"); // valid: 120 operations over 3 key(s) are linearizable
/// # Ok(()) }
/// ```
pub fn check(history: &[Op], model: Model) -> Result<CheckReport, String> {
    let done = complete(history);
    let mut by_key: BTreeMap<Option<String>, Vec<Completed>> = BTreeMap::new();
    for op in &done {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    let mut violations = Vec::new();
    let mut counts = SetCounts::default();
    for (key, ops) in &by_key {
        match model {
            Model::Register => {
                match register::check_key(key.as_deref(), ops, Duration::from_secs(2)) {
                    Ok(Some(v)) => violations.push(v),
                    Ok(None) => {}
                    Err(bad) => return Err(format!("{}: {}", bad.op, bad.message)),
                }
            }
            Model::Set => {
                let (c, v) = set::check_key(key.as_deref(), ops)?;
                counts.attempted += c.attempted;
                counts.acknowledged += c.acknowledged;
                counts.lost += c.lost;
                counts.recovered += c.recovered;
                counts.unexpected += c.unexpected;
                violations.extend(v);
            }
        }
    }
    Ok(CheckReport {
        model,
        ops: done.len(),
        keys: by_key.len(),
        violations,
        set_counts: (model == Model::Set).then_some(counts),
    })
}
