//! What remote programs said, read in one place: ssh's log of a failed login, sudo's
//! refusals, a shell's "Permission denied". These programs answer in text alone (sudo exits 1
//! for every refusal), so their words are classified here and nowhere else in the backend,
//! which acts on the classification.

use super::inventory::Host;

/// Turns what `ssh` logged on a failed login into one line.
pub(super) fn login_failure(host: &Host, log: &str) -> String {
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

/// What a failed `sudo -n` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sudo {
    /// sudo itself is missing (exit 127 naming it).
    Missing,
    /// sudo wants a password or a terminal.
    NeedsPassword,
    /// The user may not use sudo (for this).
    NotAllowed,
    /// Something else: the command's own failure.
    Other,
}

/// Reads a failed `sudo -n` command's exit code and stderr.
pub(super) fn sudo_refusal(code: Option<i32>, stderr: &str) -> Sudo {
    if code == Some(127) && stderr.contains("sudo") {
        Sudo::Missing
    } else if stderr.contains("a password is required") || stderr.contains("a terminal is required")
    {
        Sudo::NeedsPassword
    } else if stderr.contains("not in the sudoers") || stderr.contains("not allowed to") {
        Sudo::NotAllowed
    } else {
        Sudo::Other
    }
}

/// Whether sudo itself (not the command it ran) refused: its complaint comes first.
pub(super) fn sudo_refused(stderr: &[u8]) -> bool {
    stderr.starts_with(b"sudo:")
}

/// Whether a failed command under `sudo -n` mentions sudo at all (apt-get's own failures
/// don't).
pub(super) fn mentions_sudo(stderr: &[u8]) -> bool {
    String::from_utf8_lossy(stderr).contains("sudo")
}

/// Whether a command's last line says the file system refused it.
pub(super) fn permission_denied(why: &str) -> bool {
    why.contains("Permission denied")
}
