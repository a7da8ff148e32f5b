//! Cleanup and lookup on the memory backend: the same rules as every backend (an owner judged
//! by `backend::ownership`, kept clusters left alone), over this process's records. Its
//! clusters die with the process, so no watchdog is needed.

use std::time::SystemTime;

use async_trait::async_trait;

use super::backend::MemoryBackend;
use crate::backend::janitor::{Janitor, Reaped};
use crate::backend::lookup::{ClusterSummary, Lookup, NodeSummary};
use crate::backend::ownership::{judge, Verdict};
use crate::error::BackendError;

/// Unix seconds, as an owner record's expiry reads.
fn unix(t: SystemTime) -> String {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

#[async_trait]
impl Janitor for MemoryBackend {
    async fn reap(&self) -> Result<Reaped, BackendError> {
        let now = SystemTime::now();
        let mut out = Reaped::default();
        let dead: Vec<String> = self
            .records()
            .iter()
            .filter(|(_, c)| !c.kept)
            .filter_map(|(name, c)| {
                let expires = c.expires.map(unix);
                match judge(&c.owner, expires.as_deref(), now) {
                    Verdict::Dead => Some(name.clone()),
                    Verdict::Unknown if expires.is_none() => {
                        out.unknown.push(name.clone());
                        None
                    }
                    _ => None,
                }
            })
            .collect();
        for name in dead {
            self.remove(&name);
            out.removed.push(name);
        }
        Ok(out)
    }

    async fn remove_run(&self, run: &str) -> Result<Reaped, BackendError> {
        let mine: Vec<String> = self
            .records()
            .iter()
            .filter(|(_, c)| c.run == run && !c.kept)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &mine {
            self.remove(name);
        }
        Ok(Reaped {
            removed: mine,
            ..Reaped::default()
        })
    }

    async fn remove_own(&self, cluster: &str) -> Result<(), BackendError> {
        // Every record here is this process's.
        self.remove(cluster);
        Ok(())
    }

    fn outlives_owner(&self) -> bool {
        false
    }
}

#[async_trait]
impl Lookup for MemoryBackend {
    async fn clusters(&self) -> Result<Vec<ClusterSummary>, BackendError> {
        let all = self.records();
        let mut out = Vec::new();
        for (name, c) in all.iter() {
            out.push(ClusterSummary {
                name: name.clone(),
                kept: c.kept,
                mark: c.mark.clone(),
                nodes: summaries(c),
            });
        }
        Ok(out)
    }

    async fn nodes(&self, cluster: &str) -> Result<Vec<NodeSummary>, BackendError> {
        let all = self.records();
        let c = all
            .get(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        Ok(summaries(c))
    }
}

/// A cluster's nodes in spec order.
fn summaries(c: &super::backend::ClusterRec) -> Vec<NodeSummary> {
    let mut nodes: Vec<NodeSummary> = c
        .nodes
        .iter()
        .map(|(name, n)| NodeSummary {
            name: name.clone(),
            index: n.index,
            address: "127.0.0.1".into(),
            workdir: n.workdir.display().to_string(),
            state: n.state,
            roles: n.roles.clone(),
            place: "this process".into(),
            ports: Vec::new(),
        })
        .collect();
    nodes.sort_by_key(|n| n.index);
    nodes
}
