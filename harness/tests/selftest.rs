//! Self-tests: run the fixture suite (`examples/selftest_suite`) as a subprocess and check it
//! from the outside: exit code, console, the JUnit report (shape and schema) and that Docker
//! holds nothing of the run afterwards. Needs a Docker engine with the `cluster-sim/node` image
//! (built on first use).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The schema the report must satisfy (the shared copy beside the workspace).
fn schema() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/schemas/junit-10.xsd");
    p.is_file().then_some(p)
}

/// The fixture suite's binary, built (or found fresh) by cargo: `cargo test --test selftest`
/// alone does not build examples, and a stale fixture would test old harness code.
fn suite() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "harness",
                "--example",
                "selftest_suite",
            ]);
            if profile_dir.ends_with("release") {
                cmd.arg("--release");
            }
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "building the fixture suite failed");
            profile_dir.join("examples/selftest_suite")
        })
        .clone()
}

fn run_suite(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(suite());
    cmd.args(args)
        .env("CLUSTER_SIM_JUNIT", dir.join("junit.xml"))
        .env("CLUSTER_SIM_ARTIFACTS", dir.join("runs"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("CLUSTER_SIM_KEEP");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Docker resources whose owner label names process `pid` (other runs may share the engine).
fn leftovers(pid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for what in [&["ps", "-a"][..], &["network", "ls"][..]] {
        let out = Command::new("docker")
            .args(what)
            .args([
                "--filter",
                "label=cluster-sim.cluster",
                "--format",
                "{{.Names}}{{.Name}} {{.Labels}}",
            ])
            .output()
            .expect("docker CLI");
        let text = String::from_utf8_lossy(&out.stdout);
        found.extend(
            text.lines()
                .filter(|l| l.contains(&format!(":{pid}:")))
                .map(str::to_string),
        );
    }
    found
}

fn assert_valid(report: &Path) {
    let Some(xsd) = schema() else {
        eprintln!("junit-10.xsd not found beside the workspace; schema check skipped");
        return;
    };
    let out = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(xsd)
        .arg(report)
        .output()
        .expect("xmllint (libxml2-utils) is needed by the self-tests");
    assert!(
        out.status.success(),
        "{} does not validate: {}",
        report.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

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
        (r"\d+(\.\d+)?(ms|µs|s)\b", "[d]"),
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

#[test]
fn outcomes_are_reported_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = Command::new(suite())
        .args(["--test-threads", "4"])
        .env("CLUSTER_SIM_JUNIT", dir.path().join("junit.xml"))
        .env("CLUSTER_SIM_ARTIFACTS", dir.path().join("runs"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("CLUSTER_SIM_KEEP")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
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
        stdout.contains("test result: FAILED. 2 passed; 5 failed; 2 ignored"),
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
    insta::assert_snapshot!("selftest_junit", redact(&xml, dir.path()));

    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "the run left Docker resources"
    );
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
        &["--list", "--ignored"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .collect::<Vec<_>>(),
        [
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
        stdout.contains("1 passed; 0 failed; 0 ignored; 0 measured; 8 filtered out"),
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
    let child = Command::new(suite())
        .args(["selftest::outcomes::slow", "--exact", "--ignored"])
        .env("CLUSTER_SIM_JUNIT", dir.path().join("junit.xml"))
        .env("CLUSTER_SIM_ARTIFACTS", dir.path().join("runs"))
        .env_remove("NEXTEST_RUN_ID")
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
    assert_eq!(
        leftovers(pid),
        Vec::<String>::new(),
        "the interrupted run left Docker resources"
    );
}
