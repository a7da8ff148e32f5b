//! Faults on the ssh backend: the shared Linux scripts (`fault/linux.rs`) run as root on each
//! inventory host over its multiplexed master.
//!
//! Network rules live in one nftables table per cluster (`inet cluster_sim_<name>`) on each
//! host, so teardown (and `cluster-sim down NAME`) deletes exactly that table and nothing else;
//! rules we did not make are never read or changed. The test host's own ssh connection is kept
//! whatever a fault cuts: the first rule of both chains accepts the sshd port to and from the
//! address the host sees us connect from (`$SSH_CONNECTION`). The service is frozen, thawed and
//! signalled through its process group, whose leader's pid the backend keeps in
//! `<workdir>/service.pid`. The ledger sits in `/dev/shm`, which a reboot empties along with
//! the rules.
//!
//! Clock skew: a service whose node env sets `CLUSTER_SIM_FAKETIME=1` starts with libfaketime
//! preloaded (where the host has it), reading its offset from `<workdir>/.cluster-sim/faketime`.
//! A full disk is a 4 KiB tmpfs mounted (as root: login root or `sudo = true`) over a path
//! *inside the cluster's working directory* only; anything else on a real machine is not ours
//! to cover, and says so. Teardown unmounts it before the directory goes. Shaping uses one root
//! qdisc per host device, so two clusters shaping on the same host at once would replace each
//! other's.

use std::time::Duration;

use async_trait::async_trait;

use super::conn::HostConn;
use super::hosts::{SshBackend, PATH_PREFIX};
use crate::backend::faults::{FaultBackend, NodeLayout};
use crate::exec::{ExecOutput, ExecRequest};
use crate::fault::capabilities::Capabilities;
use crate::fault::error::FaultError;
use crate::fault::linux::{
    disk_failure, disk_script, fuse_probe_script, kernel_probe_script, table_name, QDISC_HANDLE,
};
use crate::shell::quote as q;

/// Bound on one fault script (rules, signals, probes).
const FAULT_LIMIT: Duration = Duration::from_secs(30);

/// Where a host keeps a cluster's fault ledger.
fn state_dir(cluster: &str) -> String {
    format!("/dev/shm/cluster-sim/{}", table_name(cluster))
}

/// The nftables statements that keep the test host's ssh connection, from the host's
/// `$SSH_CONNECTION` (`client_ip client_port server_ip server_port`): (input, output).
pub(crate) fn keep_rules(ssh_connection: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = ssh_connection.split_whitespace().collect();
    let [client, _, _, port] = parts.as_slice() else {
        return None;
    };
    let port: u16 = port.parse().ok()?;
    let ip: std::net::IpAddr = client.parse().ok()?;
    let family = if ip.is_ipv4() { "ip" } else { "ip6" };
    Some((
        format!("{family} saddr {ip} tcp dport {port} accept"),
        format!("{family} daddr {ip} tcp sport {port} accept"),
    ))
}

impl SshBackend {
    /// Runs `script` as root on `h` (sudo where the login user is not root).
    async fn host_root(
        &self,
        h: &HostConn,
        node: &str,
        step: &str,
        script: &str,
    ) -> Result<super::conn::Output, FaultError> {
        let sudo = h
            .root_prefix(step, "a fault")
            .await
            .map_err(FaultError::backend(node, step))?;
        let line = format!("{sudo}sh -c {}", q(&format!("{PATH_PREFIX}{script}")));
        h.run(step, &line, None, FAULT_LIMIT)
            .await
            .map_err(FaultError::backend(node, step))
    }

    /// Removes what faults of `cluster` left on the host behind `h`: its nftables table, our
    /// qdisc (one per host: see the module's note), its ledger; only where this cluster left a
    /// ledger. Best effort, for teardown; a host where
    /// we are not root and may not sudo never had any.
    pub(crate) async fn clear_faults(&self, h: &HostConn, cluster: &str) {
        if !(h.host.sudo || h.is_root().await.unwrap_or(false)) {
            return;
        }
        let dir = q(&state_dir(cluster));
        // Full-disk mounts first: under one, the directory can't be removed.
        let w = q(&format!("{}/{cluster}/", h.host.workdir));
        let script = format!(
            "for m in $(awk '$1 == \"cluster-sim-full\" {{ print $2 }}' /proc/mounts | sort -r); do case \"$m/\" in {w}*) umount -l \"$m\";; esac; done\n\
             if command -v nft >/dev/null 2>&1; then nft delete table inet {table} 2>/dev/null; fi\n\
             [ -d {dir} ] || exit 0\n\
             if [ -s {dir}/strobe.pid ]; then kill \"$(cat {dir}/strobe.pid)\" 2>/dev/null; fi\n\
             if command -v tc >/dev/null 2>&1; then for d in $(ls /sys/class/net); do if tc qdisc show dev \"$d\" root 2>/dev/null | grep -q ' {QDISC_HANDLE}: '; then tc qdisc del dev \"$d\" root; fi; done; fi\n\
             rm -rf {dir}",
            table = table_name(cluster),
        );
        if let Err(e) = self.host_root(h, "-", "clear faults", &script).await {
            tracing::warn!("{e}");
        }
    }

    /// The keep rules for a host, from its view of our connection.
    async fn keep_for(&self, h: &HostConn, node: &str) -> Result<(String, String), FaultError> {
        if let Some(k) = self.cached_keep(&h.host.name) {
            return Ok(k);
        }
        let step = "find our ssh connection";
        let o = h
            .run(step, "echo \"$SSH_CONNECTION\"", None, FAULT_LIMIT)
            .await
            .map_err(FaultError::backend(node, step))?;
        let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
        // Without it a partition could cut the very connection that must undo it: refuse.
        let k = keep_rules(&text).ok_or_else(|| FaultError::Apply {
            node: node.to_string(),
            step: step.into(),
            code: o.code.map_or(-1, i64::from),
            detail: format!("SSH_CONNECTION is {text:?}, so the connection can't be kept"),
        })?;
        self.cache_keep(&h.host.name, k.clone());
        Ok(k)
    }
}

#[async_trait]
impl FaultBackend for SshBackend {
    async fn layout(&self, cluster: &str, node: &str) -> Result<NodeLayout, FaultError> {
        let (h, w) = self
            .node_host(cluster, node)
            .await
            .map_err(FaultError::backend(node, "find node"))?;
        let keep = self.keep_for(h, node).await?;
        Ok(NodeLayout {
            state_dir: state_dir(cluster),
            // The group leader, only while some member of its group lives.
            service_pid: format!(
                "p=$(cat {} 2>/dev/null) && kill -s 0 -- -\"$p\" 2>/dev/null && echo \"$p\"",
                q(&format!("{w}/service.pid"))
            ),
            table: table_name(cluster),
            keep: Some(keep),
            clock_file: Some(super::workdir::clock_file(&w)),
        })
    }

    async fn run_root(
        &self,
        cluster: &str,
        node: &str,
        script: &str,
    ) -> Result<ExecOutput, FaultError> {
        let (h, _) = self
            .node_host(cluster, node)
            .await
            .map_err(FaultError::backend(node, "find node"))?;
        let step = "fault";
        let sudo = h
            .root_prefix(step, "a fault")
            .await
            .map_err(FaultError::backend(node, step))?;
        let line = format!("{sudo}sh -c {}", q(&format!("{PATH_PREFIX}{script}")));
        let started = std::time::Instant::now();
        let req = ExecRequest::shell(script);
        let (mut out, mut err) = ExecOutput::captures(node, &req);
        let code = h
            .run_into(step, &line, None, FAULT_LIMIT, &mut out, &mut err)
            .await
            .map_err(FaultError::backend(node, step))?;
        Ok(ExecOutput::from_captured(
            node,
            &req,
            code.map_or(-1, i64::from),
            (out, err),
            started.elapsed(),
            false,
        ))
    }

    async fn probe_kernel(&self) -> Result<Capabilities, FaultError> {
        let step = "probe kernel features";
        // In a network namespace of its own where `unshare` may make one, so the probe's
        // qdiscs never touch the host's own loopback.
        let probe = q(&kernel_probe_script());
        let script = format!(
            "if unshare -n true 2>/dev/null; then unshare -n sh -c {probe}; else sh -c {probe}; fi"
        );
        let jobs = self.hosts().iter().map(|h| {
            let script = script.clone();
            async move {
                let o = self.host_root(h, &h.host.name, step, &script).await?;
                if !o.ok() {
                    return Err(FaultError::Apply {
                        node: h.host.name.clone(),
                        step: step.into(),
                        code: o.code.map_or(-1, i64::from),
                        detail: o.why(),
                    });
                }
                // FUSE as the login user, who runs the service and its mounts.
                let fuse = h
                    .run("probe fuse", &fuse_probe_script(), None, FAULT_LIMIT)
                    .await
                    .map_err(FaultError::backend(&h.host.name, "probe fuse"))?;
                Ok(Capabilities {
                    fuse: fuse.ok()
                        && Capabilities::parse(&String::from_utf8_lossy(&fuse.stdout)).fuse,
                    ..Capabilities::parse(&String::from_utf8_lossy(&o.stdout))
                })
            }
        });
        let all = futures::future::try_join_all(jobs).await?;
        let mut it = all.into_iter();
        let first = it.next().unwrap_or_default();
        Ok(it.fold(first, |a, b| a.and(&b)))
    }

    async fn disk(
        &self,
        cluster: &str,
        node: &str,
        path: &str,
        full: bool,
    ) -> Result<(), FaultError> {
        let step = if full { "fill disk" } else { "free disk" };
        let (h, w) = self
            .node_host(cluster, node)
            .await
            .map_err(FaultError::backend(node, step))?;
        let path = path.trim_end_matches('/');
        if path != w && !path.starts_with(&format!("{w}/")) || path.contains("/../") {
            return Err(FaultError::Unsupported {
                node: node.to_string(),
                what: format!("a full disk at {path}"),
                missing: format!(
                    "a path inside the cluster's working directory {w} (the ssh backend mounts nothing elsewhere on a host)"
                ),
            });
        }
        if !(h.host.sudo || h.is_root().await.unwrap_or(false)) {
            return Err(FaultError::Unsupported {
                node: node.to_string(),
                what: "a full disk".into(),
                missing: "root on the host (log in as root or set sudo = true in the inventory)"
                    .into(),
            });
        }
        let script = format!("p={}; {}", q(path), disk_script(full));
        let o = self.host_root(h, node, step, &script).await?;
        if o.ok() {
            return Ok(());
        }
        // Root in a container without CAP_SYS_ADMIN (an sshd lab without `fuse = true`) may not mount.
        let said = if o.stderr.is_empty() {
            &o.stdout
        } else {
            &o.stderr
        };
        Err(disk_failure(
            node,
            step,
            path,
            o.code.map_or(-1, i64::from),
            &String::from_utf8_lossy(said),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_hosts_connection_is_kept_by_address_and_sshd_port() {
        assert_eq!(
            keep_rules("10.199.3.1 51234 10.199.3.2 22"),
            Some((
                "ip saddr 10.199.3.1 tcp dport 22 accept".into(),
                "ip daddr 10.199.3.1 tcp sport 22 accept".into()
            ))
        );
        assert_eq!(
            keep_rules("fe80::1 40000 fe80::2 2222").map(|k| k.0),
            Some("ip6 saddr fe80::1 tcp dport 2222 accept".into())
        );
        assert_eq!(keep_rules(""), None);
        assert_eq!(keep_rules("x 1 y 22"), None);
    }
}
