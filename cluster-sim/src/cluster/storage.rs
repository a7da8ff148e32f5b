//! The storage fault verbs of [`Cluster`], through the fault filesystem mounted on the spec's
//! `faulty_dirs`: unsynced writes lost as in a power cut, I/O errors, slow I/O, corruption.
//! Each is an event in the cluster's timeline; [`Cluster::heal`] and `down()` end them.

use std::time::{Duration, Instant};

use super::event::EventKind;
use super::handle::Cluster;
use crate::fault::{ActiveFault, Corruption, FaultError, FaultKind, IoOp, StorageFault};

impl Cluster {
    /// A power cut on `node`: its service is frozen, every write under its `faulty_dirs` not
    /// yet synced (fsync, fdatasync, a directory sync) is forgotten, and the service is killed
    /// (SIGKILL) and started again, waiting until it is ready. What the service had synced is
    /// all it finds. Returns what the fault filesystem said it dropped.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// // spec: faulty_dirs = ["data"]
    /// cluster.lose_unsynced("n1").await?;
    /// # Ok(()) }
    /// ```
    pub async fn lose_unsynced(&self, node: &str) -> Result<String, FaultError> {
        let started = Instant::now();
        let r = async {
            let said = self.fault_ctl().await?.drop_unsynced(node).await?;
            let n = self
                .node(node)
                .map_err(|_| FaultError::UnknownNode(node.into()))?;
            n.kill().await?;
            n.start().await?;
            Ok::<_, FaultError>(said.trim().to_string())
        }
        .await;
        self.emit(
            Some(node),
            EventKind::Fault,
            match &r {
                Ok(said) => format!(
                    "lose-unsynced {node}: {}; service killed and started again in {:.2?}",
                    said.replace('\n', "; "),
                    started.elapsed()
                ),
                Err(e) => format!("failed to lose unsynced writes: {e}"),
            },
        );
        r
    }

    /// Makes `op` (reads, writes, fsyncs or any) under `path` on `node` fail with `errno`
    /// (`"EIO"`, `"ENOSPC"`, ... or a number), each with `probability` (0 to 1). `path` is a
    /// path or glob under one of the node's `faulty_dirs`, relative to its working directory
    /// or absolute; a directory covers what is in it. [`Cluster::heal`] ends it.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// use cluster_sim_core::fault::IoOp;
    ///
    /// cluster.io_error("n1", "data", IoOp::Write, "EIO", 1.0).await?;
    /// let out = cluster.node("n1")?.exec("echo x > data/f").await?;
    /// assert!(!out.success()); // Input/output error
    /// cluster.heal().await?;
    /// # Ok(()) }
    /// ```
    pub async fn io_error(
        &self,
        node: &str,
        path: &str,
        op: IoOp,
        errno: &str,
        probability: f64,
    ) -> Result<ActiveFault, FaultError> {
        self.storage_fault(node, path, StorageFault::error(op, errno, probability))
            .await
    }

    /// Delays every operation (reads, writes, syncs) under `path` on `node` by `latency`: a
    /// slow disk. The whole fault filesystem of that directory waits with it.
    pub async fn io_delay(
        &self,
        node: &str,
        path: &str,
        latency: Duration,
    ) -> Result<ActiveFault, FaultError> {
        self.storage_fault(node, path, StorageFault::delay(IoOp::Any, latency))
            .await
    }

    /// Corrupts data under `path` on `node`: [`Corruption::FlipRead`] flips one bit in every
    /// read, [`Corruption::TornWrite`] keeps only the first half of the next write (which
    /// still reports success), once.
    pub async fn corrupt(
        &self,
        node: &str,
        path: &str,
        how: Corruption,
    ) -> Result<ActiveFault, FaultError> {
        self.storage_fault(node, path, StorageFault::Corrupt { corruption: how })
            .await
    }

    /// Starts any storage fault (the verbs above are shorthands).
    pub async fn storage_fault(
        &self,
        node: &str,
        path: &str,
        fault: StorageFault,
    ) -> Result<ActiveFault, FaultError> {
        self.start_fault(FaultKind::Storage {
            node: node.to_string(),
            path: path.to_string(),
            fault,
        })
        .await
    }

    /// Ends every storage fault of `node` (I/O errors, delays, corruption); returns them.
    pub async fn heal_storage(&self, node: &str) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults(
            "heal storage",
            |f| matches!(&f.kind, FaultKind::Storage { node: n, .. } if n == node),
        )
        .await
    }
}
