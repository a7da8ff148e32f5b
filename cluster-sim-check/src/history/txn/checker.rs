//! The transactional checkers as [`Checker`]s, `list-append` and `rw-register`: from completed
//! operations, or straight from a `history.jsonl` read a line at a time into compact
//! transactions (a million-transaction history is never held as JSON).

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{analyse, Flavor, TxnSummary, Txns};
use crate::history::{
    CheckError, CheckReport, Checker, Completed, FileError, HistoryError, OpError, OpType, Process,
    Records, Violation,
};

/// The list-append checker (`list-append`): transactions of `["append", k, v]` and
/// `["r", k, [v, ...]]` micro-operations, checked for every anomaly Elle names. Its report's
/// details are a [`TxnSummary`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ListAppend;

/// The read-write register checker (`rw-register`): transactions of `["w", k, v]` and
/// `["r", k, v]` micro-operations, checked for every anomaly Elle names. Its report's details
/// are a [`TxnSummary`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RwRegister;

const WHAT: &str = "transactions free of dependency cycles and other anomalies";

impl Checker for ListAppend {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn what(&self) -> &'static str {
        WHAT
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        judge(
            self,
            Txns::from_completed(ops, Flavor::ListAppend)?,
            Some(ops),
        )
    }

    fn check_file(&self, path: &Path) -> Result<CheckReport, FileError> {
        judge_file(self, path, Flavor::ListAppend)
    }

    fn judges_prefixes(&self) -> bool {
        true
    }
}

impl Checker for RwRegister {
    fn name(&self) -> &'static str {
        "rw-register"
    }

    fn what(&self) -> &'static str {
        WHAT
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        judge(
            self,
            Txns::from_completed(ops, Flavor::RwRegister)?,
            Some(ops),
        )
    }

    fn check_file(&self, path: &Path) -> Result<CheckReport, FileError> {
        judge_file(self, path, Flavor::RwRegister)
    }

    fn judges_prefixes(&self) -> bool {
        true
    }
}

fn judge(
    checker: &dyn Checker,
    txns: Txns,
    ops: Option<&[Completed]>,
) -> Result<CheckReport, CheckError> {
    let (violations, summary) = analyse(&txns, ops)?;
    Ok(report(checker, &txns, violations, summary))
}

fn report(
    checker: &dyn Checker,
    txns: &Txns,
    violations: Vec<Violation>,
    summary: TxnSummary,
) -> CheckReport {
    let found: usize = summary.anomalies.values().sum();
    let headline = if found == 0 {
        format!("valid: {} transactions, no anomaly", txns.len())
    } else if found == violations.len() {
        format!(
            "INVALID: {found} anomal{} in {} transactions",
            if found == 1 { "y" } else { "ies" },
            txns.len()
        )
    } else {
        format!(
            "INVALID: {found} anomalies in {} transactions (the first {} of each kind explained)",
            txns.len(),
            super::anomaly::KEPT_PER_KIND
        )
    };
    CheckReport::new(checker, txns.len(), txns.keys.len(), violations)
        .with_headline(headline)
        .with_details(summary)
}

/// Reads and judges a history file a record at a time.
fn judge_file(
    checker: &dyn Checker,
    path: &Path,
    flavor: Flavor,
) -> Result<CheckReport, FileError> {
    let shown = path.display().to_string();
    let (txns, lines) = read(path, flavor)?;
    let at = |e: OpError| -> FileError {
        HistoryError::Malformed {
            path: shown.clone(),
            line: lines.get(e.index).map_or(0, |&l| l as usize),
            message: e.message,
        }
        .into()
    };
    let (violations, summary) = analyse(&txns, None).map_err(at)?;
    Ok(report(checker, &txns, violations, summary))
}

/// The transactions of a history file, in invocation order, and each record's line.
fn read(path: &Path, flavor: Flavor) -> Result<(Txns, Vec<u32>), FileError> {
    let shown = path.display().to_string();
    let mut txns = Txns::new(flavor);
    let mut lines: Vec<u32> = Vec::new();
    // Each process's open invocation: its value, function, time and record index.
    let mut open: HashMap<Process, (Value, String, u64, usize)> = HashMap::new();
    let push = |txns: &mut Txns, c: Completed, line: u32| {
        txns.push(&c).map_err(|e| HistoryError::Malformed {
            path: shown.clone(),
            line: line as usize,
            message: e.message,
        })
    };
    for record in Records::open(path)? {
        let (line, op) = record?;
        let index = lines.len();
        lines.push(line as u32);
        if !matches!(op.process, Process::Client(_)) {
            continue;
        }
        if op.kind == OpType::Invoke {
            open.insert(op.process, (op.value, op.f, op.time, index));
            continue;
        }
        // The records are paired (`Records` checks): a completion has its invocation.
        let Some((input, f, start, index)) = open.remove(&op.process) else {
            continue;
        };
        let c = Completed {
            process: op.process,
            f,
            key: op.key,
            input,
            output: if op.kind == OpType::Ok {
                op.value
            } else {
                Value::Null
            },
            outcome: op.kind,
            start,
            end: (op.kind != OpType::Info).then_some(op.time),
            index,
        };
        push(&mut txns, c, lines[index])?;
    }
    // Invocations never completed: their outcome is unknown.
    let mut never: Vec<(Process, (Value, String, u64, usize))> = open.into_iter().collect();
    never.sort_by_key(|(_, o)| o.3);
    for (process, (input, f, start, index)) in never {
        let c = Completed {
            process,
            f,
            key: None,
            input,
            output: Value::Null,
            outcome: OpType::Info,
            start,
            end: None,
            index,
        };
        push(&mut txns, c, lines[index])?;
    }
    txns.sort_by_invocation();
    txns.shrink_to_fit();
    Ok((txns, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::txn::synthetic::{
        list_append_history, write_list_append_history, ListAppendOptions,
    };

    #[test]
    fn a_file_read_as_it_goes_is_judged_as_the_same_history_in_memory() {
        let opts = ListAppendOptions {
            txns: 2_000,
            keys: 8,
            max_writes_per_key: 6,
            plant_g2: true,
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        write_list_append_history(&opts, std::fs::File::create(&path).unwrap()).unwrap();
        let streamed = ListAppend.check_file(&path).unwrap();
        let in_memory = crate::history::check(&list_append_history(&opts), &ListAppend).unwrap();
        assert!(!streamed.valid());
        assert_eq!(streamed.to_string(), in_memory.to_string());
        assert_eq!(
            streamed.details::<TxnSummary>(),
            in_memory.details::<TxnSummary>()
        );
    }
}
