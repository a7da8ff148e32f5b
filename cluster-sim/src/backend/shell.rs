//! The interactive-shell capability (`cluster-sim shell NAME NODE`): a shell on a node wired to
//! this process's standard input and output, with a TTY on the node when this process has one
//! (and resized with it). Optional, like faults and cleanup: a backend that can't offer it
//! (memory) returns `None` from `Backend::shell`.

use async_trait::async_trait;

use crate::error::BackendError;

/// The terminal a shell is wired to: this process's.
#[derive(Debug)]
pub struct ShellTerm {
    /// Whether standard input is a terminal: the node then gets a TTY (the caller has put the
    /// local terminal in raw mode). Without one, the shell reads commands from standard input
    /// until it ends.
    pub tty: bool,
    /// The terminal's size at start, `(columns, rows)`.
    pub size: Option<(u16, u16)>,
    /// Every later size, `(columns, rows)`, as the local terminal is resized.
    pub resizes: tokio::sync::mpsc::UnboundedReceiver<(u16, u16)>,
}

/// Interactive shells on nodes.
#[async_trait]
pub trait ShellBackend: Send + Sync {
    /// Runs the user's shell on `node` of `cluster`, in the node's working directory with its
    /// environment, wired to this process's standard input and output, and returns its exit
    /// code once it ends.
    async fn shell(&self, cluster: &str, node: &str, term: ShellTerm) -> Result<i64, BackendError>;
}
