//! The backend conformance suite (`tests/conformance/`) against the memory backend, with no
//! engine and no hosts: its nodes are directories and process groups of this machine, so the
//! checks that run no service, no other user and write only in the node's directory
//! (deadlines, file round trips, bounded output). What it refuses is `tests/memory.rs`.

mod conformance;

use anyhow::Result;
use cluster_sim_core::memory::MemoryBackend;
use cluster_sim_core::{Cluster, ClusterBuilder};

struct Memory(std::sync::Arc<MemoryBackend>);

impl conformance::Target for Memory {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn up(&self, builder: ClusterBuilder) -> Result<Cluster> {
        Ok(builder.backend(self.0.clone()).up().await?)
    }

    async fn leftovers(&self, _cluster: &str, _node: &str, workdir: &str) -> Result<bool> {
        // A node's working directory is a directory of this machine.
        Ok(std::path::Path::new(workdir).exists())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_memory() -> Result<()> {
    conformance::run_portable(&Memory(std::sync::Arc::new(MemoryBackend::new()))).await
}
