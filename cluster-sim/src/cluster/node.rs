//! What a node does: commands (`exec`, `cmd`, with env, workdir, user and deadline), files in
//! and out, its service log and state, lifecycle actions, and waiting until it is ready. Each
//! is an event in its cluster's timeline.

use std::time::{Duration, Instant, SystemTime};

use super::event::{Event, EventKind, ExecSummary};
use super::handle::{Cluster, Node};
use crate::backend::contract::Backend;
use crate::backend::types::{NodeAction, NodeState};
use crate::error::{BackendError, ExecError, NodeError, ProvisionError, TransferError};
use crate::exec::{ExecOutput, ExecRequest};
use crate::spec::NodeSpec;

/// A command being set up on a node: `node.cmd("...").env(..).timeout(..).run().await`.
#[must_use = "a command does nothing until `.run().await`"]
pub struct Cmd<'a> {
    node: &'a Node,
    req: ExecRequest,
}

impl Cmd<'_> {
    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.req.env.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.req.workdir = Some(dir.into());
        self
    }

    /// Runs as this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.req.user = Some(user.into());
        self
    }

    /// Sets the deadline; the command's process group is killed when it passes.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.req.timeout = d;
        self
    }

    /// Runs it and returns exit code and output (a non-zero exit is not an error here).
    pub async fn run(self) -> Result<ExecOutput, ExecError> {
        self.node.run(self.req).await
    }
}

impl Node {
    /// The node's name. On docker it is also the node's host name and its name on the
    /// cluster's network, so other nodes resolve it (`ping n2` works on the nodes); on ssh it is
    /// not a host name (hosts keep their own): reach nodes by [`Node::address`] there.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address other nodes reach it at (docker: its address on the cluster's network;
    /// ssh: the inventory host's `node_address`). Templates see it as `{{ n.address }}`. Unlike
    /// node names, addresses work on every backend.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// let n1 = cluster.node("n1")?;
    /// let n2 = cluster.node("n2")?;
    /// n1.exec(format!("ping -c1 -W2 {}", n2.address())).await?.check()?; // any backend
    /// if cluster.backend_kind() == "docker" {
    ///     n1.exec("getent hosts n2").await?.check()?; // names resolve on docker only
    /// }
    /// # Ok(()) }
    /// ```
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The node's spec.
    pub fn spec(&self) -> &NodeSpec {
        &self.spec
    }

    /// The cluster it belongs to.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn backend(&self) -> &dyn Backend {
        self.cluster.inner.backend.as_ref()
    }

    /// Runs a shell command (`sh -c`) with the default deadline.
    pub async fn exec(&self, cmd: impl Into<String>) -> Result<ExecOutput, ExecError> {
        self.run(ExecRequest::shell(cmd)).await
    }

    /// Sets up a shell command with options (env, workdir, user, timeout).
    pub fn cmd(&self, cmd: impl Into<String>) -> Cmd<'_> {
        Cmd {
            node: self,
            req: ExecRequest::shell(cmd),
        }
    }

    /// Sets up an argv command, run without a shell.
    pub fn cmd_argv<I, S>(&self, argv: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            node: self,
            req: ExecRequest::argv(argv),
        }
    }

    /// Runs a prepared request.
    pub async fn run(&self, mut req: ExecRequest) -> Result<ExecOutput, ExecError> {
        for (k, v) in &self.spec().env {
            req.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let capture = &self.cluster.inner.capture;
        req.capture.limit = req.capture.limit.or(capture.limit);
        if req.capture.spool_dir.is_none() {
            req.capture.spool_dir.clone_from(&capture.spool_dir);
        }
        let command = req.display();
        let tracked = self.cluster.track(&self.name, &command);
        let r = self
            .backend()
            .exec(&self.cluster.inner.name, &self.name, &req)
            .await;
        drop(tracked);
        let message = match &r {
            Ok(o) => format!(
                "`{}` -> exit {}{} in {}",
                command,
                o.code,
                if o.timed_out { " (timed out)" } else { "" },
                crate::duration::human(o.duration)
            ),
            Err(e) => format!("`{command}` -> error: {e}"),
        };
        self.cluster.emit_event(Event {
            at: SystemTime::now(),
            node: Some(self.name.clone()),
            kind: EventKind::Exec(ExecSummary::of(&command, &r)),
            message,
        });
        r.map_err(|source| ExecError::Backend {
            node: self.name.clone(),
            command,
            source,
        })
    }

    /// Reads a file from the node (binary-safe).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, TransferError> {
        let r = self
            .backend()
            .read_file(&self.cluster.inner.name, &self.name, path)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Transfer,
            match &r {
                Ok(d) => format!("read {path} ({} bytes)", d.len()),
                Err(e) => format!("read {path} failed: {e}"),
            },
        );
        r.map_err(|source| TransferError {
            node: self.name.clone(),
            op: "read",
            path: path.to_string(),
            source,
        })
    }

    /// Writes a file on the node (mode 0644, parents created).
    pub async fn write_file(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
    ) -> Result<(), TransferError> {
        self.write_file_mode(path, data, 0o644).await
    }

    /// Writes a file on the node with a mode.
    pub async fn write_file_mode(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<(), TransferError> {
        let data = data.as_ref();
        let r = self
            .backend()
            .write_file(&self.cluster.inner.name, &self.name, path, data, mode)
            .await;
        self.cluster.emit(
            Some(&self.name),
            EventKind::Transfer,
            match &r {
                Ok(()) => format!("wrote {path} ({} bytes)", data.len()),
                Err(e) => format!("write {path} failed: {e}"),
            },
        );
        r.map_err(|source| TransferError {
            node: self.name.clone(),
            op: "write",
            path: path.to_string(),
            source,
        })
    }

    /// The node's service log so far.
    pub async fn logs(&self) -> Result<String, BackendError> {
        let b = self
            .backend()
            .logs(&self.cluster.inner.name, &self.name)
            .await?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// The node's state.
    pub async fn state(&self) -> Result<NodeState, BackendError> {
        self.backend()
            .state(&self.cluster.inner.name, &self.name)
            .await
    }

    async fn act(&self, action: NodeAction) -> Result<(), NodeError> {
        let r = self
            .backend()
            .act(&self.cluster.inner.name, &self.name, action)
            .await;
        if r.is_ok() && matches!(action, NodeAction::Start | NodeAction::Restart) {
            self.cluster.inner.versions.started(&self.name);
        }
        self.cluster.emit(
            Some(&self.name),
            EventKind::Lifecycle,
            match &r {
                Ok(()) => action.to_string(),
                Err(e) => format!("{action} failed: {e}"),
            },
        );
        r.map_err(|e| NodeError {
            node: self.name.clone(),
            action: action.to_string(),
            source: Box::new(e),
        })
    }

    /// SIGKILLs the node; it stays down until [`Node::start`].
    pub async fn kill(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Kill).await
    }

    /// Stops the node gracefully.
    pub async fn stop(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Stop).await
    }

    /// Starts a stopped or killed node (same name, address and data) and waits until it is ready.
    pub async fn start(&self) -> Result<(), NodeError> {
        let from = self.ready_log_offset().await;
        self.act(NodeAction::Start).await?;
        self.ready_after(NodeAction::Start, from).await
    }

    /// Restarts the node (same name, address and data) and waits until it is ready.
    pub async fn restart(&self) -> Result<(), NodeError> {
        let from = self.ready_log_offset().await;
        self.act(NodeAction::Restart).await?;
        self.ready_after(NodeAction::Restart, from).await
    }

    /// Freezes every process of the node.
    pub async fn pause(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Pause).await
    }

    /// Thaws a paused node.
    pub async fn unpause(&self) -> Result<(), NodeError> {
        self.act(NodeAction::Unpause).await
    }

    /// Readiness after a start or restart (log lines from `log_from` on), then the node's
    /// `after_restart` hooks.
    async fn ready_after(&self, action: NodeAction, log_from: usize) -> Result<(), NodeError> {
        let fail = |e: Box<dyn std::error::Error + Send + Sync>| NodeError {
            node: self.name.clone(),
            action: action.to_string(),
            source: e,
        };
        self.wait_ready_from(log_from)
            .await
            .map_err(|e| fail(Box::new(e)))?;
        self.run_after_restart_hooks()
            .await
            .map_err(|e| fail(Box::new(e)))
    }

    /// Polls the spec's readiness check until it passes or its deadline ends. Fails at once
    /// if the node's service has exited.
    pub async fn wait_ready(&self) -> Result<(), ProvisionError> {
        self.wait_ready_from(0).await
    }

    /// [`Node::wait_ready`], counting only service log lines from byte `log_from` on.
    async fn wait_ready_from(&self, log_from: usize) -> Result<(), ProvisionError> {
        // A node with `faulty_dirs` is ready once its fault filesystems answer, whether or not
        // the spec has a readiness check of its own.
        let faulty = !self.spec().faulty_dirs.is_empty();
        let Some(ready) = self.cluster.inner.spec.ready.clone().or_else(|| {
            faulty.then(|| crate::spec::ReadySpec {
                command: None,
                log: None,
                timeout: crate::spec::DEFAULT_READY_TIMEOUT,
                interval: Duration::from_millis(250),
            })
        }) else {
            return Ok(());
        };
        let started = Instant::now();
        let deadline = started + ready.timeout;
        // Poll fast at first (most services are up within a second), then back off to the
        // spec's interval, and never beyond it: the pause doubles only up to `interval`, so a
        // slow service is polled every `interval` until the deadline (the spec rejects a zero
        // interval, and `max` keeps a library caller's zero from spinning).
        let interval = ready.interval.max(Duration::from_millis(1));
        let mut pause = Duration::from_millis(20).min(interval);
        let mut last;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.probe_ready(&ready, log_from, left).await {
                Ok(()) => {
                    self.cluster.emit(
                        Some(&self.name),
                        EventKind::Ready,
                        format!("ready after {}", crate::duration::human(started.elapsed())),
                    );
                    return Ok(());
                }
                Err(why) => last = why,
            }
            let exited = matches!(self.state().await, Ok(NodeState::Exited));
            if exited || Instant::now() >= deadline {
                let log = self.logs().await.unwrap_or_default();
                let log = crate::exec::tail_of(log.trim(), 1500);
                let why = if exited {
                    "; the node's service exited"
                } else {
                    ""
                };
                return Err(ProvisionError::NotReady {
                    node: self.name.clone(),
                    command: ready.describe(),
                    timeout: if exited {
                        started.elapsed()
                    } else {
                        ready.timeout
                    },
                    last: format!("{last}{why}; log tail: {log}"),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(pause.min(left)).await;
            pause = pause.saturating_mul(2).min(interval);
        }
    }
}
