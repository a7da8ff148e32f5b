//! Cleanup on the ssh hosts (`Janitor`): a cluster's owner file names its run and owner, so
//! a run's watchdog removes its run's clusters and a reaper (harness start, `cluster-sim
//! prune`) those whose owner is provably gone or whose lease ran out. A host that can't be
//! reached is a warning: its clusters wait for the next pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use async_trait::async_trait;

use super::backend::{SshBackend, SHORT};
use super::conn::HostConn;
use super::owner::{OwnerFile, OWNER_FILE};
use crate::backend::contract::Backend;
use crate::backend::janitor::{Janitor, Reaped};
use crate::backend::ownership::{judge, Verdict};
use crate::error::BackendError;
use crate::shell::quote as q;

/// Marks the separator between clusters in [`list_owners`]'s output.
const SEP: &str = "@@cluster-sim-owner ";

impl SshBackend {
    /// Every cluster on `h` with an owner file, and that file.
    async fn list_owners(&self, h: &HostConn) -> Result<Vec<(String, OwnerFile)>, BackendError> {
        let script = format!(
            "for f in {base}/*/{OWNER_FILE}; do [ -f \"$f\" ] || continue; \
             d=${{f%/*}}; echo \"{SEP}${{d##*/}}\"; cat \"$f\"; done",
            base = q(&h.host.workdir)
        );
        let o = h.run("list owners", &script, None, SHORT).await?;
        if !o.ok() {
            return Err(BackendError::Other(format!(
                "host {}: list owners: {}",
                h.host.name,
                o.why()
            )));
        }
        let text = String::from_utf8_lossy(&o.stdout);
        Ok(text
            .split(SEP)
            .filter_map(|chunk| {
                let (name, body) = chunk.split_once('\n')?;
                Some((name.trim().to_string(), OwnerFile::parse(body)))
            })
            .filter(|(n, _)| !n.is_empty())
            .collect())
    }

    /// Every cluster with an owner file on any host, and that file (the first host's, where
    /// several hold the cluster). A host that can't be reached is a warning: its clusters
    /// wait for the next pass.
    async fn owners(&self) -> BTreeMap<String, OwnerFile> {
        let lists = futures::future::join_all(self.hosts().iter().map(|h| self.list_owners(h)));
        let mut out = BTreeMap::new();
        for l in lists.await {
            match l {
                Ok(l) => {
                    for (cluster, f) in l {
                        // Kept is appended per node: kept anywhere is kept.
                        out.entry(cluster)
                            .and_modify(|e: &mut OwnerFile| e.kept |= f.kept)
                            .or_insert(f);
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        out
    }

    /// Destroys each cluster, noting what went and what failed.
    async fn destroy_all(&self, clusters: BTreeSet<String>, out: &mut Reaped) {
        for c in clusters {
            match Backend::destroy(self, &c).await {
                Ok(()) => out.removed.push(c),
                Err(e) => out.failed.push((c, e.to_string())),
            }
        }
    }
}

#[async_trait]
impl Janitor for SshBackend {
    async fn reap(&self) -> Result<Reaped, BackendError> {
        let now = SystemTime::now();
        let mut out = Reaped::default();
        let mut dead = BTreeSet::new();
        for (cluster, f) in self.owners().await {
            if f.kept {
                continue;
            }
            match judge(&f.owner, f.expires.as_deref(), now) {
                Verdict::Dead => {
                    dead.insert(cluster);
                }
                Verdict::Unknown if f.expires.is_none() => out.unknown.push(cluster),
                _ => {}
            }
        }
        self.destroy_all(dead, &mut out).await;
        Ok(out)
    }

    async fn remove_run(&self, run: &str) -> Result<Reaped, BackendError> {
        let mine = self
            .owners()
            .await
            .into_iter()
            .filter(|(_, f)| f.run == run && !f.kept)
            .map(|(c, _)| c)
            .collect();
        let mut out = Reaped::default();
        self.destroy_all(mine, &mut out).await;
        Ok(out)
    }

    async fn remove_own(&self, cluster: &str) -> Result<(), BackendError> {
        // Only a cluster this process placed: without a name claim on the hosts, a cluster of
        // that name found there may be another process's.
        if self.placed_here(cluster) {
            Backend::destroy(self, cluster).await
        } else {
            Ok(())
        }
    }
}
