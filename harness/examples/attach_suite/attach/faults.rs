//! Run on a live cluster by the attach self-test (`CLUSTER_SIM_CLUSTER`): a test that leaves
//! faults behind (a partition, a stopped node) for the harness to undo after it.

use harness::prelude::*;

#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    ignore = "run by the attach self-test"
)]
async fn leaves_faults_behind(cluster: &Cluster) -> TestResult {
    // What the previous run left is gone before this one starts.
    ensure!(
        cluster.faults().await?.is_empty(),
        "faults left from before"
    );
    for n in cluster.nodes() {
        ensure!(
            n.exec("true").await?.code == 0,
            "{} is not running",
            n.name()
        );
    }
    cluster.partition(&[&["n1"], &["n2"]]).await?;
    cluster.node("n2")?.stop().await?;
    ensure!(!cluster.faults().await?.is_empty());
    Ok(())
}

#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    ignore = "run by the attach self-test, which interrupts it"
)]
async fn interrupted_with_faults_in_place(cluster: &Cluster) -> TestResult {
    cluster.partition(&[&["n1"], &["n2"]]).await?;
    cluster.node("n2")?.stop().await?;
    println!("faults in place");
    // Runs until the self-test interrupts the run (Ctrl-C, SIGTERM).
    std::future::pending::<()>().await;
    Ok(())
}
