//! Helpers shared by the docker benches (`docker.rs`, `scale.rs`): timing statistics, shell
//! commands, and the 3-node etcd cluster brought up by docker-compose, the peer both measure.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn sh(cmd: &str) -> Result<String> {
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
pub fn wait_healthy_cli(containers: &[String]) -> Result<()> {
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

pub fn etcd_args(i: usize, subnet: &str) -> String {
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

pub fn compose_file(dir: &Path, image: &str) -> Result<PathBuf> {
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

pub fn compose_up(file: &Path) -> Result<Duration> {
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
