//! Docker backend benchmarks, each against a peer measured in the same run:
//! 3-node etcd cluster up (cluster-sim vs docker-compose vs a `docker run` loop), exec round trip
//! (library vs the `docker exec` CLI), and teardown of 3 nodes.
//!
//! Run: `cargo bench -p cluster-sim --bench docker` (`CLUSTER_SIM_BENCH_ROUNDS`, default 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_sim::docker::DockerBackend;
use cluster_sim::image::ImageBuilder;
use cluster_sim::{Cluster, ClusterSpec};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn sh(cmd: &str) -> Result<String> {
    let out = Command::new("sh").arg("-c").arg(cmd).output()?;
    if !out.status.success() {
        bail!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Polls `etcdctl endpoint health` in each container through the CLI until all pass.
fn wait_healthy_cli(containers: &[String]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for c in containers {
        loop {
            let ok = Command::new("docker")
                .args(["exec", c, "etcdctl", "endpoint", "health"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            if Instant::now() > deadline {
                bail!("{c} never became healthy");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn etcd_args(i: usize, subnet: &str) -> String {
    let ip = |k: usize| format!("{subnet}.{}", k + 2);
    let initial: Vec<String> = (0..3)
        .map(|k| format!("n{}=http://{}:2380", k + 1, ip(k)))
        .collect();
    format!(
        "etcd --name n{n} --data-dir /var/lib/cluster-sim/etcd \
         --listen-peer-urls http://{me}:2380 \
         --listen-client-urls http://{me}:2379,http://127.0.0.1:2379 \
         --advertise-client-urls http://{me}:2379 \
         --initial-advertise-peer-urls http://{me}:2380 \
         --initial-cluster {initial} --initial-cluster-token bench --initial-cluster-state new \
         --heartbeat-interval 100 --election-timeout 1000",
        n = i + 1,
        me = ip(i),
        initial = initial.join(",")
    )
}

fn compose_file(dir: &Path, image: &str) -> Result<PathBuf> {
    let subnet = "10.198.250";
    let mut y = String::from("version: \"2.4\"\nservices:\n");
    for i in 0..3 {
        y.push_str(&format!(
            "  n{n}:\n    image: {image}\n    hostname: n{n}\n    labels:\n      cluster-sim.cluster: bench-compose\n    command: [\"sh\", \"-c\", \"exec {args}\"]\n    networks:\n      net:\n        ipv4_address: {subnet}.{ip}\n",
            n = i + 1,
            ip = i + 2,
            args = etcd_args(i, subnet),
        ));
    }
    y.push_str(&format!(
        "networks:\n  net:\n    labels:\n      cluster-sim.cluster: bench-compose\n    ipam:\n      config:\n        - subnet: {subnet}.0/24\n"
    ));
    let p = dir.join("docker-compose.yml");
    std::fs::write(&p, y)?;
    Ok(p)
}

fn compose_up(file: &Path) -> Result<Duration> {
    let f = file.display();
    let t = Instant::now();
    sh(&format!(
        "docker-compose -f {f} -p csbench up -d 2>/dev/null"
    ))?;
    let names: Vec<String> = (1..=3).map(|i| format!("csbench_n{i}_1")).collect();
    wait_healthy_cli(&names)?;
    let up = t.elapsed();
    sh(&format!(
        "docker-compose -f {f} -p csbench down -t 0 2>/dev/null"
    ))?;
    Ok(up)
}

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
