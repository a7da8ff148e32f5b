//! List-append: what the reads of each key say about the order of its appends, and the
//! dependencies and anomalies that follow, after Elle's `list-append`.
//!
//! Each value is appended to a key at most once, so a read of `[1 2 3]` names the transactions
//! that appended 1, 2 and 3 and says they did so in that order. The longest read of a key is its
//! version order; every other read must be a prefix of it. From that order:
//! - ww: the writer of each element precedes the writer of the next;
//! - wr: the writer of a read's last element precedes the reader;
//! - rw: a reader precedes the writer of the element right after what it read;
//!
//! and an append no read shows comes after every element read (it can only have been added
//! later), as Elle assumes. A key whose reads disagree (incompatible order, duplicates, a value
//! nobody appended) is reported and gives no edges: no order of it would be more than a guess.

use foldhash::{HashMap, HashMapExt};

use super::anomaly::{Anomaly, Findings, Found};
use super::graph::{Edges, RW, WR, WW};
use super::txns::{Mop, Span, Txns, NIL};
use crate::history::OpError;
use crate::history::OpType;

/// One append: who made it, where it is in its key's version order ([`NIL`]: never read), and
/// whether the same transaction appended to the key again after it.
#[derive(Debug, Clone, Copy)]
struct Rec {
    txn: u32,
    pos: u32,
    intermediate: bool,
}

/// A key's version order: its longest read (if any) and who read it, the transactions whose
/// appends no read shows, and whether the order can be trusted.
#[derive(Debug, Clone, Default)]
struct Order {
    list: Option<(Span, u32)>,
    unobserved: Vec<u32>,
    broken: bool,
    /// The first position whose element a failed transaction appended.
    first_failed: Option<u32>,
}

/// What the appends and reads of a history say, kept to explain the edges of a cycle.
pub(crate) struct Appends<'a> {
    txns: &'a Txns,
    recs: HashMap<(u32, u32), Rec>,
    orders: Vec<Order>,
}

impl<'a> Appends<'a> {
    /// Indexes the history's appends and reads, reports the anomalies that need no cycle, and
    /// adds the dependency edges. `Err` when a value is appended to a key twice.
    pub(crate) fn infer(
        txns: &'a Txns,
        found: &mut Findings,
        edges: &mut Edges,
    ) -> Result<Self, OpError> {
        let mut a = Appends {
            txns,
            recs: HashMap::with_capacity(txns.len()),
            orders: vec![Order::default(); txns.keys.len()],
        };
        a.index_appends()?;
        a.order_keys(found);
        a.check_reads(found);
        a.within_transactions(found);
        a.edges(edges);
        Ok(a)
    }

    fn failed(&self, t: u32) -> bool {
        self.txns.txn(t).outcome == OpType::Fail
    }

    fn ok_txns(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.txns.len() as u32).filter(|&t| self.txns.txn(t).outcome == OpType::Ok)
    }

    fn index_appends(&mut self) -> Result<(), OpError> {
        let txns = self.txns;
        for t in 0..txns.len() as u32 {
            let mops = txns.mops(t);
            for (i, m) in mops.iter().enumerate() {
                let Mop::Append { key, value } = *m else {
                    continue;
                };
                let later = mops[i + 1..]
                    .iter()
                    .any(|m| matches!(*m, Mop::Append { key: k, .. } if k == key));
                let rec = Rec {
                    txn: t,
                    pos: NIL,
                    intermediate: later,
                };
                if let Some(first) = self.recs.insert((key, value), rec) {
                    let other = txns.txn(first.txn);
                    return Err(OpError {
                        index: txns.txn(t).index,
                        message: format!(
                            "{} is appended to {} again (process {}'s txn at {} appended it too): list-append needs each value appended to a key at most once",
                            txns.value(value),
                            txns.key(key),
                            other.process,
                            crate::history::secs(other.start)
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Takes each key's longest read as its order and places every element in it.
    fn order_keys(&mut self, found: &mut Findings) {
        let txns = self.txns;
        for t in self.ok_txns().collect::<Vec<_>>() {
            for m in txns.mops(t) {
                if let Mop::ReadList {
                    key,
                    list: Some(span),
                } = *m
                {
                    let o = &mut self.orders[key as usize];
                    if o.list.is_none_or(|(l, _)| span.len > l.len) {
                        o.list = Some((span, t));
                    }
                }
            }
        }
        for key in 0..self.orders.len() {
            let Some((span, reader)) = self.orders[key].list else {
                continue;
            };
            let key = key as u32;
            for (i, &v) in txns.list(span).iter().enumerate() {
                match self.recs.get_mut(&(key, v)) {
                    None => {
                        self.orders[key as usize].broken = true;
                        found.add(Anomaly::GarbageRead, || garbage(txns, reader, key, span, v));
                    }
                    Some(rec) if rec.pos != NIL => {
                        self.orders[key as usize].broken = true;
                        found.add(Anomaly::DuplicateElements, || {
                            duplicate(txns, reader, key, span, v)
                        });
                    }
                    Some(rec) => {
                        rec.pos = i as u32;
                        let o = &mut self.orders[key as usize];
                        if o.first_failed.is_none() && txns.txn(rec.txn).outcome == OpType::Fail {
                            o.first_failed = Some(i as u32);
                        }
                    }
                }
            }
        }
        for t in 0..txns.len() as u32 {
            if self.failed(t) {
                continue;
            }
            for m in txns.mops(t) {
                if let Mop::Append { key, value } = *m {
                    let o = &mut self.orders[key as usize];
                    if self.recs[&(key, value)].pos == NIL && o.unobserved.last() != Some(&t) {
                        o.unobserved.push(t);
                    }
                }
            }
        }
    }

    /// Every committed read against its key's order: a prefix of it, with nothing from a
    /// failed transaction, and not ending in another transaction's intermediate append.
    fn check_reads(&mut self, found: &mut Findings) {
        let txns = self.txns;
        let mut incompatible = vec![false; self.orders.len()];
        for t in self.ok_txns() {
            for m in txns.mops(t) {
                let Mop::ReadList {
                    key,
                    list: Some(span),
                } = *m
                else {
                    continue;
                };
                let o = &self.orders[key as usize];
                let Some((longest, reader)) = o.list else {
                    continue;
                };
                let read = txns.list(span);
                if !txns.list(longest).starts_with(read) {
                    if !incompatible[key as usize] {
                        incompatible[key as usize] = true;
                        found.add(Anomaly::IncompatibleOrder, || {
                            Found::new(
                                Anomaly::IncompatibleOrder,
                                vec![t, reader],
                                format!(
                                    "T1 read {k} = {} and T2 read {k} = {}: neither is a prefix of the other, so no one order of appends to {k} gives both",
                                    txns.show_list(span),
                                    txns.show_list(longest),
                                    k = txns.key(key)
                                ),
                            )
                        });
                    }
                    self.check_elements(t, key, span, found);
                    continue;
                }
                if let Some(p) = o.first_failed.filter(|&p| p < span.len) {
                    let v = read[p as usize];
                    self.aborted_read(t, key, span, v, found);
                }
                if let Some(&rec) = read.last().and_then(|&last| self.recs.get(&(key, last))) {
                    let last = read[read.len() - 1];
                    if rec.intermediate && rec.txn != t {
                        found.add(Anomaly::G1b, || {
                            intermediate(txns, t, rec.txn, key, span, last)
                        });
                    }
                }
            }
        }
        for (key, bad) in incompatible.into_iter().enumerate() {
            self.orders[key].broken |= bad;
        }
    }

    /// A read that is no prefix of its key's order, element by element.
    fn check_elements(&self, t: u32, key: u32, span: Span, found: &mut Findings) {
        let txns = self.txns;
        let read = txns.list(span);
        let mut seen = std::collections::HashSet::new();
        for &v in read {
            if !seen.insert(v) {
                found.add(Anomaly::DuplicateElements, || {
                    duplicate(txns, t, key, span, v)
                });
            }
            match self.recs.get(&(key, v)) {
                None => found.add(Anomaly::GarbageRead, || garbage(txns, t, key, span, v)),
                Some(rec) if self.failed(rec.txn) => self.aborted_read(t, key, span, v, found),
                Some(_) => {}
            }
        }
    }

    fn aborted_read(&self, t: u32, key: u32, span: Span, v: u32, found: &mut Findings) {
        let txns = self.txns;
        let writer = self.recs[&(key, v)].txn;
        found.add(Anomaly::G1a, || {
            Found::new(
                Anomaly::G1a,
                vec![t, writer],
                format!(
                    "T1 read {} = {}, which holds {}, appended by T2, which failed",
                    txns.key(key),
                    txns.show_list(span),
                    txns.value(v)
                ),
            )
        });
    }

    /// Internal consistency, future reads and lost updates: what one committed transaction's
    /// own micro-operations say.
    fn within_transactions(&self, found: &mut Findings) {
        let txns = self.txns;
        // (key, version read: its last element or NIL) -> transactions that read it and then
        // appended to the key.
        let mut lost: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for t in self.ok_txns() {
            let mops = txns.mops(t);
            // Per key: what this transaction knows the list is (`exact`), or only how it ends
            // (its own appends, before it has read the key).
            let mut known: Vec<(u32, bool, Vec<u32>)> = Vec::new();
            let mut reported = false;
            let mut first_access: Vec<u32> = Vec::new();
            for (i, m) in mops.iter().enumerate() {
                match *m {
                    Mop::Append { key, value } => match known.iter_mut().find(|k| k.0 == key) {
                        Some(k) => k.2.push(value),
                        None => known.push((key, false, vec![value])),
                    },
                    Mop::ReadList {
                        key,
                        list: Some(span),
                    } => {
                        let read = txns.list(span);
                        if let Some(k) = known.iter_mut().find(|k| k.0 == key) {
                            let fits = if k.1 {
                                read == k.2.as_slice()
                            } else {
                                read.ends_with(&k.2)
                            };
                            if !fits && !reported {
                                reported = true;
                                let expected = if k.1 {
                                    format!("[{}]", show(txns, &k.2))
                                } else {
                                    format!("[... {}]", show(txns, &k.2))
                                };
                                found.add(Anomaly::Internal, || {
                                    Found::new(
                                        Anomaly::Internal,
                                        vec![t],
                                        format!(
                                            "T1 read {} = {}, but its own earlier reads and appends say it is {expected}",
                                            txns.key(key),
                                            txns.show_list(span)
                                        ),
                                    )
                                });
                            }
                            k.1 = true;
                            k.2 = read.to_vec();
                        } else {
                            known.push((key, true, read.to_vec()));
                        }
                        self.future_read(t, &mops[i + 1..], key, span, found);
                        if !first_access.contains(&key) {
                            let version = read.last().copied().unwrap_or(NIL);
                            if mops[i + 1..]
                                .iter()
                                .any(|m| matches!(*m, Mop::Append { key: k, .. } if k == key))
                            {
                                lost.entry((key, version)).or_default().push(t);
                            }
                        }
                    }
                    _ => {}
                }
                first_access.push(m.key());
            }
        }
        let mut lost: Vec<((u32, u32), Vec<u32>)> =
            lost.into_iter().filter(|(_, t)| t.len() > 1).collect();
        lost.sort_unstable_by_key(|(_, t)| t[0]);
        for ((key, version), group) in lost {
            found.add(Anomaly::LostUpdate, || {
                let names: Vec<String> = (1..=group.len()).map(|i| format!("T{i}")).collect();
                let all = if group.len() == 2 { "both" } else { "all" };
                let state = match version {
                    NIL => "[]".to_string(),
                    v => format!("a list ending in {}", txns.value(v)),
                };
                Found::new(
                    Anomaly::LostUpdate,
                    group,
                    format!(
                        "{} {all} read {k} = {state} and then appended to {k}: each append was made without the others'",
                        names.join(" and "),
                        k = txns.key(key)
                    ),
                )
            });
        }
    }

    /// A read holding a value its own transaction appends later.
    fn future_read(&self, t: u32, later: &[Mop], key: u32, span: Span, found: &mut Findings) {
        let txns = self.txns;
        let read = txns.list(span);
        for m in later {
            let Mop::Append { key: k, value } = *m else {
                continue;
            };
            if k != key {
                continue;
            }
            // In a trusted order a read is a prefix of it, so the element's place says whether
            // the read holds it.
            let holds = if self.orders[key as usize].broken {
                read.contains(&value)
            } else {
                read.get(self.recs[&(k, value)].pos as usize) == Some(&value)
            };
            if holds {
                found.add(Anomaly::FutureRead, || {
                    Found::new(
                        Anomaly::FutureRead,
                        vec![t],
                        format!(
                            "T1 read {k} = {}, which holds {v}, though T1 appends {v} to {k} only later",
                            txns.show_list(span),
                            k = txns.key(key),
                            v = txns.value(value)
                        ),
                    )
                });
                return;
            }
        }
    }

    /// The element of `key`'s order at `pos` or after it whose writer did not fail.
    fn next_writer(&self, key: u32, from: usize) -> Option<(u32, u32)> {
        let (span, _) = self.orders[key as usize].list?;
        self.txns.list(span)[from..]
            .iter()
            .map(|&v| (v, self.recs[&(key, v)].txn))
            .find(|&(_, w)| !self.failed(w))
    }

    /// The element before `pos` in `key`'s order whose writer did not fail.
    fn prev_writer(&self, key: u32, pos: usize) -> Option<(u32, u32)> {
        let (span, _) = self.orders[key as usize].list?;
        self.txns.list(span)[..pos]
            .iter()
            .rev()
            .map(|&v| (v, self.recs[&(key, v)].txn))
            .find(|&(_, w)| !self.failed(w))
    }

    fn order_len(&self, key: u32) -> usize {
        self.orders[key as usize]
            .list
            .map_or(0, |(s, _)| s.len as usize)
    }

    fn edges(&self, edges: &mut Edges) {
        let txns = self.txns;
        for (key, o) in self.orders.iter().enumerate() {
            if o.broken {
                continue;
            }
            let key = key as u32;
            let mut prev: Option<u32> = None;
            if let Some((span, _)) = o.list {
                for &v in txns.list(span) {
                    let w = self.recs[&(key, v)].txn;
                    if self.failed(w) {
                        continue;
                    }
                    if let Some(p) = prev {
                        edges.add(p, w, WW);
                    }
                    prev = Some(w);
                }
            }
            if let Some(p) = prev {
                for &u in &o.unobserved {
                    edges.add(p, u, WW);
                }
            }
        }
        for t in self.ok_txns() {
            for m in txns.mops(t) {
                let Mop::ReadList {
                    key,
                    list: Some(span),
                } = *m
                else {
                    continue;
                };
                let o = &self.orders[key as usize];
                if o.broken {
                    continue;
                }
                let read = txns.list(span);
                if let Some(&last) = read.last() {
                    let w = self.recs[&(key, last)].txn;
                    if !self.failed(w) {
                        edges.add(w, t, WR);
                    }
                }
                match self.next_writer(key, read.len()) {
                    Some((_, w)) => edges.add(t, w, RW),
                    None => {
                        for &u in &o.unobserved {
                            edges.add(t, u, RW);
                        }
                    }
                }
            }
        }
    }

    /// Why `a -kind-> b`, naming them `an` and `bn`: the key and values that prove it.
    pub(crate) fn why(&self, a: u32, b: u32, kind: u8, an: &str, bn: &str) -> Option<String> {
        let txns = self.txns;
        match kind {
            WW => txns.mops(b).iter().find_map(|m| {
                let Mop::Append { key, value } = *m else {
                    return None;
                };
                if self.orders[key as usize].broken {
                    return None;
                }
                let pos = self.recs[&(key, value)].pos;
                let k = txns.key(key);
                let v = txns.value(value);
                if pos != NIL {
                    let (pv, w) = self.prev_writer(key, pos as usize)?;
                    (w == a).then(|| {
                        format!(
                            "{an} appended {} to {k} and {bn} appended {v} after it",
                            txns.value(pv)
                        )
                    })
                } else {
                    let (pv, w) = self.prev_writer(key, self.order_len(key))?;
                    (w == a).then(|| {
                        format!(
                            "{bn}'s append of {v} to {k} was never read, so it came after {}, the last element read there, which {an} appended",
                            txns.value(pv)
                        )
                    })
                }
            }),
            WR => txns.mops(b).iter().find_map(|m| {
                let Mop::ReadList {
                    key,
                    list: Some(span),
                } = *m
                else {
                    return None;
                };
                let &last = txns.list(span).last()?;
                (self.recs.get(&(key, last))?.txn == a).then(|| {
                    format!(
                        "{bn} read {} = {}, whose last element {} {an} appended",
                        txns.key(key),
                        txns.show_list(span),
                        txns.value(last)
                    )
                })
            }),
            RW => txns.mops(a).iter().find_map(|m| {
                let Mop::ReadList {
                    key,
                    list: Some(span),
                } = *m
                else {
                    return None;
                };
                if self.orders[key as usize].broken {
                    return None;
                }
                let (k, read) = (txns.key(key), txns.show_list(span));
                match self.next_writer(key, span.len as usize) {
                    Some((v, w)) => (w == b).then(|| {
                        format!(
                            "{an} read {k} = {read} and did not see {bn}'s append of {}, the next element",
                            txns.value(v)
                        )
                    }),
                    None => {
                        let v = txns.mops(b).iter().find_map(|m| match *m {
                            Mop::Append { key: k2, value } if k2 == key => Some(value),
                            _ => None,
                        })?;
                        self.orders[key as usize].unobserved.contains(&b).then(|| {
                            format!(
                                "{an} read {k} = {read} and did not see {bn}'s append of {} (never read, so after every element read there)",
                                txns.value(v)
                            )
                        })
                    }
                }
            }),
            _ => None,
        }
    }
}

fn show(txns: &Txns, values: &[u32]) -> String {
    values
        .iter()
        .map(|&v| txns.value(v))
        .collect::<Vec<_>>()
        .join(" ")
}

fn garbage(txns: &Txns, t: u32, key: u32, span: Span, v: u32) -> Found {
    Found::new(
        Anomaly::GarbageRead,
        vec![t],
        format!(
            "T1 read {k} = {}: no transaction appended {} to {k}",
            txns.show_list(span),
            txns.value(v),
            k = txns.key(key)
        ),
    )
}

fn duplicate(txns: &Txns, t: u32, key: u32, span: Span, v: u32) -> Found {
    Found::new(
        Anomaly::DuplicateElements,
        vec![t],
        format!(
            "T1 read {} = {}: {} is in it twice, but was appended once",
            txns.key(key),
            txns.show_list(span),
            txns.value(v)
        ),
    )
}

fn intermediate(txns: &Txns, t: u32, writer: u32, key: u32, span: Span, v: u32) -> Found {
    let mops = txns.mops(writer);
    let after = mops
        .iter()
        .skip_while(|m| **m != Mop::Append { key, value: v })
        .skip(1)
        .find_map(|m| match *m {
            Mop::Append { key: k, value } if k == key => Some(txns.value(value)),
            _ => None,
        })
        .unwrap_or_default();
    Found::new(
        Anomaly::G1b,
        vec![t, writer],
        format!(
            "T1 read {k} = {}, ending in {v}, which T2 appended before appending {after} to {k}: a state T2 never committed",
            txns.show_list(span),
            k = txns.key(key),
            v = txns.value(v)
        ),
    )
}
