//! The `Cluster` and `Node` handles: what a running cluster is (its name, spec, backend, nodes,
//! the commands in flight, where its events go), cheap to clone, removed by `down()` (or, as a
//! safety net, when the last handle of an unkept cluster drops). What nodes do is in
//! `node.rs`; how a cluster comes up in `builder.rs` and `provision.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use super::event::{Event, EventKind, EventSink};
use super::members::Members;
use crate::backend::contract::Backend;
use crate::backend::types::{Lease, NodeAddr};
use crate::error::BackendError;
use crate::exec::OutputCapture;
use crate::spec::ClusterSpec;

pub(super) struct Inner {
    pub(super) name: String,
    pub(super) spec: ClusterSpec,
    pub(super) backend: Arc<dyn Backend>,
    pub(super) nodes: Members,
    pub(super) down: AtomicBool,
    /// Every node was ready and the `after_up` hooks passed (`before_down` hooks run only then).
    pub(super) provisioned: AtomicBool,
    /// Kept on purpose (`cluster-sim up`, a kept test cluster) or attached to: dropping the
    /// handle leaves it running.
    pub(super) keep: AtomicBool,
    pub(super) lease: Lease,
    pub(super) sink: Option<EventSink>,
    /// Commands started and not yet returned, by a per-cluster sequence number.
    pub(super) in_flight: Mutex<BTreeMap<u64, InFlight>>,
    pub(super) next_command: AtomicU64,
    /// Output limit and spool directory for every command.
    pub(super) capture: OutputCapture,
    /// The versions nodes switched to, and their restarts (`versions.rs`).
    pub(super) versions: super::chosen::Versions,
}

/// A command still running on a node (see [`Cluster::in_flight`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// The node it runs on.
    pub node: String,
    /// The command, as `test.log` shows it.
    pub command: String,
    /// When it started.
    pub started: Instant,
}

/// Removes a command from its cluster's in-flight list when the command returns or its
/// future is dropped (a test cut at its deadline drops every command it was awaiting).
pub(super) struct InFlightGuard<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Tests call `down()`; this is the safety net for a handle dropped early (a panic between
        // `up` and `down`). Best effort: the reaper removes whatever this misses.
        if self.keep.load(Ordering::SeqCst)
            || self.down.load(Ordering::SeqCst)
            || !self.nodes.is_set()
        {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let backend = self.backend.clone();
            let name = self.name.clone();
            handle.spawn(async move {
                let _ = backend.destroy(&name).await;
            });
        }
    }
}

/// A running cluster. Cheap to clone; every clone drives the same nodes.
#[derive(Clone)]
pub struct Cluster {
    pub(super) inner: Arc<Inner>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.inner.name)
            .field("backend", &self.inner.backend.kind())
            .field("nodes", &self.addrs())
            .finish()
    }
}

/// One node of a [`Cluster`].
#[derive(Clone)]
pub struct Node {
    pub(super) cluster: Cluster,
    pub(super) name: String,
    pub(super) address: String,
    pub(super) spec: Arc<crate::spec::NodeSpec>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("cluster", &self.cluster.inner.name)
            .field("name", &self.name)
            .field("address", &self.address)
            .finish()
    }
}

impl Cluster {
    /// The cluster's name (labels, container names and the CLI use it).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &ClusterSpec {
        &self.inner.spec
    }

    /// The backend this cluster runs on, to bring up another cluster beside it
    /// (`Cluster::builder(spec).backend(cluster.backend())`).
    pub fn backend(&self) -> Arc<dyn Backend> {
        self.inner.backend.clone()
    }

    /// The backend's name (`docker`, `ssh`, `memory`).
    pub fn backend_kind(&self) -> &'static str {
        self.inner.backend.kind()
    }

    /// Every node, in spec order, then the nodes added at run time in the order they joined
    /// (`add_node`); a removed node is no longer among them.
    pub fn nodes(&self) -> Vec<Node> {
        self.inner
            .nodes
            .list()
            .into_iter()
            .map(|m| Node {
                cluster: self.clone(),
                name: m.addr.name,
                address: m.addr.address,
                spec: m.spec,
            })
            .collect()
    }

    /// A node by name; an unknown name is an error that lists the known ones.
    pub fn node(&self, name: &str) -> Result<Node, BackendError> {
        self.nodes()
            .into_iter()
            .find(|n| n.name == name)
            .ok_or_else(|| BackendError::UnknownNode {
                cluster: self.inner.name.clone(),
                node: name.to_string(),
            })
    }

    /// The commands running on the cluster's nodes right now, oldest first: what a test was
    /// waiting on when its deadline passed.
    pub fn in_flight(&self) -> Vec<InFlight> {
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub(super) fn track(&self, node: &str, command: &str) -> InFlightGuard<'_> {
        let id = self.inner.next_command.fetch_add(1, Ordering::Relaxed);
        self.inner
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id,
                InFlight {
                    node: node.to_string(),
                    command: command.to_string(),
                    started: Instant::now(),
                },
            );
        InFlightGuard {
            inner: &self.inner,
            id,
        }
    }

    pub(super) fn addrs(&self) -> Vec<NodeAddr> {
        self.inner
            .nodes
            .list()
            .into_iter()
            .map(|m| m.addr)
            .collect()
    }

    pub(super) fn emit(&self, node: Option<&str>, kind: EventKind, message: String) {
        self.emit_event(Event {
            at: SystemTime::now(),
            node: node.map(str::to_string),
            kind,
            message,
        });
    }

    pub(super) fn emit_event(&self, e: Event) {
        let (node, kind, message) = (e.node.as_deref().unwrap_or("-"), &e.kind, &e.message);
        tracing::debug!(cluster = %self.inner.name, node, %kind, "{message}");
        if let Some(sink) = &self.inner.sink {
            sink(&e);
        }
    }

    /// Writes every node's service log to `dir/nodes/<node>/service.log`. Best effort: a node
    /// whose log can't be read gets a note in its place.
    pub async fn collect_logs(&self, dir: &Path) {
        let jobs = self.nodes().into_iter().map(|n| {
            let dir = dir.join("nodes").join(&n.name);
            async move {
                let body = match n.logs().await {
                    Ok(b) => b,
                    Err(e) => format!("(could not read the log: {e})\n"),
                };
                if std::fs::create_dir_all(&dir).is_ok() {
                    let _ = std::fs::write(dir.join("service.log"), body);
                }
            }
        });
        futures::future::join_all(jobs).await;
    }

    /// Removes every node and the cluster's network. Idempotent.
    pub async fn down(&self) -> Result<(), BackendError> {
        if self.inner.down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let started = Instant::now();
        if self.inner.provisioned.load(Ordering::SeqCst) {
            self.run_before_down_hooks().await;
        }
        self.undo_faults().await;
        let r = self.inner.backend.destroy(&self.inner.name).await;
        self.emit(
            None,
            EventKind::Teardown,
            match &r {
                Ok(()) => format!("removed in {}", crate::duration::human(started.elapsed())),
                Err(e) => format!("teardown failed: {e}"),
            },
        );
        r
    }
}
