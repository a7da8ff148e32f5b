//! The docker backend's node life (`impl Backend`): one private bridge network per cluster,
//! one container per node, driven through the engine's API with bollard (`DOCKER_HOST`
//! honoured). The engine calls live beside it: the client and its errors (`engine.rs`), the
//! name claim and network (`network.rs`), node creation (`node.rs`), teardown (`teardown.rs`),
//! commands (`exec.rs`), lookups (`lookup.rs`), nodes joining and leaving (`membership.rs`).

use std::io::Read;

use async_trait::async_trait;
use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::TryStreamExt;

pub use super::engine::DockerBackend;
use super::engine::{
    classify, engine_call, EngineError, EngineErrorKind, Made, DOCKER_WORKDIR, STOP_GRACE_SECS,
};
use super::labels::cluster_labels;
use super::node::START_CALLS;
use super::subnet;
use crate::backend::contract::Backend;
use crate::backend::types::{Lease, LogStream, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::ClusterSpec;

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn faults(&self) -> Option<&dyn crate::backend::faults::FaultBackend> {
        Some(self)
    }

    fn janitor(&self) -> Option<&dyn crate::backend::janitor::Janitor> {
        Some(self)
    }

    fn lookup(&self) -> Option<&dyn crate::backend::lookup::Lookup> {
        Some(self)
    }

    fn shell(&self) -> Option<&dyn crate::backend::shell::ShellBackend> {
        Some(self)
    }

    fn membership(&self) -> Option<&dyn crate::backend::membership::Membership> {
        Some(self)
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &Lease,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        // A /24 holds 250 nodes; bigger clusters get a bigger block of the pool.
        let prefix = subnet::prefix_for(spec.nodes.len())
            .filter(|&p| p >= self.pool.prefix)
            .ok_or_else(|| {
                BackendError::refused(
                    format!("cluster {cluster:?}"),
                    format!(
                        "{} nodes do not fit the subnet pool {} (CLUSTER_SIM_SUBNET_POOL; a /{} holds {} nodes): use a larger pool",
                        spec.nodes.len(),
                        self.pool,
                        self.pool.prefix,
                        subnet::capacity(self.pool.prefix)
                    ),
                )
            })?;
        // Every image first (building the node image if needed), so a missing one fails
        // before anything exists in the engine.
        // Nodes with `packages` get an image derived per package set, made here too.
        let mut image = String::new();
        for n in &spec.nodes {
            image = self.node_image(n, Some(spec)).await?;
        }
        // The name first: a process that loses it leaves nothing behind.
        let labels = cluster_labels(cluster, &spec.source, lease.expires);
        let claim = self.claim(cluster, &image, &labels).await?;
        let (net, net_id) = match self.create_network(cluster, prefix, &labels).await {
            Ok(n) => n,
            Err(e) => {
                if let Err(r) = self.remove_container(&claim).await {
                    tracing::warn!("removing the name claim of {cluster}: {r}");
                }
                return Err(e);
            }
        };
        if let Ok(mut made) = self.made.lock() {
            made.insert(
                cluster.to_string(),
                Made {
                    net: net_id,
                    labels,
                    image,
                    copy_binaries: false,
                },
            );
        }
        Ok(spec
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| NodeAddr {
                name: n.name.clone(),
                address: net.host(i as u32 + 2).to_string(),
                workdir: DOCKER_WORKDIR.to_string(),
            })
            .collect())
    }

    async fn launch(&self, cluster: &str, nodes: &[NodeLaunch]) -> Result<(), BackendError> {
        // Containers join the network `allocate` made (by ID) and copy its labels.
        let made = self.made_for(cluster).await?;
        let calls = tokio::sync::Semaphore::new(START_CALLS);
        let jobs = nodes.iter().map(|n| async {
            let _call = calls.acquire().await;
            self.create_node(cluster, &made, n).await
        });
        futures::future::try_join_all(jobs).await?;
        // Binaries must fit the node's glibc before any service runs them.
        self.check_binaries(cluster, nodes).await?;
        // Every node runs: let their services start, together.
        let go = nodes
            .iter()
            .map(|n| async move { self.go(cluster, &n.spec.name).await });
        futures::future::try_join_all(go).await?;
        tracing::debug!(cluster, "go signal sent");
        Ok(())
    }

    async fn exec(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError> {
        self.run(cluster, node, req).await
    }

    async fn replace_binary(
        &self,
        cluster: &str,
        node: &str,
        binary: &crate::service::Placement,
    ) -> Result<(), BackendError> {
        self.relink(cluster, node, binary).await
    }

    async fn write_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        let id = self.known(cluster, node).await?;
        match self.put(&id, path, data, mode).await {
            Ok(()) => Ok(()),
            Err(super::node::PutError::Engine(e)) if e.kind == EngineErrorKind::NoSuchContainer => {
                Err(self.gone(cluster, node).await)
            }
            Err(e) => Err(e.into_backend("upload")),
        }
    }

    async fn read_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
    ) -> Result<Vec<u8>, BackendError> {
        let name = self.known(cluster, node).await?;
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let chunks: Result<Vec<bytes::Bytes>, EngineError> = self
            .docker
            .download_from_container(&name, Some(opts))
            .try_collect()
            .await
            .map_err(classify);
        let chunks = match chunks {
            Ok(c) => c,
            Err(e) => match e.kind {
                EngineErrorKind::NoSuchContainer => return Err(self.gone(cluster, node).await),
                EngineErrorKind::NotFound => return Err(BackendError::NoSuchFile),
                _ => return Err(e.into_backend("download")),
            },
        };
        let tarball: Vec<u8> = chunks.concat();
        let bad = |source| BackendError::Local {
            what: "read the archive from the engine".into(),
            source,
        };
        let mut ar = tar::Archive::new(tarball.as_slice());
        let mut entries = ar.entries().map_err(bad)?;
        let mut entry = entries
            .next()
            .ok_or_else(|| {
                bad(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the engine sent an empty archive",
                ))
            })?
            .map_err(bad)?;
        if entry.header().entry_type().is_dir() {
            return Err(BackendError::IsDirectory);
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut data).map_err(bad)?;
        Ok(data)
    }

    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError> {
        let name = self.known(cluster, node).await?;
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .build();
        let chunks: Vec<_> = self
            .docker
            .logs(&name, Some(opts))
            .try_collect()
            .await
            .map_err(engine_call("logs"))?;
        Ok(chunks.into_iter().flat_map(|c| c.into_bytes()).collect())
    }

    async fn log_stream(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<Option<LogStream>, BackendError> {
        let name = self.known(cluster, node).await?;
        Ok(Some(super::live_log::live_log(self.docker.clone(), name)))
    }

    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError> {
        let name = self.known(cluster, node).await?;
        if matches!(
            action,
            NodeAction::Kill | NodeAction::Stop | NodeAction::Restart | NodeAction::Pause
        ) {
            self.drop_agents(&name);
        }
        let d = &self.docker;
        let r = match action {
            NodeAction::Kill => {
                let opts = KillContainerOptionsBuilder::default()
                    .signal("SIGKILL")
                    .build();
                d.kill_container(&name, Some(opts)).await
            }
            NodeAction::Stop => {
                let opts = StopContainerOptionsBuilder::default()
                    .t(STOP_GRACE_SECS)
                    .build();
                d.stop_container(&name, Some(opts)).await
            }
            NodeAction::Start => d.start_container(&name, None).await,
            NodeAction::Restart => {
                let opts = StopContainerOptionsBuilder::default()
                    .t(STOP_GRACE_SECS)
                    .build();
                match d.stop_container(&name, Some(opts)).await.map_err(classify) {
                    Ok(()) => d.start_container(&name, None).await,
                    Err(e) if e.kind == EngineErrorKind::NotModified => {
                        d.start_container(&name, None).await
                    }
                    Err(e) => return Err(self.act_error(cluster, node, action, e).await),
                }
            }
            NodeAction::Pause => d.pause_container(&name).await,
            NodeAction::Unpause => d.unpause_container(&name).await,
        };
        match r.map_err(classify) {
            Ok(()) => Ok(()),
            // 304: already in the asked-for state.
            Err(e) if e.kind == EngineErrorKind::NotModified => Ok(()),
            Err(e) => Err(self.act_error(cluster, node, action, e).await),
        }
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        let id = self.known(cluster, node).await?;
        let info = match self
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(classify)
        {
            Ok(i) => i,
            Err(e) if e.kind == EngineErrorKind::NoSuchContainer => {
                return Err(self.gone(cluster, node).await)
            }
            Err(e) => return Err(e.into_backend("inspect")),
        };
        Ok(match info.state.and_then(|s| s.status) {
            Some(ContainerStateStatusEnum::CREATED) => NodeState::Created,
            Some(ContainerStateStatusEnum::RUNNING)
            | Some(ContainerStateStatusEnum::RESTARTING) => NodeState::Running,
            Some(ContainerStateStatusEnum::PAUSED) => NodeState::Paused,
            Some(ContainerStateStatusEnum::EXITED) | Some(ContainerStateStatusEnum::DEAD) => {
                NodeState::Exited
            }
            _ => NodeState::Unknown,
        })
    }

    async fn keep(
        &self,
        cluster: &str,
        mark: &crate::backend::KeepMark,
    ) -> Result<(), BackendError> {
        let made = self.made_for(cluster).await?;
        let mut labels = made.labels.clone();
        labels.extend(super::labels::keep_mark_labels(mark));
        match self.marker(cluster, "kept", &made.image, &labels).await {
            Ok(_) => Ok(()),
            // Already kept.
            Err(e) if e.kind == EngineErrorKind::Conflict => Ok(()),
            Err(e) => Err(e.into_backend(format!("cluster {cluster}: marking it kept"))),
        }
    }

    async fn destroy(&self, cluster: &str) -> Result<(), BackendError> {
        for id in self.cached_ids(cluster) {
            self.drop_agents(&id);
        }
        self.forget(cluster, None);
        if let Ok(mut made) = self.made.lock() {
            made.remove(cluster);
        }
        self.remove_cluster(cluster, None).await
    }
}

impl DockerBackend {
    /// A lifecycle action's engine error: a container the engine no longer has is the node
    /// gone; 304 (already so) never gets here.
    async fn act_error(
        &self,
        cluster: &str,
        node: &str,
        action: NodeAction,
        e: EngineError,
    ) -> BackendError {
        match e.kind {
            EngineErrorKind::NoSuchContainer | EngineErrorKind::NotFound => {
                self.gone(cluster, node).await
            }
            _ => e.into_backend(action.to_string()),
        }
    }
}
