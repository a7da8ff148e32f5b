//! The total-queue checker, after Jepsen's `checker/total-queue`: what goes in must come out.
//! Every acknowledged `enqueue` is dequeued exactly once (by a `dequeue` or the final `drain`,
//! whose value is the list of what it took); nothing is dequeued more often than it was
//! enqueued, and nothing that was never enqueued comes out. An enqueue of unknown outcome may
//! or may not come out.
//!
//! A lost enqueue can only be told from one still queued once the queue has been emptied, so a
//! key's history must end drained: an acknowledged `drain`, or a `dequeue` that found the queue
//! empty (`ok` with `null`) invoked after every acknowledged enqueue completed.

use std::collections::BTreeMap;
use std::fmt;

use super::{by_key, CheckError, CheckReport, Checker, Completed, OpError, OpType, Violation};

/// The total-queue checker (`queue`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Queue;

/// What the queue checker counted, over every key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Enqueues invoked.
    pub attempted: usize,
    /// Enqueues acknowledged.
    pub acknowledged: usize,
    /// Elements dequeued (drains included).
    pub dequeued: usize,
    /// Acknowledged enqueues never dequeued.
    pub lost: usize,
    /// Dequeues beyond what was enqueued of a value.
    pub duplicated: usize,
    /// Dequeued elements no one enqueued.
    pub unexpected: usize,
    /// Enqueues of unknown outcome that came out.
    pub recovered: usize,
}

impl fmt::Display for QueueCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} enqueues attempted, {} acknowledged, {} dequeued; {} lost, {} duplicated, {} unexpected, {} unknown but dequeued",
            self.attempted,
            self.acknowledged,
            self.dequeued,
            self.lost,
            self.duplicated,
            self.unexpected,
            self.recovered
        )
    }
}

/// Per value: acknowledged and unknown enqueues, dequeues, and the operations involved.
#[derive(Default)]
struct Tally<'a> {
    ok: usize,
    unknown: usize,
    out: usize,
    enqueues: Vec<&'a Completed>,
    dequeues: Vec<&'a Completed>,
}

impl Checker for Queue {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn what(&self) -> &'static str {
        "drained of every acknowledged enqueue exactly once"
    }

    fn check(&self, ops: &[Completed]) -> Result<CheckReport, CheckError> {
        let keys = by_key(ops);
        let mut violations = Vec::new();
        let mut total = QueueCounts::default();
        for (key, ops) in &keys {
            let (c, v) = Queue::check_key(key.as_deref(), ops)?;
            total.attempted += c.attempted;
            total.acknowledged += c.acknowledged;
            total.dequeued += c.dequeued;
            total.lost += c.lost;
            total.duplicated += c.duplicated;
            total.unexpected += c.unexpected;
            total.recovered += c.recovered;
            violations.extend(v);
        }
        Ok(CheckReport::new(self, ops.len(), keys.len(), violations).with_details(total))
    }
}

impl Queue {
    /// Judges one key's operations: its counts, and a violation if the queue lost, duplicated
    /// or invented an element.
    pub(crate) fn check_key(
        key: Option<&str>,
        ops: &[Completed],
    ) -> Result<(QueueCounts, Option<Violation>), OpError> {
        let mut counts = QueueCounts::default();
        let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
        let mut drained: Option<&Completed> = None;
        let last_enqueue = ops
            .iter()
            .filter(|o| o.f == "enqueue" && o.outcome == OpType::Ok)
            .filter_map(|o| o.end)
            .max();
        for op in ops {
            match (op.f.as_str(), op.outcome) {
                ("enqueue", outcome) => {
                    counts.attempted += 1;
                    let t = tally.entry(op.input.to_string()).or_default();
                    match outcome {
                        OpType::Ok => {
                            counts.acknowledged += 1;
                            t.ok += 1;
                            t.enqueues.push(op);
                        }
                        OpType::Info => {
                            t.unknown += 1;
                            t.enqueues.push(op);
                        }
                        _ => {}
                    }
                }
                ("dequeue", OpType::Ok) if op.output.is_null() => {
                    if last_enqueue.is_none_or(|e| op.start > e) {
                        drained = Some(op);
                    }
                }
                ("dequeue", OpType::Ok) => {
                    counts.dequeued += 1;
                    let t = tally.entry(op.output.to_string()).or_default();
                    t.out += 1;
                    t.dequeues.push(op);
                }
                ("drain", OpType::Ok) => {
                    let Some(items) = op.output.as_array() else {
                        return Err(OpError::new(
                            op,
                            format!("a drain returns the list it dequeued, not {}", op.output),
                        ));
                    };
                    drained = Some(op);
                    for v in items {
                        counts.dequeued += 1;
                        let t = tally.entry(v.to_string()).or_default();
                        t.out += 1;
                        t.dequeues.push(op);
                    }
                }
                ("dequeue" | "drain", _) => {}
                (other, _) => {
                    return Err(OpError::new(
                        op,
                        format!("a queue has enqueue, dequeue and drain, not {other:?}"),
                    ))
                }
            }
        }
        let Some(drained) = drained else {
            let at = ops.last().map(|o| o.index).unwrap_or(0);
            return Err(OpError {
                index: at,
                message: format!(
                    "{}the queue is never drained: a queue history ends with a drain (or a dequeue that finds it empty) so that a lost enqueue can be told from one still queued",
                    key.map(|k| format!("key {k}: ")).unwrap_or_default()
                ),
            });
        };
        let (mut lost, mut duplicated, mut unexpected) = (Vec::new(), Vec::new(), Vec::new());
        for (v, t) in &tally {
            let attempts = t.ok + t.unknown;
            if t.out > 0 && attempts == 0 {
                counts.unexpected += t.out;
                unexpected.push((v, t));
            } else if t.out > attempts {
                counts.duplicated += t.out - attempts;
                duplicated.push((v, t));
            }
            if t.ok > t.out {
                counts.lost += t.ok - t.out;
                lost.push((v, t));
            }
            counts.recovered += t.out.saturating_sub(t.ok).min(t.unknown);
        }
        if lost.is_empty() && duplicated.is_empty() && unexpected.is_empty() {
            return Ok((counts, None));
        }
        let list = |xs: &[(&String, &Tally)], detail: &dyn Fn(&Tally) -> String| {
            xs.iter()
                .take(20)
                .map(|(v, t)| format!("{v}{}", detail(t)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !lost.is_empty() {
            parts.push(format!(
                "{} acknowledged enqueue(s) never dequeued: {}",
                counts.lost,
                list(&lost, &|_| String::new())
            ));
        }
        if !duplicated.is_empty() {
            parts.push(format!(
                "{} value(s) dequeued more often than enqueued: {}",
                duplicated.len(),
                list(&duplicated, &|t| format!(
                    " ({} out, {} in)",
                    t.out,
                    t.ok + t.unknown
                ))
            ));
        }
        if !unexpected.is_empty() {
            parts.push(format!(
                "{} element(s) dequeued that no one enqueued: {}",
                counts.unexpected,
                list(&unexpected, &|_| String::new())
            ));
        }
        let mut shown: Vec<Completed> = Vec::new();
        for (_, t) in lost.iter().take(10) {
            shown.extend(t.enqueues.iter().map(|o| (*o).clone()));
        }
        for (_, t) in duplicated.iter().chain(&unexpected).take(5) {
            shown.extend(t.dequeues.iter().map(|o| (*o).clone()));
        }
        shown.sort_by_key(|o| o.index);
        shown.dedup_by_key(|o| o.index);
        Ok((
            counts.clone(),
            Some(Violation {
                key: key.map(str::to_string),
                summary: parts.join("; "),
                explanation: format!(
                    "the queue was drained by process {} at {}",
                    drained.process,
                    super::secs(drained.start)
                ),
                ops: shown,
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn op(p: u64, f: &str, v: Value, outcome: OpType, at: u64) -> Completed {
        let io = if f == "enqueue" {
            (v, Value::Null)
        } else {
            (Value::Null, v)
        };
        crate::history::for_test(p, f, io, outcome, at, at + 1)
    }

    fn items(v: &[i64]) -> Value {
        Value::from(v.to_vec())
    }

    fn check(ops: &[Completed]) -> (QueueCounts, Option<Violation>) {
        Queue::check_key(None, ops).unwrap()
    }

    #[test]
    fn everything_in_comes_out_once() {
        let (c, v) = check(&[
            op(0, "enqueue", json!(1), OpType::Ok, 0),
            op(1, "enqueue", json!(2), OpType::Info, 2),
            op(2, "enqueue", json!(3), OpType::Info, 4),
            op(3, "enqueue", json!(4), OpType::Fail, 6),
            op(0, "dequeue", json!(1), OpType::Ok, 10),
            op(0, "dequeue", Value::Null, OpType::Fail, 12),
            op(1, "drain", items(&[2]), OpType::Ok, 20),
        ]);
        assert!(v.is_none(), "{}", v.unwrap());
        assert_eq!(
            c.to_string(),
            "4 enqueues attempted, 1 acknowledged, 2 dequeued; 0 lost, 0 duplicated, 0 unexpected, 1 unknown but dequeued"
        );
        // A dequeue that finds the queue empty after the last enqueue drains it too.
        let (_, v) = check(&[
            op(0, "enqueue", json!(1), OpType::Ok, 0),
            op(0, "dequeue", json!(1), OpType::Ok, 10),
            op(0, "dequeue", Value::Null, OpType::Ok, 12),
        ]);
        assert!(v.is_none());
    }

    #[test]
    fn lost_duplicated_and_unexpected_elements_are_named() {
        let (c, v) = check(&[
            op(0, "enqueue", json!(1), OpType::Ok, 0),
            op(1, "enqueue", json!(2), OpType::Ok, 2),
            op(2, "enqueue", json!(3), OpType::Ok, 4),
            op(0, "dequeue", json!(2), OpType::Ok, 10),
            op(1, "drain", items(&[2, 3, 9]), OpType::Ok, 20),
        ]);
        let v = v.expect("a bad queue");
        assert_eq!((c.lost, c.duplicated, c.unexpected), (1, 1, 1));
        assert_eq!(
            v.summary,
            "1 acknowledged enqueue(s) never dequeued: 1; 1 value(s) dequeued more often than enqueued: 2 (2 out, 1 in); 1 element(s) dequeued that no one enqueued: 9"
        );
        let shown: Vec<String> = v.ops.iter().map(|o| o.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(shown[0].contains("enqueue 1 (ok"), "{shown:#?}");
    }

    #[test]
    fn an_undrained_queue_cannot_be_judged() {
        let e = Queue::check_key(
            None,
            &[
                op(0, "enqueue", json!(1), OpType::Ok, 0),
                op(0, "dequeue", Value::Null, OpType::Ok, 0),
            ],
        )
        .unwrap_err();
        assert!(e.message.contains("never drained"), "{}", e.message);
        let e = Queue::check_key(None, &[op(0, "peek", json!(1), OpType::Ok, 5)]).unwrap_err();
        assert_eq!(
            (e.index, e.message.as_str()),
            (5, "a queue has enqueue, dequeue and drain, not \"peek\"")
        );
    }
}
