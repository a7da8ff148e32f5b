//! The docker backend: one private bridge network per cluster, one container per node, driven
//! through the engine's API with bollard (`DOCKER_HOST` honoured).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EndpointIpamConfig, EndpointSettings,
    HostConfig, Ipam, IpamConfig, NetworkCreateRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures::TryStreamExt;

use super::agent::Agent;
use super::owner::{cluster_labels, LABEL_ADDRESS, LABEL_CLUSTER, LABEL_INDEX, LABEL_NODE};
use super::subnet::{self, Net};
use crate::backend::{Backend, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::image::{ImageBuilder, NODE_IMAGE};
use crate::spec::ClusterSpec;

/// Each node's cluster working directory (a container belongs to one cluster only).
pub(crate) const DOCKER_WORKDIR: &str = "/var/lib/cluster-sim";

/// Most bytes of base64 carried in a container's command (one argument may hold 128 KiB).
const INLINE_FILES_MAX: usize = 96 * 1024;

/// A node's first process: on first start, makes the working directory, unpacks the files
/// carried in `$1` (base64 of a tar) and waits for the go signal (a file cluster-sim writes once
/// every node of the cluster runs), then runs the service (`$2`). A restart skips all that, so
/// files the test changed stay changed.
///
/// The go signal starts the services of a cluster together: peers are reachable from each
/// service's first moment, which is how clustered software expects to bootstrap (etcd, for one,
/// skips most of its first election timeout only when its peers answer at start).
const BOOT_SCRIPT: &str = r#"if [ ! -e /.cluster-sim-booted ]; then
  mkdir -p /var/lib/cluster-sim || exit 1
  if [ -n "$1" ]; then printf '%s' "$1" | base64 -d | tar -x -C / || exit 1; fi
  while [ ! -e /.cluster-sim-go ]; do sleep 0.02; done
  : > /.cluster-sim-booted
fi
# CLUSTER_SIM_FAKETIME=1 preloads libfaketime into the service (and only the service), its
# offset read from a file docker/fault.rs writes, so a clock fault can skew it at run time.
# Opt-in: libfaketime deadlocks programs linked with jemalloc (Debian's redis-server).
if [ "${CLUSTER_SIM_FAKETIME:-0}" = 1 ]; then
  for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e "$f" ] && export LD_PRELOAD="$f" FAKETIME_TIMESTAMP_FILE=/dev/shm/cluster-sim/faketime FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1; done
fi
exec sh -c "$2""#;

/// The file whose creation starts a node's service on its first boot.
const GO_FILE: &str = "/.cluster-sim-go";

/// Directories and files as one tar archive with paths relative to `/`.
fn files_archive(dirs: &[&str], files: &[(String, Vec<u8>, u32)]) -> Result<Vec<u8>, BackendError> {
    let tar_err = |e: std::io::Error| BackendError::Other(format!("tar: {e}"));
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let size: usize = files.iter().map(|f| f.1.len() + 1024).sum();
    let mut ar = tar::Builder::new(Vec::with_capacity(size + 1024));
    for d in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(mtime);
        ar.append_data(&mut header, d.trim_start_matches('/'), std::io::empty())
            .map_err(tar_err)?;
    }
    for (path, data, mode) in files {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || path.ends_with('/') {
            return Err(BackendError::Other(format!("{path:?} is not a file path")));
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        ar.append_data(&mut header, rel, data.as_slice())
            .map_err(tar_err)?;
    }
    ar.into_inner().map_err(tar_err)
}

/// Grace period of a graceful stop before the engine SIGKILLs.
const STOP_GRACE_SECS: i32 = 10;

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
    /// Engine state (`running`, `exited`, ...).
    pub state: String,
    /// Image.
    pub image: String,
    /// Owner label.
    pub owner: String,
    /// Whether the cluster is kept on purpose.
    pub keep: bool,
    /// Published ports: (port in the node, port on 127.0.0.1).
    pub ports: Vec<(u16, u16)>,
}

/// The docker backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    pub(super) docker: Docker,
    images: Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    pool: Net,
    /// Idle exec agents by container name.
    pub(super) agents: Arc<std::sync::Mutex<HashMap<String, Vec<Agent>>>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agent")
    }
}

/// Turns an engine error into a user-facing line.
pub(crate) fn engine_error(e: DockerError) -> BackendError {
    match e {
        DockerError::DockerResponseServerError { message, .. } => BackendError::Other(message),
        DockerError::SocketNotFoundError(path) => BackendError::Unreachable(format!(
            "cannot reach the Docker engine: no socket at {path} (is dockerd running? DOCKER_HOST={})",
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unset".into())
        )),
        DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::HyperLegacyError { .. } => BackendError::Unreachable(format!(
            "cannot reach the Docker engine at {}: {e}",
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
        )),
        other => BackendError::Other(other.to_string()),
    }
}

pub(super) fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(super) fn container_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}")
}

fn network_name(cluster: &str) -> String {
    format!("{cluster}-net")
}

impl DockerBackend {
    /// Connects to the engine (`DOCKER_HOST`, else the local socket) and agrees an API version.
    /// An engine that doesn't answer is one clear error, not a panic.
    pub async fn connect() -> Result<Self, BackendError> {
        let docker = Docker::connect_with_defaults().map_err(engine_error)?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| {
                BackendError::Unreachable(
                    "cannot reach the Docker engine: no answer within 10s".into(),
                )
            })?
            .map_err(engine_error)?;
        let pool_text = std::env::var("CLUSTER_SIM_SUBNET_POOL")
            .unwrap_or_else(|_| subnet::DEFAULT_POOL.into());
        let pool = Net::parse(&pool_text)
            .filter(|n| n.prefix <= 24)
            .ok_or_else(|| {
                BackendError::Other(format!(
                    "CLUSTER_SIM_SUBNET_POOL={pool_text:?} is not an IPv4 network of /24 or larger"
                ))
            })?;
        Ok(Self {
            docker,
            images: Arc::default(),
            pool,
            agents: Arc::default(),
        })
    }

    /// The bollard client, for callers that need the engine directly (image builds).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Containers carrying the cluster label, optionally of one cluster only.
    pub async fn containers(
        &self,
        cluster: Option<&str>,
    ) -> Result<Vec<ContainerInfo>, BackendError> {
        let filter = match cluster {
            Some(c) => format!("{LABEL_CLUSTER}={c}"),
            None => LABEL_CLUSTER.to_string(),
        };
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&HashMap::from([("label".to_string(), vec![filter])]))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(engine_error)?;
        let mut out: Vec<ContainerInfo> = list
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let l = |k: &str| labels.get(k).cloned().unwrap_or_default();
                ContainerInfo {
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
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    image: c.image.unwrap_or_default(),
                    owner: l(super::owner::LABEL_OWNER),
                    keep: labels.contains_key(super::owner::LABEL_KEEP),
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

    /// Networks carrying the cluster label: (name, cluster, owner, kept).
    pub async fn networks(&self) -> Result<Vec<(String, String, String, bool)>, BackendError> {
        let opts = ListNetworksOptionsBuilder::default()
            .filters(&HashMap::from([(
                "label".to_string(),
                vec![LABEL_CLUSTER.to_string()],
            )]))
            .build();
        let list = self
            .docker
            .list_networks(Some(opts))
            .await
            .map_err(engine_error)?;
        Ok(list
            .into_iter()
            .map(|n| {
                let labels = n.labels.unwrap_or_default();
                (
                    n.name.unwrap_or_default(),
                    labels.get(LABEL_CLUSTER).cloned().unwrap_or_default(),
                    labels
                        .get(super::owner::LABEL_OWNER)
                        .cloned()
                        .unwrap_or_default(),
                    labels.contains_key(super::owner::LABEL_KEEP),
                )
            })
            .collect())
    }

    pub(super) async fn resolve_image(&self, image: &str) -> Result<String, BackendError> {
        let mut cache = self.images.lock().await;
        if let Some(tag) = cache.get(image) {
            return Ok(tag.clone());
        }
        let tag = if image == NODE_IMAGE {
            let dir = crate::image::default_definition_dir().ok_or_else(|| {
                BackendError::Other(format!(
                    "image {NODE_IMAGE}: cannot find its definition (docker/node/Dockerfile); set CLUSTER_SIM_IMAGE_DIR"
                ))
            })?;
            ImageBuilder::new(dir)
                .ensure(&self.docker)
                .await
                .map_err(|e| BackendError::Other(format!("image {NODE_IMAGE}: {e}")))?
        } else {
            match self.docker.inspect_image(image).await {
                Ok(_) => image.to_string(),
                Err(e) if is_not_found(&e) => {
                    return Err(BackendError::Other(format!(
                        "image {image:?} is not in the local engine (cluster-sim pulls nothing: build or load it first)"
                    )))
                }
                Err(e) => return Err(engine_error(e)),
            }
        };
        cache.insert(image.to_string(), tag.clone());
        Ok(tag)
    }

    async fn create_network(
        &self,
        cluster: &str,
        labels: &HashMap<String, String>,
    ) -> Result<Net, BackendError> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(cluster.as_bytes());
        h.write_u32(std::process::id());
        let routes = subnet::host_routes();
        let mut last = String::new();
        for (tries, net) in subnet::candidates(&self.pool, h.finish(), &routes)
            .into_iter()
            .enumerate()
        {
            if tries >= 64 {
                break;
            }
            let req = NetworkCreateRequest {
                name: network_name(cluster),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(net.to_string()),
                        gateway: Some(net.host(1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            };
            match self.docker.create_network(req).await {
                Ok(_) => return Ok(net),
                Err(DockerError::DockerResponseServerError { message, .. })
                    if message.contains("overlap") =>
                {
                    last = message;
                }
                Err(DockerError::DockerResponseServerError {
                    message,
                    status_code: 409,
                    ..
                }) => {
                    return Err(BackendError::Other(format!(
                        "a cluster named {cluster:?} already exists ({message})"
                    )))
                }
                Err(e) => return Err(engine_error(e)),
            }
        }
        // `last` is empty when every /24 of the pool is already routed on this machine (other
        // networks hold them), so nothing was even tried.
        let why = if last.is_empty() {
            "every /24 in it is already used by a network on this machine".to_string()
        } else {
            format!("the engine said: {last}")
        };
        Err(BackendError::Other(format!(
            "no free /24 left in the subnet pool {} ({why}); remove old clusters (`cluster-sim ls`, `cluster-sim down NAME`, `cluster-sim prune`) or set CLUSTER_SIM_SUBNET_POOL to a larger or other range",
            self.pool
        )))
    }

    async fn create_node(
        &self,
        cluster: &str,
        labels: &HashMap<String, String>,
        n: &NodeLaunch,
    ) -> Result<(), BackendError> {
        let image = self.resolve_image(&n.spec.image).await?;
        let name = container_name(cluster, &n.spec.name);
        let mut labels = labels.clone();
        labels.insert(LABEL_NODE.into(), n.spec.name.clone());
        labels.insert(LABEL_INDEX.into(), n.spec.index.to_string());
        labels.insert(LABEL_ADDRESS.into(), n.address.clone());
        let service = n
            .spec
            .command
            .clone()
            .unwrap_or_else(|| "exec sleep infinity".to_string());
        // Small files travel inside the container's command and are unpacked by the node itself
        // on first start: an archive upload makes the engine mount the container's filesystem,
        // which costs more than everything else cluster-sim does per node. Large ones are
        // uploaded as before.
        let archive = if n.files.is_empty() {
            Vec::new()
        } else {
            files_archive(&[], &n.files)?
        };
        let inline = archive.len() * 4 / 3 < INLINE_FILES_MAX;
        let payload = if inline {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&archive)
        } else {
            String::new()
        };
        let cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            BOOT_SCRIPT.to_string(),
            "cluster-sim-boot".to_string(),
            payload,
            service,
        ];
        let body = ContainerCreateBody {
            image: Some(image),
            hostname: Some(n.spec.name.clone()),
            labels: Some(labels),
            env: Some(n.spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(cmd),
            stop_timeout: Some(i64::from(STOP_GRACE_SECS)),
            exposed_ports: (!n.spec.publish.is_empty())
                .then(|| n.spec.publish.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(HostConfig {
                network_mode: Some(network_name(cluster)),
                // The node image runs tini as its entrypoint; other images get the engine's init
                // so exec'd processes are reaped and signals reach the service.
                init: Some(n.spec.image != NODE_IMAGE),
                // Faults (partitions, loss) are iptables/tc rules inside the node.
                cap_add: Some(vec!["NET_ADMIN".into()]),
                memory: n.spec.limits.memory.map(|m| m as i64),
                nano_cpus: n.spec.limits.cpus.map(|c| (c * 1e9) as i64),
                pids_limit: n.spec.limits.pids,
                // Workspace binaries: the built file itself, read-only (docker/binary.rs).
                binds: super::binary::binds(n),
                // Published ports listen on loopback only, on a port the engine picks.
                port_bindings: (!n.spec.publish.is_empty()).then(|| {
                    n.spec
                        .publish
                        .iter()
                        .map(|p| {
                            (
                                format!("{p}/tcp"),
                                Some(vec![PortBinding {
                                    host_ip: Some("127.0.0.1".into()),
                                    host_port: Some(String::new()),
                                }]),
                            )
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network_name(cluster),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(n.address.clone()),
                            ..Default::default()
                        }),
                        aliases: Some(vec![n.spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                BackendError::Other(format!(
                    "node {}: create container: {}",
                    n.spec.name,
                    engine_error(e)
                ))
            })?;
        tracing::debug!(container = %name, "created");
        if !inline {
            self.put_many(&name, &[DOCKER_WORKDIR], &n.files)
                .await
                .map_err(|e| {
                    BackendError::Other(format!("node {}: place files: {e}", n.spec.name))
                })?;
            tracing::debug!(container = %name, "files uploaded");
        }
        self.docker
            .start_container(&name, None)
            .await
            .map_err(|e| {
                BackendError::Other(format!("node {}: start: {}", n.spec.name, engine_error(e)))
            })?;
        tracing::debug!(container = %name, "started");
        Ok(())
    }

    async fn put(
        &self,
        container: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        self.put_many(container, &[], &[(path.to_string(), data.to_vec(), mode)])
            .await
    }

    /// Uploads directories and files in one archive (one API call however many files).
    async fn put_many(
        &self,
        container: &str,
        dirs: &[&str],
        files: &[(String, Vec<u8>, u32)],
    ) -> Result<(), BackendError> {
        let body = files_archive(dirs, files)?;
        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker
            .upload_to_container(container, Some(opts), bollard::body_full(body.into()))
            .await
            .map_err(|e| self.node_error(e, container))
    }

    fn node_error(&self, e: DockerError, container: &str) -> BackendError {
        if is_not_found(&e) {
            if let DockerError::DockerResponseServerError { message, .. } = &e {
                if message.contains("No such container") {
                    return BackendError::Other(format!("container {container} does not exist"));
                }
            }
        }
        engine_error(e)
    }

    async fn remove_container(&self, name: &str) -> Result<(), BackendError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(name, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // A removal already under way (a concurrent teardown or the reaper) is fine.
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    /// Removes containers and networks of one cluster, by label, in parallel.
    pub(crate) async fn remove_cluster(&self, cluster: &str) -> Result<(), BackendError> {
        let containers = self.containers(Some(cluster)).await?;
        let jobs = containers
            .iter()
            .map(|c| self.remove_container(&c.container));
        let results = futures::future::join_all(jobs).await;
        let mut errors: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        let nets = self.networks().await?;
        for (net, c, _, _) in nets.into_iter().filter(|(_, c, _, _)| c == cluster) {
            let _ = c;
            match self.docker.remove_network(&net).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => errors.push(format!("network {net}: {}", engine_error(e))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Other(format!(
                "teardown of {cluster}: {}",
                errors.join("; ")
            )))
        }
    }

    /// Whether the node's container stops within a few seconds (its service ended).
    async fn exits_soon(&self, cluster: &str, node: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.state(cluster, node).await {
                Ok(NodeState::Exited) => return true,
                Ok(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => return false,
            }
        }
    }

    pub(super) async fn known(&self, cluster: &str, node: &str) -> Result<String, BackendError> {
        let name = container_name(cluster, node);
        match self.docker.inspect_container(&name, None).await {
            Ok(_) => Ok(name),
            Err(e) if is_not_found(&e) => {
                if self.containers(Some(cluster)).await?.is_empty() {
                    Err(BackendError::UnknownCluster(cluster.to_string()))
                } else {
                    Err(BackendError::UnknownNode {
                        cluster: cluster.to_string(),
                        node: node.to_string(),
                    })
                }
            }
            Err(e) => Err(engine_error(e)),
        }
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn faults(&self) -> Option<&dyn crate::fault::FaultBackend> {
        Some(self)
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        keep: bool,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        if spec.nodes.len() > 250 {
            return Err(BackendError::Other(format!(
                "{} nodes do not fit a /24 cluster network (250 at most)",
                spec.nodes.len()
            )));
        }
        // Every image first (building the node image if needed), so a missing one fails
        // before anything exists in the engine.
        let mut images: Vec<&str> = spec.nodes.iter().map(|n| n.image.as_str()).collect();
        images.sort_unstable();
        images.dedup();
        for i in images {
            self.resolve_image(i).await?;
        }
        let labels = cluster_labels(cluster, &spec.source, keep);
        let net = self.create_network(cluster, &labels).await?;
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
        // The network carries the labels chosen at allocation; containers copy them.
        let net = match self
            .docker
            .inspect_network(&network_name(cluster), None)
            .await
        {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => {
                return Err(BackendError::UnknownCluster(cluster.to_string()))
            }
            Err(e) => return Err(engine_error(e)),
        };
        let labels = net.labels.unwrap_or_default();
        let jobs = nodes.iter().map(|n| self.create_node(cluster, &labels, n));
        futures::future::try_join_all(jobs).await?;
        // Binaries must fit the node's glibc before any service runs them.
        self.check_binaries(cluster, nodes).await?;
        // Every node runs: let their services start, together. This also warms each node's
        // exec agent for the readiness checks that follow.
        let go = nodes.iter().map(|n| async move {
            let mut req = ExecRequest::argv(["touch", GO_FILE]);
            req.timeout = Duration::from_secs(30);
            let out = match self.exec(cluster, &n.spec.name, &req).await {
                Ok(out) => out,
                // The signal got through and the service ended at once, taking the node (and
                // the exec) with it: the readiness check reports that, with the node's log.
                Err(e) => {
                    return if self.exits_soon(cluster, &n.spec.name).await {
                        Ok(())
                    } else {
                        Err(e)
                    }
                }
            };
            if out.success() {
                Ok(())
            } else {
                Err(BackendError::Other(format!(
                    "node {}: starting its service: `touch {GO_FILE}` exited {}{}",
                    n.spec.name,
                    out.code,
                    out.tail()
                )))
            }
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
        self.run(cluster, node, req).await
    }

    async fn write_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        let name = self.known(cluster, node).await?;
        self.put(&name, path, data, mode).await
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
        let chunks: Vec<bytes::Bytes> = self
            .docker
            .download_from_container(&name, Some(opts))
            .try_collect()
            .await
            .map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 404, ..
                } => BackendError::Other("no such file".into()),
                e => engine_error(e),
            })?;
        let tarball: Vec<u8> = chunks.concat();
        let mut ar = tar::Archive::new(tarball.as_slice());
        let mut entries = ar
            .entries()
            .map_err(|e| BackendError::Other(format!("bad archive from the engine: {e}")))?;
        let mut entry = entries
            .next()
            .ok_or_else(|| BackendError::Other("empty archive from the engine".into()))?
            .map_err(|e| BackendError::Other(format!("bad archive from the engine: {e}")))?;
        if entry.header().entry_type().is_dir() {
            return Err(BackendError::Other("is a directory".into()));
        }
        let mut data = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| BackendError::Other(format!("bad archive from the engine: {e}")))?;
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
            .map_err(engine_error)?;
        Ok(chunks.into_iter().flat_map(|c| c.into_bytes()).collect())
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
                match d.stop_container(&name, Some(opts)).await {
                    Ok(())
                    | Err(DockerError::DockerResponseServerError {
                        status_code: 304, ..
                    }) => d.start_container(&name, None).await,
                    Err(e) => Err(e),
                }
            }
            NodeAction::Pause => d.pause_container(&name).await,
            NodeAction::Unpause => d.unpause_container(&name).await,
        };
        match r {
            Ok(()) => Ok(()),
            // 304: already in the asked-for state.
            Err(DockerError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        let name = container_name(cluster, node);
        let info = match self.docker.inspect_container(&name, None).await {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => {
                self.known(cluster, node).await?;
                return Err(engine_error(e));
            }
            Err(e) => return Err(engine_error(e)),
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

    async fn destroy(&self, cluster: &str) -> Result<(), BackendError> {
        self.drop_agents(&format!("{cluster}-"));
        self.remove_cluster(cluster).await
    }
}
