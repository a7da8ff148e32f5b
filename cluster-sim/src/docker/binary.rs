//! Workspace binaries on docker nodes: each built file is bind-mounted read-only at its
//! destination (no per-node copy: five nodes share one file; copied in instead on a swarm's
//! engines, which may not see this machine's files), and checked against the glibc of
//! the node's image first, asked once per image per process.
//!
//! A binary with other versions (`switchable`) can't be a mount at its destination, since a
//! container's mounts are fixed at its creation: the store folder holding every build
//! (`<target>/cluster-sim/bin/`) is mounted read-only instead, and the destination is a link
//! into it, which `Node::set_version` points at another build (a later build lands in the
//! same folder, so the mount shows it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::engine::DockerBackend;
use crate::backend::contract::Backend;
use crate::backend::types::NodeLaunch;
use crate::error::BackendError;
use crate::exec::ExecRequest;
use crate::service::glibc::{self, NodeLibc};
use crate::service::Placement;

/// The C library of each image, by image reference, as its nodes reported it.
static LIBC_BY_IMAGE: Mutex<Option<HashMap<String, NodeLibc>>> = Mutex::new(None);

/// Where stores are mounted in a node.
const STORE_MOUNT: &str = "/opt/cluster-sim/store";

/// The store folder holding a build (`<store>/<sha256>/<file>`), and where a node mounts it:
/// one folder per store, named by a hash of its path.
fn store_of(p: &Placement) -> Option<(PathBuf, String)> {
    let store = p.source.parent()?.parent()?.to_path_buf();
    let tag = hex::encode(&Sha256::digest(store.as_os_str().as_encoded_bytes())[..6]);
    Some((store, format!("{STORE_MOUNT}/{tag}")))
}

/// The path of a build inside a node that mounts its store.
fn in_store(p: &Placement) -> Option<String> {
    let (_, mount) = store_of(p)?;
    let file = p.source.file_name()?.to_string_lossy().into_owned();
    Some(format!("{mount}/{}/{file}", p.sha256))
}

/// `host:dest:ro` bind specs for a node's binaries (`None` when it has none): the file itself,
/// or for a switchable binary its store (once however many use it).
pub(super) fn binds(n: &NodeLaunch) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in &n.binaries {
        let bind = match store_of(p) {
            Some((store, mount)) if p.switchable => format!("{}:{mount}:ro", store.display()),
            _ => format!("{}:{}:ro", p.source.display(), p.dest),
        };
        if !out.contains(&bind) {
            out.push(bind);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The links a node's switchable binaries are: (destination, build in the mounted store).
pub(super) fn links(n: &NodeLaunch) -> Vec<(String, String)> {
    n.binaries
        .iter()
        .filter(|p| p.switchable)
        .filter_map(|p| Some((p.dest.clone(), in_store(p)?)))
        .collect()
}

/// A node's binaries as files to upload (path, contents, mode 755), for an engine that can't
/// bind this machine's files (one of a swarm's).
pub(super) fn copies(n: &NodeLaunch) -> Result<Vec<(String, Vec<u8>, u32)>, BackendError> {
    n.binaries
        .iter()
        .map(|p| {
            let data = std::fs::read(&p.source).map_err(|source| BackendError::Local {
                what: format!(
                    "node {}: read {} ({})",
                    n.spec.name,
                    p.source.display(),
                    p.what
                ),
                source,
            })?;
            Ok((p.dest.clone(), data, 0o755))
        })
        .collect()
}

impl DockerBackend {
    /// Checks every node's binaries against its image's glibc, before any service starts (the
    /// nodes run, waiting for their go signal). One node of each image is asked.
    pub(super) async fn check_binaries(
        &self,
        cluster: &str,
        nodes: &[NodeLaunch],
    ) -> Result<(), BackendError> {
        let mut by_image: Vec<(&str, &str)> = Vec::new();
        for n in nodes.iter().filter(|n| !n.binaries.is_empty()) {
            if !by_image.iter().any(|(i, _)| *i == n.spec.image) {
                by_image.push((&n.spec.image, &n.spec.name));
            }
        }
        let probes = by_image.into_iter().map(|(image, node)| async move {
            let cached = LIBC_BY_IMAGE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .get(image)
                .cloned();
            if let Some(libc) = cached {
                return Ok((image, libc));
            }
            let mut req = ExecRequest::shell(glibc::probe_command());
            req.timeout = Duration::from_secs(20);
            let out = self.exec(cluster, node, &req).await?;
            let libc = glibc::parse_probe(&String::from_utf8_lossy(&out.stdout));
            LIBC_BY_IMAGE
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(HashMap::new)
                .insert(image.to_string(), libc.clone());
            Ok::<_, BackendError>((image, libc))
        });
        let libcs: HashMap<&str, NodeLibc> = futures::future::try_join_all(probes)
            .await?
            .into_iter()
            .collect();
        for n in nodes {
            for p in &n.binaries {
                if let Some(libc) = libcs.get(n.spec.image.as_str()) {
                    p.check(libc)
                        .map_err(|message| BackendError::Incompatible {
                            node: n.spec.name.clone(),
                            message: format!("image {}: {message}", n.spec.image),
                        })?;
                }
            }
        }
        Ok(())
    }
}

impl DockerBackend {
    /// Points a switchable binary's link at another build in the mounted store, after
    /// checking the build against the node's glibc (`Backend::replace_binary`).
    pub(super) async fn relink(
        &self,
        cluster: &str,
        node: &str,
        p: &Placement,
    ) -> Result<(), BackendError> {
        let what = format!("node {node}: place {}", p.what);
        let target =
            match in_store(p) {
                Some(t) if p.switchable => t,
                _ => return Err(BackendError::refused(
                    what,
                    "it was placed as the one version of its binary (declare its versions in the \
                     spec: several [[binary]] tables with the same `bin` and their own `name`)",
                )),
            };
        let mut probe = ExecRequest::shell(glibc::probe_command());
        probe.timeout = Duration::from_secs(20);
        let out = self.exec(cluster, node, &probe).await?;
        let libc = glibc::parse_probe(&String::from_utf8_lossy(&out.stdout));
        p.check(&libc)
            .map_err(|message| BackendError::Incompatible {
                node: node.to_string(),
                message,
            })?;
        // A new link renamed over the old one: the running service keeps its file, and the
        // destination is never missing.
        let mut req = ExecRequest::argv([
            "sh",
            "-c",
            "[ -x \"$1\" ] || { echo \"$1 is not in the node's mounted store\" >&2; exit 3; }; \
             ln -sfn \"$1\" \"$2.cs-new\" && mv -fT \"$2.cs-new\" \"$2\"",
            "sh",
            &target,
            &p.dest,
        ]);
        req.timeout = Duration::from_secs(20);
        let out = self.exec(cluster, node, &req).await?;
        if out.code != 0 {
            return Err(BackendError::refused(
                what,
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }
}
