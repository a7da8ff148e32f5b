//! Faults on the docker backend.
//!
//! Network rules go into each node's own network namespace through the node's exec agent: a
//! rule change then costs a fork in an already running shell (a few milliseconds), where a
//! helper container sharing the namespace (`--network container:<id>`) costs a container
//! create and start per change (hundreds of milliseconds), too slow for a 100 ms partition.
//! The price is that the node's image needs `nft` (and `tc` for shaping): the node image has
//! them, and a user's image without them gets one clear "node n1: ... needs nft" error. Rules
//! live and die with the container's namespace, so removing a cluster (or the reaper removing
//! a dead run's cluster) removes every rule with it.
//!
//! A full disk is the one fault a node cannot make itself (mounting needs CAP_SYS_ADMIN, which
//! nodes do not get): a short-lived helper with CAP_SYS_ADMIN enters the node's mount namespace and
//! mounts a tiny full tmpfs over the path; freeing unmounts it.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::TryStreamExt;

use super::engine::{engine_call, DockerBackend};
use super::labels::{LABEL_CLUSTER, LABEL_OWNER};
use crate::backend::faults::{FaultBackend, NodeLayout};
use crate::exec::{ExecOutput, ExecRequest};
use crate::fault::capabilities::Capabilities;
use crate::fault::error::FaultError;
use crate::fault::linux::{
    disk_failure, disk_script, fuse_probe_script, kernel_probe_script, table_name,
};
use crate::image::NODE_IMAGE;

/// Where a docker node keeps fault state: its private /dev/shm, which a container restart
/// empties just as it empties the network namespace, so state and rules never disagree.
const STATE_DIR: &str = "/dev/shm/cluster-sim";

/// The file the node's service reads its clock offset from (see `BOOT_SCRIPT`).
pub(crate) const CLOCK_FILE: &str = "/dev/shm/cluster-sim/faketime";

/// Prints the pid of the node's service: the child of the container's init (tini), which
/// tini makes the leader of its own process group. Exec'd commands have no parent inside the
/// container, so they never match.
const SERVICE_PID: &str = "pgrep -o -P 1 2>/dev/null || for s in /proc/[0-9]*/stat; do set -- $(cat \"$s\" 2>/dev/null); [ \"$4\" = 1 ] && { echo \"$1\"; break; }; done";

#[async_trait]
impl FaultBackend for DockerBackend {
    async fn layout(&self, cluster: &str, _node: &str) -> Result<NodeLayout, FaultError> {
        Ok(NodeLayout {
            state_dir: STATE_DIR.into(),
            service_pid: SERVICE_PID.into(),
            table: table_name(cluster),
            keep: None,
            clock_file: Some(CLOCK_FILE.into()),
        })
    }

    async fn run_root(
        &self,
        cluster: &str,
        node: &str,
        script: &str,
    ) -> Result<ExecOutput, FaultError> {
        let mut req = ExecRequest::shell(script);
        req.timeout = std::time::Duration::from_secs(30);
        self.run(cluster, node, &req)
            .await
            .map_err(FaultError::backend(node, "exec"))
    }

    async fn disk(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        full: bool,
    ) -> Result<(), FaultError> {
        let step = if full { "fill disk" } else { "free disk" };
        let name = self
            .known(cluster, node)
            .await
            .map_err(FaultError::backend(node, step))?;
        let image = self
            .resolve_image(NODE_IMAGE)
            .await
            .map_err(FaultError::backend(node, step))?;
        let script = format!("p=$1; {}", disk_script(full));
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), cluster.to_string()),
            (
                LABEL_OWNER.to_string(),
                crate::backend::ownership::current_owner(),
            ),
        ]);
        let helper = format!("{name}-disk-{}", std::process::id());
        let body = ContainerCreateBody {
            image: Some(image),
            labels: Some(labels),
            entrypoint: Some(vec!["nsenter".into()]),
            cmd: Some(
                ["-t", "1", "-m", "--", "sh", "-c", &script, "sh", path]
                    .map(String::from)
                    .to_vec(),
            ),
            host_config: Some(HostConfig {
                // CAP_SYS_ADMIN to mount and CAP_SYS_PTRACE to open the node's namespace (its pid 1 may
                // belong to another user); not --privileged, which
                // engines in restricted hosts refuse ("unable to apply caps").
                cap_add: Some(vec!["SYS_ADMIN".into(), "SYS_PTRACE".into()]),
                pid_mode: Some(format!("container:{name}")),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (code, text) = self.run_helper(&helper, body, node, step).await?;
        if code == 0 {
            return Ok(());
        }
        Err(disk_failure(node, step, path, code, &text))
    }

    async fn probe_kernel(&self) -> Result<Capabilities, FaultError> {
        let step = "probe kernel features";
        let image = self
            .resolve_image(NODE_IMAGE)
            .await
            .map_err(FaultError::backend("-", step))?;
        // A namespace of its own with only `lo`: the probe's qdiscs touch nothing else, and
        // the kernel (the engine's, shared by every node) is the one the nodes get.
        let name = format!("cluster-sim-probe-{}-{}", std::process::id(), now_nanos());
        // Labelled like a cluster of its own, so the reaper removes it if this process dies.
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), name.clone()),
            (
                LABEL_OWNER.to_string(),
                crate::backend::ownership::current_owner(),
            ),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            labels: Some(labels),
            entrypoint: Some(vec!["sh".into(), "-c".into()]),
            cmd: Some(vec![kernel_probe_script()]),
            host_config: Some(HostConfig {
                cap_add: Some(vec!["NET_ADMIN".into()]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (kernel, fuse) = futures::join!(
            self.run_helper(&name, body, "-", step),
            self.probe_fuse(&image)
        );
        let (code, text) = kernel?;
        if code != 0 {
            return Err(FaultError::Apply {
                node: "-".into(),
                step: step.into(),
                code,
                detail: text.trim().to_string(),
            });
        }
        Ok(Capabilities {
            fuse,
            ..Capabilities::parse(&text)
        })
    }
}

impl DockerBackend {
    /// Whether a node with `faulty_dirs` could mount FUSE: a throwaway container given what
    /// such a node gets (`/dev/fuse`, CAP_SYS_ADMIN) tries a mount (`FUSE_CHECK`). An engine
    /// that refuses the device, or a mount refused inside, is a no.
    async fn probe_fuse(&self, image: &str) -> bool {
        let name = format!(
            "cluster-sim-probe-fuse-{}-{}",
            std::process::id(),
            now_nanos()
        );
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), name.clone()),
            (
                LABEL_OWNER.to_string(),
                crate::backend::ownership::current_owner(),
            ),
        ]);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            labels: Some(labels),
            entrypoint: Some(vec!["sh".into(), "-c".into()]),
            cmd: Some(vec![fuse_probe_script()]),
            host_config: Some(HostConfig {
                cap_add: Some(vec!["SYS_ADMIN".into()]),
                devices: Some(vec![super::node::fuse_device()]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        match self.run_helper(&name, body, "-", "probe fuse").await {
            Ok((0, text)) => Capabilities::parse(&text).fuse,
            Ok((code, text)) => {
                tracing::debug!("fuse probe exited {code}: {}", text.trim());
                false
            }
            Err(e) => {
                tracing::debug!("fuse probe: {e}");
                false
            }
        }
    }
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl DockerBackend {
    /// Runs a short-lived helper container to its end and removes it; returns its exit code
    /// and output.
    async fn run_helper(
        &self,
        name: &str,
        body: ContainerCreateBody,
        node: &str,
        step: &str,
    ) -> Result<(i64, String), FaultError> {
        let d = &self.docker;
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        d.create_container(Some(opts), body)
            .await
            .map_err(|e| FaultError::backend(node, step)(engine_call("helper container")(e)))?;
        let result = async {
            d.start_container(name, None)
                .await
                .map_err(|e| FaultError::backend(node, step)(engine_call("helper container")(e)))?;
            let waits: Vec<_> = d
                .wait_container(name, Some(WaitContainerOptionsBuilder::default().build()))
                .try_collect()
                .await
                .unwrap_or_default();
            let code = waits.first().map(|w| w.status_code).unwrap_or(-1);
            let logs: Vec<_> = d
                .logs(
                    name,
                    Some(
                        LogsOptionsBuilder::default()
                            .stdout(true)
                            .stderr(true)
                            .build(),
                    ),
                )
                .try_collect()
                .await
                .unwrap_or_default();
            let text: String = logs.into_iter().map(|l| l.to_string()).collect();
            Ok((code, text))
        }
        .await;
        let rm = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = d.remove_container(name, Some(rm)).await;
        result
    }
}
