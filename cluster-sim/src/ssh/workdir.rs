//! What a cluster owns in a node's working directory on its host, `<host workdir>/<cluster>`:
//!
//! ```text
//! <workdir>/<cluster>/service.log        the service's stdout and stderr (kept across restarts)
//! <workdir>/<cluster>/service.pid        pid of the service, leader of its own process group
//! <workdir>/<cluster>/.cluster-sim/      node name and index, environment, the service launcher
//! <workdir>/<cluster>/.owner              run id, owning process, expiry, kept (`owner.rs`)
//! ```
//!
//! The service runs detached (`setsid`) in its own process group, so kill, stop, pause and
//! unpause signal the whole group, and a dropped connection doesn't touch it.

use crate::shell::quote as q;

/// The shell snippet that sets `alive` to whether the process group in `$pid` has a live
/// (non-zombie) member, and `running` to whether one of them is not stopped.
pub(super) const GROUP_STATE: &str = r#"group_state() { ps -e -o pgid= -o stat= | awk -v g="$pid" '$1==g && $2 !~ /^Z/ {n++; if ($2 !~ /^T/) r++} END {if (!n) print "exited"; else if (!r) print "paused"; else print "running"}'; }; "#;

/// The clock file libfaketime reads the service's offset from (`fault.rs` writes it).
pub(super) fn clock_file(w: &str) -> String {
    format!("{w}/.cluster-sim/faketime")
}

/// Launcher lines that preload libfaketime into the service (and only the service) when the
/// node's env says `CLUSTER_SIM_FAKETIME=1` and the host has it. Opt-in, as on docker:
/// libfaketime deadlocks programs linked with jemalloc.
pub(super) fn faketime_lines(w: &str) -> String {
    format!(
        "if [ \"${{CLUSTER_SIM_FAKETIME:-0}}\" = 1 ]; then\n  \
         for f in /usr/lib/*/faketime/libfaketime.so.1; do [ -e \"$f\" ] && export LD_PRELOAD=\"$f\" FAKETIME_TIMESTAMP_FILE={file} FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1; done\n\
         fi\n",
        file = q(&clock_file(w))
    )
}

/// `path` made absolute against the node's working directory.
pub(super) fn absolute(w: &str, path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{w}/{}", path.trim_start_matches("./"))
    }
}
