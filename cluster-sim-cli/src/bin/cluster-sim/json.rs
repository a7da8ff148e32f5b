//! The `--json` output: every listing is one object, `{"version": 1, "<list>": [...]}`, on
//! stdout and nothing else there. The shapes are documented in book/src/cli.md; a change
//! that breaks a script bumps `version`.

use std::io::Write;

use anyhow::Result;
use cluster_sim::fault::ActiveFault;
use cluster_sim::{ClusterSummary, NodeSummary};
use serde_json::{json, Map, Value};

/// The version of every shape below.
pub const VERSION: u64 = 1;

/// Prints `{"version": 1, key: items}` on stdout.
pub fn print(key: &str, items: Vec<Value>) -> Result<()> {
    let mut top = Map::new();
    top.insert("version".into(), VERSION.into());
    top.insert(key.into(), Value::Array(items));
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &Value::Object(top))?;
    writeln!(out)?;
    Ok(())
}

/// One cluster of `ls --json`.
pub fn cluster(c: &ClusterSummary, backend: &str) -> Value {
    json!({
        "name": c.name,
        "backend": backend,
        "kept": c.kept,
        // Who kept it: a test's name (CLUSTER_SIM_KEEP_CLUSTER), or null for `cluster-sim up`.
        "kept_by": c.mark.by,
        // The spec it was made from and its node count, where its keep mark records them.
        "spec": c.mark.spec,
        "spec_nodes": c.mark.nodes,
        "nodes": c.nodes.iter().map(node).collect::<Vec<_>>(),
    })
}

/// One node of a cluster of `ls --json`.
fn node(n: &NodeSummary) -> Value {
    json!({
        "name": n.name,
        "index": n.index,
        "state": n.state.to_string(),
        "address": n.address,
        "place": n.place,
        "roles": n.roles,
        "ports": n.ports.iter().map(|(node, host)| json!({"node": node, "host": host})).collect::<Vec<_>>(),
    })
}

/// One fault of `faults --json`: the fault's own record (`id`, `since_ms`, `kind` and the
/// kind's fields) plus `description`, the line `faults` prints.
pub fn fault(f: &ActiveFault) -> Value {
    let mut v = serde_json::to_value(f).unwrap_or_else(|_| json!({ "id": f.id }));
    if let Value::Object(m) = &mut v {
        m.insert("description".into(), f.to_string().into());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_sim::fault::FaultKind;

    #[test]
    fn a_fault_keeps_its_record_and_gains_its_line() {
        let f = ActiveFault {
            id: 3,
            since_ms: 1_700_000_000_000,
            kind: FaultKind::Freeze { node: "n2".into() },
        };
        let v = fault(&f);
        assert_eq!(v["id"], 3);
        assert_eq!(v["kind"], "freeze");
        assert_eq!(v["node"], "n2");
        assert_eq!(v["description"], f.to_string());
    }
}
