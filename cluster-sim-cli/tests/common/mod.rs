//! What the `cluster-sim check` tests (`check_cli.rs`, `check_models.rs`) share: the runner of
//! the built binary and the paths of `fixtures/histories/`.

use std::path::PathBuf;
use std::process::Command;

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
