//! A handle on a cluster that is already running (made by `cluster-sim up`, or kept by a test),
//! found through the backend's lookup; keeping a test's cluster after it ended; ending every
//! fault on a cluster that lives on after its test; its `before_down` hooks before another
//! process removes it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::event::EventSink;
use super::handle::{Cluster, Inner};
use super::members::{Member, Members};
use crate::backend::contract::Backend;
use crate::backend::lookup::ClusterSummary;
use crate::backend::types::{KeepMark, Lease};
use crate::error::{BackendError, HookError};
use crate::exec::OutputCapture;
use crate::spec::ClusterSpec;

impl Cluster {
    /// A handle on the running cluster `name`, whose nodes the backend's lookup finds (their
    /// addresses and working directories as `allocate` gave them), driven as if it had been
    /// made from `spec`. Dropping the handle leaves the cluster running; `down()` still removes
    /// it. Errs with `BackendError::Refused` where the backend has no lookup, and with
    /// `UnknownCluster` when nothing of `name` exists.
    pub async fn attach(
        backend: Arc<dyn Backend>,
        name: &str,
        spec: ClusterSpec,
    ) -> Result<Cluster, BackendError> {
        let lookup = backend.lookup().ok_or_else(|| {
            BackendError::refused(
                format!("attaching to cluster {name}"),
                format!("the {} backend can't look clusters up", backend.kind()),
            )
        })?;
        let nodes = lookup.nodes(name).await?;
        if nodes.is_empty() {
            return Err(BackendError::UnknownCluster(name.to_string()));
        }
        let found = ClusterSummary {
            name: name.to_string(),
            kept: false,
            mark: KeepMark::default(),
            nodes,
        };
        Ok(Self::attach_found(backend, &found, spec, None))
    }

    /// [`Cluster::attach`] to a cluster the backend's lookup has just listed (no engine call),
    /// with every event of the handle sent to `sink`.
    pub fn attach_found(
        backend: Arc<dyn Backend>,
        found: &ClusterSummary,
        spec: ClusterSpec,
        sink: Option<EventSink>,
    ) -> Cluster {
        // A node the spec does not name joined at run time (`add_node`): its spec is the
        // blueprint's, with the roles the backend recorded.
        let members = found
            .nodes
            .iter()
            .map(|n| {
                let (node, added) = match spec.node(&n.name) {
                    Some(s) => (s.clone(), false),
                    None => {
                        let roles = (!n.roles.is_empty()).then(|| n.roles.clone());
                        (
                            spec.added_node(&n.name, n.index, roles, &BTreeMap::new()),
                            true,
                        )
                    }
                };
                Member {
                    addr: n.addr(),
                    spec: Arc::new(node),
                    added,
                }
            })
            .collect();
        let inner = Arc::new(Inner {
            name: found.name.clone(),
            spec,
            backend,
            nodes: Members::of(members),
            down: AtomicBool::new(false),
            // It was up and ready before this run found it.
            provisioned: AtomicBool::new(true),
            keep: AtomicBool::new(true),
            lease: Lease::default(),
            sink,
            in_flight: Mutex::new(BTreeMap::new()),
            next_command: AtomicU64::new(0),
            versions: Default::default(),
            capture: OutputCapture::default(),
        });
        Cluster { inner }
    }

    /// Keeps the cluster running after its test (`CLUSTER_SIM_KEEP_CLUSTER`): marks it kept
    /// on the backend, naming `test` and the spec, so no reaper or watchdog removes it, and
    /// dropping the handle no longer does either. Its faults stay in place. `down()` (or
    /// `cluster-sim down NAME`) removes it.
    pub async fn keep_for(&self, test: &str) -> Result<(), BackendError> {
        let mark = KeepMark::of(&self.inner.spec, Some(test));
        self.inner.backend.keep(&self.inner.name, &mark).await?;
        self.inner.keep.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Ends every fault on the cluster (partitions, impairments, frozen or killed services,
    /// clock and disk faults), as teardown does: what a test on an attached cluster made is
    /// undone before the next one runs. Best effort, like teardown's.
    pub async fn undo_all_faults(&self) {
        self.undo_faults().await;
    }

    /// Runs the spec's `before_down` hooks, as [`down`](Self::down) does first, each on the
    /// nodes it names (output to the event sink), and returns the first that failed (`down()`
    /// reports it and goes on). For a cluster removed by other means: `cluster-sim down NAME`
    /// runs them on the kept cluster it attached to, then removes it through the backend.
    pub async fn run_before_down(&self) -> Result<(), HookError> {
        self.run_hooks(crate::spec::HookWhen::BeforeDown).await
    }
}
