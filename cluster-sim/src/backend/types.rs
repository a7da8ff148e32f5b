//! Plain data the backend contract passes: where a node was placed, what it is launched
//! with, its lease, lifecycle actions and states.

use std::fmt;

use crate::error::BackendError;
use crate::spec::NodeSpec;

/// A node's identity once the backend has placed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    /// Node name.
    pub name: String,
    /// Address other nodes reach it at.
    pub address: String,
    /// A directory on the node that belongs to this cluster alone (empty at start, removed at
    /// teardown): where data directories and generated files should go, so the same spec works on
    /// containers and on long-lived hosts.
    pub workdir: String,
}

/// How long a cluster may outlive its owner, fixed when it is made. A reaper that can prove
/// the owner is gone (same machine, same PID namespace) removes the cluster at once; any other
/// reaper only once it has expired. The harness sets it from the test's deadline plus its
/// provisioning and teardown limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// When the cluster expires; `None`: never (only a provably dead owner frees it).
    pub expires: Option<std::time::SystemTime>,
}

impl Lease {
    /// A lease ending `d` from now.
    pub fn for_duration(d: std::time::Duration) -> Lease {
        Lease {
            expires: std::time::SystemTime::now().checked_add(d),
        }
    }
}

/// What a kept cluster carries besides being kept: who kept it and what it was made from, so
/// `cluster-sim ls` can say which test kept it and a test run can attach to it
/// (`CLUSTER_SIM_CLUSTER`) only when it was made from the spec the test asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepMark {
    /// The test that kept it (`CLUSTER_SIM_KEEP_CLUSTER`); `None` for `cluster-sim up`.
    pub by: Option<String>,
    /// The name of the spec it was made from.
    pub spec: Option<String>,
    /// How many nodes that spec gave it.
    pub nodes: Option<usize>,
    /// The spec's file, as an absolute path, where it came from one: what `cluster-sim
    /// add-node` renders the new node's templates from.
    pub spec_file: Option<String>,
}

impl KeepMark {
    /// The mark of a cluster made from `spec`, kept by `by` (a test) or by `cluster-sim up`.
    pub fn of(spec: &crate::spec::ClusterSpec, by: Option<&str>) -> KeepMark {
        KeepMark {
            by: by.map(str::to_string),
            spec: Some(spec.name.clone()),
            nodes: Some(spec.nodes.len()),
            spec_file: std::fs::canonicalize(&spec.source)
                .ok()
                .filter(|p| p.is_file())
                .map(|p| p.display().to_string()),
        }
    }
}

/// A node ready to launch: its spec, its address and its rendered files.
#[derive(Debug, Clone)]
pub struct NodeLaunch {
    /// The node's spec.
    pub spec: NodeSpec,
    /// Its address.
    pub address: String,
    /// Files to place before the service starts: (path, contents, mode).
    pub files: Vec<(String, Vec<u8>, u32)>,
    /// Workspace binaries to place before the service starts, after checking that they can
    /// run on the node (`Placement::check`).
    pub binaries: Vec<crate::service::Placement>,
}

/// Lifecycle actions on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// SIGKILL the node's processes; it stays down until `Start`.
    Kill,
    /// Stop gracefully (SIGTERM, then SIGKILL after a grace period).
    Stop,
    /// Start a stopped or killed node, with the same name, address and data.
    Start,
    /// Stop then start.
    Restart,
    /// Freeze every process of the node.
    Pause,
    /// Thaw a paused node.
    Unpause,
}

impl fmt::Display for NodeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Restart => "restart",
            NodeAction::Pause => "pause",
            NodeAction::Unpause => "unpause",
        })
    }
}

/// A node's state as the backend sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Created but never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Stopped, killed or exited.
    Exited,
    /// Anything else.
    Unknown,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeState::Created => "created",
            NodeState::Running => "running",
            NodeState::Paused => "paused",
            NodeState::Exited => "exited",
            NodeState::Unknown => "unknown",
        })
    }
}

/// Part of a node's service log, from `Backend::logs_from`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogChunk {
    /// The byte offset in the log where `bytes` start: the offset asked for, or 0 when the
    /// log is now shorter than that (it was replaced or truncated: all of it again).
    pub from: u64,
    /// The log's bytes from `from` to its end.
    pub bytes: Vec<u8>,
}

impl LogChunk {
    /// What of a whole `log` lies past `offset` (all of it if the log is shorter).
    pub fn past(mut log: Vec<u8>, offset: u64) -> Self {
        match usize::try_from(offset) {
            Ok(o) if o <= log.len() => {
                log.drain(..o);
                LogChunk {
                    from: offset,
                    bytes: log,
                }
            }
            _ => LogChunk {
                from: 0,
                bytes: log,
            },
        }
    }
}

/// A node's service log as it is written (`Backend::log_stream`): chunks of bytes, in order.
pub type LogStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, BackendError>> + Send>>;
