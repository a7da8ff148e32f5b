//! `cluster-sim logs NAME [NODE] --follow`: tails service logs live until Ctrl-C, each line
//! prefixed by its node when every node is followed. Works on any backend: a node's log comes
//! from `Backend::log_stream` where the backend has one (docker, swarm), else from
//! `Backend::logs_from` every [`POLL`], which reads only what lies past what was already read
//! (a log that shrank was replaced, so it is read again from its start). Only complete lines
//! are printed.

use std::process::ExitCode;
use std::time::Duration;
use std::{collections::BTreeMap, io::Write};

use anyhow::{Context, Result};
use cluster_sim::Backend;
use futures::stream::{BoxStream, StreamExt};

/// How often a node's log is read again when the backend has no live stream of it.
const POLL: Duration = Duration::from_millis(250);

/// New bytes of a node's log: `reset` when the log was replaced (what was held is dropped).
struct Fresh {
    reset: bool,
    bytes: Vec<u8>,
}

/// What of one node's log is held back: the start of a line not yet complete.
#[derive(Default)]
struct Tail {
    partial: Vec<u8>,
}

impl Tail {
    /// The complete lines that `fresh` ends, the rest held back.
    fn lines(&mut self, fresh: Fresh) -> Vec<u8> {
        if fresh.reset {
            self.partial.clear();
        }
        self.partial.extend_from_slice(&fresh.bytes);
        let complete = self
            .partial
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let rest = self.partial.split_off(complete);
        std::mem::replace(&mut self.partial, rest)
    }
}

/// Node `node`'s log as it grows: the backend's live stream, or `logs_from` every [`POLL`].
async fn node_log<'a>(
    backend: &'a dyn Backend,
    name: &'a str,
    node: &'a str,
) -> Result<BoxStream<'a, (&'a str, Result<Fresh>)>> {
    let what = move || format!("node {node}: logs");
    if let Some(live) = backend.log_stream(name, node).await.with_context(what)? {
        return Ok(live
            .map(move |r| {
                let fresh = r.map(|bytes| Fresh {
                    reset: false,
                    bytes,
                });
                (node, fresh.with_context(what))
            })
            .boxed());
    }
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Ok(
        futures::stream::unfold((tick, 0u64), move |(mut tick, offset)| async move {
            tick.tick().await;
            let r = backend
                .logs_from(name, node, offset)
                .await
                .with_context(what);
            let next = r.as_ref().map_or(offset, |c| c.from + c.bytes.len() as u64);
            let fresh = r.map(|c| Fresh {
                reset: c.from < offset,
                bytes: c.bytes,
            });
            Some(((node, fresh), (tick, next)))
        })
        .boxed(),
    )
}

/// Follows `nodes` of cluster `name` until Ctrl-C (exit 130) or an error reading a log.
pub(crate) async fn follow(
    backend: &dyn Backend,
    name: &str,
    nodes: Vec<String>,
    prefix: bool,
) -> Result<ExitCode> {
    let mut tails: BTreeMap<&str, Tail> = BTreeMap::new();
    let mut logs = Vec::new();
    for n in &nodes {
        tails.insert(n, Tail::default());
        logs.push(node_log(backend, name, n).await?);
    }
    let mut logs = futures::stream::select_all(logs);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let (n, fresh) = tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::from(130)),
            next = logs.next() => match next {
                Some(item) => item,
                // Every node's log ended: nothing more will come.
                None => return Ok(ExitCode::SUCCESS),
            },
        };
        let done = tails.get_mut(n).expect("a tail per node").lines(fresh?);
        let mut out = std::io::stdout().lock();
        if prefix {
            for line in String::from_utf8_lossy(&done).lines() {
                writeln!(out, "{n} | {line}")?;
            }
        } else {
            out.write_all(&done)?;
        }
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::{Fresh, Tail};

    fn fresh(reset: bool, bytes: &[u8]) -> Fresh {
        Fresh {
            reset,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn only_complete_lines_and_a_replaced_log_from_its_start() {
        let mut t = Tail::default();
        assert_eq!(t.lines(fresh(false, b"a\nb")), b"a\n");
        assert_eq!(t.lines(fresh(false, b"")), b"");
        assert_eq!(t.lines(fresh(false, b"c\nd\n")), b"bc\nd\n");
        assert_eq!(t.lines(fresh(false, b"e")), b"");
        assert_eq!(t.lines(fresh(true, b"x\n")), b"x\n");
    }
}
