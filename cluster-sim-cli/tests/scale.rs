//! Big clusters on the real engine: a cluster of more than 250 nodes gets a subnet larger than a
//! /24 from the pool, and every address in it works, including the ones a /24 could not hold
//! (`x.y.z.255`, then `x.y.z+1.0`); a cluster too big for the pool is one clear error that
//! leaves nothing behind.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use cluster_sim::docker::{DockerBackend, LABEL_CLUSTER};
use cluster_sim::{Cluster, ClusterSpec};

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xfffff)
}

fn spec(dir: &tempfile::TempDir, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.path().join("big.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// 256 idle nodes: a /23, aligned, with n254 on the first /24's `.255`, n255 on the second's
/// `.0` and n256 on its `.1`; those nodes reach each other and resolve each other's names.
///
/// Opt-in (`cargo test -p cluster-sim --test scale -- --include-ignored`): it takes 80-90 s on
/// 2 cores, and Docker 20.10 now and then loses count of a big network's endpoints at teardown
/// (moby/moby#43286), which fails the test through no fault of the subnet.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "256 nodes: about 90 s on 2 cores; run with --include-ignored"]
async fn a_cluster_past_a_24_gets_a_23_and_every_address_works() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = ClusterSpec::from_file(spec(&dir, "name = \"big\"\nnodes = 256\n")?)?;
    let name = unique("cs-test-big");
    let cluster = Cluster::builder(spec).name(&name).up().await?;
    let checked = async {
        let addr =
            |n: &str| -> Result<Ipv4Addr> { Ok(cluster.node(n)?.address().parse::<Ipv4Addr>()?) };
        let first = u32::from(addr("n1")?);
        ensure!(
            first % 512 == 2,
            "n1 at {} is not .2 of an aligned /23",
            addr("n1")?
        );
        for (node, offset) in [("n254", 255), ("n255", 256), ("n256", 257)] {
            let want = Ipv4Addr::from(first - 2 + offset);
            ensure!(
                addr(node)? == want,
                "{node} at {}, want {want}",
                addr(node)?
            );
        }
        let docker = DockerBackend::connect().await?;
        let net = docker
            .client()
            .inspect_network(&format!("{name}-net"), None)
            .await?;
        let subnets: Vec<String> = net
            .ipam
            .and_then(|i| i.config)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.subnet)
            .collect();
        let want = format!("{}/23", Ipv4Addr::from(first - 2));
        ensure!(
            subnets == [want.clone()],
            "network subnets {subnets:?}, want {want}"
        );
        // Across the /24 boundary, both ways, by address and by name.
        for (from, to) in [("n1", "n256"), ("n256", "n255"), ("n255", "n254")] {
            let ip = cluster.node(to)?.address().to_string();
            cluster
                .node(from)?
                .exec(format!(
                    "ping -c 1 -W 5 {ip} && getent hosts {to} | grep -qw {ip}"
                ))
                .await?
                .check()
                .with_context(|| format!("{from} -> {to} ({ip})"))?;
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    cluster.down().await?;
    checked?;
    let docker = DockerBackend::connect().await?;
    ensure!(
        docker
            .resources(&[format!("{LABEL_CLUSTER}={name}")])
            .await?
            .is_empty(),
        "{name} left resources behind"
    );
    Ok(())
}

/// More nodes than the pool holds: one line naming the pool and what it holds, a non-zero exit,
/// and nothing made.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_too_big_for_the_pool_is_a_clear_error() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = spec(&dir, "name = \"big\"\nnodes = 251\n")?;
    let name = unique("cs-test-pool");
    let out = tokio::process::Command::new(CLI)
        .arg("up")
        .arg(&path)
        .args(["--name", &name])
        .env("CLUSTER_SIM_SUBNET_POOL", "10.199.7.0/24")
        .stdin(Stdio::null())
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "up succeeded: {stderr}");
    ensure!(
        stderr.contains(
            "251 nodes do not fit the subnet pool 10.199.7.0/24 (CLUSTER_SIM_SUBNET_POOL; a /24 holds 250 nodes)"
        ),
        "unclear error: {stderr}"
    );
    ensure!(!stderr.contains("panicked"), "{stderr}");
    let docker = DockerBackend::connect().await?;
    ensure!(
        docker
            .resources(&[format!("{LABEL_CLUSTER}={name}")])
            .await?
            .is_empty(),
        "{name} left resources behind"
    );
    Ok(())
}
