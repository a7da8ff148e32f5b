//! Exec agents: a long-lived `sh` loop inside a node, started with one `docker exec`, that runs
//! later commands without the engine starting a new exec (runc) for each. An exec through the
//! engine costs tens of milliseconds; a command through a warm agent costs a fork or two.
//!
//! Protocol: one request per line, the base64 of a generated shell script; one reply per
//! request: `CSA <exit code> <stdout bytes> <stderr bytes>\n`, then exactly that many bytes of
//! stdout, then of stderr. The reply is read as a stream into bounded captures, never whole.
//!
//! Each command's output is its own: a request writes to files named for it alone, and the
//! agent sends exactly the sizes it announced (and unlinks the files soon after). A background
//! child the command left behind keeps writing into its own file, never into a later command's
//! output nor into the reply stream (the agent's stdout is never a command's stdout). Where a
//! child shrank the file meanwhile (say `echo x > /dev/stdout`), the reply is padded with NULs
//! to the announced size so the protocol never loses its place.

use std::pin::Pin;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::capture::Sink;
use crate::shell::quote;

/// The agent's main loop. `[ -s ]` is a builtin, so an empty stream costs no fork. Finished
/// requests' files are unlinked in one `rm` every 64 requests, or at once after a big output
/// (nothing reads them again; a background child may still write into its own).
const AGENT_SCRIPT: &str = r#"d=$(mktemp -d /tmp/.cluster-sim-agent.XXXXXX) || exit 1
trap 'rm -rf "$d"' EXIT
n=0
send() { if [ "$2" -gt 0 ]; then cat "$1" /dev/zero 2>/dev/null | head -c "$2"; fi; }
while IFS= read -r req; do
  n=$((n+1)); o="$d/$n.o"; e="$d/$n.e"
  if ! printf '%s' "$req" | base64 -d > "$d/cmd" 2>/dev/null; then printf 'CSA 127 0 0\n'; continue; fi
  sh "$d/cmd" > "$o" 2> "$e" < /dev/null
  code=$?
  so=0; se=0
  if [ -s "$o" ]; then so=$(wc -c < "$o"); fi
  if [ -s "$e" ]; then se=$(wc -c < "$e"); fi
  printf 'CSA %s %s %s\n' "$code" $so $se
  send "$o" $so; send "$e" $se
  if [ $((so + se)) -gt 65536 ] || [ $((n % 64)) -eq 0 ]; then rm -f "$d"/[0-9]*; fi
done
"#;

/// How long the reply may stall once its header arrived (the command is over by then: only
/// the transfer of its output remains).
const BODY_STALL_LIMIT: Duration = Duration::from_secs(60);

/// The longest header line accepted before the reply counts as garbled.
const MAX_HEADER: usize = 256;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;

/// A reply's header: exit code, then how many bytes of stdout and of stderr follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub code: i64,
    out: u64,
    err: u64,
}

/// One agent process in one container.
pub(crate) struct Agent {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    output: Output,
    buf: Vec<u8>,
}

/// Why an agent could not answer.
#[derive(Debug)]
pub(crate) enum AgentError {
    /// Nothing reached the agent: the caller may run the command another way.
    NotSent(String),
    /// The request went out but no full reply came back (the node stopped, say).
    Lost(String),
}

/// The script an agent runs for one command.
pub(crate) fn request_script(
    argv: &[String],
    env: &[(String, String)],
    workdir: Option<&str>,
) -> String {
    let mut s = String::new();
    for (k, v) in env {
        s.push_str(&format!("export {k}={}\n", quote(v)));
    }
    if let Some(w) = workdir {
        s.push_str(&format!("cd {} || exit 126\n", quote(w)));
    }
    s.push_str("exec");
    for a in argv {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s.push('\n');
    s
}

impl Agent {
    /// Starts an agent in `container`.
    pub(crate) async fn spawn(docker: &Docker, container: &str) -> Result<Agent, DockerError> {
        let opts = CreateExecOptions {
            cmd: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                AGENT_SCRIPT.to_string(),
            ]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = docker.create_exec(container, opts).await?;
        match docker.start_exec(&created.id, None).await? {
            StartExecResults::Attached { output, input } => Ok(Agent {
                input,
                output,
                buf: Vec::new(),
            }),
            StartExecResults::Detached => Err(DockerError::DockerStreamError {
                error: "exec agent started detached".into(),
            }),
        }
    }

    /// Sends one request.
    pub(crate) async fn send(&mut self, script: &str) -> Result<(), AgentError> {
        use base64::Engine as _;
        let mut line = base64::engine::general_purpose::STANDARD.encode(script);
        line.push('\n');
        self.input
            .write_all(line.as_bytes())
            .await
            .map_err(|e| AgentError::NotSent(e.to_string()))?;
        self.input
            .flush()
            .await
            .map_err(|e| AgentError::NotSent(e.to_string()))
    }

    /// Reads the next chunk of the agent's stdout into `buf`. The agent's stderr (its own
    /// complaints, never a command's output) is logged, not parsed.
    async fn fill(&mut self) -> Result<(), AgentError> {
        loop {
            match self.output.next().await {
                Some(Ok(LogOutput::StdErr { message })) => {
                    tracing::debug!("exec agent: {}", String::from_utf8_lossy(&message).trim());
                }
                Some(Ok(chunk)) => {
                    self.buf.extend_from_slice(&chunk.into_bytes());
                    return Ok(());
                }
                Some(Err(e)) => return Err(AgentError::Lost(e.to_string())),
                None => return Err(AgentError::Lost("the exec agent exited".into())),
            }
        }
    }

    /// Waits for a reply's header (the command has ended once it arrives). Cancel-safe: the
    /// header is consumed only once it is whole.
    pub(crate) async fn recv_header(&mut self) -> Result<Header, AgentError> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let header = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
                self.buf.drain(..=nl);
                return parse_header(&header);
            }
            if self.buf.len() > MAX_HEADER {
                let seen = String::from_utf8_lossy(&self.buf[..MAX_HEADER]).into_owned();
                return Err(AgentError::Lost(format!(
                    "unexpected reply from the exec agent: {seen:?}"
                )));
            }
            self.fill().await?;
        }
    }

    /// Streams the reply's stdout and stderr into `out` and `err`, exactly the announced sizes.
    pub(crate) async fn recv_body(
        &mut self,
        header: Header,
        out: &mut dyn Sink,
        err: &mut dyn Sink,
    ) -> Result<(), AgentError> {
        self.recv_exact(header.out, out).await?;
        self.recv_exact(header.err, err).await
    }

    async fn recv_exact(&mut self, mut left: u64, sink: &mut dyn Sink) -> Result<(), AgentError> {
        {
            while left > 0 {
                if self.buf.is_empty() {
                    tokio::time::timeout(BODY_STALL_LIMIT, self.fill())
                        .await
                        .map_err(|_| {
                            AgentError::Lost(format!(
                                "the exec agent stalled with {left} bytes of output still to send"
                            ))
                        })??;
                }
                let n = self
                    .buf
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                sink.push(&self.buf[..n]);
                self.buf.drain(..n);
                left -= n as u64;
            }
        }
        Ok(())
    }
}

fn parse_header(header: &str) -> Result<Header, AgentError> {
    let mut f = header.split_whitespace();
    let bad = || AgentError::Lost(format!("unexpected reply from the exec agent: {header:?}"));
    if f.next() != Some("CSA") {
        return Err(bad());
    }
    let code: i64 = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let out: u64 = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let err: u64 = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    Ok(Header { code, out, err })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_quote_everything() {
        let s = request_script(
            &["sh".into(), "-c".into(), "echo 'hi' $X".into()],
            &[("X".into(), "a b'c".into())],
            Some("/tmp/it's"),
        );
        assert_eq!(
            s,
            "export X='a b'\\''c'\ncd '/tmp/it'\\''s' || exit 126\nexec sh -c 'echo '\\''hi'\\'' $X'\n"
        );
    }
}
