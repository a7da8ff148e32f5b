//! What happened to a cluster, for a test's timeline (`test.log`, the HTML report): provisioning
//! steps, readiness, commands with their results, transfers, lifecycle actions, faults and
//! teardown, each sent to the cluster's event sink.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::BackendError;
use crate::exec::ExecOutput;

/// What happened to a cluster, for a test's timeline (`test.log`).
#[derive(Debug, Clone)]
pub struct Event {
    /// When.
    pub at: SystemTime,
    /// The node concerned, if any.
    pub node: Option<String>,
    /// What kind of thing happened, with what only that kind knows.
    pub kind: EventKind,
    /// One line describing it.
    pub message: String,
}

/// What an [`EventKind::Exec`] event knows of its command beyond the one-line message (the
/// timeline of the HTML report shows it when the event is clicked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSummary {
    /// The command as shown.
    pub command: String,
    /// Its exit code; `None` when the backend failed to run it.
    pub code: Option<i64>,
    /// Whether it hit its own deadline.
    pub timed_out: bool,
    /// How long it ran.
    pub duration: Duration,
    /// The end of its stdout then stderr, lossily decoded, at most [`ExecSummary::TAIL`] bytes
    /// each (or the backend's error).
    pub tail: String,
}

impl ExecSummary {
    /// Bytes of each stream kept in [`ExecSummary::tail`].
    pub const TAIL: usize = 2048;

    pub(super) fn of(command: &str, r: &Result<ExecOutput, BackendError>) -> Self {
        fn end(b: &[u8]) -> String {
            let from = b.len().saturating_sub(ExecSummary::TAIL);
            String::from_utf8_lossy(&b[from..]).into_owned()
        }
        match r {
            Ok(o) => {
                let mut tail = end(&o.stdout);
                let err = end(&o.stderr);
                if !err.is_empty() {
                    if !tail.is_empty() && !tail.ends_with('\n') {
                        tail.push('\n');
                    }
                    tail.push_str("[stderr]\n");
                    tail.push_str(&err);
                }
                Self {
                    command: command.to_string(),
                    code: Some(o.code),
                    timed_out: o.timed_out,
                    duration: o.duration,
                    tail,
                }
            }
            Err(e) => Self {
                command: command.to_string(),
                code: None,
                timed_out: false,
                duration: Duration::ZERO,
                tail: e.to_string(),
            },
        }
    }
}

/// Kinds of [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Provisioning steps.
    Provision,
    /// A node passed its readiness check.
    Ready,
    /// A command ran (message holds command and exit code).
    Exec(ExecSummary),
    /// A file went in or out.
    Transfer,
    /// kill, stop, start, restart, pause, unpause.
    Lifecycle,
    /// Teardown.
    Teardown,
    /// A fault started or ended (partition, impairment, freeze, clock, disk, a nemesis step).
    Fault,
    /// A nemesis started from `seed`, so a runner can print it on failure and report it
    /// (replay with `CLUSTER_SIM_SEED`). A fault event in the timeline.
    Nemesis {
        /// The nemesis's seed.
        seed: u64,
    },
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventKind::Provision => "provision",
            EventKind::Ready => "ready",
            EventKind::Exec(_) => "exec",
            EventKind::Transfer => "transfer",
            EventKind::Lifecycle => "lifecycle",
            EventKind::Teardown => "teardown",
            EventKind::Fault | EventKind::Nemesis { .. } => "fault",
        })
    }
}

/// Receives every [`Event`] of a cluster.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;
