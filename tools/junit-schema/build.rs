//! Tells this crate's tests whether xmllint is here (the same probe as harness/build.rs).
//!
//! Where xmllint is missing, the comparison of the Rust rules with xmllint is marked ignored
//! (libtest names the package and counts it); under `CI=true` it runs and fails instead.

use std::path::Path;

/// (cfg set when missing, the commands that would do, Debian's package).
const TOOLS: &[(&str, &[&str], &str)] = &[("missing_xmllint", &["xmllint"], "libxml2-utils")];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CI");
    println!("cargo:rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path)
        .filter(|d| d.is_dir())
        .collect();
    // A tool installed or removed later changes its directory: look again then.
    for dir in &dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for (cfg, commands, _package) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        let found = commands
            .iter()
            .any(|c| dirs.iter().any(|d| is_executable(&d.join(c))));
        if !found && !ci {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
