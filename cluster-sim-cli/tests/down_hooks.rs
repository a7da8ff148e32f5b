//! `cluster-sim down NAME` runs the `before_down` hooks of the spec a kept cluster was made
//! from: each on the nodes it names, its output on stderr; a failing hook is one line and the
//! cluster is removed all the same; a spec that is gone is one warning and the cluster is
//! removed; `--no-hooks` skips them.

mod common;

use std::path::Path;
use std::process::Output;

use common::{cli, ok, stderr, stdout, unique, Down};

/// Two nodes; `before_down`: n1 says goodbye, then n2 fails with exit 3.
const SPEC: &str = r#"name = "hooked"
nodes = 2
[service]
command = "exec sleep 1000000"
[[hook]]
when = "before_down"
node = "n1"
command = "echo goodbye-from-$CLUSTER_SIM_NODE"
[[hook]]
when = "before_down"
node = "n2"
command = "echo n2-refuses >&2; exit 3"
"#;

fn up(spec: &Path, prefix: &str) -> (String, Down) {
    let name = unique(prefix);
    ok(
        cli(&["up", spec.to_str().expect("utf-8"), "--name", &name]),
        "up",
    );
    (name.clone(), Down(name))
}

/// `down` succeeded, said so, and the cluster is gone.
fn removed(o: &Output, name: &str) {
    assert!(o.status.success(), "down {name}: {}", stderr(o));
    assert_eq!(stdout(o).trim(), format!("removed {name}"));
    let ls = cli(&["ls", name]);
    assert!(!ls.status.success(), "{name} is still there");
    assert!(stderr(&ls).contains("no cluster named"), "{}", stderr(&ls));
}

#[test]
fn down_runs_the_kept_clusters_before_down_hooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("hooked.toml");
    std::fs::write(&spec, SPEC).expect("write spec");

    // The hooks run on the nodes they name, their output on stderr; n2's failure is one line
    // and the cluster is removed all the same.
    let (name, _down) = up(&spec, "hooks-down");
    let o = cli(&["down", &name]);
    let e = stderr(&o);
    assert!(
        e.contains("n1: before_down hook `echo goodbye-from-$CLUSTER_SIM_NODE` -> exit 0"),
        "{e}"
    );
    assert!(e.contains("| goodbye-from-n1"), "{e}");
    assert!(!e.contains("-> exit 0 in "), "each exec shown twice: {e}");
    assert!(!e.contains("goodbye-from-n2"), "n1's hook ran on n2: {e}");
    assert!(e.contains("| n2-refuses"), "{e}");
    let failed: Vec<&str> = e
        .lines()
        .filter(|l| l.contains("removing it all the same"))
        .collect();
    assert_eq!(failed.len(), 1, "{e}");
    assert!(
        failed[0].contains(&format!(
            "{name}: before_down hook on node n2: `echo n2-refuses >&2; exit 3` exited 3"
        )),
        "{e}"
    );
    removed(&o, &name);

    // --no-hooks: none run.
    let (name, _down) = up(&spec, "hooks-nohooks");
    let o = cli(&["down", &name, "--no-hooks"]);
    assert!(!stderr(&o).contains("before_down"), "{}", stderr(&o));
    removed(&o, &name);

    // The spec the cluster was made from is gone: one warning, and it is removed.
    let moved = tempfile::tempdir().expect("tempdir");
    let gone = moved.path().join("gone.toml");
    std::fs::write(&gone, SPEC).expect("write spec");
    let (name, _down) = up(&gone, "hooks-gone");
    std::fs::remove_file(&gone).expect("remove the spec");
    let o = cli(&["down", &name]);
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("warning"), "{e}");
    assert!(e.contains("no before_down hooks run"), "{e}");
    assert!(e.contains("gone.toml"), "{e}");
    removed(&o, &name);

    // `--spec` names another spec than the one it was made from (which has no hooks): that
    // one's hooks run, on the nodes the cluster has (n1).
    let (name, _down) = up(&plain(&moved), "hooks-spec");
    // A `--spec` that can't be read is bad input: one line, exit 1, nothing removed.
    let missing = moved.path().join("nosuch.toml");
    let o = cli(&["down", &name, "--spec", missing.to_str().expect("utf-8")]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("nosuch.toml"), "{}", stderr(&o));
    ok(cli(&["ls", &name]), "ls after a refused down");
    let o = cli(&["down", &name, "--spec", spec.to_str().expect("utf-8")]);
    let e = stderr(&o);
    assert!(e.contains("| goodbye-from-n1"), "{e}");
    assert!(!e.contains("n2"), "{e}");
    removed(&o, &name);
}

/// A one-node spec without hooks, written in `dir`.
fn plain(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("plain.toml");
    std::fs::write(
        &p,
        "name = \"plain\"\nnodes = 1\n[service]\ncommand = \"exec sleep 1000000\"\n",
    )
    .expect("write spec");
    p
}
