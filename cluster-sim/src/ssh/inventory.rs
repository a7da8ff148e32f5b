//! The ssh inventory: a TOML file listing the hosts a cluster may run on, and how the nodes of a
//! spec are placed on them.
//!
//! ```toml
//! [defaults]
//! user = "root"
//! key = "lab.toml.d/id_ed25519"          # relative paths resolve against this file
//! known_hosts = "lab.toml.d/known_hosts"
//! workdir = "/var/tmp/cluster-sim"
//!
//! [[host]]
//! name = "n1"
//! address = "127.0.0.1"
//! port = 32768
//! node_address = "10.91.0.2"              # the address other nodes reach it at
//! roles = ["etcd"]
//! ```

use crate::located::{key_prefix, Located, Src};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::spec::ClusterSpec;

/// Default per-host directory under which each cluster gets `<workdir>/<cluster>`.
pub const DEFAULT_WORKDIR: &str = "/var/tmp/cluster-sim";

/// Default deadline for reaching a host and logging in.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// An inventory file that can't be read or doesn't describe valid hosts.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be read.
    #[error("{file}: cannot read inventory: {source}")]
    Read {
        /// Inventory path.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid inventory.
    #[error("{file}:{line}:{column}: {}{message}", key_prefix(.key))]
    Invalid {
        /// Inventory path.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// The key at fault (`host[1].port`, ...).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The inventory has too few hosts for a spec.
    #[error("cluster spec {spec} needs {needed} hosts but inventory {inventory} has {available} ({hosts})")]
    TooFewHosts {
        /// Spec source.
        spec: String,
        /// Inventory source.
        inventory: String,
        /// Nodes in the spec.
        needed: usize,
        /// Hosts in the inventory.
        available: usize,
        /// Host names, for the message.
        hosts: String,
    },
}

impl From<Located> for InventoryError {
    fn from(l: Located) -> Self {
        InventoryError::Invalid {
            file: l.file,
            line: l.line,
            column: l.column,
            key: l.key,
            message: l.message,
        }
    }
}

/// Inventory errors at a place in the file.
trait InventoryErr {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl std::fmt::Display,
    ) -> InventoryError;
}

impl InventoryErr for Src<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl std::fmt::Display,
    ) -> InventoryError {
        self.at(span, key, message).into()
    }
}

/// One host, with the inventory's defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Host name (matched against node names when placing nodes).
    pub name: String,
    /// Address (or `~/.ssh/config` alias) to connect to.
    pub address: String,
    /// SSH port; `None` leaves it to `~/.ssh/config` (else 22).
    pub port: Option<u16>,
    /// Login user; `None` leaves it to `~/.ssh/config` (else the local user).
    pub user: Option<String>,
    /// Private key file; `None` uses the agent and `~/.ssh/config`.
    pub key: Option<PathBuf>,
    /// known_hosts file; `None` uses OpenSSH's default (`~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// Accept a host key not yet in known_hosts (`StrictHostKeyChecking=accept-new`). A
    /// changed key is refused either way.
    pub trust_new_host_keys: bool,
    /// Use `sudo -n` where root is needed (packages, files outside the working directory).
    pub sudo: bool,
    /// Roles this host prefers to take.
    pub roles: Vec<String>,
    /// Base working directory; each cluster gets `<workdir>/<cluster>`.
    pub workdir: String,
    /// Address other nodes reach this host at.
    pub node_address: String,
    /// Deadline for connecting and logging in.
    pub connect_timeout: Duration,
}

impl Host {
    /// `user@address:port` as far as known, for messages.
    pub fn display(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{}{port}", self.address)
    }
}

/// A parsed inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Where it came from (path or `<inline>`).
    pub source: String,
    /// Hosts, in file order.
    pub hosts: Vec<Host>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default, rename = "host")]
    hosts: Vec<RawHost>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    user: Option<String>,
    port: Option<u16>,
    key: Option<String>,
    known_hosts: Option<String>,
    trust_new_host_keys: Option<bool>,
    sudo: Option<bool>,
    workdir: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Spanned<String>,
    port: Option<u16>,
    user: Option<String>,
    key: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    sudo: Option<bool>,
    workdir: Option<Spanned<String>>,
    node_address: Option<String>,
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

fn check_workdir(src: &Src<'_>, v: &Spanned<String>, key: &str) -> Result<String, InventoryError> {
    let w = v.get_ref().trim_end_matches('/');
    if !w.starts_with('/') || w.split('/').any(|p| p == "..") || w.len() < 2 {
        return Err(src.err(
            v.span(),
            key,
            format!(
                "workdir {:?} must be an absolute directory other than / (without '..')",
                v.get_ref()
            ),
        ));
    }
    Ok(w.to_string())
}

impl Inventory {
    /// Reads and validates an inventory file. Relative key and known_hosts paths resolve
    /// against the file's directory.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, InventoryError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| InventoryError::Read {
            file: path.display().to_string(),
            source,
        })?;
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        Self::parse(&text, &path.display().to_string(), &base)
    }

    /// Parses inventory text; `source` names it in errors, relative paths resolve against `base`.
    pub fn parse(text: &str, source: &str, base: &Path) -> Result<Self, InventoryError> {
        let src = Src { path: source, text };
        let raw: RawInventory =
            toml::from_str(text).map_err(|e| InventoryError::from(src.toml(&e)))?;
        let d = &raw.defaults;
        let workdir = match &d.workdir {
            Some(w) => check_workdir(&src, w, "defaults.workdir")?,
            None => DEFAULT_WORKDIR.to_string(),
        };
        let connect_timeout = match &d.connect_timeout {
            Some(t) => humantime::parse_duration(t.get_ref()).map_err(|e| {
                src.err(
                    t.span(),
                    "defaults.connect_timeout",
                    format!("bad duration {:?}: {e}", t.get_ref()),
                )
            })?,
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        if connect_timeout < Duration::from_secs(1) {
            let span = d.connect_timeout.as_ref().map(|t| t.span()).unwrap_or(0..0);
            return Err(src.err(
                span,
                "defaults.connect_timeout",
                "must be at least 1s (OpenSSH counts whole seconds)",
            ));
        }
        if raw.hosts.is_empty() {
            return Err(src.err(
                0..0,
                "host",
                "the inventory lists no hosts (add [[host]] tables)",
            ));
        }
        let mut seen = HashSet::new();
        let mut hosts = Vec::new();
        for (i, h) in raw.hosts.iter().enumerate() {
            let name = h.name.get_ref().trim();
            if name.is_empty() {
                return Err(src.err(h.name.span(), &format!("host[{i}].name"), "empty host name"));
            }
            if !seen.insert(name.to_string()) {
                return Err(src.err(
                    h.name.span(),
                    &format!("host[{i}].name"),
                    format!("duplicate host {name:?}"),
                ));
            }
            let address = h.address.get_ref().trim();
            if address.is_empty()
                || address.starts_with('-')
                || address.contains(char::is_whitespace)
            {
                return Err(src.err(
                    h.address.span(),
                    &format!("host[{i}].address"),
                    format!("bad address {address:?}"),
                ));
            }
            let workdir = match &h.workdir {
                Some(w) => check_workdir(&src, w, &format!("host[{i}].workdir"))?,
                None => workdir.clone(),
            };
            hosts.push(Host {
                name: name.to_string(),
                address: address.to_string(),
                port: h.port.or(d.port),
                user: h.user.clone().or_else(|| d.user.clone()),
                key: h
                    .key
                    .as_deref()
                    .or(d.key.as_deref())
                    .map(|k| resolve_path(base, k)),
                known_hosts: d.known_hosts.as_deref().map(|k| resolve_path(base, k)),
                trust_new_host_keys: d.trust_new_host_keys.unwrap_or(false),
                sudo: h.sudo.or(d.sudo).unwrap_or(false),
                roles: h.roles.clone(),
                workdir,
                node_address: h
                    .node_address
                    .clone()
                    .unwrap_or_else(|| address.to_string()),
                connect_timeout,
            });
        }
        Ok(Self {
            source: source.to_string(),
            hosts,
        })
    }

    /// Places each node of `spec` on a distinct host: a host named like the node first, then
    /// one sharing a role with it, then the remaining hosts in inventory order. Returns one host
    /// index per node, in spec order.
    pub fn place(&self, spec: &ClusterSpec) -> Result<Vec<usize>, InventoryError> {
        let too_few = || InventoryError::TooFewHosts {
            spec: spec.source.clone(),
            inventory: self.source.clone(),
            needed: spec.nodes.len(),
            available: self.hosts.len(),
            hosts: self
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
        if spec.nodes.len() > self.hosts.len() {
            return Err(too_few());
        }
        let mut used = vec![false; self.hosts.len()];
        let mut placed: Vec<Option<usize>> = vec![None; spec.nodes.len()];
        let mut take = |placed: &mut Option<usize>, pick: &dyn Fn(&Host) -> bool| {
            if placed.is_none() {
                if let Some(i) = (0..self.hosts.len()).find(|&i| !used[i] && pick(&self.hosts[i])) {
                    used[i] = true;
                    *placed = Some(i);
                }
            }
        };
        for (n, p) in spec.nodes.iter().zip(placed.iter_mut()) {
            take(p, &|h: &Host| h.name == n.name);
        }
        for (n, p) in spec.nodes.iter().zip(placed.iter_mut()) {
            take(p, &|h: &Host| h.roles.iter().any(|r| n.roles.contains(r)));
        }
        for p in placed.iter_mut() {
            take(p, &|_: &Host| true);
        }
        placed.into_iter().map(|p| p.ok_or_else(too_few)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(text, "lab.toml", Path::new("/labs"))
    }

    fn spec(text: &str) -> ClusterSpec {
        ClusterSpec::parse(text, "s.toml", Path::new("."), "s").unwrap()
    }

    #[test]
    fn defaults_apply_and_paths_resolve() {
        let inv = parse(
            "[defaults]\nuser = \"ops\"\nkey = \"k/id\"\nknown_hosts = \"/etc/kh\"\nsudo = true\n\
             [[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\n\
             [[host]]\nname = \"b\"\naddress = \"127.0.0.1\"\nport = 2222\nuser = \"root\"\nsudo = false\nnode_address = \"172.20.0.3\"\nworkdir = \"/srv/cs/\"\n",
        )
        .unwrap();
        let a = &inv.hosts[0];
        assert_eq!(a.user.as_deref(), Some("ops"));
        assert_eq!(a.key.as_deref(), Some(Path::new("/labs/k/id")));
        assert_eq!(a.known_hosts.as_deref(), Some(Path::new("/etc/kh")));
        assert!(a.sudo && !a.trust_new_host_keys);
        assert_eq!(
            (a.node_address.as_str(), a.workdir.as_str()),
            ("10.0.0.1", DEFAULT_WORKDIR)
        );
        assert_eq!(a.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        let b = &inv.hosts[1];
        assert_eq!(
            (b.port, b.user.as_deref(), b.sudo),
            (Some(2222), Some("root"), false)
        );
        assert_eq!(
            (b.node_address.as_str(), b.workdir.as_str()),
            ("172.20.0.3", "/srv/cs")
        );
        assert_eq!(b.display(), "root@127.0.0.1:2222");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = |t: &str| parse(t).unwrap_err().to_string();
        insta::assert_snapshot!(e("[[host]]\nname = \"a\"\naddress = \"x\"\nprot = 22\n"), @"lab.toml:4:1: key `prot`: unknown field `prot`, expected one of `name`, `address`, `port`, `user`, `key`, `roles`, `sudo`, `workdir`, `node_address`");
        insta::assert_snapshot!(e("[[host]]\nname = \"a\"\n"), @"lab.toml:1:1: key `host`: missing field `address`");
        insta::assert_snapshot!(e("[[host]]\nname = \"a\"\naddress = \"x\"\n[[host]]\nname = \"a\"\naddress = \"y\"\n"), @r#"lab.toml:5:8: key `host[1].name`: duplicate host "a""#);
        insta::assert_snapshot!(e("[defaults]\nconnect_timeout = \"soon\"\n[[host]]\nname = \"a\"\naddress = \"x\"\n"), @r#"lab.toml:2:19: key `defaults.connect_timeout`: bad duration "soon": expected number at 0"#);
        insta::assert_snapshot!(e("[defaults]\nworkdir = \"tmp\"\n[[host]]\nname = \"a\"\naddress = \"x\"\n"), @r#"lab.toml:2:11: key `defaults.workdir`: workdir "tmp" must be an absolute directory other than / (without '..')"#);
        insta::assert_snapshot!(e("[defaults]\nuser = \"x\"\n"), @"lab.toml:1:1: key `host`: the inventory lists no hosts (add [[host]] tables)");
    }

    #[test]
    fn placement_by_name_then_role_then_order() {
        let inv = parse(
            "[[host]]\nname = \"h1\"\naddress = \"a\"\n\
             [[host]]\nname = \"n2\"\naddress = \"b\"\n\
             [[host]]\nname = \"h3\"\naddress = \"c\"\nroles = [\"primary\"]\n",
        )
        .unwrap();
        let s = spec("[[node]]\nname = \"n1\"\n[[node]]\nname = \"n2\"\n[[node]]\nname = \"n3\"\nroles = [\"primary\"]\n");
        assert_eq!(inv.place(&s).unwrap(), [0, 1, 2]);
        let s = spec("[[node]]\nname = \"n1\"\nroles = [\"primary\"]\n[[node]]\nname = \"x\"\n");
        assert_eq!(inv.place(&s).unwrap(), [2, 0]);
        let e = inv.place(&spec("nodes = 4")).unwrap_err().to_string();
        assert_eq!(
            e,
            "cluster spec s.toml needs 4 hosts but inventory lab.toml has 3 (h1, n2, h3)"
        );
    }
}
