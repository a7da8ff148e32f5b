//! The list-append checker on generated histories of 10,000, 100,000 and 1,000,000
//! transactions (8 processes, 100 keys live at a time, each retired after 32 appends as Jepsen's
//! workload does, a G2-item cycle planted half-way), as `cluster-sim check --model list-append`
//! runs it: the history.jsonl streamed into compact transactions, then judged.
//!
//! `cargo bench -p cluster-sim-check --bench txn` prints, per size, the file's size, the time
//! to check it (wall clock, and the CPU time the check ran, which other work on a shared
//! machine sways less) and the peak memory of doing so. Each check runs in a process of its own (this
//! binary again, with `--check FILE`), so that its peak resident memory (`VmHWM`, less what
//! the process held when it started) is that check's alone.
//! Each check runs `CLUSTER_SIM_BENCH_ROUNDS` times (3) and the fastest counts, since other
//! work on the machine only ever adds time. `CLUSTER_SIM_BENCH_SIZES=10000,100000` picks other
//! sizes.

use std::process::Command;
use std::time::Instant;

use cluster_sim_check::history::txn::synthetic::{write_list_append_history, ListAppendOptions};
use cluster_sim_check::history::txn::{Anomaly, ListAppend, TxnSummary};
use cluster_sim_check::history::Checker;

/// A field of /proc/self/status, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time this (single-threaded) process has run, in seconds, from /proc/self/schedstat:
/// less swayed than wall time by other work on a shared machine.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// Writes the history of one size to `path`.
fn generate(txns: usize, path: &std::path::Path) {
    let opts = ListAppendOptions {
        txns,
        processes: 8,
        keys: 100,
        max_writes_per_key: 32,
        plant_g2: true,
        seed: 42,
    };
    let file = std::fs::File::create(path).expect("create the history");
    write_list_append_history(&opts, file).expect("write the history");
}

/// Checks one history file, in this process of its own; prints
/// `check_seconds peak_kib start_kib edges cpu_seconds`.
fn check(path: &str) {
    let start = status_kib("VmRSS:");
    let cpu = cpu_seconds();
    let started = Instant::now();
    let report = ListAppend
        .check_file(std::path::Path::new(path))
        .expect("a well-formed history");
    let checked = started.elapsed();
    let cpu = cpu_seconds() - cpu;
    let peak = status_kib("VmHWM:");
    let summary = report.details::<TxnSummary>().expect("a txn summary");
    assert_eq!(
        summary.anomalies.iter().collect::<Vec<_>>(),
        [(&Anomaly::G2Item, &1)],
        "the planted cycle alone:\n{report}"
    );
    println!(
        "{} {peak} {start} {} {cpu}",
        checked.as_secs_f64(),
        summary.edges
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--check") {
        check(&args[i + 1]);
        return;
    }
    let sizes: Vec<usize> = std::env::var("CLUSTER_SIM_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    println!("list-append checker: generated histories, 8 processes, 100 keys, a planted G2-item");
    println!(
        "{:>10} {:>9} {:>10} {:>8} {:>8} {:>11} {:>9} {:>12}",
        "txns", "file MiB", "edges", "wall s", "cpu s", "us/txn cpu", "peak MiB", "MiB/1k txns"
    );
    let rounds: usize = std::env::var("CLUSTER_SIM_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let exe = std::env::current_exe().expect("this benchmark's path");
    let dir = tempfile::tempdir().expect("a temporary directory");
    for n in sizes {
        let path = dir.path().join(format!("history-{n}.jsonl"));
        generate(n, &path);
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len()) as f64;
        // The machine is shared: the fastest of a few runs is the checker's own time.
        let mut best: Option<[f64; 5]> = None;
        for _ in 0..rounds {
            let out = Command::new(&exe)
                .arg("--check")
                .arg(&path)
                .output()
                .expect("run the check");
            assert!(
                out.status.success(),
                "size {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8_lossy(&out.stdout);
            let f: Vec<f64> = line
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0.0))
                .collect();
            let [checked, peak, start, edges, cpu] = f[..] else {
                panic!("size {n}: unexpected output {line:?}");
            };
            if best.is_none_or(|b| checked < b[0]) {
                best = Some([checked, peak, start, edges, cpu]);
            }
        }
        let [checked, peak, start, edges, cpu] = best.expect("at least one round");
        let _ = std::fs::remove_file(&path);
        let txns = n as f64;
        let mib = (peak - start) / 1024.0;
        println!(
            "{:>10} {:>9.1} {:>10} {:>8.3} {:>8.3} {:>11.2} {:>9.1} {:>12.2}",
            n,
            bytes / 1048576.0,
            edges,
            checked,
            cpu,
            cpu * 1e6 / txns,
            mib,
            mib * 1000.0 / txns
        );
    }
}
