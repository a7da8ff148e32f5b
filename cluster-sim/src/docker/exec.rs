//! Commands on docker nodes: through a warm in-node agent (see `agent.rs`) where possible, else a
//! fresh engine exec; a deadline kills every process the command started, found by a marker
//! variable they all inherit.

use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;

use super::agent::{request_script, Agent, AgentError};
use super::engine::{classify, engine_call, DockerBackend, EngineErrorKind};
use crate::capture::Sink;
use crate::error::BackendError;
use crate::exec::{ExecOutput, ExecRequest};

/// Environment variable that marks every process of one exec.
const EXEC_MARKER_VAR: &str = "CLUSTER_SIM_EXEC";

fn exec_marker() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:016x}", h.finish())
}

impl DockerBackend {
    /// Runs a command: through a warm agent where it can, else as a fresh engine exec.
    pub(super) async fn run(
        &self,
        cluster: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, BackendError> {
        // Found by label, then named by ID: a container that only has the right name is not ours.
        let name = self.known(cluster, node).await?;
        // Commands go through a warm agent in the node where they can (no user switch, env
        // names the shell accepts); anything else, or an agent that can't be reached, takes a
        // fresh exec from the engine.
        let plain_env = req.env.keys().all(|k| {
            !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if req.user.is_none() && plain_env {
            match self.exec_by_agent(&name, node, req).await {
                Ok(out) => return Ok(out),
                Err(AgentError::NotSent(why)) => {
                    tracing::debug!(container = %name, "exec agent unavailable: {why}");
                }
                Err(AgentError::Lost(why)) => {
                    return Err(BackendError::engine(
                        "exec through the node's agent",
                        std::io::Error::other(format!(
                            "lost the command's result ({why}); did the node stop?"
                        )),
                    ))
                }
            }
        }
        // Every process the command starts inherits this marker, so a deadline can kill them
        // all (even daemonized children) without wrapping the command in another program.
        let marker = exec_marker();
        let mut env: Vec<String> = req.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("{EXEC_MARKER_VAR}={marker}"));
        let opts = CreateExecOptions {
            cmd: Some(req.argv.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            env: Some(env),
            working_dir: req.workdir.clone(),
            user: req.user.clone(),
            ..Default::default()
        };
        let started = Instant::now();
        let created = match self.docker.create_exec(&name, opts).await.map_err(classify) {
            Ok(c) => c,
            Err(e) => {
                return Err(match e.kind {
                    EngineErrorKind::NoSuchContainer | EngineErrorKind::NotFound => {
                        self.gone(cluster, node).await
                    }
                    EngineErrorKind::Conflict => BackendError::NotRunning {
                        node: node.to_string(),
                        why: e.message,
                    },
                    _ => e.into_backend("exec"),
                })
            }
        };
        let (mut stdout, mut stderr) = ExecOutput::captures(node, req);
        let collect = async {
            match self.docker.start_exec(&created.id, None).await? {
                StartExecResults::Attached { mut output, .. } => {
                    while let Some(chunk) = output.next().await {
                        match chunk? {
                            LogOutput::StdErr { message } => stderr.push(&message),
                            other => stdout.push(&other.into_bytes()),
                        }
                    }
                }
                StartExecResults::Detached => {}
            }
            Ok::<(), DockerError>(())
        };
        let finished = tokio::time::timeout(req.timeout, collect).await;
        let duration = started.elapsed();
        let (code, timed_out) = match finished {
            Err(_) => {
                self.kill_marked(&name, &marker).await?;
                (137, true)
            }
            Ok(r) => {
                r.map_err(engine_call("exec"))?;
                let inspect = self
                    .docker
                    .inspect_exec(&created.id)
                    .await
                    .map_err(engine_call("inspect exec"))?;
                (inspect.exit_code.unwrap_or(-1), false)
            }
        };
        Ok(ExecOutput::from_captured(
            node,
            req,
            code,
            (stdout, stderr),
            duration,
            timed_out,
        ))
    }

    fn take_agent(&self, container: &str) -> Option<Agent> {
        self.agents
            .lock()
            .ok()?
            .get_mut(container)
            .and_then(Vec::pop)
    }

    fn put_agent(&self, container: &str, agent: Agent) {
        if let Ok(mut map) = self.agents.lock() {
            let idle = map.entry(container.to_string()).or_default();
            if idle.len() < 4 {
                idle.push(agent);
            }
        }
    }

    /// Forgets the agents of containers whose processes are gone or about to go.
    pub(super) fn drop_agents(&self, prefix: &str) {
        if let Ok(mut map) = self.agents.lock() {
            map.retain(|k, _| !k.starts_with(prefix));
        }
    }

    async fn exec_by_agent(
        &self,
        container: &str,
        node: &str,
        req: &ExecRequest,
    ) -> Result<ExecOutput, AgentError> {
        let marker = exec_marker();
        let mut env: Vec<(String, String)> = req
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.push((EXEC_MARKER_VAR.to_string(), marker.clone()));
        let script = request_script(&req.argv, &env, req.workdir.as_deref());
        // A pooled agent may have died with a restart of its node: then try one fresh agent.
        let mut agent = None;
        if let Some(mut a) = self.take_agent(container) {
            if a.send(&script).await.is_ok() {
                agent = Some(a);
            }
        }
        let mut agent = match agent {
            Some(a) => a,
            None => {
                let mut a = Agent::spawn(&self.docker, container)
                    .await
                    .map_err(|e| AgentError::NotSent(e.to_string()))?;
                a.send(&script).await?;
                a
            }
        };
        let started = Instant::now();
        let (header, timed_out) = match tokio::time::timeout(req.timeout, agent.recv_header()).await
        {
            Ok(header) => (header?, false),
            Err(_) => {
                self.kill_marked(container, &marker)
                    .await
                    .map_err(|e| AgentError::Lost(e.to_string()))?;
                // The agent answers once the killed command is gone, with its output so far.
                match tokio::time::timeout(Duration::from_secs(5), agent.recv_header()).await {
                    Ok(Ok(header)) => (header, true),
                    _ => {
                        let captures = ExecOutput::captures(node, req);
                        return Ok(ExecOutput::from_captured(
                            node,
                            req,
                            137,
                            captures,
                            started.elapsed(),
                            true,
                        ));
                    }
                }
            }
        };
        let (mut stdout, mut stderr) = ExecOutput::captures(node, req);
        agent.recv_body(header, &mut stdout, &mut stderr).await?;
        let duration = started.elapsed();
        self.put_agent(container, agent);
        let code = if timed_out { 137 } else { header.code };
        Ok(ExecOutput::from_captured(
            node,
            req,
            code,
            (stdout, stderr),
            duration,
            timed_out,
        ))
    }

    /// SIGKILLs every process in the container that carries an exec's marker.
    pub(super) async fn kill_marked(
        &self,
        container: &str,
        marker: &str,
    ) -> Result<(), BackendError> {
        let script = format!(
            "for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -qx '{EXEC_MARKER_VAR}={marker}' && kill -9 ${{p#/proc/}} 2>/dev/null; done; true"
        );
        let opts = CreateExecOptions {
            cmd: Some(vec!["sh".to_string(), "-c".to_string(), script]),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = self
            .docker
            .create_exec(container, opts)
            .await
            .map_err(engine_call("kill at the deadline"))?;
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(engine_call("kill at the deadline"))?
        {
            while output.next().await.is_some() {}
        }
        Ok(())
    }
}
