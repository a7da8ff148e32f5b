//! The fault verbs of [`Cluster`]: partitions, impairments, service, clock and disk faults, the
//! nemesis. Each is an event in the cluster's timeline; `down()` undoes whatever is left.

use std::time::{Duration, Instant};

use super::event::{Event, EventKind};
use super::handle::Cluster;
use crate::fault::controller::forget;
use crate::fault::{
    ActiveFault, Capabilities, Cuts, FaultBackend, FaultError, FaultKind, Faults, Impairment,
    Nemesis, NemesisAction, Shape, Signal,
};
use crate::history::OpType;

/// How a nemesis step is undone at its heal.
enum Undo {
    /// End this fault.
    Fault(u64),
    /// Start this killed node again.
    Start(super::handle::Node),
}

impl Cluster {
    fn fault_backend(&self) -> Result<&dyn FaultBackend, FaultError> {
        self.inner
            .backend
            .faults()
            .ok_or_else(|| FaultError::NotOnBackend {
                backend: self.inner.backend.kind().into(),
                what: "faults".into(),
            })
    }

    async fn fault_ctl(&self) -> Result<Faults<'_>, FaultError> {
        Ok(Faults::new(
            self.fault_backend()?,
            &self.inner.name,
            self.addrs().to_vec(),
        ))
    }

    async fn start_fault(&self, kind: FaultKind) -> Result<ActiveFault, FaultError> {
        let started = Instant::now();
        let r = async { self.fault_ctl().await?.start(kind.clone()).await }.await;
        let nodes = kind.nodes().join(",");
        self.emit(
            None,
            EventKind::Fault,
            match &r {
                Ok(f) => format!("start {f} (nodes {nodes}) in {:.2?}", started.elapsed()),
                Err(e) => format!("failed to start {kind}: {e}"),
            },
        );
        r
    }

    async fn end_faults(
        &self,
        what: &str,
        pick: impl Fn(&ActiveFault) -> bool,
    ) -> Result<Vec<ActiveFault>, FaultError> {
        let started = Instant::now();
        let r = async { self.fault_ctl().await?.end_where(pick).await }.await;
        match &r {
            Ok(ended) => {
                for f in ended {
                    self.emit(
                        None,
                        EventKind::Fault,
                        format!(
                            "end {f} (nodes {}) in {:.2?}",
                            f.kind.nodes().join(","),
                            started.elapsed()
                        ),
                    );
                }
            }
            Err(e) => self.emit(None, EventKind::Fault, format!("failed to {what}: {e}")),
        }
        r
    }

    /// Cuts every link between nodes of different groups, both ways:
    /// `cluster.partition(&[&["n1"], &["n2", "n3"]])`. A node in no group keeps its links.
    ///
    /// Groups are slices of node names, so arrays of different lengths mix; for groups built at
    /// run time, see [`Cluster::partition_groups`].
    pub async fn partition(&self, groups: &[&[&str]]) -> Result<ActiveFault, FaultError> {
        self.partition_groups(groups).await
    }

    /// [`Cluster::partition`] for groups of any string type (`Vec<Vec<String>>`, say).
    pub async fn partition_groups<G: AsRef<[S]>, S: AsRef<str>>(
        &self,
        groups: &[G],
    ) -> Result<ActiveFault, FaultError> {
        let cuts = Cuts::between_groups(groups)?;
        let shape = groups
            .iter()
            .map(|g| {
                g.as_ref()
                    .iter()
                    .map(|s| s.as_ref())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join(" | ");
        self.start_fault(FaultKind::Partition { shape, cuts }).await
    }

    /// Drops `from`'s packets to `to`; `to`'s packets to `from` still flow. (TCP needs both
    /// directions, so connections between the two fail either way; datagrams show the cut.)
    pub async fn partition_oneway(&self, from: &str, to: &str) -> Result<ActiveFault, FaultError> {
        let cuts = Cuts::oneway(from, to)?;
        self.start_fault(FaultKind::Partition {
            shape: format!("{from} -> {to}"),
            cuts,
        })
        .await
    }

    /// Cuts a node off from every other node.
    pub async fn isolate(&self, node: &str) -> Result<ActiveFault, FaultError> {
        self.partition_shape(Shape::OneNode {
            node: node.to_string(),
        })
        .await
    }

    /// A partition of a named shape (halves, random halves, one node, bridge, majorities ring).
    pub async fn partition_shape(&self, shape: Shape) -> Result<ActiveFault, FaultError> {
        let names: Vec<String> = self.addrs().iter().map(|a| a.name.clone()).collect();
        let cuts = shape.cuts(&names)?;
        self.start_fault(FaultKind::Partition {
            shape: shape.to_string(),
            cuts,
        })
        .await
    }

    /// Ends every network fault: partitions and impairments.
    pub async fn heal(&self) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults("heal", |f| f.kind.is_network()).await
    }

    /// Degrades a node's links to every other node of the cluster: packets it sends, or with
    /// [`Impairment::inbound`] packets it receives (see [`Cluster::impair_inbound`]). Returns
    /// the fault in force, for [`Cluster::end_fault`]; [`Cluster::clear_impairments`] and
    /// [`Cluster::heal`] end it too.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::Impairment;
    /// use std::time::Duration;
    ///
    /// let lossy = cluster.impair("n1", Impairment::loss(30.0)).await?; // n1 -> every peer
    /// cluster.impair("n2", Impairment::loss(50.0).inbound()).await?; // every peer -> n2
    /// if cluster.capabilities("n3").await?.netem {
    ///     let slow = Impairment::latency(Duration::from_millis(100)).with_jitter(Duration::from_millis(10));
    ///     cluster.impair("n3", slow).await?;
    /// }
    /// cluster.end_fault(lossy.id).await?;
    /// cluster.clear_impairments().await?;
    /// # Ok(()) }
    /// ```
    pub async fn impair(&self, node: &str, imp: Impairment) -> Result<ActiveFault, FaultError> {
        self.start_fault(FaultKind::Impair {
            node: node.to_string(),
            peer: None,
            impairment: imp,
        })
        .await
    }

    /// Degrades what `node` receives from every other node: the same as
    /// `impair(node, imp.inbound())`. Loss is applied where the packets arrive; shaping (rate,
    /// latency...) by the senders on their way out to `node`, since tc shapes only what a node
    /// sends, so it needs what the senders' kernels have (netem for latency).
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::Impairment;
    /// // n1 receives at most 1 mbit/s from each peer and loses 10% of what arrives.
    /// let fault = cluster.impair_inbound("n1", Impairment::rate("1mbit").with_loss(10.0)).await?;
    /// cluster.end_fault(fault.id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn impair_inbound(
        &self,
        node: &str,
        imp: Impairment,
    ) -> Result<ActiveFault, FaultError> {
        self.impair(node, imp.inbound()).await
    }

    /// Degrades the link from `node` to `peer` (or from `peer`, if the impairment is inbound).
    pub async fn impair_link(
        &self,
        node: &str,
        peer: &str,
        imp: Impairment,
    ) -> Result<ActiveFault, FaultError> {
        self.start_fault(FaultKind::Impair {
            node: node.to_string(),
            peer: Some(peer.to_string()),
            impairment: imp,
        })
        .await
    }

    /// Ends every impairment (partitions stay).
    pub async fn clear_impairments(&self) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults("clear impairments", |f| {
            matches!(f.kind, FaultKind::Impair { .. })
        })
        .await
    }

    /// Stops the node's service (SIGSTOP to its process group); the node still answers exec.
    pub async fn freeze(&self, node: &str) -> Result<ActiveFault, FaultError> {
        self.start_fault(FaultKind::Freeze {
            node: node.to_string(),
        })
        .await
    }

    /// Resumes a frozen service (SIGCONT).
    pub async fn thaw(&self, node: &str) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults(
            "thaw",
            |f| matches!(&f.kind, FaultKind::Freeze { node: n } if n == node),
        )
        .await
    }

    /// Sends `signal` to the node's service process group (SIGKILL: the service dies; on docker
    /// the node's container ends with it).
    pub async fn kill_service(&self, node: &str, signal: Signal) -> Result<(), FaultError> {
        let r = async { self.fault_ctl().await?.signal_service(node, signal).await }.await;
        self.emit(
            Some(node),
            EventKind::Fault,
            match &r {
                Ok(()) => format!("sent SIG{} to the service", signal.name()),
                Err(e) => format!("failed to signal the service: {e}"),
            },
        );
        r
    }

    /// Offsets the clock the node's service sees by `offset_ms` (negative: behind). Reaches
    /// programs that read the time through libc; Go programs read it from the vDSO and do not
    /// see it. Commands run with `exec` see the true time.
    ///
    /// The offset is from true time: a second `skew` (or [`Cluster::strobe`]) of the same node
    /// replaces the first, it does not add to it. [`Cluster::reset_clock`] undoes it.
    ///
    /// Opt-in per node: the node's env must hold `CLUSTER_SIM_FAKETIME=1` when its service
    /// starts (libfaketime deadlocks programs linked with jemalloc). Skewing a node that did
    /// not opt in, or has no service, fails with [`FaultError::Unsupported`] naming what is
    /// missing, and changes nothing; [`Capabilities::faketime`] says beforehand.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// cluster.skew("n1", 30_000).await?; // 30 s ahead
    /// cluster.skew("n1", -5_000).await?; // now 5 s behind: replaced, not added
    /// let seen = cluster.service_time_ms("n1").await?; // Unix ms as the service sees them
    /// # let _ = seen;
    /// cluster.reset_clock("n1").await?; // true time again
    /// # Ok(()) }
    /// ```
    pub async fn skew(&self, node: &str, offset_ms: i64) -> Result<ActiveFault, FaultError> {
        self.reset_clock_quiet(node).await?;
        self.start_fault(FaultKind::Clock {
            node: node.to_string(),
            offset_ms,
            strobe_ms: None,
        })
        .await
    }

    /// Flips the service's clock between `offset_ms` and true time every `period` (seen at
    /// most a second late).
    pub async fn strobe(
        &self,
        node: &str,
        offset_ms: i64,
        period: Duration,
    ) -> Result<ActiveFault, FaultError> {
        self.reset_clock_quiet(node).await?;
        self.start_fault(FaultKind::Clock {
            node: node.to_string(),
            offset_ms,
            strobe_ms: Some(period.as_millis() as u64),
        })
        .await
    }

    async fn reset_clock_quiet(&self, node: &str) -> Result<(), FaultError> {
        let has = self
            .faults()
            .await?
            .iter()
            .any(|f| matches!(&f.kind, FaultKind::Clock { node: n, .. } if n == node));
        if has {
            self.reset_clock(node).await?;
        }
        Ok(())
    }

    /// Gives the node's service its true clock back, ending a [`Cluster::skew`] or
    /// [`Cluster::strobe`]; returns the faults it ended (empty, not an error, when the clock was
    /// not skewed).
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// cluster.skew("n1", 30_000).await?;
    /// assert_eq!(cluster.reset_clock("n1").await?.len(), 1);
    /// assert!(cluster.reset_clock("n1").await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn reset_clock(&self, node: &str) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults(
            "reset the clock",
            |f| matches!(&f.kind, FaultKind::Clock { node: n, .. } if n == node),
        )
        .await
    }

    /// The time the node's service sees, in Unix milliseconds.
    pub async fn service_time_ms(&self, node: &str) -> Result<i64, FaultError> {
        self.fault_ctl().await?.service_time_ms(node).await
    }

    /// Makes writes under the node's working directory fail with ENOSPC: the directory of the
    /// cluster's own on the node (`$CLUSTER_SIM_WORKDIR`: `/var/lib/cluster-sim` on docker,
    /// `<workdir>/<cluster>` on ssh), where the spec's files and the service's data go. See
    /// [`Cluster::fill_disk_at`] for another path and for how it is done;
    /// [`Cluster::free_disk`] undoes it.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// cluster.fill_disk("n1").await?;
    /// let out = cluster.node("n1")?.exec("echo x > \"$CLUSTER_SIM_WORKDIR/probe\"").await?;
    /// assert!(!out.success()); // No space left on device
    /// cluster.free_disk("n1").await?;
    /// cluster.fill_disk_at("n1", "/var/log").await?; // any absolute path (ssh: inside the workdir)
    /// # Ok(()) }
    /// ```
    pub async fn fill_disk(&self, node: &str) -> Result<ActiveFault, FaultError> {
        let path = self
            .addrs()
            .iter()
            .find(|a| a.name == node)
            .map(|a| a.workdir.clone())
            .ok_or_else(|| FaultError::UnknownNode(node.to_string()))?;
        self.fill_disk_at(node, &path).await
    }

    /// Makes writes under `path` on the node fail with ENOSPC; `path` must be absolute. On
    /// docker a full tmpfs is
    /// mounted over `path`: while full, the files under it are hidden, and a process that
    /// already holds the directory (open files, or its working directory) keeps using the old
    /// one; paths looked up anew see the full disk. Freeing detaches the mount. On ssh the path
    /// must be inside the cluster's working directory, and mounting needs root.
    pub async fn fill_disk_at(&self, node: &str, path: &str) -> Result<ActiveFault, FaultError> {
        if !path.starts_with('/') {
            return Err(FaultError::Invalid(format!(
                "fill disk: {path:?} is not an absolute path"
            )));
        }
        self.start_fault(FaultKind::Disk {
            node: node.to_string(),
            path: path.trim_end_matches('/').to_string(),
        })
        .await
    }

    /// Frees every full disk of the node.
    pub async fn free_disk(&self, node: &str) -> Result<Vec<ActiveFault>, FaultError> {
        self.end_faults(
            "free the disk",
            |f| matches!(&f.kind, FaultKind::Disk { node: n, .. } if n == node),
        )
        .await
    }

    /// Ends one fault by id.
    pub async fn end_fault(&self, id: u64) -> Result<ActiveFault, FaultError> {
        let mut ended = self.end_faults("end a fault", |f| f.id == id).await?;
        ended.pop().ok_or(FaultError::UnknownFault(id))
    }

    /// The active faults, oldest first: each an [`ActiveFault`] with its `id` (for
    /// [`Cluster::end_fault`]), `since_ms` (Unix milliseconds) and `kind`, a [`FaultKind`]
    /// (partition, impairment, freeze, clock or disk, with its nodes). A node killed by the
    /// nemesis is not listed.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::FaultKind;
    ///
    /// cluster.isolate("n1").await?;
    /// for f in cluster.faults().await? {
    ///     println!("{f} since {}", f.since_ms); // #1 partition isolate n1 since 17...
    ///     if let FaultKind::Partition { cuts, .. } = &f.kind {
    ///         println!("{} links cut", cuts.0.len());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn faults(&self) -> Result<Vec<ActiveFault>, FaultError> {
        self.fault_ctl().await?.list().await
    }

    /// What a node supports, probed on the node: a [`Capabilities`] whose fields say whether
    /// it has `nft` (partitions, loss), `tc` and `htb` (rate), `netem` (latency, jitter,
    /// duplicate, corrupt, reorder), `faketime` (libfaketime preloaded into its service: clock
    /// skew) and `service` (a running service to freeze, thaw or signal).
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// let caps = cluster.capabilities("n1").await?;
    /// if !caps.netem {
    ///     println!("no latency here");
    /// }
    /// assert_eq!(caps.has("latency"), Some(caps.netem));
    /// # Ok(()) }
    /// ```
    pub async fn capabilities(&self, node: &str) -> Result<Capabilities, FaultError> {
        self.fault_ctl().await?.capabilities(node).await
    }

    /// Ends every fault before teardown, so nothing outlives the cluster on hosts that do.
    pub(super) async fn undo_faults(&self) {
        if self.inner.backend.faults().is_some() {
            let has = match self.fault_ctl().await {
                Ok(c) => c.list().await.map(|l| !l.is_empty()).unwrap_or(false),
                Err(_) => false,
            };
            if has {
                let _ = self.end_faults("undo faults at teardown", |_| true).await;
            }
        }
        forget(&self.inner.name);
    }

    /// Runs a nemesis in the background until [`NemesisHandle::stop`]; its seed goes to the
    /// timeline (replay it with `CLUSTER_SIM_SEED`). A nemesis that records into a history
    /// ([`Nemesis::record`]) also stops when that history is stopped
    /// ([`Recorder::stop`](crate::history::Recorder::stop): a checker watching it found an
    /// anomaly), and then leaves the fault in force, so the cluster keeps the state that lied
    /// (the teardown ends it; a cluster kept by `CLUSTER_SIM_KEEP_CLUSTER` keeps it).
    pub fn nemesis(&self, nemesis: Nemesis) -> NemesisHandle {
        let names: Vec<String> = self.addrs().iter().map(|a| a.name.clone()).collect();
        self.emit_event(Event {
            at: std::time::SystemTime::now(),
            node: None,
            kind: EventKind::Nemesis { seed: nemesis.seed },
            message: format!(
                "nemesis seed={} every {} heal after {} (replay with {}={})",
                nemesis.seed,
                humantime::format_duration(nemesis.every),
                humantime::format_duration(nemesis.heal_after),
                crate::fault::SEED_VAR,
                nemesis.seed
            ),
        });
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let cluster = self.clone();
        let seed = nemesis.seed;
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut done = 0usize;
            let history = nemesis.recorder.clone();
            // A stopped history (a checker found an anomaly) stops the nemesis at once and
            // leaves its fault in force: the cluster keeps the state that lied.
            let lied = || async {
                match &history {
                    Some(rec) => rec.stopped().await,
                    None => std::future::pending().await,
                }
            };
            // Drawn as it goes: drawing a long schedule up front would hold a runtime thread.
            for (at, action) in nemesis.draws(&names) {
                tokio::select! {
                    biased;
                    _ = lied() => return done,
                    _ = &mut rx => return done,
                    _ = tokio::time::sleep_until(start + at) => {}
                }
                let Some(action) = action else { continue };
                let word = action.word();
                let what = action.to_string();
                if let Some(rec) = &nemesis.recorder {
                    rec.nemesis(OpType::Invoke, word, what.clone());
                }
                let undo = match action {
                    NemesisAction::Fault(kind) => cluster
                        .start_fault(kind)
                        .await
                        .map(|f| Undo::Fault(f.id))
                        .map_err(|e| e.to_string()),
                    NemesisAction::Kill { node } => match cluster.node(&node) {
                        Ok(n) => n
                            .kill()
                            .await
                            .map(|()| Undo::Start(n))
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    },
                };
                let heal = tokio::time::sleep(nemesis.heal_after.min(nemesis.every));
                // A stopped history wins over a stop asked at the same time: the fault stays.
                let stopped = tokio::select! {
                    biased;
                    _ = lied() => {
                        let value = match &undo {
                            Ok(_) => format!("{what}: left in force, the history was stopped"),
                            Err(e) => format!("{what}: {e}"),
                        };
                        done += usize::from(undo.is_ok());
                        if let Some(rec) = &nemesis.recorder {
                            rec.nemesis(OpType::Info, word, value);
                        }
                        return done;
                    }
                    _ = &mut rx => true,
                    _ = heal => false,
                };
                let healed = match undo {
                    Ok(Undo::Fault(id)) => {
                        done += 1;
                        cluster
                            .end_faults("end a nemesis fault", |x| x.id == id)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                    Ok(Undo::Start(n)) => {
                        done += 1;
                        n.start().await.map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e),
                };
                if let Some(rec) = &nemesis.recorder {
                    let value = match healed {
                        Ok(()) => serde_json::Value::from(what),
                        Err(e) => serde_json::Value::from(format!("{what}: {e}")),
                    };
                    rec.nemesis(OpType::Info, word, value);
                }
                if stopped {
                    return done;
                }
            }
            done
        });
        NemesisHandle {
            seed,
            stop: Some(tx),
            task,
        }
    }
}

/// A running nemesis.
pub struct NemesisHandle {
    seed: u64,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<usize>,
}

impl NemesisHandle {
    /// Its seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Stops it and returns how many faults it ran (steps whose fault started). A fault in
    /// force when it stops is ended first (a node it killed is started again), so when this
    /// returns the nemesis has left nothing behind, unless its history was stopped first (see
    /// [`Cluster::nemesis`]): then its last fault stays in force. Dropping the handle stops the nemesis too,
    /// without waiting for that last heal.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), cluster_sim_core::fault::FaultError> {
    /// use cluster_sim_core::fault::{Nemesis, NemesisFault, Shape};
    /// use std::time::Duration;
    ///
    /// let handle = cluster.nemesis(Nemesis::new(vec![NemesisFault::Partition(Shape::Halves)]));
    /// tokio::time::sleep(Duration::from_secs(20)).await;
    /// let ran = handle.stop().await;
    /// assert!(cluster.faults().await?.is_empty());
    /// println!("{ran} faults");
    /// # Ok(()) }
    /// ```
    pub async fn stop(mut self) -> usize {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.unwrap_or(0)
    }
}

impl Drop for NemesisHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
