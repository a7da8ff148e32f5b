//! Fault checks shared by the docker and ssh fault tests (`tests/faults_docker.rs`,
//! `cluster-sim-cli/tests/faults_ssh.rs`): whether datagrams get through, and a one-way cut.

use anyhow::{ensure, Result};
use cluster_sim_core::Cluster;

/// Sends datagrams from `from` to `to`'s address for a few seconds while `to` listens on
/// `port`; whether any arrived. UDP shows a one-way cut, where TCP needs both ways.
pub async fn udp_gets_through(c: &Cluster, from: &str, to: &str, port: u16) -> Result<bool> {
    let rx = c.node(to)?;
    let tx = c.node(from)?;
    let to_addr = rx.address().to_string();
    let listen = rx.exec(format!("timeout 3 nc -u -l -W 1 {port}"));
    // Spaced out, so some datagram arrives once the listener is up.
    let send = tx.exec(format!(
        "for i in $(seq 25); do echo hello-from-{from} | nc -u -w0 {to_addr} {port}; sleep 0.1; done"
    ));
    let (got, _) = tokio::join!(listen, send);
    Ok(got?.stdout_lossy().contains(&format!("hello-from-{from}")))
}

/// n1 -> n2 cut one way: before it datagrams flow, during it n1's don't reach n2 while n2's
/// reach n1, and after `heal` they flow again. Uses ports `base` to `base + 3`.
pub async fn oneway_cut_is_one_way(c: &Cluster, base: u16) -> Result<()> {
    ensure!(
        udp_gets_through(c, "n1", "n2", base).await?,
        "baseline n1 -> n2"
    );
    c.partition_oneway("n1", "n2").await?;
    ensure!(
        !udp_gets_through(c, "n1", "n2", base + 1).await?,
        "n1 -> n2 should be cut"
    );
    ensure!(
        udp_gets_through(c, "n2", "n1", base + 2).await?,
        "n2 -> n1 should flow"
    );
    c.heal().await?;
    ensure!(
        udp_gets_through(c, "n1", "n2", base + 3).await?,
        "healed n1 -> n2"
    );
    Ok(())
}
