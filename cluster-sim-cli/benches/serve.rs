//! `cluster-sim serve` under load: 100 checks every 10 s over a 10-node docker cluster. Samples
//! the server process's CPU time and resident memory from /proc every interval and reports CPU
//! as a share of one core and memory at the start and end of the window (after a warm-up).
//!
//! Opt-in (it runs for minutes): `CLUSTER_SIM_BENCH_SERVE_SECS=600 cargo bench -p cluster-sim
//! --bench serve`. `CLUSTER_SIM_BENCH_SERVE_CHECKS` (100), `..._NODES` (10) and
//! `..._INTERVAL` (10s) change the load.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use cluster_sim::{Cluster, ClusterSpec};

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (user + system CPU ticks, resident KiB) of a process.
fn sample(pid: u32) -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &stat[stat.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok((ticks, rss))
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn main() -> Result<()> {
    let Ok(secs) = std::env::var("CLUSTER_SIM_BENCH_SERVE_SECS") else {
        eprintln!("serve bench: opt-in; run with CLUSTER_SIM_BENCH_SERVE_SECS=600 (the issue's 10 minutes) or shorter");
        return Ok(());
    };
    let secs: u64 = secs.parse().context("CLUSTER_SIM_BENCH_SERVE_SECS")?;
    let checks = env_num("CLUSTER_SIM_BENCH_SERVE_CHECKS", 100);
    let nodes = env_num("CLUSTER_SIM_BENCH_SERVE_NODES", 10);
    let interval = env_num("CLUSTER_SIM_BENCH_SERVE_INTERVAL", 10);
    let rt = tokio::runtime::Runtime::new()?;
    let spec = ClusterSpec::parse(
        &format!("nodes = {nodes}\n"),
        "<serve bench>",
        Path::new("."),
        "bench",
    )?;
    let name = cluster_sim::cluster::unique_name("servebench");
    let cluster = rt.block_on(Cluster::builder(spec).name(&name).up())?;
    let r = run(&name, secs, checks, nodes, interval);
    rt.block_on(cluster.down())?;
    r
}

fn run(cluster: &str, secs: u64, checks: u64, nodes: u64, interval: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cdir = dir.path().join("checks");
    std::fs::create_dir(&cdir)?;
    for i in 0..checks {
        // Half plain exit codes, half through a parser, as real checks mix them.
        let body = if i % 2 == 0 {
            "command = \"test -d /proc\"".to_string()
        } else {
            "command = \"echo load=$(cut -d' ' -f1 /proc/loadavg)\"\n[parse]\nregex = 'load=([0-9.]+)'\nwarn_above = 100\nerror_above = 200".to_string()
        };
        std::fs::write(
            cdir.join(format!("c{i:03}.toml")),
            format!(
                "name = \"c{i:03}\"\ncategory = \"bench\"\ncluster = \"{cluster}\"\nnode = \"n{}\"\ninterval = \"{interval}s\"\ntimeout = \"5s\"\n{body}\n",
                i % nodes + 1
            ),
        )?;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_cluster-sim"))
        .args(["serve", "--bind", "127.0.0.1:0", "--checks"])
        .arg(&cdir)
        .arg("--db")
        .arg(dir.path().join("h.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().transpose()?.unwrap_or_default();
    if !first.starts_with("cluster-sim: serving on ") {
        let _ = child.kill();
        bail!("server did not start: {first}");
    }
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let pid = child.id();
    let tck = clk_tck() as f64;
    // Warm-up: one interval, so every check has run once and caches are filled.
    std::thread::sleep(Duration::from_secs(interval));
    let start = Instant::now();
    let (t0, rss0) = sample(pid)?;
    let mut rss_max = rss0;
    let mut rows = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(interval));
        let (t, rss) = sample(pid)?;
        rss_max = rss_max.max(rss);
        rows.push((start.elapsed().as_secs(), t, rss));
    }
    let (t1, rss1) = sample(pid)?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = (t1 - t0) as f64 / tck / wall * 100.0;
    let db = std::fs::metadata(dir.path().join("h.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    println!("serve bench: {checks} checks every {interval}s over {nodes} nodes, {wall:.0}s measured after a {interval}s warm-up");
    for (at, t, rss) in &rows {
        println!(
            "  t={at:>4}s  cpu so far {:.2}% of one core  rss {} KiB",
            (*t - t0) as f64 / tck / (*at as f64).max(1.0) * 100.0,
            rss
        );
    }
    println!("  server CPU: {cpu:.2}% of one core");
    println!("  server RSS: {rss0} KiB at start, {rss1} KiB at end, {rss_max} KiB at most");
    println!("  history database: {} KiB", db / 1024);
    Ok(())
}
