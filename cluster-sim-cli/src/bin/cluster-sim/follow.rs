//! `cluster-sim logs NAME [NODE] --follow`: tails service logs live until Ctrl-C, each line
//! prefixed by its node when every node is followed. Works on any backend: it reads
//! `Backend::logs` again every [`POLL`] and prints the complete lines past each node's offset
//! (a log that shrank was replaced, so it is read again from its start).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use cluster_sim::Backend;

/// How often each node's log is read again.
const POLL: Duration = Duration::from_millis(250);

/// What has been printed of one node's log.
#[derive(Default)]
struct Tail {
    /// Bytes already printed (up to the end of the last complete line).
    offset: usize,
}

impl Tail {
    /// The complete lines of `log` past the offset, the offset moved past them.
    fn fresh<'a>(&mut self, log: &'a [u8]) -> &'a [u8] {
        if log.len() < self.offset {
            self.offset = 0;
        }
        let rest = &log[self.offset..];
        let complete = rest.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete;
        &rest[..complete]
    }
}

/// Follows `nodes` of cluster `name` until Ctrl-C (exit 130) or an error reading a log.
pub(crate) async fn follow(
    backend: &dyn Backend,
    name: &str,
    nodes: Vec<String>,
    prefix: bool,
) -> Result<ExitCode> {
    let mut tails: BTreeMap<String, Tail> =
        nodes.iter().map(|n| (n.clone(), Tail::default())).collect();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::from(130)),
            _ = tick.tick() => {}
        }
        let reads = nodes.iter().map(|n| async move {
            let log = backend
                .logs(name, n)
                .await
                .with_context(|| format!("node {n}: logs"))?;
            Ok::<_, anyhow::Error>((n, log))
        });
        let logs = futures::future::join_all(reads).await;
        let mut out = std::io::stdout().lock();
        for r in logs {
            let (n, log) = r?;
            let fresh = tails.get_mut(n).expect("a tail per node").fresh(&log);
            if prefix {
                for line in String::from_utf8_lossy(fresh).lines() {
                    writeln!(out, "{n} | {line}")?;
                }
            } else {
                out.write_all(fresh)?;
            }
        }
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::Tail;

    #[test]
    fn only_complete_new_lines_and_a_replaced_log_from_its_start() {
        let mut t = Tail::default();
        assert_eq!(t.fresh(b"a\nb"), b"a\n");
        assert_eq!(t.fresh(b"a\nb"), b"");
        assert_eq!(t.fresh(b"a\nbc\nd\n"), b"bc\nd\n");
        assert_eq!(t.fresh(b"x\n"), b"x\n");
    }
}
