//! The memory backend's records and `impl Backend`: a cluster is a record with a directory of
//! its own on this machine (`<temp dir>/cluster-sim-memory.XXXXXX/`), a node a record with a
//! subdirectory (its working directory), its state and a log of what happened to it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;

use super::process;
use crate::backend::contract::Backend;
use crate::backend::janitor::Janitor;
use crate::backend::lookup::Lookup;
use crate::backend::ownership::{current_owner, run_id};
use crate::backend::types::{Lease, NodeAction, NodeAddr, NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::ClusterSpec;

/// Every node's address: they all run on this machine.
pub(super) const ADDRESS: &str = "127.0.0.1";

/// One node.
#[derive(Debug)]
pub(super) struct NodeRec {
    pub(super) index: usize,
    pub(super) roles: Vec<String>,
    pub(super) workdir: PathBuf,
    /// The node's environment from its launch (the spec's and `CLUSTER_SIM_*`), which every
    /// command gets, as a container's processes get the container's.
    pub(super) env: Vec<(String, String)>,
    pub(super) state: NodeState,
    /// What happened to the node, a line each: its "service log".
    pub(super) log: Vec<u8>,
    /// Process groups of the commands running on it.
    pub(super) running: HashSet<u32>,
}

impl NodeRec {
    fn note(&mut self, line: &str) {
        let at = humantime::format_rfc3339_millis(SystemTime::now());
        self.log
            .extend_from_slice(format!("{at} {line}\n").as_bytes());
    }

    /// Sends every running command's process group `signal`.
    pub(super) fn signal_all(&self, signal: &str) {
        for pgid in &self.running {
            process::signal_group(*pgid, signal);
        }
    }
}

/// One cluster.
#[derive(Debug)]
pub(super) struct ClusterRec {
    pub(super) run: String,
    pub(super) owner: String,
    pub(super) expires: Option<SystemTime>,
    pub(super) kept: bool,
    /// Who kept it and from which spec (see `Backend::keep`).
    pub(super) mark: crate::backend::KeepMark,
    pub(super) nodes: BTreeMap<String, NodeRec>,
    /// The cluster's directory; removed with the record.
    pub(super) dir: tempfile::TempDir,
}

/// The memory backend. Cheap to clone; clones share the records.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    clusters: Arc<Mutex<BTreeMap<String, ClusterRec>>>,
}

impl MemoryBackend {
    /// A backend with no clusters.
    pub fn new() -> Self {
        Self::default()
    }

    pub(super) fn records(&self) -> MutexGuard<'_, BTreeMap<String, ClusterRec>> {
        self.clusters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a node's record.
    fn with_node<T>(
        &self,
        cluster: &str,
        node: &str,
        f: impl FnOnce(&mut NodeRec) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let mut all = self.records();
        let c = all
            .get_mut(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        let n = c
            .nodes
            .get_mut(node)
            .ok_or_else(|| BackendError::UnknownNode {
                cluster: cluster.to_string(),
                node: node.to_string(),
            })?;
        f(n)
    }

    /// A path on a node made absolute, refused outside its working directory: every node
    /// shares this machine, so a file elsewhere would be every node's (and the machine's).
    fn inside(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        op: &str,
    ) -> Result<PathBuf, BackendError> {
        let workdir = self.with_node(cluster, node, |n| Ok(n.workdir.clone()))?;
        let p = Path::new(path);
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            workdir.join(p)
        };
        let escapes = full
            .components()
            .any(|c| c == std::path::Component::ParentDir);
        if escapes || !full.starts_with(&workdir) {
            return Err(BackendError::refused(
                format!("{op} {path}"),
                format!(
                    "the memory backend's nodes share this machine, so files stay in the node's working directory ({})",
                    workdir.display()
                ),
            ));
        }
        Ok(full)
    }

    /// Removes a cluster's record and directory, killing what still runs on its nodes.
    pub(super) fn remove(&self, cluster: &str) {
        let rec = self.records().remove(cluster);
        if let Some(rec) = rec {
            for n in rec.nodes.values() {
                n.signal_all("KILL");
            }
            // The directory goes with the record (TempDir's drop).
        }
    }
}

fn local(what: String) -> impl FnOnce(std::io::Error) -> BackendError {
    move |source| BackendError::Local { what, source }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn membership(&self) -> Option<&dyn crate::backend::membership::Membership> {
        Some(self)
    }

    async fn allocate(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        lease: &Lease,
    ) -> Result<Vec<NodeAddr>, BackendError> {
        if let Some(n) = spec.nodes.iter().find(|n| n.command.is_some()) {
            return Err(BackendError::refused(
                format!("node {}'s service command", n.name),
                "the memory backend runs no services (only commands through exec); use docker or ssh",
            ));
        }
        let mut all = self.records();
        if all.contains_key(cluster) {
            return Err(BackendError::NameTaken {
                cluster: cluster.to_string(),
                held_by: Some("in this process".into()),
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("cluster-sim-memory.")
            .tempdir()
            .map_err(local("a directory for the cluster".into()))?;
        let mut nodes = BTreeMap::new();
        let mut out = Vec::new();
        for n in &spec.nodes {
            let workdir = dir.path().join(&n.name);
            std::fs::create_dir_all(workdir.join("tmp"))
                .map_err(local(format!("create {}", workdir.display())))?;
            out.push(NodeAddr {
                name: n.name.clone(),
                address: ADDRESS.into(),
                workdir: workdir.display().to_string(),
            });
            nodes.insert(
                n.name.clone(),
                NodeRec {
                    index: n.index,
                    roles: n.roles.clone(),
                    env: Vec::new(),
                    workdir,
                    state: NodeState::Created,
                    log: Vec::new(),
                    running: HashSet::new(),
                },
            );
        }
        all.insert(
            cluster.to_string(),
            ClusterRec {
                run: run_id().to_string(),
                owner: current_owner(),
                expires: lease.expires,
                kept: false,
                mark: Default::default(),
                nodes,
                dir,
            },
        );
        Ok(out)
    }

    async fn launch(&self, cluster: &str, nodes: &[NodeLaunch]) -> Result<(), BackendError> {
        for n in nodes {
            let name = &n.spec.name;
            for (path, data, mode) in &n.files {
                self.write_file(cluster, name, path, data, *mode).await?;
            }
            for b in &n.binaries {
                let dest = self.inside(cluster, name, &b.dest, "place")?;
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(local(format!("create {}", parent.display())))?;
                }
                std::fs::copy(&b.source, &dest).map_err(local(format!(
                    "copy {} to {}",
                    b.what,
                    dest.display()
                )))?;
            }
            self.with_node(cluster, name, |rec| {
                rec.env = n
                    .spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                rec.state = NodeState::Running;
                rec.note("started (a record in this process; commands run in its directory)");
                Ok(())
            })?;
        }
        Ok(())
    }

    async fn replace_binary(
        &self,
        cluster: &str,
        node: &str,
        binary: &crate::service::Placement,
    ) -> Result<(), BackendError> {
        let dest = self.inside(cluster, node, &binary.dest, "place")?;
        let tmp = dest.with_extension("cs-new");
        std::fs::copy(&binary.source, &tmp).map_err(local(format!(
            "copy {} to {}",
            binary.what,
            tmp.display()
        )))?;
        // Renamed over the old file: a process running it keeps its own.
        std::fs::rename(&tmp, &dest).map_err(local(format!("rename to {}", dest.display())))
    }

    async fn exec(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError> {
        if let Some(u) = &req.user {
            return Err(BackendError::refused(
                format!("exec as user {u}"),
                "the memory backend runs commands as this process's user",
            ));
        }
        let (workdir, scratch, mut env) = {
            let all = self.records();
            let c = all
                .get(cluster)
                .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
            let n = c.nodes.get(node).ok_or_else(|| BackendError::UnknownNode {
                cluster: cluster.to_string(),
                node: node.to_string(),
            })?;
            if n.state != NodeState::Running {
                return Err(BackendError::NotRunning {
                    node: node.to_string(),
                    why: format!("it is {}", n.state),
                });
            }
            (n.workdir.clone(), c.dir.path().to_path_buf(), n.env.clone())
        };
        env.push(("HOME".into(), workdir.display().to_string()));
        env.push(("TMPDIR".into(), workdir.join("tmp").display().to_string()));
        process::run(
            node,
            &workdir,
            &scratch,
            &env,
            req,
            |pgid| {
                let _ = self.with_node(cluster, node, |n| Ok(n.running.insert(pgid)));
            },
            |pgid| {
                let _ = self.with_node(cluster, node, |n| Ok(n.running.remove(&pgid)));
            },
        )
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
        use std::os::unix::fs::PermissionsExt;
        let full = self.inside(cluster, node, path, "write")?;
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .map_err(local(format!("create {}", parent.display())))?;
        }
        std::fs::write(&full, data).map_err(local(format!("write {}", full.display())))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode))
            .map_err(local(format!("chmod {}", full.display())))
    }

    async fn read_file(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
    ) -> Result<Vec<u8>, BackendError> {
        let full = self.inside(cluster, node, path, "read")?;
        if full.is_dir() {
            return Err(BackendError::IsDirectory);
        }
        std::fs::read(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackendError::NoSuchFile,
            _ => BackendError::Local {
                what: format!("read {}", full.display()),
                source: e,
            },
        })
    }

    async fn logs(&self, cluster: &str, node: &str) -> Result<Vec<u8>, BackendError> {
        self.with_node(cluster, node, |n| Ok(n.log.clone()))
    }

    async fn logs_from(
        &self,
        cluster: &str,
        node: &str,
        offset: u64,
    ) -> Result<crate::backend::LogChunk, BackendError> {
        self.with_node(cluster, node, |n| {
            let from = usize::try_from(offset)
                .ok()
                .filter(|o| *o <= n.log.len())
                .unwrap_or(0);
            Ok(crate::backend::LogChunk {
                from: from as u64,
                bytes: n.log[from..].to_vec(),
            })
        })
    }

    async fn act(&self, cluster: &str, node: &str, action: NodeAction) -> Result<(), BackendError> {
        self.with_node(cluster, node, |n| {
            match action {
                NodeAction::Kill | NodeAction::Stop => {
                    n.signal_all("KILL");
                    n.state = NodeState::Exited;
                }
                NodeAction::Start => n.state = NodeState::Running,
                NodeAction::Restart => {
                    n.signal_all("KILL");
                    n.state = NodeState::Running;
                }
                NodeAction::Pause => {
                    n.signal_all("STOP");
                    n.state = NodeState::Paused;
                }
                NodeAction::Unpause => {
                    n.signal_all("CONT");
                    n.state = NodeState::Running;
                }
            }
            n.note(&action.to_string());
            Ok(())
        })
    }

    async fn state(&self, cluster: &str, node: &str) -> Result<NodeState, BackendError> {
        self.with_node(cluster, node, |n| Ok(n.state))
    }

    async fn keep(
        &self,
        cluster: &str,
        mark: &crate::backend::KeepMark,
    ) -> Result<(), BackendError> {
        let mut all = self.records();
        let c = all
            .get_mut(cluster)
            .ok_or_else(|| BackendError::UnknownCluster(cluster.to_string()))?;
        c.kept = true;
        c.mark = mark.clone();
        Ok(())
    }

    async fn destroy(&self, cluster: &str) -> Result<(), BackendError> {
        self.remove(cluster);
        Ok(())
    }

    fn janitor(&self) -> Option<&dyn Janitor> {
        Some(self)
    }

    fn lookup(&self) -> Option<&dyn Lookup> {
        Some(self)
    }
}
