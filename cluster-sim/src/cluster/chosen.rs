//! What a cluster remembers of its nodes at run time beyond the spec: the version of each
//! binary a node was switched to (`versions.rs`) and how often its service was started or
//! restarted through its handle (`rolling.rs` restarts a node its step did not).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// What a cluster remembers of its nodes' versions and restarts.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// Versions switched to at run time, by node then binary (the spec's choice otherwise).
    chosen: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// How many times each node's service was started or restarted through its handle.
    starts: Mutex<HashMap<String, u64>>,
}

impl Versions {
    pub(crate) fn started(&self, node: &str) {
        *self
            .starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node.to_string())
            .or_default() += 1;
    }

    pub(crate) fn starts(&self, node: &str) -> u64 {
        self.starts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn chosen(&self, node: &str, bin: &str) -> Option<String> {
        self.chosen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .and_then(|m| m.get(bin).cloned())
    }

    pub(crate) fn choose(&self, node: &str, bin: &str, version: &str) {
        self.chosen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node.to_string())
            .or_default()
            .insert(bin.to_string(), version.to_string());
    }
}
