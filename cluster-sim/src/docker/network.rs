//! A cluster's name claim and network: the claim container that reserves the name, the
//! marker containers, the bridge network on a subnet of its own, and finding what `allocate`
//! made again.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::CreateContainerOptionsBuilder;

use super::engine::{
    classify, marker_name, network_name, DockerBackend, EngineError, EngineErrorKind, Made,
};
use super::labels::{LABEL_CLUSTER, LABEL_KEEP, LABEL_MARKER};
use super::lookup::{run_filter, ResourceKind};
use super::subnet::{self, Net};
use crate::backend::ownership::run_id;
use crate::error::BackendError;

/// Why a network could not be removed: what the teardown reports, and whether the engine lost
/// count of the network's endpoints (Docker 20.10, moby/moby#43286), which no run can fix.
#[derive(Debug)]
pub(super) struct NetworkStuck {
    /// One line for people.
    pub(super) why: String,
    /// Nothing is attached, yet the engine counts endpoints: stuck until dockerd restarts.
    pub(super) lost_count: bool,
}

impl DockerBackend {
    /// Reserves the cluster's name: a container named `{cluster}.claim`, created and never
    /// started. Container names are the one name the engine reserves atomically (network names
    /// are checked, at best, on a best-effort basis, and a volume create of an existing name
    /// returns the existing volume), so of two `up --name x` exactly one gets here.
    pub(super) async fn claim(
        &self,
        cluster: &str,
        image: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, BackendError> {
        self.marker(cluster, "claim", image, labels)
            .await
            .map_err(|e| match e.kind {
                EngineErrorKind::Conflict => BackendError::NameTaken {
                    cluster: cluster.to_string(),
                    held_by: Some(format!(
                        "its name is held by container {}; cluster-sim down {cluster}",
                        marker_name(cluster, "claim")
                    )),
                },
                _ => e.into_backend(format!("cluster {cluster:?}: reserving its name")),
            })
    }

    /// Creates (never starts) a marker container `{cluster}.{role}` with the cluster's labels.
    pub(super) async fn marker(
        &self,
        cluster: &str,
        role: &str,
        image: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, EngineError> {
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
        Ok(self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(classify)?
            .id)
    }

    /// Creates the cluster's network, a /24 or larger for more than 250 nodes
    /// (`subnet::prefix_for`); returns its subnet and ID.
    pub(super) async fn create_network(
        &self,
        cluster: &str,
        prefix: u8,
        labels: &HashMap<String, String>,
    ) -> Result<(Net, String), BackendError> {
        self.create_on_free_subnet(cluster, prefix, "network", |net| NetworkCreateRequest {
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
        })
        .await
    }

    /// Creates the cluster's network `what` ("network", "overlay network") from `request` on the
    /// first free /`prefix` of the subnet pool the engine accepts (up to 64 tries, in an order
    /// seeded by the cluster and this process); returns its subnet and ID.
    pub(super) async fn create_on_free_subnet(
        &self,
        cluster: &str,
        prefix: u8,
        what: &str,
        request: impl Fn(Net) -> NetworkCreateRequest,
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
            let req = request(net);
            match self.docker.create_network(req).await.map_err(classify) {
                Ok(r) => return Ok((net, r.id)),
                Err(e) if e.kind == EngineErrorKind::PoolOverlap => last = e.message,
                Err(e) if e.kind == EngineErrorKind::Conflict => {
                    return Err(BackendError::NameTaken {
                        cluster: cluster.to_string(),
                        held_by: Some(e.message),
                    })
                }
                Err(e) => {
                    return Err(e.into_backend(format!("create {what} {}", network_name(cluster))))
                }
            }
        }
        // `last` is empty when every /N of the pool is already routed on this machine (other
        // networks hold them), so nothing was even tried.
        let why = if last.is_empty() {
            format!("every /{prefix} in it is already used by a network on this machine")
        } else {
            format!("the engine said: {last}")
        };
        Err(BackendError::refused(
            format!("a {what} for cluster {cluster:?}"),
            format!(
                "no free /{prefix} left in the subnet pool {} ({why}); remove old clusters (`cluster-sim ls`, `cluster-sim down NAME`, `cluster-sim prune`) or set CLUSTER_SIM_SUBNET_POOL to a larger or other range",
                self.pool
            ),
        ))
    }

    /// Removes a network once its containers are gone. The engine (libnetwork) sometimes still
    /// counts an endpoint of a container it has just removed ("has active endpoints",
    /// moby/moby#42119) and settles a moment later: after containers were removed (`settle`), that
    /// answer is retried for a few seconds. Without, it is final at once: a count the engine
    /// lost for good (the reaper meets such networks at every start) must not cost each start
    /// the wait.
    pub(super) async fn remove_network(&self, id: &str, settle: bool) -> Result<(), NetworkStuck> {
        let wait = if settle {
            Duration::from_secs(10)
        } else {
            Duration::ZERO
        };
        let deadline = std::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(50);
        loop {
            let e = match self.docker.remove_network(id).await.map_err(classify) {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            match e.kind {
                EngineErrorKind::NotFound => return Ok(()),
                EngineErrorKind::ActiveEndpoints
                    if std::time::Instant::now() + pause < deadline =>
                {
                    tracing::debug!(network = id, "{e}; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                EngineErrorKind::ActiveEndpoints => {
                    let message = e.message;
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
                        return Err(NetworkStuck {
                            why: format!(
                                "{message}: still attached: {} (not made by this cluster; \
                                 `docker network disconnect` it, then `cluster-sim prune`)",
                                attached.join(", ")
                            ),
                            lost_count: false,
                        });
                    }
                    return Err(NetworkStuck {
                        why: format!(
                            "{message}; nothing is attached, so the engine has lost count of its \
                             endpoints (a Docker 20.10 bug, moby/moby#43286): the network goes \
                             with a restart of dockerd (`cluster-sim prune` tries again)"
                        ),
                        lost_count: true,
                    });
                }
                _ => {
                    return Err(NetworkStuck {
                        why: e.message,
                        lost_count: false,
                    })
                }
            }
        }
    }

    /// What `allocate` made for `cluster`: remembered, else found by label (this run's network
    /// of that cluster).
    pub(super) async fn made_for(&self, cluster: &str) -> Result<Made, BackendError> {
        if let Some(m) = self.made.lock().ok().and_then(|m| m.get(cluster).cloned()) {
            return Ok(m);
        }
        let found = self
            .resources(&[format!("{LABEL_CLUSTER}={cluster}"), run_filter(run_id())])
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
            copy_binaries: false,
        })
    }
}
