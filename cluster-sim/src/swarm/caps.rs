//! The swarm backend's capabilities, each the docker backend's on the node's own engine (faults,
//! a shell) or on every engine (cleanup, lookup): workers first, then the manager, which holds
//! the overlay network and the name claim.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::backend::{in_engine, SwarmBackend};
use crate::backend::faults::{FaultBackend, NodeLayout};
use crate::backend::janitor::{Janitor, Reaped};
use crate::backend::lookup::{ClusterSummary, Lookup, NodeSummary};
use crate::backend::shell::{ShellBackend, ShellTerm};
use crate::error::BackendError;
use crate::exec::ExecOutput;
use crate::fault::capabilities::Capabilities;
use crate::fault::error::FaultError;
use crate::image::NODE_IMAGE;

#[async_trait]
impl FaultBackend for SwarmBackend {
    async fn layout(&self, cluster: &str, node: &str) -> Result<NodeLayout, FaultError> {
        let e = self
            .home(cluster, node)
            .await
            .map_err(FaultError::backend(node, "find its engine"))?;
        e.docker.layout(cluster, node).await
    }

    async fn run_root(
        &self,
        cluster: &str,
        node: &str,
        script: &str,
    ) -> Result<ExecOutput, FaultError> {
        let e = self
            .home(cluster, node)
            .await
            .map_err(FaultError::backend(node, "find its engine"))?;
        e.docker.run_root(cluster, node, script).await
    }

    async fn probe_kernel(&self) -> Result<Capabilities, FaultError> {
        // Every engine shares one kernel in the lab; on real machines the first speaks for all.
        self.image_on(0, NODE_IMAGE)
            .await
            .map_err(FaultError::backend("-", "probe kernel features"))?;
        self.engines[0].docker.probe_kernel().await
    }

    async fn disk(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        full: bool,
    ) -> Result<(), FaultError> {
        let e = self
            .home(cluster, node)
            .await
            .map_err(FaultError::backend(node, "find its engine"))?;
        // The helper runs the node image on the node's engine.
        let i = self
            .engines
            .iter()
            .position(|x| x.entry.name == e.entry.name)
            .unwrap_or(0);
        self.image_on(i, NODE_IMAGE)
            .await
            .map_err(FaultError::backend(node, "disk fault"))?;
        e.docker.disk(cluster, node, path, full).await
    }
}

/// Reaped lists of every engine as one, a cluster once.
fn merge(into: &mut Reaped, from: Reaped) {
    for c in from.removed {
        if !into.removed.contains(&c) {
            into.removed.push(c);
        }
    }
    for c in from.unknown {
        if !into.unknown.contains(&c) {
            into.unknown.push(c);
        }
    }
    into.stuck.extend(from.stuck);
    into.failed.extend(from.failed);
}

#[async_trait]
impl Janitor for SwarmBackend {
    async fn reap(&self) -> Result<Reaped, BackendError> {
        let mut out = Reaped::default();
        for (i, r) in self.each_engine(|e| e.docker.reap()).await {
            merge(
                &mut out,
                r.map_err(|e| in_engine(&self.engines[i].entry.name, "", e))?,
            );
        }
        Ok(out)
    }

    async fn remove_run(&self, run: &str) -> Result<Reaped, BackendError> {
        let mut out = Reaped::default();
        for (i, r) in self.each_engine(|e| e.docker.remove_run(run)).await {
            merge(
                &mut out,
                r.map_err(|e| in_engine(&self.engines[i].entry.name, "", e))?,
            );
        }
        Ok(out)
    }

    async fn remove_own(&self, cluster: &str) -> Result<(), BackendError> {
        if let Ok(mut homes) = self.homes.lock() {
            homes.remove(cluster);
        }
        let run = crate::backend::ownership::run_id();
        for (i, r) in self
            .each_engine(|e| e.docker.remove_part(cluster, Some(run)))
            .await
        {
            r.map_err(|e| in_engine(&self.engines[i].entry.name, "", e))?;
        }
        Ok(())
    }
}

#[async_trait]
impl Lookup for SwarmBackend {
    async fn clusters(&self) -> Result<Vec<ClusterSummary>, BackendError> {
        let asks = self.engines.iter().map(|e| Lookup::clusters(&e.docker));
        let answers = futures::future::join_all(asks).await;
        let mut merged: BTreeMap<String, ClusterSummary> = BTreeMap::new();
        for (i, a) in answers.into_iter().enumerate() {
            let name = &self.engines[i].entry.name;
            for mut c in a.map_err(|e| in_engine(name, "", e))? {
                for n in &mut c.nodes {
                    n.place = name.clone();
                }
                match merged.get_mut(&c.name) {
                    Some(m) => {
                        m.kept |= c.kept;
                        if m.mark == Default::default() {
                            m.mark = c.mark;
                        }
                        m.nodes.extend(c.nodes);
                    }
                    None => {
                        merged.insert(c.name.clone(), c);
                    }
                }
            }
        }
        Ok(merged
            .into_values()
            .map(|mut c| {
                c.nodes.sort_by_key(|n| n.index);
                c
            })
            .collect())
    }

    async fn nodes(&self, cluster: &str) -> Result<Vec<NodeSummary>, BackendError> {
        let asks = self
            .engines
            .iter()
            .map(|e| Lookup::nodes(&e.docker, cluster));
        let answers = futures::future::join_all(asks).await;
        let mut any = false;
        let mut out = Vec::new();
        for (i, a) in answers.into_iter().enumerate() {
            let name = &self.engines[i].entry.name;
            match a {
                Ok(nodes) => {
                    any = true;
                    out.extend(nodes.into_iter().map(|mut n| {
                        n.place = name.clone();
                        n
                    }));
                }
                Err(BackendError::UnknownCluster(_)) => {}
                Err(e) => return Err(in_engine(name, "", e)),
            }
        }
        if !any {
            return Err(BackendError::UnknownCluster(cluster.to_string()));
        }
        out.sort_by_key(|n| n.index);
        Ok(out)
    }
}

#[async_trait]
impl ShellBackend for SwarmBackend {
    async fn shell(&self, cluster: &str, node: &str, term: ShellTerm) -> Result<i64, BackendError> {
        let e = self.home(cluster, node).await?;
        e.docker.shell(cluster, node, term).await
    }
}
