//! Docker backend benchmarks, each against a peer measured in the same run:
//! 3-node etcd cluster up (cluster-sim vs docker-compose vs a `docker run` loop), exec round trip
//! (library vs the `docker exec` CLI), and teardown of 3 nodes.
//!
//! Run: `cargo bench -p cluster-sim-core --bench docker` (`CLUSTER_SIM_BENCH_ROUNDS`, default 5).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::image::ImageBuilder;
use cluster_sim_core::{Cluster, ClusterSpec};
use common::{compose_file, compose_up, etcd_args, median, ms, pct, root, sh, wait_healthy_cli};

fn docker_run_loop(image: &str) -> Result<(Duration, Duration)> {
    let subnet = "10.198.251";
    let t = Instant::now();
    sh(&format!(
        "docker network create --label cluster-sim.cluster=bench-loop --subnet {subnet}.0/24 csbench-loop >/dev/null"
    ))?;
    let mut names = Vec::new();
    for i in 0..3 {
        let name = format!("csbench-loop-n{}", i + 1);
        sh(&format!(
            "docker run -d --label cluster-sim.cluster=bench-loop --name {name} --hostname n{n} --network csbench-loop --ip {subnet}.{ip} {image} sh -c 'exec {args}' >/dev/null",
            n = i + 1,
            ip = i + 2,
            args = etcd_args(i, subnet)
        ))?;
        names.push(name);
    }
    wait_healthy_cli(&names)?;
    let up = t.elapsed();
    let t = Instant::now();
    sh(&format!("docker rm -f {} >/dev/null", names.join(" ")))?;
    sh("docker network rm csbench-loop >/dev/null")?;
    Ok((up, t.elapsed()))
}

fn main() -> Result<()> {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful either.
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rounds: usize = std::env::var("CLUSTER_SIM_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Runtime::new()?;
    let docker = rt.block_on(DockerBackend::connect())?;
    let image =
        rt.block_on(ImageBuilder::new(root().join("docker/node")).ensure(docker.client()))?;
    let spec = ClusterSpec::from_file(root().join("fixtures/clusters/etcd3.toml"))?;
    let dir = tempfile::tempdir()?;
    let compose = compose_file(dir.path(), &image)?;

    let (mut cs_up, mut cs_down, mut co_up, mut loop_up, mut loop_down) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut lib_exec = vec![];
    let mut cli_exec = vec![];
    for round in 0..rounds {
        // Interleave the three and rotate who goes first, so the engine's clean-up of the
        // previous method and drift in the machine's load hit them alike.
        for k in 0..3 {
            match (round + k) % 3 {
                0 => {
                    let t = Instant::now();
                    let cluster = rt.block_on(Cluster::builder(spec.clone()).up())?;
                    cs_up.push(t.elapsed());
                    if lib_exec.is_empty() {
                        let n1 = cluster.node("n1")?;
                        let container = format!("{}-n1", cluster.name());
                        for _ in 0..10 {
                            rt.block_on(n1.exec("true"))?.check()?;
                        }
                        for _ in 0..200 {
                            let t = Instant::now();
                            rt.block_on(n1.exec("true"))?.check()?;
                            lib_exec.push(t.elapsed());
                            let t = Instant::now();
                            let ok = Command::new("docker")
                                .args(["exec", &container, "true"])
                                .status()?
                                .success();
                            cli_exec.push(t.elapsed());
                            if !ok {
                                bail!("docker exec failed");
                            }
                        }
                    }
                    let t = Instant::now();
                    rt.block_on(cluster.down())?;
                    cs_down.push(t.elapsed());
                }
                1 => co_up.push(compose_up(&compose).context("docker-compose")?),
                _ => {
                    let (u, d) = docker_run_loop(&image).context("docker run loop")?;
                    loop_up.push(u);
                    loop_down.push(d);
                }
            }
        }
    }

    let (cs, co, lo) = (median(&mut cs_up), median(&mut co_up), median(&mut loop_up));
    println!("3-node etcd cluster up to ready, median of {rounds}:");
    println!("  cluster-sim          {}", ms(cs));
    println!(
        "  docker-compose up -d {}   cluster-sim/compose = {:.2}x",
        ms(co),
        cs.as_secs_f64() / co.as_secs_f64()
    );
    println!(
        "  docker run loop      {}   cluster-sim/loop    = {:.2}x",
        ms(lo),
        cs.as_secs_f64() / lo.as_secs_f64()
    );
    let (lp50, lp99) = (pct(&mut lib_exec, 0.5), pct(&mut lib_exec, 0.99));
    let (cp50, cp99) = (pct(&mut cli_exec, 0.5), pct(&mut cli_exec, 0.99));
    println!("exec round trip of `true`, 200 calls:");
    println!("  library    p50 {}  p99 {}", ms(lp50), ms(lp99));
    println!("  docker CLI p50 {}  p99 {}", ms(cp50), ms(cp99));
    println!(
        "  library/CLI p50 = {:.2}x  p99 = {:.2}x",
        lp50.as_secs_f64() / cp50.as_secs_f64(),
        lp99.as_secs_f64() / cp99.as_secs_f64()
    );
    let (cd, ld) = (median(&mut cs_down), median(&mut loop_down));
    println!("teardown of 3 nodes + network, median of {rounds}:");
    println!("  cluster-sim          {}", ms(cd));
    println!(
        "  docker rm -f loop    {}   cluster-sim/loop = {:.2}x",
        ms(ld),
        cd.as_secs_f64() / ld.as_secs_f64()
    );
    Ok(())
}
