//! A rolling restart: every node in turn, the next one only once the last is back and ready,
//! stopping at the first that fails. The step for each node is the caller's (a new version, a
//! new config); a node the step did not restart itself is restarted after it.

use std::future::Future;

use super::event::EventKind;
use super::handle::{Cluster, Node};

/// A rolling restart stopped at a node.
#[derive(Debug, thiserror::Error)]
#[error("rolling restart stopped at node {node} ({}): {source}", done_text(.done))]
pub struct RollingError {
    /// The node whose step or restart failed.
    pub node: String,
    /// The nodes done before it, in order.
    pub done: Vec<String>,
    /// What failed.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn done_text(done: &[String]) -> String {
    if done.is_empty() {
        "the first node".into()
    } else {
        format!("after {}", done.join(", "))
    }
}

impl Cluster {
    /// Visits the nodes one at a time, in spec order: runs `step(node)`, then restarts the
    /// node unless the step already did (through [`Node::set_version`], [`Node::restart`] or
    /// [`Node::start`]), and waits until it is ready before the next node. Stops at the first
    /// failure and says which node it was. Each step is an event in the cluster's timeline.
    ///
    /// ```no_run
    /// # async fn demo(cluster: &cluster_sim_core::Cluster) -> Result<(), Box<dyn std::error::Error>> {
    /// // A rolling upgrade: every node to the `new` build of kvd, one after another.
    /// cluster
    ///     .rolling_restart(|node| async move { node.set_version("kvd", "new").await })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn rolling_restart<F, Fut, E>(&self, mut step: F) -> Result<(), RollingError>
    where
        F: FnMut(Node) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let nodes = self.nodes();
        let total = nodes.len();
        let mut done: Vec<String> = Vec::new();
        for (i, node) in nodes.into_iter().enumerate() {
            let name = node.name().to_string();
            self.emit(
                Some(&name),
                EventKind::Lifecycle,
                format!("rolling restart {}/{total}: {name}", i + 1),
            );
            let starts = self.inner.versions.starts(&name);
            let mut r: Result<(), Box<dyn std::error::Error + Send + Sync>> =
                step(node.clone()).await.map_err(Into::into);
            if r.is_ok() && self.inner.versions.starts(&name) == starts {
                r = node.restart().await.map_err(Into::into);
            }
            if let Err(source) = r {
                self.emit(
                    Some(&name),
                    EventKind::Lifecycle,
                    format!("rolling restart stopped at {name}: {source}"),
                );
                return Err(RollingError {
                    node: name,
                    done,
                    source,
                });
            }
            done.push(name);
        }
        self.emit(
            None,
            EventKind::Lifecycle,
            format!("rolling restart done: {}", done.join(", ")),
        );
        Ok(())
    }
}
