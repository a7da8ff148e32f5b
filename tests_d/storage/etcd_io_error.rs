//! etcd with its data directory on the fault filesystem: when every write and fsync there fails
//! with EIO, etcd does not go on acknowledging writes it could not log: the put is not
//! acknowledged, etcd logs the failed write-ahead-log save as critical and exits, and the node
//! stops with it.

use harness::prelude::*;

use fault::IoOp;
use harness::cluster_sim::NodeState;

#[cluster_test(cluster = "etcd_faulty", requires = ["fuse"])]
async fn etcd_stops_instead_of_acknowledging_writes_it_cannot_log(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec("etcdctl put before 1").await?.check()?;

    // etcd may fail (its own background syncs hit the rule too) and stop the node the moment
    // the rule lands, cutting short the command that set it: the node stopping is what this
    // test looks for, so that is not a failure here. A rule that never landed leaves etcd
    // running, and the checks below fail.
    if let Err(e) = cluster.io_error("n1", "etcd", IoOp::Any, "EIO", 1.0).await {
        println!("setting the rule was cut short: {e}");
    }
    // Not acknowledged: the command fails, or is cut short as the node stops under it.
    let put = n1.exec("etcdctl --command-timeout=5s put after 1").await;
    ensure!(
        !put.as_ref().is_ok_and(|o| o.success()),
        "etcd acknowledged a write it could not log"
    );

    wait_until(Duration::from_secs(30), || async {
        anyhow::Ok(matches!(n1.state().await?, NodeState::Exited))
    })
    .await
    .context("etcd kept running after its write-ahead log failed")?;
    let log = n1.logs().await?;
    let line = log
        .lines()
        .find(|l| l.contains("input/output error"))
        .context("etcd's log does not mention the I/O error")?;
    println!("etcd said: {line}");
    // Which write fails first depends on timing: the write-ahead log ("failed to save state and
    // entries") or the backend ("cannot commit tx"); either is logged critical ("C |") or fatal.
    ensure!(
        ["failed to save state and entries", "cannot commit tx", " C | ", "fatal"]
            .iter()
            .any(|m| line.contains(m)),
        "etcd logged the error but not as a failed save: {line}"
    );
    Ok(())
}
