//! The counter checker, after Jepsen's `checker/counter`: `add` operations change a counter per
//! key (from 0) and every `read` must return a value some order of the adds allows. A read
//! counts every add acknowledged before the read began, may count any add (acknowledged or of
//! unknown outcome) invoked before it ended, and counts no failed add; so it must lie between
//! the sum of the certain adds plus the possible negative ones and the sum of the certain adds
//! plus the possible positive ones.

use std::fmt;

use serde_json::Value;

use super::{by_key, CheckError, CheckReport, Checker, Completed, OpError, OpType, Violation};

/// The counter checker (`counter`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Counter;

/// What the counter checker counted, over every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CounterCounts {
    /// Completed reads.
    pub reads: usize,
    /// Reads outside the bounds the adds allow.
    pub out_of_bounds: usize,
    /// Adds acknowledged.
    pub acknowledged: usize,
    /// Adds whose outcome is unknown.
    pub unknown: usize,
    /// Adds that failed.
    pub failed: usize,
}

impl fmt::Display for CounterCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} reads, {} out of bounds; {} adds acknowledged, {} unknown, {} failed",
            self.reads, self.out_of_bounds, self.acknowledged, self.unknown, self.failed
        )
    }
}

impl Checker for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn judges_prefixes(&self) -> bool {
        true
    }

    fn what(&self) -> &'static str {
        "within the bounds of acknowledged and possible adds"
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        let keys = by_key(ops);
        let mut violations = Vec::new();
        let mut total = CounterCounts::default();
        for (key, ops) in &keys {
            let (c, v) = Counter::check_key(key.as_deref(), ops)?;
            total.reads += c.reads;
            total.out_of_bounds += c.out_of_bounds;
            total.acknowledged += c.acknowledged;
            total.unknown += c.unknown;
            total.failed += c.failed;
            violations.extend(v);
        }
        Ok(CheckReport::new(self, ops.len(), keys.len(), violations).with_details(total))
    }
}

impl Counter {
    /// Judges one key's operations: its counts, and a violation if a read is out of bounds.
    pub(crate) fn check_key(
        key: Option<&str>,
        ops: &[Completed],
    ) -> Result<(CounterCounts, Option<Violation>), OpError> {
        let mut counts = CounterCounts::default();
        // (start, value) of every add that may have happened; (end, value) of those that did.
        let mut possible: Vec<(u64, i128)> = Vec::new();
        let mut certain: Vec<(u64, i128)> = Vec::new();
        let mut reads: Vec<(&Completed, i128)> = Vec::new();
        for op in ops {
            match (op.f.as_str(), op.outcome) {
                ("add", outcome) => {
                    let v = integer(op, &op.input, "an add's value")?;
                    match outcome {
                        OpType::Ok => {
                            counts.acknowledged += 1;
                            certain.push((op.end.unwrap_or(op.start), v));
                            possible.push((op.start, v));
                        }
                        OpType::Fail => counts.failed += 1,
                        _ => {
                            counts.unknown += 1;
                            possible.push((op.start, v));
                        }
                    }
                }
                ("read", OpType::Ok) => {
                    counts.reads += 1;
                    reads.push((op, integer(op, &op.output, "a read's value")?));
                }
                ("read", _) => {}
                (other, _) => {
                    return Err(OpError::new(
                        op,
                        format!("a counter has add and read, not {other:?}"),
                    ))
                }
            }
        }
        possible.sort_unstable_by_key(|a| a.0);
        certain.sort_unstable_by_key(|a| a.0);
        let sums = |adds: &[(u64, i128)]| {
            let mut s = vec![(0i128, 0i128, 0i128)];
            for &(_, v) in adds {
                let (all, pos, neg) = *s.last().unwrap_or(&(0, 0, 0));
                s.push((all + v, pos + v.max(0), neg + v.min(0)));
            }
            s
        };
        let (possible_sums, certain_sums) = (sums(&possible), sums(&certain));
        let mut bad: Vec<(&Completed, i128, i128, i128)> = Vec::new();
        for &(read, value) in &reads {
            let end = read.end.unwrap_or(read.start);
            // Touching intervals are concurrent: an add invoked at the instant the read ended
            // may count, one acknowledged at the instant it began need not.
            let (_, pos_all, neg_all) = possible_sums[possible.partition_point(|a| a.0 <= end)];
            let (sum_d, pos_d, neg_d) = certain_sums[certain.partition_point(|a| a.0 < read.start)];
            let lower = sum_d + (neg_all - neg_d);
            let upper = sum_d + (pos_all - pos_d);
            if value < lower || value > upper {
                bad.push((read, value, lower, upper));
            }
        }
        counts.out_of_bounds = bad.len();
        if bad.is_empty() {
            return Ok((counts, None));
        }
        let explanation = bad
            .iter()
            .take(3)
            .map(|(read, value, lower, upper)| {
                let allowed = if lower == upper {
                    format!("only {lower}")
                } else {
                    format!("{lower} to {upper}")
                };
                format!(
                    "process {} read {value} at {}..{}, but the adds allow {allowed}",
                    read.process,
                    super::secs(read.start),
                    read.end.map_or("?".into(), super::secs)
                )
            })
            .collect::<Vec<_>>()
            .join(";\n   ");
        let violation = Violation {
            key: key.map(str::to_string),
            summary: format!(
                "{} read(s) outside what the adds allow (each counts every add acknowledged before it began, and may count those invoked before it ended)",
                bad.len()
            ),
            explanation,
            ops: bad.iter().take(20).map(|b| b.0.clone()).collect(),
        };
        Ok((counts, Some(violation)))
    }
}

fn integer(op: &Completed, v: &Value, what: &str) -> Result<i128, OpError> {
    v.as_i64()
        .map(i128::from)
        .ok_or_else(|| OpError::new(op, format!("{what} is an integer, not {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(p: u64, f: &str, v: Value, outcome: OpType, (s, e): (u64, u64)) -> Completed {
        let io = if f == "read" {
            (Value::Null, v)
        } else {
            (v, Value::Null)
        };
        crate::history::for_test(p, f, io, outcome, s, e)
    }

    fn check(ops: &[Completed]) -> (CounterCounts, Option<Violation>) {
        Counter::check_key(None, ops).unwrap()
    }

    #[test]
    fn reads_within_bounds_pass() {
        let (c, v) = check(&[
            op(0, "add", json!(1), OpType::Ok, (0, 10)),
            op(1, "add", json!(2), OpType::Info, (5, 0)),
            op(2, "add", json!(4), OpType::Fail, (5, 6)),
            // After the first add: 1, or 3 with the unknown one.
            op(3, "read", json!(1), OpType::Ok, (20, 30)),
            op(3, "read", json!(3), OpType::Ok, (40, 50)),
            // Concurrent with the first add: 0 is fine too.
            op(4, "read", json!(0), OpType::Ok, (5, 8)),
            op(0, "add", json!(-1), OpType::Ok, (60, 70)),
            op(4, "read", json!(0), OpType::Ok, (80, 90)),
        ]);
        assert!(v.is_none(), "{}", v.unwrap());
        assert_eq!(
            c.to_string(),
            "4 reads, 0 out of bounds; 2 adds acknowledged, 1 unknown, 1 failed"
        );
    }

    #[test]
    fn a_read_outside_the_bounds_is_caught() {
        let (c, v) = check(&[
            op(0, "add", json!(1), OpType::Ok, (0, 10)),
            op(1, "add", json!(2), OpType::Ok, (20, 30)),
            // Too low: both adds were acknowledged before it began.
            op(2, "read", json!(1), OpType::Ok, (40, 50)),
            // Too high: the failed add never happened.
            op(0, "add", json!(10), OpType::Fail, (60, 70)),
            op(2, "read", json!(13), OpType::Ok, (80, 90)),
        ]);
        let v = v.expect("two reads out of bounds");
        assert_eq!(c.out_of_bounds, 2);
        assert_eq!(
            v.explanation,
            "process 2 read 1 at 0.000s..0.000s, but the adds allow only 3;\n   process 2 read 13 at 0.000s..0.000s, but the adds allow only 3"
        );
        assert_eq!(v.ops.len(), 2);
    }

    #[test]
    fn what_is_not_a_counter_is_named() {
        let e =
            Counter::check_key(None, &[op(0, "add", json!("x"), OpType::Ok, (0, 1))]).unwrap_err();
        assert_eq!(e.message, "an add's value is an integer, not \"x\"");
        let e =
            Counter::check_key(None, &[op(0, "incr", json!(1), OpType::Ok, (7, 8))]).unwrap_err();
        assert_eq!(
            (e.index, e.message.as_str()),
            (7, "a counter has add and read, not \"incr\"")
        );
    }
}
