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
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder,
    DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures::{StreamExt, TryStreamExt};

use super::agent::Agent;
use super::labels::{
    cluster_labels, LABEL_ADDRESS, LABEL_CLUSTER, LABEL_INDEX, LABEL_KEEP, LABEL_MARKER,
    LABEL_NODE, LABEL_ROLES,
};
use super::lookup::{run_filter, Resource, ResourceKind};
use super::subnet::{self, Net};
use crate::backend::contract::Backend;
use crate::backend::types::{Lease, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::image::{ImageBuilder, NODE_IMAGE};
use crate::spec::ClusterSpec;

/// Each node's cluster working directory (a container belongs to one cluster only).
pub(crate) const DOCKER_WORKDIR: &str = "/var/lib/cluster-sim";

/// Most bytes of base64 carried in a container's command (one argument may hold 128 KiB).
const INLINE_FILES_MAX: usize = 96 * 1024;

/// A node's first process: on first start, makes the working directory, unpacks the files
/// carried in `$1` (base64 of a tar) and waits for the go signal (a line cluster-sim writes to
/// the container's stdin once every node of the cluster runs), then runs the service (`$2`)
/// with stdin from `/dev/null`. A restart skips all that, so files the test changed stay
/// changed.
///
/// The go signal starts the services of a cluster together: peers are reachable from each
/// service's first moment, which is how clustered software expects to bootstrap (etcd, for one,
/// skips most of its first election timeout only when its peers answer at start). Waiting is a
/// blocking `read` (no polling: 200 waiting nodes cost no CPU while the engine starts the
/// rest), and the signal is one attach per node, not an exec: no process is started for it.
/// End of input without the line (stdin closed) starts the service too.
const BOOT_SCRIPT: &str = r#"if [ ! -e /.cluster-sim-booted ]; then
  mkdir -p /var/lib/cluster-sim || exit 1
  if [ -n "$1" ]; then printf '%s' "$1" | base64 -d | tar -x -C / || exit 1; fi
  read -r _ || :
  : > /.cluster-sim-booted
fi
exec < /dev/null
# CLUSTER_SIM_FAKETIME=1 preloads libfaketime into the service (and only the service), its
# offset read from a file docker/fault.rs writes, so a clock fault can skew it at run time.
# Opt-in: libfaketime deadlocks programs linked with jemalloc (Debian's redis-server).
if [ "${CLUSTER_SIM_FAKETIME:-0}" = 1 ]; then
  for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e "$f" ] && export LD_PRELOAD="$f" FAKETIME_TIMESTAMP_FILE=/dev/shm/cluster-sim/faketime FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1; done
fi
exec sh -c "$2""#;

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

/// Most nodes a cluster creates and starts at once (docker-compose's default parallel limit).
/// The engine's work per container is CPU (dockerd, containerd, runc, fuse-overlayfs, the
/// kernel's veth set-up), so the bound only keeps a 1,000-node cluster from opening 1,000
/// connections; at 50 nodes on 2 cores, 16 and 64 in flight were within noise (`BENCHMARKS.md`).
const START_CALLS: usize = 64;

/// Most nodes a teardown removes at once, once every node is killed.
const REMOVE_CALLS: usize = 16;

/// How a teardown error says the engine lost count of a network's endpoints (the reaper
/// reports such clusters instead of failing).
pub(super) const LOST_COUNT: &str = "lost count of its endpoints";

/// Grace period of a graceful stop before the engine SIGKILLs.
const STOP_GRACE_SECS: i32 = 10;

/// The docker backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    pub(super) docker: Docker,
    images: Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    pool: Net,
    /// Idle exec agents by container ID.
    pub(super) agents: Arc<std::sync::Mutex<HashMap<String, Vec<Agent>>>>,
    /// Node container IDs by cluster, then node (see `lookup.rs`).
    pub(super) ids: Arc<std::sync::Mutex<HashMap<String, HashMap<String, String>>>>,
    /// Clusters this backend allocated: their network and labels, for `launch` and `keep`.
    made: Arc<std::sync::Mutex<HashMap<String, Made>>>,
}

/// What `allocate` made for a cluster.
#[derive(Debug, Clone)]
struct Made {
    /// The network's ID (its name may be shared with networks cluster-sim didn't make).
    net: String,
    /// The labels every resource of the cluster carries.
    labels: HashMap<String, String>,
    /// An image present in the engine, for marker containers.
    image: String,
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
        DockerError::SocketNotFoundError(path) => BackendError::Unreachable {
            what: "cannot reach the Docker engine".into(),
            why: format!(
                "no socket at {path} (is dockerd running? DOCKER_HOST={})",
                std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unset".into())
            ),
        },
        DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::HyperLegacyError { .. } => BackendError::Unreachable {
            what: format!(
                "cannot reach the Docker engine at {}",
                std::env::var("DOCKER_HOST")
                    .unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
            ),
            why: e.to_string(),
        },
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

/// A marker container's name: `{cluster}.claim` or `{cluster}.kept`. The dot keeps it apart
/// from node containers (`{cluster}-{node}`).
pub(super) fn marker_name(cluster: &str, role: &str) -> String {
    format!("{cluster}.{role}")
}

impl DockerBackend {
    /// Connects to the engine (`DOCKER_HOST`, else the local socket) and agrees an API version.
    /// An engine that doesn't answer is one clear error, not a panic.
    pub async fn connect() -> Result<Self, BackendError> {
        let docker = Docker::connect_with_defaults().map_err(engine_error)?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| BackendError::Unreachable {
                what: "cannot reach the Docker engine".into(),
                why: "no answer within 10s".into(),
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
            ids: Arc::default(),
            made: Arc::default(),
        })
    }

    /// The bollard client, for callers that need the engine directly (image builds).
    pub fn client(&self) -> &Docker {
        &self.docker
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

    /// Reserves the cluster's name: a container named `{cluster}.claim`, created and never
    /// started. Container names are the one name the engine reserves atomically (network names
    /// are checked, at best, on a best-effort basis, and a volume create of an existing name
    /// returns the existing volume), so of two `up --name x` exactly one gets here.
    async fn claim(
        &self,
        cluster: &str,
        image: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, BackendError> {
        self.marker(cluster, "claim", image, labels)
            .await
            .map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 409, ..
                } => BackendError::Other(format!(
                    "a cluster named {cluster:?} already exists (its name is held by container {}; cluster-sim down {cluster})",
                    marker_name(cluster, "claim")
                )),
                e => BackendError::Other(format!(
                    "cluster {cluster:?}: reserving its name: {}",
                    engine_error(e)
                )),
            })
    }

    /// Creates (never starts) a marker container `{cluster}.{role}` with the cluster's labels.
    async fn marker(
        &self,
        cluster: &str,
        role: &str,
        image: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, DockerError> {
        let mut labels = labels.clone();
        labels.insert(LABEL_MARKER.into(), role.into());
        if role == "kept" {
            labels.insert(LABEL_KEEP.into(), "true".into());
        }
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels),
            cmd: Some(vec!["true".into()]),
            entrypoint: Some(vec![]),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = marker_name(cluster, role);
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        Ok(self.docker.create_container(Some(opts), body).await?.id)
    }

    /// Creates the cluster's network, a /24 or larger for more than 250 nodes
    /// (`subnet::prefix_for`); returns its subnet and ID.
    async fn create_network(
        &self,
        cluster: &str,
        prefix: u8,
        labels: &HashMap<String, String>,
    ) -> Result<(Net, String), BackendError> {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(cluster.as_bytes());
        h.write_u32(std::process::id());
        let routes = subnet::host_routes();
        let mut last = String::new();
        for (tries, net) in subnet::candidates(&self.pool, prefix, h.finish(), &routes)
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
                Ok(r) => return Ok((net, r.id)),
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
        // `last` is empty when every /N of the pool is already routed on this machine (other
        // networks hold them), so nothing was even tried.
        let why = if last.is_empty() {
            format!("every /{prefix} in it is already used by a network on this machine")
        } else {
            format!("the engine said: {last}")
        };
        Err(BackendError::Other(format!(
            "no free /{prefix} left in the subnet pool {} ({why}); remove old clusters (`cluster-sim ls`, `cluster-sim down NAME`, `cluster-sim prune`) or set CLUSTER_SIM_SUBNET_POOL to a larger or other range",
            self.pool
        )))
    }

    async fn create_node(
        &self,
        cluster: &str,
        made: &Made,
        n: &NodeLaunch,
    ) -> Result<(), BackendError> {
        let labels = &made.labels;
        let image = self.resolve_image(&n.spec.image).await?;
        let name = container_name(cluster, &n.spec.name);
        let mut labels = labels.clone();
        labels.insert(LABEL_NODE.into(), n.spec.name.clone());
        labels.insert(LABEL_INDEX.into(), n.spec.index.to_string());
        labels.insert(LABEL_ADDRESS.into(), n.address.clone());
        labels.insert(LABEL_ROLES.into(), n.spec.roles.join(","));
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
            // The go signal arrives on stdin (`BOOT_SCRIPT`); the engine closes it once the one
            // attach that sends it ends.
            open_stdin: Some(true),
            stdin_once: Some(true),
            stop_timeout: Some(i64::from(STOP_GRACE_SECS)),
            exposed_ports: (!n.spec.publish.is_empty())
                .then(|| n.spec.publish.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(HostConfig {
                network_mode: Some(made.net.clone()),
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
                    made.net.clone(),
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
        let id = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                BackendError::Other(format!(
                    "node {}: create container {name}: {}",
                    n.spec.name,
                    engine_error(e)
                ))
            })?
            .id;
        // Made here, so known without asking the engine again.
        self.remember_id(cluster, &n.spec.name, &id);
        tracing::debug!(container = %name, "created");
        if !inline {
            self.put_many(&id, &[DOCKER_WORKDIR], &n.files)
                .await
                .map_err(|e| {
                    BackendError::Other(format!("node {}: place files: {e}", n.spec.name))
                })?;
            tracing::debug!(container = %name, "files uploaded");
        }
        self.docker.start_container(&id, None).await.map_err(|e| {
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

    /// SIGKILLs a container, quietly: one that is not running (a marker, a stopped node) or is
    /// gone is what removal wants anyway, and removal reports the real errors.
    async fn kill_container(&self, id: &str) {
        let opts = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        if let Err(e) = self.docker.kill_container(id, Some(opts)).await {
            tracing::debug!(container = id, "kill before removal: {e}");
        }
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

    /// Removes a network once its containers are gone. The engine (libnetwork) sometimes still
    /// counts an endpoint of a container it has just removed ("has active endpoints",
    /// moby/moby#42119) and settles a moment later: after containers were removed (`settle`), that
    /// answer is retried for a few seconds. Without, it is final at once: a count the engine
    /// lost for good (the reaper meets such networks at every start) must not cost each start
    /// the wait.
    async fn remove_network(&self, id: &str, settle: bool) -> Result<(), BackendError> {
        let wait = if settle {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        let deadline = std::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(50);
        loop {
            match self.docker.remove_network(id).await {
                Ok(()) => return Ok(()),
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(DockerError::DockerResponseServerError { message, .. })
                    if message.contains("active endpoints")
                        && std::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!(network = id, "{message}; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(DockerError::DockerResponseServerError { message, .. })
                    if message.contains("active endpoints") =>
                {
                    // Something is still attached (not ours: ours went first), or nothing is and
                    // the engine lost count.
                    let attached: Vec<String> = self
                        .docker
                        .inspect_network(id, None)
                        .await
                        .ok()
                        .and_then(|n| n.containers)
                        .map(|c| c.into_values().filter_map(|e| e.name).collect())
                        .unwrap_or_default();
                    if !attached.is_empty() {
                        return Err(BackendError::Other(format!(
                            "{message}: still attached: {} (not made by this cluster; \
                             `docker network disconnect` it, then `cluster-sim prune`)",
                            attached.join(", ")
                        )));
                    }
                    return Err(BackendError::Other(format!(
                        "{message}; nothing is attached, so the engine has {LOST_COUNT} \
                         (a Docker 20.10 bug, moby/moby#43286): the network goes with a restart \
                         of dockerd (`cluster-sim prune` tries again)"
                    )));
                }
                Err(e) => return Err(engine_error(e)),
            }
        }
    }

    /// Removes what the engine holds of one cluster (of one run only, given `run`): found by
    /// label, removed by ID. Nodes and the kept marker go first (every node SIGKILLed at once, so
    /// no stop timeout is waited out, then force-removed `REMOVE_CALLS` at a time), then the
    /// network,
    /// and the name claim last, so the name stays taken until nothing else of the cluster is
    /// left (a new cluster of that name can't be mistaken for this one's remains).
    pub(crate) async fn remove_cluster(
        &self,
        cluster: &str,
        run: Option<&str>,
    ) -> Result<(), BackendError> {
        let mut filters = vec![format!("{LABEL_CLUSTER}={cluster}")];
        if let Some(run) = run {
            filters.push(run_filter(run));
        }
        let found = self.resources(&filters).await?;
        let all: Vec<Resource> = found.into_values().flat_map(|c| c.resources).collect();
        self.remove_listed(cluster, &all).await
    }

    /// Removes the listed resources of one cluster, by ID (see `remove_cluster` for the order).
    pub(super) async fn remove_listed(
        &self,
        cluster: &str,
        all: &[Resource],
    ) -> Result<(), BackendError> {
        let is_claim = |r: &Resource| r.label(LABEL_MARKER) == "claim";
        let mut errors: Vec<String> = Vec::new();
        // Owned (ID, name) pairs: the stream below must not borrow through closures.
        let containers: Vec<(String, String)> = all
            .iter()
            .filter(|r| r.kind != ResourceKind::Network && !is_claim(r))
            .map(|r| (r.id.clone(), r.name.clone()))
            .collect();
        // Every node is killed at once first, so the engine releases their network endpoints
        // together (in bounded batches, its endpoint count went wrong far more often: the
        // network then can't be removed until dockerd restarts), then removed in batches.
        let kills = containers.iter().map(|(id, _)| self.kill_container(id));
        futures::future::join_all(kills).await;
        let removed: Vec<Result<(), String>> = futures::stream::iter(containers)
            .map(|(id, name)| async move {
                self.remove_container(&id)
                    .await
                    .map_err(|e| format!("container {name}: {e}"))
            })
            .buffer_unordered(REMOVE_CALLS)
            .collect()
            .await;
        let settle = !removed.is_empty();
        errors.extend(removed.into_iter().filter_map(Result::err));
        for net in all.iter().filter(|r| r.kind == ResourceKind::Network) {
            if let Err(e) = self.remove_network(&net.id, settle).await {
                errors.push(format!("network {}: {e}", net.name));
            }
        }
        if errors.is_empty() {
            for claim in all.iter().filter(|r| is_claim(r)) {
                if let Err(e) = self.remove_container(&claim.id).await {
                    errors.push(format!("container {}: {e}", claim.name));
                }
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

    /// The error for a node whose cached container the engine no longer knows: the ID is
    /// forgotten and the node looked up again by label, to say what is missing.
    pub(super) async fn gone(&self, cluster: &str, node: &str) -> BackendError {
        self.forget(cluster, Some(node));
        match self.known(cluster, node).await {
            Err(e) => e,
            Ok(_) => BackendError::Other(format!(
                "node {node} of {cluster}: its container was replaced; try again"
            )),
        }
    }

    /// What `allocate` made for `cluster`: remembered, else found by label (this run's network
    /// of that cluster).
    async fn made_for(&self, cluster: &str) -> Result<Made, BackendError> {
        if let Some(m) = self.made.lock().ok().and_then(|m| m.get(cluster).cloned()) {
            return Ok(m);
        }
        let found = self
            .resources(&[
                format!("{LABEL_CLUSTER}={cluster}"),
                run_filter(crate::backend::ownership::run_id()),
            ])
            .await?;
        let res = found.into_values().flat_map(|c| c.resources);
        let (mut net, mut image) = (None, String::new());
        for r in res {
            if r.kind == ResourceKind::Network {
                net = Some(r);
            } else if image.is_empty() {
                if let Ok(i) = self.docker.inspect_container(&r.id, None).await {
                    image = i.image.unwrap_or_default();
                }
            }
        }
        let net = net.ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        Ok(Made {
            labels: net.labels.clone(),
            net: net.id,
            image,
        })
    }

    /// Sends a node its go signal: one line on the container's stdin, through an attach (no
    /// exec, so no process starts in the node for it). The attach ends at once; the engine then
    /// closes the container's stdin (`stdin_once`).
    async fn go(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        use tokio::io::AsyncWriteExt;
        let id = self.known(cluster, node).await?;
        let opts = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stream(true)
            .build();
        let sent = async {
            let mut attached = self.docker.attach_container(&id, Some(opts)).await?;
            attached.input.write_all(b"go\n").await?;
            attached.input.flush().await?;
            attached.input.shutdown().await?;
            Ok::<(), DockerError>(())
        };
        match tokio::time::timeout(Duration::from_secs(30), sent).await {
            Ok(Ok(())) => Ok(()),
            // The node stopped before the signal (its files did not unpack, say): the readiness
            // check reports that, with the node's log.
            Ok(Err(_)) | Err(_) if self.exits_soon(cluster, node).await => Ok(()),
            Ok(Err(e)) => Err(BackendError::Other(format!(
                "node {node}: starting its service: {}",
                engine_error(e)
            ))),
            Err(_) => Err(BackendError::Other(format!(
                "node {node}: starting its service: the engine did not take the go signal within 30s"
            ))),
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
}

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
                BackendError::Other(format!(
                    "{} nodes do not fit the subnet pool {} (CLUSTER_SIM_SUBNET_POOL; a /{} holds {} nodes): use a larger pool",
                    spec.nodes.len(),
                    self.pool,
                    self.pool.prefix,
                    subnet::capacity(self.pool.prefix)
                ))
            })?;
        // Every image first (building the node image if needed), so a missing one fails
        // before anything exists in the engine.
        let mut images: Vec<&str> = spec.nodes.iter().map(|n| n.image.as_str()).collect();
        images.sort_unstable();
        images.dedup();
        let mut image = String::new();
        for i in images {
            image = self.resolve_image(i).await?;
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
            Err(BackendError::Other(m)) if m.contains("does not exist") => {
                Err(self.gone(cluster, node).await)
            }
            r => r,
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
        let chunks: Result<Vec<bytes::Bytes>, BackendError> = self
            .docker
            .download_from_container(&name, Some(opts))
            .try_collect()
            .await
            .map_err(|e| match e {
                DockerError::DockerResponseServerError {
                    status_code: 404,
                    message,
                } if !message.contains("No such container") => {
                    BackendError::Other("no such file".into())
                }
                e => engine_error(e),
            });
        let chunks = match chunks {
            Ok(c) => c,
            Err(e) if e.to_string().contains("No such container") => {
                return Err(self.gone(cluster, node).await)
            }
            Err(e) => return Err(e),
        };
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
            Err(e) if is_not_found(&e) => Err(self.gone(cluster, node).await),
            Err(e) => Err(engine_error(e)),
        }
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        let id = self.known(cluster, node).await?;
        let info = match self.docker.inspect_container(&id, None).await {
            Ok(i) => i,
            Err(e) if is_not_found(&e) => return Err(self.gone(cluster, node).await),
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
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(BackendError::Other(format!(
                "cluster {cluster}: marking it kept: {}",
                engine_error(e)
            ))),
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
