//! Storage faults through the fault filesystem (`tools/faultfs`, mounted on a node's
//! `faulty_dirs`): I/O errors, delays and corruption under a path, and unsynced writes lost as
//! in a power cut. The vocabulary, and the scripts that reach the filesystem's control socket
//! through the `cluster-sim-faultfs ctl` command on the node.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::FaultError;
use crate::shell::quote;

/// The workspace package (and binary) of the fault filesystem.
pub const FAULTFS_PACKAGE: &str = "cluster-sim-faultfs";

/// Where the fault filesystem's binary goes on a node, relative to its working directory.
pub const FAULTFS_DEST: &str = ".cluster-sim/bin/cluster-sim-faultfs";

/// Where its control sockets live, relative to the node's working directory.
pub const FAULTFS_CONTROL: &str = ".cluster-sim/faultfs";

/// Which operations a storage fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoOp {
    /// Reads of file data.
    Read,
    /// Writes, creations, truncations, renames and removals.
    Write,
    /// fsync, fdatasync and directory syncs.
    Fsync,
    /// All of them.
    Any,
}

impl IoOp {
    /// Reads `read`, `write`, `fsync` or `any`.
    pub fn parse(s: &str) -> Result<IoOp, FaultError> {
        match s.to_ascii_lowercase().as_str() {
            "read" => Ok(IoOp::Read),
            "write" => Ok(IoOp::Write),
            "fsync" => Ok(IoOp::Fsync),
            "any" => Ok(IoOp::Any),
            _ => Err(FaultError::Invalid(format!(
                "operation {s:?}: expected read, write, fsync or any"
            ))),
        }
    }

    fn word(self) -> &'static str {
        match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
            IoOp::Fsync => "fsync",
            IoOp::Any => "any",
        }
    }
}

/// How data is corrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corruption {
    /// Every read returns its bytes with one bit flipped.
    FlipRead,
    /// The next write keeps only its first half (and says it all went).
    TornWrite,
}

impl Corruption {
    /// Reads `read` (or `flip-read`) and `torn-write`.
    pub fn parse(s: &str) -> Result<Corruption, FaultError> {
        match s.to_ascii_lowercase().as_str() {
            "read" | "flip-read" => Ok(Corruption::FlipRead),
            "torn-write" | "tear" => Ok(Corruption::TornWrite),
            _ => Err(FaultError::Invalid(format!(
                "corruption {s:?}: expected read (flip bits in reads) or torn-write"
            ))),
        }
    }
}

/// Errno names the fault filesystem knows (a positive number works too).
pub const ERRNOS: &[&str] = &[
    "EIO", "ENOSPC", "EROFS", "EDQUOT", "EACCES", "EPERM", "EAGAIN", "EBUSY", "ENOMEM", "EFBIG",
    "ENXIO",
];

/// What a storage fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "kebab-case")]
pub enum StorageFault {
    /// Operations fail with `errno`, each with this probability.
    Error {
        /// Which operations.
        op: IoOp,
        /// `EIO`, `ENOSPC`... or a number.
        errno: String,
        /// From 0 to 1.
        probability: f64,
    },
    /// Operations wait first.
    Delay {
        /// Which operations.
        op: IoOp,
        /// How long, in milliseconds.
        latency_ms: u64,
    },
    /// Data is corrupted.
    Corrupt {
        /// How.
        corruption: Corruption,
    },
}

impl StorageFault {
    /// An I/O error.
    pub fn error(op: IoOp, errno: &str, probability: f64) -> Self {
        StorageFault::Error {
            op,
            errno: errno.to_ascii_uppercase(),
            probability,
        }
    }

    /// A delay.
    pub fn delay(op: IoOp, latency: Duration) -> Self {
        StorageFault::Delay {
            op,
            latency_ms: latency.as_millis() as u64,
        }
    }

    /// Checks the errno and the probability.
    pub fn validate(&self) -> Result<(), FaultError> {
        if let StorageFault::Error {
            errno, probability, ..
        } = self
        {
            let known =
                ERRNOS.contains(&errno.as_str()) || errno.parse::<i32>().is_ok_and(|n| n > 0);
            if !known {
                return Err(FaultError::Invalid(format!(
                    "errno {errno:?}: expected one of {} or a positive number",
                    ERRNOS.join(", ")
                )));
            }
            if !(0.0..=1.0).contains(probability) {
                return Err(FaultError::Invalid(format!(
                    "probability {probability} is not between 0 and 1"
                )));
            }
        }
        Ok(())
    }

    /// The nemesis's and history's word: `io-error`, `io-delay`, `corrupt`.
    pub fn word(&self) -> &'static str {
        match self {
            StorageFault::Error { .. } => "io-error",
            StorageFault::Delay { .. } => "io-delay",
            StorageFault::Corrupt { .. } => "corrupt",
        }
    }

    /// The control line for `glob` (absolute).
    pub(crate) fn line(&self, glob: &str) -> String {
        match self {
            StorageFault::Error {
                op,
                errno,
                probability,
            } => format!("error {} {errno} {probability} {glob}", op.word()),
            StorageFault::Delay { op, latency_ms } => {
                format!("delay {} {latency_ms} {glob}", op.word())
            }
            StorageFault::Corrupt { corruption } => match corruption {
                Corruption::FlipRead => format!("corrupt read {glob}"),
                Corruption::TornWrite => format!("corrupt torn-write {glob}"),
            },
        }
    }
}

impl fmt::Display for StorageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageFault::Error {
                op,
                errno,
                probability,
            } => write!(f, "{} {errno} p={probability}", op.word()),
            StorageFault::Delay { op, latency_ms } => write!(f, "{} {latency_ms}ms", op.word()),
            StorageFault::Corrupt { corruption } => match corruption {
                Corruption::FlipRead => f.write_str("flip bits in reads"),
                Corruption::TornWrite => f.write_str("tear the next write"),
            },
        }
    }
}

/// Checks a fault's path: not empty, no `..`.
pub fn check_path(path: &str) -> Result<(), FaultError> {
    if path.trim().is_empty() || path.split('/').any(|c| c == "..") {
        return Err(FaultError::Invalid(format!(
            "storage fault path {path:?}: expected a path (absolute, or relative to the node's working directory) without '..'"
        )));
    }
    Ok(())
}

/// `path` made absolute against the node's working directory.
pub fn absolute(workdir: &str, path: &str) -> String {
    let p = path.trim_end_matches('/');
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!(
            "{}/{}",
            workdir.trim_end_matches('/'),
            p.trim_start_matches("./")
        )
    }
}

/// Whether a storage fault on `path` (a path or glob, absolute or relative to `workdir`) can
/// reach a file of one of `dirs` (the node's `faulty_dirs`): the path is in one of them, or
/// one of them is under the path (a directory covers what is in it).
pub fn covers(workdir: &str, dirs: &[String], path: &str) -> bool {
    let abs = absolute(workdir, path);
    let glob_at = abs.find(['*', '?', '[']);
    dirs.iter().any(|d| {
        let d = absolute(workdir, d);
        match glob_at {
            None => {
                abs == d || abs.starts_with(&format!("{d}/")) || d.starts_with(&format!("{abs}/"))
            }
            // What the glob's literal start allows: a path in `d`, or `d` itself or under it.
            Some(i) => {
                let lit = &abs[..i];
                lit.starts_with(&format!("{d}/")) || d.starts_with(lit)
            }
        }
    })
}

/// A command that succeeds once every fault filesystem of the node answers on its control
/// socket (a socket left from before a restart refuses until its daemon is back).
pub fn mounted_check() -> String {
    format!(
        "\"$CLUSTER_SIM_WORKDIR\"/{FAULTFS_DEST} ctl --control-dir \"$CLUSTER_SIM_WORKDIR\"/{FAULTFS_CONTROL} status >/dev/null"
    )
}

/// The lines a node's service command starts with when it has `faulty_dirs`: mount the fault
/// filesystem on each (absolute) directory, or fail the service with the reason.
pub fn mount_lines(workdir: &str, dirs: &[String]) -> String {
    let w = workdir.trim_end_matches('/');
    let dirs: Vec<String> = dirs.iter().map(|d| quote(&absolute(w, d))).collect();
    format!(
        "{bin} mount --control-dir {ctl} {dirs} || {{ echo 'cluster-sim: could not mount the fault filesystem on {list}' >&2; exit 1; }}\n",
        bin = quote(&format!("{w}/{FAULTFS_DEST}")),
        ctl = quote(&format!("{w}/{FAULTFS_CONTROL}")),
        dirs = dirs.join(" "),
        list = dirs.join(", ").replace('\'', ""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_paths() {
        let e = StorageFault::error(IoOp::Write, "eio", 1.0);
        e.validate().unwrap();
        assert_eq!(e.line("/w/data"), "error write EIO 1 /w/data");
        assert_eq!(e.to_string(), "write EIO p=1");
        assert!(StorageFault::error(IoOp::Read, "EWHAT", 1.0)
            .validate()
            .is_err());
        assert!(StorageFault::error(IoOp::Read, "EIO", 2.0)
            .validate()
            .is_err());
        assert!(StorageFault::error(IoOp::Read, "28", 0.5)
            .validate()
            .is_ok());
        let d = StorageFault::delay(IoOp::Fsync, Duration::from_millis(250));
        assert_eq!(d.line("/w/x"), "delay fsync 250 /w/x");
        assert_eq!(
            absolute("/var/lib/cluster-sim", "data/"),
            "/var/lib/cluster-sim/data"
        );
        assert_eq!(absolute("/w", "/abs/p"), "/abs/p");
        assert!(check_path("../etc").is_err());
        assert!(IoOp::parse("scribble").is_err());
        assert_eq!(
            Corruption::parse("torn-write").unwrap(),
            Corruption::TornWrite
        );
        let m = mount_lines("/w", &["data".into(), "/my dir".into()]);
        assert!(m.starts_with("/w/.cluster-sim/bin/cluster-sim-faultfs mount --control-dir /w/.cluster-sim/faultfs /w/data '/my dir' ||"), "{m}");
    }

    #[test]
    fn a_fault_path_must_reach_a_faulty_dir() {
        let dirs = vec!["data".to_string(), "/srv/db".to_string()];
        let covers = |p| covers("/w", &dirs, p);
        assert!(covers("data"));
        assert!(covers("data/wal/x"));
        assert!(covers("/w/data/f"));
        assert!(covers("/srv/db"));
        assert!(covers("/srv"), "a directory above covers what is in it");
        assert!(covers("data/*.wal"));
        assert!(covers("/srv/d*"));
        assert!(covers("*"));
        assert!(!covers("logs"));
        assert!(!covers("datastore"));
        assert!(!covers("/srv/dbx/f"));
        assert!(!covers("/var/*"));
        assert!(!covers("logs/*.wal"));
    }
}
