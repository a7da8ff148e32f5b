//! One engine of several: what the swarm backend (`crate::swarm`) asks of each engine it
//! places nodes on. Everything else it needs is this backend's own `impl Backend`, one
//! `DockerBackend` per engine: a node's exec, files, logs, lifecycle and faults go to the
//! engine that holds it unchanged.
//!
//! The differences from a cluster on one engine: the network is one attachable overlay made
//! through the swarm's manager (node addresses above a low range the engines' own endpoints
//! take), binaries are copied in (the engine may not see this machine's files), the name claim
//! lives on the manager only, and a worker engine never removes the overlay network.

use std::collections::HashMap;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

use super::engine::{network_name, DockerBackend, EngineErrorKind, Made};
use super::labels::{keep_mark_labels, LABEL_MARKER};
use super::node::START_CALLS;
use super::subnet::{self, Net};
use crate::backend::types::{KeepMark, NodeLaunch};
use crate::error::BackendError;

/// Addresses of an overlay network's low range that the engines take for their own endpoints
/// (one per engine the network spans, plus the gateway); nodes are placed above it.
pub(crate) const OVERLAY_RESERVED: u32 = 64;

/// The overlay's MTU: VXLAN's 50 bytes on top still fit a 1500-byte link between engines.
const OVERLAY_MTU: &str = "1450";

impl DockerBackend {
    /// This backend as a worker engine of a swarm: it leaves overlay networks to the manager.
    pub(crate) fn into_worker(mut self) -> Self {
        self.worker = true;
        self
    }

    /// Reserves the cluster's name on this engine (its `{cluster}.claim` marker).
    pub(crate) async fn claim_name(
        &self,
        cluster: &str,
        image: &str,
        labels: &HashMap<String, String>,
    ) -> Result<String, BackendError> {
        self.claim(cluster, image, labels).await
    }

    /// Creates the cluster's attachable overlay network through this engine (a swarm manager)
    /// on a free block of the subnet pool big enough for `nodes` nodes above the reserved low
    /// range; returns the block and the network's ID.
    pub(crate) async fn create_overlay(
        &self,
        cluster: &str,
        nodes: usize,
        labels: &HashMap<String, String>,
    ) -> Result<(Net, String), BackendError> {
        let prefix = subnet::prefix_for(nodes + OVERLAY_RESERVED as usize)
            .filter(|&p| p >= self.pool.prefix)
            .ok_or_else(|| {
                BackendError::refused(
                    format!("cluster {cluster:?}"),
                    format!(
                        "{nodes} nodes do not fit the subnet pool {} (CLUSTER_SIM_SUBNET_POOL): use a larger pool",
                        self.pool
                    ),
                )
            })?;
        self.create_on_free_subnet(cluster, prefix, "overlay network", |net| {
            // Dynamic addresses (the engines' endpoints) come from the low range only.
            let low = Net {
                addr: net.addr,
                prefix: 26.max(net.prefix),
            };
            NetworkCreateRequest {
                name: network_name(cluster),
                driver: Some("overlay".into()),
                attachable: Some(true),
                labels: Some(labels.clone()),
                options: Some(HashMap::from([(
                    "com.docker.network.driver.mtu".to_string(),
                    OVERLAY_MTU.to_string(),
                )])),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(net.to_string()),
                        ip_range: Some(low.to_string()),
                        gateway: Some(net.host(1).to_string()),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .await
    }

    /// Records what the swarm backend made for `cluster` on this engine: nodes join network
    /// `net` (an overlay's ID) and carry `labels`; binaries are copied in.
    pub(crate) fn adopt(
        &self,
        cluster: &str,
        net: &str,
        labels: &HashMap<String, String>,
        image: &str,
    ) {
        if let Ok(mut made) = self.made.lock() {
            made.insert(
                cluster.to_string(),
                Made {
                    net: net.to_string(),
                    labels: labels.clone(),
                    image: image.to_string(),
                    copy_binaries: true,
                },
            );
        }
    }

    /// Uses `tag` for image `reference` on this engine (the swarm backend sent it here), so
    /// this engine never builds the node image itself.
    pub(crate) async fn preset_image(&self, reference: &str, tag: &str) {
        self.images
            .lock()
            .await
            .insert(reference.to_string(), tag.to_string());
    }

    /// Creates and starts this engine's nodes of an adopted cluster and checks their binaries;
    /// their services wait for [`DockerBackend::go_nodes`].
    pub(crate) async fn start_nodes(
        &self,
        cluster: &str,
        nodes: &[NodeLaunch],
    ) -> Result<(), BackendError> {
        let made = self.made_for(cluster).await?;
        let calls = tokio::sync::Semaphore::new(START_CALLS);
        let jobs = nodes.iter().map(|n| async {
            let _call = calls.acquire().await;
            self.create_node(cluster, &made, n).await
        });
        futures::future::try_join_all(jobs).await?;
        self.check_binaries(cluster, nodes).await
    }

    /// Sends this engine's nodes their go signal.
    pub(crate) async fn go_nodes(
        &self,
        cluster: &str,
        nodes: &[NodeLaunch],
    ) -> Result<(), BackendError> {
        let go = nodes
            .iter()
            .map(|n| async move { self.go(cluster, &n.spec.name).await });
        futures::future::try_join_all(go).await.map(|_| ())
    }

    /// Removes what this engine holds of `cluster` (of run `run` only, given one) and forgets
    /// it. On a worker the overlay network is left to the manager.
    pub(crate) async fn remove_part(
        &self,
        cluster: &str,
        run: Option<&str>,
    ) -> Result<(), BackendError> {
        for id in self.cached_ids(cluster) {
            self.drop_agents(&id);
        }
        self.forget(cluster, None);
        if let Ok(mut made) = self.made.lock() {
            made.remove(cluster);
        }
        self.remove_cluster(cluster, run).await
    }

    /// Marks `cluster` kept on this engine (its `{cluster}.kept` marker), with the labels its
    /// containers here carry; nothing when it has none here.
    pub(crate) async fn mark_kept(
        &self,
        cluster: &str,
        mark: &KeepMark,
    ) -> Result<(), BackendError> {
        let found = self
            .resources(&[format!("{}={cluster}", super::labels::LABEL_CLUSTER)])
            .await?;
        let Some(res) = found.get(cluster) else {
            return Ok(());
        };
        if res.kept() {
            return Ok(());
        }
        // A node's labels, else the name claim's (the manager may hold no node).
        let Some(node) = res
            .resources
            .iter()
            .find(|r| r.kind == super::lookup::ResourceKind::Node)
            .or_else(|| {
                res.resources
                    .iter()
                    .find(|r| r.kind == super::lookup::ResourceKind::Marker)
            })
        else {
            return Ok(());
        };
        let image = self
            .docker
            .inspect_container(&node.id, None)
            .await
            .ok()
            .and_then(|c| c.image)
            .unwrap_or_default();
        let keep = [
            super::labels::LABEL_CLUSTER,
            super::labels::LABEL_OWNER,
            super::labels::LABEL_RUN,
            super::labels::LABEL_SPEC,
            super::labels::LABEL_EXPIRES,
        ];
        let mut labels: HashMap<String, String> = node
            .labels
            .iter()
            .filter(|(k, _)| keep.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.remove(LABEL_MARKER);
        labels.extend(keep_mark_labels(mark));
        match self.marker(cluster, "kept", &image, &labels).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == EngineErrorKind::Conflict => Ok(()),
            Err(e) => Err(e.into_backend(format!("cluster {cluster}: marking it kept"))),
        }
    }
}
