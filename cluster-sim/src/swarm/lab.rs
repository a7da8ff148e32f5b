//! A lab of Docker engines on one machine, for the swarm backend's tests and for trying it
//! out, as the sshd lab is for ssh: `cluster-sim lab engines N --out FILE` starts N engines in
//! privileged containers of the `cluster-sim/engine` image (Debian's `docker.io` in the node
//! image family, built offline like the node image: `docker/engine/`), joins them and the host
//! engine into one swarm, sends each the node image, and writes the engines file;
//! `cluster-sim lab down` removes all of it.
//!
//! Other people use the same host engine: everything the lab makes carries the label
//! `cluster-sim.lab=<name>` and is found by it; the swarm state the host engine had before is
//! written on the lab's network (`cluster-sim.lab-swarm`, `cluster-sim.lab-gwbridge`), and
//! `down` restores it: it leaves the swarm only if the lab initialised it (and no other lab is
//! left), and removes `docker_gwbridge` only if the lab's swarm created it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HostConfig, LocalNodeState, NetworkCreateRequest,
    SwarmInitRequest, SwarmJoinRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DeleteNodeOptionsBuilder, LeaveSwarmOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;

use super::engines::{EngineEntry, Engines};
use super::image::send_image;
use crate::docker::DockerBackend;
use crate::error::BackendError;
use crate::image::{default_definition_dir, ImageBuilder, NODE_IMAGE};

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
const API_PORT: u16 = 2375;
/// Every capability but CAP_SYS_RESOURCE, which restricted hosts lack.
const ENGINE_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
];
/// The name of the network a swarm's engines make for overlay traffic.
const GWBRIDGE: &str = "docker_gwbridge";

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

fn step(lab: &str, what: &str, why: impl std::fmt::Display) -> BackendError {
    BackendError::refused(format!("lab {lab}: {what}"), why.to_string())
}

/// The host engine's endpoint as an engines file writes it.
fn host_endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| h.starts_with("unix://") || h.starts_with("tcp://"))
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// The address the host engine advertises to the swarm: eth0's (or the default route's
/// interface's) first IPv4 address.
async fn advertise_address(lab: &str) -> Result<String, BackendError> {
    let run = |args: Vec<&'static str>, dev: Option<String>| async move {
        let mut cmd = tokio::process::Command::new("ip");
        cmd.args(&args);
        if let Some(d) = dev {
            cmd.arg(d);
        }
        cmd.output()
            .await
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let mut devices = vec!["eth0".to_string()];
    if let Some(route) = run(vec!["-4", "-o", "route", "show", "default"], None).await {
        let words: Vec<&str> = route.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "dev") {
            if let Some(d) = words.get(i + 1) {
                devices.push(d.to_string());
            }
        }
    }
    for dev in devices {
        if let Some(text) = run(vec!["-4", "-o", "addr", "show", "dev"], Some(dev)).await {
            let addr = text
                .split_whitespace()
                .skip_while(|w| *w != "inet")
                .nth(1)
                .and_then(|a| a.split('/').next())
                .map(str::to_string);
            if let Some(a) = addr {
                return Ok(a);
            }
        }
    }
    Err(step(
        lab,
        "find the host's address for the swarm",
        "no IPv4 address on eth0 or on the default route's interface (is `ip` installed?)",
    ))
}

/// The `docker/engine` definition beside the node image's `docker/node`.
fn engine_definition_dir() -> Option<PathBuf> {
    let dir = default_definition_dir()?.parent()?.join("engine");
    dir.join("Dockerfile").is_file().then_some(dir)
}

/// Starts `count` engines named `<lab>-1`..`<lab>-N`, joins them and the host engine into one
/// swarm, sends them the node image and writes the engines file to `out` (the host engine
/// first). On failure, everything the lab made is removed again.
pub async fn lab_up(lab: &str, count: usize, out: &Path) -> Result<Engines, BackendError> {
    if count == 0 || count > 16 {
        return Err(step(lab, "start engines", "the count must be 1 to 16"));
    }
    let host = DockerBackend::connect().await?;
    let docker = host.client().clone();
    if find_lab(&docker, lab).await?.0.is_some() {
        return Err(step(
            lab,
            "start engines",
            format!(
                "a lab named {lab:?} is already up (`cluster-sim lab down --name {lab}` first)"
            ),
        ));
    }
    match up(&docker, lab, count, out).await {
        Ok(e) => Ok(e),
        Err(e) => {
            if let Err(d) = lab_down(Some(lab)).await {
                tracing::warn!("removing the lab after a failure: {d}");
            }
            Err(e)
        }
    }
}

async fn up(docker: &Docker, lab: &str, count: usize, out: &Path) -> Result<Engines, BackendError> {
    // Images first: nothing exists yet if they can't be built.
    let engine_dir = engine_definition_dir().ok_or_else(|| {
        step(
            lab,
            "engine image",
            "cannot find its definition (docker/engine/Dockerfile beside docker/node)",
        )
    })?;
    let engine_image = ImageBuilder::new(engine_dir)
        .repository(ENGINE_IMAGE)
        .ensure(docker)
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: image {ENGINE_IMAGE}"), e))?;
    let node_dir = default_definition_dir().ok_or_else(|| {
        step(
            lab,
            "node image",
            "cannot find docker/node; set CLUSTER_SIM_IMAGE_DIR",
        )
    })?;
    let node_image = ImageBuilder::new(node_dir)
        .ensure(docker)
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: image {NODE_IMAGE}"), e))?;

    // The host engine's swarm state, as found.
    let info = docker
        .info()
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: docker info"), e))?;
    let swarm = info.swarm.unwrap_or_default();
    let state = swarm.local_node_state.unwrap_or(LocalNodeState::INACTIVE);
    let gwbridge_found = docker.inspect_network(GWBRIDGE, None).await.is_ok();
    let initialised = match state {
        LocalNodeState::INACTIVE | LocalNodeState::EMPTY => true,
        LocalNodeState::ACTIVE if swarm.control_available == Some(true) => false,
        LocalNodeState::ACTIVE => {
            return Err(step(
                lab,
                "swarm",
                "the host engine is a worker of another swarm; run the lab on a manager",
            ))
        }
        other => {
            return Err(step(
                lab,
                "swarm",
                format!("the host engine's swarm is {other:?}; wait or `docker swarm leave`"),
            ))
        }
    };
    // The lab network first: it records what the lab found, so `down` can restore it even if
    // the rest fails half-way.
    let labels = HashMap::from([
        (LABEL_LAB.to_string(), lab.to_string()),
        (
            LABEL_LAB_SWARM.to_string(),
            if initialised { "initialised" } else { "found" }.to_string(),
        ),
        (
            LABEL_LAB_GWBRIDGE.to_string(),
            if gwbridge_found { "found" } else { "created" }.to_string(),
        ),
    ]);
    let net = lab_network(lab);
    docker
        .create_network(NetworkCreateRequest {
            name: net.clone(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: create network {net}"), e))?;
    let addr = advertise_address(lab).await?;
    if initialised {
        // The host engine's VXLAN traffic to the lab engines leaves through the lab network's
        // bridge, from its gateway address: that is the data path address the engines must
        // know it by (a VXLAN peer drops packets whose source is not the address it knows for
        // their MAC). The control plane stays on the host's own address.
        let gateway = docker
            .inspect_network(&net, None)
            .await
            .ok()
            .and_then(|n| n.ipam)
            .and_then(|i| i.config)
            .and_then(|c| c.into_iter().find_map(|c| c.gateway))
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                step(
                    lab,
                    "swarm",
                    format!("network {net} has no gateway address"),
                )
            })?;
        docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some("0.0.0.0:2377".into()),
                advertise_addr: Some(addr.clone()),
                data_path_addr: Some(gateway),
                ..Default::default()
            })
            .await
            .map_err(|e| BackendError::engine(format!("lab {lab}: docker swarm init"), e))?;
    }
    let token = docker
        .inspect_swarm()
        .await
        .ok()
        .and_then(|s| s.join_tokens)
        .and_then(|t| t.worker)
        .ok_or_else(|| step(lab, "swarm", "the manager gave no worker join token"))?;
    let manager_addr = match swarm.node_addr.filter(|a| !initialised && !a.is_empty()) {
        Some(a) => a,
        None => addr,
    };

    // The engines, started together.
    let starts = (1..=count).map(|i| start_engine(docker, lab, i, &engine_image, &net));
    let ips = futures::future::try_join_all(starts).await?;
    let mut entries = vec![EngineEntry {
        name: "host".into(),
        endpoint: host_endpoint(),
        capacity: 100,
        labels: BTreeMap::from([("role".to_string(), "manager".to_string())]),
    }];
    let joins = ips.iter().enumerate().map(|(i, ip)| {
        let name = engine_name(lab, i + 1);
        let endpoint = format!("tcp://{ip}:{API_PORT}");
        let (token, manager_addr, node_image) = (&token, &manager_addr, &node_image);
        async move {
            let inner = wait_engine(lab, &name, &endpoint).await?;
            inner
                .join_swarm(SwarmJoinRequest {
                    listen_addr: Some("0.0.0.0:2377".into()),
                    advertise_addr: Some(ip.clone()),
                    remote_addrs: Some(vec![format!("{manager_addr}:2377")]),
                    join_token: Some(token.clone()),
                    ..Default::default()
                })
                .await
                .map_err(|e| {
                    BackendError::engine(format!("lab {lab}: engine {name}: docker swarm join"), e)
                })?;
            send_image(docker, &inner, &endpoint, &name, node_image).await?;
            Ok::<_, BackendError>(EngineEntry {
                name,
                endpoint,
                capacity: 100,
                labels: BTreeMap::from([("lab".to_string(), lab.to_string())]),
            })
        }
    });
    entries.extend(futures::future::try_join_all(joins).await?);
    let engines = Engines {
        source: out.display().to_string(),
        engines: entries,
    };
    let text = engines.to_toml(&format!(
        "engines lab {lab}: the host engine and {count} engines in containers, one swarm, written by cluster-sim.\n\
         Use: CLUSTER_SIM_BACKEND=swarm CLUSTER_SIM_ENGINES={} cargo test\n\
         Remove: cluster-sim lab down --name {lab}",
        out.display()
    ));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| step(lab, "engines file", format!("{}: {e}", dir.display())))?;
    }
    std::fs::write(out, text)
        .map_err(|e| step(lab, "engines file", format!("{}: {e}", out.display())))?;
    Engines::from_file(out).map_err(|e| step(lab, "engines file", e))
}

fn lab_network(lab: &str) -> String {
    format!("cluster-sim-lab-{lab}")
}

fn engine_name(lab: &str, i: usize) -> String {
    format!("{lab}-{i}")
}

/// Creates and starts one engine container; returns its address on the lab network.
async fn start_engine(
    docker: &Docker,
    lab: &str,
    i: usize,
    image: &str,
    net: &str,
) -> Result<String, BackendError> {
    let name = engine_name(lab, i);
    let container = format!("cluster-sim-lab-{name}");
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        hostname: Some(name.clone()),
        labels: Some(HashMap::from([
            (LABEL_LAB.to_string(), lab.to_string()),
            (LABEL_LAB_ENGINE.to_string(), name.clone()),
        ])),
        env: Some(vec![format!(
            "CLUSTER_SIM_ENGINE_CGROUP_PARENT=/{container}"
        )]),
        // What `--privileged` gives a Docker-in-Docker engine, spelled out: engines on
        // restricted hosts (no CAP_SYS_RESOURCE in their own bounding set, as on this
        // project's CI machine) refuse `--privileged` with "unable to apply caps".
        host_config: Some(HostConfig {
            cap_add: Some(ENGINE_CAPS.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec![
                "seccomp=unconfined".into(),
                "apparmor=unconfined".into(),
            ]),
            masked_paths: Some(Vec::new()),
            readonly_paths: Some(Vec::new()),
            devices: Some(vec![DeviceMapping {
                path_on_host: Some("/dev/fuse".into()),
                path_in_container: Some("/dev/fuse".into()),
                cgroup_permissions: Some("rwm".into()),
            }]),
            device_cgroup_rules: Some(vec!["a *:* rwm".into()]),
            // cgroup v1 mounts read-only without --privileged: the engine's containers go
            // under a cgroup parent of its own in the host's hierarchy.
            binds: Some(vec!["/sys/fs/cgroup:/sys/fs/cgroup:rw".into()]),
            network_mode: Some(net.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default()
        .name(&container)
        .build();
    let what = |s: &str| format!("lab {lab}: engine {name}: {s}");
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(|e| BackendError::engine(what("create container"), e))?;
    docker
        .start_container(&container, None)
        .await
        .map_err(|e| BackendError::engine(what("start"), e))?;
    let info = docker
        .inspect_container(&container, None)
        .await
        .map_err(|e| BackendError::engine(what("inspect"), e))?;
    info.network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get(net).and_then(|e| e.ip_address.clone()))
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| {
            step(
                lab,
                &format!("engine {name}"),
                "it has no address on the lab network",
            )
        })
}

/// Waits for an engine's API to answer (dockerd takes a few seconds to start).
async fn wait_engine(lab: &str, name: &str, endpoint: &str) -> Result<Docker, BackendError> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    while Instant::now() < deadline {
        match Docker::connect_with_http(endpoint, 10, bollard::API_DEFAULT_VERSION) {
            Ok(d) => match d.ping().await {
                Ok(_) => return Ok(d),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(step(
        lab,
        &format!("engine {name}"),
        format!("its API at {endpoint} did not answer within 90s ({last}); see `docker logs cluster-sim-lab-{name}`"),
    ))
}

/// The lab's network (with its labels) and engine containers (ID, engine name), on the host.
async fn find_lab(
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

/// Removes a network, retrying for a few seconds while the engine still counts an endpoint of
/// a container just removed.
async fn remove_network_settled(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
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
