//! Removing an engines lab (`cluster-sim lab down`): its engines leave the swarm, then their
//! containers, volumes, cgroups and network go, and the host engine's swarm is left as the lab
//! found it.

use std::path::Path;

use bollard::query_parameters::{
    DeleteNodeOptionsBuilder, LeaveSwarmOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;

use super::lab_names::{
    find_lab, lab_network, labs, remove_network_settled, API_PORT, GWBRIDGE, LABEL_LAB_GWBRIDGE,
    LABEL_LAB_SWARM,
};
use crate::docker::DockerBackend;
use crate::error::BackendError;

/// What `lab_down` removed.
#[derive(Debug, Default)]
pub struct LabDown {
    /// Engine containers removed.
    pub engines: Vec<String>,
    /// Whether the host engine left the swarm (the lab had initialised it).
    pub left_swarm: bool,
    /// Whether `docker_gwbridge` was removed (the lab's swarm had made it).
    pub removed_gwbridge: bool,
}

/// Removes lab `lab` (every lab when `None`): its engines leave the swarm and are removed from
/// the manager's node list, their containers and volumes go, then its network; the host engine
/// leaves the swarm if the lab initialised it and no other lab is left, and `docker_gwbridge`
/// goes if that swarm made it and nothing is attached to it.
pub async fn lab_down(lab: Option<&str>) -> Result<LabDown, BackendError> {
    let host = DockerBackend::connect().await?;
    let docker = host.client().clone();
    let names = match lab {
        Some(l) => vec![l.to_string()],
        None => labs(&docker).await?,
    };
    let mut out = LabDown::default();
    for lab in &names {
        down_one(&docker, lab, &mut out).await?;
    }
    Ok(out)
}

async fn down_one(docker: &Docker, lab: &str, out: &mut LabDown) -> Result<(), BackendError> {
    let (net, containers) = find_lab(docker, lab).await?;
    // Each engine leaves the swarm, and the manager forgets its node.
    let leaves = containers.iter().map(|(id, name)| async move {
        let node_id = engine_node_id(docker, id).await;
        if let Some(node) = node_id {
            let opts = DeleteNodeOptionsBuilder::default().force(true).build();
            if let Err(e) = docker.delete_node(&node, Some(opts)).await {
                tracing::debug!(engine = %name, "remove swarm node {node}: {e}");
            }
        }
        let rm = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(id, Some(rm)).await {
            Ok(()) => Ok(name.clone()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(name.clone()),
            Err(e) => Err(BackendError::engine(
                format!("lab {lab}: remove engine {name}"),
                e,
            )),
        }
    });
    let removed = futures::future::try_join_all(leaves).await?;
    for name in &removed {
        remove_cgroups(&format!("cluster-sim-lab-{name}"));
    }
    out.engines.extend(removed);
    let Some((net_id, labels)) = net else {
        return Ok(());
    };
    remove_network_settled(docker, &net_id).await.map_err(|e| {
        BackendError::engine(format!("lab {lab}: remove network {}", lab_network(lab)), e)
    })?;
    let initialised = labels.get(LABEL_LAB_SWARM).map(String::as_str) == Some("initialised");
    let others = labs(docker).await?;
    if initialised && others.is_empty() {
        let opts = LeaveSwarmOptionsBuilder::default().force(true).build();
        match docker.leave_swarm(Some(opts)).await {
            Ok(()) => out.left_swarm = true,
            // Not in a swarm (left by hand already).
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 503, ..
            }) => {}
            Err(e) => {
                return Err(BackendError::engine(
                    format!("lab {lab}: docker swarm leave"),
                    e,
                ))
            }
        }
        if labels.get(LABEL_LAB_GWBRIDGE).map(String::as_str) == Some("created") {
            if let Ok(gw) = docker.inspect_network(GWBRIDGE, None).await {
                let attached = gw.containers.map(|c| c.len()).unwrap_or(0);
                if attached == 0 {
                    remove_network_settled(docker, GWBRIDGE)
                        .await
                        .map_err(|e| {
                            BackendError::engine(format!("lab {lab}: remove {GWBRIDGE}"), e)
                        })?;
                    out.removed_gwbridge = true;
                }
            }
        }
    }
    Ok(())
}

/// Removes the (by now empty) cgroups a lab engine's containers had under `parent` in every
/// hierarchy of this machine's cgroup v1 tree, deepest first. Best effort: a cgroup that is
/// still busy stays, and is logged.
fn remove_cgroups(parent: &str) {
    fn remove_tree(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove_tree(&e.path());
                }
            }
        }
        if let Err(e) = std::fs::remove_dir(dir) {
            tracing::debug!("remove cgroup {}: {e}", dir.display());
        }
    }
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(parent);
        if dir.is_dir() {
            remove_tree(&dir);
        }
    }
}

/// The swarm node ID of the engine in container `id`, which then leaves the swarm; `None`
/// when it can't be reached or is in none.
async fn engine_node_id(docker: &Docker, id: &str) -> Option<String> {
    let info = docker.inspect_container(id, None).await.ok()?;
    let ip = info
        .network_settings?
        .networks?
        .into_values()
        .find_map(|e| e.ip_address.filter(|a| !a.is_empty()))?;
    let inner = Docker::connect_with_http(
        &format!("tcp://{ip}:{API_PORT}"),
        20,
        bollard::API_DEFAULT_VERSION,
    )
    .ok()?;
    let node = inner
        .info()
        .await
        .ok()?
        .swarm?
        .node_id
        .filter(|n| !n.is_empty());
    let opts = LeaveSwarmOptionsBuilder::default().force(true).build();
    if let Err(e) = inner.leave_swarm(Some(opts)).await {
        tracing::debug!("engine {ip}: swarm leave: {e}");
    }
    node
}
