//! The unique-ids checker, after Jepsen's `checker/unique-ids`: every acknowledged `generate`
//! returned an id no other acknowledged `generate` of the same key returned.

use std::collections::HashMap;
use std::fmt;

use super::{by_key, CheckError, CheckReport, Checker, Completed, OpError, OpType, Violation};

/// The unique-ids checker (`unique-ids`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UniqueIds;

/// What the unique-ids checker counted, over every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdCounts {
    /// Generates invoked.
    pub attempted: usize,
    /// Generates acknowledged with an id.
    pub acknowledged: usize,
    /// Ids returned more than once.
    pub duplicated: usize,
}

impl fmt::Display for IdCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} generates attempted, {} acknowledged, {} id(s) returned more than once",
            self.attempted, self.acknowledged, self.duplicated
        )
    }
}

impl Checker for UniqueIds {
    fn name(&self) -> &'static str {
        "unique-ids"
    }

    fn judges_prefixes(&self) -> bool {
        true
    }

    fn what(&self) -> &'static str {
        "free of duplicate ids"
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        let keys = by_key(ops);
        let mut violations = Vec::new();
        let mut total = IdCounts::default();
        for (key, ops) in &keys {
            let (c, v) = UniqueIds::check_key(key.as_deref(), ops)?;
            total.attempted += c.attempted;
            total.acknowledged += c.acknowledged;
            total.duplicated += c.duplicated;
            violations.extend(v);
        }
        Ok(CheckReport::new(self, ops.len(), keys.len(), violations).with_details(total))
    }
}

impl UniqueIds {
    /// Judges one key's generates: its counts, and a violation if an id came back twice.
    pub(crate) fn check_key(
        key: Option<&str>,
        ops: &[Completed],
    ) -> Result<(IdCounts, Option<Violation>), OpError> {
        let mut counts = IdCounts::default();
        let mut by_id: HashMap<String, Vec<&Completed>> = HashMap::new();
        for op in ops {
            if op.f != "generate" {
                return Err(OpError::new(
                    op,
                    format!("unique-ids has generate, not {:?}", op.f),
                ));
            }
            counts.attempted += 1;
            if op.outcome != OpType::Ok {
                continue;
            }
            if op.output.is_null() {
                return Err(OpError::new(
                    op,
                    "an acknowledged generate returns the id it generated, not null",
                ));
            }
            counts.acknowledged += 1;
            by_id.entry(op.output.to_string()).or_default().push(op);
        }
        let mut dups: Vec<(&String, &Vec<&Completed>)> =
            by_id.iter().filter(|(_, ops)| ops.len() > 1).collect();
        dups.sort_by_key(|(_, ops)| ops[0].index);
        counts.duplicated = dups.len();
        if dups.is_empty() {
            return Ok((counts, None));
        }
        let shown: Vec<String> = dups
            .iter()
            .take(10)
            .map(|(id, ops)| format!("{id} ({} times)", ops.len()))
            .collect();
        let violation = Violation {
            key: key.map(str::to_string),
            summary: format!(
                "{} id(s) returned by more than one acknowledged generate: {}",
                dups.len(),
                shown.join(", ")
            ),
            explanation: format!(
                "{} generates acknowledged; the operations shown returned the first duplicated id(s)",
                counts.acknowledged
            ),
            ops: dups
                .iter()
                .take(5)
                .flat_map(|(_, ops)| ops.iter().map(|o| (*o).clone()))
                .collect(),
        };
        Ok((counts, Some(violation)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn generate(p: u64, id: Value, outcome: OpType, at: u64) -> Completed {
        crate::history::for_test(p, "generate", (Value::Null, id), outcome, at, at + 1)
    }

    #[test]
    fn duplicates_are_caught_and_unknowns_ignored() {
        let (c, v) = UniqueIds::check_key(
            None,
            &[
                generate(0, json!(1), OpType::Ok, 0),
                generate(1, json!(2), OpType::Ok, 2),
                generate(2, Value::Null, OpType::Info, 4),
                generate(3, Value::Null, OpType::Fail, 6),
            ],
        )
        .unwrap();
        assert!(v.is_none());
        assert_eq!(
            c.to_string(),
            "4 generates attempted, 2 acknowledged, 0 id(s) returned more than once"
        );
        let (c, v) = UniqueIds::check_key(
            Some("ids"),
            &[
                generate(0, json!("a"), OpType::Ok, 0),
                generate(1, json!("b"), OpType::Ok, 2),
                generate(2, json!("a"), OpType::Ok, 4),
            ],
        )
        .unwrap();
        let v = v.expect("a duplicate");
        assert_eq!(c.duplicated, 1);
        assert_eq!(
            v.summary,
            "1 id(s) returned by more than one acknowledged generate: \"a\" (2 times)"
        );
        assert_eq!(v.ops.len(), 2);
    }

    #[test]
    fn what_is_not_a_generate_is_named() {
        let mut op = generate(0, json!(1), OpType::Ok, 3);
        op.f = "read".into();
        let e = UniqueIds::check_key(None, &[op]).unwrap_err();
        assert_eq!(
            (e.index, e.message.as_str()),
            (3, "unique-ids has generate, not \"read\"")
        );
        let e = UniqueIds::check_key(None, &[generate(0, Value::Null, OpType::Ok, 3)]).unwrap_err();
        assert!(e.message.contains("not null"), "{}", e.message);
    }
}
