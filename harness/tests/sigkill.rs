//! Reliability: SIGKILL of the harness at random points (provisioning, test bodies, teardown)
//! leaves nothing of that run in Docker within seconds: the run's watchdog, a copy of the test
//! binary holding a pipe to it, sees the pipe close and removes the run's clusters. The report
//! left behind is the honest in-progress one, and it validates. Needs a Docker engine with the
//! `cluster-sim/node` image.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_valid, leftovers, signal_rng, signal_suite_at, suite};

/// How long the watchdog may take: it makes a few passes over about 9 s to catch clusters whose
/// creation was still in flight when the harness died.
const CLEAN_WITHIN: Duration = Duration::from_secs(20);

/// Whether a copy of the suite binary still runs as a watchdog.
fn watchdog_running(exe: &std::path::Path) -> bool {
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|p| {
            p.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .any(|p| {
            let same_exe = std::fs::read_link(p.path().join("exe"))
                .map(|e| e == exe)
                .unwrap_or(false);
            same_exe
                && std::fs::read(p.path().join("environ"))
                    .map(|env| {
                        env.split(|b| *b == 0)
                            .any(|kv| kv.starts_with(b"CLUSTER_SIM_WATCHDOG="))
                    })
                    .unwrap_or(false)
        })
}

#[test]
fn sigkill_at_random_points_leaves_nothing_within_seconds() {
    let mut rng = signal_rng(11);
    let mut slowest = Duration::ZERO;
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let delay = Duration::from_millis(300 + rng.next_u64() % 4000);
        let (mut child, _) = signal_suite_at(dir.path(), "KILL", delay, &[], Stdio::null);
        let pid = child.id();
        let _ = child.wait();
        let killed = Instant::now();
        // Poll until nothing of the run is left, or the deadline passes.
        let mut left = leftovers(pid);
        while !left.is_empty() && killed.elapsed() < CLEAN_WITHIN {
            std::thread::sleep(Duration::from_millis(250));
            left = leftovers(pid);
        }
        let took = killed.elapsed();
        // A create still in flight at the kill can land after the first clean look: wait for
        // the watchdog to finish its passes, then look again.
        while watchdog_running(&suite()) && killed.elapsed() < CLEAN_WITHIN {
            std::thread::sleep(Duration::from_millis(250));
        }
        if left.is_empty() {
            left = leftovers(pid);
        }
        slowest = slowest.max(took);
        eprintln!("round {round}: SIGKILL after {delay:?}; clean {took:.1?} later");
        assert_eq!(
            left,
            Vec::<String>::new(),
            "round {round} (SIGKILL after {delay:?}) left Docker resources after {CLEAN_WITHIN:?}"
        );
        let report = dir.path().join("junit.xml");
        if report.exists() {
            assert_valid(&report);
        }
    }
    eprintln!("slowest clean-up: {slowest:.1?}");
}
