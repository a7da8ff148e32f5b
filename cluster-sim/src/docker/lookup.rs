//! Finding what is ours: every lookup goes through the labels (cluster, node, and an owner
//! label present), and every action then names the container or network by its engine ID. A
//! container without our labels is never touched, whatever its name: `{cluster}-{node}` names
//! are ambiguous (`rel-a` + `b-c` and `rel-a-b` + `c`) and anyone may take them.
//!
//! Node IDs are cached per (cluster, node), filled when the node is made or first looked up and
//! dropped on destroy or when the engine no longer knows the ID, so a command costs no extra
//! round trip.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};

use super::engine::{engine_call, DockerBackend, DOCKER_WORKDIR};
use async_trait::async_trait;

use super::labels::{
    LABEL_ADDRESS, LABEL_CLUSTER, LABEL_EXPIRES, LABEL_INDEX, LABEL_KEEP, LABEL_MARKER, LABEL_NODE,
    LABEL_OWNER, LABEL_ROLES, LABEL_RUN,
};
use crate::backend::lookup::{ClusterSummary, Lookup, NodeSummary};
use crate::backend::types::NodeState;
use crate::error::BackendError;

/// A container of a cluster, as listed by the engine.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// Cluster name.
    pub cluster: String,
    /// Node name.
    pub node: String,
    /// Position in the spec.
    pub index: usize,
    /// Address on the cluster network.
    pub address: String,
    /// Container name.
    pub container: String,
    /// Engine ID: what every action names.
    pub id: String,
    /// Engine state (`running`, `exited`, ...).
    pub state: String,
    /// Image.
    pub image: String,
    /// Owner label.
    pub owner: String,
    /// Whether the cluster is kept on purpose.
    pub keep: bool,
    /// Roles from the spec (empty on clusters made before roles were labelled).
    pub roles: Vec<String>,
    /// Published ports: (port in the node, port on 127.0.0.1).
    pub ports: Vec<(u16, u16)>,
}

/// Whether a resource is a node, a marker, or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// A node's container.
    Node,
    /// A marker container (`claim` or `kept`), never started.
    Marker,
    /// The cluster's network.
    Network,
}

/// One labelled container or network.
#[derive(Debug, Clone)]
pub struct Resource {
    /// What it is.
    pub kind: ResourceKind,
    /// Engine ID.
    pub id: String,
    /// Name (for messages).
    pub name: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

impl Resource {
    /// A label's value, or "".
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }

    /// Whether this resource marks its cluster kept (the `kept` marker, or an older version's
    /// keep label).
    pub fn marks_kept(&self) -> bool {
        self.labels.contains_key(LABEL_KEEP)
    }
}

/// Everything the engine holds of one cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterResources {
    /// Its containers and networks.
    pub resources: Vec<Resource>,
}

impl ClusterResources {
    /// Whether the cluster is kept on purpose.
    pub fn kept(&self) -> bool {
        self.resources.iter().any(Resource::marks_kept)
    }

    /// What the `kept` marker says (who kept the cluster, its spec); empty when not kept.
    pub fn keep_mark(&self) -> crate::backend::KeepMark {
        self.resources
            .iter()
            .find(|r| r.marks_kept())
            .map(|r| super::labels::keep_mark_of(&r.labels))
            .unwrap_or_default()
    }

    /// The owner and expiry labels to judge the cluster by: the name claim's where there is one
    /// (it is made first and removed last), else any resource's.
    pub fn owner_and_expiry(&self) -> (&str, Option<&str>) {
        let r = self
            .resources
            .iter()
            .find(|r| r.label(LABEL_MARKER) == "claim")
            .or_else(|| self.resources.first());
        match r {
            Some(r) => (
                r.label(LABEL_OWNER),
                r.labels.get(LABEL_EXPIRES).map(String::as_str),
            ),
            None => ("", None),
        }
    }
}

fn label_filters(labels: &[String]) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), labels.to_vec())])
}

impl DockerBackend {
    /// Every labelled container and network matching `filters` (`key` or `key=value` each; an
    /// owner label is always required), grouped by cluster.
    pub async fn resources(
        &self,
        filters: &[String],
    ) -> Result<BTreeMap<String, ClusterResources>, BackendError> {
        let mut f: Vec<String> = vec![LABEL_CLUSTER.to_string(), LABEL_OWNER.to_string()];
        f.extend(filters.iter().cloned());
        let copts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filters(&f))
            .build();
        let nopts = ListNetworksOptionsBuilder::default()
            .filters(&label_filters(&f))
            .build();
        let (containers, networks) = futures::future::try_join(
            self.docker.list_containers(Some(copts)),
            self.docker.list_networks(Some(nopts)),
        )
        .await
        .map_err(engine_call("list containers and networks"))?;
        let mut out: BTreeMap<String, ClusterResources> = BTreeMap::new();
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let kind = if labels.contains_key(LABEL_NODE) {
                ResourceKind::Node
            } else {
                ResourceKind::Marker
            };
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            push(&mut out, kind, c.id.unwrap_or_default(), name, labels);
        }
        for n in networks {
            // A swarm's overlay network belongs to its manager; a worker engine leaves it alone.
            if self.worker && n.scope.as_deref() == Some("swarm") {
                continue;
            }
            let labels = n.labels.unwrap_or_default();
            push(
                &mut out,
                ResourceKind::Network,
                n.id.unwrap_or_default(),
                n.name.unwrap_or_default(),
                labels,
            );
        }
        Ok(out)
    }

    /// Node containers carrying our labels, optionally of one cluster only, in spec order.
    pub async fn containers(
        &self,
        cluster: Option<&str>,
    ) -> Result<Vec<ContainerInfo>, BackendError> {
        let mut filter = vec![LABEL_CLUSTER.to_string(), LABEL_OWNER.to_string()];
        if let Some(c) = cluster {
            filter.push(format!("{LABEL_CLUSTER}={c}"));
        }
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filters(&filter))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(engine_call("list containers"))?;
        // Kept is a marker of its own (made once the cluster is ready): which clusters have one.
        let kept: std::collections::HashSet<String> = list
            .iter()
            .filter_map(|c| {
                let l = c.labels.as_ref()?;
                l.contains_key(LABEL_KEEP)
                    .then(|| l.get(LABEL_CLUSTER).cloned())
                    .flatten()
            })
            .collect();
        let mut out: Vec<ContainerInfo> = list
            .into_iter()
            .filter(|c| {
                c.labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key(LABEL_NODE))
            })
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                ContainerInfo {
                    keep: kept.contains(&l(LABEL_CLUSTER)),
                    cluster: l(LABEL_CLUSTER),
                    node: l(LABEL_NODE),
                    index: l(LABEL_INDEX).parse().unwrap_or(0),
                    address: l(LABEL_ADDRESS),
                    container: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    id: c.id.unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    owner: l(LABEL_OWNER),
                    roles: l(LABEL_ROLES)
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(str::to_string)
                        .collect(),
                    ports: c
                        .ports
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|p| Some((p.private_port, p.public_port?)))
                        .collect(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.cluster, a.index).cmp(&(&b.cluster, b.index)));
        Ok(out)
    }

    /// Networks carrying our labels: (name, cluster, owner, cluster kept).
    pub async fn networks(&self) -> Result<Vec<(String, String, String, bool)>, BackendError> {
        let all = self.resources(&[]).await?;
        Ok(all
            .iter()
            .flat_map(|(cluster, res)| {
                let kept = res.kept();
                res.resources
                    .iter()
                    .filter(|r| r.kind == ResourceKind::Network)
                    .map(move |r| {
                        (
                            r.name.clone(),
                            cluster.clone(),
                            r.label(LABEL_OWNER).to_string(),
                            kept,
                        )
                    })
            })
            .collect())
    }

    /// The node's container ID: from the cache, else looked up by its labels. A container that
    /// merely has the right name is never found here.
    pub(super) async fn known(&self, cluster: &str, node: &str) -> Result<String, BackendError> {
        if let Some(id) = self.cached_id(cluster, node) {
            return Ok(id);
        }
        let filter = vec![
            LABEL_CLUSTER.to_string(),
            LABEL_OWNER.to_string(),
            format!("{LABEL_CLUSTER}={cluster}"),
            format!("{LABEL_NODE}={node}"),
        ];
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&label_filters(&filter))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(engine_call("list containers"))?;
        let ids: Vec<String> = list.into_iter().filter_map(|c| c.id).collect();
        match ids.as_slice() {
            [id] => {
                self.remember_id(cluster, node, id);
                Ok(id.clone())
            }
            [] => {
                let all = self
                    .resources(&[format!("{LABEL_CLUSTER}={cluster}")])
                    .await?;
                if all.is_empty() {
                    Err(BackendError::UnknownCluster(cluster.to_string()))
                } else {
                    Err(BackendError::UnknownNode {
                        cluster: cluster.to_string(),
                        node: node.to_string(),
                    })
                }
            }
            _ => Err(BackendError::refused(
                format!("node {node} of {cluster}"),
                format!(
                    "{} containers carry its labels; remove the strays (docker ps -a --filter label={LABEL_CLUSTER}={cluster})",
                    ids.len()
                ),
            )),
        }
    }

    /// The error for a node whose cached container the engine no longer knows: the ID is
    /// forgotten and the node looked up again by label, to say what is missing.
    pub(super) async fn gone(&self, cluster: &str, node: &str) -> BackendError {
        self.forget(cluster, Some(node));
        match self.known(cluster, node).await {
            Err(e) => e,
            Ok(_) => BackendError::Gone {
                cluster: cluster.to_string(),
                node: node.to_string(),
            },
        }
    }

    fn cached_id(&self, cluster: &str, node: &str) -> Option<String> {
        let ids = self.ids.lock().ok()?;
        ids.get(cluster)?.get(node).cloned()
    }

    pub(super) fn remember_id(&self, cluster: &str, node: &str, id: &str) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.entry(cluster.to_string())
                .or_default()
                .insert(node.to_string(), id.to_string());
        }
    }

    /// Drops a cached ID the engine no longer knows (or every ID of a cluster with `None`).
    pub(super) fn forget(&self, cluster: &str, node: Option<&str>) {
        if let Ok(mut ids) = self.ids.lock() {
            match node {
                Some(n) => {
                    if let Some(m) = ids.get_mut(cluster) {
                        m.remove(n);
                    }
                }
                None => {
                    ids.remove(cluster);
                }
            }
        }
    }

    /// The cached container IDs of a cluster's nodes.
    pub(super) fn cached_ids(&self, cluster: &str) -> Vec<String> {
        self.ids
            .lock()
            .ok()
            .and_then(|ids| ids.get(cluster).map(|m| m.values().cloned().collect()))
            .unwrap_or_default()
    }
}

fn push(
    out: &mut BTreeMap<String, ClusterResources>,
    kind: ResourceKind,
    id: String,
    name: String,
    labels: HashMap<String, String>,
) {
    let Some(cluster) = labels.get(LABEL_CLUSTER).cloned() else {
        return;
    };
    out.entry(cluster).or_default().resources.push(Resource {
        kind,
        id,
        name,
        labels,
    });
}

impl ContainerInfo {
    /// The node as the lookup capability describes nodes on every backend.
    pub fn summary(&self) -> NodeSummary {
        NodeSummary {
            name: self.node.clone(),
            index: self.index,
            address: self.address.clone(),
            workdir: DOCKER_WORKDIR.to_string(),
            state: node_state(&self.state),
            roles: self.roles.clone(),
            place: self.image.clone(),
            ports: self.ports.clone(),
        }
    }
}

/// A container state as the engine lists it (`running`, `exited`, ...), as a node state.
fn node_state(engine: &str) -> NodeState {
    match engine {
        "created" => NodeState::Created,
        "running" | "restarting" => NodeState::Running,
        "paused" => NodeState::Paused,
        "exited" | "dead" => NodeState::Exited,
        _ => NodeState::Unknown,
    }
}

#[async_trait]
impl Lookup for DockerBackend {
    async fn clusters(&self) -> Result<Vec<ClusterSummary>, BackendError> {
        // Every cluster with anything labelled (a claim or a network may be all that is left),
        // with the nodes that have containers.
        let (resources, containers) =
            futures::future::try_join(self.resources(&[]), self.containers(None)).await?;
        Ok(resources
            .into_iter()
            .map(|(name, res)| ClusterSummary {
                kept: res.kept(),
                mark: res.keep_mark(),
                nodes: containers
                    .iter()
                    .filter(|c| c.cluster == name)
                    .map(ContainerInfo::summary)
                    .collect(),
                name,
            })
            .collect())
    }

    async fn nodes(&self, cluster: &str) -> Result<Vec<NodeSummary>, BackendError> {
        let list = self.containers(Some(cluster)).await?;
        if list.is_empty()
            && self
                .resources(&[format!("{LABEL_CLUSTER}={cluster}")])
                .await?
                .is_empty()
        {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        Ok(list.iter().map(ContainerInfo::summary).collect())
    }
}

/// The run label filter for [`DockerBackend::resources`].
pub fn run_filter(run: &str) -> String {
    format!("{LABEL_RUN}={run}")
}
