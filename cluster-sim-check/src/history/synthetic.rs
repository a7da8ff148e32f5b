//! Synthetic register histories: what a linearizable register would give concurrent clients, for
//! benchmarks and for testing checkers on histories larger than anyone writes by hand.

use serde_json::Value;

use super::{Op, OpType, Process};
use cluster_sim_core::rng::SplitMix64 as Rng;

/// A valid history of `ops` operations (reads, writes and cas, about 1 in 20 of them `info`)
/// over `keys` registers by `processes` concurrent clients, from `seed`.
///
/// Each operation gets a random interval and a linearization point inside it; applying the
/// operations in point order to real registers gives each read its value and each cas its
/// outcome, so the history is linearizable by construction, with real overlap between clients.
pub fn register_history(seed: u64, ops: usize, keys: usize, processes: usize) -> Vec<Op> {
    generate(seed, ops, keys, processes, true)
}

/// Like [`register_history`] with reads and writes only, every one acknowledged: the shape
/// simpler checkers (without cas or unknown outcomes) accept.
pub fn read_write_history(seed: u64, ops: usize, keys: usize, processes: usize) -> Vec<Op> {
    generate(seed, ops, keys, processes, false)
}

fn generate(seed: u64, ops: usize, keys: usize, processes: usize, rich: bool) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let processes = processes.max(1);
    let keys = keys.max(1);
    // (process, key, f, start, point, end, info)
    struct Planned {
        process: u64,
        key: String,
        f: &'static str,
        arg: i64,
        start: u64,
        point: u64,
        end: u64,
        info: bool,
    }
    let mut clock = vec![0u64; processes];
    let mut planned = Vec::with_capacity(ops);
    for i in 0..ops {
        let p = i % processes;
        let start = clock[p] + rng.below_u64(1_000_000);
        let len = 100_000 + rng.below_u64(5_000_000);
        let end = start + len;
        let point = start + 1 + rng.below_u64(len - 1);
        clock[p] = end;
        let f = match rng.below_u64(10) {
            0..=3 => "read",
            4..=7 => "write",
            _ if rich => "cas",
            _ => "write",
        };
        planned.push(Planned {
            process: p as u64,
            key: format!("k{}", rng.below_u64(keys as u64)),
            f,
            arg: rng.below_u64(5) as i64,
            start,
            point,
            end,
            info: rich && f != "read" && rng.below_u64(20) == 0,
        });
    }
    // Apply in linearization order to compute outputs.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| planned[i].point);
    let mut regs: std::collections::HashMap<String, Value> = Default::default();
    let mut results: Vec<(OpType, Value, Value)> =
        vec![(OpType::Ok, Value::Null, Value::Null); ops];
    for &i in &order {
        let p = &planned[i];
        let cur = regs.get(&p.key).cloned().unwrap_or(Value::Null);
        results[i] = match p.f {
            "read" => (OpType::Ok, Value::Null, cur),
            "write" => {
                regs.insert(p.key.clone(), Value::from(p.arg));
                (OpType::Ok, Value::from(p.arg), Value::from(p.arg))
            }
            _ => {
                let old = if rng.below_u64(2) == 0 {
                    cur.clone()
                } else {
                    Value::from(rng.below_u64(5) as i64)
                };
                let input = Value::Array(vec![old.clone(), Value::from(p.arg)]);
                if old == cur {
                    regs.insert(p.key.clone(), Value::from(p.arg));
                    (OpType::Ok, input.clone(), input)
                } else {
                    (OpType::Fail, input.clone(), input)
                }
            }
        };
        if p.info {
            results[i].0 = OpType::Info;
        }
    }
    // Emit invoke and completion records in time order.
    let mut records: Vec<(u64, u8, Op)> = Vec::with_capacity(ops * 2);
    for (p, (kind, input, output)) in planned.iter().zip(results) {
        let mk = |kind: OpType, value: Value, time: u64| Op {
            process: Process::Client(p.process),
            kind,
            f: p.f.to_string(),
            key: Some(p.key.clone()),
            value,
            time,
            error: None,
        };
        records.push((p.start, 0, mk(OpType::Invoke, input, p.start)));
        records.push((p.end, 1, mk(kind, output, p.end)));
    }
    records.sort_by_key(|(t, k, _)| (*t, *k));
    records.into_iter().map(|(_, _, op)| op).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{check, Register};

    #[test]
    fn synthetic_histories_are_valid_and_a_tampered_read_is_not() {
        let h = register_history(7, 2_000, 4, 8);
        let report = check(&h, &Register).unwrap();
        assert!(report.valid(), "{report}");
        assert_eq!(report.ops, 2_000);
        // Change one read's result to a value never written: now it must fail.
        let mut bad = h.clone();
        let i = bad
            .iter()
            .position(|o| o.f == "read" && o.kind == OpType::Ok)
            .unwrap();
        bad[i].value = Value::from(99);
        let report = check(&bad, &Register).unwrap();
        assert!(!report.valid());
        assert!(report.to_string().contains("-> 99"), "{report}");
    }
}
