//! How a cluster comes up: binaries built, addresses allocated, templates rendered per node,
//! nodes launched, every node ready, then kept if asked; all or nothing (the builder removes
//! what was made when a step fails).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::event::EventKind;
use super::handle::Cluster;
use super::members::{Member, Members};
use crate::backend::types::{KeepMark, NodeAddr, NodeLaunch};
use crate::error::ProvisionError;
use crate::spec::ClusterSpec;
use crate::template::{self, TemplateContext, TemplateNode};

impl Cluster {
    pub(super) async fn provision(&self) -> Result<(), ProvisionError> {
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
        self.inner
            .nodes
            .set(Members::from_spec(&spec.nodes, &addrs));
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
                .keep(name, &KeepMark::of(spec, None))
                .await
                .map_err(backend_err("keep"))?;
        }
        Ok(())
    }

    /// Builds the spec's `[[binary]]` targets (once per process each), with cargo's status
    /// lines shown on stderr and sent as provisioning events.
    pub(super) async fn build_binaries(&self) -> Result<crate::service::Builds, ProvisionError> {
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
}

fn render_all(
    cluster: &str,
    spec: &ClusterSpec,
    addrs: &[NodeAddr],
    builds: &crate::service::Builds,
) -> Result<Vec<NodeLaunch>, ProvisionError> {
    let members = Members::from_spec(&spec.nodes, addrs);
    let tnodes = template_nodes(&members);
    members
        .iter()
        .enumerate()
        .map(|(i, m)| render_node(cluster, &spec.params, m, &tnodes[i], &tnodes, builds, false))
        .collect()
}

/// What templates see of the members, in member order.
pub(super) fn template_nodes(members: &[Member]) -> Vec<TemplateNode> {
    members
        .iter()
        .map(|m| TemplateNode {
            name: m.spec.name.clone(),
            index: m.spec.index,
            number: m.spec.index + 1,
            address: m.addr.address.clone(),
            roles: m.spec.roles.clone(),
            workdir: m.addr.workdir.clone(),
            added: m.added,
        })
        .collect()
}

/// One node ready to launch: its files rendered for the membership `nodes` (only the
/// `rerender = true` ones with `only_rerender`), its environment, its binaries.
pub(super) fn render_node(
    cluster: &str,
    params: &BTreeMap<String, serde_json::Value>,
    member: &Member,
    me: &TemplateNode,
    nodes: &[TemplateNode],
    builds: &crate::service::Builds,
    only_rerender: bool,
) -> Result<NodeLaunch, ProvisionError> {
    let node = member.spec.as_ref();
    let workdir = member.addr.workdir.as_str();
    let ctx = TemplateContext {
        cluster: BTreeMap::from([("name".to_string(), cluster.to_string())]),
        node: me.clone(),
        nodes: nodes.to_vec(),
        env: node.env.clone(),
        params: params.clone(),
    };
    let mut files = Vec::new();
    for f in &node.files {
        if only_rerender && !(f.rerender && f.template) {
            continue;
        }
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
            format!("{}/{}", workdir.trim_end_matches('/'), f.dest)
        };
        files.push((dest, data, f.mode));
    }
    let mut spec = node.clone();
    for (k, v) in [
        ("CLUSTER_SIM_CLUSTER", cluster),
        ("CLUSTER_SIM_NODE", node.name.as_str()),
        ("CLUSTER_SIM_WORKDIR", workdir),
    ] {
        spec.env.insert(k.to_string(), v.to_string());
    }
    if !spec.faulty_dirs.is_empty() {
        // The fault filesystem is mounted first, every time the service starts (a restart
        // of a docker node starts with a fresh mount namespace).
        let service = spec.command.as_deref().unwrap_or("exec sleep infinity");
        spec.command = Some(format!(
            "{}{service}",
            crate::fault::storage::mount_lines(workdir, &spec.faulty_dirs)
        ));
    }
    Ok(NodeLaunch {
        binaries: crate::service::placements(&node.binaries, builds, workdir),
        spec,
        address: member.addr.address.clone(),
        files,
    })
}
