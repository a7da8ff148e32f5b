//! `cluster-sim add-node` and `remove-node` on a cluster `up` kept: the node joins with the
//! spec's templates rendered for the new membership (the others' `rerender = true` files too),
//! the fault verbs and `ls` see it, it leaves with its faults, and bad input is one line.

mod common;

use std::path::Path;

use serde_json::Value;

use common::{cli, fails, ok, stderr, stdout, unique, Down};

/// The cluster's nodes as `ls --json` lists them: (name, roles).
fn nodes(name: &str) -> Vec<(String, Vec<String>)> {
    let o = ok(cli(&["ls", name, "--json"]), "ls");
    let v: Value = serde_json::from_slice(&o.stdout).expect("ls --json");
    v["clusters"][0]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let roles = n["roles"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|r| r.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (n["name"].as_str().unwrap_or_default().to_string(), roles)
        })
        .collect()
}

fn names(name: &str) -> Vec<String> {
    nodes(name).into_iter().map(|(n, _)| n).collect()
}

fn peers(name: &str, node: &str) -> String {
    stdout(&ok(
        cli(&[
            "exec",
            name,
            node,
            "--",
            "cat",
            "/var/lib/cluster-sim/peers",
        ]),
        "exec cat",
    ))
}

#[test]
fn add_node_and_remove_node_on_a_kept_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/templates/members/peers.tmpl")
        .canonicalize()
        .expect("the peers template");
    let spec = dir.path().join("members.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"members\"\nnodes = 2\nroles = [\"peer\"]\n\
             [service]\ncommand = \"exec sleep 1000000\"\n\
             [ready]\ncommand = \"test -s /var/lib/cluster-sim/peers\"\n\
             [[file]]\ntemplate = {:?}\ndest = \"peers\"\nrerender = true\n",
            template.display().to_string()
        ),
    )
    .expect("write spec");
    let name = unique("cli-members");
    ok(
        cli(&["up", spec.to_str().expect("utf-8"), "--name", &name]),
        "up",
    );
    let down = Down(name.clone());

    let o = ok(
        cli(&["add-node", &name, "--name", "n3", "--role", "extra"]),
        "add-node",
    );
    assert_eq!(stdout(&o).trim(), "n3");
    assert_eq!(names(&name), ["n1", "n2", "n3"]);
    let roles = &nodes(&name)[2].1;
    assert_eq!(roles, &["extra"], "n3's roles");
    let mine = peers(&name, "n3");
    assert!(mine.starts_with("me=n3 added=yes\n"), "{mine}");
    assert!(mine.contains(",n3@"), "{mine}");
    let theirs = peers(&name, "n1");
    assert!(theirs.starts_with("me=n1 added=no\n"), "{theirs}");
    assert!(
        theirs.contains(",n3@"),
        "n1's file was not rendered again: {theirs}"
    );

    // Bad input: one line each, nothing changed.
    fails(
        &cli(&["add-node", &name, "--name", "n3"]),
        "already has a node n3",
    );
    fails(
        &cli(&["add-node", &name, "--name", "N_3"]),
        "bad node name \"N_3\"",
    );
    fails(&cli(&["remove-node", &name, "n9"]), "no node \"n9\"");
    fails(
        &cli(&["add-node", &unique("cli-none"), "--name", "n3"]),
        "no cluster named",
    );
    assert_eq!(names(&name), ["n1", "n2", "n3"]);

    // The fault verbs see it; its partition ends when it leaves.
    ok(cli(&["partition", &name, "n1", "n3"]), "partition");
    let o = ok(cli(&["remove-node", &name, "n3"]), "remove-node");
    assert_eq!(stdout(&o).trim(), "removed n3");
    assert!(
        stderr(&o).contains("ended #1 partition n1 | n3"),
        "{}",
        stderr(&o)
    );
    assert_eq!(names(&name), ["n1", "n2"]);
    let faults = ok(cli(&["faults", &name]), "faults");
    assert!(stdout(&faults).is_empty(), "{}", stdout(&faults));
    assert!(
        stderr(&faults).contains("no active faults"),
        "{}",
        stderr(&faults)
    );
    let theirs = peers(&name, "n1");
    assert!(!theirs.contains("n3@"), "{theirs}");

    // A default name: the first one free.
    let o = ok(cli(&["add-node", &name]), "add-node without a name");
    assert_eq!(stdout(&o).trim(), "n3");
    // `down` removes the added nodes with the rest.
    drop(down);
    fails(&cli(&["ls", &name]), "no cluster named");
}
