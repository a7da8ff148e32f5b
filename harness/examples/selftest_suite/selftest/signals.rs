//! Small clusters that keep a run busy through provisioning, body and teardown, for the
//! signal self-test (`harness/tests/signals.rs`): it interrupts runs of these at random points.

use harness::prelude::*;

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run by the signal self-test"
)]
async fn one_node(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("sleep 1").await?.check()?;
    Ok(())
}

#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    ignore = "run by the signal self-test"
)]
async fn two_nodes(cluster: &Cluster) -> TestResult {
    cluster.node("n2")?.exec("sleep 1").await?.check()?;
    Ok(())
}

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run by the signal self-test"
)]
async fn quick(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("true").await?.check()?;
    Ok(())
}

#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    ignore = "run by the signal self-test"
)]
async fn another(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("sleep 1").await?.check()?;
    Ok(())
}
