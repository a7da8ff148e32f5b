//! Error families. Each message reads as one line saying what failed and where (file and line,
//! cluster, node, command, host), so the CLI and the harness can print it as it is.

use std::time::Duration;

use crate::located::{key_prefix, Located};

/// An error and its causes on one line, skipping a cause its parent's message already quotes:
/// these errors say ``node n1: `cmd`: <cause>`` and also give the cause as their source, which
/// printing the whole chain (`{:#}` of an `anyhow::Error`) would repeat. The CLI's error line
/// and the harness's failure message.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

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

/// What a backend reports; the `Cluster` layer adds node and command context. Each variant
/// says what happened, so a caller acts on the kind (retry, report, give up) and never on the
/// text; the text is one line for people.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The engine or a host could not be reached at all.
    #[error("{what}: {why}")]
    Unreachable {
        /// What could not be reached (`cannot reach the Docker engine`, `host h1: connect`).
        what: String,
        /// Why, with what to check.
        why: String,
    },
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
    /// A node the backend placed is gone: what it was found as (a container) was removed or
    /// replaced since; asking again finds what is there now.
    #[error("node {node} of {cluster}: it was replaced since it was found; try again")]
    Gone {
        /// Cluster name.
        cluster: String,
        /// Node name.
        node: String,
    },
    /// The node is not running (stopped, killed or paused), so it can't run a command.
    #[error("node {node} is not running ({why})")]
    NotRunning {
        /// Node name.
        node: String,
        /// What the backend said of its state.
        why: String,
    },
    /// A step did not finish within its limit.
    #[error("{step}: no answer within {}", crate::duration::human(*.after))]
    Timeout {
        /// What was being done (host or node included).
        step: String,
        /// The limit.
        after: Duration,
    },
    /// A call to the engine failed; `source` is the engine's error.
    #[error("{op}: {source}")]
    Engine {
        /// The call, with what it named (`create container c1-n1`).
        op: String,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A step on a host failed (a command exited non-zero, or could not run).
    #[error("host {host}: {why}")]
    Host {
        /// Inventory name of the host.
        host: String,
        /// The step and why it failed, on one line (`prepare workdir /w: Permission denied`).
        why: String,
    },
    /// A binary cannot run on a node (its glibc is too old, or it has none).
    #[error("node {node}: {message}")]
    Incompatible {
        /// The node.
        node: String,
        /// Both versions and the ways out, on one line.
        message: String,
    },
    /// The backend refuses a request it can't carry out as asked (a name already taken, a
    /// spec or setting this backend can't run).
    #[error("{what}: {why}")]
    Refused {
        /// What was asked for.
        what: String,
        /// Why not, and the way out.
        why: String,
    },
    /// Removing a cluster left parts of it behind (the rest went); each failure on one line.
    #[error("teardown of {cluster}: {}", .failures.join("; "))]
    Teardown {
        /// Cluster name.
        cluster: String,
        /// What could not be removed, and why (`network c-net: ...`, `host h1: ...`).
        failures: Vec<String>,
    },
    /// Another cluster holds the name (`held_by` says how, and the way out).
    #[error("a cluster named {cluster:?} already exists{}", in_parens(.held_by))]
    NameTaken {
        /// The name asked for.
        cluster: String,
        /// What holds it, where the backend can tell.
        held_by: Option<String>,
    },
    /// A node's image is not where the backend looks for images (cluster-sim pulls nothing).
    #[error("image {image:?} is not in the local engine (cluster-sim pulls nothing: build or load it first)")]
    NoImage {
        /// The image reference.
        image: String,
    },
    /// A file asked for does not exist on the node.
    #[error("no such file")]
    NoSuchFile,
    /// A file asked for is a directory on the node.
    #[error("is a directory")]
    IsDirectory,
    /// Something on this machine failed (a file to send, an archive to build or read).
    #[error("{what}: {source}")]
    Local {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// ` (text)`, or nothing.
fn in_parens(text: &Option<String>) -> String {
    text.as_ref().map(|t| format!(" ({t})")).unwrap_or_default()
}

impl BackendError {
    /// An engine call that failed.
    pub fn engine(
        op: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        BackendError::Engine {
            op: op.into(),
            source: Box::new(source),
        }
    }

    /// A host step that failed.
    pub fn host(host: &str, step: &str, why: impl std::fmt::Display) -> Self {
        BackendError::Host {
            host: host.to_string(),
            why: format!("{step}: {why}"),
        }
    }

    /// A request refused.
    pub fn refused(what: impl Into<String>, why: impl Into<String>) -> Self {
        BackendError::Refused {
            what: what.into(),
            why: why.into(),
        }
    }
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
    #[error("node {node}: not ready after {}: {command} {last}", crate::duration::human(*.timeout))]
    NotReady {
        /// Node name.
        node: String,
        /// What readiness waits for (`ReadySpec::describe`: the command in backticks, the log
        /// regex, or both).
        command: String,
        /// How long we waited.
        timeout: Duration,
        /// The last attempt's outcome and the node log's tail.
        last: String,
    },
    /// An `after_up` hook failed (command, node, exit code and output).
    #[error(transparent)]
    Hook(Box<HookError>),
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

/// A hook that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The command ran and exited non-zero (or hit its deadline).
    #[error("{when} hook on node {node}: `{command}` exited {code}{}", quoted(.output))]
    Failed {
        /// When the hook ran.
        when: crate::service::hook_when::HookWhen,
        /// The node.
        node: String,
        /// The command.
        command: String,
        /// Its exit code (-1 when it was killed at its deadline).
        code: i64,
        /// The end of its stdout and stderr.
        output: String,
    },
    /// The command could not be run at all.
    #[error("{when} hook on node {node}: {source}")]
    Exec {
        /// When the hook ran.
        when: crate::service::hook_when::HookWhen,
        /// The node.
        node: String,
        /// Why it could not run.
        #[source]
        source: ExecError,
    },
}

fn quoted(output: &str) -> String {
    let output = output.trim_end();
    if output.is_empty() {
        " with no output".into()
    } else {
        format!("; output:\n{output}")
    }
}
