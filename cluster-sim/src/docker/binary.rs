//! Workspace binaries on docker nodes: each built file is bind-mounted read-only at its
//! destination (no per-node copy: five nodes share one file; copied in instead on a swarm's
//! engines, which may not see this machine's files), and checked against the glibc of
//! the node's image first, asked once per image per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::engine::DockerBackend;
use crate::backend::contract::Backend;
use crate::backend::types::NodeLaunch;
use crate::error::BackendError;
use crate::exec::ExecRequest;
use crate::service::glibc::{self, NodeLibc};

/// The C library of each image, by image reference, as its nodes reported it.
static LIBC_BY_IMAGE: Mutex<Option<HashMap<String, NodeLibc>>> = Mutex::new(None);

/// `host:dest:ro` bind specs for a node's binaries (`None` when it has none).
pub(super) fn binds(n: &NodeLaunch) -> Option<Vec<String>> {
    (!n.binaries.is_empty()).then(|| {
        n.binaries
            .iter()
            .map(|p| format!("{}:{}:ro", p.source.display(), p.dest))
            .collect()
    })
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
