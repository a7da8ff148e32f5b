//! `cluster-sim disk` on a cluster `up` kept, as issue 23 asks: an EIO rule on `data` makes the
//! node's shell fail to write there, `heal` ends it, `lose-unsynced` takes back a write that
//! was never synced and keeps one that was, a node added with `--faulty-dir` has its own; bad input (an unknown node or errno, a path in
//! none of the node's `faulty_dirs`) is one line and changes nothing.

mod common;

use std::path::Path;

use common::{cli, command, fails, ok, stderr, stdout, unique, Down};

#[test]
fn disk_errors_heal_and_power_cuts_from_the_command_line() {
    // The spec in a folder of no cargo workspace, `up` run there too: the fault filesystem is
    // built from the cluster-sim source this CLI was built from, as in a project of one's own.
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters/faulty1.toml");
    std::fs::copy(&fixture, dir.path().join("faulty1.toml")).expect("copy the spec");
    let name = unique("cli-disk");
    ok(
        command(&["up", "faulty1.toml", "--name", &name])
            .current_dir(dir.path())
            .output()
            .expect("run cluster-sim"),
        "up outside a workspace",
    );
    let _down = Down(name.clone());
    let sh = |script: &str| cli(&["exec", &name, "n1", "--", "sh", "-c", script]);

    // The issue's own lines.
    ok(
        cli(&[
            "disk", &name, "n1", "error", "--path", "data", "--op", "write", "--errno", "EIO",
            "--p", "1",
        ]),
        "disk error",
    );
    let o = sh("echo x > data/f");
    assert!(!o.status.success(), "the write succeeded under EIO");
    assert!(
        stderr(&o).contains("Input/output error"),
        "not an I/O error: {}",
        stderr(&o)
    );
    ok(cli(&["disk", &name, "n1", "heal"]), "disk heal");
    ok(sh("echo x > data/f"), "write after heal");

    // A synced file stays through a power cut; an unsynced one comes back empty.
    ok(
        sh("printf kept > data/synced && sync data/synced && printf lost > data/unsynced"),
        "writes",
    );
    let said = stdout(&ok(
        cli(&["disk", &name, "n1", "lose-unsynced"]),
        "lose-unsynced",
    ));
    assert!(said.contains("dropped"), "lose-unsynced said {said:?}");
    let after = stdout(&ok(
        sh("cat data/synced; echo; wc -c < data/unsynced"),
        "read back",
    ));
    assert_eq!(after.trim(), "kept\n0", "after the power cut");

    // Bad input: one line, nothing done.
    fails(
        &cli(&[
            "disk", &name, "n1", "error", "--path", "data", "--errno", "EWHAT",
        ]),
        "EWHAT",
    );
    fails(&cli(&["disk", &name, "n9", "lose-unsynced"]), "n9");
    // A rule no fault filesystem of the node would see does nothing: refused.
    fails(
        &cli(&["disk", &name, "n1", "error", "--path", "/var/log"]),
        "none of its faulty_dirs",
    );
    ok(sh("echo y > data/f"), "write after the refused rule");

    // A node added with directories of its own on the fault filesystem.
    ok(
        cli(&["add-node", &name, "--name", "n2", "--faulty-dir", "wal"]),
        "add-node --faulty-dir",
    );
    ok(
        cli(&[
            "disk", &name, "n2", "error", "--path", "wal", "--op", "write",
        ]),
        "disk error on the added node",
    );
    let o = cli(&["exec", &name, "n2", "--", "sh", "-c", "echo x > wal/f"]);
    assert!(!o.status.success(), "the added node's wal is not faulty");
    fails(
        &cli(&["disk", &name, "n2", "error", "--path", "data"]),
        "none of its faulty_dirs",
    );
    ok(cli(&["remove-node", &name, "n2"]), "remove-node");
}
