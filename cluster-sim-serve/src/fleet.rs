//! Where the server finds nodes: docker clusters through the docker backend's label lookups
//! (never by container name), ssh inventory hosts from `CLUSTER_SIM_INVENTORY`, and the backend
//! chosen by `CLUSTER_SIM_BACKEND` that checks run their commands through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::check::{CheckDef, Target};
use cluster_sim_core::backend::Backend;
use cluster_sim_core::docker::{DockerBackend, ResourceKind, LABEL_NODE, LABEL_ROLES};
use cluster_sim_core::ssh::SshBackend;

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
    /// The docker engine, when it answers: lists clusters.
    pub docker: Option<DockerBackend>,
    /// The ssh inventory's hosts, when `CLUSTER_SIM_INVENTORY` is set.
    pub inventory: Option<Arc<SshBackend>>,
    cache: Mutex<HashMap<String, (Instant, Vec<NodeInfo>)>>,
}

impl Fleet {
    /// Connects what the environment names. Docker is optional (a lab of ssh hosts has none);
    /// the checks' backend is not.
    pub async fn connect() -> Result<Fleet, super::ServeError> {
        let backend = cluster_sim_core::connect_backend_from_env().await?;
        let docker = match DockerBackend::connect().await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!("no docker engine, so no docker clusters in the registry: {e}");
                None
            }
        };
        let inventory = match std::env::var_os(cluster_sim_core::INVENTORY_VAR) {
            Some(p) if !p.is_empty() => Some(Arc::new(
                SshBackend::from_file(std::path::Path::new(&p))
                    .map_err(|e| cluster_sim_core::BackendError::Other(e.to_string()))?,
            )),
            _ => None,
        };
        Ok(Fleet {
            backend,
            docker,
            inventory,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The nodes of a docker cluster, in spec order, found by their labels; `None` when no
    /// cluster of that name exists.
    pub async fn docker_nodes(&self, cluster: &str) -> Result<Option<Vec<NodeInfo>>, String> {
        let Some(docker) = &self.docker else {
            return Ok(None);
        };
        let filter = format!("{}={cluster}", cluster_sim_core::docker::LABEL_CLUSTER);
        let (containers, resources) = futures::future::try_join(
            docker.containers(Some(cluster)),
            docker.resources(&[filter]),
        )
        .await
        .map_err(|e| e.to_string())?;
        if resources.is_empty() {
            return Ok(None);
        }
        let roles: HashMap<String, Vec<String>> = resources
            .values()
            .flat_map(|r| r.resources.iter())
            .filter(|r| r.kind == ResourceKind::Node)
            .map(|r| {
                let roles = r
                    .label(LABEL_ROLES)
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                (r.label(LABEL_NODE).to_string(), roles)
            })
            .collect();
        let nodes = containers
            .into_iter()
            .map(|c| NodeInfo {
                roles: roles.get(&c.node).cloned().unwrap_or_default(),
                name: c.node,
                index: c.index,
                address: c.address,
                state: c.state,
            })
            .collect();
        Ok(Some(nodes))
    }

    /// [`Fleet::docker_nodes`] through a short-lived cache.
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
        let nodes = self
            .docker_nodes(cluster)
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
        if self.backend.kind() != "docker" {
            // Other backends can't list a cluster's nodes: the check must name its node.
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
