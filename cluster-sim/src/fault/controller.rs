//! The ledger of a cluster's active faults and how each change reaches its nodes.
//!
//! Network faults are reconciled, not patched: every change recomputes each node's whole plan
//! from the ledger and replaces the node's rules in one transaction, on all nodes in parallel.
//! The ledger is saved on every node (beside the rules, in a place that vanishes with them), so
//! a process that did not start a fault (the CLI, after `cluster-sim up`) finds and ends it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::capabilities::Capabilities;
use super::error::FaultError;
use super::linux;
use super::plan::node_plan;
use super::storage::{self, StorageFault};
use super::types::{ActiveFault, FaultKind, Signal};
use crate::backend::contract::Backend;
use crate::backend::faults::{FaultBackend, NodeLayout};
use crate::backend::lookup::NodeSummary;
use crate::backend::types::NodeAddr;
use crate::error::BackendError;

/// The saved form of a cluster's faults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    next_id: u64,
    faults: Vec<ActiveFault>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Ledger>>>;

/// One ledger per cluster per process, loaded from the nodes on first use; the async mutex
/// serialises changes to a cluster.
static LEDGERS: LazyLock<std::sync::Mutex<HashMap<String, Slot>>> = LazyLock::new(Default::default);

fn slot(cluster: &str) -> Slot {
    let mut m = LEDGERS.lock().unwrap_or_else(|e| e.into_inner());
    m.entry(cluster.to_string()).or_default().clone()
}

/// Drops this process's copy of a cluster's ledger (after teardown).
pub fn forget(cluster: &str) {
    let mut m = LEDGERS.lock().unwrap_or_else(|e| e.into_inner());
    m.remove(cluster);
}

/// The faults of one cluster: start, end and list them. Built from a fault-capable backend,
/// the cluster's name and its nodes; cheap, and every instance for a cluster shares one ledger.
pub struct Faults<'a> {
    fb: &'a dyn FaultBackend,
    cluster: String,
    nodes: Vec<NodeAddr>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<'a> Faults<'a> {
    /// The faults of `cluster`, whose nodes are `nodes`, through a fault-capable backend.
    pub fn new(fb: &'a dyn FaultBackend, cluster: &str, nodes: Vec<NodeAddr>) -> Faults<'a> {
        Self {
            fb,
            cluster: cluster.to_string(),
            nodes,
        }
    }

    /// The faults of `cluster` for a caller without a `Cluster` handle (the CLI): the nodes
    /// come from the backend's lookup capability, the faults from its fault capability.
    pub async fn of(backend: &'a dyn Backend, cluster: &str) -> Result<Faults<'a>, FaultError> {
        let missing = |what: &str| FaultError::NotOnBackend {
            backend: backend.kind().into(),
            what: what.into(),
        };
        let fb = backend.faults().ok_or_else(|| missing("faults"))?;
        let lookup = backend
            .lookup()
            .ok_or_else(|| missing("finding a cluster's nodes without its handle"))?;
        let nodes = match lookup.nodes(cluster).await {
            Ok(n) if !n.is_empty() => n.iter().map(NodeSummary::addr).collect(),
            Ok(_) | Err(BackendError::UnknownCluster(_)) => {
                return Err(FaultError::Invalid(format!("no cluster named {cluster:?}")))
            }
            Err(source) => {
                return Err(FaultError::Backend {
                    node: "-".into(),
                    step: "list nodes".into(),
                    source,
                })
            }
        };
        Ok(Self::new(fb, cluster, nodes))
    }

    /// Node names in spec order.
    pub fn node_names(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.name.clone()).collect()
    }

    fn check_node(&self, n: &str) -> Result<(), FaultError> {
        if self.nodes.iter().any(|a| a.name == n) {
            Ok(())
        } else {
            Err(FaultError::UnknownNode(n.to_string()))
        }
    }

    async fn run(&self, node: &str, step: &str, script: &str) -> Result<String, FaultError> {
        let out = self.fb.run_root(&self.cluster, node, script).await?;
        if out.success() {
            return Ok(out.stdout_lossy().into_owned());
        }
        if out.code == i64::from(linux::EXIT_MISSING) {
            let missing = out.out().trim_start_matches("missing ").to_string();
            let netem = missing == "sch_netem";
            return Err(FaultError::Unsupported {
                node: node.to_string(),
                what: if netem {
                    "latency (and jitter, duplicate, corrupt, reorder)".into()
                } else {
                    step.to_string()
                },
                missing: if netem {
                    "the kernel module sch_netem".into()
                } else {
                    missing
                },
            });
        }
        if out.code == i64::from(linux::EXIT_NO_SERVICE) {
            return Err(FaultError::NoService {
                node: node.to_string(),
                action: step.to_string(),
            });
        }
        Err(FaultError::Apply {
            node: node.to_string(),
            step: step.to_string(),
            code: out.code,
            detail: out.tail().trim().to_string(),
        })
    }

    async fn layouts(&self) -> Result<Vec<(String, NodeLayout)>, FaultError> {
        let jobs = self.nodes.iter().map(|n| async move {
            Ok::<_, FaultError>((
                n.name.clone(),
                self.fb.layout(&self.cluster, &n.name).await?,
            ))
        });
        futures::future::try_join_all(jobs).await
    }

    /// Loads the ledger from the nodes (the union of what each saved).
    async fn load(&self) -> Result<Ledger, FaultError> {
        let jobs = self.nodes.iter().map(|n| async move {
            let layout = self.fb.layout(&self.cluster, &n.name).await?;
            let text = self
                .run(
                    &n.name,
                    "read fault state",
                    &linux::load_state_script(&layout),
                )
                .await?;
            Ok::<_, FaultError>(serde_json::from_str::<Ledger>(text.trim()).ok())
        });
        // A node that is down holds no rules either: skip it rather than fail.
        let results = futures::future::join_all(jobs).await;
        let mut ledger = Ledger::default();
        for l in results.into_iter().flatten().flatten() {
            ledger.next_id = ledger.next_id.max(l.next_id);
            for f in l.faults {
                if !ledger.faults.iter().any(|x| x.id == f.id) {
                    ledger.faults.push(f);
                }
            }
        }
        ledger.faults.sort_by_key(|f| f.id);
        Ok(ledger)
    }

    async fn with_ledger<T>(
        &self,
        f: impl AsyncFnOnce(&mut Ledger) -> Result<T, FaultError>,
    ) -> Result<T, FaultError> {
        let slot = slot(&self.cluster);
        let mut guard = slot.lock().await;
        if guard.is_none() {
            *guard = Some(self.load().await?);
        }
        let ledger = guard.as_mut().expect("loaded above");
        f(ledger).await
    }

    /// Every active fault, oldest first.
    pub async fn list(&self) -> Result<Vec<ActiveFault>, FaultError> {
        self.with_ledger(async |l| Ok(l.faults.clone())).await
    }

    /// Brings every node's network to what `ledger` says and saves it there, in parallel.
    async fn reconcile(&self, ledger: &Ledger) -> Result<(), FaultError> {
        let json = serde_json::to_string(ledger).unwrap_or_default();
        let layouts = self.layouts().await?;
        let mut jobs = Vec::new();
        for (node, layout) in &layouts {
            let plan = node_plan(node, &ledger.faults, &self.nodes)?;
            let script = linux::apply_script(layout, &plan, &json);
            jobs.push(async move { self.run(node, "network rules", &script).await });
        }
        let results = futures::future::join_all(jobs).await;
        results.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    /// Starts a fault and returns it as recorded.
    pub async fn start(&self, kind: FaultKind) -> Result<ActiveFault, FaultError> {
        for n in kind.nodes() {
            self.check_node(&n)?;
        }
        if let FaultKind::Storage { node, path, fault } = &kind {
            storage::check_path(path)?;
            fault.validate()?;
            // A rule no fault filesystem of the node can see would do nothing: say so.
            let workdir = self.workdir(node)?;
            let said = self
                .run(
                    node,
                    "storage fault",
                    &linux::storage_mounts_script(&workdir),
                )
                .await?;
            let mounts: Vec<String> = said.lines().map(str::to_string).collect();
            if !storage::covers(&workdir, &mounts, path) {
                return Err(FaultError::Invalid(format!(
                    "storage fault on {node}: {path:?} is in none of its faulty_dirs ({})",
                    mounts.join(", ")
                )));
            }
        }
        if let FaultKind::Impair {
            node,
            peer,
            impairment,
        } = &kind
        {
            impairment.validate()?;
            if peer.as_deref() == Some(node.as_str()) {
                return Err(FaultError::Invalid(format!(
                    "impair {node}: the peer must be another node"
                )));
            }
        }
        self.with_ledger(async |ledger| {
            let fault = ActiveFault {
                id: ledger.next_id.max(1),
                since_ms: now_ms(),
                kind: kind.clone(),
            };
            let mut next = ledger.clone();
            next.next_id = fault.id + 1;
            next.faults.push(fault.clone());
            if let Err(e) = self.enact(&fault, true, &next).await {
                // Put back what was there: a failed fault leaves no half-applied rules.
                if kind.is_network() {
                    let _ = self.reconcile(ledger).await;
                }
                return Err(e);
            }
            *ledger = next;
            Ok(fault)
        })
        .await
    }

    /// Ends one fault by id and returns it.
    pub async fn end(&self, id: u64) -> Result<ActiveFault, FaultError> {
        let mut ended = self.end_where(|f| f.id == id).await?;
        ended.pop().ok_or(FaultError::UnknownFault(id))
    }

    /// Ends every fault `pick` selects; returns them.
    pub async fn end_where(
        &self,
        pick: impl Fn(&ActiveFault) -> bool,
    ) -> Result<Vec<ActiveFault>, FaultError> {
        self.with_ledger(async |ledger| {
            let (gone, keep): (Vec<_>, Vec<_>) =
                ledger.faults.iter().cloned().partition(|f| pick(f));
            if gone.is_empty() {
                return Ok(gone);
            }
            let next = Ledger {
                next_id: ledger.next_id,
                faults: keep,
            };
            let mut first_err = None;
            // Undo the non-network ones first, each on its node; then one reconcile covers
            // every network fault and saves the ledger everywhere.
            for f in gone.iter().filter(|f| !f.kind.is_network()) {
                if let Err(e) = self.enact(f, false, &next).await {
                    first_err.get_or_insert(e);
                }
            }
            if gone.iter().any(|f| f.kind.is_network()) {
                if let Err(e) = self.reconcile(&next).await {
                    first_err.get_or_insert(e);
                }
            }
            *ledger = next;
            match first_err {
                Some(e) => Err(e),
                None => Ok(gone),
            }
        })
        .await
    }

    /// Applies (`on`) or undoes one fault, then saves `ledger` on every node.
    async fn enact(&self, f: &ActiveFault, on: bool, ledger: &Ledger) -> Result<(), FaultError> {
        match &f.kind {
            FaultKind::Partition { .. } | FaultKind::Impair { .. } => {
                return self.reconcile(ledger).await
            }
            FaultKind::Freeze { node } => {
                let layout = self.fb.layout(&self.cluster, node).await?;
                let sig = if on { Signal::Stop } else { Signal::Cont };
                self.run(
                    node,
                    if on { "freeze" } else { "thaw" },
                    &linux::signal_script(&layout, sig.name()),
                )
                .await?;
            }
            FaultKind::Clock {
                node,
                offset_ms,
                strobe_ms,
            } => {
                let layout = self.fb.layout(&self.cluster, node).await?;
                let Some(file) = layout.clock_file.clone() else {
                    return Err(FaultError::Unsupported {
                        node: node.clone(),
                        what: "clock skew".into(),
                        missing: "a clock file its service reads (this backend sets none up)"
                            .into(),
                    });
                };
                if on {
                    let caps = self.capabilities(node).await?;
                    if !caps.faketime {
                        return Err(FaultError::Unsupported {
                            node: node.clone(),
                            what: "clock skew".into(),
                            missing: "libfaketime preloaded into its service (package libfaketime in the image, CLUSTER_SIM_FAKETIME=1 in the node's env)".into(),
                        });
                    }
                }
                let script = if on {
                    linux::clock_script(&layout, &file, *offset_ms, *strobe_ms)
                } else {
                    linux::clock_script(&layout, &file, 0, None)
                };
                self.run(node, "clock", &script).await?;
            }
            FaultKind::Disk { node, path } => {
                self.fb.disk(&self.cluster, node, path, on).await?;
            }
            FaultKind::Storage { node, .. } => {
                // The node's rules become exactly the storage faults the ledger keeps for it
                // (faultfs removes its rules all at once).
                let rules: Vec<(&str, &StorageFault)> = ledger
                    .faults
                    .iter()
                    .filter_map(|x| match &x.kind {
                        FaultKind::Storage {
                            node: n,
                            path,
                            fault,
                        } if n == node => Some((path.as_str(), fault)),
                        _ => None,
                    })
                    .collect();
                let script = linux::storage_rules_script(&self.workdir(node)?, &rules);
                let step = if on {
                    "storage fault"
                } else {
                    "end storage fault"
                };
                self.run(node, step, &script).await?;
            }
        }
        self.save(ledger).await
    }

    async fn save(&self, ledger: &Ledger) -> Result<(), FaultError> {
        let json = serde_json::to_string(ledger).unwrap_or_default();
        let layouts = self.layouts().await?;
        let jobs = layouts.iter().map(|(node, layout)| {
            let script = linux::save_state_script(layout, &json);
            async move { self.run(node, "save fault state", &script).await }
        });
        futures::future::join_all(jobs)
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        Ok(())
    }

    /// The node's working directory (`$CLUSTER_SIM_WORKDIR`).
    pub fn workdir_of(&self, node: &str) -> Result<String, FaultError> {
        self.workdir(node)
    }

    fn workdir(&self, node: &str) -> Result<String, FaultError> {
        self.nodes
            .iter()
            .find(|a| a.name == node)
            .map(|a| a.workdir.clone())
            .ok_or_else(|| FaultError::UnknownNode(node.to_string()))
    }

    /// Freezes the node's service (SIGSTOP, so it writes nothing more) and makes its fault
    /// filesystems forget every write not yet synced; returns what they said. The caller kills
    /// and starts the service (a power cut: [`crate::Cluster::lose_unsynced`]).
    pub async fn drop_unsynced(&self, node: &str) -> Result<String, FaultError> {
        self.check_node(node)?;
        let layout = self.fb.layout(&self.cluster, node).await?;
        let script = linux::storage_drop_script(&self.workdir(node)?, &layout.service_pid);
        self.run(node, "drop unsynced writes", &script).await
    }

    /// Sends a signal to the node's service process group (not recorded as a fault: a killed
    /// service has nothing to undo).
    pub async fn signal_service(&self, node: &str, signal: Signal) -> Result<(), FaultError> {
        self.check_node(node)?;
        let layout = self.fb.layout(&self.cluster, node).await?;
        self.run(
            node,
            &format!("signal {}", signal.name()),
            &linux::signal_script(&layout, signal.name()),
        )
        .await
        .map(|_| ())
    }

    /// Probes what the node supports.
    pub async fn capabilities(&self, node: &str) -> Result<Capabilities, FaultError> {
        self.check_node(node)?;
        let layout = self.fb.layout(&self.cluster, node).await?;
        let out = self
            .run(node, "probe", &linux::probe_script(&layout))
            .await?;
        Ok(Capabilities::parse(&out))
    }

    /// The time the node's service sees, in Unix milliseconds (`date` run with the service's
    /// environment, so with its clock offset).
    pub async fn service_time_ms(&self, node: &str) -> Result<i64, FaultError> {
        self.check_node(node)?;
        let layout = self.fb.layout(&self.cluster, node).await?;
        let out = self
            .run(
                node,
                "read the service's clock",
                &linux::service_env_script(&layout, "date +%s%3N"),
            )
            .await?;
        out.trim().parse().map_err(|_| FaultError::Apply {
            node: node.to_string(),
            step: "read the service's clock".into(),
            code: 0,
            detail: format!("unexpected output {:?}", out.trim()),
        })
    }

    /// Forgets a node that leaves the cluster (`Cluster::remove_node`): partitions lose the
    /// links to it (and end when none is left), every other fault naming it ends (undone on it,
    /// best effort: it is about to go), and the other nodes' rules and saved ledgers are brought
    /// to what is left. Returns the faults that ended.
    pub async fn leave(&self, node: &str) -> Result<Vec<ActiveFault>, FaultError> {
        self.check_node(node)?;
        let rest = Faults {
            fb: self.fb,
            cluster: self.cluster.clone(),
            nodes: self
                .nodes
                .iter()
                .filter(|n| n.name != node)
                .cloned()
                .collect(),
        };
        self.with_ledger(async |ledger| {
            let (mut ended, mut keep, mut changed) = (Vec::new(), Vec::new(), false);
            for f in &ledger.faults {
                match &f.kind {
                    FaultKind::Partition { shape, cuts } => {
                        let left: std::collections::BTreeSet<(String, String)> = cuts
                            .0
                            .iter()
                            .filter(|(a, b)| a != node && b != node)
                            .cloned()
                            .collect();
                        if left.is_empty() {
                            ended.push(f.clone());
                        } else if left.len() == cuts.0.len() {
                            keep.push(f.clone());
                        } else {
                            changed = true;
                            keep.push(ActiveFault {
                                kind: FaultKind::Partition {
                                    shape: shape.clone(),
                                    cuts: super::types::Cuts(left),
                                },
                                ..f.clone()
                            });
                        }
                    }
                    k if k.nodes().iter().any(|n| n == node) => ended.push(f.clone()),
                    _ => keep.push(f.clone()),
                }
            }
            if ended.is_empty() && !changed {
                return Ok(ended);
            }
            let next = Ledger {
                next_id: ledger.next_id,
                faults: keep,
            };
            for f in ended.iter().filter(|f| !f.kind.is_network()) {
                if let Err(e) = self.enact(f, false, &next).await {
                    tracing::debug!(node, "undoing {f} on a leaving node: {e}");
                }
            }
            rest.reconcile(&next).await?;
            *ledger = next;
            Ok(ended)
        })
        .await
    }

    /// Ends every fault, best effort on nodes that are gone (teardown).
    pub async fn end_all(&self) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_where(|_| true).await
    }
}
