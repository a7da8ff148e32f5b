//! Faults on the ssh backend, on a lab of sshd containers (fixtures/clusters/sshd3.toml): an
//! isolated host loses its links to the others but keeps our ssh connection, a one-way cut,
//! freeze/thaw/kill of the service's process group, the kernel probe, and that teardown and a
//! `down` by name from a process that never saw the cluster leave no table of ours behind.

#[allow(dead_code)]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use cluster_sim::docker::DockerBackend;
use cluster_sim::fault::{backend_capabilities, FaultError, Signal};
use cluster_sim::ssh::{provision_lab, SshBackend};
use cluster_sim::{Backend, Cluster, NodeState};
use conformance::wait_for;
use futures::FutureExt;

/// Our nftables tables on a lab host, seen through docker (not through the backend under test).
async fn our_tables(lab: &Cluster, host: &str) -> Result<Vec<String>> {
    let out = lab
        .node(host)?
        .exec("nft list tables | grep cluster_sim_ || true")
        .await?
        .check()?;
    Ok(out.out().lines().map(str::to_string).collect())
}

/// Whether datagrams from `from` reach `to` (UDP shows a one-way cut; TCP needs both ways).
async fn udp_gets_through(c: &Cluster, from: &str, to: &str, port: u16) -> Result<bool> {
    let rx = c.node(to)?;
    let tx = c.node(from)?;
    let to_addr = rx.address().to_string();
    let listen = rx.exec(format!("timeout 3 nc -u -l -W 1 {port}"));
    let send = tx.exec(format!(
        "for i in $(seq 25); do echo hello-from-{from} | nc -u -w0 {to_addr} {port}; sleep 0.1; done"
    ));
    let (got, _) = tokio::join!(listen, send);
    Ok(got?.stdout_lossy().contains(&format!("hello-from-{from}")))
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_ssh_hosts() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let spec =
        cluster_sim::ClusterSpec::from_file(conformance::fixtures().join("clusters/sshd3.toml"))?;
    let tmp = tempfile::tempdir()?;
    let inventory = tmp.path().join("lab.toml");
    let builder = Cluster::builder(spec).backend(Arc::new(docker.clone()));
    let lab = provision_lab(builder, &docker, &inventory).await?;
    let r = std::panic::AssertUnwindSafe(body(&lab, &inventory))
        .catch_unwind()
        .await;
    lab.down().await?;
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

async fn body(lab: &Cluster, inventory: &std::path::Path) -> Result<()> {
    let backend = SshBackend::from_file(inventory)?;

    // The kernel probe, as `requires` uses it: nftables and htb here, netem missing.
    let caps = backend_capabilities(&backend).await?;
    ensure!(caps.nft && caps.htb, "lab hosts probed as {caps:?}");

    let c = Cluster::builder(conformance::spec("nodes = 3")?)
        .backend(Arc::new(backend.clone()))
        .up()
        .await?;
    let r = async {
        ensure!(udp_gets_through(&c, "n1", "n2", 9200).await?, "baseline");
        c.isolate("n1").await?;
        ensure!(!udp_gets_through(&c, "n1", "n2", 9201).await?, "n1 -> n2 cut");
        ensure!(!udp_gets_through(&c, "n3", "n1", 9202).await?, "n3 -> n1 cut");
        ensure!(udp_gets_through(&c, "n2", "n3", 9203).await?, "n2 -> n3 flows");
        // Our own connection is kept: exec on the isolated host still works, and the rule that
        // keeps it comes first.
        c.node("n1")?.exec("true").await?.check()?;
        let table = lab
            .node("n1")?
            .exec("nft list tables | grep -o 'cluster_sim_[a-z0-9_]*' | head -n1 | xargs -r nft list table inet")
            .await?
            .check()?;
        ensure!(
            table.out().contains("tcp dport 22 accept"),
            "no keep rule in:\n{}",
            table.out()
        );
        c.heal().await?;
        ensure!(udp_gets_through(&c, "n1", "n2", 9204).await?, "healed");
        for h in ["n1", "n2", "n3"] {
            ensure!(our_tables(lab, h).await?.is_empty(), "{h}: table after heal");
        }

        c.partition_oneway("n1", "n2").await?;
        ensure!(!udp_gets_through(&c, "n1", "n2", 9205).await?, "n1 -> n2 cut");
        ensure!(udp_gets_through(&c, "n2", "n1", 9206).await?, "n2 -> n1 flows");
        c.heal().await?;

        // The service's process group: frozen, thawed, then killed by a chosen signal.
        let n2 = c.node("n2")?;
        c.freeze("n2").await?;
        ensure!(n2.state().await? == NodeState::Paused, "frozen");
        n2.exec("true").await?.check()?;
        c.thaw("n2").await?;
        ensure!(n2.state().await? == NodeState::Running, "thawed");
        c.kill_service("n2", Signal::Term).await?;
        wait_for("the service to end", Duration::from_secs(10), || {
            let n2 = n2.clone();
            async move { (n2.state().await.ok()? == NodeState::Exited).then_some(()) }
        })
        .await?;

        // What the ssh backend does not do says so.
        match c.fill_disk("n1").await {
            Err(FaultError::NotOnBackend { .. }) => {}
            other => anyhow::bail!("fill_disk on ssh: {other:?}"),
        }

        // Teardown with a partition still in force removes it.
        c.isolate("n3").await?;
        ensure!(!our_tables(lab, "n3").await?.is_empty(), "n3 has our table");
        Ok(())
    }
    .await;
    c.down().await?;
    r?;
    for h in ["n1", "n2", "n3"] {
        ensure!(
            our_tables(lab, h).await?.is_empty(),
            "{h}: table after down"
        );
    }

    // `cluster-sim down NAME` (and a harness killed mid-test): a process that never saw the
    // cluster finds it on the hosts and removes its rules with it.
    let c = Cluster::builder(conformance::spec("nodes = 2")?)
        .backend(Arc::new(backend.clone()))
        .keep(true)
        .up()
        .await?;
    c.isolate("n1").await?;
    ensure!(!our_tables(lab, "n1").await?.is_empty(), "n1 has our table");
    let fresh = SshBackend::from_file(inventory)?;
    fresh.destroy(c.name()).await?;
    for h in ["n1", "n2"] {
        ensure!(
            our_tables(lab, h).await?.is_empty(),
            "{h}: table after down by name"
        );
    }
    fresh.close().await;
    backend.close().await;
    Ok(())
}
