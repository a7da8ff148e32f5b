//! The node budget (`CLUSTER_SIM_NODE_BUDGET`): how many nodes the tests of a run may hold at
//! once, in this process and across processes.
//!
//! Under nextest every test is a process of its own, so an in-process semaphore alone would let
//! each process take the whole budget. The budget is therefore also a counting lock in a
//! folder shared by the run's processes (`target/cluster-sim/budget/`): one file per node of
//! the budget, a node held while its file is locked (`flock`). The kernel drops the locks of a
//! process that dies, SIGKILL included, so a killed test never keeps nodes. A grab that finds too
//! few free slots lets go of what it took; a process that must wait does so in a `queue` lock,
//! one at a time, so two waiting processes never each hold half of what they need.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget of one run (shared with other processes through `dir`).
#[derive(Debug, Clone)]
pub(crate) struct NodeBudget {
    total: usize,
    local: Arc<Semaphore>,
    dir: Option<PathBuf>,
}

/// Nodes held until dropped.
#[derive(Debug)]
pub(crate) struct NodePermit {
    _local: OwnedSemaphorePermit,
    _slots: Vec<File>,
}

impl NodeBudget {
    /// A budget of `total` nodes; with `dir`, shared with every process that uses the same
    /// folder.
    pub(crate) fn new(total: usize, dir: Option<PathBuf>) -> Self {
        Self {
            total: total.max(1),
            local: Arc::new(Semaphore::new(total.max(1))),
            dir,
        }
    }

    /// The whole budget.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// `n` nodes (at most the whole budget) if they are free now.
    pub(crate) fn try_acquire(&self, n: usize) -> io::Result<Option<NodePermit>> {
        let n = n.clamp(1, self.total);
        let Ok(local) = self.local.clone().try_acquire_many_owned(n as u32) else {
            return Ok(None);
        };
        let Some(dir) = &self.dir else {
            return Ok(Some(NodePermit {
                _local: local,
                _slots: Vec::new(),
            }));
        };
        let slots = try_slots(dir, self.total, n)?;
        Ok((slots.len() == n).then_some(NodePermit {
            _local: local,
            _slots: slots,
        }))
    }

    /// `n` nodes (at most the whole budget), waiting until they are free.
    pub(crate) async fn acquire(&self, n: usize) -> io::Result<NodePermit> {
        let n = n.clamp(1, self.total);
        let local = self
            .local
            .clone()
            .acquire_many_owned(n as u32)
            .await
            .map_err(|_| io::Error::other("the node budget was closed"))?;
        let Some(dir) = self.dir.clone() else {
            return Ok(NodePermit {
                _local: local,
                _slots: Vec::new(),
            });
        };
        let total = self.total;
        let slots = tokio::task::spawn_blocking(move || wait_slots(&dir, total, n))
            .await
            .map_err(io::Error::other)??;
        Ok(NodePermit {
            _local: local,
            _slots: slots,
        })
    }
}

fn open(dir: &Path, name: &str) -> io::Result<File> {
    std::fs::create_dir_all(dir)?;
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(name))
}

/// Locks `n` free slots without waiting; all or none of them. It takes no queue lock: two
/// threads of one process gathering at once would otherwise see each other as a wait. A
/// partial grab is let go at once, so grabbers never hold each other up.
fn try_slots(dir: &Path, total: usize, n: usize) -> io::Result<Vec<File>> {
    let held = free_slots(dir, total, n)?;
    if held.len() < n {
        return Ok(Vec::new());
    }
    Ok(held.into_iter().map(|(_, f)| f).collect())
}

/// Locks `n` slots, waiting in the queue and then for holders to let go.
fn wait_slots(dir: &Path, total: usize, n: usize) -> io::Result<Vec<File>> {
    let queue = open(dir, "queue")?;
    // One process gathers at a time; holders never wait for more, so every wait below ends.
    fs4::FileExt::lock(&queue)?;
    let mut held = free_slots(dir, total, n)?;
    let mut next = 0;
    while held.len() < n {
        let name = format!("node-{next}");
        next = (next + 1) % total;
        // Skip a slot this process already holds (flock on a second open would wait on itself).
        if held.iter().any(|(slot, _)| *slot == name) {
            continue;
        }
        let file = open(dir, &name)?;
        fs4::FileExt::lock(&file)?;
        held.push((name, file));
    }
    Ok(held.into_iter().map(|(_, f)| f).collect())
}

/// The first `n` slots free now, locked.
fn free_slots(dir: &Path, total: usize, n: usize) -> io::Result<Vec<(String, File)>> {
    let mut held = Vec::new();
    for i in 0..total {
        if held.len() == n {
            break;
        }
        let name = format!("node-{i}");
        let file = open(dir, &name)?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => held.push((name, file)),
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => return Err(e),
        }
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // Two budgets on one folder stand for two processes: flock locks belong to the open file,
    // so two opens in one process exclude each other exactly as two processes do.
    #[tokio::test]
    async fn two_processes_never_hold_more_than_the_budget_together() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeBudget::new(5, Some(dir.path().into()));
        let b = NodeBudget::new(5, Some(dir.path().into()));
        let held = a.acquire(3).await.unwrap();
        assert!(b.try_acquire(3).unwrap().is_none(), "3 + 3 > 5");
        let two = b.try_acquire(2).unwrap().expect("3 + 2 fit");
        drop(two);
        assert!(
            b.try_acquire(4).unwrap().is_none(),
            "4 more than the 2 left"
        );
        let waiting = tokio::spawn(async move { b.acquire(4).await.map(|_| ()) });
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the waiter gets its nodes once they are freed")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn a_cluster_bigger_than_the_budget_takes_the_whole_budget() {
        let dir = tempfile::tempdir().unwrap();
        let a = NodeBudget::new(2, Some(dir.path().into()));
        let held = a.acquire(10).await.unwrap();
        assert_eq!(held._slots.len(), 2);
        assert!(a.try_acquire(1).unwrap().is_none());
    }

    #[tokio::test]
    async fn without_a_folder_the_budget_is_this_process_s_only() {
        let a = NodeBudget::new(2, None);
        let _held = a.acquire(2).await.unwrap();
        assert!(a.try_acquire(1).unwrap().is_none());
    }
}
