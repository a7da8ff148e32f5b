//! The swarm backend's node life (`impl Backend`): one `DockerBackend` per engine of the
//! engines file, a cluster's nodes placed across them (`place.rs`) on one attachable overlay
//! network made through the manager, every per-node call sent to the node's own engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bollard::models::LocalNodeState;

use super::engines::{EngineEntry, Engines};
use super::image::send_image;
use super::place::{place, Slot};
use crate::backend::contract::Backend;
use crate::backend::lookup::Lookup;
use crate::backend::types::{KeepMark, Lease, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::docker::labels::cluster_labels;
use crate::docker::{DockerBackend, DOCKER_WORKDIR, OVERLAY_RESERVED};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::image::NODE_IMAGE;
use crate::spec::ClusterSpec;

/// One engine of the swarm.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    /// Its entry in the engines file.
    pub(crate) entry: EngineEntry,
    /// The docker backend on it.
    pub(crate) docker: DockerBackend,
}

/// The swarm backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SwarmBackend {
    pub(crate) engines: Arc<Vec<Engine>>,
    /// The index of the manager engine, through which overlay networks are made.
    pub(crate) manager: usize,
    /// Which engine holds each node, by cluster then node (filled at allocation or lookup).
    pub(crate) homes: Arc<Mutex<HashMap<String, HashMap<String, usize>>>>,
}

impl SwarmBackend {
    /// Connects every engine of an engines file (in parallel) and checks that they form one
    /// swarm with a manager among them. Each failure names the engine.
    pub async fn connect(engines: &Engines) -> Result<Self, BackendError> {
        let connects = engines.engines.iter().map(|e| async move {
            let docker = DockerBackend::connect_to(&e.endpoint)
                .await
                .map_err(|err| in_engine(&e.name, &engines.source, err))?;
            let info = docker.client().info().await.map_err(|err| {
                BackendError::engine(
                    format!("engine {} ({}): docker info", e.name, engines.source),
                    err,
                )
            })?;
            Ok::<_, BackendError>((e.clone(), docker, info.swarm.unwrap_or_default()))
        });
        let connected = futures::future::try_join_all(connects).await?;
        let mut manager = None;
        let mut list = Vec::new();
        for (i, (entry, docker, swarm)) in connected.into_iter().enumerate() {
            if swarm.local_node_state != Some(LocalNodeState::ACTIVE) {
                return Err(BackendError::refused(
                    format!("engine {} ({})", entry.name, engines.source),
                    "it is not in a swarm (`docker swarm init` on one engine, `docker swarm join` on the others; or `cluster-sim lab engines N`)",
                ));
            }
            let docker = if swarm.control_available == Some(true) {
                manager.get_or_insert(i);
                docker
            } else {
                docker.into_worker()
            };
            list.push(Engine { entry, docker });
        }
        let manager = manager.ok_or_else(|| {
            BackendError::refused(
                format!("the engines of {}", engines.source),
                "none is a swarm manager (list the manager's engine too)",
            )
        })?;
        Ok(SwarmBackend {
            engines: Arc::new(list),
            manager,
            homes: Arc::default(),
        })
    }

    /// The engines, in file order.
    pub fn engines(&self) -> Vec<EngineEntry> {
        self.engines.iter().map(|e| e.entry.clone()).collect()
    }

    fn manager(&self) -> &DockerBackend {
        &self.engines[self.manager].docker
    }

    /// The engine holding `node` of `cluster`: remembered, else looked up on every engine.
    pub(crate) async fn home(&self, cluster: &str, node: &str) -> Result<&Engine, BackendError> {
        if let Some(i) = self.remembered(cluster, node) {
            return Ok(&self.engines[i]);
        }
        let found = self.find(cluster).await?;
        match found.get(node) {
            Some(&i) => Ok(&self.engines[i]),
            None => Err(BackendError::UnknownNode {
                cluster: cluster.to_string(),
                node: node.to_string(),
            }),
        }
    }

    fn remembered(&self, cluster: &str, node: &str) -> Option<usize> {
        self.homes.lock().ok()?.get(cluster)?.get(node).copied()
    }

    /// Every node of `cluster` and its engine, asked of every engine; `UnknownCluster` when no
    /// engine holds anything of it.
    async fn find(&self, cluster: &str) -> Result<HashMap<String, usize>, BackendError> {
        let asks = self
            .engines
            .iter()
            .map(|e| Lookup::nodes(&e.docker, cluster));
        let answers = futures::future::join_all(asks).await;
        let mut found = HashMap::new();
        let mut any = false;
        for (i, a) in answers.into_iter().enumerate() {
            match a {
                Ok(nodes) => {
                    any = true;
                    for n in nodes {
                        found.insert(n.name, i);
                    }
                }
                Err(BackendError::UnknownCluster(_)) => {}
                Err(e) => return Err(in_engine(&self.engines[i].entry.name, "", e)),
            }
        }
        if !any {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        if let Ok(mut homes) = self.homes.lock() {
            homes.insert(cluster.to_string(), found.clone());
        }
        Ok(found)
    }

    /// Makes sure engine `i` has `reference` (the node image, or an image the first engine
    /// has), sending it from the first engine where needed; returns the tag to run.
    pub(crate) async fn image_on(&self, i: usize, reference: &str) -> Result<String, BackendError> {
        let source = &self.engines[0];
        let tag = if reference == NODE_IMAGE {
            // Built (or found) on the first engine, which is where the builder streams it.
            let dir = crate::image::default_definition_dir().ok_or_else(|| {
                BackendError::refused(
                    format!("image {NODE_IMAGE}"),
                    "cannot find its definition (docker/node/Dockerfile); set CLUSTER_SIM_IMAGE_DIR",
                )
            })?;
            crate::image::ImageBuilder::new(dir)
                .ensure(source.docker.client())
                .await
                .map_err(|e| BackendError::engine(format!("image {NODE_IMAGE}"), e))?
        } else {
            reference.to_string()
        };
        let target = &self.engines[i];
        if i != 0 {
            send_image(
                source.docker.client(),
                target.docker.client(),
                &target.entry.endpoint,
                &target.entry.name,
                &tag,
            )
            .await?;
        } else if super::image::image_id(source.docker.client(), &tag)
            .await
            .is_none()
        {
            return Err(BackendError::NoImage { image: tag });
        }
        target.docker.preset_image(reference, &tag).await;
        Ok(tag)
    }

    /// Nodes of every cluster on each engine now.
    async fn slots(&self) -> Result<Vec<Slot>, BackendError> {
        let counts = self.engines.iter().map(|e| async move {
            e.docker
                .containers(None)
                .await
                .map(|c| c.len())
                .map_err(|err| in_engine(&e.entry.name, "", err))
        });
        let used = futures::future::try_join_all(counts).await?;
        Ok(self
            .engines
            .iter()
            .zip(used)
            .map(|(e, used)| Slot {
                name: e.entry.name.clone(),
                capacity: e.entry.capacity,
                used,
            })
            .collect())
    }

    /// The engines holding anything of `cluster`, workers first and the manager last (it holds
    /// the network and the name claim, which go last).
    fn teardown_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.engines.len())
            .filter(|&i| i != self.manager)
            .collect();
        order.push(self.manager);
        order
    }

    /// Runs `f` on every worker engine at once, then on the manager; each engine's result.
    pub(crate) async fn each_engine<'a, F, Fut, R>(&'a self, f: F) -> Vec<(usize, R)>
    where
        F: Fn(&'a Engine) -> Fut,
        Fut: std::future::Future<Output = R>,
    {
        let order = self.teardown_order();
        let (workers, manager) = order.split_at(order.len() - 1);
        let jobs = workers.iter().map(|&i| f(&self.engines[i]));
        let mut out: Vec<(usize, R)> = workers
            .iter()
            .copied()
            .zip(futures::future::join_all(jobs).await)
            .collect();
        out.push((manager[0], f(&self.engines[manager[0]]).await));
        out
    }
}

/// An engine's error with the engine named.
pub(crate) fn in_engine(engine: &str, source: &str, e: BackendError) -> BackendError {
    let at = if source.is_empty() {
        format!("engine {engine}")
    } else {
        format!("engine {engine} ({source})")
    };
    match e {
        BackendError::Unreachable { what, why } => BackendError::Unreachable {
            what: format!("{at}: {what}"),
            why,
        },
        BackendError::Refused { what, why } => BackendError::Refused {
            what: format!("{at}: {what}"),
            why,
        },
        BackendError::Engine { op, source } => BackendError::Engine {
            op: format!("{at}: {op}"),
            source,
        },
        other => other,
    }
}

#[async_trait]
impl Backend for SwarmBackend {
    fn kind(&self) -> &'static str {
        "swarm"
    }

    fn faults(&self) -> Option<&dyn crate::backend::faults::FaultBackend> {
        Some(self)
    }

    fn janitor(&self) -> Option<&dyn crate::backend::janitor::Janitor> {
        Some(self)
    }

    fn lookup(&self) -> Option<&dyn Lookup> {
        Some(self)
    }

    fn shell(&self) -> Option<&dyn crate::backend::shell::ShellBackend> {
        Some(self)
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &Lease,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        let homes = place(cluster, spec, &self.slots().await?)?;
        // Every image on every engine that runs it first, so nothing exists if one is missing.
        let mut wanted: Vec<(usize, &str)> = homes
            .iter()
            .zip(&spec.nodes)
            .map(|(&e, n)| (e, n.image.as_str()))
            .collect();
        wanted.push((self.manager, spec.nodes[0].image.as_str()));
        wanted.sort_unstable();
        wanted.dedup();
        let sends = wanted.iter().map(|&(e, image)| self.image_on(e, image));
        let tags = futures::future::try_join_all(sends).await?;
        let manager_image = wanted
            .iter()
            .zip(&tags)
            .find(|((e, _), _)| *e == self.manager)
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        let labels = cluster_labels(cluster, &spec.source, lease.expires);
        let manager = self.manager();
        manager.claim_name(cluster, &manager_image, &labels).await?;
        let (net, net_id) = match manager
            .create_overlay(cluster, spec.nodes.len(), &labels)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                if let Err(r) = manager
                    .remove_part(cluster, Some(crate::backend::ownership::run_id()))
                    .await
                {
                    tracing::warn!("removing the name claim of {cluster}: {r}");
                }
                return Err(e);
            }
        };
        let mut used: Vec<usize> = homes.clone();
        used.sort_unstable();
        used.dedup();
        for &e in &used {
            let engine = &self.engines[e];
            engine
                .docker
                .adopt(cluster, &net_id, &labels, &manager_image);
        }
        if let Ok(mut all) = self.homes.lock() {
            all.insert(
                cluster.to_string(),
                spec.nodes
                    .iter()
                    .zip(&homes)
                    .map(|(n, &e)| (n.name.clone(), e))
                    .collect(),
            );
        }
        tracing::debug!(cluster, network = %net, "overlay network made");
        Ok(spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeAddr {
                name: n.name.clone(),
                address: net.host(OVERLAY_RESERVED + i as u32).to_string(),
                workdir: DOCKER_WORKDIR.to_string(),
            })
            .collect())
    }

    async fn launch(&self, cluster: &str, nodes: &[NodeLaunch]) -> Result<(), BackendError> {
        let mut by_engine: Vec<Vec<NodeLaunch>> = vec![Vec::new(); self.engines.len()];
        for n in nodes {
            let e = self.remembered(cluster, &n.spec.name).ok_or_else(|| {
                BackendError::UnknownNode {
                    cluster: cluster.to_string(),
                    node: n.spec.name.clone(),
                }
            })?;
            by_engine[e].push(n.clone());
        }
        let starts = by_engine
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(e, n)| {
                let engine = &self.engines[e];
                async move {
                    engine
                        .docker
                        .start_nodes(cluster, n)
                        .await
                        .map_err(|err| in_engine(&engine.entry.name, "", err))
                }
            });
        futures::future::try_join_all(starts).await?;
        let go = by_engine
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(e, n)| {
                let engine = &self.engines[e];
                async move { engine.docker.go_nodes(cluster, n).await }
            });
        futures::future::try_join_all(go).await?;
        Ok(())
    }

    async fn exec(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .exec(cluster, node, req)
            .await
    }

    async fn write_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        let e = self.home(cluster, node).await?;
        e.docker.write_file(cluster, node, path, data, mode).await
    }

    async fn read_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
    ) -> Result<Vec<u8>, BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .read_file(cluster, node, path)
            .await
    }

    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .logs(cluster, node)
            .await
    }

    async fn log_stream(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<Option<crate::backend::LogStream>, BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .log_stream(cluster, node)
            .await
    }

    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .act(cluster, node, action)
            .await
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        self.home(cluster, node)
            .await?
            .docker
            .state(cluster, node)
            .await
    }

    async fn replace_binary(
        &self,
        cluster: &str,
        node: &str,
        binary: &crate::service::Placement,
    ) -> Result<(), BackendError> {
        // Binaries are copies on a swarm's nodes (no store mount): the new build is written
        // over the old one; the caller restarts the service.
        let data = std::fs::read(&binary.source).map_err(|source| BackendError::Local {
            what: format!(
                "node {node}: read {} ({})",
                binary.source.display(),
                binary.what
            ),
            source,
        })?;
        let e = self.home(cluster, node).await?;
        e.docker
            .write_file(cluster, node, &binary.dest, &data, 0o755)
            .await
    }

    async fn keep(&self, cluster: &str, mark: &KeepMark) -> Result<(), BackendError> {
        // Every engine's reaper judges its own part: each gets the mark.
        let marks = self.each_engine(|e| async move {
            e.docker
                .mark_kept(cluster, mark)
                .await
                .map_err(|err| in_engine(&e.entry.name, "", err))
        });
        for (_, r) in marks.await {
            r?;
        }
        Ok(())
    }

    async fn destroy(&self, cluster: &str) -> Result<(), BackendError> {
        if let Ok(mut homes) = self.homes.lock() {
            homes.remove(cluster);
        }
        let removed = self
            .each_engine(|e| async move {
                e.docker
                    .remove_part(cluster, None)
                    .await
                    .map_err(|err| (e, err))
            })
            .await;
        let mut failures = Vec::new();
        for (_, r) in removed {
            if let Err((e, err)) = r {
                match err {
                    BackendError::Teardown { failures: f, .. } => failures.extend(
                        f.into_iter()
                            .map(|f| format!("engine {}: {f}", e.entry.name)),
                    ),
                    other => failures.push(format!("engine {}: {other}", e.entry.name)),
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Teardown {
                cluster: cluster.to_string(),
                failures,
            })
        }
    }
}
