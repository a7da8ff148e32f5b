//! Self-tests: run the fixture suite (`examples/selftest_suite`) as a subprocess and check it
//! from the outside: exit code, console, the JUnit report (shape and schema) and that Docker
//! holds nothing of the run afterwards. Needs a Docker engine with the `cluster-sim/node` image
//! (built on first use).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_valid, leftovers, run_suite, spawn_suite, suite, suite_command};

/// The report with what changes between runs (times, run ids, pids, paths, addresses,
/// timestamps, durations) redacted, and each case's log reduced to its event kinds.
fn redact(xml: &str, dir: &Path) -> String {
    let xml = xml.replace(&dir.display().to_string(), "[dir]");
    let rules: &[(&str, &str)] = &[
        (r#"time="[0-9.]+""#, r#"time="[t]""#),
        (r"\d{8}T\d{6}Z-\d+", "[run]"),
        (r"-\d+-\d+\b", "-[pid]-[n]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \+\d+\.\d+s ", ""),
        (r"\b\d+\.\d+\.\d+\.\d+\b", "[addr]"),
        // One duration, simple ("12ms", "1.5s") or compound as people read them ("1s 23ms").
        (r"\d+(\.\d+)?(h|m|s|ms|us|µs)( \d+(ms|us|µs|s|m))*\b", "[d]"),
        (r"/[^ \]]*/harness/", "[harness]/"),
    ];
    let mut out = xml;
    for (re, to) in rules {
        out = regex::Regex::new(re)
            .unwrap()
            .replace_all(&out, *to)
            .into_owned();
    }
    out
}

/// Every `[[ATTACHMENT|path]]` of `xml` is relative and resolves from `project` (GitLab and
/// Jenkins resolve them from the job's checkout), and a failed case's first one is its
/// `test.log` (GitLab links only the first).
fn attachments_resolve_log_first(xml: &str, project: &Path) {
    let attachment = regex::Regex::new(r"\[\[ATTACHMENT\|([^\]]+)\]\]").unwrap();
    let mut failed_cases = 0;
    for case in xml.split("<testcase ").skip(1) {
        let case = case.split("</testcase>").next().unwrap_or(case);
        let paths: Vec<&str> = attachment
            .captures_iter(case)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        for p in &paths {
            assert!(Path::new(p).is_relative(), "absolute attachment {p}");
            assert!(
                project.join(p).is_file(),
                "{p} does not resolve from the project"
            );
        }
        if case.contains("<failure") || case.contains("<error") {
            failed_cases += 1;
            let first = paths
                .first()
                .unwrap_or_else(|| panic!("no attachment: {case}"));
            assert!(
                first.ends_with("/test.log"),
                "first attachment {first}: {case}"
            );
        }
    }
    assert!(failed_cases > 0, "no failed case in {xml}");
}

#[test]
fn outcomes_are_reported_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::outcomes", "--test-threads", "4"],
        &[("CI_PROJECT_DIR", dir.path().to_str().unwrap())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(101),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "the suite took {:?}",
        started.elapsed()
    );

    for (name, result) in [
        ("passes", "ok"),
        ("plain_passes", "ok"),
        ("fails_command", "FAILED"),
        ("panics", "FAILED"),
        ("times_out", "FAILED"),
        ("bad_spec", "FAILED"),
        ("missing_image", "FAILED"),
        ("prints_and_fails", "FAILED"),
        ("ignored", "ignored"),
    ] {
        let line = regex::Regex::new(&format!(
            r"(?m)^test selftest::outcomes::{name} +\.\.\. {result}$"
        ))
        .unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(
            "test result: FAILED. 2 passed; 6 failed; 3 ignored; 0 measured; 35 filtered out"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("rerun: cargo run --example selftest_suite -- selftest::outcomes::fails_command --exact"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exited 3: stderr: boom; stdout: partial-output"),
        "{stdout}"
    );
    // A timeout names what was still running, on which node.
    assert!(
        regex::Regex::new(r"still running:\n  n1: `sleep 30` \(for \d+\.\ds\)")
            .unwrap()
            .is_match(&stdout),
        "{stdout}"
    );
    // What a test prints is captured into its log, not written to the terminal.
    assert!(!stdout.contains("to stdout 1"), "{stdout}");
    assert!(!stderr.contains("to stderr"), "{stderr}");

    // Failed tests keep their node logs; the passing one keeps nothing.
    let runs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    for kept in ["fails_command", "panics", "times_out"] {
        let d = runs[0].join(format!("selftest::outcomes::{kept}"));
        assert!(d.join("test.log").is_file(), "{kept}: no test.log");
        assert!(
            d.join("nodes/n1/service.log").is_file(),
            "{kept}: no node log"
        );
    }
    assert!(!runs[0].join("selftest::outcomes::passes").exists());

    let report = dir.path().join("junit.xml");
    assert_valid(&report);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(xml.contains("[[ATTACHMENT|"), "no attachments");
    attachments_resolve_log_first(&xml, dir.path());
    assert!(xml.contains("[stdout] to stdout 1\n"), "{xml}");
    assert!(xml.contains("[stderr] to stderr\n"), "{xml}");
    assert!(
        xml.contains("<error message=\"panicked: deliberate panic in a test"),
        "{xml}"
    );
    assert!(
        !xml.contains("name=\"state\""),
        "a finished report carries no state: {xml}"
    );
    insta::assert_snapshot!("selftest_junit", redact(&xml, dir.path()));

    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "the run left Docker resources"
    );
}

#[test]
fn nemesis_seed_on_failure_and_requires_skips() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(dir.path(), &["selftest::faults"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{stdout}");
    assert!(
        stdout.contains("nemesis seed 4242 (replay with CLUSTER_SIM_SEED=4242)"),
        "{stdout}"
    );
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        xml.contains(
            r#"<property name="selftest::faults::fails_under_a_nemesis.seed" value="4242"/>"#
        ),
        "{xml}"
    );
    assert!(
        xml.contains("deliberate failure under a nemesis; nemesis seed 4242 (replay with CLUSTER_SIM_SEED=4242); rerun:"),
        "{xml}"
    );
    // Where the kernel has netem the test runs (and passes); here it is skipped, saying why.
    let reason = "requires netem: the kernel module sch_netem is missing on the docker backend";
    let line = |result: &str| {
        regex::Regex::new(&format!(
            r"(?m)^test selftest::faults::needs_netem +\.\.\. {}$",
            regex::escape(result)
        ))
        .unwrap()
        .is_match(&stdout)
    };
    let skipped = line(&format!("ignored ({reason})"));
    let ran = line("ok");
    assert!(skipped || ran, "{stdout}");
    if skipped {
        assert!(
            xml.contains(&format!("<skipped message=\"{reason}\"/>")),
            "{xml}"
        );
    }
    assert_valid(&dir.path().join("junit.xml"));
    assert_eq!(leftovers(pid), Vec::<String>::new());
}

#[test]
fn list_needs_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_suite(
        dir.path(),
        &["--list", "--format", "terse"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert!(out.status.success());
    insta::assert_snapshot!("selftest_list", String::from_utf8_lossy(&out.stdout));
    let out = run_suite(
        dir.path(),
        &["--list", "--ignored", "selftest::outcomes"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [
            "selftest::outcomes::holds_two_nodes: test",
            "selftest::outcomes::ignored: test",
            "selftest::outcomes::slow: test"
        ]
    );
    assert!(
        !dir.path().join("junit.xml").exists(),
        "--list wrote a report"
    );
}

#[test]
fn filters_exact_and_skip_select_like_libtest() {
    let dir = tempfile::tempdir().unwrap();
    // No test here needs a cluster, so nothing may contact the engine.
    let unreachable = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let out = run_suite(dir.path(), &["plain", "--skip", "ignored"], &unreachable);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("1 passed; 0 failed; 0 ignored; 0 measured; 45 filtered out"),
        "{stdout}"
    );
    // Several filters select the tests matching any of them, as libtest does.
    let out = run_suite(
        dir.path(),
        &["plain_passes", "prints", "--skip", "ignored"],
        &unreachable,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{stdout}");
    assert!(
        stdout.contains("1 passed; 1 failed; 0 ignored; 0 measured; 44 filtered out"),
        "{stdout}"
    );
    let out = run_suite(
        dir.path(),
        &[
            "--exact",
            "selftest::outcomes::plain_passes",
            "selftest::outcomes::ignored",
            "--include-ignored",
        ],
        &unreachable,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed; 1 failed; 0 ignored; 0 measured; 44 filtered out"),
        "{stdout}"
    );
    let out = run_suite(
        dir.path(),
        &[
            "selftest::outcomes::ignored",
            "--exact",
            "--include-ignored",
        ],
        &unreachable,
    );
    assert_eq!(out.status.code(), Some(101));
    assert!(String::from_utf8_lossy(&out.stdout).contains("an ignored test ran"));
    assert_valid(&dir.path().join("junit.xml"));
}

#[test]
fn interrupt_tears_down_and_leaves_a_valid_report() {
    let dir = tempfile::tempdir().unwrap();
    // A previous run's green report, which must not survive the start of this run.
    std::fs::write(
        dir.path().join("junit.xml"),
        "<testsuites name=\"stale\" tests=\"1\"><testsuite name=\"stale\" tests=\"1\"><testcase name=\"stale\"/></testsuite></testsuites>",
    )
    .unwrap();
    let child = suite_command(&suite(), dir.path())
        .args(["selftest::outcomes::slow", "--exact", "--ignored"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait (with a deadline) until the test's cluster is up, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(120);
    let up = loop {
        let up = std::fs::read_dir(dir.path().join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|run| {
                std::fs::read_to_string(run.path().join("selftest::outcomes::slow/test.log"))
                    .is_ok_and(|log| log.contains("is up; running the test"))
            });
        if up || Instant::now() > deadline {
            break up;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(up, "the slow test's cluster never came up");
    // Meanwhile the report is this run's, in progress: the stale one is gone.
    let report = dir.path().join("junit.xml");
    assert_valid(&report);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(!xml.contains("stale"), "{xml}");
    assert!(
        xml.contains("<property name=\"state\" value=\"running\"/>"),
        "{xml}"
    );
    assert!(xml.contains("tests=\"0\""), "{xml}");
    let kill = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = dir.path().join("junit.xml");
    assert_valid(&report);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(xml.contains("type=\"interrupted\""), "{xml}");
    assert!(
        xml.contains("<property name=\"state\" value=\"interrupted\"/>"),
        "{xml}"
    );
    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "the interrupted run left Docker resources"
    );
}

#[test]
fn a_panic_in_any_phase_is_an_error_case_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::panics", "--ignored"],
        &[(
            "CLUSTER_SIM_INJECT_PANIC",
            "provision:in_provision,ready:in_ready,body:in_body,teardown:in_teardown",
        )],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{stdout}");
    assert!(stdout.contains("0 passed; 4 failed"), "{stdout}");
    let report = dir.path().join("junit.xml");
    assert_valid(&report);
    let xml = std::fs::read_to_string(&report).unwrap();
    assert!(
        xml.contains("<testsuites name=\"cluster-sim\" tests=\"4\" failures=\"0\" errors=\"4\""),
        "{xml}"
    );
    for (test, phase) in [
        ("in_provision", "provisioning"),
        ("in_ready", "waiting for the nodes to be ready"),
        ("in_body", "panicked: injected panic in body"),
        ("in_teardown", "tearing down"),
    ] {
        let name = format!("selftest::panics::{test}");
        let case = xml
            .split("<testcase ")
            .find(|c| c.starts_with(&format!("name=\"{name}\"")))
            .unwrap_or_else(|| panic!("no case {name} in {xml}"));
        assert!(case.contains("type=\"panic\""), "{case}");
        assert!(case.contains(phase), "{test}: {case}");
        assert!(
            case.contains(&format!(
                "rerun: cargo run --example selftest_suite -- {name} --exact"
            )),
            "{case}"
        );
        assert!(
            case.contains("/test.log]]"),
            "{test}: no test.log attached: {case}"
        );
        assert!(
            case.contains("/nodes/n1/service.log]]"),
            "{test}: no node log attached: {case}"
        );
    }
    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "the panicking run left Docker resources"
    );
}

#[test]
fn an_unwritable_report_fails_the_run_before_any_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let junit = blocker.join("junit.xml");
    let out = run_suite(
        dir.path(),
        &["selftest::outcomes::passes", "--exact"],
        &[
            ("CLUSTER_SIM_JUNIT", junit.to_str().unwrap()),
            // Were a cluster attempted, this would show as a provisioning error instead.
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!stdout.contains("test selftest"), "a test ran: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: cannot write the JUnit report {}",
            junit.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_shared_group_reuses_resets_and_replaces_a_failed_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // One thread: the group's tests take their turns in name order.
    let (pid, out) = spawn_suite(
        dir.path(),
        &["selftest::shared::", "--test-threads", "1"],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(101), "{stdout}");
    // Each test checks what it finds: a new cluster, the reused one after the reset, and a new
    // one after the failure.
    for (name, result) in [
        ("share_1_provisions", "ok"),
        ("share_2_reuses_after_reset", "ok"),
        ("share_3_fails", "FAILED"),
        ("share_4_gets_a_new_cluster", "ok"),
    ] {
        let line = regex::Regex::new(&format!(
            r"(?m)^test selftest::shared::{name} +\.\.\. {result}$"
        ))
        .unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{stdout}"
        );
    }
    // The group's last test tore the replacement down; nothing is left.
    assert_eq!(leftovers(pid), Vec::<String>::new());
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
        .collect();
    let failed = runs[0].path().join("selftest::shared::share_3_fails");
    let log = std::fs::read_to_string(failed.join("test.log")).unwrap();
    assert!(log.contains("the shared cluster is discarded"), "{log}");
    assert!(failed.join("nodes/n1").is_dir());
    assert_valid(&dir.path().join("junit.xml"));
}

/// The node budget holds across processes (nextest runs one per test): two runs sharing a
/// budget of 3 nodes, each asking for 2, never hold their clusters at the same time.
#[test]
fn two_processes_share_one_node_budget() {
    let dir = tempfile::tempdir().unwrap();
    let spawn = |i: usize| {
        let own = dir.path().join(format!("p{i}"));
        std::fs::create_dir_all(&own).unwrap();
        // Both runs' artifacts sit in one folder, so their budget (beside the runs) is one.
        suite_command(&suite(), &own)
            .env("CLUSTER_SIM_ARTIFACTS", dir.path().join("runs"))
            .env("CLUSTER_SIM_NODE_BUDGET", "3")
            .env("CLUSTER_SIM_KEEP", "always")
            .args([
                "selftest::outcomes::holds_two_nodes",
                "--exact",
                "--ignored",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(0), spawn(1));
    let (pids, outs) = (
        [a.id(), b.id()],
        [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()],
    );
    for out in &outs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each run's test.log says when its body held the nodes.
    let mut spans = Vec::new();
    let mut waited = false;
    for run in std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .flatten()
    {
        let Ok(log) = std::fs::read_to_string(
            run.path()
                .join("selftest::outcomes::holds_two_nodes/test.log"),
        ) else {
            continue;
        };
        waited |= log.contains("waiting for 2 of 3 nodes");
        let at = |what: &str| -> u128 {
            let line = log
                .lines()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("{what} in {log}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        spans.push((at("held from"), at("held until")));
    }
    assert_eq!(spans.len(), 2, "two runs' logs: {spans:?}");
    spans.sort();
    assert!(
        spans[0].1 <= spans[1].0,
        "both held 2 of 3 nodes at once: {spans:?}"
    );
    assert!(waited, "neither run noted waiting for the budget");
    for pid in pids {
        assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    }
}
