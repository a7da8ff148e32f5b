//! Making a node: its container (static address, DNS alias, limits, labels, binaries bound
//! in), its files (small ones carried in the container's command, large ones uploaded), and
//! the go signal that starts every node's service together.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HostConfig,
    NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};

use super::engine::{
    container_name, engine_call, DockerBackend, Made, DOCKER_WORKDIR, STOP_GRACE_SECS,
};
use super::labels::{LABEL_ADDRESS, LABEL_INDEX, LABEL_NODE, LABEL_ROLES};
use crate::backend::contract::Backend;
use crate::backend::types::{NodeLaunch, NodeState};
use crate::error::BackendError;
use crate::image::NODE_IMAGE;

/// Most bytes of base64 carried in a container's command (one argument may hold 128 KiB).
const INLINE_FILES_MAX: usize = 96 * 1024;

/// A node's first process: on first start, makes the working directory, unpacks the files
/// carried in `$1` (base64 of a tar) and waits for the go signal (a line cluster-sim writes to
/// the container's stdin once every node of the cluster runs), then runs the service (`$2`)
/// with stdin from `/dev/null`. A restart skips all that, so files the test changed stay
/// changed.
///
/// The go signal starts the services of a cluster together: peers are reachable from each
/// service's first moment, which is how clustered software expects to bootstrap (etcd, for one,
/// skips most of its first election timeout only when its peers answer at start). Waiting is a
/// blocking `read` (no polling: 200 waiting nodes cost no CPU while the engine starts the
/// rest), and the signal is one attach per node, not an exec: no process is started for it.
/// End of input without the line (stdin closed) starts the service too.
const BOOT_SCRIPT: &str = r#"if [ ! -e /.cluster-sim-booted ]; then
  mkdir -p /var/lib/cluster-sim || exit 1
  if [ -n "$1" ]; then printf '%s' "$1" | base64 -d | tar -x -C / || exit 1; fi
  read -r _ || :
  : > /.cluster-sim-booted
fi
exec < /dev/null
# CLUSTER_SIM_FAKETIME=1 preloads libfaketime into the service (and only the service), its
# offset read from a file docker/fault.rs writes, so a clock fault can skew it at run time.
# Opt-in: libfaketime deadlocks programs linked with jemalloc (Debian's redis-server).
if [ "${CLUSTER_SIM_FAKETIME:-0}" = 1 ]; then
  for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e "$f" ] && export LD_PRELOAD="$f" FAKETIME_TIMESTAMP_FILE=/dev/shm/cluster-sim/faketime FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1; done
fi
exec sh -c "$2""#;

/// `/dev/fuse` for a container that mounts FUSE (a node with `faulty_dirs` or `fuse = true`,
/// the `fuse` probe).
pub(super) fn fuse_device() -> DeviceMapping {
    DeviceMapping {
        path_on_host: Some("/dev/fuse".into()),
        path_in_container: Some("/dev/fuse".into()),
        cgroup_permissions: Some("rwm".into()),
    }
}

/// Directories, files and symbolic links (path, target) as one tar archive with paths
/// relative to `/`.
fn files_archive(
    dirs: &[&str],
    files: &[(String, Vec<u8>, u32)],
    links: &[(String, String)],
) -> Result<Vec<u8>, BackendError> {
    let tar_err = |source| BackendError::Local {
        what: "build the files' archive".into(),
        source,
    };
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let size: usize = files.iter().map(|f| f.1.len() + 1024).sum();
    let mut ar = tar::Builder::new(Vec::with_capacity(size + 1024));
    for d in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_mtime(mtime);
        ar.append_data(&mut header, d.trim_start_matches('/'), std::io::empty())
            .map_err(tar_err)?;
    }
    for (path, data, mode) in files {
        let rel = path.trim_start_matches('/');
        if rel.is_empty() || path.ends_with('/') {
            return Err(BackendError::refused(
                format!("place {path:?}"),
                "it is not a file path",
            ));
        }
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        ar.append_data(&mut header, rel, data.as_slice())
            .map_err(tar_err)?;
    }
    for (path, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        header.set_mode(0o777);
        header.set_mtime(mtime);
        ar.append_link(&mut header, path.trim_start_matches('/'), target)
            .map_err(tar_err)?;
    }
    ar.into_inner().map_err(tar_err)
}

/// Most nodes a cluster creates and starts at once (docker-compose's default parallel limit).
/// The engine's work per container is CPU (dockerd, containerd, runc, fuse-overlayfs, the
/// kernel's veth set-up), so the bound only keeps a 1,000-node cluster from opening 1,000
/// connections; at 50 nodes on 2 cores, 16 and 64 in flight were within noise (`BENCHMARKS.md`).
pub(super) const START_CALLS: usize = 64;

/// Why files could not be put into a container.
#[derive(Debug)]
pub(super) enum PutError {
    /// The archive could not be built (a path that names no file).
    Archive(BackendError),
    /// The engine refused the upload.
    Engine(super::engine::EngineError),
}

impl PutError {
    /// As a backend error, for the upload `op`.
    pub(super) fn into_backend(self, op: impl Into<String>) -> BackendError {
        match self {
            PutError::Archive(e) => e,
            PutError::Engine(e) => e.into_backend(op),
        }
    }
}

impl DockerBackend {
    pub(super) async fn create_node(
        &self,
        cluster: &str,
        made: &Made,
        n: &NodeLaunch,
    ) -> Result<(), BackendError> {
        let labels = &made.labels;
        let image = self.node_image(&n.spec, None).await?;
        let name = container_name(cluster, &n.spec.name);
        let mut labels = labels.clone();
        labels.insert(LABEL_NODE.into(), n.spec.name.clone());
        labels.insert(LABEL_INDEX.into(), n.spec.index.to_string());
        labels.insert(LABEL_ADDRESS.into(), n.address.clone());
        labels.insert(LABEL_ROLES.into(), n.spec.roles.join(","));
        let service = n
            .spec
            .command
            .clone()
            .unwrap_or_else(|| "exec sleep infinity".to_string());
        // Small files travel inside the container's command and are unpacked by the node itself
        // on first start: an archive upload makes the engine mount the container's filesystem,
        // which costs more than everything else cluster-sim does per node. Large ones are
        // uploaded as before.
        // Binaries with other versions are links into the mounted store (docker/binary.rs).
        let links = if made.copy_binaries {
            Vec::new()
        } else {
            super::binary::links(n)
        };
        let archive = if n.files.is_empty() && links.is_empty() {
            Vec::new()
        } else {
            files_archive(&[], &n.files, &links)?
        };
        let inline = archive.len() * 4 / 3 < INLINE_FILES_MAX;
        let payload = if inline {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&archive)
        } else {
            String::new()
        };
        let cmd = vec![
            "sh".to_string(),
            "-c".to_string(),
            BOOT_SCRIPT.to_string(),
            "cluster-sim-boot".to_string(),
            payload,
            service,
        ];
        let body = ContainerCreateBody {
            image: Some(image),
            hostname: Some(n.spec.name.clone()),
            // With `faulty_dirs`, commands start in the node's working directory (as on ssh),
            // so `data/f` names a file of the faulty dir `data`. Other nodes keep the image's.
            working_dir: (!n.spec.faulty_dirs.is_empty()).then(|| DOCKER_WORKDIR.to_string()),
            labels: Some(labels),
            env: Some(n.spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: Some(cmd),
            // The go signal arrives on stdin (`BOOT_SCRIPT`); the engine closes it once the one
            // attach that sends it ends.
            open_stdin: Some(true),
            stdin_once: Some(true),
            stop_timeout: Some(i64::from(STOP_GRACE_SECS)),
            exposed_ports: (!n.spec.publish.is_empty())
                .then(|| n.spec.publish.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(HostConfig {
                network_mode: Some(made.net.clone()),
                // The node image runs tini as its entrypoint; other images get the engine's init
                // so exec'd processes are reaped and signals reach the service.
                init: Some(n.spec.image != NODE_IMAGE),
                // Faults (partitions, loss) are iptables/tc rules inside the node; a node that
                // mounts FUSE (`faulty_dirs` or `fuse = true`, and only then) gets /dev/fuse
                // and CAP_SYS_ADMIN.
                cap_add: Some(if n.spec.fuse {
                    vec!["NET_ADMIN".into(), "SYS_ADMIN".into()]
                } else {
                    vec!["NET_ADMIN".into()]
                }),
                devices: n.spec.fuse.then(|| vec![fuse_device()]),
                memory: n.spec.limits.memory.map(|m| m as i64),
                nano_cpus: n.spec.limits.cpus.map(|c| (c * 1e9) as i64),
                pids_limit: n.spec.limits.pids,
                // Workspace binaries: the built file itself, read-only, or for one with other
                // versions the store that holds them all (docker/binary.rs); copied in below
                // where the engine may be on another machine (a swarm's).
                binds: if made.copy_binaries {
                    None
                } else {
                    super::binary::binds(n)
                },
                // Published ports listen on loopback only, on a port the engine picks.
                port_bindings: (!n.spec.publish.is_empty()).then(|| {
                    n.spec
                        .publish
                        .iter()
                        .map(|p| {
                            (
                                format!("{p}/tcp"),
                                Some(vec![PortBinding {
                                    host_ip: Some("127.0.0.1".into()),
                                    host_port: Some(String::new()),
                                }]),
                            )
                        })
                        .collect()
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    made.net.clone(),
                    EndpointSettings {
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(n.address.clone()),
                            ..Default::default()
                        }),
                        aliases: Some(vec![n.spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(&name).build();
        let id = self
            .docker
            .create_container(Some(opts), body)
            .await
            .map_err(engine_call(format!(
                "node {}: create container {name}",
                n.spec.name
            )))?
            .id;
        // Made here, so known without asking the engine again.
        self.remember_id(cluster, &n.spec.name, &id);
        tracing::debug!(container = %name, "created");
        let copies = if made.copy_binaries {
            super::binary::copies(n)?
        } else {
            Vec::new()
        };
        if !inline || !copies.is_empty() {
            let mut upload = copies;
            let mut upload_links = Vec::new();
            if !inline {
                upload.extend(n.files.iter().cloned());
                upload_links = links;
            }
            self.put_many(&id, &[DOCKER_WORKDIR], &upload, &upload_links)
                .await
                .map_err(|e| e.into_backend(format!("node {}: place files", n.spec.name)))?;
            tracing::debug!(container = %name, "files uploaded");
        }
        self.docker
            .start_container(&id, None)
            .await
            .map_err(engine_call(format!("node {}: start", n.spec.name)))?;
        tracing::debug!(container = %name, "started");
        Ok(())
    }

    /// Writes one file into a container; a container the engine no longer has is
    /// [`EngineErrorKind::NoSuchContainer`], for the caller to look the node up again.
    pub(super) async fn put(
        &self,
        container: &str,
        path: &str,
        data: &[u8],
        mode: u32,
    ) -> Result<(), PutError> {
        self.put_many(
            container,
            &[],
            &[(path.to_string(), data.to_vec(), mode)],
            &[],
        )
        .await
    }

    /// Uploads directories and files in one archive (one API call however many files).
    async fn put_many(
        &self,
        container: &str,
        dirs: &[&str],
        files: &[(String, Vec<u8>, u32)],
        links: &[(String, String)],
    ) -> Result<(), PutError> {
        let body = files_archive(dirs, files, links).map_err(PutError::Archive)?;
        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
        self.docker
            .upload_to_container(container, Some(opts), bollard::body_full(body.into()))
            .await
            .map_err(|e| PutError::Engine(super::engine::classify(e)))
    }

    /// Sends a node its go signal: one line on the container's stdin, through an attach (no
    /// exec, so no process starts in the node for it). The attach ends at once; the engine then
    /// closes the container's stdin (`stdin_once`).
    pub(super) async fn go(&self, cluster: &str, node: &str) -> Result<(), BackendError> {
        use tokio::io::AsyncWriteExt;
        let id = self.known(cluster, node).await?;
        let opts = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stream(true)
            .build();
        let sent = async {
            let mut attached = self
                .docker
                .attach_container(&id, Some(opts))
                .await
                .map_err(engine_call(format!("node {node}: starting its service")))?;
            let local = |source| BackendError::Local {
                what: format!("node {node}: starting its service: send the go signal"),
                source,
            };
            attached.input.write_all(b"go\n").await.map_err(local)?;
            attached.input.flush().await.map_err(local)?;
            attached.input.shutdown().await.map_err(local)?;
            Ok::<(), BackendError>(())
        };
        let limit = Duration::from_secs(30);
        match tokio::time::timeout(limit, sent).await {
            Ok(Ok(())) => Ok(()),
            // The node stopped before the signal (its files did not unpack, say): the readiness
            // check reports that, with the node's log.
            Ok(Err(_)) | Err(_) if self.exits_soon(cluster, node).await => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BackendError::Timeout {
                step: format!(
                    "node {node}: starting its service (the engine taking the go signal)"
                ),
                after: limit,
            }),
        }
    }

    /// Whether the node's container stops within a few seconds (its service ended).
    async fn exits_soon(&self, cluster: &str, node: &str) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match self.state(cluster, node).await {
                Ok(NodeState::Exited) => return true,
                Ok(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => return false,
            }
        }
    }
}
