//! Labels on every Docker resource, and who owns it: `<host>:<pid>:<start time>` of the process
//! that made it, so a reaper can tell a live owner from a dead one (even after SIGKILL).

use std::collections::HashMap;

/// Label naming the cluster a resource belongs to.
pub const LABEL_CLUSTER: &str = "cluster-sim.cluster";
/// Label naming the owning process: `<host>:<pid>:<start time>`.
pub const LABEL_OWNER: &str = "cluster-sim.owner";
/// Label naming the node (containers only).
pub const LABEL_NODE: &str = "cluster-sim.node";
/// Label holding the node's position in the spec (containers only).
pub const LABEL_INDEX: &str = "cluster-sim.index";
/// Label holding the node's address (containers only).
pub const LABEL_ADDRESS: &str = "cluster-sim.address";
/// Label holding the spec path the cluster came from.
pub const LABEL_SPEC: &str = "cluster-sim.spec";
/// Label set on clusters kept on purpose (`cluster-sim up`): the reaper leaves them alone.
pub const LABEL_KEEP: &str = "cluster-sim.keep";

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

/// This process as an owner label value.
pub fn current_owner() -> String {
    let pid = std::process::id();
    format!("{}:{}:{}", hostname(), pid, start_time(pid).unwrap_or(0))
}

/// Whether an owner label names a process that still runs. Owners on other hosts count as
/// alive: we cannot tell, and removing a colleague's cluster would be worse than leaving it.
pub fn owner_alive(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != hostname() {
        return true;
    }
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    start_time(pid) == Some(start)
}

/// Labels common to a cluster's network and containers.
pub fn cluster_labels(cluster: &str, spec: &str, keep: bool) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_CLUSTER.to_string(), cluster.to_string()),
        (LABEL_OWNER.to_string(), current_owner()),
        (LABEL_SPEC.to_string(), spec.to_string()),
    ]);
    if keep {
        l.insert(LABEL_KEEP.to_string(), "true".into());
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        assert!(owner_alive(&current_owner()));
        let me = current_owner();
        let (rest, _) = me.rsplit_once(':').unwrap();
        assert!(
            !owner_alive(&format!("{rest}:1")),
            "same pid, other start time"
        );
        assert!(!owner_alive(&format!("{}:4194399:1", hostname())));
        assert!(owner_alive("some-other-host:1:1"));
        assert!(!owner_alive("garbage"));
    }
}
