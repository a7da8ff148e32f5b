//! The set checker: every acknowledged `add` must be in the final read. Adds whose outcome is
//! unknown (`info`) may or may not be there; an element read that no one tried to add is a
//! violation too. Keys are checked independently.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::{by_key, CheckError, CheckReport, Checker, Completed, OpType, Violation};

/// The set checker (`set`): adds to a grow-only set per key, checked against the final read
/// for acknowledged adds lost. Its report's details are the [`SetCounts`] summed over keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Set;

impl Checker for Set {
    fn name(&self) -> &'static str {
        "set"
    }

    fn what(&self) -> &'static str {
        "without lost acknowledged adds"
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        let keys = by_key(ops);
        let mut violations = Vec::new();
        let mut counts = SetCounts::default();
        for (key, ops) in &keys {
            let (c, v) = check_key(key.as_deref(), ops).map_err(CheckError::Unfit)?;
            counts.attempted += c.attempted;
            counts.acknowledged += c.acknowledged;
            counts.lost += c.lost;
            counts.recovered += c.recovered;
            counts.unexpected += c.unexpected;
            violations.extend(v);
        }
        Ok(CheckReport::new(self, ops.len(), keys.len(), violations).with_details(counts))
    }
}

/// What the set checker counted for one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetCounts {
    /// Adds invoked.
    pub attempted: usize,
    /// Adds acknowledged (ok).
    pub acknowledged: usize,
    /// Acknowledged adds missing from the final read.
    pub lost: usize,
    /// Adds with unknown outcome that the final read shows.
    pub recovered: usize,
    /// Elements read that were never added.
    pub unexpected: usize,
}

impl std::fmt::Display for SetCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} adds attempted, {} acknowledged, {} lost, {} unknown but present, {} unexpected",
            self.attempted, self.acknowledged, self.lost, self.recovered, self.unexpected
        )
    }
}

/// Checks one key's adds against its final read.
pub(crate) fn check_key(
    key: Option<&str>,
    ops: &[Completed],
) -> Result<(SetCounts, Option<Violation>), String> {
    let final_read = ops
        .iter()
        .filter(|o| o.f == "read" && o.outcome == OpType::Ok)
        .max_by_key(|o| (o.end, o.index))
        .ok_or_else(|| {
            format!(
                "{}no completed read: a set history needs a final read to judge",
                key.map(|k| format!("key {k}: ")).unwrap_or_default()
            )
        })?;
    let Some(read) = final_read.output.as_array() else {
        return Err(format!(
            "the final read ({final_read}) returned {}, not an array",
            final_read.output
        ));
    };
    let seen: HashMap<String, &Value> = read.iter().map(|v| (v.to_string(), v)).collect();
    let mut counts = SetCounts::default();
    let mut attempted: BTreeMap<String, &Completed> = BTreeMap::new();
    let mut lost: Vec<Completed> = Vec::new();
    for add in ops.iter().filter(|o| o.f == "add") {
        counts.attempted += 1;
        let k = add.input.to_string();
        attempted.insert(k.clone(), add);
        let present = seen.contains_key(&k);
        match add.outcome {
            OpType::Ok => {
                counts.acknowledged += 1;
                // Only adds acknowledged before the final read began must be in it.
                if !present && add.end.is_some_and(|e| e < final_read.start) {
                    lost.push(add.clone());
                }
            }
            OpType::Info if present => counts.recovered += 1,
            _ => {}
        }
    }
    let unexpected: Vec<&Value> = read
        .iter()
        .filter(|v| !attempted.contains_key(&v.to_string()))
        .collect();
    counts.lost = lost.len();
    counts.unexpected = unexpected.len();
    if lost.is_empty() && unexpected.is_empty() {
        return Ok((counts, None));
    }
    let mut parts = Vec::new();
    if !lost.is_empty() {
        parts.push(format!(
            "{} acknowledged add(s) missing from the final read",
            lost.len()
        ));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} element(s) read that no one added: {}",
            unexpected.len(),
            unexpected
                .iter()
                .take(20)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut shown = lost;
    shown.sort_by_key(|o| (o.start, o.index));
    shown.truncate(50);
    shown.push(final_read.clone());
    Ok((
        counts.clone(),
        Some(Violation {
            key: key.map(str::to_string),
            summary: parts.join("; "),
            explanation: format!(
                "{} adds attempted, {} acknowledged, {} lost; the final read ({} elements) began at {}",
                counts.attempted,
                counts.acknowledged,
                counts.lost,
                read.len(),
                super::secs(final_read.start)
            ),
            ops: shown,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(p: u64, f: &str, v: Value, outcome: OpType, s: u64, e: u64) -> Completed {
        let io = if f == "read" {
            (Value::Null, v)
        } else {
            (v, Value::Null)
        };
        crate::history::for_test(p, f, io, outcome, s, e)
    }

    #[test]
    fn acknowledged_adds_must_survive() {
        let ok = [
            op(0, "add", json!(1), OpType::Ok, 0, 1),
            op(1, "add", json!(2), OpType::Info, 2, 0),
            op(0, "add", json!(3), OpType::Fail, 3, 4),
            op(2, "read", json!([1, 2]), OpType::Ok, 10, 11),
        ];
        let (counts, v) = check_key(None, &ok).unwrap();
        assert!(v.is_none());
        assert_eq!(counts.recovered, 1);
        let lost = [
            op(0, "add", json!(1), OpType::Ok, 0, 1),
            op(1, "add", json!(2), OpType::Ok, 2, 3),
            op(2, "read", json!([2, 7]), OpType::Ok, 10, 11),
        ];
        let (counts, v) = check_key(Some("s"), &lost).unwrap();
        let v = v.unwrap();
        assert_eq!(counts.lost, 1);
        assert!(
            v.summary.contains("1 acknowledged add(s) missing"),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("no one added: 7"), "{}", v.summary);
        assert!(
            v.ops[0].to_string().contains("process 0 add 1 (ok"),
            "{}",
            v.ops[0]
        );
    }

    #[test]
    fn a_history_without_a_read_cannot_be_judged() {
        let e = check_key(None, &[op(0, "add", json!(1), OpType::Ok, 0, 1)]).unwrap_err();
        assert!(e.contains("no completed read"), "{e}");
    }
}
