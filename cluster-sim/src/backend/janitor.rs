//! The cleanup capability: what a backend that leaves clusters behind a process (containers
//! in an engine, directories on hosts) offers so that nothing of a dead run stays. One result
//! type for every way of cleaning up, so the harness, the watchdog and `cluster-sim prune`
//! read it the same way on every backend.

use async_trait::async_trait;

use crate::error::BackendError;

/// What one cleanup pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Clusters removed.
    pub removed: Vec<String>,
    /// Clusters left alone because nothing proves their owner gone and they carry no expiry
    /// (made by an older version, or `cluster-sim up --hold` in another PID namespace).
    pub unknown: Vec<String>,
    /// Clusters the backend would not let go of although nothing of ours holds them (Docker
    /// 20.10 losing count of a network's endpoints, moby/moby#43286), with why: left until the
    /// engine restarts. Not an error: no run can do anything about them.
    pub stuck: Vec<(String, String)>,
    /// Clusters whose removal failed otherwise, with why (say, a container that is not ours
    /// sits on the network). One such cluster never stops the others from going.
    pub failed: Vec<(String, String)>,
}

impl Reaped {
    /// Whether the pass found nothing to remove and nothing it could not remove.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.stuck.is_empty() && self.failed.is_empty()
    }
}

/// Cleanup a backend offers (see `Backend::janitor`).
#[async_trait]
pub trait Janitor: Send + Sync {
    /// Removes every cluster not kept whose owner is provably gone or whose lease has expired
    /// (harness start, `cluster-sim prune`). Errs only when the clusters can't be listed.
    async fn reap(&self) -> Result<Reaped, BackendError>;

    /// Removes the clusters run `run` made and did not keep (a run's watchdog, once its run
    /// ended). Errs only when the clusters can't be listed.
    async fn remove_run(&self, run: &str) -> Result<Reaped, BackendError>;

    /// Removes what this process made of `cluster` and nothing else: an interrupted `up`
    /// whose name another process may have won leaves that process's cluster alone.
    async fn remove_own(&self, cluster: &str) -> Result<(), BackendError>;

    /// Whether clusters outlive the process that made them (an engine's containers, a host's
    /// directories), so a run's watchdog, another process, has something to remove. A backend
    /// whose clusters live in the process says no.
    fn outlives_owner(&self) -> bool {
        true
    }
}
