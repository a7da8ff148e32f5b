//! The cost of the fault filesystem (`faulty_dirs`): on one docker node, sequential writes
//! (256 MiB in 1 MiB blocks, buffered, then with a final fsync, then over the synced file, which
//! makes faultfs save the old bytes) and synced 4 KiB writes
//! (`oflag=dsync`: one fsync each), through the fault filesystem (`data`) and in a plain
//! directory beside it (`plain`), rounds interleaved, in the same run.
//!
//! `cargo bench -p cluster-sim-core --bench storage` (`CLUSTER_SIM_BENCH_ROUNDS`, default 3).

use std::path::Path;

use anyhow::{Context, Result};
use cluster_sim_core::{Cluster, ClusterSpec};

/// Runs `dd` on the node and returns its seconds (from its summary line).
async fn dd(c: &Cluster, args: &str) -> Result<f64> {
    let out = c
        .node("n1")?
        .exec(format!("dd {args} 2>&1 >/dev/null | tail -n 1"))
        .await?
        .check()?;
    // "268435456 bytes (268 MB, 256 MiB) copied, 0.52 s, 516 MB/s"
    let line = out.out().to_string();
    line.split(", ")
        .find_map(|p| p.strip_suffix(" s")?.trim().parse::<f64>().ok())
        .with_context(|| format!("no time in dd's summary {line:?}"))
}

#[derive(Default)]
struct Figures {
    buffered: Vec<f64>,
    synced: Vec<f64>,
    overwritten: Vec<f64>,
    fsyncs: Vec<f64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn round(c: &Cluster, dir: &str, f: &mut Figures) -> Result<()> {
    const MIB: f64 = 256.0;
    const SYNCS: f64 = 500.0;
    let secs = dd(c, &format!("if=/dev/zero of={dir}/big bs=1M count=256")).await?;
    f.buffered.push(MIB / secs);
    let secs = dd(
        c,
        &format!("if=/dev/zero of={dir}/big bs=1M count=256 conv=fsync"),
    )
    .await?;
    f.synced.push(MIB / secs);
    // The file is synced now: overwriting it makes faultfs save every old byte first (the
    // price of taking them back at a power cut).
    let secs = dd(
        c,
        &format!("if=/dev/zero of={dir}/big bs=1M count=256 conv=notrunc,fsync"),
    )
    .await?;
    f.overwritten.push(MIB / secs);
    let secs = dd(
        c,
        &format!("if=/dev/zero of={dir}/small bs=4k count=500 oflag=dsync"),
    )
    .await?;
    f.fsyncs.push(SYNCS / secs);
    c.node("n1")?
        .exec(format!("rm -f {dir}/big {dir}/small"))
        .await?
        .check()?;
    Ok(())
}

fn main() -> Result<()> {
    let rounds: usize = std::env::var("CLUSTER_SIM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters");
        let spec = ClusterSpec::parse(
            "nodes = 1\nfaulty_dirs = [\"data\"]\n",
            "<bench>",
            &root,
            "storage",
        )?;
        let c = Cluster::builder(spec).up().await?;
        let r = async {
            c.node("n1")?.exec("mkdir -p plain").await?.check()?;
            let (mut plain, mut faulty) = (Figures::default(), Figures::default());
            for i in 0..rounds {
                if i % 2 == 0 {
                    round(&c, "plain", &mut plain).await?;
                    round(&c, "data", &mut faulty).await?;
                } else {
                    round(&c, "data", &mut faulty).await?;
                    round(&c, "plain", &mut plain).await?;
                }
            }
            println!("{rounds} rounds, medians; plain = a directory beside the faulty one");
            for (what, p, f) in [
                (
                    "sequential write, 1 MiB blocks (MB/s)",
                    median(&plain.buffered),
                    median(&faulty.buffered),
                ),
                (
                    "sequential write + fsync (MB/s)",
                    median(&plain.synced),
                    median(&faulty.synced),
                ),
                (
                    "overwrite of a synced file + fsync (MB/s)",
                    median(&plain.overwritten),
                    median(&faulty.overwritten),
                ),
                (
                    "4 KiB writes, each synced (fsyncs/s)",
                    median(&plain.fsyncs),
                    median(&faulty.fsyncs),
                ),
            ] {
                println!("{what}: plain {p:.0}, faultfs {f:.0}, ratio {:.2}x", f / p);
            }
            Ok::<(), anyhow::Error>(())
        }
        .await;
        c.down().await?;
        r
    })
}
