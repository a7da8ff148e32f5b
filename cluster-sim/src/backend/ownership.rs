//! Who owns a cluster, and whether that owner is provably gone: the rules every backend's
//! reaper applies, whatever it keeps them in (docker labels, ssh owner files, memory records).
//!
//! An owner is a run (a random id per process) plus what it takes to judge that process dead
//! *without* clashing across machines and containers that share one engine or host: the
//! kernel's boot id, the PID namespace, the pid and its start time. A cluster also carries the
//! unix time it expires at, fixed at birth.
//!
//! An owner is judged dead by its pid only when the boot id and PID namespace are ours (and our
//! `/proc` shows our own namespace); in every other case only past the expiry. An owner record
//! that can't be read (an older version's `<host>:<pid>:<start>`) counts as unknown: left alone
//! unless expired, since "same host name" proves nothing about PID namespaces.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The PID namespace's inode, from `/proc/self/ns/pid` (`pid:[4026531836]`).
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let link = link.to_string_lossy();
    let ino = link.strip_prefix("pid:[")?.strip_suffix(']')?;
    ino.parse::<u64>().ok().map(|i| i.to_string())
}

/// Whether `/proc` shows this process's own PID namespace: under `unshare --pid` without
/// `--mount-proc`, `/proc/<pid>` names some other process, and pids prove nothing.
fn proc_is_ours() -> bool {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_string_lossy().parse::<u32>().ok())
        == Some(std::process::id())
}

/// A random id (128 bits from the kernel; a hash of time and pid where that fails).
pub(crate) fn random_id() -> String {
    use std::io::Read;
    let mut buf = [0u8; 16];
    let from_kernel = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !from_kernel {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        h.write_u32(std::process::id());
        buf[..8].copy_from_slice(&h.finish().to_le_bytes());
    }
    hex::encode(buf)
}

/// This process's run id: random, made once, carried by everything it creates.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(random_id)
}

/// Who made a cluster: the process, as a backend records it (a docker label, an ssh owner
/// file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// Pid, as seen in the owner's PID namespace.
    pub pid: u32,
    /// The pid's start time in clock ticks since boot (tells a reused pid apart).
    pub start: u64,
    /// `/proc/sys/kernel/random/boot_id` of the owner's kernel.
    pub boot: String,
    /// Inode of the owner's PID namespace.
    pub pidns: String,
    /// Host name (for people reading labels; never used to judge).
    pub host: String,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: start_time(pid).unwrap_or(0),
                boot: boot_id().unwrap_or_default(),
                pidns: pid_namespace().unwrap_or_default(),
                host: hostname(),
            }
        })
        .clone()
    }

    /// Reads an owner record; `None` for anything else (an older version's format included).
    pub fn parse(label: &str) -> Option<Owner> {
        let mut f: HashMap<&str, &str> = HashMap::new();
        for part in label.split(',') {
            let (k, v) = part.split_once('=')?;
            f.insert(k, v);
        }
        let owner = Owner {
            pid: f.get("pid")?.parse().ok()?,
            start: f.get("start")?.parse().ok()?,
            boot: f.get("boot")?.to_string(),
            pidns: f.get("pidns")?.to_string(),
            host: f.get("host").copied().unwrap_or_default().to_string(),
        };
        (!owner.boot.is_empty() && !owner.pidns.is_empty()).then_some(owner)
    }

    /// Whether this process can judge the owner by its pid: same kernel boot, same PID
    /// namespace, and a `/proc` that shows that namespace.
    pub fn is_local(&self) -> bool {
        let me = Owner::current();
        !me.boot.is_empty()
            && !me.pidns.is_empty()
            && self.boot == me.boot
            && self.pidns == me.pidns
            && proc_is_ours()
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid={},start={},boot={},pidns={},host={}",
            self.pid, self.start, self.boot, self.pidns, self.host
        )
    }
}

/// This process as an owner record (`pid=..,start=..,boot=..,pidns=..,host=..`).
pub fn current_owner() -> String {
    Owner::current().to_string()
}

/// What a reaper may conclude about a cluster's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The owner runs (or may run): leave the cluster alone.
    Alive,
    /// The owner is provably gone, or the cluster is past its expiry: remove it.
    Dead,
    /// Nothing can be proven (another namespace or machine, or an unreadable label) and the
    /// cluster carries no expiry, or one not yet reached: leave it alone.
    Unknown,
}

/// Judges an owner record and an expiry (unix seconds) at `now`.
pub fn judge(owner: &str, expires: Option<&str>, now: SystemTime) -> Verdict {
    let expired = expires
        .and_then(|e| e.parse::<u64>().ok())
        .is_some_and(|e| UNIX_EPOCH + Duration::from_secs(e) <= now);
    match Owner::parse(owner) {
        Some(o) if o.is_local() => {
            if start_time(o.pid) == Some(o.start) {
                Verdict::Alive
            } else {
                Verdict::Dead
            }
        }
        _ if expired => Verdict::Dead,
        _ => Verdict::Unknown,
    }
}

/// Whether an owner record names a process that still runs, as far as this process can tell
/// (see [`judge`]; an unprovable owner counts as alive).
pub fn owner_alive(owner: &str) -> bool {
    judge(owner, None, SystemTime::now()) != Verdict::Dead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let now = SystemTime::now();
        let me = Owner::current();
        assert!(me.is_local(), "{me}");
        assert_eq!(judge(&me.to_string(), None, now), Verdict::Alive);
        let reused = Owner {
            start: me.start + 1,
            ..me.clone()
        };
        assert_eq!(judge(&reused.to_string(), None, now), Verdict::Dead);
        let gone = Owner {
            pid: 4_194_399,
            ..me.clone()
        };
        assert_eq!(judge(&gone.to_string(), None, now), Verdict::Dead);
    }

    #[test]
    fn owners_elsewhere_are_judged_by_expiry_only() {
        let now = SystemTime::now();
        let me = Owner::current();
        // Another PID namespace with our host name and a pid that is not running here.
        let other_ns = Owner {
            pid: 4_194_399,
            pidns: "1".into(),
            ..me.clone()
        };
        let other_boot = Owner {
            pid: 4_194_399,
            boot: "another-boot".into(),
            ..me.clone()
        };
        let past = (now - Duration::from_secs(10))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let future = (now + Duration::from_secs(600))
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        for o in [&other_ns, &other_boot] {
            let o = o.to_string();
            assert_eq!(judge(&o, None, now), Verdict::Unknown);
            assert_eq!(judge(&o, Some(&future), now), Verdict::Unknown);
            assert_eq!(judge(&o, Some(&past), now), Verdict::Dead);
        }
        // A live local owner is alive even past its expiry: it still tears down itself.
        assert_eq!(judge(&me.to_string(), Some(&past), now), Verdict::Alive);
    }

    #[test]
    fn old_and_garbled_owners_are_unknown_unless_expired() {
        let now = SystemTime::now();
        let old = format!("{}:4194399:1", hostname());
        assert_eq!(judge(&old, None, now), Verdict::Unknown);
        assert!(owner_alive(&old));
        assert_eq!(judge("garbage", Some("1"), now), Verdict::Dead);
        assert_eq!(judge("", Some("not a time"), now), Verdict::Unknown);
    }

    #[test]
    fn owner_labels_round_trip_and_run_ids_differ() {
        let me = Owner::current();
        assert_eq!(Owner::parse(&me.to_string()), Some(me));
        assert_eq!(run_id(), run_id());
        assert_ne!(random_id(), random_id());
        assert_eq!(run_id().len(), 32);
    }
}
