//! Exec round trip on the ssh backend: a command over the host's multiplexed master vs a fresh
//! `ssh host true` per call, on the same lab hosts in the same run. Brings up its own lab of
//! sshd containers (fixtures/clusters/sshd3.toml) and removes it at the end.
//!
//! `cargo bench -p cluster-sim-core --bench ssh_exec` (CLUSTER_SIM_BENCH_N sets the sample count).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::ssh::{provision_lab, SshBackend};
use cluster_sim_core::{Cluster, ClusterSpec};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let (p50, p99) = (pct(&v, 0.50), pct(&v, 0.99));
    println!(
        "{name:<34} n={:<5} p50={:>9.3?} p99={:>9.3?}",
        v.len(),
        p50,
        p99
    );
    (p50, p99)
}

async fn bench(lab_inventory: &std::path::Path, n: usize) -> Result<()> {
    let backend = SshBackend::from_file(lab_inventory)?;
    let spec = ClusterSpec::parse("nodes = 1", "<bench>", std::path::Path::new("."), "bench")?;
    let c = Cluster::builder(spec)
        .backend(Arc::new(backend.clone()))
        .up()
        .await?;
    let r = async {
        let node = c.node("n1")?;
        // Warm up: the master is open after provisioning; one more call settles caches.
        node.exec("true").await?.check()?;
        let mut mux = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            node.exec("true").await?.check()?;
            mux.push(t.elapsed());
        }
        let mut raw = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let (code, _) = backend.host_exec("n1", "true").await?;
            ensure!(code == 0);
            raw.push(t.elapsed());
        }
        let host = &backend.inventory().hosts[0];
        let mut fresh = Vec::with_capacity(n);
        for _ in 0..n {
            let mut cmd = std::process::Command::new("ssh");
            cmd.args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
            ]);
            if let Some(k) = &host.key {
                cmd.arg("-o").arg("IdentitiesOnly=yes").arg("-i").arg(k);
            }
            if let Some(kh) = &host.known_hosts {
                cmd.arg("-o")
                    .arg(format!("UserKnownHostsFile={}", kh.display()));
            }
            if let Some(p) = host.port {
                cmd.arg("-p").arg(p.to_string());
            }
            if let Some(u) = &host.user {
                cmd.arg("-l").arg(u);
            }
            cmd.arg(&host.address).arg("true");
            let t = Instant::now();
            let st = cmd.stdin(std::process::Stdio::null()).status()?;
            fresh.push(t.elapsed());
            ensure!(st.success(), "ssh exited {st}");
        }
        println!(
            "exec round trip on {} ({}), {n} calls each:",
            host.name,
            host.display()
        );
        let (m50, m99) = summary("node.exec(\"true\") over the master", mux);
        summary("bare command over the master", raw);
        let (f50, f99) = summary("fresh `ssh host true`", fresh);
        println!(
            "fresh / multiplexed: p50 {:.1}x, p99 {:.1}x",
            f50.as_secs_f64() / m50.as_secs_f64(),
            f99.as_secs_f64() / m99.as_secs_f64()
        );
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.down().await?;
    backend.close().await;
    r
}

fn main() -> Result<()> {
    let n: usize = std::env::var("CLUSTER_SIM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let docker = DockerBackend::connect().await?;
        let spec = ClusterSpec::from_file(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures/clusters/sshd3.toml"),
        )?;
        let tmp = tempfile::tempdir()?;
        let inventory = tmp.path().join("lab.toml");
        let lab = provision_lab(
            Cluster::builder(spec).backend(Arc::new(docker.clone())),
            &docker,
            &inventory,
        )
        .await?;
        let r = bench(&inventory, n).await;
        lab.down().await?;
        r
    })
}
