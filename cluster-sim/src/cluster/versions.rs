//! Which version of each binary a node runs, and switching it at run time:
//! `node.set_version("kvd", "new")` builds (or finds built) the other `[[binary]]`, has the
//! backend put it at its destination, and restarts the service, readiness awaited. Each step is
//! an event in the cluster's timeline.

use std::sync::Arc;

use super::event::EventKind;
use super::handle::{Cluster, Node};
use crate::error::{BackendError, NodeError};
use crate::service::BuildError;

/// Switching a node's binary to another version failed.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The spec places no binary by that name on the node.
    #[error("node {node}: no binary {bin:?} on it (its binaries: {known})")]
    UnknownBinary {
        /// The node.
        node: String,
        /// The binary asked for.
        bin: String,
        /// The binaries the node has, comma-separated.
        known: String,
    },
    /// The binary has no version by that name for this node.
    #[error("node {node}: {bin} has no version {version:?} (its versions: {known})")]
    UnknownVersion {
        /// The node.
        node: String,
        /// The binary.
        bin: String,
        /// The version asked for.
        version: String,
        /// Its versions the node may run, comma-separated.
        known: String,
    },
    /// The version did not build.
    #[error("node {node}: {source}")]
    Build {
        /// The node.
        node: String,
        /// Cargo's (or git's) error.
        #[source]
        source: BuildError,
    },
    /// The backend could not put it on the node.
    #[error("node {node}: placing {what}: {source}")]
    Place {
        /// The node.
        node: String,
        /// The version being placed.
        what: String,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// It is in place, but the service did not come back ready with it (the node's log tail is
    /// in the message: a service refusing the version says why there).
    #[error(transparent)]
    Restart(#[from] NodeError),
}

impl Node {
    /// The version of binary `bin` the node runs: the last one [`Node::set_version`] placed,
    /// else the one its spec chose (`[[node]] versions`, or the first declared). `None` when
    /// the node has no such binary.
    pub fn version(&self, bin: &str) -> Option<String> {
        let switched = self.cluster.inner.versions.chosen(&self.name, bin);
        switched.or_else(|| {
            self.spec()
                .binaries
                .iter()
                .find(|b| b.bin == bin)
                .map(|b| b.name.clone())
        })
    }

    /// Places version `version` of binary `bin` (a `[[binary]]` with that `bin` and `name`)
    /// on the node, built first if this process has not built it yet, then restarts the
    /// service and waits until it is ready. The node must be running.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// let n2 = cluster.node("n2")?;
    /// n2.set_version("kvd", "new").await?;
    /// assert_eq!(n2.version("kvd").as_deref(), Some("new"));
    /// # Ok(()) }
    /// ```
    pub async fn set_version(&self, bin: &str, version: &str) -> Result<(), VersionError> {
        let spec = self.cluster.spec();
        let node_spec = self.spec();
        let versions = spec.versions_of(node_spec, bin);
        if versions.is_empty() {
            let mut known: Vec<&str> = node_spec.binaries.iter().map(|b| b.bin.as_str()).collect();
            known.dedup();
            return Err(VersionError::UnknownBinary {
                node: self.name.clone(),
                bin: bin.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
        let Some(b) = versions.iter().find(|b| b.name == version) else {
            return Err(VersionError::UnknownVersion {
                node: self.name.clone(),
                bin: bin.to_string(),
                version: version.to_string(),
                known: versions
                    .iter()
                    .map(|b| b.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let from = self.version(bin).unwrap_or_default();
        let me = self.clone();
        let progress: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(move |line: &str| {
            eprintln!("cluster-sim: {line}");
            me.cluster.emit(
                Some(&me.name),
                EventKind::Provision,
                format!("build: {line}"),
            );
        });
        let built = crate::service::build_one(spec, b, progress)
            .await
            .map_err(|source| VersionError::Build {
                node: self.name.clone(),
                source,
            })?;
        let workdir = self
            .cluster
            .addrs()
            .iter()
            .find(|a| a.name == self.name)
            .map(|a| a.workdir.clone())
            .unwrap_or_default();
        let placement = crate::service::placement(b, &built, &workdir);
        let placed = self
            .cluster
            .inner
            .backend
            .replace_binary(&self.cluster.inner.name, &self.name, &placement)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Lifecycle,
            match &placed {
                Ok(()) => format!(
                    "version of {bin}: {from} -> {version} ({}, sha256 {})",
                    placement.what,
                    &placement.sha256[..12]
                ),
                Err(e) => format!("version of {bin}: {from} -> {version} failed: {e}"),
            },
        );
        placed.map_err(|source| VersionError::Place {
            node: self.name.clone(),
            what: placement.what.clone(),
            source,
        })?;
        self.cluster.inner.versions.choose(&self.name, bin, version);
        self.restart().await?;
        Ok(())
    }
}

impl Cluster {
    /// Each node's version of binary `bin`, in node order (nodes without it left out).
    pub fn versions(&self, bin: &str) -> Vec<(String, String)> {
        self.nodes()
            .iter()
            .filter_map(|n| Some((n.name().to_string(), n.version(bin)?)))
            .collect()
    }
}
