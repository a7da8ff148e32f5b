//! Nodes joining and leaving a running docker cluster (`impl Membership`): a new node gets the
//! lowest free address of the cluster's subnet and the network's labels (cluster, owner, run,
//! expiry), so teardown, the reaper and a run's watchdog find it with the rest; whichever
//! process made the cluster. A node leaves by its container's removal.

use async_trait::async_trait;

use super::engine::{classify, DockerBackend, Made, DOCKER_WORKDIR};
use super::labels::{LABEL_ADDRESS, LABEL_CLUSTER, LABEL_NODE};
use super::lookup::ResourceKind;
use super::subnet::Net;
use crate::backend::membership::Membership;
use crate::backend::types::NodeAddr;
use crate::error::BackendError;
use crate::spec::NodeSpec;

#[async_trait]
impl Membership for DockerBackend {
    async fn allocate_node(
        &self,
        cluster: &str,
        node: &NodeSpec,
    ) -> Result<NodeAddr, BackendError> {
        // The image first: a missing one fails before anything changes.
        let image = self.resolve_image(&node.image).await?;
        let found = self
            .resources(&[format!("{LABEL_CLUSTER}={cluster}")])
            .await?
            .remove(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        let net = found
            .resources
            .iter()
            .find(|r| r.kind == ResourceKind::Network)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        let nodes: Vec<_> = found
            .resources
            .iter()
            .filter(|r| r.kind == ResourceKind::Node)
            .collect();
        if nodes.iter().any(|r| r.label(LABEL_NODE) == node.name) {
            return Err(BackendError::refused(
                format!("add node {} to cluster {cluster}", node.name),
                "the cluster already has a node of that name",
            ));
        }
        let info = self
            .docker
            .inspect_network(&net.id, None)
            .await
            .map_err(|e| classify(e).into_backend(format!("inspect network {}", net.name)))?;
        let subnet = info
            .ipam
            .and_then(|i| i.config)
            .into_iter()
            .flatten()
            .find_map(|c| c.subnet.as_deref().and_then(Net::parse))
            .ok_or_else(|| {
                BackendError::refused(
                    format!("add node {} to cluster {cluster}", node.name),
                    format!("network {} has no IPv4 subnet", net.name),
                )
            })?;
        // Addresses held: every node's label (a stopped node keeps its address) and every
        // endpoint the network has.
        let mut used: Vec<String> = nodes
            .iter()
            .map(|r| r.label(LABEL_ADDRESS).to_string())
            .collect();
        used.extend(
            info.containers
                .unwrap_or_default()
                .into_values()
                .filter_map(|e| e.ipv4_address)
                .map(|a| a.split('/').next().unwrap_or_default().to_string()),
        );
        // .0 is the network, .1 the gateway, the last the broadcast address.
        let hosts = (1u32 << (32 - u32::from(subnet.prefix))) - 1;
        let address = (2..hosts)
            .map(|i| subnet.host(i).to_string())
            .find(|a| !used.contains(a))
            .ok_or_else(|| {
                BackendError::refused(
                    format!("add node {} to cluster {cluster}", node.name),
                    format!(
                        "its subnet {subnet} has no free address left ({} nodes)",
                        nodes.len()
                    ),
                )
            })?;
        // `launch` makes containers on this network with these labels: the cluster's own,
        // whichever process made it.
        if let Ok(mut made) = self.made.lock() {
            made.entry(cluster.to_string()).or_insert_with(|| Made {
                net: net.id.clone(),
                labels: net.labels.clone(),
                image,
                copy_binaries: false,
            });
        }
        Ok(NodeAddr {
            name: node.name.clone(),
            address,
            workdir: DOCKER_WORKDIR.to_string(),
        })
    }

    async fn remove_node(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        let id = self.known(cluster, node).await?;
        self.drop_agents(&id);
        self.forget(cluster, Some(node));
        self.remove_container(&id).await
    }
}
