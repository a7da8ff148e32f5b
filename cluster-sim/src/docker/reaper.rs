//! The reaper: removes clusters whose owner process no longer runs (crashed, SIGKILLed, or
//! interrupted harnesses), at every start and on `cluster-sim prune`. Clusters kept on purpose
//! (`cluster-sim up`) are left alone; `cluster-sim down` removes those.

use std::collections::BTreeMap;

use super::backend::DockerBackend;
use super::owner::owner_alive;
use crate::error::BackendError;

impl DockerBackend {
    /// Removes every cluster whose owner is dead and that is not kept. Returns the names removed.
    pub async fn reap(&self) -> Result<Vec<String>, BackendError> {
        // cluster -> (owner, keep), from containers and networks alike: a network may be all that
        // is left of a harness killed between creating it and starting the nodes.
        let mut clusters: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for c in self.containers(None).await? {
            clusters.entry(c.cluster).or_insert((c.owner, c.keep));
        }
        for (_, cluster, owner, keep) in self.networks().await? {
            clusters.entry(cluster).or_insert((owner, keep));
        }
        let dead: Vec<String> = clusters
            .into_iter()
            .filter(|(_, (owner, keep))| !keep && !owner_alive(owner))
            .map(|(name, _)| name)
            .collect();
        let jobs = dead.iter().map(|c| self.remove_cluster(c));
        for r in futures::future::join_all(jobs).await {
            r?;
        }
        Ok(dead)
    }
}
