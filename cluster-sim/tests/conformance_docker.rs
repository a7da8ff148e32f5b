//! The backend conformance suite (`tests/conformance/`) against the docker backend.

mod conformance;

use anyhow::Result;
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::{Cluster, ClusterBuilder};

struct Docker(DockerBackend);

impl conformance::Target for Docker {
    fn kind(&self) -> &'static str {
        "docker"
    }

    async fn up(&self, builder: ClusterBuilder) -> Result<Cluster> {
        Ok(builder
            .backend(std::sync::Arc::new(self.0.clone()))
            .up()
            .await?)
    }

    async fn leftovers(&self, cluster: &str, node: &str, _workdir: &str) -> Result<bool> {
        // A node's working directory lives and dies with its container.
        Ok(self
            .0
            .containers(Some(cluster))
            .await?
            .iter()
            .any(|c| c.node == node))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_docker() -> Result<()> {
    conformance::run_all(&Docker(DockerBackend::connect().await?)).await
}
