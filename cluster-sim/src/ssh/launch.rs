//! Launching and removing a node on its host: the working directory wiped and made, the owner
//! file first, packages installed where missing, files and binaries placed, the service
//! started detached in its own process group; and at teardown fault rules, service and
//! directory removed.

use std::time::Duration;

use super::conn::{HostConn, Output};
use super::hosts::{SshBackend, HOUSEKEEPING_LIMIT, PATH_PREFIX};
use super::workdir::{absolute, faketime_lines, GROUP_STATE};
use crate::backend::types::{NodeAction, NodeLaunch};
use crate::error::BackendError;
use crate::shell::quote as q;

/// Bound on package installation (apt may download).
const APT_LIMIT: Duration = Duration::from_secs(900);

impl SshBackend {
    /// Wipes and recreates the node's working directory (stopping a leftover service first).
    pub(super) async fn prepare_workdir(&self, h: &HostConn, w: &str) -> Result<(), BackendError> {
        let base = w.rsplit_once('/').map(|(b, _)| b).unwrap_or("/");
        let wipe = format!(
            "w={w}; if [ -s \"$w/service.pid\" ]; then kill -KILL -- -\"$(cat \"$w/service.pid\")\" 2>/dev/null; fi; \
             rm -rf -- \"$w\" && mkdir -p -- \"$w/.cluster-sim\" && chmod 755 \"$w\"",
            w = q(w)
        );
        let script = format!(
            "if mkdir -p -- {b} 2>/dev/null && [ -w {b} ]; then {wipe}; else exit 77; fi",
            b = q(base)
        );
        let o = h
            .run("prepare workdir", &script, None, HOUSEKEEPING_LIMIT)
            .await?;
        if o.ok() {
            return Ok(());
        }
        if o.code != Some(77) {
            return Err(h.fail(&format!("prepare workdir {w}"), o.why()));
        }
        // The base directory isn't ours to write: make the cluster's directory as root and hand it
        // to the login user.
        let sudo = h
            .root_prefix(
                "prepare workdir",
                &format!("creating {w} (its parent is not writable)"),
            )
            .await?;
        let script = format!(
            "u=$(id -un); {sudo}sh -c {inner} sh {w} \"$u\"",
            inner = q("w=$1; if [ -s \"$w/service.pid\" ]; then kill -KILL -- -\"$(cat \"$w/service.pid\")\" 2>/dev/null; fi; rm -rf -- \"$w\" && mkdir -p -- \"$w/.cluster-sim\" && chmod 755 \"$w\" && chown -R \"$2\" \"$w\""),
            w = q(w)
        );
        let o = h
            .run("prepare workdir", &script, None, HOUSEKEEPING_LIMIT)
            .await?;
        if o.ok() {
            Ok(())
        } else {
            Err(h.sudo_failure(&format!("prepare workdir {w}"), &o))
        }
    }

    /// Installs missing packages with apt; present ones are skipped without touching apt.
    pub(super) async fn install_packages(
        &self,
        h: &HostConn,
        packages: &[String],
    ) -> Result<(), BackendError> {
        if packages.is_empty() {
            return Ok(());
        }
        let step = "install packages";
        for p in packages {
            if p.is_empty()
                || p.starts_with('-')
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.:_".contains(c))
            {
                return Err(BackendError::refused(
                    format!("host {}: {step}", h.host.name),
                    format!("bad package name {p:?}"),
                ));
            }
        }
        let list = packages.iter().map(|p| q(p)).collect::<Vec<_>>().join(" ");
        let check = format!(
            "for p in {list}; do s=$(dpkg-query -W -f='${{db:Status-Status}}' \"$p\" 2>/dev/null || true); [ \"$s\" = installed ] || echo \"$p\"; done"
        );
        let o = h.run_ok(step, &check, None, HOUSEKEEPING_LIMIT).await?;
        let missing: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if missing.is_empty() {
            tracing::debug!(host = %h.host.name, "packages present: {list}");
            return Ok(());
        }
        let sudo = h
            .root_prefix(step, &format!("installing {}", missing.join(" ")))
            .await?;
        let missing_q = missing.iter().map(|p| q(p)).collect::<Vec<_>>().join(" ");
        let unknown_check = format!(
            "command -v apt-get >/dev/null || {{ echo 'apt-get not found (only Debian-family hosts can install packages)' >&2; exit 3; }}; \
             for p in {missing_q}; do apt-cache show \"$p\" >/dev/null 2>&1 || echo \"$p\"; done"
        );
        let unknown = |o: &Output| -> Vec<String> {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        let mut unk = unknown(
            &h.run_ok(step, &unknown_check, None, HOUSEKEEPING_LIMIT)
                .await?,
        );
        let mut update_note = String::new();
        if !unk.is_empty() {
            // Package lists may be missing or old: refresh once, then look again.
            let o = h
                .run(
                    step,
                    &format!("{sudo}env DEBIAN_FRONTEND=noninteractive apt-get update -q -o Acquire::Retries=1 -o DPkg::Lock::Timeout=120"),
                    None,
                    APT_LIMIT,
                )
                .await?;
            if !o.ok() {
                if !sudo.is_empty() && super::said::mentions_sudo(&o.stderr) {
                    return Err(h.sudo_failure(step, &o));
                }
                update_note = format!(" (apt-get update failed: {})", o.why());
            }
            unk = unknown(
                &h.run_ok(step, &unknown_check, None, HOUSEKEEPING_LIMIT)
                    .await?,
            );
        }
        if !unk.is_empty() {
            return Err(BackendError::refused(
                format!("host {}: {step}", h.host.name),
                format!(
                    "unknown package{} {}: apt has no such package{update_note}",
                    if unk.len() > 1 { "s" } else { "" },
                    unk.iter()
                        .map(|p| format!("{p:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let install = format!(
            "{sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 {missing_q}"
        );
        let o = h.run(step, &install, None, APT_LIMIT).await?;
        if !o.ok() {
            return Err(if sudo.is_empty() {
                h.fail(
                    step,
                    format!("apt-get install {}: {}", missing.join(" "), o.why()),
                )
            } else {
                h.sudo_failure(&format!("{step} {}", missing.join(" ")), &o)
            });
        }
        tracing::info!(host = %h.host.name, "installed {}", missing.join(" "));
        Ok(())
    }

    /// Writes a file on a host, with sudo for paths outside the working directory if allowed.
    pub(super) async fn put(
        &self,
        h: &HostConn,
        w: &str,
        path: &str,
        data: &[u8],
        mode: u32,
        verb: &str,
    ) -> Result<(), BackendError> {
        let path = absolute(w, path);
        let step = format!("{verb} {path}");
        let inside = path.starts_with(&format!("{w}/"));
        let sudo = if !inside && h.host.sudo && !h.is_root().await? {
            "sudo -n "
        } else {
            ""
        };
        let script = format!(
            "{sudo}sh -c {inner} sh {p}",
            inner = q(&format!(
                "mkdir -p -- \"$(dirname -- \"$1\")\" && cat > \"$1\" && chmod {mode:o} \"$1\""
            )),
            p = q(&path)
        );
        let limit = HOUSEKEEPING_LIMIT + Duration::from_secs((data.len() / (1 << 20)) as u64);
        let o = h.run(&step, &script, Some(data), limit).await?;
        if o.ok() {
            return Ok(());
        }
        if !sudo.is_empty() {
            return Err(h.sudo_failure(&step, &o));
        }
        let why = o.why();
        if super::said::permission_denied(&why) && !h.is_root().await.unwrap_or(true) {
            return Err(h.fail(
                &step,
                format!(
                    "permission denied (user {} is not root; set sudo = true in the inventory to write outside the working directory)",
                    h.host.user.as_deref().unwrap_or("(ssh default)")
                ),
            ));
        }
        Err(h.fail(&step, why))
    }

    /// Starts the service detached, in its own session and process group; returns its pid.
    pub(super) async fn start_service(&self, h: &HostConn, w: &str) -> Result<(), BackendError> {
        let script = format!(
            "{GROUP_STATE}cd {w} || exit 1; \
             if [ -s service.pid ]; then pid=$(cat service.pid); [ \"$(group_state)\" = exited ] || exit 0; fi; \
             rm -f service.pid; : >> service.log; \
             (setsid sh .cluster-sim/run.sh >> service.log 2>&1 < /dev/null &); \
             i=0; while [ ! -s service.pid ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
             [ -s service.pid ] || {{ echo 'the service did not start' >&2; exit 1; }}",
            w = q(w)
        );
        h.run_ok("start service", &script, None, HOUSEKEEPING_LIMIT)
            .await
            .map(|_| ())
    }

    /// Signals the service's process group: `how` is kill, stop, pause or unpause.
    pub(super) async fn signal_service(
        &self,
        h: &HostConn,
        w: &str,
        how: NodeAction,
        grace: u32,
    ) -> Result<(), BackendError> {
        let body = match how {
            NodeAction::Kill => "kill -KILL -- -\"$pid\" 2>/dev/null; wait_gone 100".to_string(),
            NodeAction::Pause => "kill -STOP -- -\"$pid\" 2>/dev/null || true".to_string(),
            NodeAction::Unpause => "kill -CONT -- -\"$pid\" 2>/dev/null || true".to_string(),
            _ => format!(
                "kill -TERM -- -\"$pid\" 2>/dev/null; kill -CONT -- -\"$pid\" 2>/dev/null; \
                 wait_gone {}; [ \"$(group_state)\" = exited ] || {{ kill -KILL -- -\"$pid\" 2>/dev/null; wait_gone 100; }}",
                grace * 20
            ),
        };
        let script = format!(
            "{GROUP_STATE}wait_gone() {{ i=0; while [ \"$(group_state)\" != exited ] && [ $i -lt $1 ]; do sleep 0.05; i=$((i+1)); done; }}; \
             cd {w} 2>/dev/null || exit 0; [ -s service.pid ] || exit 0; pid=$(cat service.pid); {body}",
            w = q(w)
        );
        h.run_ok(
            &how.to_string(),
            &script,
            None,
            HOUSEKEEPING_LIMIT + Duration::from_secs(grace.into()),
        )
        .await
        .map(|_| ())
    }

    pub(super) async fn launch_node(
        &self,
        cluster: &str,
        n: &NodeLaunch,
    ) -> Result<(), BackendError> {
        let (h, w) = self.locate(cluster, &n.spec.name).await?;
        self.mark_touched(cluster, &n.spec.name);
        self.prepare_workdir(h, &w).await?;
        // Owner and node name first, before anything that needs removing exists: a harness
        // killed from here on leaves a directory its watchdog (or a reaper) can find and judge.
        let owner = {
            let st = self.state();
            match st.owners.get(cluster) {
                // A node added at run time: the cluster's own owner file (`membership.rs`).
                Some(text) => text.clone(),
                None => super::owner::owner_text(st.leases.get(cluster).copied().flatten()),
            }
        };
        self.put(
            h,
            &w,
            &format!("{w}/{}", super::owner::OWNER_FILE),
            owner.as_bytes(),
            0o644,
            "write",
        )
        .await?;
        self.put(
            h,
            &w,
            &format!("{w}/.cluster-sim/node"),
            format!("{}\n", n.spec.name).as_bytes(),
            0o644,
            "write",
        )
        .await?;
        // What a lookup reports of the node beside its name (the name file stays one line:
        // earlier versions read it whole).
        self.put(
            h,
            &w,
            &format!("{w}/.cluster-sim/about"),
            format!("index={}\nroles={}\n", n.spec.index, n.spec.roles.join(",")).as_bytes(),
            0o644,
            "write",
        )
        .await?;
        self.install_packages(h, &n.spec.packages).await?;
        self.place_binaries(h, &w, &n.spec.name, &n.binaries)
            .await?;
        for (path, data, mode) in &n.files {
            self.put(h, &w, path, data, *mode, "upload").await?;
        }
        let mut env = String::new();
        for (k, v) in &n.spec.env {
            if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || k.is_empty()
                || k.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(BackendError::refused(
                    format!("host {}: node {}", h.host.name, n.spec.name),
                    format!("bad environment variable name {k:?}"),
                ));
            }
            env.push_str(&format!("{k}={}; export {k}\n", q(v)));
        }
        let command = n
            .spec
            .command
            .clone()
            .unwrap_or_else(|| "exec sleep 2147483647".into());
        let run = format!(
            "#!/bin/sh\n# The service of node {node} of cluster {cluster}, started by cluster-sim's ssh backend.\n\
             echo $$ > {w}/service.pid\ncd {w} || exit 1\n{PATH_PREFIX}\n. {w}/.cluster-sim/env\n{faketime}exec sh -c {cmd}\n",
            node = n.spec.name,
            w = q(&w),
            cmd = q(&command),
            faketime = faketime_lines(&w),
        );
        let meta = format!("{w}/.cluster-sim");
        self.put(
            h,
            &w,
            &format!("{meta}/env"),
            env.as_bytes(),
            0o644,
            "write",
        )
        .await?;
        self.put(
            h,
            &w,
            &format!("{meta}/run.sh"),
            run.as_bytes(),
            0o755,
            "write",
        )
        .await?;
        if !n.spec.faulty_dirs.is_empty() {
            self.check_fuse(h).await?;
        }
        self.start_service(h, &w).await
    }

    /// `faulty_dirs` mounts the fault filesystem: the host needs /dev/fuse, and a mount allowed
    /// (root may mount, else fusermount3 of the package fuse3); the check the `fuse` probe
    /// runs too (`FUSE_CHECK`).
    async fn check_fuse(&self, h: &HostConn) -> Result<(), BackendError> {
        let step = "faulty_dirs";
        let o = h
            .run(
                step,
                crate::fault::linux::FUSE_CHECK,
                None,
                HOUSEKEEPING_LIMIT,
            )
            .await?;
        if o.ok() {
            return Ok(());
        }
        Err(h.fail(
            step,
            format!(
                "the fault filesystem needs FUSE: {}",
                String::from_utf8_lossy(&o.stdout).trim()
            ),
        ))
    }

    pub(super) async fn teardown_node(
        &self,
        h: &HostConn,
        cluster: &str,
        w: &str,
    ) -> Result<(), BackendError> {
        // Fault rules first: a partition must not outlive the cluster on a long-lived host.
        self.clear_faults(h, cluster).await;
        self.signal_service(h, w, NodeAction::Stop, 5).await?;
        // Fault filesystems (`faulty_dirs`) are detached first: their daemons then end, and
        // `rm` never walks into a mount.
        let unmount = format!(
            "f={w}/{bin}; if [ -x \"$f\" ]; then \"$f\" unmount --control-dir {w}/{ctl}; fi",
            w = q(w),
            bin = crate::fault::storage::FAULTFS_DEST,
            ctl = crate::fault::storage::FAULTFS_CONTROL,
        );
        let _ = h
            .run("unmount faulty_dirs", &unmount, None, HOUSEKEEPING_LIMIT)
            .await;
        let script = format!("rm -rf -- {w}", w = q(w));
        let o = h
            .run("remove workdir", &script, None, HOUSEKEEPING_LIMIT)
            .await?;
        if o.ok() {
            return Ok(());
        }
        if h.host.sudo && !h.is_root().await? {
            let o = h
                .run(
                    "remove workdir",
                    &format!("sudo -n {script}"),
                    None,
                    HOUSEKEEPING_LIMIT,
                )
                .await?;
            if o.ok() {
                return Ok(());
            }
            return Err(h.sudo_failure(&format!("remove workdir {w}"), &o));
        }
        Err(h.fail(&format!("remove workdir {w}"), o.why()))
    }
}
