//! Building a cluster: `Cluster::builder(spec)` and its options (name, backend, keep, lease,
//! events, failure artifacts, output limits), checked names, and `up()`, which provisions
//! (`provision.rs`) and removes what it made when that fails.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::event::{EventKind, EventSink};
use super::handle::{Cluster, Inner};
use crate::backend::contract::Backend;
use crate::backend::types::Lease;
use crate::error::ProvisionError;
use crate::exec::OutputCapture;
use crate::spec::ClusterSpec;

/// Builds and provisions a [`Cluster`].
pub struct ClusterBuilder {
    spec: ClusterSpec,
    name: Option<String>,
    backend: Option<Arc<dyn Backend>>,
    keep: bool,
    expires_after: Option<Duration>,
    sink: Option<EventSink>,
    failure_dir: Option<PathBuf>,
    capture: OutputCapture,
}

impl ClusterBuilder {
    /// Names the cluster (default: the spec's name and a random suffix).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Chooses the backend (default: `connect::default_backend`, docker).
    pub fn backend(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Marks the cluster as kept on purpose (`cluster-sim up`) once it is ready: from then on
    /// reapers leave it alone and dropping the handle does not remove it. Until then it is
    /// like any other cluster (a killed `up` leaves nothing kept).
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Gives the cluster a lease from the moment it is made: once `d` has passed, a reaper
    /// that can't tell whether its owner still runs (another PID namespace or machine sharing
    /// the engine) may remove it. Without one, only a provably dead owner frees the cluster.
    /// Kept clusters stop expiring once ready.
    pub fn expires_after(mut self, d: Duration) -> Self {
        self.expires_after = Some(d);
        self
    }

    /// Sends every event to `sink`.
    pub fn on_event(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// When provisioning fails, writes each node's log under `dir/nodes/<node>/` before removing it.
    pub fn failure_artifacts(mut self, dir: impl Into<PathBuf>) -> Self {
        self.failure_dir = Some(dir.into());
        self
    }

    /// Writes the whole of any command output that outgrows the in-memory limit to a file under
    /// `dir/exec-output/` (the harness passes the test's artifact directory). Without one, the
    /// middle of such output is dropped and the result says so.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.capture.spool_dir = Some(dir.into());
        self
    }

    /// Bytes of each command's stdout and of its stderr kept in memory (half its start, half
    /// its end); default [`crate::exec::DEFAULT_OUTPUT_LIMIT`].
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.capture.limit = Some(bytes);
        self
    }

    /// Provisions the cluster: addresses, rendered files, nodes started, readiness checked.
    /// On failure everything already made is removed before the error returns.
    pub async fn up(self) -> Result<Cluster, ProvisionError> {
        // Everything a user typed is checked before the first engine call.
        if let Some(name) = &self.name {
            check_cluster_name(name).map_err(ProvisionError::BadName)?;
        }
        let backend = match self.backend {
            Some(b) => b,
            None => crate::connect::default_backend().await.map_err(|source| {
                ProvisionError::Backend {
                    cluster: self.spec.name.clone(),
                    step: "connect".into(),
                    source,
                }
            })?,
        };
        let name = self.name.unwrap_or_else(|| unique_name(&self.spec.name));
        let inner = Arc::new(Inner {
            name: name.clone(),
            spec: self.spec,
            backend,
            nodes: Default::default(),
            down: AtomicBool::new(false),
            provisioned: AtomicBool::new(false),
            keep: AtomicBool::new(self.keep),
            lease: self
                .expires_after
                .map(Lease::for_duration)
                .unwrap_or_default(),
            sink: self.sink,
            in_flight: Mutex::new(BTreeMap::new()),
            next_command: AtomicU64::new(0),
            versions: Default::default(),
            capture: self.capture,
        });
        let cluster = Cluster { inner };
        cluster.emit(
            None,
            EventKind::Provision,
            format!(
                "provisioning {} on {} from {} ({} nodes)",
                name,
                cluster.inner.backend.kind(),
                cluster.inner.spec.source,
                cluster.inner.spec.nodes.len()
            ),
        );
        match cluster.provision().await {
            Ok(()) => Ok(cluster),
            Err(e) => {
                cluster.emit(
                    None,
                    EventKind::Provision,
                    format!("provisioning failed: {e}"),
                );
                // Nothing to collect or remove when allocation failed: it leaves nothing, and
                // the name may be another cluster's.
                if cluster.inner.nodes.is_set() {
                    if let Some(dir) = &self.failure_dir {
                        cluster.collect_logs(dir).await;
                    }
                    if let Err(d) = cluster.down().await {
                        tracing::warn!("cleanup after failed provisioning: {d}");
                    }
                }
                Err(e)
            }
        }
    }
}

/// Longest cluster name: it prefixes container, network and directory names.
pub const MAX_CLUSTER_NAME: usize = 63;

/// Checks a cluster name: 1 to 63 lowercase letters, digits and '-', starting with a letter or a
/// digit (it becomes part of container, network and directory names on every backend).
pub fn check_cluster_name(name: &str) -> Result<(), String> {
    let why = if name.is_empty() {
        "is empty"
    } else if name.len() > MAX_CLUSTER_NAME {
        "is longer than 63 characters"
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        "may hold only lowercase letters, digits and '-'"
    } else if name.starts_with('-') {
        "must start with a letter or a digit"
    } else {
        return Ok(());
    };
    Err(format!("bad cluster name {name:?}: it {why}"))
}

/// A fresh cluster name: `base` (lowercased, at most 40 characters) and a random suffix.
pub fn unique_name(base: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    let base: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!("{base}-{:06x}", h.finish() & 0xff_ffff)
}

impl Cluster {
    /// Starts building a cluster from a spec.
    pub fn builder(spec: ClusterSpec) -> ClusterBuilder {
        ClusterBuilder {
            spec,
            name: None,
            backend: None,
            keep: false,
            expires_after: None,
            sink: None,
            failure_dir: None,
            capture: OutputCapture::default(),
        }
    }

    /// Provisions a cluster from a spec file on the default backend.
    pub async fn up(spec_path: impl AsRef<Path>) -> Result<Cluster, ProvisionError> {
        let spec = ClusterSpec::from_file(spec_path)?;
        Self::builder(spec).up().await
    }
}
