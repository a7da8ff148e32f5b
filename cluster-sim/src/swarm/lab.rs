//! A lab of Docker engines on one machine, for the swarm backend's tests and for trying it
//! out, as the sshd lab is for ssh: `cluster-sim lab engines N --out FILE` starts N engines in
//! containers (not `--privileged`: the capabilities it would give, spelled out) of the
//! `cluster-sim/engine` image (the node image with Debian's `docker.io`: `docker/engine/`,
//! built `FROM` it by `ImageBuilder::from_image`), joins them and the host engine into one
//! swarm, sends each the node image, and writes the engines file;
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
use bollard::query_parameters::CreateContainerOptionsBuilder;
use bollard::Docker;

use super::engines::{EngineEntry, Engines};
use super::image::send_image;
use super::lab_down::lab_down;
use super::lab_names::{
    engine_name, find_lab, lab_network, step, API_PORT, ENGINE_IMAGE, GWBRIDGE, LABEL_LAB,
    LABEL_LAB_ENGINE, LABEL_LAB_GWBRIDGE, LABEL_LAB_SWARM,
};
use crate::docker::DockerBackend;
use crate::error::BackendError;
use crate::image::{default_definition_dir, ImageBuilder, NODE_IMAGE};

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
    // Images first: nothing exists yet if they can't be built. The engine image is built on
    // the node image, so it is rebuilt whenever that is.
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
    let engine_dir = engine_definition_dir().ok_or_else(|| {
        step(
            lab,
            "engine image",
            "cannot find its definition (docker/engine/Dockerfile beside docker/node)",
        )
    })?;
    let engine_image = ImageBuilder::new(engine_dir)
        .repository(ENGINE_IMAGE)
        .from_image(&node_image)
        .ensure(docker)
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: image {ENGINE_IMAGE}"), e))?;

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
    // The host engine's VXLAN packets to the lab engines must come from the address they know
    // it by (a VXLAN peer drops packets whose source is not the address it has for their MAC),
    // while the kernel would pick the lab bridge's own address: the bridge's route says to use
    // the host's address instead. The route goes with the network.
    prefer_source(docker, lab, &net, &addr).await?;
    if initialised {
        docker
            .init_swarm(SwarmInitRequest {
                listen_addr: Some("0.0.0.0:2377".into()),
                advertise_addr: Some(addr.clone()),
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

/// Replaces the lab bridge's route with one naming `addr` as the source of this machine's
/// packets to the lab network.
async fn prefer_source(
    docker: &Docker,
    lab: &str,
    net: &str,
    addr: &str,
) -> Result<(), BackendError> {
    let info = docker
        .inspect_network(net, None)
        .await
        .map_err(|e| BackendError::engine(format!("lab {lab}: inspect network {net}"), e))?;
    let subnet = info
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().find_map(|c| c.subnet))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| step(lab, "network", format!("{net} has no subnet")))?;
    let id = info.id.unwrap_or_default();
    let bridge = info
        .options
        .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
        .unwrap_or_else(|| format!("br-{}", id.get(..12).unwrap_or(&id)));
    let out = tokio::process::Command::new("ip")
        .args(["-4", "route", "replace", &subnet, "dev", &bridge])
        .args(["proto", "kernel", "scope", "link", "src", addr])
        .output()
        .await
        .map_err(|e| step(lab, "route", format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(step(
            lab,
            "route",
            format!(
                "ip route replace {subnet} dev {bridge} src {addr}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
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
