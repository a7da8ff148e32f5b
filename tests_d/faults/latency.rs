//! Latency needs the kernel's netem qdisc. Where it exists the `requires = ["netem"]` test
//! runs and measures the delay; where it does not (this project's CI kernel) that test is
//! reported skipped with the reason, and asking for latency fails with one clear line.

use harness::cluster_sim::fault::{FaultError, Impairment};
use harness::prelude::*;

/// The average round trip of a few pings from `from` to `to`, in milliseconds.
async fn rtt_ms(cluster: &Cluster, from: &str, to: &str) -> anyhow::Result<f64> {
    let to = cluster.node(to)?.address().to_string();
    let out = cluster
        .node(from)?
        .exec(format!("ping -c 5 -i 0.2 -q {to}"))
        .await?
        .check()?;
    // rtt min/avg/max/mdev = 0.051/0.062/0.080/0.010 ms
    let text = out.out();
    let stats = text
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .and_then(|l| l.split('=').nth(1))
        .with_context(|| format!("no round-trip line in {text:?}"))?;
    let avg = stats
        .trim()
        .split('/')
        .nth(1)
        .with_context(|| format!("no average in {stats:?}"))?;
    Ok(avg.parse()?)
}

#[cluster_test(nodes = 2, requires = ["netem"], timeout = "2m")]
async fn latency_delays_packets(cluster: &Cluster) -> TestResult {
    let before = rtt_ms(cluster, "n1", "n2").await?;
    cluster
        .impair_link("n1", "n2", Impairment::latency(Duration::from_millis(100)))
        .await?;
    let during = rtt_ms(cluster, "n1", "n2").await?;
    ensure!(
        during >= 100.0,
        "with 100ms latency the round trip was {during}ms (before: {before}ms)"
    );
    cluster.heal().await?;
    let after = rtt_ms(cluster, "n1", "n2").await?;
    ensure!(after < 100.0, "after heal the round trip is still {after}ms");
    Ok(())
}

#[cluster_test(nodes = 2, timeout = "2m")]
async fn latency_without_netem_fails_with_one_clear_line(cluster: &Cluster) -> TestResult {
    let caps = cluster.capabilities("n1").await?;
    let asked = cluster
        .impair("n1", Impairment::latency(Duration::from_millis(50)))
        .await;
    match asked {
        Err(e @ FaultError::Unsupported { .. }) => {
            ensure!(!caps.netem, "netem probed present, yet latency failed: {e}");
            ensure!(
                e.to_string()
                    == "node n1: latency (and jitter, duplicate, corrupt, reorder) needs the kernel module sch_netem, which this node lacks",
                "unexpected error line: {e}"
            );
        }
        Err(e) => return Err(e.into()),
        Ok(_) => {
            ensure!(caps.netem, "latency applied although the probe found no netem");
            cluster.heal().await?;
        }
    }
    // Nothing half-applied either way.
    ensure!(cluster.faults().await?.is_empty(), "faults left active");
    Ok(())
}
