//! Interactive shells on ssh nodes: the system `ssh` client through the host's master
//! connection (`-S` its control socket, so no second login), with `-t` when this process has a
//! terminal (ssh then puts it in raw mode and follows its size itself) and `-T` when standard
//! input is a pipe. The shell starts in the node's working directory with the node's
//! environment (`<workdir>/.cluster-sim/env`, as every exec sees it).

use async_trait::async_trait;

use super::backend::SshBackend;
use crate::backend::shell::{ShellBackend, ShellTerm};
use crate::error::BackendError;
use crate::shell::quote as q;

/// The remote command: the node's directory and environment, then the user's shell.
fn remote_script(workdir: &str) -> String {
    let inner = "cd \"$1\" || exit 126; if [ -r \"$1/.cluster-sim/env\" ]; then set -a; \
                 . \"$1/.cluster-sim/env\"; set +a; fi; exec \"${SHELL:-/bin/sh}\"";
    format!("sh -c {} sh {}", q(inner), q(workdir))
}

#[async_trait]
impl ShellBackend for SshBackend {
    async fn shell(&self, cluster: &str, node: &str, term: ShellTerm) -> Result<i64, BackendError> {
        let (h, workdir) = self.locate(cluster, node).await?;
        h.ensure().await?;
        let ctl = h.control_socket().await.ok_or_else(|| {
            BackendError::host(&h.host.name, "shell", "the master connection closed")
        })?;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.arg("-S")
            .arg(&ctl)
            .arg("-o")
            .arg("ControlMaster=no")
            .arg(if term.tty { "-t" } else { "-T" });
        if let Some(u) = &h.host.user {
            cmd.arg("-l").arg(u);
        }
        if let Some(p) = h.host.port {
            cmd.arg("-p").arg(p.to_string());
        }
        cmd.arg(&h.host.address).arg(remote_script(&workdir));
        // The resizes are ssh's own business: it shares this process's terminal.
        drop(term.resizes);
        let status = cmd.status().await.map_err(|e| BackendError::Local {
            what: "run ssh".into(),
            source: e,
        })?;
        Ok(status.code().map_or(-1, i64::from))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shell_starts_in_the_workdir_with_the_node_env() {
        let s = super::remote_script("/srv/cs/c1");
        assert!(s.starts_with("sh -c '"), "{s}");
        assert!(s.ends_with(" sh /srv/cs/c1"), "{s}");
        assert!(s.contains(".cluster-sim/env"), "{s}");
    }
}
