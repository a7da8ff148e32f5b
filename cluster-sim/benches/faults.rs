//! Partition apply + heal on a 5-node cluster: cluster-sim (`partition` then `heal`) against a
//! Blockade/Pumba-style loop of one `docker exec NODE iptables ...` per rule, on the same nodes
//! in the same run, rounds interleaved; then the same partition on the ssh backend (a lab of
//! five sshd containers).
//!
//! `cargo bench -p cluster-sim-core --bench faults` (`CLUSTER_SIM_BENCH_ROUNDS`, default 50;
//! `CLUSTER_SIM_BENCH_SSH=0` skips the ssh part).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::ssh::{provision_lab, SshBackend};
use cluster_sim_core::{Cluster, ClusterSpec};

const GROUPS: [&[&str]; 2] = [&["n1", "n2"], &["n3", "n4", "n5"]];

fn p50(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One partition + heal with cluster-sim; returns (apply, heal).
async fn cluster_sim_round(c: &Cluster) -> Result<(Duration, Duration)> {
    let t = Instant::now();
    c.partition(&GROUPS).await?;
    let apply = t.elapsed();
    let t = Instant::now();
    let healed = c.heal().await?;
    ensure!(healed.len() == 1, "heal ended {} faults", healed.len());
    Ok((apply, t.elapsed()))
}

/// The rules a Blockade-style script adds: on each node, DROP input from each peer of the
/// other group (both directions are cut because every node does it).
fn cli_rules(c: &Cluster) -> Result<Vec<(String, String)>> {
    let mut rules = Vec::new();
    for (i, a) in GROUPS.iter().enumerate() {
        for (j, b) in GROUPS.iter().enumerate() {
            if i == j {
                continue;
            }
            for node in a.iter() {
                for peer in b.iter() {
                    rules.push((
                        format!("{}-{node}", c.name()),
                        c.node(peer)?.address().to_string(),
                    ));
                }
            }
        }
    }
    Ok(rules)
}

fn docker_iptables(container: &str, op: &str, peer: &str) -> Result<()> {
    let st = Command::new("docker")
        .args([
            "exec", container, "iptables", op, "INPUT", "-s", peer, "-j", "DROP",
        ])
        .stdin(Stdio::null())
        .status()
        .context("docker exec")?;
    ensure!(st.success(), "docker exec {container} iptables {op}: {st}");
    Ok(())
}

/// One partition + heal with the CLI loop; returns (apply, heal).
fn cli_round(rules: &[(String, String)]) -> Result<(Duration, Duration)> {
    let t = Instant::now();
    for (node, peer) in rules {
        docker_iptables(node, "-A", peer)?;
    }
    let apply = t.elapsed();
    let t = Instant::now();
    for (node, peer) in rules {
        docker_iptables(node, "-D", peer)?;
    }
    Ok((apply, t.elapsed()))
}

fn report(name: &str, rounds: &[(Duration, Duration)]) -> Duration {
    let apply: Vec<Duration> = rounds.iter().map(|r| r.0).collect();
    let heal: Vec<Duration> = rounds.iter().map(|r| r.1).collect();
    let both: Vec<Duration> = rounds.iter().map(|r| r.0 + r.1).collect();
    println!(
        "{name:<40} n={:<3} apply+heal p50 {:>8.1} ms (apply {:>7.1} ms, heal {:>7.1} ms)",
        rounds.len(),
        ms(p50(&both)),
        ms(p50(&apply)),
        ms(p50(&heal)),
    );
    p50(&both)
}

async fn docker_bench(rounds: usize) -> Result<()> {
    let spec = ClusterSpec::parse("nodes = 5", "<bench>", std::path::Path::new("."), "faults")?;
    let c = Cluster::builder(spec).up().await?;
    let r = async {
        let rules = cli_rules(&c)?;
        // Warm up both: the exec agents start, the ledger loads, the CLI's binary is cached.
        cluster_sim_round(&c).await?;
        cli_round(&rules)?;
        let (mut ours, mut cli) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            if i % 2 == 0 {
                ours.push(cluster_sim_round(&c).await?);
                cli.push(cli_round(&rules)?);
            } else {
                cli.push(cli_round(&rules)?);
                ours.push(cluster_sim_round(&c).await?);
            }
        }
        println!(
            "docker: partition {} | {} of 5 nodes, {} iptables rules for the loop",
            GROUPS[0].join(","),
            GROUPS[1].join(","),
            rules.len()
        );
        let a = report("cluster-sim partition + heal", &ours);
        let b = report("`docker exec NODE iptables` per rule", &cli);
        println!(
            "ratio cluster-sim / CLI loop: {:.2}x",
            a.as_secs_f64() / b.as_secs_f64()
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.down().await?;
    r
}

async fn ssh_bench(rounds: usize) -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters");
    let text = std::fs::read_to_string(root.join("sshd3.toml"))?.replace("nodes = 3", "nodes = 5");
    let spec = ClusterSpec::parse(&text, "sshd5 (bench)", &root, "sshd5")?;
    let tmp = tempfile::tempdir()?;
    let inventory = tmp.path().join("lab.toml");
    let lab = provision_lab(
        Cluster::builder(spec).backend(Arc::new(docker.clone())),
        &docker,
        &inventory,
    )
    .await?;
    let r = async {
        let backend = SshBackend::from_file(&inventory)?;
        let spec = ClusterSpec::parse("nodes = 5", "<bench>", std::path::Path::new("."), "faults")?;
        let c = Cluster::builder(spec)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let r = async {
            cluster_sim_round(&c).await?;
            let mut ours = Vec::new();
            for _ in 0..rounds {
                ours.push(cluster_sim_round(&c).await?);
            }
            report("ssh: cluster-sim partition + heal", &ours);
            Ok::<(), anyhow::Error>(())
        }
        .await;
        c.down().await?;
        backend.close().await;
        r
    }
    .await;
    lab.down().await?;
    r
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rounds: usize = std::env::var("CLUSTER_SIM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(docker_bench(rounds))?;
    if std::env::var("CLUSTER_SIM_BENCH_SSH").as_deref() != Ok("0") {
        rt.block_on(ssh_bench(rounds))?;
    }
    Ok(())
}
