//! `Cluster` and `Node`: the handle tests and the CLI drive, the same on every backend.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::backend::contract::Backend;
use crate::backend::types::{Lease, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::{BackendError, ExecError, NodeError, ProvisionError, TransferError};
use crate::exec::{ExecOutput, ExecRequest, OutputCapture};
use crate::spec::{ClusterSpec, NodeSpec};
use crate::template::{self, TemplateContext, TemplateNode};

mod attach;
mod collect;
mod faults;
mod hooks;
mod logcheck;
mod logfindings;
mod logwait;
mod ready;
pub use crate::error::HookError;
pub use collect::Collected;
pub use faults::NemesisHandle;
pub use logfindings::{LogCheckError, LogFinding, LogMarks};
pub use logwait::{LogWait, LogWaitError};

/// What happened to a cluster, for a test's timeline (`test.log`).
#[derive(Debug, Clone)]
pub struct Event {
    /// When.
    pub at: SystemTime,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// What kind of thing happened.
    pub kind: EventKind,
    /// One line describing it.
    pub message: String,
    /// The command's result, for [`EventKind::Exec`] events (the timeline of the HTML report
    /// shows it when the event is clicked).
    pub exec: Option<ExecSummary>,
    /// The seed of a nemesis this event started (kind [`EventKind::Fault`]), so a runner can
    /// print it on failure and report it (replay with `CLUSTER_SIM_SEED`).
    pub nemesis_seed: Option<u64>,
}

/// What an [`EventKind::Exec`] event knows of its command beyond the one-line message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSummary {
    /// The command as shown.
    pub command: String,
    /// Its exit code; `None` when the backend failed to run it.
    pub code: Option<i64>,
    /// Whether it hit its own deadline.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
    /// The end of its stdout then stderr, lossily decoded, at most [`ExecSummary::TAIL`] bytes
    /// each (or the backend's error).
    pub tail: String,
}

impl ExecSummary {
    /// Bytes of each stream kept in [`ExecSummary::tail`].
    pub const TAIL: usize = 2048;

    fn of(command: &str, r: &Result<ExecOutput, BackendError>) -> Self {
        fn end(b: &[u8]) -> String {
            let from = b.len().saturating_sub(ExecSummary::TAIL);
            String::from_utf8_lossy(&b[from..]).into_owned()
        }
        match r {
            Ok(o) => {
                let mut tail = end(&o.stdout);
                let err = end(&o.stderr);
                if !err.is_empty() {
                    if !tail.is_empty() && !tail.ends_with('\n') {
                        tail.push('\n');
                    }
                    tail.push_str("[stderr]\n");
                    tail.push_str(&err);
                }
                Self {
                    command: command.to_string(),
                    code: Some(o.code),
                    timed_out: o.timed_out,
                    duration: o.duration,
                    tail,
                }
            }
            Err(e) => Self {
                command: command.to_string(),
                code: None,
                timed_out: false,
                duration: Duration::ZERO,
                tail: e.to_string(),
            },
        }
    }
}

/// Kinds of [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Provisioning steps.
    Provision,
    /// A node passed its readiness check.
    Ready,
    /// A command ran (message holds command and exit code).
    Exec,
    /// A file went in or out.
    Transfer,
    /// kill, stop, start, restart, pause, unpause.
    Lifecycle,
    /// Teardown.
    Teardown,
    /// A fault started or ended (partition, impairment, freeze, clock, disk, nemesis).
    Fault,
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Provision => "provision",
            EventKind::Ready => "ready",
            EventKind::Exec => "exec",
            EventKind::Transfer => "transfer",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Teardown => "teardown",
            EventKind::Fault => "fault",
        })
    }
}

/// Receives every [`Event`] of a cluster.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

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
            nodes: std::sync::OnceLock::new(),
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
                if cluster.inner.nodes.get().is_some() {
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

struct Inner {
    name: String,
    spec: ClusterSpec,
    backend: Arc<dyn Backend>,
    nodes: std::sync::OnceLock<Vec<NodeAddr>>,
    down: AtomicBool,
    /// Every node was ready and the `after_up` hooks passed (`before_down` hooks run only then).
    provisioned: AtomicBool,
    /// Kept on purpose (`cluster-sim up`, a kept test cluster) or attached to: dropping the
    /// handle leaves it running.
    keep: AtomicBool,
    lease: Lease,
    sink: Option<EventSink>,
    /// Commands started and not yet returned, by a per-cluster sequence number.
    in_flight: Mutex<BTreeMap<u64, InFlight>>,
    next_command: AtomicU64,
    /// Output limit and spool directory for every command.
    capture: OutputCapture,
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
struct InFlightGuard<'a> {
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
            || self.nodes.get().is_none()
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
    inner: Arc<Inner>,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.inner.name)
            .field("backend", &self.inner.backend.kind())
            .field("nodes", &self.inner.nodes.get())
            .finish()
    }
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

    /// Every node, in spec order.
    pub fn nodes(&self) -> Vec<Node> {
        self.addrs()
            .iter()
            .map(|a| Node {
                cluster: self.clone(),
                name: a.name.clone(),
                address: a.address.clone(),
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

    fn track(&self, node: &str, command: &str) -> InFlightGuard<'_> {
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

    fn addrs(&self) -> &[NodeAddr] {
        self.inner.nodes.get().map(Vec::as_slice).unwrap_or(&[])
    }

    fn emit(&self, node: Option<&str>, kind: EventKind, message: String) {
        self.emit_event(Event {
            at: SystemTime::now(),
            node: node.map(str::to_string),
            kind,
            message,
            exec: None,
            nemesis_seed: None,
        });
    }

    fn emit_event(&self, e: Event) {
        let (node, kind, message) = (e.node.as_deref().unwrap_or("-"), e.kind, &e.message);
        tracing::debug!(cluster = %self.inner.name, node, %kind, "{message}");
        if let Some(sink) = &self.inner.sink {
            sink(&e);
        }
    }

    async fn provision(&self) -> Result<(), ProvisionError> {
        let spec = &self.inner.spec;
        let name = &self.inner.name;
        let backend_err = |step: &str| {
            let step = step.to_string();
            move |source| ProvisionError::Backend {
                cluster: name.clone(),
                step,
                source,
            }
        };
        // Binaries first: a build that fails fails before anything exists on a backend.
        let builds = self.build_binaries().await?;
        let addrs = self
            .inner
            .backend
            .allocate(name, spec, &self.inner.lease)
            .await
            .map_err(backend_err("allocate"))?;
        let _ = self.inner.nodes.set(addrs.clone());
        self.emit(
            None,
            EventKind::Provision,
            format!(
                "allocated {}",
                addrs
                    .iter()
                    .map(|a| format!("{}={}", a.name, a.address))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
        let launches = render_all(name, spec, &addrs, &builds)?;
        self.inner
            .backend
            .launch(name, &launches)
            .await
            .map_err(backend_err("launch"))?;
        self.emit(None, EventKind::Provision, "nodes started".into());
        let waits = self
            .nodes()
            .into_iter()
            .map(|n| async move { n.wait_ready().await });
        futures::future::try_join_all(waits).await?;
        self.run_hooks(crate::spec::HookWhen::AfterUp)
            .await
            .map_err(|e| ProvisionError::Hook(Box::new(e)))?;
        self.inner.provisioned.store(true, Ordering::SeqCst);
        if self.inner.keep.load(Ordering::SeqCst) {
            // The spec's name and size go on the mark: a test run attaches only to a cluster
            // made from the spec it asks for (`CLUSTER_SIM_CLUSTER`).
            self.inner
                .backend
                .keep(name, &crate::backend::types::KeepMark::of(spec, None))
                .await
                .map_err(backend_err("keep"))?;
        }
        Ok(())
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

    /// Builds the spec's `[[binary]]` targets (once per process each), with cargo's status
    /// lines shown on stderr and sent as provisioning events.
    async fn build_binaries(&self) -> Result<crate::service::Builds, ProvisionError> {
        if self.inner.spec.binaries.is_empty() {
            return Ok(Default::default());
        }
        let me = self.clone();
        let progress: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |line: &str| {
            eprintln!("cluster-sim: {line}");
            me.emit(None, EventKind::Provision, format!("build: {line}"));
        });
        let started = Instant::now();
        let builds = crate::service::build_all(&self.inner.spec, progress).await?;
        for b in builds.values() {
            self.emit(
                None,
                EventKind::Provision,
                format!(
                    "binary {} ready: {} bytes, sha256 {}, needs {} ({} in all)",
                    b.request.describe(),
                    b.size,
                    &b.sha256[..12],
                    b.glibc
                        .map(|v| format!("glibc {v}"))
                        .unwrap_or_else(|| "no glibc".into()),
                    crate::duration::human(started.elapsed())
                ),
            );
        }
        Ok(builds)
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

fn render_all(
    cluster: &str,
    spec: &ClusterSpec,
    addrs: &[NodeAddr],
    builds: &crate::service::Builds,
) -> Result<Vec<NodeLaunch>, ProvisionError> {
    let tnodes: Vec<TemplateNode> = spec
        .nodes
        .iter()
        .zip(addrs)
        .map(|(n, a)| TemplateNode {
            name: n.name.clone(),
            index: n.index,
            number: n.index + 1,
            address: a.address.clone(),
            roles: n.roles.clone(),
            workdir: a.workdir.clone(),
        })
        .collect();
    let mut out = Vec::new();
    for (i, node) in spec.nodes.iter().enumerate() {
        let ctx = TemplateContext {
            cluster: BTreeMap::from([("name".to_string(), cluster.to_string())]),
            node: tnodes[i].clone(),
            nodes: tnodes.clone(),
            env: node.env.clone(),
            params: spec.params.clone(),
        };
        let mut files = Vec::new();
        for f in &node.files {
            let raw = std::fs::read(&f.source).map_err(|e| ProvisionError::Template {
                node: node.name.clone(),
                message: format!("{}: {e}", f.source.display()),
            })?;
            let data = if f.template {
                let text = String::from_utf8_lossy(&raw);
                template::render(&text, &f.source, &ctx)
                    .map_err(|message| ProvisionError::Template {
                        node: node.name.clone(),
                        message,
                    })?
                    .into_bytes()
            } else {
                raw
            };
            let dest = if f.dest.starts_with('/') {
                f.dest.clone()
            } else {
                format!("{}/{}", addrs[i].workdir.trim_end_matches('/'), f.dest)
            };
            files.push((dest, data, f.mode));
        }
        let mut spec = node.clone();
        for (k, v) in [
            ("CLUSTER_SIM_CLUSTER", cluster),
            ("CLUSTER_SIM_NODE", node.name.as_str()),
            ("CLUSTER_SIM_WORKDIR", addrs[i].workdir.as_str()),
        ] {
            spec.env.insert(k.to_string(), v.to_string());
        }
        out.push(NodeLaunch {
            binaries: crate::service::placements(&node.binaries, builds, &addrs[i].workdir),
            spec,
            address: addrs[i].address.clone(),
            files,
        });
    }
    Ok(out)
}

/// One node of a [`Cluster`].
#[derive(Clone)]
pub struct Node {
    cluster: Cluster,
    name: String,
    address: String,
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

/// A command being set up on a node: `node.cmd("...").env(..).timeout(..).run().await`.
#[must_use = "a command does nothing until `.run().await`"]
pub struct Cmd<'a> {
    node: &'a Node,
    req: ExecRequest,
}

impl Cmd<'_> {
    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.req.env.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.req.workdir = Some(dir.into());
        self
    }

    /// Runs as this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.req.user = Some(user.into());
        self
    }

    /// Sets the deadline; the command's process group is killed when it passes.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.req.timeout = d;
        self
    }

    /// Runs it and returns exit code and output (a non-zero exit is not an error here).
    pub async fn run(self) -> Result<ExecOutput, ExecError> {
        self.node.run(self.req).await
    }
}

impl Node {
    /// The node's name. On docker it is also the node's host name and its name on the
    /// cluster's network, so other nodes resolve it (`ping n2` works on the nodes); on ssh it is
    /// not a host name (hosts keep their own): reach nodes by [`Node::address`] there.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address other nodes reach it at (docker: its address on the cluster's network;
    /// ssh: the inventory host's `node_address`). Templates see it as `{{ n.address }}`. Unlike
    /// node names, addresses work on every backend.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// let n1 = cluster.node("n1")?;
    /// let n2 = cluster.node("n2")?;
    /// n1.exec(format!("ping -c1 -W2 {}", n2.address())).await?.check()?; // any backend
    /// if cluster.backend_kind() == "docker" {
    ///     n1.exec("getent hosts n2").await?.check()?; // names resolve on docker only
    /// }
    /// # Ok(()) }
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The node's spec.
    pub fn spec(&self) -> &NodeSpec {
        self.cluster
            .inner
            .spec
            .node(&self.name)
            .expect("a Node is only made for a node of its spec")
    }

    /// The cluster it belongs to.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn backend(&self) -> &dyn Backend {
        self.cluster.inner.backend.as_ref()
    }

    /// Runs a shell command (`sh -c`) with the default deadline.
    pub async fn exec(&self, cmd: impl Into<String>) -> Result<ExecOutput, ExecError> {
        self.run(ExecRequest::shell(cmd)).await
    }

    /// Sets up a shell command with options (env, workdir, user, timeout).
    pub fn cmd(&self, cmd: impl Into<String>) -> Cmd<'_> {
        Cmd {
            node: self,
            req: ExecRequest::shell(cmd),
        }
    }

    /// Sets up an argv command, run without a shell.
    pub fn cmd_argv<I, S>(&self, argv: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            node: self,
            req: ExecRequest::argv(argv),
        }
    }

    /// Runs a prepared request.
    pub async fn run(&self, mut req: ExecRequest) -> Result<ExecOutput, ExecError> {
        for (k, v) in &self.spec().env {
            req.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let capture = &self.cluster.inner.capture;
        req.capture.limit = req.capture.limit.or(capture.limit);
        if req.capture.spool_dir.is_none() {
            req.capture.spool_dir.clone_from(&capture.spool_dir);
        }
        let command = req.display();
        let tracked = self.cluster.track(&self.name, &command);
        let r = self
            .backend()
            .exec(&self.cluster.inner.name, &self.name, &req)
            .await;
        drop(tracked);
        let message = match &r {
            Ok(o) => format!(
                "`{}` -> exit {}{} in {}",
                command,
                o.code,
                if o.timed_out { " (timed out)" } else { "" },
                crate::duration::human(o.duration)
            ),
            Err(e) => format!("`{command}` -> error: {e}"),
        };
        self.cluster.emit_event(Event {
            at: SystemTime::now(),
            node: Some(self.name.clone()),
            kind: EventKind::Exec,
            message,
            exec: Some(ExecSummary::of(&command, &r)),
            nemesis_seed: None,
        });
        r.map_err(|source| ExecError::Backend {
            node: self.name.clone(),
            command,
            source,
        })
    }

    /// Reads a file from the node (binary-safe).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, TransferError> {
        let r = self
            .backend()
            .read_file(&self.cluster.inner.name, &self.name, path)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Transfer,
            match &r {
                Ok(d) => format!("read {path} ({} bytes)", d.len()),
                Err(e) => format!("read {path} failed: {e}"),
            },
        );
        r.map_err(|source| TransferError {
            node: self.name.clone(),
            op: "read",
            path: path.to_string(),
            source,
        })
    }

    /// Writes a file on the node (mode 0644, parents created).
    pub async fn write_file(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
    ) -> Result<(), TransferError> {
        self.write_file_mode(path, data, 0o644).await
    }

    /// Writes a file on the node with a mode.
    pub async fn write_file_mode(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<(), TransferError> {
        let data = data.as_ref();
        let r = self
            .backend()
            .write_file(&self.cluster.inner.name, &self.name, path, data, mode)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Transfer,
            match &r {
                Ok(()) => format!("wrote {path} ({} bytes)", data.len()),
                Err(e) => format!("write {path} failed: {e}"),
            },
        );
        r.map_err(|source| TransferError {
            node: self.name.clone(),
            op: "write",
            path: path.to_string(),
            source,
        })
    }

    /// The node's service log so far.
    pub async fn logs(&self) -> Result<String, BackendError> {
        let b = self
            .backend()
            .logs(&self.cluster.inner.name, &self.name)
            .await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// The node's state.
    pub async fn state(&self) -> Result<NodeState, BackendError> {
        self.backend()
            .state(&self.cluster.inner.name, &self.name)
            .await
    }

    async fn act(&self, action: NodeAction) -> Result<(), NodeError> {
        let r = self
            .backend()
            .act(&self.cluster.inner.name, &self.name, action)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Lifecycle,
            match &r {
                Ok(()) => action.to_string(),
                Err(e) => format!("{action} failed: {e}"),
            },
        );
        r.map_err(|e| NodeError {
            node: self.name.clone(),
            action: action.to_string(),
            source: Box::new(e),
        })
    }

    /// SIGKILLs the node; it stays down until [`Node::start`].
    pub async fn kill(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Kill).await
    }

    /// Stops the node gracefully.
    pub async fn stop(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Stop).await
    }

    /// Starts a stopped or killed node (same name, address and data) and waits until it is ready.
    pub async fn start(&self) -> Result<(), NodeError> {
        let from = self.ready_log_offset().await;
        self.act(NodeAction::Start).await?;
        self.ready_after(NodeAction::Start, from).await
    }

    /// Restarts the node (same name, address and data) and waits until it is ready.
    pub async fn restart(&self) -> Result<(), NodeError> {
        let from = self.ready_log_offset().await;
        self.act(NodeAction::Restart).await?;
        self.ready_after(NodeAction::Restart, from).await
    }

    /// Freezes every process of the node.
    pub async fn pause(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Pause).await
    }

    /// Thaws a paused node.
    pub async fn unpause(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Unpause).await
    }

    /// Readiness after a start or restart (log lines from `log_from` on), then the node's
    /// `after_restart` hooks.
    async fn ready_after(&self, action: NodeAction, log_from: usize) -> Result<(), NodeError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| NodeError {
            node: self.name.clone(),
            action: action.to_string(),
            source: e,
        };
        self.wait_ready_from(log_from)
            .await
            .map_err(|e| fail(Box::new(e)))?;
        self.run_after_restart_hooks()
            .await
            .map_err(|e| fail(Box::new(e)))
    }

    /// Polls the spec's readiness check until it passes or its deadline ends. Fails at once
    /// if the node's service has exited.
    pub async fn wait_ready(&self) -> Result<(), ProvisionError> {
        self.wait_ready_from(0).await
    }

    /// [`Node::wait_ready`], counting only service log lines from byte `log_from` on.
    async fn wait_ready_from(&self, log_from: usize) -> Result<(), ProvisionError> {
        let Some(ready) = self.cluster.inner.spec.ready.clone() else {
            return Ok(());
        };
        let started = Instant::now();
        let deadline = started + ready.timeout;
        // Poll fast at first (most services are up within a second), then back off to the
        // spec's interval, and never beyond it: the pause doubles only up to `interval`, so a
        // slow service is polled every `interval` until the deadline (the spec rejects a zero
        // interval, and `max` keeps a library caller's zero from spinning).
        let interval = ready.interval.max(Duration::from_millis(1));
        let mut pause = Duration::from_millis(20).min(interval);
        let mut last;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.probe_ready(&ready, log_from, left).await {
                Ok(()) => {
                    self.cluster.emit(
                        Some(&self.name),
                        EventKind::Ready,
                        format!("ready after {}", crate::duration::human(started.elapsed())),
                    );
                    return Ok(());
                }
                Err(why) => last = why,
            }
            let exited = matches!(self.state().await, Ok(NodeState::Exited));
            if exited || Instant::now() >= deadline {
                let log = self.logs().await.unwrap_or_default();
                let log = crate::exec::tail_of(log.trim(), 1500);
                let why = if exited {
                    "; the node's service exited"
                } else {
                    ""
                };
                return Err(ProvisionError::NotReady {
                    node: self.name.clone(),
                    command: ready.describe(),
                    timeout: if exited {
                        started.elapsed()
                    } else {
                        ready.timeout
                    },
                    last: format!("{last}{why}; log tail: {log}"),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(interval);
        }
    }
}
