//! Where the server finds nodes: the clusters (and fixed hosts) of every backend the
//! environment can connect, through their lookup capability (never by container name), and
//! the backend chosen by `CLUSTER_SIM_BACKEND` that checks run their commands through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::check::{CheckDef, Target};
use cluster_sim_core::backend::{Backend, NodeSummary};
use cluster_sim_core::connect::{BackendChoice, BACKENDS};
use cluster_sim_core::BackendError;

/// How long a cluster's node list is reused: checks resolve their nodes on every run, and a
/// hundred checks a few seconds apart would otherwise ask the engine a hundred times.
const NODES_TTL: Duration = Duration::from_secs(10);

/// A node as the registry lists it (capabilities are added by the registry).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node name.
    pub name: String,
    /// Position in the spec.
    pub index: usize,
    /// Address on the cluster network.
    pub address: String,
    /// Roles from the spec.
    pub roles: Vec<String>,
    /// `running`, `exited`, `paused`, ... (ssh hosts: `reachable` or `unreachable`).
    pub state: String,
}

/// The places nodes live.
pub struct Fleet {
    /// What checks run their commands through.
    pub backend: Arc<dyn Backend>,
    /// Every backend whose clusters and hosts the registry lists: the checks' backend first,
    /// then each other one the environment's settings connect (the local engine where it
    /// answers, an inventory's hosts where `CLUSTER_SIM_INVENTORY` names one).
    pub listed: Vec<Arc<dyn Backend>>,
    cache: Mutex<HashMap<String, (Instant, Vec<NodeInfo>)>>,
}

impl NodeInfo {
    fn of(n: NodeSummary) -> Self {
        NodeInfo {
            name: n.name,
            index: n.index,
            address: n.address,
            roles: n.roles,
            state: n.state.to_string(),
        }
    }
}

impl Fleet {
    /// Connects what the environment names. The checks' backend must connect; the others are
    /// listed where they do (a lab of ssh hosts has no docker engine, say).
    pub async fn connect() -> Result<Fleet, super::ServeError> {
        let choice = BackendChoice::from_env();
        let backend = choice.connect().await?;
        let mut listed = vec![backend.clone()];
        for (kind, _) in BACKENDS.iter().filter(|(k, _)| *k != choice.kind()) {
            let other = BackendChoice {
                kind: kind.to_string(),
                inventory: choice.inventory.clone(),
                engines: choice.engines.clone(),
            };
            match other.connect().await {
                Ok(b) => listed.push(b),
                // A backend the settings don't set up (no inventory) is simply not there.
                Err(e @ BackendError::Refused { .. }) => tracing::debug!("not listed: {e}"),
                Err(e) => tracing::warn!("no {kind} clusters in the registry: {e}"),
            }
        }
        Ok(Fleet {
            backend,
            listed,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The nodes of `cluster` on `backend`, in spec order; `None` when it has no cluster of
    /// that name (or can't list clusters).
    pub async fn nodes_on(
        backend: &dyn Backend,
        cluster: &str,
    ) -> Result<Option<Vec<NodeInfo>>, String> {
        let Some(lookup) = backend.lookup() else {
            return Ok(None);
        };
        match lookup.nodes(cluster).await {
            Ok(nodes) => Ok(Some(nodes.into_iter().map(NodeInfo::of).collect())),
            Err(BackendError::UnknownCluster(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The backend listing `cluster` and its nodes (the first that knows it); `None` when no
    /// listed backend has a cluster of that name.
    pub async fn find(
        &self,
        cluster: &str,
    ) -> Result<Option<(Arc<dyn Backend>, Vec<NodeInfo>)>, String> {
        for b in &self.listed {
            if let Some(nodes) = Self::nodes_on(b.as_ref(), cluster).await? {
                return Ok(Some((b.clone(), nodes)));
            }
        }
        Ok(None)
    }

    /// The nodes of a cluster of the checks' backend through a short-lived cache.
    async fn cached_nodes(&self, cluster: &str) -> Result<Vec<NodeInfo>, String> {
        if let Some((at, nodes)) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(cluster)
        {
            if at.elapsed() < NODES_TTL {
                return Ok(nodes.clone());
            }
        }
        let nodes = Self::nodes_on(self.backend.as_ref(), cluster)
            .await?
            .ok_or_else(|| format!("no cluster named {cluster:?} (bring it up with `cluster-sim up SPEC --name {cluster}`)"))?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cluster.to_string(), (Instant::now(), nodes.clone()));
        Ok(nodes)
    }

    /// The nodes a check runs on, or why none can be found.
    pub async fn targets(&self, def: &CheckDef) -> Result<Vec<String>, String> {
        if self.backend.lookup().is_none() {
            // A backend that can't list a cluster's nodes: the check must name its node.
            return match &def.target {
                Target::Node(n) => Ok(vec![n.clone()]),
                _ => Err(format!(
                    "on the {} backend a check names its node (`node = \"...\"`)",
                    self.backend.kind()
                )),
            };
        }
        let nodes = self.cached_nodes(&def.cluster).await?;
        let chosen: Vec<String> = nodes
            .iter()
            .filter(|n| match &def.target {
                Target::Node(name) => &n.name == name,
                Target::Roles(roles) => n.roles.iter().any(|r| roles.contains(r)),
                Target::All => true,
            })
            .map(|n| n.name.clone())
            .collect();
        if chosen.is_empty() {
            return Err(match &def.target {
                Target::Node(n) => format!("cluster {} has no node {n:?}", def.cluster),
                Target::Roles(r) => format!(
                    "no node of cluster {} has any of the roles {}",
                    def.cluster,
                    r.join(", ")
                ),
                Target::All => format!("cluster {} has no nodes", def.cluster),
            });
        }
        Ok(chosen)
    }
}
