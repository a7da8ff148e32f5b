//! The node registry: clusters, their nodes and what each node can do (packages, kernel
//! features such as netem, limits), probed on the node and cached for a minute.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::fleet::{Fleet, NodeInfo};
use cluster_sim_core::backend::{Backend, NodeSummary};
use cluster_sim_core::exec::ExecRequest;

/// How long a node's probed capabilities are reused.
const PROBE_TTL: Duration = Duration::from_secs(60);

/// The name the ssh inventory's hosts are listed under.
pub const INVENTORY_CLUSTER: &str = "inventory";

/// A cluster in the listing.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterSummary {
    /// Cluster name (`inventory` for a backend's fixed hosts: an ssh inventory's).
    pub name: String,
    /// The backend's name (`docker`, `ssh`, ...).
    pub backend: &'static str,
    /// Kept on purpose (`cluster-sim up`), as opposed to a test's cluster.
    pub kept: bool,
    /// Number of nodes.
    pub nodes: usize,
    /// Node count per state.
    pub states: BTreeMap<String, usize>,
}

/// Node limits: the cgroup's where one applies, and the machine's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Limits {
    /// cgroup memory limit in bytes (`None`: unlimited or unknown).
    pub memory_bytes: Option<u64>,
    /// cgroup CPU quota in cores.
    pub cpus: Option<f64>,
    /// cgroup process limit.
    pub pids: Option<u64>,
    /// CPUs the node sees.
    pub host_cpus: Option<u64>,
    /// Memory the node's kernel has, in bytes.
    pub host_memory_bytes: Option<u64>,
}

/// What a node can do.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Capabilities {
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Operating system (`PRETTY_NAME`).
    pub os: String,
    /// Kernel and tool features: `netem`, `htb`, `nft`, `tc`, `faketime`, `service` from the
    /// fault module's probe where the backend does faults; else `sch_netem`, `sch_htb`,
    /// `nf_tables` as found among the kernel's modules.
    pub features: BTreeMap<String, bool>,
    /// Installed packages (dpkg, rpm or apk names).
    pub packages: Vec<String>,
    /// Limits.
    pub limits: Limits,
}

/// A node with what it can do.
#[derive(Debug, Clone, Serialize)]
pub struct NodeEntry {
    /// The backend's name (`docker`, `ssh`, ...).
    pub backend: &'static str,
    /// Name, address, roles and state.
    #[serde(flatten)]
    pub node: NodeInfo,
    /// Probed capabilities (absent when probing was not asked for or failed).
    pub capabilities: Option<Capabilities>,
    /// Why probing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_error: Option<String>,
}

/// Runs on the node; prints `key=value` lines.
const PROBE: &str = r#"echo "kernel=$(uname -r)"
( . /etc/os-release 2>/dev/null && echo "os=$PRETTY_NAME" )
echo "nproc=$(nproc 2>/dev/null)"
awk '/^MemTotal:/ { print "mem_total_kb=" $2 }' /proc/meminfo 2>/dev/null
for f in memory.max cpu.max pids.max; do
  [ -r /sys/fs/cgroup/$f ] && echo "$f=$(cat /sys/fs/cgroup/$f)"
done
c=/sys/fs/cgroup
[ -r $c/memory/memory.limit_in_bytes ] && echo "memory.max=$(cat $c/memory/memory.limit_in_bytes)"
[ -r $c/cpu/cpu.cfs_quota_us ] && [ "$(cat $c/cpu/cpu.cfs_quota_us)" != -1 ] && echo "cpu.max=$(cat $c/cpu/cpu.cfs_quota_us) $(cat $c/cpu/cpu.cfs_period_us)"
[ -r $c/pids/pids.max ] && echo "pids.max=$(cat $c/pids/pids.max)"
for m in sch_netem sch_htb nf_tables; do
  if [ -d /sys/module/$m ] || find /lib/modules/"$(uname -r)" -name "$m.ko*" 2>/dev/null | grep -q .; then
    echo "module_$m=yes"
  else
    echo "module_$m=no"
  fi
done
if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f='pkg=${Package}\n' 2>/dev/null
elif command -v rpm >/dev/null 2>&1; then rpm -qa --qf 'pkg=%{NAME}\n' 2>/dev/null
elif command -v apk >/dev/null 2>&1; then apk info 2>/dev/null | sed 's/^/pkg=/'
fi
exit 0
"#;

/// Reads the probe's output.
fn parse_probe(out: &str) -> Capabilities {
    let mut c = Capabilities::default();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k {
            "kernel" => c.kernel = v.to_string(),
            "os" => c.os = v.to_string(),
            "nproc" => c.limits.host_cpus = v.parse().ok(),
            "mem_total_kb" => c.limits.host_memory_bytes = v.parse::<u64>().ok().map(|k| k * 1024),
            // cgroup v1 says "no limit" with a huge number instead of `max`.
            "memory.max" => c.limits.memory_bytes = v.parse().ok().filter(|&b: &u64| b < 1 << 62),
            "pids.max" => c.limits.pids = v.parse().ok(),
            "cpu.max" => {
                // `QUOTA PERIOD`, or `max PERIOD` when unlimited.
                let mut it = v.split_whitespace();
                if let (Some(q), Some(p)) = (it.next(), it.next()) {
                    if let (Ok(q), Ok(p)) = (q.parse::<f64>(), p.parse::<f64>()) {
                        if p > 0.0 {
                            c.limits.cpus = Some(q / p);
                        }
                    }
                }
            }
            "pkg" => c.packages.push(v.to_string()),
            m if m.starts_with("module_") => {
                c.features
                    .insert(m["module_".len()..].to_string(), v == "yes");
            }
            _ => {}
        }
    }
    c.packages.sort();
    c.packages.dedup();
    c
}

/// The registry: listings, and probed capabilities cached per node.
pub struct Registry {
    cache: Mutex<HashMap<(String, String), (Instant, Capabilities)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty cache.
    pub fn new() -> Self {
        Registry {
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Every cluster of every listed backend, and each one's fixed hosts (an ssh inventory's)
    /// as the cluster `inventory`.
    pub async fn clusters(&self, fleet: &Fleet) -> Result<Vec<ClusterSummary>, String> {
        let mut out = Vec::new();
        let mut hosts = Vec::new();
        for b in &fleet.listed {
            let Some(lookup) = b.lookup() else {
                continue;
            };
            for c in lookup.clusters().await.map_err(|e| e.to_string())? {
                // A cluster of which only a name claim or a network is left has no nodes to
                // list.
                if c.nodes.is_empty() {
                    continue;
                }
                let mut states = BTreeMap::new();
                for n in &c.nodes {
                    *states.entry(n.state.to_string()).or_default() += 1;
                }
                out.push(ClusterSummary {
                    name: c.name,
                    backend: b.kind(),
                    kept: c.kept,
                    nodes: c.nodes.len(),
                    states,
                });
            }
            let fixed = lookup.hosts();
            if !fixed.is_empty() {
                hosts.push(ClusterSummary {
                    name: INVENTORY_CLUSTER.to_string(),
                    backend: b.kind(),
                    kept: true,
                    nodes: fixed.len(),
                    states: BTreeMap::new(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(hosts.into_iter().take(1));
        Ok(out)
    }

    /// A cluster's nodes with their capabilities (probed when `probe`); `None` when there is
    /// no such cluster.
    pub async fn nodes(
        &self,
        fleet: &Fleet,
        cluster: &str,
        probe: bool,
    ) -> Result<Option<Vec<NodeEntry>>, String> {
        if cluster == INVENTORY_CLUSTER {
            let fixed = fleet
                .listed
                .iter()
                .find(|b| b.lookup().is_some_and(|l| !l.hosts().is_empty()));
            if let Some(b) = fixed {
                return Ok(Some(self.host_nodes(b.as_ref(), probe).await));
            }
        }
        let Some((backend, nodes)) = fleet.find(cluster).await? else {
            return Ok(None);
        };
        let backend = backend.as_ref();
        let kind = backend.kind();
        let addrs = match backend.lookup() {
            Some(l) => l
                .nodes(cluster)
                .await
                .map(|n| n.iter().map(NodeSummary::addr).collect::<Vec<_>>())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        // The fault module's own probe says what faults can do on each node.
        let faults = backend
            .faults()
            .map(|fb| cluster_sim_core::fault::Faults::new(fb, cluster, addrs));
        let jobs = nodes.into_iter().map(|node| {
            let faults = faults.as_ref();
            async move {
                if !probe || node.state != "running" {
                    return NodeEntry {
                        backend: kind,
                        node,
                        capabilities: None,
                        probe_error: None,
                    };
                }
                let key = (cluster.to_string(), node.name.clone());
                let (capabilities, probe_error) = match self.cached(&key) {
                    Some(c) => (Some(c), None),
                    None => {
                        let mut req = ExecRequest::shell(PROBE);
                        req.timeout = Duration::from_secs(20);
                        match backend.exec(cluster, &node.name, &req).await {
                            Ok(out) => {
                                let mut caps = parse_probe(&out.stdout_lossy());
                                if let Some(f) = faults {
                                    if let Ok(fc) = f.capabilities(&node.name).await {
                                        for k in
                                            ["nft", "tc", "htb", "netem", "faketime", "service"]
                                        {
                                            caps.features
                                                .insert(k.to_string(), fc.has(k).unwrap_or(false));
                                        }
                                    }
                                }
                                self.remember(key, &caps);
                                (Some(caps), None)
                            }
                            Err(e) => (None, Some(e.to_string())),
                        }
                    }
                };
                NodeEntry {
                    backend: kind,
                    node,
                    capabilities,
                    probe_error,
                }
            }
        });
        Ok(Some(futures::future::join_all(jobs).await))
    }

    /// A backend's fixed hosts as nodes, probed on the host itself when `probe`.
    async fn host_nodes(&self, backend: &dyn Backend, probe: bool) -> Vec<NodeEntry> {
        let kind = backend.kind();
        let Some(lookup) = backend.lookup() else {
            return Vec::new();
        };
        let jobs = lookup
            .hosts()
            .into_iter()
            .enumerate()
            .map(|(i, h)| async move {
                let mut node = NodeInfo {
                    name: h.name.clone(),
                    index: i,
                    address: h.address.clone(),
                    roles: h.roles.clone(),
                    state: "unknown".into(),
                };
                if !probe {
                    return NodeEntry {
                        backend: kind,
                        node,
                        capabilities: None,
                        probe_error: None,
                    };
                }
                let key = (INVENTORY_CLUSTER.to_string(), h.name.clone());
                if let Some(c) = self.cached(&key) {
                    node.state = "reachable".into();
                    return NodeEntry {
                        backend: kind,
                        node,
                        capabilities: Some(c),
                        probe_error: None,
                    };
                }
                match lookup.host_exec(&h.name, PROBE).await {
                    Ok((_, out)) => {
                        node.state = "reachable".into();
                        let caps = parse_probe(&String::from_utf8_lossy(&out));
                        self.remember(key, &caps);
                        NodeEntry {
                            backend: kind,
                            node,
                            capabilities: Some(caps),
                            probe_error: None,
                        }
                    }
                    Err(e) => {
                        node.state = "unreachable".into();
                        NodeEntry {
                            backend: kind,
                            node,
                            capabilities: None,
                            probe_error: Some(e.to_string()),
                        }
                    }
                }
            });
        futures::future::join_all(jobs).await
    }

    fn cached(&self, key: &(String, String)) -> Option<Capabilities> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < PROBE_TTL)
            .map(|(_, c)| c.clone())
    }

    fn remember(&self, key: (String, String), caps: &Capabilities) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (at, _)| at.elapsed() < PROBE_TTL);
        cache.insert(key, (Instant::now(), caps.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_probe() {
        let v1 = parse_probe("memory.max=9223372036854771712\n");
        assert_eq!(v1.limits.memory_bytes, None);
        let c = parse_probe(
            "kernel=6.1.0\nos=Debian GNU/Linux 12 (bookworm)\nnproc=2\nmem_total_kb=1024\nmemory.max=268435456\ncpu.max=50000 100000\npids.max=max\nmodule_sch_netem=no\npkg=etcd\npkg=bash\n",
        );
        assert_eq!(c.kernel, "6.1.0");
        assert_eq!(c.limits.memory_bytes, Some(268_435_456));
        assert_eq!(c.limits.cpus, Some(0.5));
        assert_eq!(c.limits.pids, None);
        assert_eq!(c.limits.host_memory_bytes, Some(1024 * 1024));
        assert_eq!(c.features.get("sch_netem"), Some(&false));
        assert_eq!(c.packages, vec!["bash", "etcd"]);
    }
}
