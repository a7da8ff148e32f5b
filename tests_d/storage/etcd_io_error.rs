//! etcd with its data directory on the fault filesystem: when every write and fsync there fails
//! with EIO, etcd does not go on acknowledging writes it could not log: the put fails and the
//! member stops (its write-ahead log failure is fatal), saying why in its log.

use harness::prelude::*;

use fault::IoOp;

#[cluster_test(cluster = "etcd_faulty")]
async fn etcd_stops_instead_of_acknowledging_writes_it_cannot_log(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec("etcdctl put before 1").await?.check()?;

    cluster.io_error("n1", "etcd", IoOp::Any, "EIO", 1.0).await?;
    let put = n1
        .exec("etcdctl --command-timeout=5s put after 1")
        .await?;
    ensure!(!put.success(), "etcd acknowledged a write it could not log: {}", put.out());

    // The member ends: its service exits and the node stops with it.
    wait_until(Duration::from_secs(30), || async {
        let log = n1.logs().await?;
        anyhow::Ok(log.contains("input/output error") && !n1.exec("etcdctl endpoint health --command-timeout=2s").await.is_ok_and(|o| o.success()))
    })
    .await
    .context("etcd neither logged the I/O error nor stopped serving")?;
    let log = n1.logs().await?;
    let line = log
        .lines()
        .find(|l| l.contains("input/output error"))
        .unwrap_or_default();
    println!("etcd said: {line}");
    ensure!(
        log.contains("\"level\":\"fatal\"") || log.contains("\"level\":\"panic\""),
        "etcd logged the error but did not stop: {line}"
    );
    Ok(())
}
