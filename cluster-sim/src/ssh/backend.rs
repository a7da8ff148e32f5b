//! The ssh backend: nodes are inventory hosts, reached over one multiplexed OpenSSH master each.
//!
//! On each host a cluster owns `<host workdir>/<cluster>` (the node's working directory):
//!
//! ```text
//! <workdir>/<cluster>/service.log        the service's stdout and stderr (kept across restarts)
//! <workdir>/<cluster>/service.pid        pid of the service, leader of its own process group
//! <workdir>/<cluster>/.cluster-sim/      node name, environment and the service launcher
//! <workdir>/<cluster>/.owner              run id, owning process, expiry, kept (`owner.rs`)
//! ```
//!
//! The service runs detached (`setsid`) in its own process group, so kill, stop, pause and
//! unpause signal the whole group, and a dropped connection doesn't touch it. Those files also
//! let another process (the CLI) find a cluster's nodes from the inventory alone.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::conn::{HostConn, Output};
use super::inventory::{Inventory, InventoryError};
use crate::backend::contract::Backend;
use crate::backend::types::{NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::shell::quote as q;
use crate::spec::ClusterSpec;

/// Grace period of a graceful stop before SIGKILL, as on docker.
const STOP_GRACE_SECS: u32 = 10;

/// Bound on housekeeping commands (state, signals, small files).
pub(super) const SHORT: Duration = Duration::from_secs(60);

/// Bound on package installation (apt may download).
const APT_LIMIT: Duration = Duration::from_secs(900);

/// System directories put in front of `PATH`: non-root logins often lack the sbin ones, and
/// specs written for the node image expect them (`ss`, `sshd`, `ip`).
pub(super) const PATH_PREFIX: &str =
    "PATH=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH\"; export PATH; ";

/// Where a node of a cluster lives.
#[derive(Debug, Clone)]
struct Placed {
    host: usize,
    workdir: String,
    /// Whether launch touched the host (else teardown need not connect to it).
    touched: bool,
}

#[derive(Debug, Default)]
struct State {
    /// cluster -> node -> placement.
    clusters: HashMap<String, BTreeMap<String, Placed>>,
    /// cluster -> when its lease ends (written to each node's owner file).
    leases: HashMap<String, Option<std::time::SystemTime>>,
}

/// The ssh backend. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct SshBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    inventory: Inventory,
    hosts: Vec<HostConn>,
    state: std::sync::Mutex<State>,
    /// Per host, the nftables rules that keep our own ssh connection (see `fault.rs`).
    keeps: std::sync::Mutex<HashMap<String, (String, String)>>,
}

pub(super) fn valid_cluster_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// The shell snippet that sets `alive` to whether the process group in `$pid` has a live
/// (non-zombie) member, and `running` to whether one of them is not stopped.
pub(super) const GROUP_STATE: &str = r#"group_state() { ps -e -o pgid= -o stat= | awk -v g="$pid" '$1==g && $2 !~ /^Z/ {n++; if ($2 !~ /^T/) r++} END {if (!n) print "exited"; else if (!r) print "paused"; else print "running"}'; }; "#;

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
                BackendError::Other(format!(
                    "no host {host:?} in {}",
                    self.inner.inventory.source
                ))
            })?;
        let o = h.run("exec", cmd, None, SHORT).await?;
        Ok((o.code.map_or(-1, i64::from), o.stdout))
    }

    /// Closes every master connection (they reopen on next use).
    pub async fn close(&self) {
        futures::future::join_all(self.inner.hosts.iter().map(|h| h.close())).await;
    }

    /// Whether this process placed `cluster` (allocated it and has not destroyed it).
    pub(super) fn placed_here(&self, cluster: &str) -> bool {
        self.placed(cluster).is_some()
    }

    fn placed(&self, cluster: &str) -> Option<BTreeMap<String, Placed>> {
        self.inner
            .state
            .lock()
            .expect("state lock")
            .clusters
            .get(cluster)
            .cloned()
    }

    /// Finds a cluster's nodes: from memory, else from the marker files on the hosts.
    async fn locate_cluster(
        &self,
        cluster: &str,
    ) -> Result<BTreeMap<String, Placed>, BackendError> {
        if let Some(p) = self.placed(cluster) {
            return Ok(p);
        }
        if !valid_cluster_name(cluster) {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        let jobs = self
            .inner
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| async move {
                let w = format!("{}/{cluster}", h.host.workdir);
                let script = format!(
                    "cat {} 2>/dev/null || true",
                    q(&format!("{w}/.cluster-sim/node"))
                );
                match h.run("find cluster", &script, None, SHORT).await {
                    Ok(o) => {
                        let node = String::from_utf8_lossy(&o.stdout).trim().to_string();
                        (!node.is_empty()).then_some((
                            node,
                            Placed {
                                host: i,
                                workdir: w,
                                touched: true,
                            },
                        ))
                    }
                    Err(e) => {
                        tracing::warn!("{e}");
                        None
                    }
                }
            });
        let found: BTreeMap<String, Placed> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .flatten()
            .collect();
        if found.is_empty() {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        self.inner
            .state
            .lock()
            .expect("state lock")
            .clusters
            .entry(cluster.to_string())
            .or_insert_with(|| found.clone());
        Ok(found)
    }

    pub(super) async fn locate(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<(&HostConn, String), BackendError> {
        let nodes = self.locate_cluster(cluster).await?;
        let p = nodes.get(node).ok_or_else(|| BackendError::UnknownNode {
            cluster: cluster.to_string(),
            node: node.to_string(),
        })?;
        Ok((&self.inner.hosts[p.host], p.workdir.clone()))
    }

    /// The host connections, in inventory order.
    pub(super) fn hosts(&self) -> &[HostConn] {
        &self.inner.hosts
    }

    /// A node's host connection and working directory.
    pub(super) async fn node_host(
        &self,
        cluster: &str,
        node: &str,
    ) -> Result<(&HostConn, String), BackendError> {
        self.locate(cluster, node).await
    }

    pub(super) fn cached_keep(&self, host: &str) -> Option<(String, String)> {
        let keeps = self.inner.keeps.lock().unwrap_or_else(|e| e.into_inner());
        keeps.get(host).cloned()
    }

    pub(super) fn cache_keep(&self, host: &str, keep: (String, String)) {
        let mut keeps = self.inner.keeps.lock().unwrap_or_else(|e| e.into_inner());
        keeps.insert(host.to_string(), keep);
    }

    fn mark_touched(&self, cluster: &str, node: &str) {
        if let Some(p) = self
            .inner
            .state
            .lock()
            .expect("state lock")
            .clusters
            .get_mut(cluster)
            .and_then(|c| c.get_mut(node))
        {
            p.touched = true;
        }
    }

    /// Wipes and recreates the node's working directory (stopping a leftover service first).
    async fn prepare_workdir(&self, h: &HostConn, w: &str) -> Result<(), BackendError> {
        let base = w.rsplit_once('/').map(|(b, _)| b).unwrap_or("/");
        let wipe = format!(
            "w={w}; if [ -s \"$w/service.pid\" ]; then kill -KILL -- -\"$(cat \"$w/service.pid\")\" 2>/dev/null; fi; \
             rm -rf -- \"$w\" && mkdir -p -- \"$w/.cluster-sim\" && chmod 755 \"$w\"",
            w = q(w)
        );
        let script = format!(
            "if mkdir -p -- {b} 2>/dev/null && [ -w {b} ]; then {wipe}; else exit 77; fi",
            b = q(base)
        );
        let o = h.run("prepare workdir", &script, None, SHORT).await?;
        if o.ok() {
            return Ok(());
        }
        if o.code != Some(77) {
            return Err(BackendError::Other(format!(
                "host {}: prepare workdir {w}: {}",
                h.host.name,
                o.why()
            )));
        }
        // The base directory isn't ours to write: make the cluster's directory as root and hand it
        // to the login user.
        let sudo = h
            .root_prefix(
                "prepare workdir",
                &format!("creating {w} (its parent is not writable)"),
            )
            .await?;
        let script = format!(
            "u=$(id -un); {sudo}sh -c {inner} sh {w} \"$u\"",
            inner = q("w=$1; if [ -s \"$w/service.pid\" ]; then kill -KILL -- -\"$(cat \"$w/service.pid\")\" 2>/dev/null; fi; rm -rf -- \"$w\" && mkdir -p -- \"$w/.cluster-sim\" && chmod 755 \"$w\" && chown -R \"$2\" \"$w\""),
            w = q(w)
        );
        let o = h.run("prepare workdir", &script, None, SHORT).await?;
        if o.ok() {
            Ok(())
        } else {
            Err(h.sudo_failure(&format!("prepare workdir {w}"), &o))
        }
    }

    /// Installs missing packages with apt; present ones are skipped without touching apt.
    async fn install_packages(
        &self,
        h: &HostConn,
        packages: &[String],
    ) -> Result<(), BackendError> {
        if packages.is_empty() {
            return Ok(());
        }
        let step = "install packages";
        for p in packages {
            if p.is_empty()
                || p.starts_with('-')
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.:_".contains(c))
            {
                return Err(BackendError::Other(format!(
                    "host {}: {step}: bad package name {p:?}",
                    h.host.name
                )));
            }
        }
        let list = packages.iter().map(|p| q(p)).collect::<Vec<_>>().join(" ");
        let check = format!(
            "for p in {list}; do s=$(dpkg-query -W -f='${{db:Status-Status}}' \"$p\" 2>/dev/null || true); [ \"$s\" = installed ] || echo \"$p\"; done"
        );
        let o = h.run_ok(step, &check, None, SHORT).await?;
        let missing: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if missing.is_empty() {
            tracing::debug!(host = %h.host.name, "packages present: {list}");
            return Ok(());
        }
        let sudo = h
            .root_prefix(step, &format!("installing {}", missing.join(" ")))
            .await?;
        let missing_q = missing.iter().map(|p| q(p)).collect::<Vec<_>>().join(" ");
        let unknown_check = format!(
            "command -v apt-get >/dev/null || {{ echo 'apt-get not found (only Debian-family hosts can install packages)' >&2; exit 3; }}; \
             for p in {missing_q}; do apt-cache show \"$p\" >/dev/null 2>&1 || echo \"$p\"; done"
        );
        let unknown = |o: &Output| -> Vec<String> {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let mut unk = unknown(&h.run_ok(step, &unknown_check, None, SHORT).await?);
        let mut update_note = String::new();
        if !unk.is_empty() {
            // Package lists may be missing or old: refresh once, then look again.
            let o = h
                .run(
                    step,
                    &format!("{sudo}env DEBIAN_FRONTEND=noninteractive apt-get update -q -o Acquire::Retries=1 -o DPkg::Lock::Timeout=120"),
                    None,
                    APT_LIMIT,
                )
                .await?;
            if !o.ok() {
                if !sudo.is_empty() && String::from_utf8_lossy(&o.stderr).contains("sudo") {
                    return Err(h.sudo_failure(step, &o));
                }
                update_note = format!(" (apt-get update failed: {})", o.why());
            }
            unk = unknown(&h.run_ok(step, &unknown_check, None, SHORT).await?);
        }
        if !unk.is_empty() {
            return Err(BackendError::Other(format!(
                "host {}: {step}: unknown package{} {}: apt has no such package{update_note}",
                h.host.name,
                if unk.len() > 1 { "s" } else { "" },
                unk.iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let install = format!(
            "{sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 {missing_q}"
        );
        let o = h.run(step, &install, None, APT_LIMIT).await?;
        if !o.ok() {
            return Err(if sudo.is_empty() {
                BackendError::Other(format!(
                    "host {}: {step}: apt-get install {}: {}",
                    h.host.name,
                    missing.join(" "),
                    o.why()
                ))
            } else {
                h.sudo_failure(&format!("{step} {}", missing.join(" ")), &o)
            });
        }
        tracing::info!(host = %h.host.name, "installed {}", missing.join(" "));
        Ok(())
    }

    /// Writes a file on a host, with sudo for paths outside the working directory if allowed.
    async fn put(
        &self,
        h: &HostConn,
        w: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        let path = absolute(w, path);
        let step = format!("write {path}");
        let inside = path.starts_with(&format!("{w}/"));
        let sudo = if !inside && h.host.sudo && !h.is_root().await? {
            "sudo -n "
        } else {
            ""
        };
        let script = format!(
            "{sudo}sh -c {inner} sh {p}",
            inner = q(&format!(
                "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && chmod {mode:o} \"$1\""
            )),
            p = q(&path)
        );
        let limit = SHORT + Duration::from_secs((data.len() / (1 << 20)) as u64);
        let o = h.run(&step, &script, Some(data), limit).await?;
        if o.ok() {
            return Ok(());
        }
        if !sudo.is_empty() {
            return Err(h.sudo_failure(&step, &o));
        }
        let why = o.why();
        if why.contains("Permission denied") && !h.is_root().await.unwrap_or(true) {
            return Err(BackendError::Other(format!(
                "host {}: {step}: permission denied (user {} is not root; set sudo = true in the inventory to write outside the working directory)",
                h.host.name,
                h.host.user.as_deref().unwrap_or("(ssh default)")
            )));
        }
        Err(BackendError::Other(format!(
            "host {}: {step}: {why}",
            h.host.name
        )))
    }

    /// Starts the service detached, in its own session and process group; returns its pid.
    async fn start_service(&self, h: &HostConn, w: &str) -> Result<(), BackendError> {
        let script = format!(
            "{GROUP_STATE}cd {w} || exit 1; \
             if [ -s service.pid ]; then pid=$(cat service.pid); [ \"$(group_state)\" = exited ] || exit 0; fi; \
             rm -f service.pid; : >> service.log; \
             (setsid sh .cluster-sim/run.sh >> service.log 2>&1 < /dev/null &); \
             i=0; while [ ! -s service.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
             [ -s service.pid ] || {{ echo 'the service did not start' >&2; exit 1; }}",
            w = q(w)
        );
        h.run_ok("start service", &script, None, SHORT)
            .await
            .map(|_| ())
    }

    /// Signals the service's process group: `how` is kill, stop, pause or unpause.
    async fn signal_service(
        &self,
        h: &HostConn,
        w: &str,
        how: NodeAction,
        grace: u32,
    ) -> Result<(), BackendError> {
        let body = match how {
            NodeAction::Kill => "kill -KILL -- -\"$pid\" 2>/dev/null; wait_gone 100".to_string(),
            NodeAction::Pause => "kill -STOP -- -\"$pid\" 2>/dev/null || true".to_string(),
            NodeAction::Unpause => "kill -CONT -- -\"$pid\" 2>/dev/null || true".to_string(),
            _ => format!(
                "kill -TERM -- -\"$pid\" 2>/dev/null; kill -CONT -- -\"$pid\" 2>/dev/null; \
                 wait_gone {}; [ \"$(group_state)\" = exited ] || {{ kill -KILL -- -\"$pid\" 2>/dev/null; wait_gone 100; }}",
                grace * 20
            ),
        };
        let script = format!(
            "{GROUP_STATE}wait_gone() {{ i=0; while [ \"$(group_state)\" != exited ] && [ $i -lt $1 ]; do sleep 0.05; i=$((i+1)); done; }}; \
             cd {w} 2>/dev/null || exit 0; [ -s service.pid ] || exit 0; pid=$(cat service.pid); {body}",
            w = q(w)
        );
        h.run_ok(
            &how.to_string(),
            &script,
            None,
            SHORT + Duration::from_secs(grace.into()),
        )
        .await
        .map(|_| ())
    }

    async fn launch_node(&self, cluster: &str, n: &NodeLaunch) -> Result<(), BackendError> {
        let (h, w) = self.locate(cluster, &n.spec.name).await?;
        self.mark_touched(cluster, &n.spec.name);
        self.prepare_workdir(h, &w).await?;
        // Owner and node name first, before anything that needs removing exists: a harness
        // killed from here on leaves a directory its watchdog (or a reaper) can find and judge.
        let expires = {
            let st = self.inner.state.lock().expect("state lock");
            st.leases.get(cluster).copied().flatten()
        };
        self.put(
            h,
            &w,
            &format!("{w}/{}", super::owner::OWNER_FILE),
            super::owner::owner_text(expires).as_bytes(),
            0o644,
        )
        .await?;
        self.put(
            h,
            &w,
            &format!("{w}/.cluster-sim/node"),
            format!("{}\n", n.spec.name).as_bytes(),
            0o644,
        )
        .await?;
        // What a lookup reports of the node beside its name (the name file stays one line:
        // earlier versions read it whole).
        self.put(
            h,
            &w,
            &format!("{w}/.cluster-sim/about"),
            format!("index={}\nroles={}\n", n.spec.index, n.spec.roles.join(",")).as_bytes(),
            0o644,
        )
        .await?;
        self.install_packages(h, &n.spec.packages).await?;
        self.place_binaries(h, &w, &n.spec.name, &n.binaries)
            .await?;
        for (path, data, mode) in &n.files {
            self.put(h, &w, path, data, *mode)
                .await
                .map_err(|e| match e {
                    BackendError::Other(m) => {
                        BackendError::Other(m.replacen(": write ", ": upload ", 1))
                    }
                    e => e,
                })?;
        }
        let mut env = String::new();
        for (k, v) in &n.spec.env {
            if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || k.is_empty()
                || k.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(BackendError::Other(format!(
                    "host {}: node {}: bad environment variable name {k:?}",
                    h.host.name, n.spec.name
                )));
            }
            env.push_str(&format!("{k}={}; export {k}\n", q(v)));
        }
        let command = n
            .spec
            .command
            .clone()
            .unwrap_or_else(|| "exec sleep 2147483647".into());
        let run = format!(
            "#!/bin/sh\n# The service of node {node} of cluster {cluster}, started by cluster-sim's ssh backend.\n\
             echo $$ > {w}/service.pid\ncd {w} || exit 1\n{PATH_PREFIX}\n. {w}/.cluster-sim/env\n{faketime}exec sh -c {cmd}\n",
            node = n.spec.name,
            w = q(&w),
            cmd = q(&command),
            faketime = faketime_lines(&w),
        );
        let meta = format!("{w}/.cluster-sim");
        self.put(h, &w, &format!("{meta}/env"), env.as_bytes(), 0o644)
            .await?;
        self.put(h, &w, &format!("{meta}/run.sh"), run.as_bytes(), 0o755)
            .await?;
        self.start_service(h, &w).await
    }

    async fn teardown_node(
        &self,
        h: &HostConn,
        cluster: &str,
        w: &str,
    ) -> Result<(), BackendError> {
        // Fault rules first: a partition must not outlive the cluster on a long-lived host.
        self.clear_faults(h, cluster).await;
        self.signal_service(h, w, NodeAction::Stop, 5).await?;
        let script = format!("rm -rf -- {w}", w = q(w));
        let o = h.run("remove workdir", &script, None, SHORT).await?;
        if o.ok() {
            return Ok(());
        }
        if h.host.sudo && !h.is_root().await? {
            let o = h
                .run("remove workdir", &format!("sudo -n {script}"), None, SHORT)
                .await?;
            if o.ok() {
                return Ok(());
            }
            return Err(h.sudo_failure(&format!("remove workdir {w}"), &o));
        }
        Err(BackendError::Other(format!(
            "host {}: remove workdir {w}: {}",
            h.host.name,
            o.why()
        )))
    }
}

/// The clock file libfaketime reads the service's offset from (`fault.rs` writes it).
pub(super) fn clock_file(w: &str) -> String {
    format!("{w}/.cluster-sim/faketime")
}

/// Launcher lines that preload libfaketime into the service (and only the service) when the
/// node's env says `CLUSTER_SIM_FAKETIME=1` and the host has it. Opt-in, as on docker:
/// libfaketime deadlocks programs linked with jemalloc.
fn faketime_lines(w: &str) -> String {
    format!(
        "if [ \"${{CLUSTER_SIM_FAKETIME:-0}}\" = 1 ]; then\n  \
         for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e \"$f\" ] && export LD_PRELOAD=\"$f\" FAKETIME_TIMESTAMP_FILE={file} FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1; done\n\
         fi\n",
        file = q(&clock_file(w))
    )
}

/// `path` made absolute against the node's working directory.
fn absolute(w: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{w}/{}", path.trim_start_matches("./"))
    }
}

#[async_trait]
impl Backend for SshBackend {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &crate::backend::types::Lease,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        if !valid_cluster_name(cluster) {
            return Err(BackendError::Other(format!(
                "cluster name {cluster:?} can't name a directory (letters, digits, '-', '_', '.')"
            )));
        }
        let placement = self
            .inner
            .inventory
            .place(spec)
            .map_err(|e| BackendError::Other(e.to_string()))?;
        let mut nodes = BTreeMap::new();
        let mut out = Vec::new();
        for (n, &i) in spec.nodes.iter().zip(&placement) {
            let host = &self.inner.inventory.hosts[i];
            let workdir = format!("{}/{cluster}", host.workdir);
            nodes.insert(
                n.name.clone(),
                Placed {
                    host: i,
                    workdir: workdir.clone(),
                    touched: false,
                },
            );
            out.push(NodeAddr {
                name: n.name.clone(),
                address: host.node_address.clone(),
                workdir,
            });
        }
        let mut st = self.inner.state.lock().expect("state lock");
        if st.clusters.contains_key(cluster) {
            return Err(BackendError::Other(format!(
                "a cluster named {cluster:?} already exists"
            )));
        }
        st.clusters.insert(cluster.to_string(), nodes);
        st.leases.insert(cluster.to_string(), lease.expires);
        Ok(out)
    }

    async fn launch(&self, cluster: &str, nodes: &[NodeLaunch]) -> Result<(), BackendError> {
        let placed = self
            .placed(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        // Reach every host first, in parallel: a bad host fails at `connect`, before any work.
        let mut hosts: Vec<usize> = placed.values().map(|p| p.host).collect();
        hosts.sort_unstable();
        hosts.dedup();
        futures::future::try_join_all(hosts.iter().map(|&i| self.inner.hosts[i].ensure())).await?;
        futures::future::try_join_all(nodes.iter().map(|n| self.launch_node(cluster, n))).await?;
        Ok(())
    }

    async fn exec(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        let switch = match req.user.as_deref() {
            None => String::new(),
            Some(u) if Some(u) == h.host.user.as_deref() => String::new(),
            Some(u) => {
                if h.is_root().await? {
                    format!("runuser -u {} -- ", q(u))
                } else if h.host.sudo {
                    format!("sudo -n -u {} -- ", q(u))
                } else {
                    return Err(BackendError::Other(format!(
                        "host {}: exec as user {u}: needs root or sudo (sudo = true in the inventory)",
                        h.host.name
                    )));
                }
            }
        };
        let cd = match &req.workdir {
            Some(_) => "cd \"$2\" || exit 126",
            None => "cd \"$2\" 2>/dev/null || cd /",
        };
        // The command writes to files of its own, sent once it ends: a background child it
        // leaves behind keeps its (unlinked) file, never the channel, so the reply ends when
        // the command does and holds only what the command wrote.
        let inner = format!(
            "{PATH_PREFIX}if [ -r \"$1/.cluster-sim/env\" ]; then . \"$1/.cluster-sim/env\"; fi; \
             t=$(mktemp -d \"${{TMPDIR:-/tmp}}/.cluster-sim-exec.XXXXXX\") || exit 125; \
             {cd}; shift 2; \"$@\" >\"$t/o\" 2>\"$t/e\" </dev/null; c=$?; \
             if [ -s \"$t/o\" ]; then cat \"$t/o\"; fi; if [ -s \"$t/e\" ]; then cat \"$t/e\" >&2; fi; \
             rm -rf \"$t\"; exit $c"
        );
        let mut script = format!(
            "{switch}sh -c {} sh {} {} env",
            q(&inner),
            q(&w),
            q(req
                .workdir
                .as_deref()
                .map(|d| absolute(&w, d))
                .as_deref()
                .unwrap_or(&w))
        );
        for (k, v) in &req.env {
            script.push(' ');
            script.push_str(&q(&format!("{k}={v}")));
        }
        let secs = req.timeout.as_secs_f64().max(0.001);
        script.push_str(&format!(" timeout -k 2 {secs:.3}"));
        for a in &req.argv {
            script.push(' ');
            script.push_str(&q(a));
        }
        let started = Instant::now();
        // The in-host `timeout` enforces the deadline; this backstop covers a stuck connection.
        let limit = req.timeout + Duration::from_secs(10);
        let (mut stdout, mut stderr) = ExecOutput::captures(node, req);
        let r = h
            .run_into("exec", &script, None, limit, &mut stdout, &mut stderr)
            .await;
        let duration = started.elapsed();
        let code = match r {
            Ok(code) => code.map_or(-1, i64::from),
            Err(BackendError::Other(m)) if m.contains("no answer within") => 137,
            Err(e) => return Err(e),
        };
        let out = ExecOutput::from_captured(node, req, code, (stdout, stderr), duration, false);
        if !switch.is_empty() && code == 1 && out.stderr.starts_with(b"sudo:") {
            let o = Output {
                code: Some(1),
                stdout: out.stdout,
                stderr: out.stderr,
            };
            return Err(h.sudo_failure(
                &format!("exec as user {}", req.user.as_deref().unwrap_or("")),
                &o,
            ));
        }
        let timed_out = code == 124 || (code == 137 && duration >= req.timeout);
        Ok(ExecOutput { timed_out, ..out })
    }

    async fn write_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        self.put(h, &w, path, data, mode).await
    }

    async fn read_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
    ) -> Result<Vec<u8>, BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        let path = absolute(&w, path);
        let inside = path.starts_with(&format!("{w}/"));
        let sudo = if !inside && h.host.sudo && !h.is_root().await? {
            "sudo -n "
        } else {
            ""
        };
        let step = format!("read {path}");
        let script = format!(
            "if [ -d {p} ]; then echo 'is a directory' >&2; exit 2; fi; {sudo}cat -- {p}",
            p = q(&path)
        );
        let o = h.run(&step, &script, None, SHORT * 5).await?;
        if o.ok() {
            return Ok(o.stdout);
        }
        let why = o.why();
        if why.contains("No such file") {
            return Err(BackendError::Other("no such file".into()));
        }
        if why.contains("is a directory") {
            return Err(BackendError::Other("is a directory".into()));
        }
        if !sudo.is_empty() {
            return Err(h.sudo_failure(&step, &o));
        }
        Err(BackendError::Other(format!(
            "host {}: {step}: {why}",
            h.host.name
        )))
    }

    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        let script = format!("cat -- {}/service.log 2>/dev/null || true", q(&w));
        Ok(h.run_ok("logs", &script, None, SHORT * 5).await?.stdout)
    }

    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        match action {
            NodeAction::Start => self.start_service(h, &w).await,
            NodeAction::Restart => {
                self.signal_service(h, &w, NodeAction::Stop, STOP_GRACE_SECS)
                    .await?;
                self.start_service(h, &w).await
            }
            a => self.signal_service(h, &w, a, STOP_GRACE_SECS).await,
        }
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        let script = format!(
            "{GROUP_STATE}cd {w} 2>/dev/null || {{ echo gone; exit 0; }}; [ -s service.pid ] || {{ echo created; exit 0; }}; pid=$(cat service.pid); group_state",
            w = q(&w)
        );
        let o = h.run_ok("state", &script, None, SHORT).await?;
        Ok(match String::from_utf8_lossy(&o.stdout).trim() {
            "running" => NodeState::Running,
            "paused" => NodeState::Paused,
            "exited" => NodeState::Exited,
            "created" => NodeState::Created,
            _ => NodeState::Unknown,
        })
    }

    async fn keep(
        &self,
        cluster: &str,
        mark: &crate::backend::KeepMark,
    ) -> Result<(), BackendError> {
        // Appended to each node's owner file: watchdogs and reapers leave the cluster alone.
        let nodes = self.locate_cluster(cluster).await?;
        let lines = q(&super::owner::kept_text(mark));
        let jobs = nodes.values().map(|p| {
            let lines = lines.clone();
            async move {
                let h = &self.inner.hosts[p.host];
                let f = q(&format!("{}/{}", p.workdir, super::owner::OWNER_FILE));
                let o = h
                    .run(
                        "keep cluster",
                        &format!("printf %s {lines} >> {f}"),
                        None,
                        SHORT,
                    )
                    .await?;
                if o.ok() {
                    Ok(())
                } else {
                    Err(BackendError::Other(format!(
                        "host {}: keep cluster {cluster}: {}",
                        h.host.name,
                        o.why()
                    )))
                }
            }
        });
        futures::future::try_join_all(jobs).await?;
        Ok(())
    }

    async fn destroy(&self, cluster: &str) -> Result<(), BackendError> {
        let nodes = match self.locate_cluster(cluster).await {
            Ok(n) => n,
            Err(BackendError::UnknownCluster(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let jobs = nodes
            .values()
            .filter(|p| p.touched)
            .map(|p| self.teardown_node(&self.inner.hosts[p.host], cluster, &p.workdir));
        let errors: Vec<String> = futures::future::join_all(jobs)
            .await
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        let still_used: Vec<usize> = {
            let mut st = self.inner.state.lock().expect("state lock");
            st.clusters.remove(cluster);
            st.leases.remove(cluster);
            st.clusters
                .values()
                .flat_map(|c| c.values().map(|p| p.host))
                .collect()
        };
        // Close the masters no other cluster of this backend uses.
        let mut hosts: Vec<usize> = nodes.values().map(|p| p.host).collect();
        hosts.sort_unstable();
        hosts.dedup();
        let closing = hosts
            .into_iter()
            .filter(|i| !still_used.contains(i))
            .map(|i| self.inner.hosts[i].close());
        futures::future::join_all(closing).await;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(BackendError::Other(format!(
                "teardown of {cluster}: {}",
                errors.join("; ")
            )))
        }
    }

    fn shares_hosts(&self) -> bool {
        // Every cluster of a run lands on the inventory's few hosts: same ports, same hosts.
        true
    }

    fn faults(&self) -> Option<&dyn crate::backend::faults::FaultBackend> {
        Some(self)
    }

    fn janitor(&self) -> Option<&dyn crate::backend::janitor::Janitor> {
        Some(self)
    }

    fn lookup(&self) -> Option<&dyn crate::backend::lookup::Lookup> {
        Some(self)
    }

    fn shell(&self) -> Option<&dyn crate::backend::shell::ShellBackend> {
        Some(self)
    }
}
