//! Reliability: SIGINT or SIGTERM at random points of a run (provisioning, test bodies,
//! teardown) leaves nothing of the run in Docker and a valid report listing every test that
//! started. Needs a Docker engine with the `cluster-sim/node` image.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::{assert_valid, leftovers, signal_rng, signal_suite_at};

/// Tests that started in the run under `runs`: each has a `test.log` (every test is kept).
fn started_tests(runs: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        for test in std::fs::read_dir(run.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if test.path().join("test.log").is_file() {
                names.push(test.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names
}

/// The last thing a test's log says before it was cut short: the phase the signal hit.
fn phase_hit(runs: &Path, test: &str) -> String {
    for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
        if let Ok(log) = std::fs::read_to_string(run.path().join(test).join("test.log")) {
            if !log.contains("[interrupted]") {
                return "finished".into();
            }
            return log
                .lines()
                .rfind(|l| !l.contains("[interrupted]") && !l.contains("[result]"))
                .and_then(|l| l.split_once('['))
                .map(|(_, rest)| rest.split(']').next().unwrap_or("").to_string())
                .unwrap_or_default();
        }
    }
    String::new()
}

#[test]
fn signals_at_random_points_leave_nothing_and_a_valid_report() {
    let mut rng = signal_rng(7);
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let signal = if rng.next_u64().is_multiple_of(2) {
            "INT"
        } else {
            "TERM"
        };
        // The whole suite takes about 4-5 s: delays spread over provisioning, bodies and
        // teardowns of its four tests.
        let delay = Duration::from_millis(150 + rng.next_u64() % 4500);
        let (child, sent) = signal_suite_at(
            dir.path(),
            signal,
            delay,
            &[("CLUSTER_SIM_KEEP", "always")],
            Stdio::piped,
        );
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let runs = dir.path().join("runs");
        let started = started_tests(&runs);
        let hit: Vec<String> = started
            .iter()
            .map(|t| format!("{t}@{}", phase_hit(&runs, t)))
            .collect();
        eprintln!(
            "round {round}: SIG{signal} after {delay:?} -> exit {:?}; {}",
            out.status.code(),
            hit.join(" ")
        );
        match out.status.code() {
            Some(130) => {}
            // The run ended before the signal landed.
            Some(0) if !sent || !stderr.contains("interrupted") => {}
            other => panic!("round {round}: exit {other:?}\n{stderr}"),
        }

        assert_eq!(
            leftovers(pid),
            Vec::<String>::new(),
            "round {round} (SIG{signal} after {delay:?}) left Docker resources"
        );
        let report = dir.path().join("junit.xml");
        assert_valid(&report);
        let xml = std::fs::read_to_string(&report).unwrap();
        for t in &started {
            assert!(
                xml.contains(&format!("<testcase name=\"{t}\"")),
                "round {round}: {t} started but is not in the report:\n{xml}"
            );
        }
        if out.status.code() == Some(130) {
            assert!(
                xml.contains("<property name=\"state\" value=\"interrupted\"/>"),
                "{xml}"
            );
        }
    }
}
