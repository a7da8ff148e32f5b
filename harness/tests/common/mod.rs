//! Helpers shared by the self-tests: the fixture suite's binary, running it, the schema check
//! and what a run left in Docker.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::cluster_sim::rng::SplitMix64;

/// The fixture suite's binary, built (or found fresh) by cargo: `cargo test --test selftest`
/// alone does not build examples, and a stale fixture would test old harness code.
pub fn suite() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| example("selftest_suite")).clone()
}

/// The harness example `name` (a fixture suite), built (or found fresh) by cargo. Every nested
/// build here resolves features for the whole workspace (`--workspace`) with the profile of the
/// `cargo test --workspace` running us, so it finds that build's artifacts fresh instead of
/// compiling a second copy (a `-p harness` build leaves out the CLI's features of the core).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--workspace", "--example", name]);
    cmd.args(profile_args(profile_dir));
    let status = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "building the example {name} failed");
    profile_dir.join("examples").join(name)
}

/// The cargo profile of the build running us: `cargo test` builds examples and binaries with the
/// `test` profile, so a nested `cargo build --profile test` finds them fresh instead of building
/// a second copy with the `dev` profile (`cargo bench`: `--release`).
fn profile_args(profile_dir: &Path) -> [&'static str; 2] {
    if profile_dir.ends_with("release") {
        ["--profile", "release"]
    } else {
        ["--profile", "test"]
    }
}

/// The `cluster-sim` CLI, built (or found fresh) by cargo: the self-tests drive kept and
/// attached clusters with it as a user would.
pub fn cli() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            cmd.args(["build", "--quiet", "--workspace", "--bin", "cluster-sim"]);
            cmd.args(profile_args(profile_dir));
            let status = cmd
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "building the cluster-sim CLI failed");
            profile_dir.join("cluster-sim")
        })
        .clone()
}

/// Runs the `cluster-sim` CLI with `args` (on docker, whatever the caller's backend).
pub fn run_cli(args: &[&str]) -> Output {
    Command::new(cli())
        .args(args)
        .env("CLUSTER_SIM_BACKEND", "docker")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
        .output()
        .unwrap()
}

/// Names of the Docker containers matching `filters` (`label=...`, `status=...`).
pub fn containers(filters: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("docker");
    cmd.args(["ps", "-a", "--format", "{{.Names}}"]);
    for f in filters {
        cmd.args(["--filter", f]);
    }
    let out = cmd.output().expect("docker CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `bin` (a harness test binary) set up to run with its report and artifacts under `dir` and
/// none of the caller's harness settings; add arguments and stdio.
pub fn suite_command(bin: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("CLUSTER_SIM_JUNIT", dir.join("junit.xml"))
        .env("CLUSTER_SIM_ARTIFACTS", dir.join("runs"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("CLUSTER_SIM_KEEP")
        .env_remove("CLUSTER_SIM_KEEP_CLUSTER")
        .env_remove("CLUSTER_SIM_CLUSTER")
        .env_remove("CLUSTER_SIM_INJECT_PANIC");
    cmd
}

pub fn run_suite(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    suite_command(&suite(), dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Docker resources of the run of process `pid` (other runs may share the engine): its
/// clusters are named `<spec>-<fn>-<pid>-<seq>`, and its owner label names the pid.
pub fn leftovers(pid: u32) -> Vec<String> {
    let name = regex::Regex::new(&format!(r"cluster-sim\.cluster=[a-z0-9-]*-{pid}-\d+\b")).unwrap();
    let mut found = Vec::new();
    // Each listing has its own field for the name: a template naming the other's fails.
    for (what, format) in [
        (&["ps", "-a"][..], "{{.Names}} {{.Labels}}"),
        (&["network", "ls"][..], "{{.Name}} {{.Labels}}"),
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", "label=cluster-sim.cluster", "--format", format])
            .output()
            .expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {what:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        found.extend(
            text.lines()
                .filter(|l| l.contains(&format!(":{pid}:")) || name.is_match(l))
                .map(str::to_string),
        );
    }
    found
}

/// The report satisfies junit-10.xsd (tools/junit-schema: the schema's rules in Rust, and
/// xmllint too where it is installed).
pub fn assert_valid(report: &Path) {
    if let Err(e) = junit_schema::validate_file(report) {
        panic!("{e}");
    }
}

/// Runs the fixture suite with `args` and `env`, its report and artifacts under `dir`; returns
/// its pid (to find what it left in Docker) and its output.
pub fn spawn_suite(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (u32, Output) {
    spawn_binary(&suite(), dir, args, env)
}

/// The project's own suites (`tests_d/`, the root package's `tests_d` target), built (or found
/// fresh) by cargo.
pub fn tests_d() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new(env!("CARGO"))
                .args([
                    "test",
                    "--no-run",
                    "--message-format=json",
                    "--workspace",
                    "--test",
                    "tests_d",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            assert!(out.status.success(), "building tests_d failed");
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| m["target"]["name"] == "tests_d")
                .find_map(|m| m["executable"].as_str().map(PathBuf::from))
                .expect("cargo named the tests_d executable")
        })
        .clone()
}

/// Runs `bin` (a harness test binary) like [`spawn_suite`].
pub fn spawn_binary(bin: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (u32, Output) {
    let child = suite_command(bin, dir)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    (pid, child.wait_with_output().unwrap())
}

/// The random source of the signal self-tests' rounds: `CLUSTER_SIM_SIGNAL_SEED` replays a
/// sequence that failed.
pub fn signal_rng(default_seed: u64) -> SplitMix64 {
    let seed = std::env::var("CLUSTER_SIM_SIGNAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_seed);
    SplitMix64::new(seed)
}

/// Starts the fixture suite's `selftest::signals` tests (a few clusters provisioning, running
/// and tearing down at once) with its report and artifacts under `dir`, and sends it `signal`
/// (`INT`, `TERM`, `KILL`) `delay` after the start, unless the run ended first. Returns the
/// child, to wait for, and whether the signal was sent.
pub fn signal_suite_at(
    dir: &Path,
    signal: &str,
    delay: Duration,
    env: &[(&str, &str)],
    output: fn() -> Stdio,
) -> (Child, bool) {
    let mut child = suite_command(&suite(), dir)
        .args(["selftest::signals", "--ignored", "--test-threads", "2"])
        .envs(env.iter().copied())
        .stdout(output())
        .stderr(output())
        .spawn()
        .unwrap();
    // The random point is the test's input, not a wait for something to happen; stop early if
    // the run ends first.
    let at = Instant::now() + delay;
    while Instant::now() < at && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = child.try_wait().unwrap().is_none()
        && Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap()
            .success();
    (child, sent)
}

/// Waits (with a deadline) until some test.log under `runs` holds `needle`.
pub fn wait_for_log(runs: &Path, test: &str, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        let found = std::fs::read_dir(runs)
            .into_iter()
            .flatten()
            .flatten()
            .any(|run| {
                std::fs::read_to_string(run.path().join(test).join("test.log"))
                    .is_ok_and(|log| log.contains(needle))
            });
        if found || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
