//! `kvd.conf`: `key = value` lines (`#` comments), read from the configuration folder.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A node's role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Takes writes and streams its log.
    Primary,
    /// Follows the primary at this address.
    Follower(String),
}

/// What `kvd serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name, for the log.
    pub node: String,
    /// Where clients and followers connect.
    pub listen: SocketAddr,
    /// Primary or follower.
    pub role: Role,
    /// Where the write-ahead log and the meta file live.
    pub data: PathBuf,
    /// The log file.
    pub log: PathBuf,
    /// Whether a write is synced to disk (fdatasync) before it is acknowledged (`fsync =
    /// true`); by default it is only written, and a power cut may lose it.
    pub fsync: bool,
}

impl Config {
    /// Reads `<dir>/kvd.conf`; errors name the file and line.
    pub fn read(dir: impl AsRef<Path>) -> Result<Config, String> {
        let path = dir.as_ref().join("kvd.conf");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let at = |line: usize, m: String| format!("{}:{line}: {m}", path.display());
        let (mut node, mut listen, mut role, mut primary, mut data, mut log) =
            (None, None, None, None, None, None);
        let mut fsync = false;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(at(i + 1, format!("expected `key = value`, got {line:?}")));
            };
            let v = v.trim().to_string();
            match k.trim() {
                "node" => node = Some(v),
                "listen" => {
                    listen = Some(
                        v.parse::<SocketAddr>()
                            .map_err(|e| at(i + 1, format!("listen {v:?}: {e}")))?,
                    )
                }
                "role" => role = Some(v),
                "primary" => primary = Some(v),
                "data" => data = Some(PathBuf::from(v)),
                "log" => log = Some(PathBuf::from(v)),
                "fsync" => {
                    fsync = match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(at(i + 1, format!("fsync {v:?} (true or false)"))),
                    }
                }
                other => return Err(at(i + 1, format!("unknown key {other:?}"))),
            }
        }
        fn need<T>(v: Option<T>, path: &Path, k: &str) -> Result<T, String> {
            v.ok_or_else(|| format!("{}: `{k}` is missing", path.display()))
        }
        let role = match need(role, &path, "role")?.as_str() {
            "primary" => Role::Primary,
            "follower" => Role::Follower(need(primary, &path, "primary")?),
            other => {
                return Err(format!(
                    "{}: role {other:?} (primary or follower)",
                    path.display()
                ))
            }
        };
        Ok(Config {
            node: need(node, &path, "node")?,
            listen: need(listen, &path, "listen")?,
            role,
            data: need(data, &path, "data")?,
            log: need(log, &path, "log")?,
            fsync,
        })
    }
}
