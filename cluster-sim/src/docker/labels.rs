//! Labels on every Docker resource: which cluster, node and run it belongs to, who owns it
//! (judged by `backend/ownership.rs`) and when it expires.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::ownership::{current_owner, run_id};

/// Label naming the cluster a resource belongs to.
pub const LABEL_CLUSTER: &str = "cluster-sim.cluster";
/// Label naming the owning process: `pid=..,start=..,boot=..,pidns=..,host=..` (see [`crate::backend::ownership::Owner`]).
pub const LABEL_OWNER: &str = "cluster-sim.owner";
/// Label holding the owning run's random id: what a run's watchdog removes.
pub const LABEL_RUN: &str = "cluster-sim.run";
/// Label holding the unix time (seconds) after which any reaper may remove the cluster; absent
/// when the cluster never expires.
pub const LABEL_EXPIRES: &str = "cluster-sim.expires";
/// Label naming the node (containers only).
pub const LABEL_NODE: &str = "cluster-sim.node";
/// Label holding the node's position in the spec (containers only).
pub const LABEL_INDEX: &str = "cluster-sim.index";
/// Label holding the node's address (containers only).
pub const LABEL_ADDRESS: &str = "cluster-sim.address";
/// Label holding the node's roles, comma-separated (containers only; absent on older clusters).
pub const LABEL_ROLES: &str = "cluster-sim.roles";
/// Label holding the spec path the cluster came from.
pub const LABEL_SPEC: &str = "cluster-sim.spec";
/// Label marking a cluster kept on purpose (`cluster-sim up`): the reaper leaves it alone. Set on
/// the cluster's `kept` marker container, made once the cluster is ready (and, by older
/// versions, on every resource).
pub const LABEL_KEEP: &str = "cluster-sim.keep";
/// Label on the `kept` marker naming the test that kept the cluster (`CLUSTER_SIM_KEEP_CLUSTER`);
/// absent when `cluster-sim up` kept it.
pub const LABEL_KEPT_BY: &str = "cluster-sim.kept-by";
/// Label on the `kept` marker holding the name of the spec the cluster was made from.
pub const LABEL_KEPT_SPEC: &str = "cluster-sim.kept-spec";
/// Label on the `kept` marker holding how many nodes that spec gave the cluster.
pub const LABEL_KEPT_NODES: &str = "cluster-sim.kept-nodes";
/// Label on the `kept` marker holding the absolute path of the spec file the cluster was made
/// from (what `cluster-sim add-node` renders the new node from).
pub const LABEL_KEPT_SPEC_FILE: &str = "cluster-sim.kept-spec-file";
/// Label on a cluster's marker containers (never started): `claim` reserves the cluster's name,
/// `kept` marks it kept.
pub const LABEL_MARKER: &str = "cluster-sim.marker";

/// The `kept` marker's labels for `mark`, besides the cluster's own.
pub fn keep_mark_labels(mark: &crate::backend::KeepMark) -> HashMap<String, String> {
    let mut l = HashMap::new();
    if let Some(by) = &mark.by {
        l.insert(LABEL_KEPT_BY.to_string(), by.clone());
    }
    if let Some(spec) = &mark.spec {
        l.insert(LABEL_KEPT_SPEC.to_string(), spec.clone());
    }
    if let Some(n) = mark.nodes {
        l.insert(LABEL_KEPT_NODES.to_string(), n.to_string());
    }
    if let Some(f) = &mark.spec_file {
        l.insert(LABEL_KEPT_SPEC_FILE.to_string(), f.clone());
    }
    l
}

/// Reads a `kept` marker's labels back into its mark.
pub fn keep_mark_of(labels: &HashMap<String, String>) -> crate::backend::KeepMark {
    crate::backend::KeepMark {
        by: labels.get(LABEL_KEPT_BY).cloned(),
        spec: labels.get(LABEL_KEPT_SPEC).cloned(),
        nodes: labels.get(LABEL_KEPT_NODES).and_then(|n| n.parse().ok()),
        spec_file: labels.get(LABEL_KEPT_SPEC_FILE).cloned(),
    }
}

/// Labels common to a cluster's resources: cluster, owner, run and expiry.
pub fn cluster_labels(
    cluster: &str,
    spec: &str,
    expires: Option<SystemTime>,
) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (LABEL_OWNER.to_string(), current_owner()),
        (LABEL_RUN.to_string(), run_id().to_string()),
        (LABEL_SPEC.to_string(), spec.to_string()),
    ]);
    if let Some(at) = expires {
        // Rounded up: a lease never ends before it was meant to.
        let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        l.insert(LABEL_EXPIRES.to_string(), secs.to_string());
    }
    l
}
