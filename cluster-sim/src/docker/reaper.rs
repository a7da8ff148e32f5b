//! The reaper: removes clusters whose owner is provably gone (same kernel boot and PID
//! namespace, pid no longer running with its start time) or whose lease has expired, at every
//! harness start and on `cluster-sim prune`. Clusters kept on purpose (`cluster-sim up`, once
//! ready) are left alone; `cluster-sim down` removes those. So is every cluster whose owner
//! can't be judged and whose lease has not run out: a live cluster of a harness in another
//! container must never be touched.

use std::time::SystemTime;

use super::backend::{DockerBackend, LOST_COUNT};
use super::owner::{judge, Verdict};
use crate::error::BackendError;

/// What one reaper pass did.
#[derive(Debug, Clone, Default)]
pub struct Reaped {
    /// Clusters removed.
    pub removed: Vec<String>,
    /// Clusters left alone because nothing proves their owner gone and they carry no expiry
    /// (made by an older version, or `cluster-sim up --hold` in another PID namespace).
    pub unknown: Vec<String>,
    /// Clusters whose network the engine would not remove although nothing is attached
    /// (Docker 20.10 lost count of its endpoints, moby/moby#43286): left until dockerd
    /// restarts, with the reason. Not an error: no run can do anything about them.
    pub stuck: Vec<(String, String)>,
    /// Dead owners' clusters whose removal failed otherwise, with why (the engine's message;
    /// say, a container that is not ours sits on the network). One such cluster never stops
    /// the others from going.
    pub failed: Vec<(String, String)>,
}

impl DockerBackend {
    /// Removes every cluster that is not kept and whose owner is dead or lease expired.
    /// Returns the names removed; one that could not be removed is logged (a warning) and left
    /// for the next reaper, never an error for the rest. Errs only when listing fails.
    pub async fn reap(&self) -> Result<Vec<String>, BackendError> {
        let reaped = self.reap_report().await?;
        for (name, why) in &reaped.failed {
            tracing::warn!("reaper: could not remove {name}: {why}");
        }
        Ok(reaped.removed)
    }

    /// [`DockerBackend::reap`], also naming the clusters it could not judge.
    pub async fn reap_report(&self) -> Result<Reaped, BackendError> {
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
        // Exactly what was judged, by ID: a cluster of the same name made since is not touched.
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
        Ok(out)
    }
}
