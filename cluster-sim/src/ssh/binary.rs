//! Workspace binaries on ssh hosts: uploaded once per host into a cache named by the file's
//! hash (`~/.cache/cluster-sim/bin/<sha256>/`), skipped when the host already has it, then
//! copied to the destination; checked against the host's glibc first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::backend::SshBackend;
use super::conn::HostConn;
use crate::error::BackendError;
use crate::service::glibc::{self, NodeLibc};
use crate::service::Placement;
use crate::shell::quote as q;

/// Bound on small steps (probe, copy into place).
const STEP: Duration = Duration::from_secs(60);

/// The C library of each host (by name and address), as it reported it.
static LIBC_BY_HOST: Mutex<Option<HashMap<String, NodeLibc>>> = Mutex::new(None);

/// One lock per (host, hash): nodes sharing a host upload a binary once, not side by side.
static UPLOADS: Mutex<Option<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Mutex::new(None);

fn upload_lock(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    UPLOADS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .entry(key.to_string())
        .or_default()
        .clone()
}

impl SshBackend {
    /// Checks and places a node's binaries on its host.
    pub(super) async fn place_binaries(
        &self,
        h: &HostConn,
        w: &str,
        node: &str,
        binaries: &[Placement],
    ) -> Result<(), BackendError> {
        if binaries.is_empty() {
            return Ok(());
        }
        let libc = host_libc(h).await?;
        for p in binaries {
            p.check(&libc)
                .map_err(|message| BackendError::Incompatible {
                    node: node.to_string(),
                    message: format!("host {}: {message}", h.host.name),
                })?;
        }
        for p in binaries {
            let cached = upload(h, p).await?;
            let inside = p.dest.starts_with(&format!("{w}/"));
            let sudo = if inside {
                ""
            } else {
                h.root_prefix(
                    &format!("place {}", p.dest),
                    "writing outside the working directory",
                )
                .await
                .unwrap_or("")
            };
            // Copy only when the destination differs; a rename replaces a binary in use.
            let script = format!(
                "{sudo}sh -c {inner} sh {src} {dest}",
                inner = q(
                    "mkdir -p -- \"$(dirname -- \"$2\")\" && { cmp -s -- \"$1\" \"$2\" || { cp -- \"$1\" \"$2.cs-tmp\" && chmod 755 \"$2.cs-tmp\" && mv -f -- \"$2.cs-tmp\" \"$2\"; }; }"
                ),
                src = q(&cached),
                dest = q(&p.dest)
            );
            h.run_ok(
                &format!("place {} at {}", p.what, p.dest),
                &script,
                None,
                STEP,
            )
            .await?;
        }
        Ok(())
    }
}

/// The host's C library, asked once per process.
async fn host_libc(h: &HostConn) -> Result<NodeLibc, BackendError> {
    let key = format!("{}@{}", h.host.name, h.host.address);
    if let Some(l) = LIBC_BY_HOST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return Ok(l.clone());
    }
    let o = h
        .run("probe glibc", glibc::probe_command(), None, STEP)
        .await?;
    let libc = glibc::parse_probe(&String::from_utf8_lossy(&o.stdout));
    LIBC_BY_HOST
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, libc.clone());
    Ok(libc)
}

/// Makes sure the host's cache holds the binary (uploading and verifying it if not); returns
/// the cached path.
async fn upload(h: &HostConn, p: &Placement) -> Result<String, BackendError> {
    let name = p
        .source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bin".into());
    let lock = upload_lock(&format!("{}@{}/{}", h.host.name, h.host.address, p.sha256));
    let _held = lock.lock().await;
    let dir = format!("$HOME/.cache/cluster-sim/bin/{}", p.sha256);
    let o = h
        .run_ok(
            "look for a cached binary",
            &format!("d=\"{dir}\"; [ -x \"$d/{name}\" ] && echo \"have $d/{name}\" || echo \"none $d/{name}\""),
            None,
            STEP,
        )
        .await?;
    let answer = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let (have, path) = answer.split_once(' ').unwrap_or(("none", ""));
    if have == "have" {
        tracing::debug!(host = %h.host.name, "{} already there", p.what);
        return Ok(path.to_string());
    }
    let data = tokio::fs::read(&p.source)
        .await
        .map_err(|e| BackendError::Other(format!("{}: {e}", p.source.display())))?;
    // Written beside, checked against the hash, then renamed: a file in the cache is whole.
    let script = format!(
        "set -e; d=\"{dir}\"; mkdir -p \"$d\"; t=\"$d/.{name}.$$\"; cat > \"$t\"; \
         s=$(sha256sum \"$t\" | cut -d' ' -f1); \
         if [ \"$s\" != {sha} ]; then rm -f \"$t\"; echo \"upload damaged: sha256 $s\" >&2; exit 1; fi; \
         chmod 755 \"$t\"; mv -f \"$t\" \"$d/{name}\"",
        sha = p.sha256
    );
    let limit = STEP + Duration::from_secs(data.len() as u64 / (1 << 20));
    h.run_ok(&format!("upload {}", p.what), &script, Some(&data), limit)
        .await?;
    tracing::info!(host = %h.host.name, "uploaded {} ({} bytes)", p.what, data.len());
    Ok(path.to_string())
}
