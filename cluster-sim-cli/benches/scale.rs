//! Scale benchmarks, each against docker-compose measured in the same run, interleaved:
//!
//! - `idle`: N idle nodes (default 50) up, `cluster-sim up SPEC` (a spec of `nodes = N` and no
//!   service) against `docker-compose up -d` of N services running `sleep infinity` on the same
//!   image; both as the processes a user runs, timed from start to exit. Then both down.
//! - `big`: 200 idle nodes up and down (targets: under 60 s and 15 s), and the memory one idle
//!   node costs. docker-compose only with `CLUSTER_SIM_BENCH_BIG_COMPOSE=1`: 1.29 hung at 200
//!   services in our runs (38 containers up, then no progress and no CPU for 5 minutes).
//! - `etcd`: the 3-node etcd cluster up to ready (`Cluster::builder(etcd3).up()`) against the
//!   compose file of `benches/docker.rs` with `etcdctl endpoint health` polled.
//!
//! Run: `cargo bench -p cluster-sim --bench scale` (all three), or name sections:
//! `cargo bench -p cluster-sim --bench scale -- idle etcd`. `CLUSTER_SIM_BENCH_ROUNDS` (default
//! 8) rounds of `idle` and `etcd`, `CLUSTER_SIM_BENCH_BIG_ROUNDS` (default 3) of `big`;
//! `CLUSTER_SIM_BENCH_NODES` / `CLUSTER_SIM_BENCH_BIG_NODES` change the node counts.
//!
//! Everything a round makes is removed before the next one starts, also when a step fails
//! (`Cleanup`); compose projects carry the label `cluster-sim.cluster=bench-scale`.

#[path = "../../cluster-sim/benches/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_sim::docker::DockerBackend;
use cluster_sim::image::ImageBuilder;
use cluster_sim::{Cluster, ClusterSpec};
use common::{compose_file, compose_up, median, ms, root};

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a command to completion; its time, or an error with its stderr.
fn timed(cmd: &mut Command) -> Result<Duration> {
    let t = Instant::now();
    let out = cmd.output()?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// A spec of `nodes` idle nodes and a compose file of as many `sleep infinity` services.
struct Idle {
    spec: PathBuf,
    compose: PathBuf,
    nodes: usize,
}

impl Idle {
    fn new(dir: &Path, nodes: usize, image: &str) -> Result<Self> {
        let spec = dir.join(format!("idle{nodes}.toml"));
        std::fs::write(&spec, format!("name = \"idle\"\nnodes = {nodes}\n"))?;
        let mut y = String::from("version: \"2.4\"\nservices:\n");
        for i in 1..=nodes {
            y.push_str(&format!(
                "  n{i}:\n    image: {image}\n    command: [\"sleep\", \"infinity\"]\n    labels:\n      cluster-sim.cluster: bench-scale\n"
            ));
        }
        y.push_str("networks:\n  default:\n    labels:\n      cluster-sim.cluster: bench-scale\n");
        let compose = dir.join(format!("compose{nodes}.yml"));
        std::fs::write(&compose, y)?;
        Ok(Self {
            spec,
            compose,
            nodes,
        })
    }

    /// A project per round, like the cluster names.
    fn project(&self, round: usize) -> String {
        format!("csscale{}r{round}", self.nodes)
    }

    /// A name per round: a network the engine can't remove (see `down`) keeps its cluster's
    /// name taken.
    fn cluster(&self, round: usize) -> String {
        format!("bench-scale-{}-{round}", self.nodes)
    }

    fn cs_up(&self, round: usize) -> Result<Duration> {
        timed(
            Command::new(CLI)
                .arg("up")
                .arg(&self.spec)
                .args(["--name", &self.cluster(round)]),
        )
    }

    fn cs_down(&self, round: usize) -> Result<Duration> {
        timed(Command::new(CLI).args(["down", &self.cluster(round)]))
    }

    fn compose(&self, round: usize, args: &[&str]) -> Result<Duration> {
        timed(
            Command::new("docker-compose")
                .arg("-f")
                .arg(&self.compose)
                .args(["-p", &self.project(round)])
                .args(args),
        )
    }

    fn compose_up(&self, round: usize) -> Result<Duration> {
        self.compose(round, &["up", "-d"])
    }

    fn compose_down(&self, round: usize) -> Result<Duration> {
        self.compose(round, &["down", "-t", "0"])
    }
}

/// Removes a round's cluster and compose project whatever happened (errors ignored: there may
/// be nothing to remove).
struct Cleanup<'a>(&'a Idle, usize);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let idle = self.0;
        let _ = Command::new(CLI)
            .args(["down", &idle.cluster(self.1)])
            .stderr(std::process::Stdio::null())
            .output();
        let _ = idle.compose(self.1, &["down", "-t", "0"]);
    }
}

/// Memory of the engine's side of one idle node, from `/proc` and the container's cgroup: the
/// containerd shim and fuse-overlayfs processes of each container (PSS, so shared pages count
/// once), the container's cgroup (its processes and their page cache), and what dockerd and
/// containerd grew by since `before`.
#[derive(Debug, Default, Clone, Copy)]
struct Memory {
    daemons: u64,
    shims: u64,
    mounts: u64,
    cgroups: u64,
}

fn pss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Pss:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// (pid, comm, cmdline) of every process.
fn processes() -> Vec<(String, String, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            pid.parse::<u32>().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            Some((pid, comm.trim().to_string(), cmd))
        })
        .collect()
}

fn daemons_kib() -> u64 {
    processes()
        .iter()
        .filter(|(_, c, _)| c == "dockerd" || c == "containerd")
        .map(|(p, _, _)| pss_kib(p))
        .sum()
}

fn cgroup_bytes(id: &str) -> u64 {
    [
        format!("/sys/fs/cgroup/memory/docker/{id}/memory.usage_in_bytes"),
        format!("/sys/fs/cgroup/docker/{id}/memory.current"),
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.current"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
    .unwrap_or(0)
}

/// The engine-side memory of a cluster's node containers (`prefix` of their names).
fn measure_memory(prefix: &str, daemons_before: u64) -> Result<(usize, Memory)> {
    let ids = common::sh(&format!(
        "docker ps -q --no-trunc --filter label=cluster-sim.cluster --filter name=^/{prefix}-n"
    ))?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    let uppers = common::sh(&format!(
        "docker inspect --format '{{{{.GraphDriver.Data.UpperDir}}}}' {}",
        ids.join(" ")
    ))?;
    let uppers: Vec<&str> = uppers.split_whitespace().collect();
    let procs = processes();
    let mut m = Memory {
        daemons: daemons_kib().saturating_sub(daemons_before) * 1024,
        ..Memory::default()
    };
    for id in &ids {
        m.cgroups += cgroup_bytes(id);
        m.shims += procs
            .iter()
            .filter(|(_, c, cmd)| c.starts_with("containerd-shim") && cmd.contains(id))
            .map(|(p, _, _)| pss_kib(p) * 1024)
            .sum::<u64>();
    }
    for up in &uppers {
        m.mounts += procs
            .iter()
            .filter(|(_, c, cmd)| c == "fuse-overlayfs" && cmd.contains(up))
            .map(|(p, _, _)| pss_kib(p) * 1024)
            .sum::<u64>();
    }
    Ok((ids.len(), m))
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn report_memory(nodes: usize, m: Memory) {
    let n = nodes.max(1) as u64;
    let total = m.daemons + m.shims + m.mounts + m.cgroups;
    println!(
        "  memory of {nodes} idle nodes: {} in all, {} per node:",
        mib(total),
        mib(total / n)
    );
    println!(
        "    containerd shims {} ({} each), fuse-overlayfs {} ({} each), container cgroups {} ({} each), dockerd+containerd growth {} ({} each)",
        mib(m.shims),
        mib(m.shims / n),
        mib(m.mounts),
        mib(m.mounts / n),
        mib(m.cgroups),
        mib(m.cgroups / n),
        mib(m.daemons),
        mib(m.daemons / n)
    );
}

/// Passes a teardown's result on, except when the engine lost count of the network's endpoints
/// (Docker 20.10, moby/moby#43286: every container is gone but the network can't be removed
/// until dockerd restarts): that is counted in `lost` and the round goes on. It happens to
/// docker-compose too; it is no failure of the method measured.
fn down(r: Result<Duration>, lost: &mut usize, what: &str) -> Result<()> {
    match r {
        Err(e) if format!("{e:#}").contains("active endpoints") => {
            eprintln!("{what}: the engine kept a network it lost count of: {e:#}");
            *lost += 1;
            Ok(())
        }
        r => r.map(|_| ()).context(what.to_string()),
    }
}

/// `rounds` rounds of idle nodes up and down, cluster-sim and compose interleaved (the order
/// alternating per round); the memory measured on the first round.
fn idle(idle: &Idle, rounds: usize, compose: bool) -> Result<()> {
    let (mut cs_up, mut cs_down, mut co_up, mut co_down) = (vec![], vec![], vec![], vec![]);
    let (mut cs_lost, mut co_lost) = (0, 0);
    let mut memory = None;
    for round in 0..rounds {
        let _cleanup = Cleanup(idle, round);
        for k in 0..2 {
            if !compose && k == 1 {
                continue;
            }
            if !compose || (round + k) % 2 == 0 {
                let before = daemons_kib();
                cs_up.push(idle.cs_up(round).context("cluster-sim up")?);
                if memory.is_none() {
                    memory = Some(measure_memory(&idle.cluster(round), before)?);
                }
                // A lost count costs the retries' 10 s: timed like any other teardown.
                let t = Instant::now();
                down(idle.cs_down(round), &mut cs_lost, "cluster-sim down")?;
                cs_down.push(t.elapsed());
            } else {
                co_up.push(idle.compose_up(round).context("docker-compose up")?);
                let t = Instant::now();
                down(
                    idle.compose_down(round),
                    &mut co_lost,
                    "docker-compose down",
                )?;
                co_down.push(t.elapsed());
            }
        }
        let peer = if compose {
            format!(
                ", compose up {} down {}",
                ms(co_up[round]),
                ms(co_down[round])
            )
        } else {
            String::new()
        };
        eprintln!(
            "round {}: cluster-sim up {} down {}{peer}",
            round + 1,
            ms(cs_up[round]),
            ms(cs_down[round]),
        );
    }
    let n = idle.nodes;
    let (cu, cd) = (median(&mut cs_up), median(&mut cs_down));
    println!("{n} idle nodes, median of {rounds}:");
    if compose {
        let (ou, od) = (median(&mut co_up), median(&mut co_down));
        println!(
            "  up:   cluster-sim {}   docker-compose up -d {}   cluster-sim/compose = {:.2}x",
            ms(cu),
            ms(ou),
            cu.as_secs_f64() / ou.as_secs_f64()
        );
        println!(
            "  down: cluster-sim {}   docker-compose down -t 0 {}   cluster-sim/compose = {:.2}x",
            ms(cd),
            ms(od),
            cd.as_secs_f64() / od.as_secs_f64()
        );
    } else {
        println!("  up:   cluster-sim {}", ms(cu));
        println!("  down: cluster-sim {}", ms(cd));
    }
    if cs_lost + co_lost > 0 {
        println!(
            "  networks the engine lost count of (left until dockerd restarts): cluster-sim {cs_lost}, compose {co_lost}, of {rounds} teardowns each"
        );
    }
    if let Some((nodes, m)) = memory {
        report_memory(nodes, m);
    }
    Ok(())
}

/// The 3-node etcd cluster up to ready: the library against compose (`benches/docker.rs`'s
/// compose file and polling), interleaved.
fn etcd(rounds: usize, image: &str, rt: &tokio::runtime::Runtime) -> Result<()> {
    let spec = ClusterSpec::from_file(root().join("fixtures/clusters/etcd3.toml"))?;
    let dir = tempfile::tempdir()?;
    let compose = compose_file(dir.path(), image)?;
    // `compose_up` removes its project once healthy; this removes it when a round failed.
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = Command::new("docker-compose")
                .arg("-f")
                .arg(self.0)
                .args(["-p", "csbench", "down", "-t", "0"])
                .stderr(std::process::Stdio::null())
                .output();
        }
    }
    let _down = Down(&compose);
    let (mut cs, mut co) = (vec![], vec![]);
    for round in 0..rounds {
        for k in 0..2 {
            if (round + k) % 2 == 0 {
                let t = Instant::now();
                let cluster = rt.block_on(Cluster::builder(spec.clone()).up())?;
                cs.push(t.elapsed());
                rt.block_on(cluster.down())?;
            } else {
                co.push(compose_up(&compose).context("docker-compose")?);
            }
        }
    }
    let (c, o) = (median(&mut cs), median(&mut co));
    println!("3-node etcd up to ready, median of {rounds}:");
    println!(
        "  cluster-sim {}   docker-compose up -d {}   cluster-sim/compose = {:.2}x",
        ms(c),
        ms(o),
        c.as_secs_f64() / o.as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |s: &str| named.is_empty() || named.iter().any(|n| n == s);
    let rounds = env_usize("CLUSTER_SIM_BENCH_ROUNDS", 8);
    let big_rounds = env_usize("CLUSTER_SIM_BENCH_BIG_ROUNDS", 3);
    let rt = tokio::runtime::Runtime::new()?;
    let docker = rt.block_on(DockerBackend::connect())?;
    let image =
        rt.block_on(ImageBuilder::new(root().join("docker/node")).ensure(docker.client()))?;
    let dir = tempfile::tempdir()?;
    if wanted("etcd") {
        etcd(rounds, &image, &rt)?;
    }
    if wanted("idle") {
        let spec = Idle::new(dir.path(), env_usize("CLUSTER_SIM_BENCH_NODES", 50), &image)?;
        idle(&spec, rounds, true)?;
    }
    if wanted("big") {
        let spec = Idle::new(
            dir.path(),
            env_usize("CLUSTER_SIM_BENCH_BIG_NODES", 200),
            &image,
        )?;
        let compose = std::env::var("CLUSTER_SIM_BENCH_BIG_COMPOSE").as_deref() == Ok("1");
        idle(&spec, big_rounds, compose)?;
    }
    Ok(())
}
