//! What following a node's log costs per poll (`cluster-sim logs --follow`), on one docker
//! node whose service logged about 50 MB before it was ready, in the same run:
//! - before: `Backend::logs` again (the whole log) each poll, as `logs --follow` did;
//! - after: `Backend::log_stream` (the engine's follow stream), opened once; each new line
//!   costs only its own bytes. Its first read (all of the log, once) is reported apart.
//!
//! - ssh (the sshd lab): `Backend::logs` each poll against `Backend::logs_from` past what was
//!   read (`tail -c`), a service log of the same size, one new line each poll.
//!
//! `cargo bench -p cluster-sim-core --bench log_follow` (`CLUSTER_SIM_BENCH_ROUNDS`, default
//! 5; `CLUSTER_SIM_BENCH_LOG_MB`, default 50).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use std::sync::Arc;

use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::ssh::{provision_lab, SshBackend};
use cluster_sim_core::{Cluster, ClusterSpec};
use futures::StreamExt;

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() -> Result<()> {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rounds = env("CLUSTER_SIM_BENCH_ROUNDS", 5);
    let mb = env("CLUSTER_SIM_BENCH_LOG_MB", 50);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters");
        // Lines of 100 bytes (base64 of random bytes), then "up", then each line of /tmp/say.
        let text = format!(
            r#"nodes = 1
[service]
command = "touch /tmp/say; head -c {raw} /dev/urandom | base64 -w 99; echo LOG-END; exec tail -F -s 0.01 -n 0 /tmp/say 2>/dev/null"
[ready]
log = "^LOG-END$"
timeout = "120s"
"#,
            raw = mb * 1_000_000 / 100 * 74
        );
        let spec = ClusterSpec::parse(&text, "<bench>", &root, "log_follow")?;
        let name = format!("wt-follow-bench-{}", std::process::id());
        let c = Cluster::builder(spec).name(&name).up().await?;
        let r = measure(&c, rounds).await;
        c.down().await?;
        r?;
        ssh(&root, rounds, mb).await
    })
}

/// On the ssh backend (the sshd lab): `logs` against `logs_from` past what was read, a
/// service log of `mb` MB.
async fn ssh(root: &Path, rounds: usize, mb: usize) -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let spec = ClusterSpec::from_file(root.join("sshd3.toml"))?;
    let dir = tempfile::tempdir()?;
    let inventory = dir.path().join("lab.toml");
    let builder = Cluster::builder(spec)
        .name(format!("wt-follow-lab-{}", std::process::id()))
        .backend(Arc::new(docker.clone()));
    let lab = provision_lab(builder, &docker, &inventory).await?;
    let r = async {
        let backend = SshBackend::from_file(&inventory)?;
        let text = "nodes = 1\n[service]\ncommand = \"echo up; exec sleep 2147483647\"\n[ready]\nlog = \"^up$\"\n";
        let spec = ClusterSpec::parse(text, "<bench>", root, "log_follow_ssh")?;
        let c = Cluster::builder(spec)
            .name(format!("wt-follow-bench-ssh-{}", std::process::id()))
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let r = ssh_measure(&c, rounds, mb).await;
        c.down().await?;
        backend.close().await;
        r
    }
    .await;
    lab.down().await?;
    r
}

async fn ssh_measure(c: &Cluster, rounds: usize, mb: usize) -> Result<()> {
    let (b, name) = (c.backend(), c.name().to_string());
    let n = c.node("n1")?;
    n.exec(format!(
        "head -c {} /dev/urandom | base64 -w 99 >> \"$CLUSTER_SIM_WORKDIR/service.log\"",
        mb * 1_000_000 / 100 * 74
    ))
    .await?
    .check()?;
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let (mut size, mut fresh) = (0, 0);
    for i in 0..rounds {
        let t = Instant::now();
        size = b.logs(&name, "n1").await?.len();
        before.push(t.elapsed());
        n.exec(format!(
            "echo line-{i:03} >> \"$CLUSTER_SIM_WORKDIR/service.log\""
        ))
        .await?
        .check()?;
        let t = Instant::now();
        fresh = b.logs_from(&name, "n1", size as u64).await?.bytes.len();
        after.push(t.elapsed());
    }
    println!(
        "ssh before: Backend::logs each poll: {size} bytes read per poll, median {} ({rounds} polls)",
        ms(median(&mut before))
    );
    println!(
        "ssh after: Backend::logs_from past what was read, one new line: {fresh} bytes read per poll, median {} ({rounds} polls)",
        ms(median(&mut after))
    );
    Ok(())
}

async fn measure(c: &Cluster, rounds: usize) -> Result<()> {
    let (b, name) = (c.backend(), c.name().to_string());
    let n = c.node("n1")?;

    // Before: the whole log each poll.
    let mut polls = Vec::new();
    let mut size = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        size = b.logs(&name, "n1").await?.len();
        polls.push(t.elapsed());
    }
    println!(
        "before: Backend::logs each poll: {} bytes read per poll, median {} ({rounds} polls)",
        size,
        ms(median(&mut polls))
    );

    // After: the live stream; its first read is all of the log, once.
    let t = Instant::now();
    let mut live = b
        .log_stream(&name, "n1")
        .await?
        .context("docker has a stream")?;
    let mut first = 0;
    let mut tail = Vec::new();
    while !tail.ends_with(b"LOG-END\n") {
        let chunk = live.next().await.context("stream ended")??;
        first += chunk.len();
        tail.extend_from_slice(&chunk);
        let keep = tail.len().saturating_sub(16);
        tail.drain(..keep);
    }
    println!(
        "after: Backend::log_stream, first read (whole log, once): {first} bytes in {}",
        ms(t.elapsed())
    );
    let mut waits = Vec::new();
    let mut per_line = 0;
    for i in 0..rounds {
        let line = format!("line-{i:03}\n");
        n.exec(format!(
            "printf '{}' >> /tmp/say",
            line.trim_end().to_owned() + "\\n"
        ))
        .await?
        .check()?;
        let t = Instant::now();
        let mut got = Vec::new();
        while !got.ends_with(line.as_bytes()) {
            got.extend(live.next().await.context("stream ended")??);
        }
        waits.push(t.elapsed());
        per_line = got.len();
    }
    println!(
        "after: each new line: {per_line} bytes read, median {} from the write's return to its arrival ({rounds} lines)",
        ms(median(&mut waits))
    );
    Ok(())
}
