//! The Wing–Gong–Lowe search for a linearization of one register's operations, as Porcupine
//! does it: a list of call and return events, ops lifted out as they are linearized, a cache of
//! (linearized set, state) already seen, and backtracking at a return whose op could not be
//! placed. The register checker and its counterexamples both run it.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Completed, OpType};

/// One op as the search sees it: interned values, times, outcome.
#[derive(Debug, Clone)]
pub(super) struct Step {
    kind: Kind,
    ok: bool,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Write(u32),
    Read(u32),
    Cas(u32, u32),
}

/// A register op that can't be checked (unknown function, bad cas value).
#[derive(Debug, Clone, PartialEq)]
pub struct BadOp {
    /// The op.
    pub op: Box<Completed>,
    /// What is wrong with it.
    pub message: String,
}

/// Interned values: `null` is 0.
#[derive(Default)]
struct Values(HashMap<String, u32>);

impl Values {
    fn id(&mut self, v: &Value) -> u32 {
        if v.is_null() {
            return 0;
        }
        let next = self.0.len() as u32 + 1;
        *self.0.entry(v.to_string()).or_insert(next)
    }
}

pub(super) fn steps(ops: &[Completed]) -> Result<Vec<Step>, BadOp> {
    let mut values = Values::default();
    ops.iter()
        .map(|op| {
            let bad = |m: &str| BadOp {
                op: Box::new(op.clone()),
                message: m.to_string(),
            };
            let kind = match op.f.as_str() {
                "write" => Kind::Write(values.id(&op.input)),
                "read" => Kind::Read(values.id(&op.output)),
                "cas" => match op.input.as_array().map(Vec::as_slice) {
                    Some([old, new]) => Kind::Cas(values.id(old), values.id(new)),
                    _ => return Err(bad("a cas value must be [old, new]")),
                },
                other => {
                    return Err(bad(&format!(
                        "a register has read, write and cas, not {other:?}"
                    )))
                }
            };
            Ok(Step {
                kind,
                ok: op.outcome == OpType::Ok,
            })
        })
        .collect()
}

fn apply(state: u32, kind: Kind) -> Option<u32> {
    match kind {
        Kind::Write(v) => Some(v),
        Kind::Read(v) => (v == state).then_some(state),
        Kind::Cas(old, new) => (old == state).then_some(new),
    }
}

/// The ops of one key that the search considers: ok ops, and info ops that change state.
pub(super) fn relevant(ops: &[Completed]) -> Vec<Completed> {
    ops.iter()
        .filter(|o| match o.outcome {
            OpType::Ok => true,
            OpType::Info => o.f != "read",
            _ => false,
        })
        .cloned()
        .collect()
}

/// How a failed search ended: the longest order found and the op that could not follow it.
#[derive(Debug, Clone)]
pub(super) struct Stuck {
    pub(super) order: Vec<usize>,
    pub(super) blocked: usize,
}

const HEAD: usize = 0;

/// Doubly linked event list over an array; node 0 is the head sentinel, `usize::MAX` the end.
struct Events {
    prev: Vec<usize>,
    next: Vec<usize>,
    /// (op index, is call)
    what: Vec<(usize, bool)>,
    /// Each op's call node and return node.
    call_of: Vec<usize>,
    ret_of: Vec<Option<usize>>,
}

const END: usize = usize::MAX;

impl Events {
    fn new(ops: &[Completed]) -> Self {
        // (time, order on ties: calls first so that touching ops count as concurrent, op, call?)
        let mut ev: Vec<(u64, u8, usize, bool)> = Vec::new();
        for (i, o) in ops.iter().enumerate() {
            ev.push((o.start, 0, i, true));
            if o.outcome == OpType::Ok {
                ev.push((o.end.unwrap_or(o.start), 1, i, false));
            }
        }
        ev.sort_unstable();
        let n = ev.len() + 1;
        let mut e = Events {
            prev: vec![END; n],
            next: vec![END; n],
            what: vec![(0, false); n],
            call_of: vec![0; ops.len()],
            ret_of: vec![None; ops.len()],
        };
        for (k, &(_, _, op, call)) in ev.iter().enumerate() {
            let node = k + 1;
            e.what[node] = (op, call);
            e.prev[node] = k;
            e.next[k] = node;
            if call {
                e.call_of[op] = node;
            } else {
                e.ret_of[op] = Some(node);
            }
        }
        e
    }

    fn unlink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = x;
        if x != END {
            self.prev[x] = p;
        }
    }

    fn relink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = n;
        if x != END {
            self.prev[x] = n;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(r) = self.ret_of[op] {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret_of[op] {
            self.relink(r);
        }
        self.relink(self.call_of[op]);
    }
}

/// Searches for a linearization. `Ok(())` when one exists, else how far it got.
pub(super) fn search(ops: &[Completed], steps: &[Step]) -> Result<(), Stuck> {
    let mut ev = Events::new(ops);
    let words = ops.len().div_ceil(64);
    let mut bits = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, u32)> = HashSet::new();
    let mut stack: Vec<(usize, u32)> = Vec::new();
    let mut state = 0u32;
    let mut remaining_ok = steps.iter().filter(|s| s.ok).count();
    let mut best: Option<Stuck> = None;
    let mut entry = ev.next[HEAD];
    loop {
        if remaining_ok == 0 {
            return Ok(());
        }
        let at_return = entry == END || !ev.what[entry].1;
        if !at_return {
            let op = ev.what[entry].0;
            if let Some(next_state) = apply(state, steps[op].kind) {
                bits[op / 64] |= 1 << (op % 64);
                if cache.insert((bits.clone(), next_state)) {
                    stack.push((op, state));
                    state = next_state;
                    ev.lift(op);
                    if steps[op].ok {
                        remaining_ok -= 1;
                    }
                    entry = ev.next[HEAD];
                    continue;
                }
                bits[op / 64] &= !(1 << (op % 64));
            }
            entry = ev.next[entry];
            continue;
        }
        // A return whose op was not linearized yet: this order can't be extended.
        if best.as_ref().is_none_or(|b| stack.len() > b.order.len()) {
            let blocked = if entry == END { 0 } else { ev.what[entry].0 };
            best = Some(Stuck {
                order: stack.iter().map(|(op, _)| *op).collect(),
                blocked,
            });
        }
        let Some((op, prev_state)) = stack.pop() else {
            return Err(best.unwrap_or(Stuck {
                order: Vec::new(),
                blocked: 0,
            }));
        };
        state = prev_state;
        bits[op / 64] &= !(1 << (op % 64));
        ev.unlift(op);
        if steps[op].ok {
            remaining_ok += 1;
        }
        entry = ev.next[ev.call_of[op]];
    }
}
