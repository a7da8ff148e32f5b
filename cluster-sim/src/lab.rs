//! A lab of real sshd hosts in local containers, for the ssh backend's tests and for trying it
//! out: brings up a spec whose nodes run sshd (`fixtures/clusters/sshd3.toml`) on a backend
//! that publishes ports (docker), then writes a fresh key pair, a known_hosts file and an
//! inventory for it. The CLI (`cluster-sim up SPEC --lab FILE`) and the tests share this
//! code.
//!
//! It lives beside the backends, not in `ssh/`: it drives one backend through the contract
//! (the cluster handle, and the lookup capability for each node's published port) and writes
//! the other's inventory, so it belongs to neither.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::backend::contract::Backend;
use crate::cluster::{Cluster, ClusterBuilder};
use crate::error::ProvisionError;
use crate::ssh::inventory::Inventory;

/// Port sshd listens on inside each node.
const SSH_PORT: u16 = 22;

/// Setting up a lab failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The docker cluster did not come up.
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// A later step failed (the cluster has been removed).
    #[error("lab {cluster}: {step}: {message}")]
    Step {
        /// Cluster name.
        cluster: String,
        /// What was being done.
        step: String,
        /// Why it failed.
        message: String,
    },
}

/// The files written next to an inventory: `FILE.d/id_ed25519{,.pub}` and `FILE.d/known_hosts`.
#[derive(Debug, Clone)]
pub struct LabFiles {
    /// The inventory itself.
    pub inventory: PathBuf,
    /// The private key (mode 600).
    pub key: PathBuf,
    /// The known_hosts file.
    pub known_hosts: PathBuf,
}

impl LabFiles {
    /// Where the files for inventory `path` go.
    pub fn for_inventory(path: &Path) -> Self {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "inventory.toml".into());
        let dir = path.with_file_name(format!("{name}.d"));
        Self {
            inventory: path.to_path_buf(),
            key: dir.join("id_ed25519"),
            known_hosts: dir.join("known_hosts"),
        }
    }

    fn dir(&self) -> &Path {
        self.key.parent().unwrap_or(Path::new("."))
    }
}

/// Provisions the lab cluster from `builder` on `backend` (the builder's backend, one whose
/// lookup reports published ports: docker), then writes its key pair, known_hosts and
/// inventory at `inventory`. On failure after provisioning, the cluster is removed before the
/// error returns.
pub async fn provision_lab(
    builder: ClusterBuilder,
    backend: &dyn Backend,
    inventory: &Path,
) -> Result<Cluster, LabError> {
    let cluster = builder.up().await?;
    match write_lab_inventory(&cluster, backend, inventory).await {
        Ok(_) => Ok(cluster),
        Err(e) => {
            if let Err(d) = cluster.down().await {
                tracing::warn!("removing the lab after a failure: {d}");
            }
            Err(e)
        }
    }
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// For a running lab cluster on `backend`: generates a fresh ed25519 key pair, authorizes it for
/// root on every node, collects the nodes' host keys into known_hosts (`[127.0.0.1]:<port>`
/// entries) and writes the inventory (address 127.0.0.1, the published port, the node's
/// cluster address). The ports come from the backend's lookup capability.
pub async fn write_lab_inventory(
    cluster: &Cluster,
    backend: &dyn Backend,
    inventory: &Path,
) -> Result<LabFiles, LabError> {
    let name = cluster.name().to_string();
    let fail = |step: &str, message: String| LabError::Step {
        cluster: name.clone(),
        step: step.to_string(),
        message,
    };
    let files = LabFiles::for_inventory(inventory);
    std::fs::create_dir_all(files.dir())
        .map_err(|e| fail("key pair", format!("{}: {e}", files.dir().display())))?;
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(files.dir(), std::fs::Permissions::from_mode(0o700));
    }
    let pubkey_path = files.key.with_extension("pub");
    for p in [&files.key, &pubkey_path] {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail("key pair", format!("{}: {e}", p.display()))),
        }
    }
    let out = tokio::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C"])
        .arg(format!("cluster-sim-lab-{name}"))
        .arg("-f")
        .arg(&files.key)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| {
            fail(
                "key pair",
                format!("cannot run ssh-keygen (is OpenSSH installed?): {e}"),
            )
        })?;
    if !out.status.success() {
        return Err(fail(
            "key pair",
            format!(
                "ssh-keygen: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    let pubkey = std::fs::read(&pubkey_path)
        .map_err(|e| fail("key pair", format!("{}: {e}", pubkey_path.display())))?;

    let lookup = backend.lookup().ok_or_else(|| {
        fail(
            "list nodes",
            format!(
                "the {} backend can't list a cluster's nodes and their published ports; a lab runs on docker",
                backend.kind()
            ),
        )
    })?;
    let listed = lookup
        .nodes(&name)
        .await
        .map_err(|e| fail("list nodes", e.to_string()))?;
    let mut known = String::new();
    let mut hosts = String::new();
    for node in cluster.nodes() {
        let n = node.name().to_string();
        let info = listed.iter().find(|c| c.name == n).ok_or_else(|| {
            fail(
                "list nodes",
                format!("node {n} is not listed by the backend"),
            )
        })?;
        let port = info
            .ports
            .iter()
            .find(|(inner, _)| *inner == SSH_PORT)
            .map(|(_, outer)| *outer)
            .ok_or_else(|| {
                fail(
                    "list nodes",
                    format!("node {n} does not publish port {SSH_PORT} (add `publish = [22]` to the spec)"),
                )
            })?;
        node.write_file_mode("/root/.ssh/authorized_keys", &pubkey, 0o600)
            .await
            .map_err(|e| fail("authorize key", e.to_string()))?;
        node.exec("chown -R root:root /root/.ssh && chmod 700 /root/.ssh && chmod 600 /root/.ssh/authorized_keys")
            .await
            .map_err(|e| fail("authorize key", e.to_string()))?
            .check()
            .map_err(|e| fail("authorize key", e.to_string()))?;
        let keys = node
            .exec("cat /etc/ssh/ssh_host_*_key.pub")
            .await
            .map_err(|e| fail("host keys", e.to_string()))?
            .check()
            .map_err(|e| fail("host keys", e.to_string()))?;
        let mut any = false;
        for line in keys.stdout_lossy().lines() {
            let mut parts = line.split_whitespace();
            if let (Some(kind), Some(key)) = (parts.next(), parts.next()) {
                let _ = writeln!(known, "[127.0.0.1]:{port} {kind} {key}");
                any = true;
            }
        }
        if !any {
            return Err(fail("host keys", format!("node {n} has no ssh host keys")));
        }
        let _ = write!(
            hosts,
            "\n[[host]]\nname = {}\naddress = \"127.0.0.1\"\nport = {port}\nnode_address = {}\n",
            toml_str(&n),
            toml_str(&info.address)
        );
    }
    std::fs::write(&files.known_hosts, known).map_err(|e| {
        fail(
            "known_hosts",
            format!("{}: {e}", files.known_hosts.display()),
        )
    })?;
    let rel = |p: &Path| {
        let dir = files
            .dir()
            .file_name()
            .map(|d| d.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(
            "{dir}/{}",
            p.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    };
    let text = format!(
        "# ssh lab {name}: three containers running sshd on 127.0.0.1, written by cluster-sim.\n\
         # Use: CLUSTER_SIM_BACKEND=ssh CLUSTER_SIM_INVENTORY={file} cargo test\n\
         # Remove: cluster-sim down {name}\n\
         [defaults]\nuser = \"root\"\nkey = {key}\nknown_hosts = {kh}\nconnect_timeout = \"10s\"\n{hosts}",
        file = inventory.display(),
        key = toml_str(&rel(&files.key)),
        kh = toml_str(&rel(&files.known_hosts)),
    );
    std::fs::write(inventory, text)
        .map_err(|e| fail("inventory", format!("{}: {e}", inventory.display())))?;
    // Parse what we wrote, so a bad inventory fails here rather than in the next run.
    Inventory::from_file(inventory).map_err(|e| fail("inventory", e.to_string()))?;
    Ok(files)
}
