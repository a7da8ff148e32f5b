//! The register checker against its peer, stateright's `LinearizabilityTester` (the
//! `consistency_model` crate), on the same synthetic histories.
//!
//! `cargo bench -p cluster-sim-check --bench checker` prints, per history size, both times and their
//! ratio, then the target case: a valid 10,000-operation history over 10 keys with 8
//! processes. The peer gets read/write histories without `info` (it supports neither cas nor an
//! unknown outcome in the middle of a history), each key fed separately (the same
//! P-compositionality our checker uses), and a time limit: past it, it is reported as such.
//! Last, Porcupine's 102 Jepsen etcd histories: verdicts, counterexample sizes and time.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster_sim_check::history::{self, Op, OpType};
use consistency_model::{
    ConsistencyTester, LinearizabilityTester, Register, RegisterOp, RegisterRet,
};

const PEER_LIMIT: Duration = Duration::from_secs(30);

fn peer_check(ops: &[Op]) -> Option<Duration> {
    let ops = ops.to_vec();
    let (tx, rx) = mpsc::channel();
    // Its search recurses once per operation: give it a deep stack.
    let _ = std::thread::Builder::new()
        .stack_size(1 << 30)
        .spawn(move || {
            let started = Instant::now();
            let mut by_key: BTreeMap<String, LinearizabilityTester<u64, Register<Option<i64>>>> =
                BTreeMap::new();
            for op in &ops {
                let key = op.key.clone().unwrap_or_default();
                let t = by_key
                    .entry(key)
                    .or_insert_with(|| LinearizabilityTester::new(Register::new(None)));
                let pid = match op.process {
                    history::Process::Client(p) => p,
                    history::Process::Named(_) => continue,
                };
                let r = match (op.kind, op.f.as_str()) {
                    (OpType::Invoke, "write") => t
                        .on_invoke(pid, RegisterOp::Write(op.value.as_i64()))
                        .map(|_| ()),
                    (OpType::Invoke, _) => t.on_invoke(pid, RegisterOp::Read).map(|_| ()),
                    (_, "write") => t.on_return(pid, RegisterRet::WriteOk).map(|_| ()),
                    (_, _) => t
                        .on_return(pid, RegisterRet::ReadOk(op.value.as_i64()))
                        .map(|_| ()),
                };
                r.expect("a well-formed history");
            }
            let valid = by_key.values().all(|t| t.is_consistent());
            let _ = tx.send((valid, started.elapsed()));
        });
    match rx.recv_timeout(PEER_LIMIT) {
        Ok((valid, took)) => {
            assert!(valid, "the peer judged a valid history invalid");
            Some(took)
        }
        Err(_) => None,
    }
}

fn ours(ops: &[Op]) -> Duration {
    let started = Instant::now();
    let report = history::check(ops, &history::Register).expect("a well-formed history");
    let took = started.elapsed();
    assert!(report.valid(), "{report}");
    took
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("register checker vs stateright's LinearizabilityTester (consistency_model 0.0.0)");
    println!(
        "{:>8} {:>5} {:>6} {:>12} {:>12} {:>10}",
        "ops", "keys", "procs", "ours", "peer", "ratio"
    );
    for (ops, keys, procs) in [
        (20, 1, 4),
        (40, 1, 4),
        (80, 1, 8),
        (200, 2, 8),
        (1_000, 10, 8),
        (10_000, 10, 8),
    ] {
        let h = history::synthetic::read_write_history(42, ops, keys, procs);
        let ours_t = ours(&h);
        let peer_t = peer_check(&h);
        let (peer_s, ratio) = match peer_t {
            Some(p) => (
                format!("{:.3?}", p),
                format!("{:.4}x", ours_t.as_secs_f64() / p.as_secs_f64().max(1e-9)),
            ),
            None => (format!(">{}s", PEER_LIMIT.as_secs()), "-".into()),
        };
        println!(
            "{ops:>8} {keys:>5} {procs:>6} {:>12} {peer_s:>12} {ratio:>10}",
            format!("{ours_t:.3?}")
        );
        if peer_t.is_none() {
            // Larger histories only take longer for the peer.
            break;
        }
    }
    let full = history::synthetic::register_history(1, 10_000, 10, 8);
    let mut times: Vec<Duration> = (0..5).map(|_| ours(&full)).collect();
    times.sort();
    println!(
        "target case, ours only (cas and info included): 10,000 ops, 10 keys, 8 processes: median {:.3?} of 5 (target: at most 5 s)",
        times[2]
    );
    jepsen_etcd();
}

/// Porcupine's 102 Jepsen etcd histories (`fixtures/histories/jepsen/`): verdicts against the
/// published ones, the size of each counterexample, and the time for all of them.
fn jepsen_etcd() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/histories/jepsen");
    let Ok(verdicts) = std::fs::read_to_string(dir.join("verdicts.txt")) else {
        return;
    };
    let histories: Vec<(Vec<Op>, bool)> = verdicts
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(name, v)| {
            let ops = history::read_jepsen_log(&dir.join(format!("{name}.log"))).expect("a log");
            (ops, v == "linearizable")
        })
        .collect();
    let started = Instant::now();
    let (mut agree, mut sizes) = (0, Vec::new());
    for (ops, linearizable) in &histories {
        let report = history::check(ops, &history::Register).expect("a well-formed history");
        agree += usize::from(report.valid() == *linearizable);
        sizes.extend(report.violations.iter().map(|v| v.ops.len()));
    }
    let took = started.elapsed();
    sizes.sort_unstable();
    println!(
        "Porcupine's Jepsen etcd histories: {agree}/{} verdicts agree, {:.3?} for all (logs read beforehand); counterexamples of the {} invalid: median {} operations, {} to {}",
        histories.len(),
        took,
        sizes.len(),
        sizes.get(sizes.len() / 2).unwrap_or(&0),
        sizes.first().unwrap_or(&0),
        sizes.last().unwrap_or(&0)
    );
}
