//! Self-tests of service logs and hooks on the real engine: readiness by a log line,
//! `fail_on_log` failing a test whose body passed (naming node, line number and line),
//! `allow_log` exempting a line, hooks at each point (their output in `test.log`), a failing
//! `after_up` hook failing the test with its output, and nothing of the run left in Docker.

mod common;

use common::{example, leftovers, spawn_binary};

/// The `test.log` of test `name` under the run's artifacts.
fn test_log(dir: &std::path::Path, name: &str) -> String {
    let runs = dir.join("runs");
    let mut found = Vec::new();
    let mut stack = vec![runs];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|f| f == "test.log")
                && p.to_string_lossy().contains(name)
            {
                found.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    assert_eq!(found.len(), 1, "test.log of {name}: found {}", found.len());
    found.pop().unwrap()
}

#[test]
fn log_checks_and_hooks_on_the_real_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (pid, out) = spawn_binary(
        &example("logs_hooks_suite"),
        dir.path(),
        &["logs::", "--test-threads", "2"],
        &[("CLUSTER_SIM_KEEP", "always")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(101), "{all}");
    for (name, result) in [
        ("panic_in_service_log_fails", "FAILED"),
        ("allowed_line_passes", "ok"),
        ("hooks_run", "ok"),
        ("after_up_hook_fails", "FAILED"),
    ] {
        let line =
            regex::Regex::new(&format!(r"(?m)^test logs::{name} +\.\.\. {result}$")).unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{all}"
        );
    }

    // fail_on_log names the node, the line number (the service's first line is "service
    // up") and the line.
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("fail_on_log: node n2 line 2: thread main panicked at src/main.rs:7:5"),
        "{junit}"
    );
    // The failing after_up hook: command, node, exit code and output.
    assert!(
        junit.contains(
            "after_up hook on node n1: `echo &apos;seeding failed: no quorum&apos;; exit 7` exited 7; output:"
        ) || junit.contains(
            "after_up hook on node n1: `echo 'seeding failed: no quorum'; exit 7` exited 7; output:"
        ),
        "{junit}"
    );
    assert!(junit.contains("seeding failed: no quorum"), "{junit}");

    // Readiness waited for the log line; the hooks' output is in test.log.
    let log = test_log(dir.path(), "allowed_line_passes");
    assert!(log.contains("ready after"), "{log}");
    let log = test_log(dir.path(), "hooks_run");
    for want in [
        "after_up hook `hostname > /tmp/after_up; echo hook-said-hi` -> exit 0:",
        "hook-said-hi",
        "after_restart hook `echo restarted >> /tmp/restarts; echo restart-hook-ran` -> exit 0:",
        "restart-hook-ran",
        "before_down hook `echo cannot-flush >&2; exit 4` -> exit 4:",
        "cannot-flush",
        "before_down hook on node n1: `echo cannot-flush >&2; exit 4` exited 4; output:",
        "tearing down all the same",
        "removed in",
    ] {
        assert!(
            log.contains(want),
            "no {want:?} in the hooks test's log:\n{log}"
        );
    }
    assert_eq!(
        log.matches("after_up hook `").count(),
        2,
        "one after_up hook per node:\n{log}"
    );

    let left = leftovers(pid);
    assert!(left.is_empty(), "left in Docker: {left:?}");
}
