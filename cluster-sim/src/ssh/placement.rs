//! Where a cluster's nodes are: remembered from `allocate`, else found on the hosts by their
//! node files (`.cluster-sim/node`), so a process that never saw the cluster (the CLI, a
//! watchdog) finds it from the inventory alone.

use std::collections::BTreeMap;

use super::conn::HostConn;
use super::hosts::{valid_cluster_name, Placed, SshBackend, HOUSEKEEPING_LIMIT};
use crate::error::BackendError;
use crate::shell::quote as q;

impl SshBackend {
    /// Whether this process placed `cluster` (allocated it and has not destroyed it).
    pub(super) fn placed_here(&self, cluster: &str) -> bool {
        self.placed(cluster).is_some()
    }

    pub(super) fn placed(&self, cluster: &str) -> Option<BTreeMap<String, Placed>> {
        self.state().clusters.get(cluster).cloned()
    }

    /// Finds a cluster's nodes: from memory, else from the marker files on the hosts.
    pub(super) async fn locate_cluster(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, Placed>, BackendError> {
        if let Some(p) = self.placed(cluster) {
            return Ok(p);
        }
        if !valid_cluster_name(cluster) {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        let jobs = self
            .inner
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| async move {
                let w = format!("{}/{cluster}", h.host.workdir);
                let script = format!(
                    "cat {} 2>/dev/null || true",
                    q(&format!("{w}/.cluster-sim/node"))
                );
                match h
                    .run("find cluster", &script, None, HOUSEKEEPING_LIMIT)
                    .await
                {
                    Ok(o) => {
                        let node = String::from_utf8_lossy(&o.stdout).trim().to_string();
                        (!node.is_empty()).then_some((
                            node,
                            Placed {
                                host: i,
                                workdir: w,
                                touched: true,
                            },
                        ))
                    }
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                }
            });
        let found: BTreeMap<String, Placed> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .flatten()
            .collect();
        if found.is_empty() {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        self.state()
            .clusters
            .entry(cluster.to_string())
            .or_insert_with(|| found.clone());
        Ok(found)
    }

    pub(super) async fn locate(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<(&HostConn, String), BackendError> {
        let nodes = self.locate_cluster(cluster).await?;
        let p = nodes.get(node).ok_or_else(|| BackendError::UnknownNode {
            cluster: cluster.to_string(),
            node: node.to_string(),
        })?;
        Ok((&self.inner.hosts[p.host], p.workdir.clone()))
    }

    /// A node's host connection and working directory.
    pub(super) async fn node_host(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<(&HostConn, String), BackendError> {
        self.locate(cluster, node).await
    }

    pub(super) fn mark_touched(&self, cluster: &str, node: &str) {
        if let Some(p) = self
            .inner
            .state
            .lock()
            .expect("state lock")
            .clusters
            .get_mut(cluster)
            .and_then(|c| c.get_mut(node))
        {
            p.touched = true;
        }
    }
}
