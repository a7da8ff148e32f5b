//! Error families. Each message reads as one line saying what failed and where (file and line,
//! cluster, node, command, host), so the CLI and the harness can print it as it is.

use std::time::Duration;

use crate::located::{key_prefix, Located};

/// A spec file that can't be read or doesn't describe a valid cluster.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{file}: cannot read spec: {source}")]
    Read {
        /// Spec path.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid spec.
    #[error("{file}:{line}:{column}: {}{message}", key_prefix(.key))]
    Invalid {
        /// Spec path.
        file: String,
        /// One-based line.
        line: usize,
        /// One-based column.
        column: usize,
        /// The key at fault (`file[0].template`, `node.name`, ...).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// No spec by that name in the fixtures.
    #[error("no cluster spec named {name:?} (looked for {looked})")]
    NotFound {
        /// The name asked for.
        name: String,
        /// Paths tried.
        looked: String,
    },
}

impl From<Located> for SpecError {
    fn from(l: Located) -> Self {
        SpecError::Invalid {
            file: l.file,
            line: l.line,
            column: l.column,
            key: l.key,
            message: l.message,
        }
    }
}

/// What a backend reports; the `Cluster` layer adds node and command context.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The engine or host could not be reached at all.
    #[error("{0}")]
    Unreachable(String),
    /// The named node is not part of the cluster.
    #[error("no node {node:?} in cluster {cluster:?}")]
    UnknownNode {
        /// Cluster name.
        cluster: String,
        /// Node asked for.
        node: String,
    },
    /// No cluster by that name exists.
    #[error("no cluster named {0:?}")]
    UnknownCluster(String),
    /// Anything else, already phrased for a user.
    #[error("{0}")]
    Other(String),
    /// A binary cannot run on a node (its glibc is too old, or it has none).
    #[error("node {node}: {message}")]
    Incompatible {
        /// The node.
        node: String,
        /// Both versions and the ways out, on one line.
        message: String,
    },
}

/// Bringing a cluster up failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The spec is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A `[[binary]]` did not build (cargo's own error follows).
    #[error(transparent)]
    Build(#[from] crate::service::BuildError),
    /// The cluster name can't be used (empty, too long, or characters a backend can't take).
    #[error("{0}")]
    BadName(String),
    /// A node's image could not be found or built.
    #[error("node {node}: image {image}: {message}")]
    Image {
        /// Node name.
        node: String,
        /// Image reference.
        image: String,
        /// Why.
        message: String,
    },
    /// A template failed to render for a node.
    #[error("node {node}: template {message}")]
    Template {
        /// Node name.
        node: String,
        /// File, line and reason.
        message: String,
    },
    /// A node did not pass its readiness check in time.
    #[error("node {node}: not ready after {}: `{command}` {last}", crate::duration::human(*.timeout))]
    NotReady {
        /// Node name.
        node: String,
        /// The readiness command.
        command: String,
        /// How long we waited.
        timeout: Duration,
        /// The last attempt's outcome and the node log's tail.
        last: String,
    },
    /// The backend failed.
    #[error("cluster {cluster}: {step}: {source}")]
    Backend {
        /// Cluster name.
        cluster: String,
        /// What was being done.
        step: String,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
}

/// Running a command on a node failed, or it exited non-zero under `check()`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command could not be run at all.
    #[error("node {node}: `{command}`: {source}")]
    Backend {
        /// Node name.
        node: String,
        /// The command.
        command: String,
        /// The backend's error.
        #[source]
        source: BackendError,
    },
    /// The command exited non-zero (from [`crate::ExecOutput::check`]).
    #[error("node {node}: `{command}` exited {code}{tail}")]
    Failed {
        /// Node name.
        node: String,
        /// The command.
        command: String,
        /// Exit code.
        code: i64,
        /// Output tail, prefixed with `: ` when present.
        tail: String,
    },
    /// A text view of the output was asked for, and the output is not UTF-8.
    #[error("node {node}: `{command}`: {stream} is not UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Node name.
        node: String,
        /// The command.
        command: String,
        /// `stdout` or `stderr`.
        stream: &'static str,
        /// Where the first byte that is not UTF-8 is.
        offset: usize,
    },
    /// The command ran past its deadline and was killed.
    #[error("node {node}: `{command}` timed out after {} and was killed{tail}", crate::duration::human(*.after))]
    TimedOut {
        /// Node name.
        node: String,
        /// The command.
        command: String,
        /// The deadline.
        after: Duration,
        /// Output tail, prefixed with `: ` when present.
        tail: String,
    },
}

/// Copying a file to or from a node failed.
#[derive(Debug, thiserror::Error)]
#[error("node {node}: {op} {path}: {source}")]
pub struct TransferError {
    /// Node name.
    pub node: String,
    /// `read` or `write`.
    pub op: &'static str,
    /// Path on the node.
    pub path: String,
    /// The backend's error.
    #[source]
    pub source: BackendError,
}

/// A lifecycle action (kill, stop, start, restart, pause, unpause) failed.
#[derive(Debug, thiserror::Error)]
#[error("node {node}: {action}: {source}")]
pub struct NodeError {
    /// Node name.
    pub node: String,
    /// The action.
    pub action: String,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Any cluster-sim error, for callers that don't need to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// See [`SpecError`].
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// See [`ProvisionError`].
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    /// See [`ExecError`].
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// See [`TransferError`].
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// See [`NodeError`].
    #[error(transparent)]
    Node(#[from] NodeError),
    /// See [`BackendError`].
    #[error(transparent)]
    Backend(#[from] BackendError),
}
