//! The `Checker` protocol (Jepsen's `checker.clj`): a checker judges a history's completed
//! operations against one model and says so in a [`CheckReport`]. [`CHECKERS`] is the by-name
//! table (table.rs) that `cluster-sim check --model NAME` and tests share; a new model is its
//! own file (a type implementing [`Checker`]) plus one line in that table.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::{complete, Completed, HistoryError, Op, OpError, Records, Violation};

/// Judges a history's completed client operations against one model.
pub trait Checker: Send + Sync {
    /// The model's name, as [`by_name`] and `cluster-sim check --model NAME` take it.
    fn name(&self) -> &'static str;

    /// What a valid history's keys are, completing "every key is ...": `linearizable`.
    fn what(&self) -> &'static str;

    /// Judges the completed client operations of one history (every key; see [`by_key`]).
    /// `Err` when an operation has no meaning in the model (a register history with an `add`, a
    /// set history without a final read): one line naming it.
    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError>;

    /// The verdict alone: whether the history is valid, without explaining a violation.
    /// [`Watch`](super::Watch) asks this of a growing history every few moments, so a
    /// checker whose explanation is costly (the register's shrinking of a counterexample)
    /// answers it without. The default is [`check`](Self::check)'s verdict.
    fn verdict(&self, ops: &[Completed]) -> Result<bool, CheckError> {
        self.check(ops).map(|r| r.valid())
    }

    /// Whether an anomaly found in a prefix of a history (its operations still running taken
    /// as `info`: they may or may not take effect) is an anomaly of every history that goes
    /// on from it, so that [`Watch`](super::Watch) may stop a test at the first one. True for
    /// the register, counter, unique-ids and transactional checkers; false (the default) for
    /// the set and queue, whose lost elements are judged against a final read.
    fn judges_prefixes(&self) -> bool {
        false
    }

    /// Judges a saved `history.jsonl`; a malformed line, or an operation the model has no
    /// meaning for, is an error naming the file and the line. A checker that can judge a
    /// history as it reads it (the transactional ones) does, so that a history of a million
    /// operations need not be held as JSON.
    fn check_file(&self, path: &Path) -> Result<CheckReport, FileError> {
        let (mut lines, mut ops) = (Vec::new(), Vec::new());
        for record in Records::open(path)? {
            let (line, op) = record?;
            lines.push(line);
            ops.push(op);
        }
        self.check(&complete(&ops))
            .map_err(|e| FileError::at(path, &lines, e))
    }
}

/// A checker by reference is a checker: one from [`CHECKERS`] ([`by_name`]) can be given
/// wherever a checker is taken by value ([`Watch::start`](super::Watch::start)).
impl<C: Checker + ?Sized> Checker for &'static C {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn what(&self) -> &'static str {
        (**self).what()
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        (**self).check(ops)
    }

    fn verdict(&self, ops: &[Completed]) -> Result<bool, CheckError> {
        (**self).verdict(ops)
    }

    fn judges_prefixes(&self) -> bool {
        (**self).judges_prefixes()
    }

    fn check_file(&self, path: &Path) -> Result<CheckReport, FileError> {
        (**self).check_file(path)
    }
}

/// Why a history could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A history the model can't judge.
    #[error("{0}")]
    Unfit(String),
    /// An operation the model has no meaning for (its record's place in the history, and why).
    #[error(transparent)]
    Op(#[from] OpError),
    /// No checker in [`CHECKERS`] has that name.
    #[error("unknown model {name:?} (expected {expected})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names there are, as a list for a message (`register or set`).
        expected: String,
    },
}

/// Why a saved history could not be judged, in one line naming the file (and the line).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file can't be read, or a line is malformed (`history.jsonl:7: ...`).
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The model can't judge the history (`history.jsonl: no completed read: ...`).
    #[error("{path}: {source}")]
    Check {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: CheckError,
    },
}

impl FileError {
    /// `e` from judging the history at `path` whose records are on `lines` (one-based, a
    /// record's index into it): an operation's error names its line.
    pub fn at(path: &Path, lines: &[usize], e: CheckError) -> Self {
        match e {
            CheckError::Op(op) if op.index < lines.len() => HistoryError::Malformed {
                path: path.display().to_string(),
                line: lines[op.index],
                message: op.message,
            }
            .into(),
            other => FileError::Check {
                path: path.display().to_string(),
                source: other,
            },
        }
    }
}

/// What a checker found beyond the verdict, shown after it: the set checker's [`SetCounts`].
/// Any `Display + Debug + Send + Sync` type will do; [`CheckReport::details`] gets it back.
///
/// [`SetCounts`]: super::SetCounts
pub trait Details: Any + fmt::Display + fmt::Debug + Send + Sync {}

impl<T: Any + fmt::Display + fmt::Debug + Send + Sync> Details for T {}

/// The verdict on a history. Its `Display` is what `cluster-sim check` prints; beyond
/// [`valid`](Self::valid) it holds the operations and keys checked, each key's violation and
/// the checker's [`details`](Self::details) (the set checker's counts).
///
/// ```
/// use cluster_sim_check::history::{self, Recorder, SetCounts};
/// use serde_json::json;
///
/// let rec = Recorder::new();
/// rec.invoke(0, "add", None, 1).ok_same();
/// rec.invoke(1, "add", None, 2).ok_same();
/// rec.invoke(2, "add", None, 3).info("timed out");
/// rec.invoke(0, "read", None, json!(null)).ok(json!([1, 3]));
/// let report = history::check(&rec.ops(), &history::Set).unwrap();
/// assert!(!report.valid());
/// let counts = report.details::<SetCounts>().unwrap();
/// assert_eq!((counts.attempted, counts.acknowledged, counts.lost, counts.recovered), (3, 2, 1, 1));
/// for v in &report.violations {
///     println!("{:?}: {} ({} operations)", v.key, v.summary, v.ops.len());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The model checked: its checker's [`Checker::name`].
    pub model: &'static str,
    /// What the model asks of a key: its checker's [`Checker::what`].
    pub what: &'static str,
    /// Client operations (invocations) in the history.
    pub ops: usize,
    /// Keys checked.
    pub keys: usize,
    /// What was wrong, per key; empty when valid.
    pub violations: Vec<Violation>,
    details: Option<Arc<dyn Details>>,
    headline: Option<String>,
}

impl CheckReport {
    /// The report of `checker` on `ops` operations over `keys` keys.
    pub fn new(checker: &dyn Checker, ops: usize, keys: usize, violations: Vec<Violation>) -> Self {
        CheckReport {
            model: checker.name(),
            what: checker.what(),
            ops,
            keys,
            violations,
            details: None,
            headline: None,
        }
    }

    /// Replaces the verdict's first line, for a checker whose unit is not the key (the
    /// transactional ones count anomalies among transactions).
    pub fn with_headline(mut self, headline: impl Into<String>) -> Self {
        self.headline = Some(headline.into());
        self
    }

    /// Adds what the checker found beyond the verdict (printed after it).
    pub fn with_details(mut self, details: impl Details) -> Self {
        self.details = Some(Arc::new(details));
        self
    }

    /// Whether the history is valid under the model.
    pub fn valid(&self) -> bool {
        self.violations.is_empty()
    }

    /// The checker's details, if it left some of type `T`:
    /// `report.details::<SetCounts>()` for the set checker.
    pub fn details<T: Details>(&self) -> Option<&T> {
        let details: &dyn Any = self.details.as_deref()?;
        details.downcast_ref()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = self.what;
        if let Some(h) = &self.headline {
            write!(f, "{h}")?;
            for v in &self.violations {
                write!(f, "\n{v}")?;
            }
        } else if self.valid() {
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
        if let Some(d) = &self.details {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// Checks a history against a model: pairs invocations with completions ([`complete`]) and
/// hands the client operations to the checker.
///
/// The history is a recorder's `ops()`, or a saved `history.jsonl` read back with
/// [`read_history`](crate::history::read_history), so a saved history is judged from Rust as
/// `cluster-sim check` does, with no cluster:
///
/// ```no_run
/// use cluster_sim_check::history;
/// use std::path::Path;
///
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let ops = history::read_history(Path::new("history.jsonl"))?; // `history.jsonl:7: ...` if malformed
/// let report = history::check(&ops, history::by_name("register")?)?;
/// println!("{report}"); // valid: 120 operations over 3 key(s) are linearizable
/// # Ok(()) }
/// ```
pub fn check(history: &[Op], checker: &dyn Checker) -> Result<CheckReport, CheckError> {
    checker.check(&complete(history))
}

/// A history's operations by key, in history order within each key (`None`: no key). Keys are
/// independent in both models, so checkers judge each on its own.
pub fn by_key(ops: &[Completed]) -> BTreeMap<Option<String>, Vec<Completed>> {
    let mut by_key: BTreeMap<Option<String>, Vec<Completed>> = BTreeMap::new();
    for op in ops {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    by_key
}
