//! Commands run on nodes: the request (`ExecRequest`) and its result (`ExecOutput`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ExecError;

/// Default deadline for a command run on a node.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(120);

/// How many bytes of output an error message quotes.
const TAIL_BYTES: usize = 2048;

/// A command to run on a node.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecRequest {
    /// The argv. A shell command string becomes `["sh", "-c", cmd]`.
    pub argv: Vec<String>,
    /// Extra environment, on top of the node's.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// User to run as (name or uid).
    pub user: Option<String>,
    /// Deadline; the process group is killed when it passes.
    pub timeout: Duration,
}

impl ExecRequest {
    /// A shell command (run by `sh -c`).
    pub fn shell(cmd: impl Into<String>) -> Self {
        Self::argv(["sh".to_string(), "-c".to_string(), cmd.into()])
    }

    /// An argv, run without a shell.
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            workdir: None,
            user: None,
            timeout: DEFAULT_EXEC_TIMEOUT,
        }
    }

    /// The command as a user would write it, for messages and logs.
    pub fn display(&self) -> String {
        match self.argv.as_slice() {
            [sh, c, cmd] if sh == "sh" && c == "-c" => cmd.clone(),
            argv => argv.join(" "),
        }
    }
}

/// Exit code, stdout and stderr of a command, together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Node the command ran on.
    pub node: String,
    /// The command, as written.
    pub command: String,
    /// Exit code (128 + signal when killed by a signal).
    pub code: i64,
    /// Standard output (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error (invalid UTF-8 replaced).
    pub stderr: String,
    /// How long it took.
    pub duration: Duration,
    /// Whether the deadline passed and the command was killed.
    pub timed_out: bool,
}

impl ExecOutput {
    /// Builds an output from raw streams (invalid UTF-8 replaced), for backends.
    pub(crate) fn from_raw(
        node: &str,
        req: &ExecRequest,
        code: i64,
        (stdout, stderr): (&[u8], &[u8]),
        duration: Duration,
        timed_out: bool,
    ) -> Self {
        Self {
            node: node.to_string(),
            command: req.display(),
            code,
            stdout: String::from_utf8_lossy(stdout).into_owned(),
            stderr: String::from_utf8_lossy(stderr).into_owned(),
            duration,
            timed_out,
        }
    }

    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Standard output with surrounding whitespace trimmed.
    pub fn out(&self) -> &str {
        self.stdout.trim()
    }

    /// Turns a non-zero exit or a timeout into an error naming node, command, code and output tail.
    pub fn check(self) -> Result<Self, ExecError> {
        if self.timed_out {
            return Err(ExecError::TimedOut {
                node: self.node.clone(),
                command: self.command.clone(),
                after: self.duration,
                tail: self.tail(),
            });
        }
        if self.code != 0 {
            return Err(ExecError::Failed {
                node: self.node.clone(),
                command: self.command.clone(),
                code: self.code,
                tail: self.tail(),
            });
        }
        Ok(self)
    }

    /// The last bytes of stderr and stdout, for error messages.
    pub fn tail(&self) -> String {
        let mut parts = Vec::new();
        for (label, s) in [("stderr", &self.stderr), ("stdout", &self.stdout)] {
            let t = s.trim();
            if !t.is_empty() {
                parts.push(format!("{label}: {}", tail_of(t, TAIL_BYTES)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        }
    }
}

/// The last `max` bytes of `s`, on a char boundary, with a marker when cut.
pub(crate) fn tail_of(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i64, stderr: &str) -> ExecOutput {
        ExecOutput {
            node: "n1".into(),
            command: "false".into(),
            code,
            stdout: String::new(),
            stderr: stderr.into(),
            duration: Duration::from_millis(5),
            timed_out: false,
        }
    }

    #[test]
    fn check_names_node_command_code_and_tail() {
        assert!(out(0, "").check().is_ok());
        let e = out(3, "boom\n").check().unwrap_err().to_string();
        assert_eq!(e, "node n1: `false` exited 3: stderr: boom");
    }

    #[test]
    fn shell_display_and_tail() {
        assert_eq!(ExecRequest::shell("echo hi").display(), "echo hi");
        assert_eq!(ExecRequest::argv(["ls", "-l"]).display(), "ls -l");
        assert_eq!(tail_of("héllo", 3), "...llo");
    }
}
