//! Progress of `up` and `down` on stderr: a line per step for small clusters; above
//! [`MANY`] nodes one bar on a terminal, or a summary line every 10% of the nodes (and at
//! least every few seconds) in a log, instead of a line per node.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_sim::{Event, EventKind, EventSink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Above this many nodes, per-node lines give way to a bar or summaries.
pub const MANY: usize = 10;

/// The longest a log goes without a summary while nodes are becoming ready.
const SUMMARY_EVERY: Duration = Duration::from_secs(5);

/// How progress is shown, chosen once per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A line per event (up to [`MANY`] nodes).
    Lines,
    /// A bar on the terminal.
    Bar,
    /// Summary lines in a log.
    Summaries,
}

impl Style {
    /// The style for `nodes` nodes, with stderr as it is.
    pub fn for_nodes(nodes: usize) -> Self {
        Self::choose(nodes, std::io::stderr().is_terminal())
    }

    fn choose(nodes: usize, terminal: bool) -> Self {
        match (nodes > MANY, terminal) {
            (false, _) => Style::Lines,
            (true, true) => Style::Bar,
            (true, false) => Style::Summaries,
        }
    }
}

/// What the summaries have said so far.
struct Count {
    ready: usize,
    shown_tenths: usize,
    shown_at: Instant,
}

/// `up`'s progress: an event sink for the cluster builder, and the bar to clear at the end.
pub struct UpProgress {
    bar: Option<ProgressBar>,
    /// In a log, the summary a slow cluster gets every [`SUMMARY_EVERY`] without news.
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl UpProgress {
    /// Progress for provisioning `total` nodes, and the sink that feeds it. Call it inside the
    /// runtime.
    pub fn new(total: usize) -> (Self, EventSink) {
        let style = Style::for_nodes(total);
        let bar = (style == Style::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed}] {bar:30} {pos}/{len} ready {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let count = Arc::new(Mutex::new(Count {
            ready: 0,
            shown_tenths: 0,
            shown_at: Instant::now(),
        }));
        let ticker = (style == Style::Summaries).then(|| {
            let count = count.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut tick = tokio::time::interval(SUMMARY_EVERY);
                loop {
                    tick.tick().await;
                    let mut c = count.lock().unwrap_or_else(|p| p.into_inner());
                    if c.shown_at.elapsed() >= SUMMARY_EVERY && c.ready < total {
                        c.shown_at = Instant::now();
                        eprintln!(
                            "cluster-sim: {}/{total} nodes ready after {}s",
                            c.ready,
                            started.elapsed().as_secs()
                        );
                    }
                }
            })
        });
        let shown = bar.clone();
        let sink: EventSink = Arc::new(move |e: &Event| {
            // A failure is printed once, as the command's error, not also as a progress line.
            if !matches!(e.kind, EventKind::Provision | EventKind::Ready)
                || e.message.starts_with("provisioning failed")
            {
                return;
            }
            let per_node = e.kind == EventKind::Ready && e.node.is_some();
            match (style, per_node) {
                (Style::Lines, _) => {
                    let node = e
                        .node
                        .as_deref()
                        .map(|n| format!("{n}: "))
                        .unwrap_or_default();
                    eprintln!("cluster-sim: {node}{}", e.message);
                }
                (Style::Bar, true) => {
                    if let Some(bar) = &shown {
                        bar.inc(1);
                    }
                }
                (Style::Bar, false) => {
                    if let Some(bar) = &shown {
                        bar.println(format!("cluster-sim: {}", e.message));
                    }
                }
                (Style::Summaries, false) => eprintln!("cluster-sim: {}", e.message),
                (Style::Summaries, true) => {
                    let mut c = count.lock().unwrap_or_else(|p| p.into_inner());
                    c.ready += 1;
                    let tenths = c.ready * 10 / total.max(1);
                    if tenths > c.shown_tenths
                        || c.ready == total
                        || c.shown_at.elapsed() >= SUMMARY_EVERY
                    {
                        c.shown_tenths = tenths;
                        c.shown_at = Instant::now();
                        eprintln!("cluster-sim: {}/{total} nodes ready", c.ready);
                    }
                }
            }
        });
        (UpProgress { bar, ticker }, sink)
    }

    /// Clears the bar, or stops the summaries.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(ticker) = &self.ticker {
            ticker.abort();
        }
    }
}

/// Shows that `cluster` (of `nodes` nodes) is being removed, for as long as the result lives:
/// a spinner on a terminal, one line in a log, nothing for a small cluster.
pub fn removing(cluster: &str, nodes: usize) -> Option<ProgressBar> {
    match Style::for_nodes(nodes) {
        Style::Lines => None,
        Style::Summaries => {
            eprintln!("cluster-sim: removing {cluster} ({nodes} nodes)");
            None
        }
        Style::Bar => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("removing {cluster} ({nodes} nodes)"));
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_clusters_keep_their_lines_and_large_ones_get_a_bar_or_summaries() {
        assert_eq!(Style::choose(3, true), Style::Lines);
        assert_eq!(Style::choose(MANY, false), Style::Lines);
        assert_eq!(Style::choose(MANY + 1, true), Style::Bar);
        assert_eq!(Style::choose(200, false), Style::Summaries);
    }
}
