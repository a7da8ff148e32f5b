//! Read-write registers: dependencies and anomalies from unique written values, after Elle's
//! `rw-register`.
//!
//! Each value is written to a key at most once, so a read names the transaction that wrote what
//! it saw: a wr edge. The order of versions is not observable from reads of single values;
//! what is certain is that the initial `null` precedes every written version, so a transaction
//! that read `null` precedes (rw) every transaction that wrote the key. That is the inference
//! Elle makes by default; it assumes nothing about how the database orders writes (Elle's
//! `wfr-keys`, `sequential-keys` and `linearizable-keys` options would).
//!
//! Only a transaction's external reads (its first access to a key) and external writes (its
//! last write to a key) are versions others can see; the rest is checked inside the
//! transaction (internal consistency).

use foldhash::{HashMap, HashMapExt};

use super::anomaly::{Anomaly, Findings, Found};
use super::graph::{Edges, RW, WR};
use super::txns::{Mop, Txns, NIL};
use crate::history::OpError;
use crate::history::OpType;

/// One write: who made it, and whether the same transaction wrote the key again after it.
#[derive(Debug, Clone, Copy)]
struct Rec {
    txn: u32,
    intermediate: bool,
}

/// What the writes and reads of a history say, kept to explain the edges of a cycle.
pub(crate) struct Registers<'a> {
    txns: &'a Txns,
    recs: HashMap<(u32, u32), Rec>,
    /// Per key: the transactions (not failed) whose last write of the key others may see.
    writers: Vec<Vec<u32>>,
}

impl<'a> Registers<'a> {
    /// Indexes the history's writes, checks its reads, and adds the dependency edges. `Err`
    /// when a value is written to a key twice.
    pub(crate) fn infer(
        txns: &'a Txns,
        found: &mut Findings,
        edges: &mut Edges,
    ) -> Result<Self, OpError> {
        let mut r = Registers {
            txns,
            recs: HashMap::with_capacity(txns.len()),
            writers: vec![Vec::new(); txns.keys.len()],
        };
        r.index_writes()?;
        r.check(found, edges);
        Ok(r)
    }

    fn failed(&self, t: u32) -> bool {
        self.txns.txn(t).outcome == OpType::Fail
    }

    fn index_writes(&mut self) -> Result<(), OpError> {
        let txns = self.txns;
        for t in 0..txns.len() as u32 {
            let mops = txns.mops(t);
            for (i, m) in mops.iter().enumerate() {
                let Mop::Write { key, value } = *m else {
                    continue;
                };
                let later = mops[i + 1..]
                    .iter()
                    .any(|m| matches!(*m, Mop::Write { key: k, .. } if k == key));
                if let Some(first) = self.recs.insert(
                    (key, value),
                    Rec {
                        txn: t,
                        intermediate: later,
                    },
                ) {
                    let other = txns.txn(first.txn);
                    return Err(OpError {
                        index: txns.txn(t).index,
                        message: format!(
                            "{} is written to {} again (process {}'s txn at {} wrote it too): rw-register needs each value written to a key at most once",
                            txns.value(value),
                            txns.key(key),
                            other.process,
                            crate::history::secs(other.start)
                        ),
                    });
                }
                if !later && !self.failed(t) {
                    self.writers[key as usize].push(t);
                }
            }
        }
        Ok(())
    }

    fn check(&self, found: &mut Findings, edges: &mut Edges) {
        let txns = self.txns;
        // (key, value read) -> transactions that read it externally and then wrote the key.
        let mut lost: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for t in 0..txns.len() as u32 {
            if txns.txn(t).outcome != OpType::Ok {
                continue;
            }
            let mops = txns.mops(t);
            // What this transaction knows each key holds, from its own reads and writes.
            let mut known: Vec<(u32, u32)> = Vec::new();
            let mut reported = false;
            for (i, m) in mops.iter().enumerate() {
                match *m {
                    Mop::Write { key, value } => match known.iter_mut().find(|k| k.0 == key) {
                        Some(k) => k.1 = value,
                        None => known.push((key, value)),
                    },
                    Mop::ReadValue {
                        key,
                        value: Some(v),
                    } => {
                        if let Some(k) = known.iter_mut().find(|k| k.0 == key) {
                            if k.1 != v && !reported {
                                reported = true;
                                let expected = k.1;
                                found.add(Anomaly::Internal, || {
                                    Found::new(
                                        Anomaly::Internal,
                                        vec![t],
                                        format!(
                                            "T1 read {} = {}, but its own earlier read or write says it is {}",
                                            txns.key(key),
                                            txns.value(v),
                                            txns.value(expected)
                                        ),
                                    )
                                });
                            }
                            k.1 = v;
                            continue;
                        }
                        known.push((key, v));
                        self.external_read(t, key, v, &mops[i + 1..], found, edges);
                        if mops[i + 1..]
                            .iter()
                            .any(|m| matches!(*m, Mop::Write { key: k, .. } if k == key))
                        {
                            lost.entry((key, v)).or_default().push(t);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut lost: Vec<((u32, u32), Vec<u32>)> =
            lost.into_iter().filter(|(_, t)| t.len() > 1).collect();
        lost.sort_unstable_by_key(|(_, t)| t[0]);
        for ((key, v), group) in lost {
            found.add(Anomaly::LostUpdate, || {
                let names: Vec<String> = (1..=group.len()).map(|i| format!("T{i}")).collect();
                let all = if group.len() == 2 { "both" } else { "all" };
                Found::new(
                    Anomaly::LostUpdate,
                    group,
                    format!(
                        "{} {all} read {k} = {} and then wrote {k}: each write was made without the others'",
                        names.join(" and "),
                        txns.value(v),
                        k = txns.key(key)
                    ),
                )
            });
        }
    }

    /// A transaction's first access to `key`, a read of `v`: who wrote what it saw.
    fn external_read(
        &self,
        t: u32,
        key: u32,
        v: u32,
        later: &[Mop],
        found: &mut Findings,
        edges: &mut Edges,
    ) {
        let txns = self.txns;
        if v == NIL {
            for &w in &self.writers[key as usize] {
                edges.add(t, w, RW);
            }
            return;
        }
        let line = |what: &str| format!("T1 read {} = {}, {what}", txns.key(key), txns.value(v));
        let Some(rec) = self.recs.get(&(key, v)).copied() else {
            found.add(Anomaly::GarbageRead, || {
                Found::new(
                    Anomaly::GarbageRead,
                    vec![t],
                    line("a value no transaction wrote"),
                )
            });
            return;
        };
        if rec.txn == t {
            if later.contains(&Mop::Write { key, value: v }) {
                found.add(Anomaly::FutureRead, || {
                    Found::new(
                        Anomaly::FutureRead,
                        vec![t],
                        line("before it wrote that value itself"),
                    )
                });
            }
        } else if self.failed(rec.txn) {
            found.add(Anomaly::G1a, || {
                Found::new(
                    Anomaly::G1a,
                    vec![t, rec.txn],
                    line("written by T2, which failed"),
                )
            });
        } else if rec.intermediate {
            found.add(Anomaly::G1b, || {
                Found::new(
                    Anomaly::G1b,
                    vec![t, rec.txn],
                    line("which T2 wrote and then overwrote in the same transaction: a state T2 never committed"),
                )
            });
        } else {
            edges.add(rec.txn, t, WR);
        }
    }

    /// Why `a -kind-> b`, naming them `an` and `bn`: the key and values that prove it.
    pub(crate) fn why(&self, a: u32, b: u32, kind: u8, an: &str, bn: &str) -> Option<String> {
        let txns = self.txns;
        let external_reads = |t: u32| {
            let mut seen: Vec<u32> = Vec::new();
            txns.mops(t)
                .iter()
                .filter_map(move |m| {
                    let first = !seen.contains(&m.key());
                    seen.push(m.key());
                    match *m {
                        Mop::ReadValue {
                            key,
                            value: Some(v),
                        } if first => Some((key, v)),
                        _ => None,
                    }
                })
                .collect::<Vec<_>>()
        };
        match kind {
            WR => external_reads(b).into_iter().find_map(|(key, v)| {
                (v != NIL && self.recs.get(&(key, v))?.txn == a).then(|| {
                    format!(
                        "{bn} read {} = {}, which {an} wrote",
                        txns.key(key),
                        txns.value(v)
                    )
                })
            }),
            RW => external_reads(a).into_iter().find_map(|(key, v)| {
                if v != NIL || !self.writers[key as usize].contains(&b) {
                    return None;
                }
                let written = txns.mops(b).iter().rev().find_map(|m| match *m {
                    Mop::Write { key: k, value } if k == key => Some(value),
                    _ => None,
                })?;
                Some(format!(
                    "{an} read {k} = nil, its initial state, and did not see {bn}'s write of {} to {k}",
                    txns.value(written),
                    k = txns.key(key)
                ))
            }),
            _ => None,
        }
    }
}
