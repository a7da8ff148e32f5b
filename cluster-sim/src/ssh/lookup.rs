//! Lookup on the ssh hosts (`Lookup`): a cluster's nodes are the working directories under
//! each host's base directory that hold a node file (`.cluster-sim/node`), so a process that
//! never saw a cluster (the CLI) finds it from the inventory alone.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::conn::HostConn;
use super::hosts::{valid_cluster_name, SshBackend, HOUSEKEEPING_LIMIT};
use super::workdir::GROUP_STATE;
use crate::backend::lookup::{ClusterSummary, HostSummary, Lookup, NodeSummary};
use crate::backend::types::NodeState;
use crate::error::BackendError;
use crate::shell::quote as q;

/// One node directory found on a host.
struct Found {
    cluster: String,
    node: NodeSummary,
    kept: bool,
    /// What its owner file's keep lines say.
    mark: crate::backend::KeepMark,
    /// Its position in the spec, where the host recorded it.
    index: Option<usize>,
}

impl SshBackend {
    /// The node directories on `h` (of `only` that cluster, else of every cluster), each with
    /// its state and whether its owner file says kept.
    async fn list_nodes(
        &self,
        h: &HostConn,
        only: Option<&str>,
    ) -> Result<Vec<Found>, BackendError> {
        let glob = match only {
            Some(c) => format!("{}/", q(&format!("{}/{c}", h.host.workdir))),
            None => format!("{}/*/", q(&h.host.workdir)),
        };
        // One line per node: cluster, node, kept, state, index, roles, and the owner file's
        // `kept_*` lines joined by US (0x1f), tab-separated.
        let script = format!(
            "{GROUP_STATE}for d in {glob}; do [ -f \"$d.cluster-sim/node\" ] || continue; \
             c=${{d%/}}; c=${{c##*/}}; n=$(head -n1 \"$d.cluster-sim/node\"); \
             k=0; grep -qx kept=1 \"$d.owner\" 2>/dev/null && k=1; \
             m=$(grep '^kept_' \"$d.owner\" 2>/dev/null | tr '\\n' '\\037'); \
             if [ -s \"$d/service.pid\" ]; then pid=$(cat \"$d/service.pid\"); s=$(group_state); else s=created; fi; \
             i=$(sed -n 's/^index=//p' \"$d.cluster-sim/about\" 2>/dev/null); \
             r=$(sed -n 's/^roles=//p' \"$d.cluster-sim/about\" 2>/dev/null); \
             printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$c\" \"$n\" \"$k\" \"$s\" \"$i\" \"$r\" \"$m\"; done"
        );
        let o = h
            .run_ok("list clusters", &script, None, HOUSEKEEPING_LIMIT)
            .await?;
        Ok(String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let (cluster, node, kept, state) = (f.next()?, f.next()?, f.next()?, f.next()?);
                let index = f.next().and_then(|i| i.parse().ok());
                let roles = f.next().unwrap_or("");
                let mark =
                    super::owner::OwnerFile::parse(&f.next().unwrap_or("").replace('\x1f', "\n"))
                        .mark;
                Some(Found {
                    cluster: cluster.to_string(),
                    kept: kept == "1",
                    mark,
                    index,
                    node: NodeSummary {
                        name: node.to_string(),
                        index: index.unwrap_or(0),
                        address: h.host.node_address.clone(),
                        workdir: format!("{}/{cluster}", h.host.workdir),
                        state: match state {
                            "running" => NodeState::Running,
                            "paused" => NodeState::Paused,
                            "exited" => NodeState::Exited,
                            "created" => NodeState::Created,
                            _ => NodeState::Unknown,
                        },
                        roles: roles
                            .split(',')
                            .filter(|r| !r.is_empty())
                            .map(str::to_string)
                            .collect(),
                        place: h.host.name.clone(),
                        ports: Vec::new(),
                    },
                })
            })
            .collect())
    }

    /// Every node found on every reachable host (an unreachable one is a warning).
    async fn found(&self, only: Option<&str>) -> Vec<Found> {
        let lists =
            futures::future::join_all(self.hosts().iter().map(|h| self.list_nodes(h, only))).await;
        let mut out = Vec::new();
        for l in lists {
            match l {
                Ok(l) => out.extend(l),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out
    }
}

/// Nodes in spec order: by the index each host recorded, else (clusters made before hosts
/// recorded one) by name, with `n2` before `n10`.
fn in_order(found: Vec<Found>) -> Vec<NodeSummary> {
    let mut nodes: Vec<(Option<usize>, NodeSummary)> =
        found.into_iter().map(|f| (f.index, f.node)).collect();
    let by_name = |n: &NodeSummary| {
        let digits = n.name.trim_start_matches(|c: char| !c.is_ascii_digit());
        let stem = &n.name[..n.name.len() - digits.len()];
        (stem.to_string(), digits.parse::<u64>().unwrap_or(u64::MAX))
    };
    nodes.sort_by(|(ia, a), (ib, b)| (ia, by_name(a)).cmp(&(ib, by_name(b))));
    nodes
        .into_iter()
        .enumerate()
        .map(|(i, (recorded, mut n))| {
            n.index = recorded.unwrap_or(i);
            n
        })
        .collect()
}

#[async_trait]
impl Lookup for SshBackend {
    async fn clusters(&self) -> Result<Vec<ClusterSummary>, BackendError> {
        let mut by_name: BTreeMap<String, (bool, crate::backend::KeepMark, Vec<Found>)> =
            BTreeMap::new();
        for f in self.found(None).await {
            let c = by_name.entry(f.cluster.clone()).or_default();
            c.0 |= f.kept;
            if f.kept && c.1 == crate::backend::KeepMark::default() {
                c.1 = f.mark.clone();
            }
            c.2.push(f);
        }
        Ok(by_name
            .into_iter()
            .map(|(name, (kept, mark, found))| ClusterSummary {
                name,
                kept,
                mark,
                nodes: in_order(found),
            })
            .collect())
    }

    async fn nodes(&self, cluster: &str) -> Result<Vec<NodeSummary>, BackendError> {
        if !valid_cluster_name(cluster) {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        let found = self.found(Some(cluster)).await;
        if found.is_empty() {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        Ok(in_order(found))
    }

    fn hosts(&self) -> Vec<HostSummary> {
        self.inventory()
            .hosts
            .iter()
            .map(|h| HostSummary {
                name: h.name.clone(),
                address: h.node_address.clone(),
                roles: h.roles.clone(),
            })
            .collect()
    }

    async fn host_exec(&self, host: &str, script: &str) -> Result<(i64, Vec<u8>), BackendError> {
        SshBackend::host_exec(self, host, script).await
    }
}
