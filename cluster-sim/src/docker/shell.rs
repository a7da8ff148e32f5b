//! Interactive shells on docker nodes through the engine API (not the docker CLI, which this
//! crate never needs): an exec with a TTY when the caller has a terminal, resized as the
//! terminal is, and this process's standard input and output copied to and from it. Without a
//! terminal the exec reads standard input until it ends (its stdin is then closed) and keeps
//! stdout and stderr apart.

use std::io::Write;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::engine::{classify, engine_call, DockerBackend, DOCKER_WORKDIR};
use crate::backend::shell::{ShellBackend, ShellTerm};
use crate::error::BackendError;

/// The node's login shell: bash where the image has it, else sh.
const SHELL: &str = "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi";

/// Reads this process's standard input on a thread of its own, chunk by chunk: a thread
/// blocked in `read` does not keep the process alive once the shell has ended, where a
/// runtime's blocking task would.
fn stdin_chunks() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::Read;
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

#[async_trait]
impl ShellBackend for DockerBackend {
    async fn shell(
        &self,
        cluster: &str,
        node: &str,
        mut term: ShellTerm,
    ) -> Result<i64, BackendError> {
        let id = self.known(cluster, node).await?;
        let mut env = Vec::new();
        if term.tty {
            env.push(format!(
                "TERM={}",
                std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
            ));
        }
        let opts = CreateExecOptions {
            cmd: Some(vec!["sh".to_string(), "-c".to_string(), SHELL.to_string()]),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(term.tty),
            env: Some(env),
            working_dir: Some(DOCKER_WORKDIR.to_string()),
            ..Default::default()
        };
        let exec = self
            .docker
            .create_exec(&id, opts)
            .await
            .map_err(engine_call(format!("node {node}: shell")))?
            .id;
        let started = self
            .docker
            .start_exec(
                &exec,
                Some(StartExecOptions {
                    detach: false,
                    tty: term.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(engine_call(format!("node {node}: shell")))?;
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(BackendError::refused(
                format!("shell on node {node}"),
                "the engine started the exec detached",
            ));
        };
        let resize = |(w, h): (u16, u16)| {
            self.docker.resize_exec(
                &exec,
                ResizeExecOptions {
                    height: h,
                    width: w,
                },
            )
        };
        if let Some(size) = term.size {
            // A resize before the process has its TTY can fail; the next one will do.
            let _ = resize(size).await;
        }
        let mut stdin = stdin_chunks();
        let mut stdin_open = true;
        loop {
            tokio::select! {
                chunk = output.next() => match chunk {
                    None => break,
                    Some(Err(e)) => return Err(classify(e).into_backend(format!("node {node}: shell"))),
                    Some(Ok(LogOutput::StdErr { message })) => {
                        let mut err = std::io::stderr().lock();
                        err.write_all(&message).and_then(|()| err.flush()).map_err(|e| {
                            BackendError::Local { what: "write to stderr".into(), source: e }
                        })?;
                    }
                    Some(Ok(o)) => {
                        let mut out = std::io::stdout().lock();
                        out.write_all(&o.into_bytes()).and_then(|()| out.flush()).map_err(|e| {
                            BackendError::Local { what: "write to stdout".into(), source: e }
                        })?;
                    }
                },
                data = stdin.recv(), if stdin_open => match data {
                    Some(d) => {
                        // The shell may have ended already; its output stream says so next.
                        let _ = input.write_all(&d).await;
                        let _ = input.flush().await;
                    }
                    None => {
                        stdin_open = false;
                        // End of input: the shell sees EOF (a TTY gets ^D's effect from the
                        // shell itself reading it).
                        if !term.tty {
                            let _ = input.shutdown().await;
                        }
                    }
                },
                Some(size) = term.resizes.recv() => {
                    let _ = resize(size).await;
                }
            }
        }
        let inspected = self
            .docker
            .inspect_exec(&exec)
            .await
            .map_err(engine_call("inspect exec"))?;
        Ok(inspected.exit_code.unwrap_or(-1))
    }
}
