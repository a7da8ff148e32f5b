//! The ssh backend's state: the inventory, one connection per host, where each cluster's
//! nodes were placed, and host-level helpers (connect checks, a command outside any cluster).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::conn::HostConn;
use super::inventory::{Inventory, InventoryError};
use crate::error::BackendError;

/// Grace period of a graceful stop before SIGKILL, as on docker.
pub(super) const STOP_GRACE_SECS: u32 = 10;

/// Bound on housekeeping commands (state, signals, small files, listings).
pub(super) const HOUSEKEEPING_LIMIT: Duration = Duration::from_secs(60);

/// System directories put in front of `PATH`: non-root logins often lack the sbin ones, and
/// specs written for the node image expect them (`ss`, `sshd`, `ip`).
pub(super) const PATH_PREFIX: &str =
    "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH\"; export PATH; ";

/// Where a node of a cluster lives.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub(super) host: usize,
    pub(super) workdir: String,
    /// Whether launch touched the host (else teardown need not connect to it).
    pub(super) touched: bool,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// cluster -> node -> placement.
    pub(super) clusters: HashMap<String, BTreeMap<String, Placed>>,
    /// cluster -> when its lease ends (written to each node's owner file).
    pub(super) leases: HashMap<String, Option<std::time::SystemTime>>,
    /// cluster -> its owner file as an existing node holds it: what a node added at run time
    /// gets (`membership.rs`), so it belongs to the cluster's owner and not to this process.
    pub(super) owners: HashMap<String, String>,
}

/// The ssh backend. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct SshBackend {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) inventory: Inventory,
    pub(super) hosts: Vec<HostConn>,
    pub(super) state: std::sync::Mutex<State>,
    /// Per host, the nftables rules that keep our own ssh connection (see `fault.rs`).
    pub(super) keeps: std::sync::Mutex<HashMap<String, (String, String)>>,
}

pub(super) fn valid_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

impl SshBackend {
    /// A backend over the inventory's hosts. Connects lazily, on first use of each host.
    pub fn new(inventory: Inventory) -> Self {
        let hosts = inventory.hosts.iter().cloned().map(HostConn::new).collect();
        Self {
            inner: Arc::new(Inner {
                inventory,
                hosts,
                state: std::sync::Mutex::default(),
                keeps: std::sync::Mutex::default(),
            }),
        }
    }

    /// Reads an inventory file and makes a backend over its hosts.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, InventoryError> {
        Ok(Self::new(Inventory::from_file(path)?))
    }

    /// The inventory.
    pub fn inventory(&self) -> &Inventory {
        &self.inner.inventory
    }

    /// Connects to every host in parallel; one result per host, in inventory order.
    pub async fn check_hosts(&self) -> Vec<(String, Result<(), BackendError>)> {
        let jobs = self.inner.hosts.iter().map(|h| async move {
            let r = h.ensure().await;
            (h.host.name.clone(), r)
        });
        futures::future::join_all(jobs).await
    }

    /// The control socket of a host's master while it is connected (for diagnostics, and to
    /// drop a master on purpose in tests).
    pub async fn control_socket(&self, host: &str) -> Option<PathBuf> {
        let h = self.inner.hosts.iter().find(|h| h.host.name == host)?;
        h.control_socket().await
    }

    /// Runs a shell command on a host by inventory name, outside any cluster, returning its
    /// exit code (`-1` when killed by a signal) and stdout. For setup and benchmarks.
    pub async fn host_exec(&self, host: &str, cmd: &str) -> Result<(i64, Vec<u8>), BackendError> {
        let h = self
            .inner
            .hosts
            .iter()
            .find(|h| h.host.name == host)
            .ok_or_else(|| {
                BackendError::refused(
                    format!("host {host:?}"),
                    format!("no such host in {}", self.inner.inventory.source),
                )
            })?;
        let o = h.run("exec", cmd, None, HOUSEKEEPING_LIMIT).await?;
        Ok((o.code.map_or(-1, i64::from), o.stdout))
    }

    /// Closes every master connection (they reopen on next use).
    pub async fn close(&self) {
        futures::future::join_all(self.inner.hosts.iter().map(|h| h.close())).await;
    }

    /// The host connections, in inventory order.
    pub(super) fn hosts(&self) -> &[HostConn] {
        &self.inner.hosts
    }

    pub(super) fn cached_keep(&self, host: &str) -> Option<(String, String)> {
        let keeps = self.inner.keeps.lock().unwrap_or_else(|e| e.into_inner());
        keeps.get(host).cloned()
    }

    pub(super) fn cache_keep(&self, host: &str, keep: (String, String)) {
        let mut keeps = self.inner.keeps.lock().unwrap_or_else(|e| e.into_inner());
        keeps.insert(host.to_string(), keep);
    }

    /// The state, locked (a poisoned lock still holds good data: every change is one step).
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
