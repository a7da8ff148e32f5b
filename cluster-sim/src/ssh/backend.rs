//! The ssh backend's node life (`impl Backend`): nodes are inventory hosts, reached over one
//! multiplexed OpenSSH master each. Beside it: the state and hosts (`hosts.rs`), where nodes
//! are (`placement.rs`), what a node's directory holds (`workdir.rs`), launch and teardown
//! (`launch.rs`), cleanup (`janitor.rs`), lookup (`lookup.rs`) and nodes joining and leaving
//! (`membership.rs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::conn::Output;
pub use super::hosts::SshBackend;
use super::hosts::{valid_cluster_name, Placed, HOUSEKEEPING_LIMIT, PATH_PREFIX, STOP_GRACE_SECS};
use super::owner::{kept_text, OWNER_FILE};
use super::workdir::{absolute, GROUP_STATE};
use crate::backend::contract::Backend;
use crate::backend::types::{
    KeepMark, Lease, LogChunk, NodeAction, NodeAddr, NodeLaunch, NodeState,
};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::shell::quote as q;
use crate::spec::ClusterSpec;

/// Exit code of a read whose path is a directory.
const IS_DIR: i32 = 92;

/// Exit code of a read whose path does not exist.
const NO_FILE: i32 = 93;

#[async_trait]
impl Backend for SshBackend {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &Lease,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        if !valid_cluster_name(cluster) {
            return Err(BackendError::refused(
                format!("cluster name {cluster:?}"),
                "it can't name a directory (letters, digits, '-', '_', '.')",
            ));
        }
        let placement = self
            .inner
            .inventory
            .place(spec)
            .map_err(|e| BackendError::refused("place the nodes", e.to_string()))?;
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
        let mut st = self.state();
        if st.clusters.contains_key(cluster) {
            return Err(BackendError::NameTaken {
                cluster: cluster.to_string(),
                held_by: None,
            });
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
                    return Err(BackendError::refused(
                        format!("host {}: exec as user {u}", h.host.name),
                        "needs root or sudo (sudo = true in the inventory)",
                    ));
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
            // The in-host `timeout` did not end it: the backstop did.
            Err(BackendError::Timeout { .. }) => 137,
            Err(e) => return Err(e),
        };
        let out = ExecOutput::from_captured(node, req, code, (stdout, stderr), duration, false);
        if !switch.is_empty() && code == 1 && super::said::sudo_refused(&out.stderr) {
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

    async fn replace_binary(
        &self,
        cluster: &str,
        node: &str,
        binary: &crate::service::Placement,
    ) -> Result<(), BackendError> {
        // The same upload and copy as at launch: the copy is renamed over the old file.
        let (h, w) = self.locate(cluster, node).await?;
        self.place_binaries(h, &w, node, std::slice::from_ref(binary))
            .await
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
        self.put(h, &w, path, data, mode, "write").await
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
        // The checks run with the reader's rights (sudo's where it reads), and answer in exit
        // codes of their own: a directory, or nothing there.
        let script = format!(
            "{sudo}sh -c {check} sh {p}",
            check = q(&format!(
                "if [ -d \"$1\" ]; then exit {IS_DIR}; fi; if [ ! -e \"$1\" ]; then exit {NO_FILE}; fi; exec cat -- \"$1\""
            )),
            p = q(&path)
        );
        let o = h.run(&step, &script, None, HOUSEKEEPING_LIMIT * 5).await?;
        match o.code {
            Some(0) => Ok(o.stdout),
            Some(IS_DIR) => Err(BackendError::IsDirectory),
            Some(NO_FILE) => Err(BackendError::NoSuchFile),
            _ if !sudo.is_empty() => Err(h.sudo_failure(&step, &o)),
            _ => Err(h.fail(&step, o.why())),
        }
    }

    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError> {
        let (h, w) = self.locate(cluster, node).await?;
        let script = format!("cat -- {}/service.log 2>/dev/null || true", q(&w));
        Ok(h.run_ok("logs", &script, None, HOUSEKEEPING_LIMIT * 5)
            .await?
            .stdout)
    }

    async fn logs_from(
        &self,
        cluster: &str,
        node: &str,
        offset: u64,
    ) -> Result<LogChunk, BackendError> {
        // Only what lies past `offset` crosses the connection; a log now shorter was
        // truncated or replaced: all of it. The first line says where the bytes start.
        let (h, w) = self.locate(cluster, node).await?;
        let script = format!(
            "f={f}; [ -f \"$f\" ] || {{ echo 0; exit 0; }}; n=$(wc -c < \"$f\"); \
             if [ \"$n\" -lt {offset} ]; then echo 0; exec cat -- \"$f\"; fi; \
             echo {offset}; exec tail -c +{next} -- \"$f\"",
            f = q(&format!("{w}/service.log")),
            next = offset + 1,
        );
        let out = h
            .run_ok("logs", &script, None, HOUSEKEEPING_LIMIT * 5)
            .await?
            .stdout;
        let nl = out.iter().position(|b| *b == b'\n').unwrap_or(out.len());
        let from = std::str::from_utf8(&out[..nl])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        Ok(LogChunk {
            from,
            bytes: out.get(nl + 1..).unwrap_or_default().to_vec(),
        })
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
        let o = h.run_ok("state", &script, None, HOUSEKEEPING_LIMIT).await?;
        Ok(match String::from_utf8_lossy(&o.stdout).trim() {
            "running" => NodeState::Running,
            "paused" => NodeState::Paused,
            "exited" => NodeState::Exited,
            "created" => NodeState::Created,
            _ => NodeState::Unknown,
        })
    }

    async fn keep(&self, cluster: &str, mark: &KeepMark) -> Result<(), BackendError> {
        // Appended to each node's owner file: watchdogs and reapers leave the cluster alone.
        let nodes = self.locate_cluster(cluster).await?;
        let lines = q(&kept_text(mark));
        let jobs = nodes.values().map(|p| {
            let lines = lines.clone();
            async move {
                let h = &self.inner.hosts[p.host];
                let f = q(&format!("{}/{}", p.workdir, OWNER_FILE));
                let o = h
                    .run(
                        "keep cluster",
                        &format!("printf %s {lines} >> {f}"),
                        None,
                        HOUSEKEEPING_LIMIT,
                    )
                    .await?;
                if o.ok() {
                    Ok(())
                } else {
                    Err(h.fail(&format!("keep cluster {cluster}"), o.why()))
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
            let mut st = self.state();
            st.clusters.remove(cluster);
            st.leases.remove(cluster);
            st.owners.remove(cluster);
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
            Err(BackendError::Teardown {
                cluster: cluster.to_string(),
                failures: errors,
            })
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

    fn membership(&self) -> Option<&dyn crate::backend::membership::Membership> {
        Some(self)
    }
}
