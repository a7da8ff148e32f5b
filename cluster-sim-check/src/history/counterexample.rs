//! A register counterexample a person can read: a key's operations that no order explains,
//! shrunk to a minimal set, with the longest linearizable prefix of that set and the operation
//! that could not follow it, as Knossos and Porcupine show them.
//!
//! The set is kept *closed*: every acknowledged read (and cas) of a value keeps an operation
//! that wrote that value, so the story stays one a person can follow ("read 1 after 2 was
//! written over it"), not the trivial "read 1, which no one wrote". Dropping an operation drops
//! with it the reads only it explained. Shrinking tries halves, then quarters and so on of the
//! set, then single operations until none can go: the result is minimal in that dropping any
//! one of its operations (with the reads only it explains) leaves a linearizable history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::linearize::{search, steps, Stuck};
use super::{Completed, OpType};

/// The few operations that no order explains, and how the search got stuck on them.
#[derive(Debug)]
pub(super) struct Counterexample {
    /// The operations, in invocation order.
    pub(super) ops: Vec<Completed>,
    /// The longest linearizable prefix and the operation that could not follow, in words.
    pub(super) explanation: String,
}

/// What an operation writes and what it needs written to succeed, as interned values.
struct Deps {
    writes: Vec<Option<u32>>,
    needs: Vec<Option<u32>>,
    /// For each value, the operations that need it.
    needers: Vec<Vec<usize>>,
    values: usize,
}

impl Deps {
    fn new(ops: &[Completed]) -> Deps {
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut id = |v: &Value| {
            let next = ids.len() as u32;
            *ids.entry(v.to_string()).or_insert(next)
        };
        let mut writes = Vec::with_capacity(ops.len());
        let mut needs = Vec::with_capacity(ops.len());
        for op in ops {
            let written = match op.f.as_str() {
                "write" => Some(&op.input),
                "cas" => op.input.get(1),
                _ => None,
            };
            // An op of unknown outcome may have failed: it needs nothing to be explained.
            let needed = match (op.f.as_str(), op.outcome) {
                ("read", OpType::Ok) => Some(&op.output),
                ("cas", OpType::Ok) => op.input.get(0),
                _ => None,
            };
            writes.push(written.map(&mut id));
            // The initial null needs no writer.
            needs.push(needed.filter(|v| !v.is_null()).map(&mut id));
        }
        let values = ids.len();
        let mut needers = vec![Vec::new(); values];
        for (i, n) in needs.iter().enumerate() {
            if let Some(v) = n {
                needers[*v as usize].push(i);
            }
        }
        Deps {
            writes,
            needs,
            needers,
            values,
        }
    }

    /// How many kept operations write each value.
    fn counts(&self, kept: &[bool]) -> Vec<u32> {
        let mut c = vec![0u32; self.values];
        for (i, w) in self.writes.iter().enumerate() {
            if let (true, Some(v)) = (kept[i], w) {
                c[*v as usize] += 1;
            }
        }
        c
    }

    /// Whether a kept operation's need is met by another kept operation.
    fn supported(&self, i: usize, counts: &[u32]) -> bool {
        match self.needs[i] {
            None => true,
            Some(v) => counts[v as usize] > u32::from(self.writes[i] == Some(v)),
        }
    }

    /// `kept` without the operations in `drop` and, in turn, the operations they leave
    /// unexplained.
    fn without(&self, kept: &[bool], drop: impl IntoIterator<Item = usize>) -> Vec<bool> {
        let mut kept = kept.to_vec();
        let mut counts = self.counts(&kept);
        let mut stack: Vec<usize> = drop.into_iter().collect();
        while let Some(x) = stack.pop() {
            if !kept[x] {
                continue;
            }
            kept[x] = false;
            if let Some(v) = self.writes[x] {
                counts[v as usize] -= 1;
                for &j in &self.needers[v as usize] {
                    if kept[j] && !self.supported(j, &counts) {
                        stack.push(j);
                    }
                }
            }
        }
        kept
    }

    /// The kept set closed: operations no kept operation explains are dropped, repeatedly.
    fn closed(&self, kept: &[bool]) -> Vec<bool> {
        let counts = self.counts(kept);
        let unsupported = (0..kept.len()).filter(|&i| kept[i] && !self.supported(i, &counts));
        self.without(kept, unsupported.collect::<Vec<_>>())
    }
}

fn subset(ops: &[Completed], kept: &[bool]) -> Vec<Completed> {
    ops.iter()
        .zip(kept)
        .filter(|(_, k)| **k)
        .map(|(o, _)| o.clone())
        .collect()
}

/// Whether the kept operations have no linearization.
fn unexplainable(ops: &[Completed], kept: &[bool]) -> bool {
    let sub = subset(ops, kept);
    !sub.is_empty() && steps(&sub).is_ok_and(|st| search(&sub, &st).is_err())
}

/// Shrinks a key's non-linearizable operations (`ops`, those the search considers) to a
/// minimal closed set, within `budget`; `full` is how the search of all of them got stuck.
pub(super) fn counterexample(ops: &[Completed], full: &Stuck, budget: Duration) -> Counterexample {
    let started = Instant::now();
    let deps = Deps::new(ops);
    let all = vec![true; ops.len()];
    let mut kept = deps.closed(&all);
    if !unexplainable(ops, &kept) {
        // What is wrong is a value no one wrote: one such operation says it all.
        let counts = deps.counts(&all);
        let alone = (0..ops.len())
            .find(|&i| !deps.supported(i, &counts))
            .unwrap_or(full.blocked);
        kept = vec![false; ops.len()];
        kept[alone] = true;
        return explain(ops, &kept, full, true);
    }
    // Everything invoked after the operation the full search could not place is unlikely to
    // matter: try without it first.
    if let Some(end) = ops[full.blocked].end {
        let later: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].start > end).collect();
        let cut = deps.without(&kept, later);
        if unexplainable(ops, &cut) {
            kept = cut;
        }
    }
    let mut minimal = true;
    let mut chunk = kept.iter().filter(|k| **k).count() / 2;
    'shrink: loop {
        let chunk_size = chunk.max(1);
        let mut changed = false;
        let live: Vec<usize> = (0..ops.len()).filter(|&i| kept[i]).collect();
        // Latest first: later operations are the likelier bystanders.
        for group in live.rchunks(chunk_size) {
            if started.elapsed() > budget {
                minimal = false;
                break 'shrink;
            }
            let candidate = deps.without(&kept, group.iter().copied());
            if unexplainable(ops, &candidate) {
                kept = candidate;
                changed = true;
            }
        }
        if chunk_size == 1 && !changed {
            break;
        }
        chunk /= 2;
    }
    explain(ops, &kept, full, minimal)
}

/// The kept operations, in invocation order, with the longest linearizable prefix of them and
/// the operation that could not follow.
fn explain(ops: &[Completed], kept: &[bool], full: &Stuck, minimal: bool) -> Counterexample {
    let sub = subset(ops, kept);
    let stuck = steps(&sub)
        .ok()
        .and_then(|st| search(&sub, &st).err())
        .unwrap_or(Stuck {
            order: Vec::new(),
            blocked: 0,
        });
    let order: Vec<&Completed> = stuck.order.iter().map(|&i| &sub[i]).collect();
    let blocked = &sub[stuck.blocked];
    let held = order
        .iter()
        .rev()
        .find(|o| o.f != "read")
        .map(|o| match o.f.as_str() {
            "cas" => o.input.get(1).cloned().unwrap_or(Value::Null),
            _ => o.input.clone(),
        })
        .unwrap_or(Value::Null);
    let why = match blocked.f.as_str() {
        "read" => format!(
            "it returned {} but the register held {held}",
            blocked.output
        ),
        "cas" => format!(
            "it expected {} but the register held {held}",
            blocked.input.get(0).cloned().unwrap_or(Value::Null)
        ),
        _ => "no order places it before its return".to_string(),
    };
    let (prefix, follow) = if order.is_empty() {
        ("longest linearizable prefix: none".to_string(), "go first")
    } else {
        let shown: Vec<String> = order.iter().map(|o| short(o)).collect();
        (
            format!("longest linearizable prefix: {}", shown.join(", ")),
            "follow",
        )
    };
    let size = if minimal {
        "minimal: without any one of these (and the reads only it explains) the rest is linearizable"
    } else {
        "shrinking stopped at its time limit, so some of these may not be needed"
    };
    let mut shown = sub.clone();
    shown.sort_by_key(|o| (o.start, o.index));
    Counterexample {
        ops: shown,
        explanation: format!(
            "{prefix}; then {} could not {follow}: {why}.\n   {size}; of all {} operations of the key, the longest valid order placed {}",
            short(blocked),
            ops.len(),
            full.order.len()
        ),
    }
}

/// An operation in a few words: `process 2 read -> 1`, `process 0 write 3`.
fn short(op: &Completed) -> String {
    let what = match (op.f.as_str(), op.outcome) {
        ("read", OpType::Ok) => format!("read -> {}", op.output),
        (f, OpType::Info) => format!("{f} {} (unknown outcome)", op.input),
        (f, _) => format!("{f} {}", op.input),
    };
    format!("process {} {what}", op.process)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::history::linearize::relevant;

    /// Whether `shown` is minimal: dropping any one of its operations (with the reads only it
    /// explains) leaves a linearizable history.
    pub(crate) fn is_minimal(shown: &[Completed]) -> bool {
        let deps = Deps::new(shown);
        let all = vec![true; shown.len()];
        unexplainable(shown, &all)
            && (0..shown.len()).all(|i| !unexplainable(shown, &deps.without(&all, [i])))
    }

    #[test]
    fn the_counterexample_of_each_jepsen_etcd_history_is_minimal() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/histories/jepsen");
        let verdicts = std::fs::read_to_string(dir.join("verdicts.txt")).unwrap();
        let mut sizes = Vec::new();
        for line in verdicts.lines().filter(|l| l.ends_with("not-linearizable")) {
            let name = line.split(' ').next().unwrap();
            let history =
                crate::history::read_jepsen_log(&dir.join(format!("{name}.log"))).unwrap();
            let ops = relevant(&crate::history::complete(&history));
            let st = steps(&ops).unwrap();
            let full = search(&ops, &st).expect_err(name);
            let c = counterexample(&ops, &full, Duration::from_secs(60));
            assert!(is_minimal(&c.ops), "{name}: {:#?}", c.ops);
            assert!(
                c.explanation.contains("minimal:"),
                "{name}: {}",
                c.explanation
            );
            sizes.push(c.ops.len());
        }
        assert_eq!(sizes.len(), 79);
    }
}
