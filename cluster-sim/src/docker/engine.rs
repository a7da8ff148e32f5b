//! The engine: the `DockerBackend` struct over bollard's client, connecting to the engine,
//! the images nodes run, and the one place the engine's errors are read ([`classify`]):
//! everything else in `docker/` acts on an [`EngineError`]'s kind, never on its text.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::Docker;

use super::agent::Agent;
use super::subnet::{self, Net};
use crate::error::BackendError;
use crate::image::{ImageBuilder, ImageError, NODE_IMAGE};

/// Each node's cluster working directory (a container belongs to one cluster only).
pub(crate) const DOCKER_WORKDIR: &str = "/var/lib/cluster-sim";

/// Grace period of a graceful stop before the engine SIGKILLs.
pub(super) const STOP_GRACE_SECS: i32 = 10;

/// The docker backend. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DockerBackend {
    pub(super) docker: Docker,
    pub(super) images: Arc<tokio::sync::Mutex<HashMap<String, String>>>,
    pub(super) pool: Net,
    /// Idle exec agents by container ID.
    pub(super) agents: Arc<std::sync::Mutex<HashMap<String, Vec<Agent>>>>,
    /// Node container IDs by cluster, then node (see `lookup.rs`).
    pub(super) ids: Arc<std::sync::Mutex<HashMap<String, HashMap<String, String>>>>,
    /// Clusters this backend allocated: their network and labels, for `launch` and `keep`.
    pub(super) made: Arc<std::sync::Mutex<HashMap<String, Made>>>,
    /// A worker engine of a swarm (`crate::swarm`): the overlay networks it lists belong to
    /// the manager, which alone removes them.
    pub(super) worker: bool,
}

/// What `allocate` made for a cluster.
#[derive(Debug, Clone)]
pub(super) struct Made {
    /// The network's ID (its name may be shared with networks cluster-sim didn't make).
    pub(super) net: String,
    /// The labels every resource of the cluster carries.
    pub(super) labels: HashMap<String, String>,
    /// An image present in the engine, for marker containers.
    pub(super) image: String,
    /// Whether workspace binaries are copied into each node instead of bind-mounted: the
    /// engine is one of several (swarm) and may not see this machine's files.
    pub(super) copy_binaries: bool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Agent")
    }
}

/// What the engine's answer means to this backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineErrorKind {
    /// The engine could not be reached (no socket, connection refused or reset, timeout).
    Unreachable,
    /// 304: already in the asked-for state.
    NotModified,
    /// 404 naming a container: the container is gone.
    NoSuchContainer,
    /// 404 otherwise: no such image, network, exec or path.
    NotFound,
    /// 409: a removal of it is already under way (a concurrent teardown or reaper).
    InProgress,
    /// 409 otherwise: a name in use, a container not running.
    Conflict,
    /// A network still counts endpoints (moby/moby#42119), so it can't be removed yet.
    ActiveEndpoints,
    /// A network's subnet overlaps one the engine already has.
    PoolOverlap,
    /// Anything else.
    Other,
}

/// An engine call's error, classified once.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct EngineError {
    /// What it means here.
    pub(crate) kind: EngineErrorKind,
    /// The engine's own message (what people read).
    pub(crate) message: String,
    /// bollard's error.
    #[source]
    source: DockerError,
}

/// Reads an engine error: the one place in the backend that looks at the engine's message.
pub(crate) fn classify(e: DockerError) -> EngineError {
    use EngineErrorKind::*;
    let (kind, message) = match &e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let says = |s: &str| message.contains(s);
            let kind = match *status_code {
                304 => NotModified,
                404 if says("No such container") => NoSuchContainer,
                404 => NotFound,
                409 if says("already in progress") => InProgress,
                409 => Conflict,
                _ if says("active endpoints") => ActiveEndpoints,
                _ if says("overlap") => PoolOverlap,
                _ => Other,
            };
            (kind, message.clone())
        }
        DockerError::SocketNotFoundError(_)
        | DockerError::HyperResponseError { .. }
        | DockerError::IOError { .. }
        | DockerError::RequestTimeoutError
        | DockerError::HyperLegacyError { .. } => (Unreachable, e.to_string()),
        _ => (Other, e.to_string()),
    };
    EngineError {
        kind,
        message,
        source: e,
    }
}

impl EngineError {
    /// As what a backend reports: an engine that can't be reached says where it was looked
    /// for; any other answer is the engine call `op` that failed.
    pub(crate) fn into_backend(self, op: impl Into<String>) -> BackendError {
        if self.kind != EngineErrorKind::Unreachable {
            return BackendError::engine(op, self);
        }
        let host = std::env::var("DOCKER_HOST");
        match &self.source {
            DockerError::SocketNotFoundError(path) => BackendError::Unreachable {
                what: "cannot reach the Docker engine".into(),
                why: format!(
                    "no socket at {path} (is dockerd running? DOCKER_HOST={})",
                    host.unwrap_or_else(|_| "unset".into())
                ),
            },
            _ => BackendError::Unreachable {
                what: format!(
                    "cannot reach the Docker engine at {}",
                    host.unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
                ),
                why: self.message,
            },
        }
    }
}

/// For `map_err`: an engine call `op` that failed, classified.
pub(crate) fn engine_call(op: impl Into<String>) -> impl FnOnce(DockerError) -> BackendError {
    let op = op.into();
    move |e| classify(e).into_backend(op)
}

pub(super) fn container_name(cluster: &str, node: &str) -> String {
    format!("{cluster}-{node}")
}

pub(super) fn network_name(cluster: &str) -> String {
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
        let docker = Docker::connect_with_defaults().map_err(engine_call("connect"))?;
        Self::over(docker, None).await
    }

    /// Connects to the engine at `endpoint` (`unix:///path` or `tcp://host:port`, no TLS): one
    /// engine of several (the swarm backend). An engine that doesn't answer is one clear error
    /// naming the endpoint.
    pub async fn connect_to(endpoint: &str) -> Result<Self, BackendError> {
        let unreachable = |why: String| BackendError::Unreachable {
            what: format!("cannot reach the Docker engine at {endpoint}"),
            why,
        };
        let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(endpoint, 120, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(BackendError::refused(
                format!("engine endpoint {endpoint:?}"),
                "expected unix:///path or tcp://host:port",
            ));
        }
        .map_err(|e| unreachable(e.to_string()))?;
        Self::over(docker, Some(endpoint)).await
    }

    /// A backend over a connected client (to `endpoint`, or to the default engine): agrees an
    /// API version, reads the subnet pool.
    async fn over(docker: Docker, endpoint: Option<&str>) -> Result<Self, BackendError> {
        let what = match endpoint {
            Some(e) => format!("the Docker engine at {e}"),
            None => "the Docker engine".to_string(),
        };
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| BackendError::Unreachable {
                what: format!("cannot reach {what}"),
                why: "no answer within 10s".into(),
            })?
            .map_err(engine_call("agree an API version"))
            .map_err(|e| match e {
                // Said of the engine asked, not of DOCKER_HOST's.
                BackendError::Unreachable { why, .. } if endpoint.is_some() => {
                    BackendError::Unreachable {
                        what: format!("cannot reach {what}"),
                        why,
                    }
                }
                other => other,
            })?;
        let pool_text = std::env::var("CLUSTER_SIM_SUBNET_POOL")
            .unwrap_or_else(|_| subnet::DEFAULT_POOL.into());
        let pool = Net::parse(&pool_text)
            .filter(|n| n.prefix <= 24)
            .ok_or_else(|| {
                BackendError::refused(
                    format!("CLUSTER_SIM_SUBNET_POOL={pool_text:?}"),
                    "not an IPv4 network of /24 or larger",
                )
            })?;
        Ok(Self {
            docker,
            images: Arc::default(),
            pool,
            agents: Arc::default(),
            ids: Arc::default(),
            made: Arc::default(),
            worker: false,
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
                BackendError::refused(
                    format!("image {NODE_IMAGE}"),
                    "cannot find its definition (docker/node/Dockerfile); set CLUSTER_SIM_IMAGE_DIR",
                )
            })?;
            ImageBuilder::new(dir)
                .ensure(&self.docker)
                .await
                .map_err(|e| BackendError::engine(format!("image {NODE_IMAGE}"), e))?
        } else {
            match self.docker.inspect_image(image).await.map_err(classify) {
                Ok(_) => image.to_string(),
                Err(e) if e.kind == EngineErrorKind::NotFound => {
                    return Err(BackendError::NoImage {
                        image: image.to_string(),
                    })
                }
                Err(e) => return Err(e.into_backend(format!("inspect image {image}"))),
            }
        };
        cache.insert(image.to_string(), tag.clone());
        Ok(tag)
    }

    /// The image a node runs: its spec's image, or, when it lists `packages`, an image derived
    /// from that with them installed (built on first use, then cached in the engine; see
    /// `crate::image::ensure_packages`). `spec` names the file and line of a package apt
    /// can't find.
    pub(super) async fn node_image(
        &self,
        node: &crate::spec::NodeSpec,
        spec: Option<&crate::spec::ClusterSpec>,
    ) -> Result<String, BackendError> {
        let base = self.resolve_image(&node.image).await?;
        if node.packages.is_empty() {
            return Ok(base);
        }
        let mut set = node.packages.clone();
        set.sort_unstable();
        set.dedup();
        let key = format!("{base} + {}", set.join(" "));
        let mut cache = self.images.lock().await;
        if let Some(tag) = cache.get(&key) {
            return Ok(tag.clone());
        }
        let made = crate::image::ensure_packages(&self.docker, &base, &set, false)
            .await
            .map_err(|e| match e {
                ImageError::NoSuchPackage { ref package, .. } => {
                    let place = spec
                        .map(|s| match s.package_lines.get(package) {
                            Some(line) => format!("{}:{line}: key `packages`", s.source),
                            None => format!("{}: key `packages`", s.source),
                        })
                        .unwrap_or_else(|| format!("node {}: packages", node.name));
                    BackendError::refused(place, e.to_string())
                }
                other => {
                    BackendError::engine(format!("image {base} with {}", set.join(" ")), other)
                }
            })?;
        cache.insert(key, made.tag.clone());
        Ok(made.tag)
    }
}
