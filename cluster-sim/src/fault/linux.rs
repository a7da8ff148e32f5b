//! Shell scripts that bring a Linux node to a [`NodePlan`] (one nftables transaction, tc for
//! shaping), probe what it supports, signal its service and set its clock. Run as root in the
//! node's network namespace by whichever backend owns the node.

use std::fmt::Write as _;

use super::error::FaultError;
use super::plan::NodePlan;
use super::storage::{self, StorageFault};
use super::types::Impairment;
use crate::backend::faults::NodeLayout;
use crate::shell::quote as q;

/// The handle of our root qdisc; a root qdisc with another handle is someone else's.
pub(crate) const QDISC_HANDLE: &str = "1cf5";

/// Exit code of a script that found a missing capability; its stdout names it.
pub(crate) const EXIT_MISSING: i32 = 73;

/// Exit code of a script that found no service to signal.
pub(crate) const EXIT_NO_SERVICE: i32 = 74;

/// Exit code of a disk script whose mount the kernel refused (no CAP_SYS_ADMIN where it ran).
pub(crate) const EXIT_NO_MOUNT: i32 = 78;

/// An nftables table name from a cluster name: `cluster_sim_` and the name with every other
/// character an underscore (nft identifiers take letters, digits, `_` and `.`).
pub(crate) fn table_name(cluster: &str) -> String {
    let tail: String = cluster
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("cluster_sim_{tail}")
}

/// Prints `missing NAME` and exits [`EXIT_MISSING`] when a command is not on PATH.
fn need(tool: &str) -> String {
    format!(
        "command -v {tool} >/dev/null 2>&1 || {{ echo 'missing {tool}'; exit {EXIT_MISSING}; }}\n"
    )
}

/// The netem probe: adds and removes a netem qdisc on the loopback device of the node's own
/// network namespace (the kernel loads the module on demand where it exists).
const NETEM_PROBE: &str = "tc qdisc add dev lo root handle 1cf6: netem delay 0ms >/dev/null 2>&1 && tc qdisc del dev lo root handle 1cf6: >/dev/null 2>&1";

/// Probes the kernel features (nft, tc, htb, netem): one `key=yes|no` line each. Needs root in
/// a network namespace it may change (the node's own, or a throwaway one).
pub(crate) fn kernel_probe_script() -> String {
    format!(
        "y() {{ if \"$@\" >/dev/null 2>&1; then echo \"$k=yes\"; else echo \"$k=no\"; fi; }}\n\
         k=nft y command -v nft\n\
         k=tc y command -v tc\n\
         k=htb y sh -c 'tc qdisc add dev lo root handle 1cf6: htb && tc qdisc del dev lo root handle 1cf6:'\n\
         k=netem y sh -c {netem}\n",
        netem = q(NETEM_PROBE),
    )
}

/// Whether FUSE mounts work here, for the fault filesystem (`faulty_dirs`): `/dev/fuse`, and
/// for root a real mount (a container may have the device yet lack CAP_SYS_ADMIN, or have its
/// mounts refused by AppArmor), for anyone else `fusermount3`. Prints what is missing and fails.
/// The trial mount has no daemon: its device is closed before the unmount, which aborts the
/// connection, so nothing waits on it. The one check of the ssh launch path, the backends'
/// `fuse` probe and the node probe.
pub(crate) const FUSE_CHECK: &str = "[ -c /dev/fuse ] || { echo 'no /dev/fuse (the kernel module fuse; a container needs the device)'; exit 1; }; \
if [ \"$(id -u)\" = 0 ]; then \
m=$(mktemp -d) || exit 1; \
if (exec 3<>/dev/fuse && mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 cluster-sim-probe \"$m\" && exec 3>&- && umount -i \"$m\") >/dev/null 2>&1; \
then rmdir \"$m\"; else rmdir \"$m\" 2>/dev/null; echo 'mounting FUSE was refused (a container needs CAP_SYS_ADMIN, and AppArmor may refuse mounts)'; exit 1; fi; \
elif ! command -v fusermount3 >/dev/null 2>&1; then echo 'fusermount3 not found: install the package fuse3'; exit 1; fi";

/// Prints `fuse=yes` or `fuse=no` ([`FUSE_CHECK`]), for a probe without its reason.
pub(crate) fn fuse_probe_script() -> String {
    format!(
        "if sh -c {} >/dev/null 2>&1; then echo fuse=yes; else echo fuse=no; fi\n",
        q(FUSE_CHECK)
    )
}

/// Probes the node: one `key=yes|no` line per capability.
pub(crate) fn probe_script(layout: &NodeLayout) -> String {
    let clock = match &layout.clock_file {
        Some(_) => format!(
            "tr '\\0' '\\n' < /proc/$({})/environ | grep -q '^LD_PRELOAD=.*libfaketime'",
            layout.service_pid
        ),
        None => "false".to_string(),
    };
    format!(
        "{kernel}{fuse}k=faketime y sh -c {clock}\n\
         k=service y sh -c {svc}\n",
        kernel = kernel_probe_script(),
        fuse = fuse_probe_script(),
        clock = q(&clock),
        svc = q(&format!("[ -n \"$({})\" ]", layout.service_pid)),
    )
}

/// Writes the fault ledger (JSON) into the node's state directory. Shell builtins but one
/// `mv` (which keeps a reader from seeing half a file): each fork costs a few milliseconds.
pub(crate) fn save_state_script(layout: &NodeLayout, json: &str) -> String {
    let dir = q(&layout.state_dir);
    format!(
        "[ -d {dir} ] || mkdir -p {dir}\nprintf %s {json} > {dir}/faults.json.tmp && mv {dir}/faults.json.tmp {dir}/faults.json\n",
        json = q(json)
    )
}

/// Prints the node's saved ledger, or nothing.
pub(crate) fn load_state_script(layout: &NodeLayout) -> String {
    format!("cat {}/faults.json 2>/dev/null; true", q(&layout.state_dir))
}

/// Brings the node's nftables table and tc state to `plan` (and saves the ledger) in one
/// script: the table is replaced in one nft transaction, so no packet sees half a plan.
pub(crate) fn apply_script(layout: &NodeLayout, plan: &NodePlan, state_json: &str) -> String {
    let mut s = String::from("set -e\n");
    if !plan.is_empty() {
        s.push_str(&need("nft"));
    }
    if !plan.shape.is_empty() {
        s.push_str(&need("tc"));
        s.push_str(&need("ip"));
    }
    if plan.needs_netem() {
        let _ = writeln!(
            s,
            "{NETEM_PROBE} || {{ echo 'missing sch_netem'; exit {EXIT_MISSING}; }}"
        );
    }
    // nft: declare then delete the table (so deleting never fails), then rebuild it.
    let t = &layout.table;
    let mut nft = format!("table inet {t} {{}}\ndelete table inet {t}\n");
    if plan.has_filter() {
        let set = |v: &mut dyn Iterator<Item = &String>| {
            let items: Vec<&str> = v.map(String::as_str).collect();
            format!("{{ {} }}", items.join(", "))
        };
        let mut input = String::new();
        let mut output = String::new();
        if let Some((i, o)) = &layout.keep {
            let _ = writeln!(input, "    {i}");
            let _ = writeln!(output, "    {o}");
        }
        if !plan.drop_in.is_empty() {
            let _ = writeln!(input, "    ip saddr {} drop", set(&mut plan.drop_in.iter()));
        }
        if !plan.drop_out.is_empty() {
            let _ = writeln!(
                output,
                "    ip daddr {} drop",
                set(&mut plan.drop_out.iter())
            );
        }
        for l in plan.loss.iter().filter(|l| l.per_10k > 0) {
            let (chain, field) = match l.direction {
                super::types::Direction::In => (&mut input, "saddr"),
                super::types::Direction::Out => (&mut output, "daddr"),
            };
            let chance = if l.per_10k >= 10_000 {
                String::new()
            } else {
                format!(" numgen random mod 10000 < {}", l.per_10k)
            };
            let _ = writeln!(
                chain,
                "    ip {field} {}{chance} drop",
                set(&mut l.peers.iter()),
            );
        }
        let _ = write!(
            nft,
            "table inet {t} {{\n  chain input {{\n    type filter hook input priority -5; policy accept;\n{input}  }}\n  chain output {{\n    type filter hook output priority -5; policy accept;\n{output}  }}\n}}\n"
        );
    }
    // Markers in the state directory (which vanishes with the rules) say whether this node
    // holds our table or our qdisc, so a node with nothing to change runs no nft or tc at all:
    // those two are most of a change's cost (about 15 ms each per node).
    let dir = q(&layout.state_dir);
    let _ = writeln!(s, "[ -d {dir} ] || mkdir -p {dir}");
    if plan.has_filter() {
        let _ = writeln!(
            s,
            "nft -f - <<'CLUSTER_SIM_NFT'\n{nft}CLUSTER_SIM_NFT\n: > {dir}/nft.on"
        );
    } else {
        // Nothing to filter: remove the table if we made one.
        let _ = writeln!(
            s,
            "if [ -e {dir}/nft.on ]; then nft -f - <<'CLUSTER_SIM_NFT'\n{nft}CLUSTER_SIM_NFT\nrm -f {dir}/nft.on\nfi"
        );
    }
    s.push_str(&shape_script(plan, &dir));
    s.push_str(&save_state_script(layout, state_json));
    s
}

/// tc: an htb root qdisc of our own handle on the device toward the peers, a class per
/// distinct shaping, a u32 filter per peer address, netem as the class's leaf where needed.
/// Traffic to anywhere else stays unclassified and passes unshaped.
fn shape_script(plan: &NodePlan, dir: &str) -> String {
    let h = QDISC_HANDLE;
    // Our qdisc goes on every device that reaches a peer; where the marker says we shaped,
    // remove it from wherever it is first.
    let mut s = format!(
        "if [ -e {dir}/tc.on ]; then\n\
         \x20 for d in $(ls /sys/class/net); do if tc qdisc show dev \"$d\" root 2>/dev/null | grep -q ' {h}: '; then tc qdisc del dev \"$d\" root; fi; done\n\
         \x20 rm -f {dir}/tc.on\n\
         fi\n"
    );
    if plan.shape.is_empty() {
        return s;
    }
    let _ = writeln!(s, ": > {dir}/tc.on");
    let mut classes: Vec<&Impairment> = Vec::new();
    for imp in plan.shape.values() {
        if !classes.contains(&imp) {
            classes.push(imp);
        }
    }
    let _ = writeln!(s, "devs=''");
    for (peer, imp) in &plan.shape {
        let class = 10 + classes.iter().position(|c| *c == imp).unwrap_or(0);
        let _ = writeln!(
            s,
            "d=$(ip -o route get {peer} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')\n\
             case \" $devs \" in *\" $d \"*) ;; *)\n\
             \x20 cur=$(tc qdisc show dev \"$d\" root | head -n1)\n\
             \x20 case \"$cur\" in *htb*|*tbf*|*netem*|*hfsc*|*prio*|*cbq*) echo \"device $d already has a root qdisc we did not make: $cur\" >&2; exit 1;; esac\n\
             \x20 tc qdisc add dev \"$d\" root handle {h}: htb\n"
        );
        for (i, c) in classes.iter().enumerate() {
            let rate = c.rate.clone().unwrap_or_else(|| "100gbit".into());
            let _ = writeln!(
                s,
                "  tc class add dev \"$d\" parent {h}: classid {h}:{id} htb rate {rate} ceil {rate} burst 16k",
                id = 10 + i
            );
            if c.needs_netem() {
                let _ = writeln!(
                    s,
                    "  tc qdisc add dev \"$d\" parent {h}:{id} handle {leaf}: netem{args}",
                    id = 10 + i,
                    leaf = 100 + i,
                    args = netem_args(c)
                );
            }
        }
        let _ = writeln!(s, "  devs=\"$devs $d\";;\nesac");
        let _ = writeln!(
            s,
            "tc filter add dev \"$d\" parent {h}: protocol ip prio 1 u32 match ip dst {peer}/32 flowid {h}:{class}"
        );
    }
    s
}

fn netem_args(imp: &Impairment) -> String {
    let mut a = String::new();
    if let Some(l) = imp.latency {
        let _ = write!(a, " delay {}us", l.as_micros());
        if let Some(j) = imp.jitter {
            let _ = write!(a, " {}us", j.as_micros());
        }
    }
    if let Some(p) = imp.duplicate {
        let _ = write!(a, " duplicate {p}%");
    }
    if let Some(p) = imp.corrupt {
        let _ = write!(a, " corrupt {p}%");
    }
    if let Some(p) = imp.reorder {
        let _ = write!(a, " reorder {p}%");
    }
    a
}

/// Sends `signal` to the service's process group.
pub(crate) fn signal_script(layout: &NodeLayout, signal: &str) -> String {
    format!(
        "pid=$({}); [ -n \"$pid\" ] || exit {EXIT_NO_SERVICE}; kill -s {signal} -- -\"$pid\"",
        layout.service_pid
    )
}

/// Runs `cmd` in the service's environment (its variables, so its preloaded clock).
pub(crate) fn service_env_script(layout: &NodeLayout, cmd: &str) -> String {
    format!(
        "pid=$({}); [ -n \"$pid\" ] || exit {EXIT_NO_SERVICE}; tr '\\0' '\\n' < /proc/$pid/environ > /tmp/.cluster-sim-svc-env.$$ && set -a && . /tmp/.cluster-sim-svc-env.$$ 2>/dev/null; set +a; rm -f /tmp/.cluster-sim-svc-env.$$; {cmd}",
        layout.service_pid
    )
}

/// Sets the service's clock offset (libfaketime reads the file at most a second late); a
/// strobe flips between the offset and true time every `strobe_ms` in a background loop.
pub(crate) fn clock_script(
    layout: &NodeLayout,
    file: &str,
    offset_ms: i64,
    strobe_ms: Option<u64>,
) -> String {
    let dir = q(&layout.state_dir);
    let f = q(file);
    let value = format!("{:+.3}", offset_ms as f64 / 1000.0);
    let mut s = format!(
        "mkdir -p {dir}; if [ -s {dir}/strobe.pid ]; then kill \"$(cat {dir}/strobe.pid)\" 2>/dev/null; rm -f {dir}/strobe.pid; fi\n"
    );
    if offset_ms == 0 && strobe_ms.is_none() {
        let _ = writeln!(s, "rm -f {f}");
        return s;
    }
    let _ = writeln!(
        s,
        "printf '%s\\n' {v} > {f}.tmp && mv {f}.tmp {f}",
        v = q(&value)
    );
    if let Some(ms) = strobe_ms {
        let secs = format!("{:.3}", ms as f64 / 1000.0);
        let lp = format!(
            "while :; do printf '%s\\n' +0 > {f}.tmp && mv {f}.tmp {f}; sleep {secs}; printf '%s\\n' {v} > {f}.tmp && mv {f}.tmp {f}; sleep {secs}; done",
            v = q(&value)
        );
        let _ = writeln!(
            s,
            "nohup sh -c {lp} >/dev/null 2>&1 </dev/null & echo $! > {dir}/strobe.pid",
            lp = q(&lp)
        );
    }
    s
}

/// Mounts (or unmounts every layer of) our full tmpfs at `$p`; its source name marks it ours.
/// A 4 KiB tmpfs holding a 4 KiB file: files can still be made there, but no byte written. A
/// refused mount exits [`EXIT_NO_MOUNT`].
pub(crate) fn disk_script(full: bool) -> String {
    if full {
        format!(
            "mkdir -p \"$p\" || exit 1; grep -q \"^cluster-sim-full $p \" /proc/mounts && exit 0; \
             mount -t tmpfs -o size=4k,nr_inodes=64,mode=1777 cluster-sim-full \"$p\" || exit {EXIT_NO_MOUNT}; \
             head -c 4096 /dev/zero > \"$p/.cluster-sim-full\" 2>/dev/null; exit 0"
        )
    } else {
        "while grep -q \"^cluster-sim-full $p \" /proc/mounts; do umount -l \"$p\" || exit 1; done"
            .to_string()
    }
}

/// What a disk script that exited `code` with `output` (its stderr, or its whole output) means:
/// a refused mount is the node lacking what a full disk needs (mount's first line names the
/// cause; its last only points at dmesg), anything else a failed step.
pub(crate) fn disk_failure(
    node: &str,
    step: &str,
    path: &str,
    code: i64,
    output: &str,
) -> FaultError {
    let lines = || output.lines().map(str::trim).filter(|l| !l.is_empty());
    if code == i64::from(EXIT_NO_MOUNT) {
        return FaultError::Unsupported {
            node: node.to_string(),
            what: "a full disk".into(),
            missing: format!(
                "permission to mount a tmpfs on the host (CAP_SYS_ADMIN; mount said: {})",
                lines().next().unwrap_or("nothing")
            ),
        };
    }
    FaultError::Apply {
        node: node.to_string(),
        step: format!("{step} at {}", q(path)),
        code,
        detail: lines().next_back().unwrap_or_default().to_string(),
    }
}

/// Opens a script that talks to the node's fault filesystems (`faulty_dirs`); exits
/// [`EXIT_MISSING`] naming `faulty_dirs` when the node has none.
fn ctl_prefix(workdir: &str) -> String {
    let w = workdir.trim_end_matches('/');
    format!(
        "f={bin}; c={ctl}; if [ ! -x \"$f\" ] || [ ! -d \"$c\" ]; then echo 'missing faulty_dirs (no fault filesystem is mounted on this node; list the directory in the spec)'; exit {EXIT_MISSING}; fi\n",
        bin = q(&format!("{w}/{}", storage::FAULTFS_DEST)),
        ctl = q(&format!("{w}/{}", storage::FAULTFS_CONTROL)),
    )
}

/// One control line sent to every fault filesystem of the node.
fn ctl(line: &str) -> String {
    format!("\"$f\" ctl --control-dir \"$c\" {} || exit 1\n", q(line))
}

/// Sets the node's rules to exactly `faults` (path, fault): every rule removed, then these
/// added, in one script.
pub(crate) fn storage_rules_script(workdir: &str, faults: &[(&str, &StorageFault)]) -> String {
    let mut s = ctl_prefix(workdir);
    s.push_str(&ctl("heal"));
    for (path, fault) in faults {
        s.push_str(&ctl(&fault.line(&storage::absolute(workdir, path))));
    }
    s
}

/// Lists the directories the node's fault filesystems are mounted on, one per line.
pub(crate) fn storage_mounts_script(workdir: &str) -> String {
    let mut s = ctl_prefix(workdir);
    s.push_str("for m in \"$c\"/*.mount; do [ -e \"$m\" ] && { cat \"$m\"; echo; }; done; true\n");
    s
}

/// Freezes the service (so it writes nothing more), then forgets every unsynced write.
pub(crate) fn storage_drop_script(workdir: &str, service_pid: &str) -> String {
    format!(
        "{}pid=$({service_pid}); [ -n \"$pid\" ] && kill -s STOP -- -\"$pid\" 2>/dev/null\n{}",
        ctl_prefix(workdir),
        ctl("drop")
    )
}
