//! Removing a cluster from the engine: found by label, removed by ID. Nodes and the kept marker
//! go first (every node SIGKILLed at once, then force-removed `REMOVE_CALLS` at a time), then
//! the network, and the name claim last, so the name stays taken until nothing else of the
//! cluster is left.

use bollard::query_parameters::{KillContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures::StreamExt;

use super::engine::{classify, DockerBackend, EngineErrorKind};
use super::labels::{LABEL_CLUSTER, LABEL_MARKER};
use super::lookup::{run_filter, Resource, ResourceKind};
use crate::error::BackendError;

/// Most nodes a teardown removes at once, once every node is killed.
const REMOVE_CALLS: usize = 16;

/// What a teardown could not remove, each with why; the cluster's claim stays while anything
/// else does.
#[derive(Debug)]
pub(crate) struct TeardownError {
    /// `container x: why` and `network y: why`, one each.
    pub(crate) failures: Vec<String>,
    /// Whether a network is stuck because the engine lost count of its endpoints (Docker
    /// 20.10, moby/moby#43286): left until dockerd restarts, not an error any run can fix.
    pub(crate) lost_count: bool,
}

impl TeardownError {
    /// As a backend error.
    pub(crate) fn into_backend(self, cluster: &str) -> BackendError {
        BackendError::Teardown {
            cluster: cluster.to_string(),
            failures: self.failures,
        }
    }
}

impl DockerBackend {
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

    pub(super) async fn remove_container(&self, name: &str) -> Result<(), BackendError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(name, Some(opts))
            .await
            .map_err(classify)
        {
            Ok(()) => Ok(()),
            Err(e) => match e.kind {
                EngineErrorKind::NotFound | EngineErrorKind::NoSuchContainer => Ok(()),
                // A removal already under way (a concurrent teardown or the reaper) is fine.
                EngineErrorKind::InProgress => Ok(()),
                _ => Err(e.into_backend("remove")),
            },
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
        self.remove_listed(&all)
            .await
            .map_err(|e| e.into_backend(cluster))
    }

    /// Removes the listed resources of one cluster, by ID (see the module's note for the order).
    pub(super) async fn remove_listed(&self, all: &[Resource]) -> Result<(), TeardownError> {
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
        let mut lost_count = false;
        for net in all.iter().filter(|r| r.kind == ResourceKind::Network) {
            if let Err(e) = self.remove_network(&net.id, settle).await {
                lost_count |= e.lost_count;
                errors.push(format!("network {}: {}", net.name, e.why));
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
            Err(TeardownError {
                failures: errors,
                lost_count,
            })
        }
    }
}
