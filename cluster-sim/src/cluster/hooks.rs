//! Running the spec's `[[hook]]` commands: `after_up` once every node is ready (a failure fails
//! provisioning, which removes the cluster), `before_down` first at teardown (a failure is
//! reported and teardown goes on), `after_restart` on a node whose restart or start is ready.
//! Each hook's output goes to the cluster's event sink (a test's `test.log`).

use std::time::SystemTime;

use super::event::{Event, EventKind};
use super::handle::{Cluster, Node};
use crate::error::HookError;
use crate::exec::ExecOutput;
use crate::spec::{HookSpec, HookWhen};

/// Bytes of a hook's output quoted in its error.
const QUOTED: usize = 2000;

/// Stdout then stderr, the end of each, lossily decoded.
fn output_of(o: &ExecOutput) -> String {
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr);
    if !err.is_empty() {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(&err);
    }
    crate::exec::tail_of(&s, QUOTED)
}

impl Cluster {
    /// The hooks of the spec that run at `when`.
    fn hooks_at(&self, when: HookWhen) -> Vec<HookSpec> {
        self.inner
            .spec
            .hooks
            .iter()
            .filter(|h| h.when == when)
            .cloned()
            .collect()
    }

    /// Runs the hooks of `when`, in spec order, each on its nodes at once. Stops at the first
    /// hook that failed on any of its nodes and returns that failure.
    pub(crate) async fn run_hooks(&self, when: HookWhen) -> Result<(), HookError> {
        for hook in self.hooks_at(when) {
            let runs = hook
                .nodes
                .iter()
                .filter_map(|n| self.node(n).ok())
                .map(|n| {
                    let command = hook.command.clone();
                    async move { n.run_hook(when, &command).await }
                });
            let results = futures::future::join_all(runs).await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// The `before_down` hooks: a failure is reported in the events and teardown goes on.
    pub(crate) async fn run_before_down_hooks(&self) {
        if let Err(e) = self.run_hooks(HookWhen::BeforeDown).await {
            tracing::warn!(cluster = %self.inner.name, "{e}");
            self.emit(
                None,
                EventKind::Teardown,
                format!("{e}; tearing down all the same"),
            );
        }
    }
}

impl Node {
    /// Runs one hook command on this node, its output sent to the event sink.
    pub(crate) async fn run_hook(&self, when: HookWhen, command: &str) -> Result<(), HookError> {
        let kind = match when {
            HookWhen::AfterUp => EventKind::Provision,
            HookWhen::BeforeDown => EventKind::Teardown,
            HookWhen::AfterRestart => EventKind::Lifecycle,
        };
        let r = self.exec(command).await;
        let (message, result) = match r {
            Ok(o) => {
                let output = output_of(&o);
                let shown = if output.trim().is_empty() {
                    String::new()
                } else {
                    let lines: Vec<String> = output
                        .trim_end()
                        .lines()
                        .map(|l| format!("  | {l}"))
                        .collect();
                    format!(":\n{}", lines.join("\n"))
                };
                let code = if o.timed_out { -1 } else { o.code };
                let message = format!("{when} hook `{command}` -> exit {code}{shown}");
                let result = if o.success() {
                    Ok(())
                } else {
                    Err(HookError::Failed {
                        when,
                        node: self.name.clone(),
                        command: command.to_string(),
                        code,
                        output,
                    })
                };
                (message, result)
            }
            Err(source) => (
                format!("{when} hook `{command}` could not run: {source}"),
                Err(HookError::Exec {
                    when,
                    node: self.name.clone(),
                    source,
                }),
            ),
        };
        self.cluster.emit_event(Event {
            at: SystemTime::now(),
            node: Some(self.name.clone()),
            kind,
            message,
        });
        result
    }

    /// The `after_restart` hooks that choose this node.
    pub(crate) async fn run_after_restart_hooks(&self) -> Result<(), HookError> {
        for hook in self.cluster.hooks_at(HookWhen::AfterRestart) {
            if hook.nodes.contains(&self.name) {
                self.run_hook(HookWhen::AfterRestart, &hook.command).await?;
            }
        }
        Ok(())
    }
}
