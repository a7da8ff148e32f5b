//! The harness's benchmarks, as ratios in one run (`cargo bench -p harness`):
//!
//! - `trivial`: 1,000 no-op trials without clusters, this harness vs plain libtest (target
//!   at most 1.10x);
//! - `clusters`: 12 tests on their own 3-node clusters, `--test-threads 1` vs `4` (target at
//!   least 2x faster with 4). Needs Docker and the `cluster-sim/node` image;
//! - `shared`: 12 etcd3 tests on one shared cluster (reset between tests) vs a fresh cluster
//!   each, both with `--test-threads 4` (target at least 3x faster shared).
//!
//! `cargo bench -p harness -- trivial` (or `clusters`, `shared`) runs one of them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the benchmark's suites in release mode and returns (target name, executable).
fn build() -> Vec<(String, PathBuf)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "--message-format=json",
            "-p",
            "harness",
            "--test",
            "trivial_libtest",
            "--example",
            "trivial_harness",
            "--example",
            "cluster_bench_suite",
            "--example",
            "shared_bench_suite",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo build");
    assert!(out.status.success(), "building the benchmark suites failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let exe = v["executable"].as_str()?;
            let name = v["target"]["name"].as_str()?;
            Some((name.to_string(), PathBuf::from(exe)))
        })
        .collect()
}

fn exe(built: &[(String, PathBuf)], name: &str) -> PathBuf {
    built
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("{name} was not built"))
}

/// Wall time of one run of `bin args`, which must pass.
fn time_once(bin: &Path, args: &[&str], scratch: &Path) -> Duration {
    let started = Instant::now();
    let status = Command::new(bin)
        .args(args)
        .env("CLUSTER_SIM_JUNIT", scratch.join("junit.xml"))
        .env("CLUSTER_SIM_ARTIFACTS", scratch.join("runs"))
        .env_remove("NEXTEST_RUN_ID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run a suite");
    let took = started.elapsed();
    assert!(status.success(), "{} {args:?} failed", bin.display());
    took
}

fn median(bin: &Path, args: &[&str], runs: usize, scratch: &Path) -> Duration {
    let mut t: Vec<Duration> = (0..runs).map(|_| time_once(bin, args, scratch)).collect();
    t.sort();
    t[runs / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is a filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let built = build();
    let scratch = std::env::temp_dir().join(format!("harness-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();

    if wants("trivial") {
        let h = exe(&built, "trivial_harness");
        let l = exe(&built, "trivial_libtest");
        // Warm the page cache, then take medians of interleaved runs.
        time_once(&h, &[], &scratch);
        time_once(&l, &[], &scratch);
        let runs = 15;
        let th = median(&h, &[], runs, &scratch);
        let tl = median(&l, &[], runs, &scratch);
        println!(
            "trivial: 1000 no-cluster trials: harness {:.1} ms, libtest {:.1} ms, ratio {:.2}x (target <= 1.10x)",
            th.as_secs_f64() * 1e3,
            tl.as_secs_f64() * 1e3,
            th.as_secs_f64() / tl.as_secs_f64()
        );
    }
    if wants("clusters") {
        let c = exe(&built, "cluster_bench_suite");
        let t1 = time_once(&c, &["--test-threads", "1"], &scratch);
        let t4 = time_once(&c, &["--test-threads", "4"], &scratch);
        println!(
            "clusters: 12 tests x 3-node clusters: 1 thread {:.1} s, 4 threads {:.1} s, speed-up {:.2}x (target >= 2x)",
            t1.as_secs_f64(),
            t4.as_secs_f64(),
            t1.as_secs_f64() / t4.as_secs_f64()
        );
    }
    if wants("shared") {
        let s = exe(&built, "shared_bench_suite");
        let fresh = time_once(&s, &["fresh::", "--test-threads", "4"], &scratch);
        let shared = time_once(&s, &["shared::", "--test-threads", "4"], &scratch);
        println!(
            "shared: 12 etcd3 tests, 4 threads: a fresh cluster each {:.1} s, one shared cluster with reset {:.1} s, speed-up {:.2}x (target >= 3x)",
            fresh.as_secs_f64(),
            shared.as_secs_f64(),
            fresh.as_secs_f64() / shared.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
