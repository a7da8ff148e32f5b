//! Self-test on the memory backend: a run needs no Docker and no hosts when the backend is
//! `memory`, and everything the harness does with a backend goes through the contract: fresh
//! and shared clusters, a failing test's node logs, the janitor at the start of the run, the
//! lookup capability, and teardown (nothing of the run is left on this machine).

mod common;

use common::{example, spawn_binary};

#[test]
fn the_harness_runs_on_the_memory_backend() {
    let dir = tempfile::tempdir().unwrap();
    // The suite's temporary directory, where memory nodes live: empty again after the run.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (_, out) = spawn_binary(
        &example("memory_suite"),
        dir.path(),
        &["--test-threads", "1"],
        &[
            ("CLUSTER_SIM_BACKEND", "memory"),
            ("TMPDIR", tmp.to_str().unwrap()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(101),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for (name, result) in [
        ("fresh::passes", "ok"),
        ("fresh::fails_command", "FAILED"),
        ("fresh::times_out", "FAILED"),
        ("fresh::capabilities", "ok"),
        ("shared::share_1_provisions", "ok"),
        ("shared::share_2_reuses_after_reset", "ok"),
        ("shared::share_3_fails", "FAILED"),
        ("shared::share_4_gets_a_new_cluster", "ok"),
    ] {
        let line =
            regex::Regex::new(&format!(r"(?m)^test memory::{name} +\.\.\. {result}$")).unwrap();
        assert!(
            line.is_match(&stdout),
            "no `{name} ... {result}` in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("exited 3: stderr: boom; stdout: partial-output"),
        "{stdout}"
    );
    assert!(
        regex::Regex::new(r"still running:\n  n1: `sleep 30` \(for \d+\.\ds\)")
            .unwrap()
            .is_match(&stdout),
        "{stdout}"
    );

    // The failed test kept its node's log: what happened to the node record.
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let log = runs[0].join("memory::fresh::fails_command/nodes/n1/service.log");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    assert!(text.contains("started"), "{text}");
    assert!(!runs[0].join("memory::fresh::passes").exists());

    // The report names the backend.
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"name="backend" value="memory""#),
        "{junit}"
    );

    // Every cluster was torn down: no node directory is left.
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("cluster-sim-memory."))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Library events land in the log of the test they happened in: under
/// `RUST_LOG=cluster_sim_core=debug`, two tests running at once each find the core's debug
/// lines about their own cluster, and only those, in their own `test.log`.
#[test]
fn library_events_land_in_their_own_tests_log() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let (_, out) = spawn_binary(
        &example("memory_suite"),
        dir.path(),
        &[
            "memory::fresh::fails_command",
            "memory::fresh::times_out",
            "--test-threads",
            "2",
        ],
        &[
            ("CLUSTER_SIM_BACKEND", "memory"),
            ("TMPDIR", tmp.to_str().unwrap()),
            ("RUST_LOG", "cluster_sim_core=debug"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stdout}\n{stderr}");
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let cluster =
        regex::Regex::new(r"\[debug\] cluster_sim_core::[\w:]+: .* cluster=(\S+)").unwrap();
    let mut seen = Vec::new();
    for test in ["fails_command", "times_out"] {
        let log = runs[0].join(format!("memory::fresh::{test}/test.log"));
        let text =
            std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let mut names: Vec<&str> = cluster
            .captures_iter(&text)
            .map(|c| c.get(1).unwrap().as_str())
            .collect();
        assert!(
            !names.is_empty(),
            "{test}: no debug line of the core in\n{text}"
        );
        names.dedup();
        assert_eq!(names.len(), 1, "{test}: another test's events in\n{text}");
        seen.push(names[0].to_string());
    }
    assert_ne!(seen[0], seen[1], "both logs name one cluster");
    // Nothing of a test's cluster reached the terminal.
    for name in &seen {
        assert!(!stderr.contains(&format!("cluster={name}")), "{stderr}");
    }
}

/// `--failed` reruns exactly what failed last time: nothing to go on before any run (one
/// line, exit 2); after a run with one failing test, that test alone.
#[test]
fn failed_reruns_exactly_what_failed_last_time() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let env = [
        ("CLUSTER_SIM_BACKEND", "memory"),
        ("TMPDIR", tmp.to_str().unwrap()),
    ];
    let run = |args: &[&str]| {
        let (_, out) = spawn_binary(&example("memory_suite"), dir.path(), args, &env);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, _, stderr) = run(&["--failed"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--failed: no earlier run in"), "{stderr}");

    let (code, stdout, _) = run(&["memory::fresh::passes", "memory::fresh::fails_command"]);
    assert_eq!(code, Some(101), "{stdout}");
    let (code, stdout, stderr) = run(&["--failed"]);
    assert_eq!(code, Some(101), "{stdout}\n{stderr}");
    let ran: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("test ") && l.contains(" ... "))
        .collect();
    assert_eq!(
        ran,
        ["test memory::fresh::fails_command ... FAILED"],
        "{stdout}"
    );
    assert!(
        stderr.contains("--failed: running the 1 test(s)"),
        "{stderr}"
    );
    // That run failed the same test again: a third `--failed` still runs it alone.
    let (_, stdout, _) = run(&["--failed", "--list"]);
    assert_eq!(
        stdout.trim(),
        "memory::fresh::fails_command: test",
        "{stdout}"
    );
}

/// A library warning from a cleanup that failed lands in the log of the test it happened in:
/// with no `kill` on the `PATH`, the memory backend cannot kill a timed-out command's process
/// group and warns; that line is in that test's `test.log` (and JUnit case), not in the log of
/// the test running beside it, nor on the terminal.
#[test]
fn a_failed_cleanups_warning_lands_in_its_tests_log() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["sh", "sleep", "echo", "test"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists());
        if let Some(p) = found {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    let (_, out) = spawn_binary(
        &example("memory_suite"),
        dir.path(),
        &[
            "memory::fresh::command_past_its_deadline",
            "memory::fresh::passes",
            "--test-threads",
            "2",
        ],
        &[
            ("CLUSTER_SIM_BACKEND", "memory"),
            ("CLUSTER_SIM_KEEP", "always"),
            ("TMPDIR", tmp.to_str().unwrap()),
            ("PATH", bin.to_str().unwrap()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let runs: Vec<_> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let log = |test: &str| {
        let p = runs[0].join(format!("memory::fresh::{test}/test.log"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let warned = log("command_past_its_deadline");
    assert!(
        regex::Regex::new(r"\[warn\] cluster_sim_core::memory::process: kill -KILL -\d+: ")
            .unwrap()
            .is_match(&warned),
        "{warned}"
    );
    assert!(!log("passes").contains("[warn]"), "{}", log("passes"));
    assert!(!stderr.contains("kill -KILL"), "{stderr}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("[warn] cluster_sim_core::memory::process: kill -KILL"),
        "{junit}"
    );
}
