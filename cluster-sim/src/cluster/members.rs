//! The nodes a cluster has right now: set once allocation gave them addresses, then grown and
//! shrunk by `add_node` and `remove_node`. Each member carries its spec (a node added at run
//! time has one the cluster's spec does not list) and whether it joined a running cluster.

use std::sync::{Arc, RwLock};

use crate::backend::types::NodeAddr;
use crate::spec::NodeSpec;

/// One node of the cluster.
#[derive(Debug, Clone)]
pub(super) struct Member {
    /// Its address and working directory, as the backend placed it.
    pub(super) addr: NodeAddr,
    /// Its spec.
    pub(super) spec: Arc<NodeSpec>,
    /// Whether it joined the running cluster (templates see `node.added`).
    pub(super) added: bool,
}

/// The member list: `None` until allocation, then the nodes in the order they joined.
#[derive(Debug, Default)]
pub(super) struct Members(RwLock<Option<Vec<Member>>>);

impl Members {
    /// A list already known (attaching to a running cluster).
    pub(super) fn of(members: Vec<Member>) -> Self {
        Members(RwLock::new(Some(members)))
    }

    /// Sets the list once allocation has placed the nodes.
    pub(super) fn set(&self, members: Vec<Member>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(members);
    }

    /// Whether allocation placed the nodes (else there is nothing to remove).
    pub(super) fn is_set(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// The members now.
    pub(super) fn list(&self) -> Vec<Member> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Adds a node that joined.
    pub(super) fn push(&self, m: Member) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Vec::new)
            .push(m);
    }

    /// Removes a node that left.
    pub(super) fn remove(&self, name: &str) {
        if let Some(v) = self.0.write().unwrap_or_else(|e| e.into_inner()).as_mut() {
            v.retain(|m| m.addr.name != name);
        }
    }

    /// Member specs from a spec's nodes and the addresses allocation gave them (spec order).
    pub(super) fn from_spec(nodes: &[NodeSpec], addrs: &[NodeAddr]) -> Vec<Member> {
        nodes
            .iter()
            .zip(addrs)
            .map(|(n, a)| Member {
                addr: a.clone(),
                spec: Arc::new(n.clone()),
                added: false,
            })
            .collect()
    }
}
