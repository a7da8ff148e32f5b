//! A test case's parameters in a spec: `nodes` resizes it, templates see `params`, and a spec
//! that names its nodes refuses to be resized with a message saying where.

use std::collections::BTreeMap;
use std::path::Path;

use cluster_sim_core::{ClusterSpec, SpecParams};

fn params(nodes: Option<usize>) -> SpecParams {
    SpecParams {
        nodes,
        values: BTreeMap::from([("snapshot_count".to_string(), serde_json::json!(100))]),
    }
}

#[test]
fn nodes_resizes_a_counted_spec() {
    let spec = ClusterSpec::parse_with(
        "nodes = 3\n",
        "a.toml",
        Path::new("."),
        "a",
        &params(Some(5)),
    )
    .unwrap();
    assert_eq!(spec.nodes.len(), 5);
    assert_eq!(spec.params["snapshot_count"], 100);
    let spec = ClusterSpec::parse_with(
        "nodes = { count = 3, prefix = \"db\" }\n",
        "a.toml",
        Path::new("."),
        "a",
        &params(Some(1)),
    )
    .unwrap();
    let names: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["db1"]);
}

#[test]
fn a_named_spec_is_not_resized() {
    let e = ClusterSpec::parse_with(
        "nodes = [\"a\", \"b\"]\n",
        "a.toml",
        Path::new("."),
        "a",
        &params(Some(3)),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("a.toml") && e.contains("names its nodes"), "{e}");
}

#[test]
fn templates_see_params_and_a_missing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.tmpl"),
        "snapshot-count: {{ params.snapshot_count }}\n",
    )
    .unwrap();
    let text = "nodes = 2\n[[file]]\ntemplate = \"c.tmpl\"\ndest = \"/etc/c.yml\"\n";
    ClusterSpec::parse_with(text, "t.toml", dir.path(), "t", &params(None)).unwrap();
    let e = ClusterSpec::parse_with(text, "t.toml", dir.path(), "t", &SpecParams::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("params"), "{e}");
}

/// The refusals say why (named nodes can't be added or dropped by count) and point at the
/// line that names them: the list, or the first `[[node]]` table.
#[test]
fn a_refused_resize_says_why_and_where() {
    let parse = |text: &str, nodes| {
        ClusterSpec::parse_with(text, "a.toml", Path::new("."), "a", &params(Some(nodes)))
            .unwrap_err()
            .to_string()
    };
    let e = parse("nodes = [\"a\", \"b\"]\n", 3);
    assert!(e.starts_with("a.toml:1:9: key `nodes`: a test case sets `nodes = 3`, but this spec names its nodes (a list of names)"), "{e}");
    assert!(e.contains("can't be added or dropped by count"), "{e}");
    let e = parse(
        "name = \"t\"\n[[node]]\nname = \"x\"\n[[node]]\nname = \"y\"\n",
        3,
    );
    assert!(e.starts_with("a.toml:3:8: key `nodes`: a test case sets `nodes = 3`, but this spec names its nodes (`[[node]]` tables and no `nodes`)"), "{e}");
    let e = parse("nodes = 3\n[[node]]\nname = \"n3\"\nroles = [\"x\"]\n", 2);
    assert!(e.starts_with("a.toml:3:8: key `node.name`: a test case sets `nodes = 2`, so the nodes are n1, n2; [[node]] \"n3\" is not one of them"), "{e}");
}
