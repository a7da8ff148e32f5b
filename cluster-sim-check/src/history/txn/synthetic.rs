//! Synthetic list-append histories: what a strictly serializable database gives concurrent
//! clients, optionally with a G2-item cycle planted in the middle, for benchmarks and for
//! testing the checker on histories larger than anyone writes by hand.
//!
//! Like Jepsen's list-append workload, a fixed number of keys is live at a time and a key is
//! retired after a number of appends, replaced by a fresh one: reads return whole lists, so
//! without retirement a history's size would grow with the square of its length.

use std::io::Write;

use serde_json::{json, Value};

use crate::history::{Op, OpType, Process};
use cluster_sim_core::rng::SplitMix64 as Rng;

/// The shape of a generated history.
#[derive(Debug, Clone)]
pub struct ListAppendOptions {
    /// Transactions.
    pub txns: usize,
    /// Concurrent client processes.
    pub processes: usize,
    /// Keys live at a time.
    pub keys: usize,
    /// Appends after which a key is retired for a fresh one.
    pub max_writes_per_key: usize,
    /// Plant a G2-item cycle (two transactions that each miss the other's append) half-way.
    pub plant_g2: bool,
    /// Seed of the random choices.
    pub seed: u64,
}

impl Default for ListAppendOptions {
    fn default() -> Self {
        ListAppendOptions {
            txns: 1_000,
            processes: 8,
            keys: 100,
            max_writes_per_key: 32,
            plant_g2: false,
            seed: 1,
        }
    }
}

/// A micro-operation as generated: append `value` to `key`, or read `key` (the list read).
#[derive(Debug, Clone)]
enum Mop {
    Append(u64, u64),
    Read(u64, Vec<u64>),
}

struct Planned {
    process: u64,
    start: u64,
    point: u64,
    end: u64,
    outcome: OpType,
    mops: Vec<Mop>,
}

/// A history of `opts.txns` transactions, every record in memory.
pub fn list_append_history(opts: &ListAppendOptions) -> Vec<Op> {
    let mut ops = Vec::with_capacity(opts.txns * 2);
    emit(opts, |op| {
        ops.push(op);
        Ok(())
    })
    .unwrap_or_default();
    ops
}

/// Writes a history of `opts.txns` transactions as `history.jsonl` lines, without holding the
/// records in memory (a million transactions are a few hundred megabytes of JSON).
pub fn write_list_append_history(opts: &ListAppendOptions, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    emit(opts, |op| {
        serde_json::to_writer(&mut out, &op)?;
        out.write_all(b"\n")
    })?;
    out.flush()
}

fn emit(
    opts: &ListAppendOptions,
    mut sink: impl FnMut(Op) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let planned = plan(opts);
    // Records in time order; at one instant completions go after invocations.
    let mut records: Vec<(u64, bool, u32)> = Vec::with_capacity(planned.len() * 2);
    for (i, p) in planned.iter().enumerate() {
        records.push((p.start, false, i as u32));
        if p.outcome != OpType::Info {
            records.push((p.end, true, i as u32));
        }
    }
    records.sort_unstable();
    for (time, completes, i) in records {
        let p = &planned[i as usize];
        let (kind, filled) = if completes {
            (p.outcome, p.outcome == OpType::Ok)
        } else {
            (OpType::Invoke, false)
        };
        sink(Op {
            process: Process::Client(p.process),
            kind,
            f: "txn".into(),
            key: None,
            value: mops_json(&p.mops, filled),
            time,
            error: None,
        })?;
    }
    Ok(())
}

fn mops_json(mops: &[Mop], filled: bool) -> Value {
    Value::Array(
        mops.iter()
            .map(|m| match m {
                Mop::Append(k, v) => json!(["append", k, v]),
                Mop::Read(k, l) if filled => json!(["r", k, l]),
                Mop::Read(k, _) => json!(["r", k, null]),
            })
            .collect(),
    )
}

/// Plans every transaction: an interval per process, a point inside it where it takes effect,
/// and micro-operations whose reads are what applying all of them in point order gives.
fn plan(opts: &ListAppendOptions) -> Vec<Planned> {
    let mut rng = Rng::new(opts.seed);
    let processes = opts.processes.max(1);
    let mut clock = vec![0u64; processes];
    let mut planned: Vec<Planned> = (0..opts.txns)
        .map(|i| {
            let p = i % processes;
            // Strictly after the previous one ended: a process has one operation open at a time.
            let start = clock[p] + 1 + rng.below_u64(1_000_000);
            let len = 100_000 + rng.below_u64(5_000_000);
            clock[p] = start + len;
            Planned {
                process: p as u64,
                start,
                point: start + 1 + rng.below_u64(len - 1),
                end: start + len,
                outcome: OpType::Ok,
                mops: Vec::new(),
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_unstable_by_key(|&i| planned[i].point);
    // The planted pair: two transactions adjacent in point order half-way, which will each
    // read a key before the other's append to it.
    let planted = (opts.plant_g2 && order.len() >= 4).then_some(order.len() / 2);
    let keys = opts.keys.max(2);
    let mut slots: Vec<u64> = (0..keys as u64).collect();
    let mut next_key = keys as u64;
    let mut lists: std::collections::HashMap<u64, Vec<u64>> = Default::default();
    let mut unapplied = 0u64;
    let mut n = 0;
    while n < order.len() {
        if planted == Some(n) && n + 1 < order.len() {
            let (x, y) = (slots[0], slots[1]);
            let rx = lists.get(&x).cloned().unwrap_or_default();
            let ry = lists.get(&y).cloned().unwrap_or_default();
            let vy = ry.len() as u64 + 1;
            let vx = rx.len() as u64 + 1;
            planned[order[n]].mops = vec![Mop::Read(x, rx), Mop::Append(y, vy)];
            planned[order[n + 1]].mops = vec![Mop::Read(y, ry), Mop::Append(x, vx)];
            lists.entry(x).or_default().push(vx);
            lists.entry(y).or_default().push(vy);
            n += 2;
            continue;
        }
        let t = &mut planned[order[n]];
        let len = 1 + rng.below_u64(4) as usize;
        // 1 in 100 fails (and takes no effect), 1 in 100 times out (and may or may not).
        let fate = rng.below_u64(100);
        let applies = match fate {
            0 => {
                t.outcome = OpType::Fail;
                false
            }
            1 => {
                t.outcome = OpType::Info;
                rng.below_u64(2) == 0
            }
            _ => true,
        };
        for _ in 0..len {
            let slot = rng.below(keys);
            let key = slots[slot];
            if rng.below_u64(2) == 0 {
                let list = lists.entry(key).or_default();
                t.mops.push(Mop::Read(key, list.clone()));
            } else if applies {
                let list = lists.entry(key).or_default();
                let v = list.len() as u64 + 1;
                t.mops.push(Mop::Append(key, v));
                list.push(v);
                if list.len() >= opts.max_writes_per_key {
                    lists.remove(&key);
                    slots[slot] = next_key;
                    next_key += 1;
                }
            } else {
                // A transaction that takes no effect appends values no list will hold, unique
                // all the same.
                unapplied += 1;
                t.mops.push(Mop::Append(key, 1_000_000_000 + unapplied));
            }
        }
        n += 1;
    }
    // A client whose transaction's outcome is unknown goes on as a new process, as in Jepsen:
    // the old one's transaction may still be running.
    let mut ids: Vec<u64> = (0..processes as u64).collect();
    for (i, t) in planned.iter_mut().enumerate() {
        let slot = i % processes;
        t.process = ids[slot];
        if t.outcome == OpType::Info {
            ids[slot] += processes as u64;
        }
    }
    planned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_histories_are_serializable_unless_planted() {
        let opts = ListAppendOptions {
            txns: 3_000,
            keys: 10,
            max_writes_per_key: 8,
            ..Default::default()
        };
        let h = list_append_history(&opts);
        let (v, s) = crate::history::txn::check_ops(&h, super::super::Flavor::ListAppend)
            .expect("well-formed");
        assert!(v.is_empty(), "{}", v[0]);
        assert!(s.anomalies.is_empty(), "{s}");
        let planted = list_append_history(&ListAppendOptions {
            plant_g2: true,
            ..opts
        });
        let (v, s) = crate::history::txn::check_ops(&planted, super::super::Flavor::ListAppend)
            .expect("well-formed");
        assert_eq!(
            s.anomalies.keys().map(|a| a.name()).collect::<Vec<_>>(),
            ["G2-item"],
            "{s}"
        );
        assert_eq!(v[0].ops.len(), 2, "{}", v[0]);
    }

    #[test]
    fn the_history_streams_as_lines() {
        let opts = ListAppendOptions {
            txns: 50,
            ..Default::default()
        };
        let mut buf = Vec::new();
        write_list_append_history(&opts, &mut buf).unwrap();
        // Paired as a history file must be: a process with an unknown outcome goes on as
        // another.
        let read = crate::history::parse_lines(buf.as_slice(), "h").unwrap();
        assert_eq!(read, list_append_history(&opts));
        let mut big = Vec::new();
        let opts = ListAppendOptions {
            txns: 5_000,
            ..Default::default()
        };
        write_list_append_history(&opts, &mut big).unwrap();
        assert!(crate::history::parse_lines(big.as_slice(), "h").is_ok());
    }
}
