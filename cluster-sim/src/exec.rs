//! Commands run on nodes: the request (`ExecRequest`) and its result (`ExecOutput`).
//!
//! Output is bytes, exactly as the command wrote them; text views are asked for by name
//! ([`ExecOutput::stdout_str`] strict, [`ExecOutput::stdout_lossy`] and [`ExecOutput::out`]
//! lossy). Each stream keeps a bounded head and tail in memory (see [`OutputCapture`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::capture::StreamCapture;
pub use crate::capture::{OutputCapture, Truncated, DEFAULT_OUTPUT_LIMIT};
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
    /// How much output is kept in memory, and where the rest goes.
    pub capture: OutputCapture,
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
            capture: OutputCapture::default(),
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
    /// Standard output, byte for byte (only its head and tail when `stdout_truncated`).
    pub stdout: Vec<u8>,
    /// Standard error, byte for byte (only its head and tail when `stderr_truncated`).
    pub stderr: Vec<u8>,
    /// Set when stdout outgrew the in-memory limit: its size and where the whole of it is.
    pub stdout_truncated: Option<Truncated>,
    /// Set when stderr outgrew the in-memory limit: its size and where the whole of it is.
    pub stderr_truncated: Option<Truncated>,
    /// How long it took.
    pub duration: Duration,
    /// Whether the deadline passed and the command was killed.
    pub timed_out: bool,
}

impl ExecOutput {
    /// The two stream captures a backend fills for `req` on `node`.
    pub(crate) fn captures(node: &str, req: &ExecRequest) -> (StreamCapture, StreamCapture) {
        (
            StreamCapture::new(node, "stdout", &req.capture),
            StreamCapture::new(node, "stderr", &req.capture),
        )
    }

    /// Builds an output from the captured streams, for backends.
    pub(crate) fn from_captured(
        node: &str,
        req: &ExecRequest,
        code: i64,
        (stdout, stderr): (StreamCapture, StreamCapture),
        duration: Duration,
        timed_out: bool,
    ) -> Self {
        let (stdout, stdout_truncated) = stdout.finish();
        let (stderr, stderr_truncated) = stderr.finish();
        Self {
            node: node.to_string(),
            command: req.display(),
            code,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            duration,
            timed_out,
        }
    }

    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }

    /// Standard output as text, trimmed: the convenient view for tests that compare text.
    ///
    /// Lossy: bytes that are not UTF-8 become U+FFFD, which never equals expected text, so a
    /// comparison fails visibly rather than an error hiding the output. Use
    /// [`stdout_str`](Self::stdout_str) to insist on UTF-8, or [`stdout`](Self::stdout) for
    /// the bytes.
    pub fn out(&self) -> Cow<'_, str> {
        trimmed(self.stdout_lossy())
    }

    /// Standard error as text, trimmed; lossy like [`out`](Self::out).
    pub fn err(&self) -> Cow<'_, str> {
        trimmed(self.stderr_lossy())
    }

    /// Standard output as text, invalid UTF-8 replaced by U+FFFD.
    pub fn stdout_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// Standard error as text, invalid UTF-8 replaced by U+FFFD.
    pub fn stderr_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// Standard output as text; an error naming node, command and the first bad byte when it
    /// is not UTF-8.
    pub fn stdout_str(&self) -> Result<&str, ExecError> {
        self.strict("stdout", &self.stdout)
    }

    /// Standard error as text; an error naming node, command and the first bad byte when it
    /// is not UTF-8.
    pub fn stderr_str(&self) -> Result<&str, ExecError> {
        self.strict("stderr", &self.stderr)
    }

    fn strict<'a>(&self, stream: &'static str, bytes: &'a [u8]) -> Result<&'a str, ExecError> {
        std::str::from_utf8(bytes).map_err(|e| ExecError::NotUtf8 {
            node: self.node.clone(),
            command: self.command.clone(),
            stream,
            offset: e.valid_up_to(),
        })
    }

    /// Whether both streams are whole in memory (neither outgrew the limit).
    pub fn complete(&self) -> bool {
        self.stdout_truncated.is_none() && self.stderr_truncated.is_none()
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

    /// The last bytes of stderr and stdout (as lossy text), for error messages, with a note
    /// for a stream that outgrew the in-memory limit.
    pub fn tail(&self) -> String {
        let mut parts = Vec::new();
        for (label, bytes, cut) in [
            ("stderr", &self.stderr, &self.stderr_truncated),
            ("stdout", &self.stdout, &self.stdout_truncated),
        ] {
            // Only the end is quoted: decode just that (plus a few bytes for a split char).
            let end = &bytes[bytes.len().saturating_sub(TAIL_BYTES + 4)..];
            let text = String::from_utf8_lossy(end);
            let t = text.trim();
            if !t.is_empty() {
                let cut = bytes.len() > TAIL_BYTES || cut.is_some();
                let t = tail_of(t, TAIL_BYTES);
                let dots = if cut && !t.starts_with("...") {
                    "..."
                } else {
                    ""
                };
                parts.push(format!("{label}: {dots}{t}"));
            }
            if let Some(c) = cut {
                parts.push(format!("({})", c.note(label)));
            }
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(": {}", parts.join("; "))
        }
    }
}

fn trimmed(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
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
            stdout: Vec::new(),
            stderr: stderr.into(),
            stdout_truncated: None,
            stderr_truncated: None,
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
    fn text_views_are_lossy_or_strict_by_name() {
        let mut o = out(0, "");
        o.stdout = b"  ok\xff \n".to_vec();
        assert_eq!(o.out(), "ok\u{fffd}");
        let e = o.stdout_str().unwrap_err().to_string();
        assert_eq!(
            e,
            "node n1: `false`: stdout is not UTF-8 (first bad byte at offset 4)"
        );
        o.stdout = b" fine\n".to_vec();
        assert_eq!(
            (o.stdout_str().unwrap(), o.out()),
            (" fine\n", Cow::Borrowed("fine"))
        );
    }

    #[test]
    fn tail_notes_a_truncated_stream() {
        let mut o = out(1, "");
        o.stdout = b"headtail".to_vec();
        o.stdout_truncated = Some(Truncated {
            total_bytes: 1000,
            head_len: 4,
            tail_len: 4,
            spool: Some("/a/0001.n1.stdout".into()),
            spool_error: None,
        });
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("stdout: ...headtail"), "{e}");
        assert!(
            e.contains("stdout was 1000 bytes") && e.contains("/a/0001.n1.stdout"),
            "{e}"
        );
    }

    #[test]
    fn shell_display_and_tail() {
        assert_eq!(ExecRequest::shell("echo hi").display(), "echo hi");
        assert_eq!(ExecRequest::argv(["ls", "-l"]).display(), "ls -l");
        assert_eq!(tail_of("héllo", 3), "...llo");
    }
}
