//! A shared group on the memory backend (run with one thread so the tests take their turns in
//! name order): the first test provisions the cluster, the second reuses it after the reset,
//! the third fails (so the cluster is discarded), and the fourth gets a new one.

use harness::prelude::*;

async fn exists(cluster: &Cluster, path: &str) -> anyhow::Result<bool> {
    let out = cluster.node("n1")?.exec(format!("test -e {path}")).await?;
    Ok(out.code == 0)
}

#[cluster_test(cluster = "examples/memory_suite/shared.toml", share = "memory-group")]
async fn share_1_provisions(cluster: &Cluster) -> TestResult {
    ensure!(!exists(cluster, "generation").await?, "not a new cluster");
    cluster
        .node("n1")?
        .exec("touch generation marker")
        .await?
        .check()?;
    Ok(())
}

#[cluster_test(cluster = "examples/memory_suite/shared.toml", share = "memory-group")]
async fn share_2_reuses_after_reset(cluster: &Cluster) -> TestResult {
    ensure!(
        exists(cluster, "generation").await?,
        "the cluster was not reused"
    );
    ensure!(!exists(cluster, "marker").await?, "the reset did not run");
    Ok(())
}

#[cluster_test(cluster = "examples/memory_suite/shared.toml", share = "memory-group")]
async fn share_3_fails(cluster: &Cluster) -> TestResult {
    ensure!(
        exists(cluster, "generation").await?,
        "the cluster was not reused"
    );
    bail!("deliberate failure: the group's cluster must be replaced")
}

#[cluster_test(cluster = "examples/memory_suite/shared.toml", share = "memory-group")]
async fn share_4_gets_a_new_cluster(cluster: &Cluster) -> TestResult {
    ensure!(
        !exists(cluster, "generation").await?,
        "the failed test's cluster was handed on"
    );
    Ok(())
}
