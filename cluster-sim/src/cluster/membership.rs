//! Nodes joining and leaving a running cluster: [`Cluster::add_node`] places one more node
//! (the backend's membership capability gives it an address or a spare host), renders its
//! templates with the new membership, starts it and waits for its readiness;
//! [`Cluster::remove_node`] undoes its faults and removes it. Files marked `rerender = true`
//! are rendered again on the other nodes either way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::event::EventKind;
use super::handle::{Cluster, Node};
use super::members::Member;
use super::provision::{render_node, template_nodes};
use crate::backend::membership::Membership;
use crate::error::{BackendError, ProvisionError};
use crate::fault::{ActiveFault, FaultError, Faults};

/// What a node added at run time is (`Cluster::add_node`); everything else comes from the
/// spec's defaults, and files and binaries from the roles, as for the nodes the spec names.
///
/// ```
/// use cluster_sim_core::cluster::NodeOptions;
/// let n4 = NodeOptions::named("n4").role("etcd").env("LOG_LEVEL", "debug");
/// assert_eq!(n4.name.as_deref(), Some("n4"));
/// let n5 = NodeOptions::named("n5").faulty_dirs(["data"]); // else the spec's faulty_dirs
/// assert_eq!(n5.faulty_dirs, Some(vec!["data".to_string()]));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeOptions {
    /// Its name; `None`: the first of `n1`, `n2`, ... the cluster has never used.
    pub name: Option<String>,
    /// Its roles; empty: the spec's top-level `roles`.
    pub roles: Vec<String>,
    /// Environment over the spec's.
    pub env: BTreeMap<String, String>,
    /// Directories on the fault filesystem; `None`: the spec's top-level `faulty_dirs`, as for
    /// the nodes it names. Needs a spec that builds the fault filesystem (some node of it has
    /// `faulty_dirs`).
    pub faulty_dirs: Option<Vec<String>>,
}

impl NodeOptions {
    /// A node called `name`.
    pub fn named(name: impl Into<String>) -> Self {
        NodeOptions {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    /// Adds a role (files, binaries and, on ssh, hosts are chosen by role).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.roles.push(role.into());
        self
    }

    /// Puts these directories on the fault filesystem (none: plain directories) instead of
    /// the spec's top-level `faulty_dirs`.
    pub fn faulty_dirs<S: Into<String>>(mut self, dirs: impl IntoIterator<Item = S>) -> Self {
        self.faulty_dirs = Some(dirs.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable of the node.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }
}

/// Why a node could not join or leave.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// The backend can't add or remove nodes of a running cluster.
    #[error("the {backend} backend can't add or remove nodes of a running cluster")]
    NotOnBackend {
        /// The backend's name.
        backend: String,
    },
    /// The name can't name a node.
    #[error(
        "cluster {cluster}: bad node name {node:?} (lowercase letters, digits and '-', at most 63)"
    )]
    BadName {
        /// The cluster.
        cluster: String,
        /// The name asked for.
        node: String,
    },
    /// `NodeOptions::faulty_dirs` can't be mounted.
    #[error("cluster {cluster}: node {node}: {message}")]
    FaultyDirs {
        /// The cluster.
        cluster: String,
        /// The node asked for.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// The cluster already has a node of that name.
    #[error("cluster {cluster} already has a node {node}")]
    Exists {
        /// The cluster.
        cluster: String,
        /// The node.
        node: String,
    },
    /// The cluster has no node of that name.
    #[error("cluster {cluster} has no node {node:?} (it has {known})")]
    UnknownNode {
        /// The cluster.
        cluster: String,
        /// The node asked for.
        node: String,
        /// The nodes it has, comma-separated.
        known: String,
    },
    /// Removing the last node would leave an empty cluster.
    #[error("cluster {cluster}: {node} is its last node (remove the cluster with down)")]
    LastNode {
        /// The cluster.
        cluster: String,
        /// The node.
        node: String,
    },
    /// A backend step failed.
    #[error("node {node} of {cluster}: {step}: {source}")]
    Backend {
        /// The cluster.
        cluster: String,
        /// The node.
        node: String,
        /// What was being done.
        step: String,
        /// The backend's error.
        #[source]
        source: Box<BackendError>,
    },
    /// Rendering, binaries or readiness failed (the node was removed again).
    #[error(transparent)]
    Provision(Box<ProvisionError>),
    /// Its faults could not be undone.
    #[error("node {node}: undoing its faults: {source}")]
    Faults {
        /// The node.
        node: String,
        /// The fault module's error.
        #[source]
        source: Box<FaultError>,
    },
}

impl From<ProvisionError> for MembershipError {
    fn from(e: ProvisionError) -> Self {
        MembershipError::Provision(Box::new(e))
    }
}

impl Cluster {
    fn membership(&self) -> Result<&dyn Membership, MembershipError> {
        self.inner
            .backend
            .membership()
            .ok_or_else(|| MembershipError::NotOnBackend {
                backend: self.inner.backend.kind().into(),
            })
    }

    /// Adds a node to the running cluster and returns it once ready: the backend places it
    /// (docker: the next free address on the cluster's network; ssh: a spare inventory host,
    /// by name, then role, then order), its templates are rendered with the new membership
    /// (every node, itself included, in `nodes`; `node.added` is true for it), its service
    /// starts and the spec's readiness check passes on it. Files marked `rerender = true` are
    /// rendered again on the other nodes (written in place; their services are not
    /// restarted). [`Cluster::nodes`] and every fault verb see it from then on.
    ///
    /// On any error nothing of the node is left.
    pub async fn add_node(&self, opts: NodeOptions) -> Result<Node, MembershipError> {
        let started = Instant::now();
        let cluster = self.inner.name.clone();
        let membership = self.membership()?;
        let members = self.inner.nodes.list();
        let name = match opts.name {
            Some(n) => n,
            None => (1..)
                .map(|i| format!("n{i}"))
                .find(|n| !members.iter().any(|m| &m.addr.name == n))
                .expect("an unused name"),
        };
        if !crate::spec::valid_node_name(&name) {
            return Err(MembershipError::BadName {
                cluster,
                node: name,
            });
        }
        if members.iter().any(|m| m.addr.name == name) {
            return Err(MembershipError::Exists {
                cluster,
                node: name,
            });
        }
        let index = members
            .iter()
            .map(|m| m.spec.index + 1)
            .max()
            .unwrap_or(0)
            .max(self.inner.spec.nodes.len());
        let roles = (!opts.roles.is_empty()).then_some(opts.roles);
        let mut spec = self.inner.spec.added_node(&name, index, roles, &opts.env);
        if let Some(dirs) = &opts.faulty_dirs {
            self.inner
                .spec
                .set_faulty_dirs(&mut spec, dirs)
                .map_err(|message| MembershipError::FaultyDirs {
                    cluster: cluster.clone(),
                    node: name.clone(),
                    message,
                })?;
        }
        let builds = if spec.binaries.is_empty() {
            Default::default()
        } else {
            self.build_binaries().await?
        };
        let backend_err = |step: &str| {
            let (cluster, node, step) = (cluster.clone(), name.clone(), step.to_string());
            move |source| MembershipError::Backend {
                cluster,
                node,
                step,
                source: Box::new(source),
            }
        };
        let addr = membership
            .allocate_node(&cluster, &spec)
            .await
            .map_err(backend_err("allocate"))?;
        self.emit(
            Some(&name),
            EventKind::Provision,
            format!("adding {name} at {}", addr.address),
        );
        let member = Member {
            addr,
            spec: Arc::new(spec),
            added: true,
        };
        let mut all = members.clone();
        all.push(member.clone());
        let made = async {
            let tnodes = template_nodes(&all);
            let me = tnodes.last().expect("the new node");
            let launch = render_node(
                &cluster,
                &self.inner.spec.params,
                &member,
                me,
                &tnodes,
                &builds,
                false,
            )?;
            self.inner
                .backend
                .launch(&cluster, std::slice::from_ref(&launch))
                .await
                .map_err(backend_err("launch"))?;
            self.inner.nodes.push(member.clone());
            let node = self.node(&name).map_err(backend_err("find"))?;
            node.wait_ready().await?;
            Ok::<Node, MembershipError>(node)
        }
        .await;
        let node = match made {
            Ok(n) => n,
            Err(e) => {
                self.inner.nodes.remove(&name);
                if let Err(r) = membership.remove_node(&cluster, &name).await {
                    tracing::warn!("removing {name} of {cluster} after a failed add: {r}");
                }
                self.emit(
                    Some(&name),
                    EventKind::Provision,
                    format!("adding {name} failed: {e}"),
                );
                return Err(e);
            }
        };
        self.rerender(&all, Some(&name)).await?;
        self.emit(
            Some(&name),
            EventKind::Provision,
            format!(
                "added {name} ({} nodes) in {}",
                all.len(),
                crate::duration::human(started.elapsed())
            ),
        );
        Ok(node)
    }

    /// Removes a node from the running cluster: its faults end (partitions lose their links
    /// to it), the backend stops it and removes everything of it, and files marked
    /// `rerender = true` are rendered again on the nodes left. Any node may go, those the
    /// spec named too, but not the last one. Returns the faults that ended with it.
    pub async fn remove_node(&self, name: &str) -> Result<Vec<ActiveFault>, MembershipError> {
        let started = Instant::now();
        let cluster = self.inner.name.clone();
        let membership = self.membership()?;
        let members = self.inner.nodes.list();
        if !members.iter().any(|m| m.addr.name == name) {
            return Err(MembershipError::UnknownNode {
                cluster,
                node: name.to_string(),
                known: members
                    .iter()
                    .map(|m| m.addr.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if members.len() == 1 {
            return Err(MembershipError::LastNode {
                cluster,
                node: name.to_string(),
            });
        }
        let ended = match self.inner.backend.faults() {
            Some(fb) => Faults::new(fb, &cluster, self.addrs())
                .leave(name)
                .await
                .map_err(|source| MembershipError::Faults {
                    node: name.to_string(),
                    source: Box::new(source),
                })?,
            None => Vec::new(),
        };
        for f in &ended {
            self.emit(
                None,
                EventKind::Fault,
                format!("end {f} (node {name} leaves)"),
            );
        }
        membership
            .remove_node(&cluster, name)
            .await
            .map_err(|source| MembershipError::Backend {
                cluster: cluster.clone(),
                node: name.to_string(),
                step: "remove".into(),
                source: Box::new(source),
            })?;
        self.inner.nodes.remove(name);
        let left = self.inner.nodes.list();
        self.rerender(&left, None).await?;
        self.emit(
            Some(name),
            EventKind::Provision,
            format!(
                "removed {name} ({} nodes left) in {}",
                left.len(),
                crate::duration::human(started.elapsed())
            ),
        );
        Ok(ended)
    }

    /// Renders the `rerender = true` templates of every member but `skip` for the membership
    /// `all` and writes them in place.
    async fn rerender(&self, all: &[Member], skip: Option<&str>) -> Result<(), MembershipError> {
        let tnodes = template_nodes(all);
        let builds = Default::default();
        let jobs = all
            .iter()
            .zip(&tnodes)
            .filter(|(m, _)| Some(m.addr.name.as_str()) != skip)
            .filter(|(m, _)| m.spec.files.iter().any(|f| f.rerender && f.template))
            .map(|(m, me)| {
                let tnodes = &tnodes;
                let builds = &builds;
                async move {
                    let name = &m.addr.name;
                    let launch = render_node(
                        &self.inner.name,
                        &self.inner.spec.params,
                        m,
                        me,
                        tnodes,
                        builds,
                        true,
                    )?;
                    for (path, data, mode) in &launch.files {
                        self.inner
                            .backend
                            .write_file(&self.inner.name, name, path, data, *mode)
                            .await
                            .map_err(|source| MembershipError::Backend {
                                cluster: self.inner.name.clone(),
                                node: name.clone(),
                                step: format!("rerender {path}"),
                                source: Box::new(source),
                            })?;
                    }
                    self.emit(
                        Some(name),
                        EventKind::Provision,
                        format!("rendered {} file(s) again", launch.files.len()),
                    );
                    Ok::<(), MembershipError>(())
                }
            });
        futures::future::try_join_all(jobs).await?;
        Ok(())
    }
}
