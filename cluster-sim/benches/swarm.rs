//! Swarm backend benchmarks on an engines lab, each against a peer measured in the same run:
//! a 6-node cluster up (and down) on one engine vs spread over three, exec round trips to a
//! node on a lab engine vs on the host engine, a partition applied and healed across engines,
//! and the memory of an idle node and of an idle lab engine.
//!
//! Run with a lab up (`cluster-sim lab engines 2 --out /tmp/engines.toml`):
//! `CLUSTER_SIM_ENGINES=/tmp/engines.toml cargo bench -p cluster-sim-core --bench swarm`
//! (`CLUSTER_SIM_BENCH_ROUNDS`, default 3). Without an engines file it says so and exits.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_sim_core::swarm::Engines;
use cluster_sim_core::{connect_backend, Cluster, ClusterSpec};
use common::{median, ms, pct, root};

fn spec(name: &str, text: &str) -> Result<ClusterSpec> {
    Ok(ClusterSpec::parse(text, "bench.toml", &root(), name)?)
}

/// `n` idle nodes, all on `engine` (or placed by spread).
fn nodes_on(n: usize, engine: Option<&str>) -> String {
    let mut text = format!("nodes = {n}\n");
    if let Some(e) = engine {
        for i in 1..=n {
            text.push_str(&format!("[[node]]\nname = \"n{i}\"\nengine = \"{e}\"\n"));
        }
    }
    text
}

/// `docker stats` memory of `containers` on the engine at `endpoint`, in MiB each.
fn memory_mib(endpoint: &str, containers: &[String]) -> Result<Vec<f64>> {
    let out = Command::new("docker")
        .args([
            "-H",
            endpoint,
            "stats",
            "--no-stream",
            "--format",
            "{{.MemUsage}}",
        ])
        .args(containers)
        .output()
        .context("docker stats")?;
    if !out.status.success() {
        bail!("docker stats: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let used = l.split('/').next().unwrap_or("").trim();
            let (num, unit) =
                used.split_at(used.find(|c: char| c.is_alphabetic()).unwrap_or(used.len()));
            let v: f64 = num
                .trim()
                .parse()
                .with_context(|| format!("memory {used:?}"))?;
            Ok(match unit {
                "GiB" => v * 1024.0,
                "KiB" => v / 1024.0,
                "B" => v / 1024.0 / 1024.0,
                _ => v,
            })
        })
        .collect()
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let Some(file) = std::env::var_os("CLUSTER_SIM_ENGINES") else {
        println!(
            "swarm bench skipped: set CLUSTER_SIM_ENGINES (cluster-sim lab engines 2 --out FILE)"
        );
        return Ok(());
    };
    let engines = Engines::from_file(&file)?;
    if engines.engines.len() < 3 {
        bail!("the swarm bench needs 3 engines (the host's and a lab of 2)");
    }
    let names: Vec<String> = engines.engines.iter().map(|e| e.name.clone()).collect();
    let (host, lab) = (&names[0], &names[1]);
    let rounds: usize = std::env::var("CLUSTER_SIM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let rt = tokio::runtime::Runtime::new()?;
    let backend = rt.block_on(connect_backend("swarm", None))?;
    let up = |s: &ClusterSpec| -> Result<Cluster> {
        Ok(rt.block_on(Cluster::builder(s.clone()).backend(backend.clone()).up())?)
    };

    // Idle engine memory first, before any cluster.
    let lab_containers: Vec<String> = names[1..]
        .iter()
        .map(|n| format!("cluster-sim-lab-{n}"))
        .collect();
    let engine_mib = memory_mib(&engines.engines[0].endpoint, &lab_containers).unwrap_or_default();

    // 1. Six nodes up and down: all on the host engine, all on one lab engine, spread over 3.
    let variants = [
        (
            "6 nodes on the host engine",
            spec("one-host", &nodes_on(6, Some(host)))?,
        ),
        (
            "6 nodes on one lab engine",
            spec("one-lab", &nodes_on(6, Some(lab)))?,
        ),
        (
            "6 nodes spread over 3 engines",
            spec("spread", &nodes_on(6, None))?,
        ),
    ];
    let mut ups: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut downs: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut node_mib: Vec<(String, f64)> = Vec::new();
    for round in 0..rounds {
        for k in 0..variants.len() {
            let i = (round + k) % variants.len();
            let t = Instant::now();
            let cluster = up(&variants[i].1)?;
            ups[i].push(t.elapsed());
            if round == 0 && i == 0 {
                // Idle nodes' memory on the host engine (settled for a moment).
                std::thread::sleep(Duration::from_secs(2));
                let ids: Vec<String> = cluster
                    .nodes()
                    .iter()
                    .map(|n| format!("{}-{}", cluster.name(), n.name()))
                    .collect();
                for m in memory_mib(&engines.engines[0].endpoint, &ids)? {
                    node_mib.push((host.clone(), m));
                }
            }
            let t = Instant::now();
            rt.block_on(cluster.down())?;
            downs[i].push(t.elapsed());
        }
    }
    println!("## swarm: cluster up and down ({rounds} rounds each, interleaved; median)");
    for (i, (what, _)) in variants.iter().enumerate() {
        println!(
            "{what:<32} up {:>10}   down {:>10}",
            ms(median(&mut ups[i])),
            ms(median(&mut downs[i]))
        );
    }

    // 2. exec round trips: n1 on the host engine, n2 on a lab engine.
    let two = spec(
        "exec",
        &format!(
            "nodes = 2\n[[node]]\nname = \"n1\"\nengine = \"{host}\"\n[[node]]\nname = \"n2\"\nengine = \"{lab}\"\n"
        ),
    )?;
    let cluster = up(&two)?;
    let mut lat: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for node in ["n1", "n2"] {
        let n = cluster.node(node)?;
        for _ in 0..10 {
            rt.block_on(n.exec("true"))?.check()?;
        }
    }
    for _ in 0..200 {
        for (i, node) in ["n1", "n2"].iter().enumerate() {
            let n = cluster.node(node)?;
            let t = Instant::now();
            rt.block_on(n.exec("true"))?.check()?;
            lat[i].push(t.elapsed());
        }
    }
    rt.block_on(cluster.down())?;
    println!("## swarm: exec `true`, 200 each, alternating");
    for (i, what) in [
        format!("on the host engine ({host})"),
        format!("on a lab engine ({lab})"),
    ]
    .iter()
    .enumerate()
    {
        println!(
            "{what:<32} p50 {:>8}   p90 {:>8}",
            ms(pct(&mut lat[i], 0.5)),
            ms(pct(&mut lat[i], 0.9))
        );
    }

    // 3. A partition across engines, applied and healed.
    let three = spec(
        "partition",
        &format!(
            "nodes = 3\n[[node]]\nname = \"n1\"\nengine = \"{host}\"\n[[node]]\nname = \"n2\"\nengine = \"{lab}\"\n[[node]]\nname = \"n3\"\nengine = \"{}\"\n",
            names[2]
        ),
    )?;
    let cluster = up(&three)?;
    let (mut apply, mut heal) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let t = Instant::now();
        rt.block_on(cluster.partition(&[&["n1"], &["n2", "n3"]]))?;
        apply.push(t.elapsed());
        let t = Instant::now();
        rt.block_on(cluster.heal())?;
        heal.push(t.elapsed());
    }
    rt.block_on(cluster.down())?;
    println!("## swarm: partition n1 | n2,n3 (three engines), 20 times");
    println!(
        "apply p50 {:>8}   heal p50 {:>8}",
        ms(median(&mut apply)),
        ms(median(&mut heal))
    );

    println!("## memory (docker stats)");
    let idle: Vec<f64> = node_mib.iter().map(|(_, m)| *m).collect();
    if !idle.is_empty() {
        println!(
            "idle node (node image, no service): {:.1} MiB average of {}",
            idle.iter().sum::<f64>() / idle.len() as f64,
            idle.len()
        );
    }
    for (name, m) in lab_containers.iter().zip(&engine_mib) {
        println!("idle lab engine {name} (dockerd + containerd): {m:.1} MiB");
    }
    Ok(())
}
