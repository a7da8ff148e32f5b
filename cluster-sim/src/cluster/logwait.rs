//! Waiting for a node's service to log a line: `node.wait_for_log(regex, timeout)`.
//!
//! The service log is read through the backend (`Backend::logs`: the container's output on
//! docker, `service.log` on ssh hosts) every 100 ms until a line matches or the deadline passes.
//! Only complete lines count (a line still being written is matched once its newline lands),
//! and by default only lines written after the wait began, so a test can wait for the effect of
//! what it just did; `.since_start()` includes every earlier line.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::Duration;

use super::Node;
use crate::error::BackendError;

/// How often the log is read again.
const POLL: Duration = Duration::from_millis(100);
/// How many of the last lines a timeout error quotes.
const QUOTED: usize = 10;

/// Why [`Node::wait_for_log`] returned no line.
#[derive(Debug, thiserror::Error)]
pub enum LogWaitError {
    /// The pattern is not a regular expression.
    #[error("node {node}: wait_for_log: bad pattern {pattern:?}: {source}")]
    BadPattern {
        /// The node.
        node: String,
        /// The pattern as given.
        pattern: String,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
    /// No line matched before the deadline.
    #[error("node {node}: no service log line matched {pattern:?} within {timeout:?}; {}", last_lines(.seen))]
    Timeout {
        /// The node.
        node: String,
        /// The pattern.
        pattern: String,
        /// The deadline.
        timeout: Duration,
        /// The last lines seen (at most ten), oldest first.
        seen: Vec<String>,
    },
    /// The log could not be read.
    #[error("node {node}: reading the service log: {source}")]
    Read {
        /// The node.
        node: String,
        /// What the backend said.
        #[source]
        source: BackendError,
    },
}

fn last_lines(seen: &[String]) -> String {
    if seen.is_empty() {
        "no line was written in that time".into()
    } else {
        format!("the last lines seen:\n  {}", seen.join("\n  "))
    }
}

/// A wait for a service log line, started by [`Node::wait_for_log`]; `.await` it.
#[must_use = "the wait happens when it is awaited"]
pub struct LogWait<'a> {
    node: &'a Node,
    pattern: String,
    timeout: Duration,
    since_start: bool,
}

impl LogWait<'_> {
    /// Also match lines written before the wait began (the whole log so far).
    pub fn since_start(mut self) -> Self {
        self.since_start = true;
        self
    }
}

impl Node {
    /// Waits until the node's service logs a line matching `pattern` (a regex) and returns that
    /// line (without its newline). Only lines written after the wait begins count unless
    /// `.since_start()` is added; the error at `timeout` quotes the last lines seen.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> anyhow::Result<()> {
    /// use std::time::Duration;
    /// let n1 = cluster.node("n1")?;
    /// // etcd says so once it has joined the cluster (an earlier line counts too).
    /// let line = n1
    ///     .wait_for_log(r"ready to serve client requests", Duration::from_secs(30))
    ///     .since_start()
    ///     .await?;
    /// assert!(line.contains("ready"));
    /// # Ok(()) }
    /// ```
    pub fn wait_for_log(&self, pattern: &str, timeout: Duration) -> LogWait<'_> {
        LogWait {
            node: self,
            pattern: pattern.to_string(),
            timeout,
            since_start: false,
        }
    }
}

impl<'a> IntoFuture for LogWait<'a> {
    type Output = Result<String, LogWaitError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let node = self.node.name().to_string();
            let re =
                regex::Regex::new(&self.pattern).map_err(|source| LogWaitError::BadPattern {
                    node: node.clone(),
                    pattern: self.pattern.clone(),
                    source,
                })?;
            let read = || async {
                self.node.logs().await.map_err(|source| LogWaitError::Read {
                    node: node.clone(),
                    source,
                })
            };
            let deadline = tokio::time::Instant::now() + self.timeout;
            // Where unread text starts: the end of the log now, or its start.
            let mut from = if self.since_start {
                0
            } else {
                read().await?.len()
            };
            let mut seen: Vec<String> = Vec::new();
            loop {
                let log = read().await?;
                // A restarted container's log can only grow; a log that shrank was replaced.
                if log.len() < from {
                    from = 0;
                }
                let fresh = &log[from..];
                let complete = fresh.rfind('\n').map_or(0, |i| i + 1);
                for line in fresh[..complete].lines() {
                    if re.is_match(line) {
                        return Ok(line.to_string());
                    }
                    seen.push(line.to_string());
                }
                if seen.len() > QUOTED {
                    seen.drain(..seen.len() - QUOTED);
                }
                from += complete;
                if tokio::time::Instant::now() >= deadline {
                    let partial = fresh[complete..].trim_end();
                    if !partial.is_empty() {
                        seen.push(partial.to_string());
                    }
                    return Err(LogWaitError::Timeout {
                        node,
                        pattern: self.pattern,
                        timeout: self.timeout,
                        seen,
                    });
                }
                tokio::time::sleep(POLL.min(deadline - tokio::time::Instant::now())).await;
            }
        })
    }
}
