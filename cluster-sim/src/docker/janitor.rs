//! Cleanup on docker (`Janitor`): the reaper removes clusters whose owner is provably gone
//! (same kernel boot and PID namespace, pid no longer running with its start time) or whose
//! lease has expired, at every harness start and on `cluster-sim prune`; a run's watchdog
//! removes its run's clusters. Clusters kept on purpose (`cluster-sim up`, once ready) are left
//! alone; `cluster-sim down` removes those. So is every cluster whose owner can't be judged and
//! whose lease has not run out: a live cluster of a harness in another container must never be
//! touched.

use std::time::SystemTime;

use async_trait::async_trait;

use super::backend::{DockerBackend, LOST_COUNT};
use super::lookup::{run_filter, ClusterResources};
use crate::backend::janitor::{Janitor, Reaped};
use crate::backend::ownership::{judge, run_id, Verdict};
use crate::error::BackendError;

impl DockerBackend {
    /// Removes the judged clusters, by ID: exactly what was judged, so a cluster of the same
    /// name made since is not touched.
    async fn remove_judged(&self, dead: Vec<(String, ClusterResources)>, out: &mut Reaped) {
        let jobs = dead
            .iter()
            .map(|(c, res)| self.remove_listed(c, &res.resources));
        let results = futures::future::join_all(jobs).await;
        for ((cluster, _), r) in dead.into_iter().zip(results) {
            match r {
                Ok(()) => out.removed.push(cluster),
                Err(e) if e.to_string().contains(LOST_COUNT) => {
                    tracing::debug!("reaper: {e}");
                    out.stuck.push((cluster, e.to_string()));
                }
                Err(e) => out.failed.push((cluster, e.to_string())),
            }
        }
    }
}

#[async_trait]
impl Janitor for DockerBackend {
    async fn reap(&self) -> Result<Reaped, BackendError> {
        // Containers (nodes and markers) and networks alike: a network or a name claim may be
        // all that is left of a harness killed half-way.
        let clusters = self.resources(&[]).await?;
        let now = SystemTime::now();
        let mut out = Reaped::default();
        let mut dead = Vec::new();
        for (name, res) in clusters {
            if res.kept() {
                continue;
            }
            let (owner, expires) = res.owner_and_expiry();
            match judge(owner, expires, now) {
                Verdict::Dead => dead.push((name, res)),
                Verdict::Unknown if expires.is_none() => out.unknown.push(name),
                _ => {}
            }
        }
        self.remove_judged(dead, &mut out).await;
        Ok(out)
    }

    async fn remove_run(&self, run: &str) -> Result<Reaped, BackendError> {
        let found = self.resources(&[run_filter(run)]).await?;
        let mut out = Reaped::default();
        let mine: Vec<_> = found.into_iter().filter(|(_, r)| !r.kept()).collect();
        self.remove_judged(mine, &mut out).await;
        Ok(out)
    }

    async fn remove_own(&self, cluster: &str) -> Result<(), BackendError> {
        self.forget(cluster, None);
        self.remove_cluster(cluster, Some(run_id())).await
    }
}
