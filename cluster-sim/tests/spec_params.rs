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
