//! `cargo run -p rooms`: checks that every crate of the workspace keeps its rooms. For each
//! library, binary and proc-macro target it draws the graph of the crate's source files from
//! their module paths and reports
//!
//! - every import cycle between files (a strongly connected component), with a shortest loop
//!   through it and, for each edge inside it, the first line that draws it;
//! - every source file over 700 lines, counting the lines before its first `#[cfg(test)]`
//!   (tests beside the code don't count against the room).
//!
//! It exits 1 when it found either, 0 when every crate is clean, 2 when it could not run.
//! `cargo run -p rooms -- harness cluster-sim` checks only those packages; `--pending PKG`
//! still checks and reports a package but lets the run pass (a crate whose rooms are being
//! rebuilt, so CI can hold every other crate to the rule meanwhile).
//!
//! The rule it checks: **every room imports only downward.** Edges are drawn this way:
//!
//! - A path in a file (`use crate::a::b::X;`, `super::x::f()`, `crate::a::g()` in code, a path
//!   through a child module or an imported module, `$crate::` in a macro) is an edge from that
//!   file to the file of the deepest module the path names: `a/b.rs` or `a/b/mod.rs`. An item
//!   that module only imports or re-exports is followed to the module that defines it: a
//!   re-export is a signpost, not a dependency on the signpost.
//! - `mod x;` declares, it does not import: a `lib.rs` or `mod.rs` that only declares and
//!   re-exports its children never forms a cycle with them, even when the children import each
//!   other through its re-exports. A child that imports logic defined in its parent (`mod.rs`,
//!   `lib.rs`, or `a.rs` for the files in `a/`) while the parent imports or re-exports anything
//!   of the child does form one: logic in a parent is a room above its children, and the child
//!   reaching it is an upward import.
//! - `use crate::a;` (a module by name) draws no edge by itself; the paths through it do.
//! - Test modules count too: a test beside the code that imports from a room above it makes a
//!   cycle like any other import.
//!
//! Only the workspace's own files are read; paths into other crates are ignored.

mod lex;
mod scan;
mod scc;
mod tree;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Longest a source file may be, tests aside.
const MAX_LINES: usize = 700;

/// A crate to check: its package, target and root file.
struct Target {
    package: String,
    kind: String,
    root: PathBuf,
}

fn main() -> ExitCode {
    let mut only: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), a.starts_with('-')) {
            ("--pending", _) => match args.next() {
                Some(p) => pending.push(p),
                None => return usage(),
            },
            (_, true) => return usage(),
            (_, false) => only.push(a),
        }
    }
    let (workspace, targets) = match targets() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let unknown: Vec<&String> = only
        .iter()
        .chain(&pending)
        .filter(|p| !targets.iter().any(|t| &t.package == *p))
        .collect();
    if !unknown.is_empty() {
        eprintln!("error: no workspace package named {unknown:?}");
        return ExitCode::from(2);
    }
    let mut bad = false;
    let mut long_seen = BTreeSet::new();
    for t in targets
        .iter()
        .filter(|t| only.is_empty() || only.contains(&t.package))
    {
        let broke = check(t, &workspace, &mut long_seen);
        if broke && pending.contains(&t.package) {
            println!("  ({} is pending: reported, not failing)", t.package);
        } else {
            bad |= broke;
        }
    }
    if bad {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: cargo run -p rooms [-- [--pending PACKAGE]... [PACKAGE...]]");
    ExitCode::from(2)
}

/// Reports one crate; whether it broke a rule.
fn check(t: &Target, workspace: &Path, long_seen: &mut BTreeSet<PathBuf>) -> bool {
    let krate = tree::load(&t.root, &tree::Disk);
    let show = |i: usize| {
        let p = &krate.files[i].path;
        p.strip_prefix(workspace).unwrap_or(p).display().to_string()
    };
    let pairs: Vec<(usize, usize)> = krate.edges.iter().map(|e| (e.from, e.to)).collect();
    let cycles = scc::cycles(krate.files.len(), &pairs);
    let long: Vec<usize> = (0..krate.files.len())
        .filter(|&i| krate.files[i].code_lines > MAX_LINES)
        .filter(|&i| long_seen.insert(krate.files[i].path.clone()))
        .collect();
    let verdict = match (cycles.len(), long.len()) {
        (0, 0) => "clean".to_string(),
        (c, l) => format!("{c} cycle(s), {l} file(s) over {MAX_LINES} lines"),
    };
    println!(
        "{} ({}): {} files, {verdict}",
        t.package,
        t.kind,
        krate.files.len()
    );
    let text: Vec<Vec<String>> = krate
        .files
        .iter()
        .map(|f| {
            std::fs::read_to_string(&f.path)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        })
        .collect();
    for (n, c) in cycles.iter().enumerate() {
        let names: Vec<String> = c.iter().map(|&i| show(i)).collect();
        println!(
            "  cycle {} ({} files): {}",
            n + 1,
            c.len(),
            names.join(", ")
        );
        let path: Vec<String> = scc::shortest_loop(c[0], c, &pairs)
            .into_iter()
            .map(show)
            .collect();
        println!("    shortest loop: {}", path.join(" -> "));
        for e in krate
            .edges
            .iter()
            .filter(|e| c.contains(&e.from) && c.contains(&e.to))
        {
            let line = text[e.from].get(e.line - 1).map(|l| l.trim()).unwrap_or("");
            println!("    {}:{} -> {}: {line}", show(e.from), e.line, show(e.to));
        }
    }
    for &i in &long {
        println!(
            "  {}: {} lines before its tests (over {MAX_LINES})",
            show(i),
            krate.files[i].code_lines
        );
    }
    !cycles.is_empty() || !long.is_empty()
}

/// The workspace root and every library, binary and proc-macro target of its packages, from
/// `cargo metadata` (so custom `path`s in manifests are honoured).
fn targets() -> Result<(PathBuf, Vec<Target>), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cannot read cargo metadata's output: {e}"))?;
    let workspace = PathBuf::from(meta["workspace_root"].as_str().unwrap_or("."));
    let mut targets = Vec::new();
    for p in meta["packages"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let kinds: Vec<&str> = t["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str())
                .collect();
            let Some(kind) = kinds
                .iter()
                .find(|k| matches!(**k, "lib" | "rlib" | "bin" | "proc-macro"))
            else {
                continue;
            };
            targets.push(Target {
                package: p["name"].as_str().unwrap_or("?").to_string(),
                kind: kind.to_string(),
                root: PathBuf::from(t["src_path"].as_str().unwrap_or_default()),
            });
        }
    }
    Ok((workspace, targets))
}
