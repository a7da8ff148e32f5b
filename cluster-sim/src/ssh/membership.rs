//! Nodes joining and leaving a running ssh cluster (`impl Membership`): a new node takes a
//! spare host of the inventory (one holding no node of the cluster: by name, then role, then
//! order) and a copy of the cluster's owner file, so the reaper, a run's watchdog and teardown
//! treat it like the others, whichever process made the cluster. A node leaves as teardown
//! removes one: fault rules, service, working directory.

use async_trait::async_trait;

use super::hosts::{Placed, SshBackend, HOUSEKEEPING_LIMIT};
use super::owner::OWNER_FILE;
use crate::backend::membership::Membership;
use crate::backend::types::NodeAddr;
use crate::error::BackendError;
use crate::shell::quote as q;
use crate::spec::NodeSpec;

#[async_trait]
impl Membership for SshBackend {
    async fn allocate_node(
        &self,
        cluster: &str,
        node: &NodeSpec,
    ) -> Result<NodeAddr, BackendError> {
        let what = || format!("add node {} to cluster {cluster}", node.name);
        let placed = self.locate_cluster(cluster).await?;
        if placed.contains_key(&node.name) {
            return Err(BackendError::refused(
                what(),
                "the cluster already has a node of that name",
            ));
        }
        let inv = &self.inner.inventory;
        let used: Vec<usize> = placed.values().map(|p| p.host).collect();
        let spare = |pick: &dyn Fn(usize) -> bool| {
            (0..inv.hosts.len()).find(|&i| !used.contains(&i) && pick(i))
        };
        let host = spare(&|i| inv.hosts[i].name == node.name)
            .or_else(|| spare(&|i| inv.hosts[i].roles.iter().any(|r| node.roles.contains(r))))
            .or_else(|| spare(&|_| true))
            .ok_or_else(|| {
                BackendError::refused(
                    what(),
                    format!(
                        "no spare host left in the inventory {}: each of its {} hosts ({}) already holds a node of the cluster; add a host to the inventory or remove a node first",
                        inv.source,
                        inv.hosts.len(),
                        inv.hosts
                            .iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        // The cluster's owner file (run, owner, lease, kept lines) from one of its nodes: the
        // new node belongs to the same owner, not to this process.
        let first = placed
            .values()
            .next()
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        let h = &self.inner.hosts[first.host];
        let file = format!("{}/{OWNER_FILE}", first.workdir);
        let o = h
            .run(
                "read owner file",
                &format!("cat -- {}", q(&file)),
                None,
                HOUSEKEEPING_LIMIT,
            )
            .await?;
        if !o.ok() {
            return Err(h.fail(&format!("read {file}"), o.why()));
        }
        let owner = String::from_utf8_lossy(&o.stdout).into_owned();
        let h = &inv.hosts[host];
        let workdir = format!("{}/{cluster}", h.workdir);
        {
            let mut st = self.state();
            let nodes = st.clusters.entry(cluster.to_string()).or_default();
            if nodes.contains_key(&node.name) {
                return Err(BackendError::refused(
                    what(),
                    "the cluster already has a node of that name",
                ));
            }
            nodes.insert(
                node.name.clone(),
                Placed {
                    host,
                    workdir: workdir.clone(),
                    touched: false,
                },
            );
            st.owners.insert(cluster.to_string(), owner);
        }
        Ok(NodeAddr {
            name: node.name.clone(),
            address: h.node_address.clone(),
            workdir,
        })
    }

    async fn remove_node(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        self.teardown_node(h, cluster, &w).await?;
        let mut st = self.state();
        if let Some(nodes) = st.clusters.get_mut(cluster) {
            nodes.remove(node);
        }
        Ok(())
    }
}
