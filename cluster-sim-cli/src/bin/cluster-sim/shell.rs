//! `cluster-sim shell NAME NODE`: an interactive shell on a node through the backend's shell
//! capability. With a terminal, this side puts it in raw mode (restored however the shell
//! ends) and passes its size and every resize (SIGWINCH) on; with standard input from a pipe,
//! the shell reads its commands from it. Exits with the shell's exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use cluster_sim::backend::ShellTerm;
use cluster_sim::Backend;
use rustix::termios::{tcgetattr, tcgetwinsize, tcsetattr, OptionalActions, Termios};

/// Puts the terminal on standard input in raw mode until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Result<Self> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&stdin, OptionalActions::Now, &raw)
            .context("cannot put the terminal in raw mode")?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// The terminal's size, `(columns, rows)`.
fn size() -> Option<(u16, u16)> {
    let ws = tcgetwinsize(std::io::stdout())
        .or_else(|_| tcgetwinsize(std::io::stdin()))
        .ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

pub(crate) async fn shell(backend: &dyn Backend, name: &str, node: &str) -> Result<ExitCode> {
    let shells = backend.shell().with_context(|| {
        format!(
            "shell needs an interactive session on the node, which the {} backend can't give",
            backend.kind()
        )
    })?;
    let tty = std::io::stdin().is_terminal();
    let (tx, resizes) = tokio::sync::mpsc::unbounded_channel();
    let term = ShellTerm {
        tty,
        size: if tty { size() } else { None },
        resizes,
    };
    // Window changes, passed on while the shell runs (the task ends with the channel).
    let watcher = if tty {
        let mut winch =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
                .context("cannot watch the terminal's size")?;
        Some(tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some(s) = size() {
                    if tx.send(s).is_err() {
                        break;
                    }
                }
            }
        }))
    } else {
        drop(tx);
        None
    };
    let raw = if tty { Some(RawMode::enter()?) } else { None };
    let r = shells.shell(name, node, term).await;
    drop(raw);
    if let Some(w) = watcher {
        w.abort();
    }
    let code = r.with_context(|| format!("node {node} of {name}: shell"))?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
