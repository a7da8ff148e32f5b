//! Nodes joining and leaving a memory cluster (`impl Membership`): a record and a directory
//! of the cluster's own more, or one fewer (what runs on it killed first).

use std::collections::HashSet;

use async_trait::async_trait;

use super::backend::{MemoryBackend, NodeRec, ADDRESS};
use crate::backend::membership::Membership;
use crate::backend::types::{NodeAddr, NodeState};
use crate::error::BackendError;
use crate::spec::NodeSpec;

#[async_trait]
impl Membership for MemoryBackend {
    async fn allocate_node(
        &self,
        cluster: &str,
        node: &NodeSpec,
    ) -> Result<NodeAddr, BackendError> {
        if node.command.is_some() {
            return Err(BackendError::refused(
                format!("node {}'s service command", node.name),
                "the memory backend runs no services (only commands through exec); use docker or ssh",
            ));
        }
        let mut all = self.records();
        let c = all
            .get_mut(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        if c.nodes.contains_key(&node.name) {
            return Err(BackendError::refused(
                format!("add node {} to cluster {cluster}", node.name),
                "the cluster already has a node of that name",
            ));
        }
        let workdir = c.dir.path().join(&node.name);
        std::fs::create_dir_all(workdir.join("tmp")).map_err(|source| BackendError::Local {
            what: format!("create {}", workdir.display()),
            source,
        })?;
        c.nodes.insert(
            node.name.clone(),
            NodeRec {
                index: node.index,
                roles: node.roles.clone(),
                env: Vec::new(),
                workdir: workdir.clone(),
                state: NodeState::Created,
                log: Vec::new(),
                running: HashSet::new(),
            },
        );
        Ok(NodeAddr {
            name: node.name.clone(),
            address: ADDRESS.into(),
            workdir: workdir.display().to_string(),
        })
    }

    async fn remove_node(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        let rec = {
            let mut all = self.records();
            let c = all
                .get_mut(cluster)
                .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
            c.nodes
                .remove(node)
                .ok_or_else(|| BackendError::UnknownNode {
                    cluster: cluster.to_string(),
                    node: node.to_string(),
                })?
        };
        rec.signal_all("KILL");
        match std::fs::remove_dir_all(&rec.workdir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BackendError::Local {
                what: format!("remove {}", rec.workdir.display()),
                source: e,
            }),
            _ => Ok(()),
        }
    }
}
