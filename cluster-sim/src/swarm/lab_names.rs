//! What the engines lab's parts share (`lab.rs` brings a lab up, `lab_down.rs` removes it):
//! the labels and names of everything a lab makes, and finding it again by them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use bollard::Docker;

use crate::error::BackendError;

/// Label on everything a lab makes: its name.
pub const LABEL_LAB: &str = "cluster-sim.lab";
/// Label on a lab's engine containers: the engine's name in the engines file.
pub const LABEL_LAB_ENGINE: &str = "cluster-sim.lab-engine";
/// Label on a lab's network: `initialised` when the lab made the host engine's swarm, `found`
/// when it was there.
pub const LABEL_LAB_SWARM: &str = "cluster-sim.lab-swarm";
/// Label on a lab's network: `created` when `docker_gwbridge` did not exist before the lab.
pub const LABEL_LAB_GWBRIDGE: &str = "cluster-sim.lab-gwbridge";
/// The repository of the lab engines' image.
pub const ENGINE_IMAGE: &str = "cluster-sim/engine";
/// The port each lab engine's API listens on, on the lab network.
pub(crate) const API_PORT: u16 = 2375;
/// The name of the network a swarm's engines make for overlay traffic.
pub(crate) const GWBRIDGE: &str = "docker_gwbridge";

pub(crate) fn step(lab: &str, what: &str, why: impl std::fmt::Display) -> BackendError {
    BackendError::refused(format!("lab {lab}: {what}"), why.to_string())
}

pub(crate) fn lab_network(lab: &str) -> String {
    format!("cluster-sim-lab-{lab}")
}

pub(crate) fn engine_name(lab: &str, i: usize) -> String {
    format!("{lab}-{i}")
}

/// The lab's network (with its labels) and engine containers (ID, engine name), on the host.
pub(crate) async fn find_lab(
    docker: &Docker,
    lab: &str,
) -> Result<
    (
        Option<(String, HashMap<String, String>)>,
        Vec<(String, String)>,
    ),
    BackendError,
> {
    let filter = HashMap::from([("label".to_string(), vec![format!("{LABEL_LAB}={lab}")])]);
    let nets = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: list networks"), e))?;
    let net = nets
        .into_iter()
        .find(|n| n.name.as_deref() == Some(lab_network(lab).as_str()))
        .map(|n| (n.id.unwrap_or_default(), n.labels.unwrap_or_default()));
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: list containers"), e))?
        .into_iter()
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            (
                c.id.unwrap_or_default(),
                labels.get(LABEL_LAB_ENGINE).cloned().unwrap_or_default(),
            )
        })
        .collect();
    Ok((net, containers))
}

/// The names of every lab on the host engine (from their networks).
pub async fn labs(docker: &Docker) -> Result<Vec<String>, BackendError> {
    let filter = HashMap::from([("label".to_string(), vec![LABEL_LAB.to_string()])]);
    let nets = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await
        .map_err(|e| BackendError::engine("list lab networks", e))?;
    let mut names: Vec<String> = nets
        .into_iter()
        .filter_map(|n| n.labels.and_then(|l| l.get(LABEL_LAB).cloned()))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Removes a network, retrying for a few seconds while the engine still counts an endpoint of
/// a container just removed.
pub(crate) async fn remove_network_settled(
    docker: &Docker,
    id: &str,
) -> Result<(), bollard::errors::Error> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match docker.remove_network(id).await {
            Ok(()) => return Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(network = id, "{e}; trying again");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e),
        }
    }
}
