//! Walks end to end: the redis3 walks of `tests_d/walks/` on the real engine (how many trials,
//! the serial barrier read from the traces' timestamps, a replay by `--exact` reproducing a
//! walk's trace), a failing action failing its walk only, pairwise listing, and a definition
//! that can't be planned.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::{assert_valid, leftovers, spawn_binary, spawn_suite, tests_d};
use harness::walk::{StepStatus, StepTrace, Trace};

/// Every `trace.json` of the run under `dir`, by walk id.
fn traces_of(dir: &Path) -> BTreeMap<String, Trace> {
    let mut found = BTreeMap::new();
    for run in std::fs::read_dir(dir.join("runs")).unwrap().flatten() {
        for test in std::fs::read_dir(run.path()).unwrap().flatten() {
            let p = test.path().join("trace.json");
            if p.is_file() {
                let t: Trace = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                found.insert(t.walk.clone(), t);
            }
        }
    }
    found
}

/// What a replay must reproduce: each step's action, option, status and notes.
fn replayable(t: &Trace) -> Vec<(String, String, bool, StepStatus, Vec<String>)> {
    t.steps
        .iter()
        .map(|s| {
            (
                s.action.clone(),
                s.option.clone(),
                s.serial,
                s.status.clone(),
                s.notes.clone(),
            )
        })
        .collect()
}

fn span(s: &StepTrace) -> (u64, u64) {
    (s.started_us.unwrap(), s.ended_us.unwrap())
}

fn junit_names(dir: &Path) -> BTreeSet<String> {
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let re = regex::Regex::new(r#"<testcase name="([^"]+)""#).unwrap();
    re.captures_iter(&xml).map(|c| c[1].to_string()).collect()
}

#[test]
fn redis_walks_hold_the_barrier_and_replay_by_name() {
    let bin: PathBuf = tests_d();
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_binary(&bin, dir.path(), &["walks::redis3::cache::"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("8 passed"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert_valid(&dir.path().join("junit.xml"));
    let names = junit_names(dir.path());
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains("walks::redis3::cache::w0005[write=big,aof=on,read=replica]"));

    // 2 x 2 x 2 walks, each with a trace of three passed steps.
    let traces = traces_of(dir.path());
    assert_eq!(traces.len(), 8, "{:?}", traces.keys());
    for t in traces.values() {
        assert_eq!(t.result, "passed", "{t:?}");
        assert_eq!(t.steps.len(), 3);
        assert!(t.steps.iter().all(|s| s.status == StepStatus::Passed));
    }

    // The barrier: one serial run per option, shared by the 4 walks that chose it; no run
    // overlaps another; every walk wrote before the first run started; each walk read after
    // its option's run ended and before the next option's run started.
    let mut runs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in traces.values() {
        let s = &t.steps[1];
        assert!(s.serial);
        assert_eq!(s.walks, Some(4), "{t:?}");
        let prev = runs.insert(s.option.clone(), span(s));
        assert!(prev.is_none_or(|p| p == span(s)), "one run per option");
    }
    assert_eq!(runs.len(), 2);
    let mut ordered: Vec<(u64, u64)> = runs.values().copied().collect();
    ordered.sort();
    assert!(
        ordered[0].1 <= ordered[1].0,
        "serial runs overlap: {ordered:?}"
    );
    for t in traces.values() {
        let (_, wrote) = span(&t.steps[0]);
        assert!(wrote <= ordered[0].0, "{} wrote after the barrier", t.walk);
        let mine = runs[&t.steps[1].option];
        let (read_start, read_end) = span(&t.steps[2]);
        assert!(read_start >= mine.1, "{} read before its run ended", t.walk);
        for other in &ordered {
            if other.0 > mine.0 {
                assert!(
                    read_end <= other.0,
                    "{} read after the next run began",
                    t.walk
                );
            }
        }
        // What the serial step did holds for the walks that chose it.
        let want = if t.steps[1].option == "on" {
            "yes"
        } else {
            "no"
        };
        assert!(
            t.steps[2].notes[0].ends_with(&format!("appendonly {want}")),
            "{t:?}"
        );
    }

    // Replaying one walk alone reproduces its trace (its serial run now serves only it).
    let name = "walks::redis3::cache::w0005[write=big,aof=on,read=replica]";
    let again = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_binary(&bin, again.path(), &["--exact", name], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
    let replay = traces_of(again.path());
    assert_eq!(replay.len(), 1);
    assert_eq!(replayable(&replay["w0005"]), replayable(&traces["w0005"]));
    assert_eq!(replay["w0005"].steps[1].walks, Some(1));
}

#[test]
fn a_failing_action_fails_its_walk_and_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(dir.path(), &["selftest::walks::outcomes::"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{stdout}");
    assert!(stdout.contains("4 passed; 4 failed"), "{stdout}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert_valid(&dir.path().join("junit.xml"));
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains("step first=fail: deliberate failure in w0004"),
        "{xml}"
    );
    let traces = traces_of(dir.path());
    assert_eq!(traces.len(), 8);
    for t in traces.values() {
        if t.label.starts_with("first=fail") {
            assert_eq!(t.result, "failed");
            assert_eq!(t.steps[0].status, StepStatus::Failed);
            assert!(t.steps[0].error.as_deref().unwrap().contains("deliberate"));
            // Later actions don't run, the serial one included.
            assert_eq!(t.steps[1].status, StepStatus::NotRun);
            assert_eq!(t.steps[2].status, StepStatus::NotRun);
            assert_eq!(t.steps[2].started_us, None);
        } else {
            assert_eq!(t.result, "passed", "{t:?}");
            // The serial run served only the walks still going: two per option.
            assert_eq!(t.steps[1].walks, Some(2));
            let mode = &t.steps[1].option;
            assert_eq!(
                t.steps[2].notes[0],
                format!("mode {mode} seen {} time(s)", t.steps[2].option)
            );
        }
    }
    // A failed walk keeps the node's logs beside its trace.
    let failed = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .flat_map(|r| std::fs::read_dir(r.path()).unwrap().flatten())
        .find(|t| t.file_name().to_string_lossy().contains("w0004"))
        .unwrap();
    assert!(
        failed.path().join("nodes/n1").is_dir(),
        "{:?}",
        failed.path()
    );
    assert!(failed.path().join("test.log").is_file());
}

#[test]
fn pairwise_walks_cover_every_pair_and_bad_definitions_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let unreachable = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let (_, out) = spawn_suite(
        dir.path(),
        &["--list", "--format", "terse", "selftest::walks::pairs"],
        &[unreachable],
    );
    assert!(out.status.success());
    let listed: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix("]: test"))
        .map(|l| {
            let (_, label) = l.split_once('[').unwrap();
            label
                .split(',')
                .map(|kv| kv.split_once('=').unwrap().1.to_string())
                .collect()
        })
        .collect();
    // Far fewer than the 81 combinations, and every pair of options of two actions is in one.
    assert!(listed.len() >= 9 && listed.len() <= 20, "{listed:?}");
    for i in 0..4 {
        for j in i + 1..4 {
            for a in ["x", "y", "z"] {
                for b in ["x", "y", "z"] {
                    assert!(
                        listed.iter().any(|w| w[i] == a && w[j] == b),
                        "pair {i}={a} {j}={b} missing"
                    );
                }
            }
        }
    }
    // The same list every time.
    let (_, again) = spawn_suite(
        dir.path(),
        &["--list", "--format", "terse", "selftest::walks::pairs"],
        &[unreachable],
    );
    assert_eq!(again.stdout, out.stdout);

    let (_, bad) = spawn_suite(
        dir.path(),
        &["--list"],
        &[unreachable, ("SELFTEST_BAD_WALK", "1")],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("selftest/walks.rs:")
            && stderr.contains("selftest::walks::pairs: action \"e\": it has no options"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (_, bad) = spawn_suite(
        dir.path(),
        &["--list"],
        &[unreachable, ("SELFTEST_BAD_WALK", "panic")],
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "one error line, no panic noise: {stderr}"
    );
    assert!(
        stderr.contains("the walk definition panicked: deliberate panic while defining walks"),
        "{stderr}"
    );
}

#[test]
fn an_interrupt_mid_walk_removes_the_walks_cluster_and_reports_the_walk() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let child = common::suite_command(&common::suite(), dir.path())
        .args(["--ignored", "selftest::walks::slow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Interrupt once the walk's `sleep 60` runs on a node of this run (other runs may share the
    // engine, and sleep too).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sleeping = leftovers(pid).iter().any(|line| {
            let name = line.split_whitespace().next().unwrap_or_default();
            Command::new("docker")
                .args(["top", name])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("sleep 60"))
        });
        if sleeping {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the walk never started its sleep"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(leftovers(pid), Vec::<String>::new());
    assert_valid(&dir.path().join("junit.xml"));
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains("selftest::walks::slow::w0000[sleep=60]") && xml.contains("interrupted"),
        "{xml}"
    );
}
