//! Self-test of the command line itself: `--help` is the harness's own text (the flags it
//! takes, `--nocapture` as it really behaves, the filters, `--partition`, `--failed`, the
//! variables and `cluster-sim.toml`), and a flag or value it can't use is one line and exit 2.

mod common;

use common::{example, spawn_binary};

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (_, out) = spawn_binary(
        &example("memory_suite"),
        dir.path(),
        args,
        &[("CLUSTER_SIM_BACKEND", "memory")],
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_tells_what_the_harness_takes() {
    let (code, stdout, stderr) = run(&["--help"]);
    assert_eq!(code, Some(0), "{stderr}");
    for needle in [
        "--partition SCHEME:M/N",
        "time (balanced by the durations",
        "--failed",
        "--exact",
        "--skip PATTERN",
        "FILTER...",
        "--nocapture",
        "goes into its test.log and JUnit case",
        "--list",
        "CLUSTER_SIM_BACKEND",
        "CLUSTER_SIM_NODE_BUDGET",
        "RUST_LOG",
        "cluster-sim.toml",
    ] {
        assert!(stdout.contains(needle), "no {needle:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("No-op"), "{stdout}");
}

#[test]
fn a_bad_flag_or_value_is_one_line_and_exit_2() {
    for (args, says) in [
        (
            &["--frobnicate"][..],
            "error: unknown flag --frobnicate (see --help)",
        ),
        (
            &["--test-threads", "none"],
            "error: --test-threads \"none\": expected a number above 0",
        ),
        (
            &["--partition", "slice:1/2"],
            "error: --partition \"slice:1/2\": expected",
        ),
    ] {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with(says), "{args:?}: {stderr}");
    }
}
