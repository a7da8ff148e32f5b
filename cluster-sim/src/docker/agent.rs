//! Exec agents: a long-lived `sh` loop inside a node, started with one `docker exec`, that runs
//! later commands without the engine starting a new exec (runc) for each. An exec through the
//! engine costs tens of milliseconds; a command through a warm agent costs a fork or two.
//!
//! Protocol: one request per line, the base64 of a generated shell script; one reply per
//! request: `CSA <exit code> <stdout bytes> <stderr bytes>\n`, then stdout, then stderr.

use std::pin::Pin;

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// The agent's main loop. Output goes to files, so a command's background children cannot
/// hold the reply open, and stdout and stderr stay apart.
const AGENT_SCRIPT: &str = r#"d=$(mktemp -d /tmp/.cluster-sim-agent.XXXXXX) || exit 1
trap 'rm -rf "$d"' EXIT
while IFS= read -r req; do
  printf '%s' "$req" | base64 -d > "$d/cmd" || { printf 'CSA 127 0 0\n'; continue; }
  sh "$d/cmd" > "$d/out" 2> "$d/err" < /dev/null
  code=$?
  printf 'CSA %s %s %s\n' "$code" "$(wc -c < "$d/out")" "$(wc -c < "$d/err")"
  cat "$d/out" "$d/err"
done
"#;

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;

/// One reply: exit code, stdout, stderr.
pub(crate) type Reply = (i64, Vec<u8>, Vec<u8>);

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

/// Quotes a string for `sh`.
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
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

    /// Reads one reply: exit code, stdout, stderr.
    pub(crate) async fn recv(&mut self) -> Result<Reply, AgentError> {
        loop {
            if let Some(reply) = self.parse()? {
                return Ok(reply);
            }
            match self.output.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk.into_bytes()),
                Some(Err(e)) => return Err(AgentError::Lost(e.to_string())),
                None => return Err(AgentError::Lost("the exec agent exited".into())),
            }
        }
    }

    fn parse(&mut self) -> Result<Option<Reply>, AgentError> {
        let Some(nl) = self.buf.iter().position(|b| *b == b'\n') else {
            return Ok(None);
        };
        let header = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
        let mut f = header.split_whitespace();
        let bad = || AgentError::Lost(format!("unexpected reply from the exec agent: {header:?}"));
        if f.next() != Some("CSA") {
            return Err(bad());
        }
        let code: i64 = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let out: usize = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let err: usize = f.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let start = nl + 1;
        if self.buf.len() < start + out + err {
            return Ok(None);
        }
        let stdout = self.buf[start..start + out].to_vec();
        let stderr = self.buf[start + out..start + out + err].to_vec();
        self.buf.drain(..start + out + err);
        Ok(Some((code, stdout, stderr)))
    }
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
            "export X='a b'\\''c'\ncd '/tmp/it'\\''s' || exit 126\nexec 'sh' '-c' 'echo '\\''hi'\\'' $X'\n"
        );
    }
}
