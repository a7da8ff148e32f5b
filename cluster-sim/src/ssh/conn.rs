//! One host's SSH connection: a multiplexed OpenSSH master, opened lazily, reopened once when it
//! dropped, and the remote commands run over it.
//!
//! Why the `openssh` crate (system OpenSSH) over `russh`: labs are reached the way their admins
//! already reach them, so `~/.ssh/config` (aliases, `ProxyJump`, per-host users and keys), the
//! agent, known_hosts and certificates all work exactly as for the `ssh` command, with no second
//! SSH implementation to configure or trust. One `ControlMaster` per host carries every command
//! as a channel, so a command costs a round trip, not a handshake (see `benches/ssh_exec.rs`);
//! `native-mux` talks to the master's socket directly instead of forking `ssh` per command.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Mutex, Semaphore};

use super::inventory::Host;
use crate::capture::Sink;
use crate::error::BackendError;

/// Channels open at once on one master: sshd refuses more than `MaxSessions` (10 by default).
const MAX_CHANNELS: usize = 8;

/// A master left idle this long exits by itself: a safety net for a process killed before it
/// could close its masters. The next command reconnects.
const MASTER_IDLE_SECS: usize = 120;

/// The outcome of a remote command.
#[derive(Debug)]
pub(crate) struct Output {
    /// Exit code; `None` when the remote process ended without one (killed by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The last line of stderr (else stdout), for one-line messages.
    pub(crate) fn why(&self) -> String {
        let pick = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(str::to_string)
        };
        pick(&self.stderr)
            .or_else(|| pick(&self.stdout))
            .unwrap_or_else(|| match self.code {
                Some(c) => format!("exit {c}"),
                None => "killed by a signal".into(),
            })
    }
}

/// Copies a stream into a sink in chunks, as it arrives.
async fn pump<R: tokio::io::AsyncRead + Unpin>(
    r: Option<R>,
    sink: &mut dyn Sink,
) -> std::io::Result<()> {
    let Some(mut r) = r else { return Ok(()) };
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        sink.push(&buf[..n]);
    }
}

/// One host's connection, shared by every cluster placed on it.
pub(crate) struct HostConn {
    pub host: Host,
    session: Mutex<Option<Arc<Session>>>,
    channels: Semaphore,
    /// Whether the login user is root (asked once per master).
    root: Mutex<Option<bool>>,
}

impl std::fmt::Debug for HostConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConn")
            .field("host", &self.host.name)
            .finish()
    }
}

fn control_dir() -> PathBuf {
    // Short, private and local: control socket paths are limited to ~100 bytes.
    let dir = std::env::temp_dir().join("cluster-sim-ssh");
    if std::fs::create_dir_all(&dir).is_ok() {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    dir
}

/// Turns what `ssh` logged on a failed login into one line.
fn explain_connect_failure(host: &Host, log: &str) -> String {
    let has = |s: &str| log.contains(s);
    let known = host
        .known_hosts
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".into());
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("Host key for") && has("has changed") {
        format!(
            "host key changed: the key {} offers does not match {known} (refused; if the host was really reinstalled, remove its old entry)",
            host.display()
        )
    } else if has("Host key verification failed") || has("No ") && has("host key is known") {
        format!(
            "host key unknown: {} is not in {known} (add it, or set trust_new_host_keys = true in the inventory)",
            host.display()
        )
    } else if has("Permission denied") {
        format!(
            "login refused (permission denied) for user {} with {}: wrong user or key?",
            host.user.as_deref().unwrap_or("(ssh default)"),
            host.key
                .as_ref()
                .map(|k| format!("key {}", k.display()))
                .unwrap_or_else(|| "the agent's keys".into())
        )
    } else if has("Connection refused") {
        format!(
            "connection refused by {} (is sshd running and the port right?)",
            host.display()
        )
    } else if has("timed out") {
        format!(
            "no answer from {} within {}",
            host.display(),
            humantime::format_duration(host.connect_timeout)
        )
    } else if has("Could not resolve hostname") {
        format!("cannot resolve {:?}", host.address)
    } else {
        log.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
            .unwrap_or("ssh failed without a message")
            .to_string()
    }
}

/// Whether an error means the master (or its connection) is gone, so reconnecting may help.
fn is_dropped(e: &openssh::Error) -> bool {
    matches!(
        e,
        openssh::Error::Disconnected | openssh::Error::SshMux(_) | openssh::Error::Master(_)
    )
}

impl HostConn {
    pub(crate) fn new(host: Host) -> Self {
        Self {
            host,
            session: Mutex::new(None),
            channels: Semaphore::new(MAX_CHANNELS),
            root: Mutex::new(None),
        }
    }

    fn fail(&self, step: &str, message: impl std::fmt::Display) -> BackendError {
        BackendError::Other(format!("host {}: {step}: {message}", self.host.name))
    }

    fn unreachable(&self, step: &str, message: impl std::fmt::Display) -> BackendError {
        BackendError::Unreachable {
            what: format!("host {}: {step}", self.host.name),
            why: message.to_string(),
        }
    }

    async fn open(&self) -> Result<Session, BackendError> {
        let h = &self.host;
        if let Some(k) = &h.key {
            if !k.is_file() {
                return Err(
                    self.unreachable("connect", format!("key {} does not exist", k.display()))
                );
            }
        }
        let mut b = SessionBuilder::default();
        b.known_hosts_check(if h.trust_new_host_keys {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        })
        .connect_timeout(h.connect_timeout)
        .server_alive_interval(Duration::from_secs(5))
        .control_directory(control_dir())
        .control_persist(ControlPersist::IdleFor(
            std::num::NonZeroUsize::new(MASTER_IDLE_SECS).expect("non-zero"),
        ));
        if let Some(u) = &h.user {
            b.user(u.clone());
        }
        if let Some(p) = h.port {
            b.port(p);
        }
        if let Some(k) = &h.key {
            b.keyfile(k);
        }
        if let Some(kh) = &h.known_hosts {
            b.user_known_hosts_file(kh);
        }
        // OpenSSH's own ConnectTimeout bounds the TCP connect and the banner; this backstop
        // bounds the rest of the login, so a host never hangs a run.
        let limit = h.connect_timeout * 2 + Duration::from_secs(5);
        match tokio::time::timeout(limit, b.connect_mux(&h.address)).await {
            Err(_) => Err(self.unreachable(
                "connect",
                format!(
                    "no login on {} within {}",
                    h.display(),
                    humantime::format_duration(limit)
                ),
            )),
            Ok(Ok(s)) => {
                tracing::debug!(host = %h.name, "ssh master up ({})", h.display());
                Ok(s)
            }
            Ok(Err(openssh::Error::Connect(e))) => {
                Err(self.unreachable("connect", explain_connect_failure(h, &e.to_string())))
            }
            Ok(Err(e)) => Err(self.unreachable("connect", e)),
        }
    }

    /// The live master, opened if there is none.
    pub(crate) async fn session(&self) -> Result<Arc<Session>, BackendError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(self.open().await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Replaces `dead` with a fresh master (unless another task already did).
    async fn reconnect(&self, dead: &Arc<Session>) -> Result<Arc<Session>, BackendError> {
        let mut guard = self.session.lock().await;
        if let Some(cur) = guard.as_ref() {
            if !Arc::ptr_eq(cur, dead) {
                return Ok(cur.clone());
            }
        }
        tracing::info!(host = %self.host.name, "ssh master dropped; reconnecting");
        *self.root.lock().await = None;
        if let Some(old) = guard.take() {
            match Arc::try_unwrap(old) {
                Ok(old) => {
                    let _ = old.close().await;
                }
                Err(old) => exit_master(old.control_socket()),
            }
        }
        let s = Arc::new(self.open().await?);
        *guard = Some(s.clone());
        Ok(s)
    }

    /// Connects now (for up-front checks), so a bad host fails at `connect`, not mid-launch.
    pub(crate) async fn ensure(&self) -> Result<(), BackendError> {
        let s = self.session().await?;
        if let Err(e) = s.check().await {
            if !is_dropped(&e) {
                return Err(self.unreachable("connect", e));
            }
            self.reconnect(&s).await?;
        }
        Ok(())
    }

    /// The master's control socket, while connected.
    pub(crate) async fn control_socket(&self) -> Option<PathBuf> {
        self.session
            .lock()
            .await
            .as_ref()
            .map(|s| s.control_socket().to_path_buf())
    }

    /// Runs `script` (a POSIX shell command line) on the host, feeding `stdin`. `limit` bounds
    /// the whole call; the command's own deadline should be enforced remotely, inside it.
    /// Reconnects and retries once when the master was gone before the command started.
    pub(crate) async fn run(
        &self,
        step: &str,
        script: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, BackendError> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = self
            .run_into(step, script, stdin, limit, &mut stdout, &mut stderr)
            .await?;
        Ok(Output {
            code,
            stdout,
            stderr,
        })
    }

    /// Like [`run`](Self::run), but streams stdout and stderr into `out` and `err` as they
    /// arrive (what arrived stays there when the call fails), and returns the exit code.
    pub(crate) async fn run_into(
        &self,
        step: &str,
        script: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
        out_sink: &mut dyn Sink,
        err_sink: &mut dyn Sink,
    ) -> Result<Option<i32>, BackendError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|_| self.fail(step, "connection closed"))?;
        let mut session = self.session().await?;
        let mut retried = false;
        loop {
            let spawned = session
                .raw_command(script)
                .stdin(if stdin.is_some() {
                    openssh::Stdio::piped()
                } else {
                    openssh::Stdio::null()
                })
                .stdout(openssh::Stdio::piped())
                .stderr(openssh::Stdio::piped())
                .spawn()
                .await;
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) if is_dropped(&e) && !retried => {
                    retried = true;
                    session = self.reconnect(&session).await?;
                    continue;
                }
                Err(e) => {
                    return Err(self.unreachable(step, format!("cannot start a command: {e}")))
                }
            };
            let input = child.stdin().take();
            let out = child.stdout().take();
            let err = child.stderr().take();
            let feed = async {
                if let (Some(mut w), Some(data)) = (input, stdin) {
                    // A command that exits without reading all its input is not a failure here.
                    let _ = w.write_all(data).await;
                    let _ = w.shutdown().await;
                }
            };
            let run = async {
                // Output first, then the exit status: waiting ends the output streams.
                let ((), r1, r2) =
                    tokio::join!(feed, pump(out, &mut *out_sink), pump(err, &mut *err_sink));
                (child.wait().await, r1.and(r2))
            };
            return match tokio::time::timeout(limit, run).await {
                Err(_) => Err(self.fail(
                    step,
                    format!("no answer within {}", humantime::format_duration(limit)),
                )),
                Ok((Ok(status), _)) => Ok(status.code()),
                // openssh reports exit 127 as an error; it is an exit code like any other here.
                Ok((Err(openssh::Error::Remote(e)), _))
                    if e.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(Some(127))
                }
                Ok((Err(openssh::Error::RemoteProcessTerminated), _)) => {
                    // The mux protocol can't tell a signal from a lost connection: ask the master.
                    if session.check().await.is_ok() {
                        Ok(None)
                    } else {
                        Err(self.unreachable(step, "connection lost while the command ran"))
                    }
                }
                Ok((Err(e), _)) if is_dropped(&e) => {
                    Err(self.unreachable(step, "connection lost while the command ran"))
                }
                Ok((Err(e), _)) => Err(self.fail(step, e)),
            };
        }
    }

    /// Runs `script` and fails (naming host and step) unless it exits 0.
    pub(crate) async fn run_ok(
        &self,
        step: &str,
        script: &str,
        stdin: Option<&[u8]>,
        limit: Duration,
    ) -> Result<Output, BackendError> {
        let o = self.run(step, script, stdin, limit).await?;
        if o.ok() {
            Ok(o)
        } else {
            Err(self.fail(step, o.why()))
        }
    }

    /// Whether the login user is root.
    pub(crate) async fn is_root(&self) -> Result<bool, BackendError> {
        if let Some(r) = *self.root.lock().await {
            return Ok(r);
        }
        let o = self
            .run_ok("connect", "id -u", None, Duration::from_secs(30))
            .await?;
        let r = String::from_utf8_lossy(&o.stdout).trim() == "0";
        *self.root.lock().await = Some(r);
        Ok(r)
    }

    /// The prefix that runs a command as root: empty for root, `sudo -n` when the inventory
    /// allows sudo, else an error naming the step.
    pub(crate) async fn root_prefix(
        &self,
        step: &str,
        why: &str,
    ) -> Result<&'static str, BackendError> {
        if self.is_root().await? {
            Ok("")
        } else if self.host.sudo {
            Ok("sudo -n ")
        } else {
            Err(self.fail(
                step,
                format!(
                    "{why} needs root, but user {} is not root and the inventory does not allow sudo (sudo = true)",
                    self.host.user.as_deref().unwrap_or("(ssh default)")
                ),
            ))
        }
    }

    /// Turns a failed `sudo -n` into a clear line; other failures pass through.
    pub(crate) fn sudo_failure(&self, step: &str, o: &Output) -> BackendError {
        let err = String::from_utf8_lossy(&o.stderr);
        let user = self.host.user.as_deref().unwrap_or("(ssh default)");
        let msg = if o.code == Some(127) && err.contains("sudo") {
            "sudo is not installed on the host (sudo = true in the inventory)".to_string()
        } else if err.contains("a password is required") || err.contains("a terminal is required") {
            format!("sudo asks user {user} for a password (needs NOPASSWD for non-interactive use)")
        } else if err.contains("not in the sudoers") || err.contains("not allowed to") {
            format!("user {user} may not use sudo")
        } else {
            o.why()
        };
        self.fail(step, msg)
    }

    /// Closes the master, if open.
    pub(crate) async fn close(&self) {
        let s = self.session.lock().await.take();
        *self.root.lock().await = None;
        if let Some(s) = s {
            match Arc::try_unwrap(s) {
                Ok(s) => {
                    let _ = s.close().await;
                }
                Err(s) => exit_master(s.control_socket()),
            }
        }
    }
}

/// Asks a master to exit through its control socket (works without async, for `Drop`).
fn exit_master(ctl: &Path) {
    let _ = std::process::Command::new("ssh")
        .arg("-S")
        .arg(ctl)
        .args(["-O", "exit", "cluster-sim"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for HostConn {
    fn drop(&mut self) {
        // Dropping an openssh Session leaves its master running: stop it while its socket exists.
        if let Some(s) = self.session.get_mut().take() {
            exit_master(s.control_socket());
        }
    }
}
