//! Linearizability of a read/write/cas register, each key checked on its own (P-compositionality),
//! with the Wing–Gong–Lowe search as Porcupine does it: a list of call and return events, ops
//! lifted out as they are linearized, a cache of (linearized set, state) already seen, and
//! backtracking at a return whose op could not be placed.
//!
//! `info` ops (outcome unknown) may take effect at any time after their call, or never; `fail`
//! ops never took effect and are dropped; an `info` read is dropped too (it changes nothing).

use std::time::Duration;

pub use super::linearize::BadOp;
use super::linearize::{relevant, search, steps};
use super::{by_key, CheckError, CheckReport, Checker, Completed, OpError, Violation};

/// The register checker (`register`): reads, writes and cas on a register per key, checked for
/// linearizability.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

/// How long the search for the few ops that explain a violation may take, per key.
const SHRINK_BUDGET: Duration = Duration::from_secs(2);

impl Checker for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn what(&self) -> &'static str {
        "linearizable"
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        let keys = by_key(ops);
        let mut violations = Vec::new();
        for (key, ops) in &keys {
            match check_key(key.as_deref(), ops, SHRINK_BUDGET) {
                Ok(Some(v)) => violations.push(v),
                Ok(None) => {}
                Err(bad) => return Err(OpError::new(&bad.op, bad.message).into()),
            }
        }
        Ok(CheckReport::new(self, ops.len(), keys.len(), violations))
    }

    fn verdict(&self, ops: &[Completed]) -> Result<bool, CheckError> {
        for ops in by_key(ops).values() {
            let ops = relevant(ops);
            let st = steps(&ops).map_err(|bad| OpError::new(&bad.op, bad.message))?;
            if search(&ops, &st).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn judges_prefixes(&self) -> bool {
        true
    }
}

/// Checks one key's ops. `Ok(None)`: linearizable; `Ok(Some(v))`: a violation, shrunk to a
/// minimal set of ops that can't be ordered (within `shrink_budget`), with the longest
/// linearizable prefix of them and the op that could not follow.
pub(crate) fn check_key(
    key: Option<&str>,
    ops: &[Completed],
    shrink_budget: Duration,
) -> Result<Option<Violation>, BadOp> {
    let ops = relevant(ops);
    let st = steps(&ops)?;
    let Err(stuck) = search(&ops, &st) else {
        return Ok(None);
    };
    let c = super::counterexample::counterexample(&ops, &stuck, shrink_budget);
    Ok(Some(Violation {
        key: key.map(str::to_string),
        summary: format!(
            "{} operation(s) that no order can explain as one register",
            c.ops.len()
        ),
        explanation: c.explanation,
        ops: c.ops,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;
    use serde_json::json;
    use serde_json::Value;

    fn op(
        p: u64,
        f: &str,
        input: Value,
        output: Value,
        outcome: OpType,
        s: u64,
        e: u64,
    ) -> Completed {
        crate::history::for_test(p, f, (input, output), outcome, s, e)
    }
    fn w(p: u64, v: i64, s: u64, e: u64) -> Completed {
        op(p, "write", json!(v), Value::Null, OpType::Ok, s, e)
    }
    fn r(p: u64, v: Value, s: u64, e: u64) -> Completed {
        op(p, "read", Value::Null, v, OpType::Ok, s, e)
    }
    fn check(ops: &[Completed]) -> Option<Violation> {
        check_key(None, ops, Duration::from_secs(2)).unwrap()
    }

    #[test]
    fn sequential_and_concurrent_histories_are_valid() {
        assert!(check(&[w(0, 1, 0, 10), r(1, json!(1), 20, 30)]).is_none());
        // A read concurrent with a write may see either value.
        assert!(check(&[w(0, 1, 0, 10), w(0, 2, 20, 40), r(1, json!(1), 25, 30)]).is_none());
        assert!(check(&[w(0, 1, 0, 10), w(0, 2, 20, 40), r(1, json!(2), 25, 30)]).is_none());
        // The initial value is null.
        assert!(check(&[r(1, Value::Null, 0, 5), w(0, 1, 10, 20)]).is_none());
        // A cas that succeeded after the write it depends on.
        assert!(check(&[
            w(0, 1, 0, 10),
            op(1, "cas", json!([1, 2]), Value::Null, OpType::Ok, 20, 30),
            r(2, json!(2), 40, 50),
        ])
        .is_none());
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught_and_shrunk() {
        let v = check(&[
            w(0, 1, 0, 10),
            w(0, 2, 20, 30),
            w(3, 9, 1, 2),
            r(2, json!(9), 3, 4),
            r(1, json!(1), 40, 50),
        ])
        .expect("stale read must be a violation");
        let shown: Vec<String> = v.ops.iter().map(|o| o.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].contains("write 1"), "{shown:#?}");
        assert!(shown[1].contains("write 2"), "{shown:#?}");
        assert!(shown[2].contains("read -> 1"), "{shown:#?}");
        assert!(
            v.explanation.contains("returned 1 but the register held 2"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn info_ops_may_or_may_not_have_happened() {
        // An info write may have taken effect: a later read of its value is fine...
        assert!(check(&[
            op(0, "write", json!(5), Value::Null, OpType::Info, 0, 0),
            r(1, json!(5), 100, 110),
        ])
        .is_none());
        // ...or not: a later read of null is fine too.
        assert!(check(&[
            op(0, "write", json!(5), Value::Null, OpType::Info, 0, 0),
            r(1, Value::Null, 100, 110),
        ])
        .is_none());
        // But a value nobody wrote is not.
        assert!(check(&[
            op(0, "write", json!(5), Value::Null, OpType::Info, 0, 0),
            r(1, json!(6), 100, 110),
        ])
        .is_some());
        // A failed write never happened.
        assert!(check(&[
            op(0, "write", json!(5), Value::Null, OpType::Fail, 0, 10),
            r(1, json!(5), 100, 110),
        ])
        .is_some());
    }

    #[test]
    fn unknown_functions_are_errors() {
        let e = check_key(
            None,
            &[op(0, "incr", json!(1), Value::Null, OpType::Ok, 0, 1)],
            Duration::ZERO,
        )
        .unwrap_err();
        assert!(e.message.contains("not \"incr\""), "{}", e.message);
    }
}
