//! What the CLI's test targets share: the `cluster-sim check` runner and the paths of
//! `fixtures/histories/` (`check_cli.rs`, `check_models.rs`), and running the built binary on
//! the default backend against a cluster of the test's own (`disk.rs`, `down_hooks.rs`,
//! `membership.rs`). Each target uses part of it.
#![allow(
    dead_code,
    reason = "each test target includes this module and uses part of it"
)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// The built `cluster-sim`.
pub const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// The path of `fixtures/histories/<name>` (`name` may hold a subfolder).
pub fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/histories")
        .join(name)
        .display()
        .to_string()
}

/// Runs `cluster-sim check <args>`: its exit code, stdout and stderr.
pub fn check(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cluster-sim"))
        .arg("check")
        .args(args)
        // No engine is needed: point DOCKER_HOST at nothing to prove it.
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .expect("run cluster-sim");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cluster name of this test process's own: `prefix-<pid>-<random>`.
pub fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xfffff)
}

/// The CLI on the default backend, stdin closed, output captured, not yet run.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(CLI);
    cmd.args(args)
        .env_remove("CLUSTER_SIM_BACKEND")
        .env_remove("CLUSTER_SIM_INVENTORY")
        .stdin(Stdio::null());
    cmd
}

/// Runs the CLI on the default backend, stdin closed, output captured.
pub fn cli(args: &[&str]) -> Output {
    command(args).output().expect("run cluster-sim")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `o`, which must have succeeded (`what` names the step in the failure).
pub fn ok(o: Output, what: &str) -> Output {
    assert!(o.status.success(), "{what}: {}", stderr(&o));
    o
}

/// A failure: non-zero, one line on stderr, containing `part`.
pub fn fails(o: &Output, part: &str) {
    assert!(!o.status.success(), "succeeded: {}", stdout(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains(part), "{e}");
}

/// Removes the cluster (without its hooks) if it is still there when the test ends, however
/// it ends.
pub struct Down(pub String);

impl Drop for Down {
    fn drop(&mut self) {
        if cli(&["ls", &self.0]).status.success() {
            let o = cli(&["down", &self.0, "--no-hooks"]);
            if !o.status.success() && !std::thread::panicking() {
                panic!("down {}: {}", self.0, stderr(&o));
            }
        }
    }
}
