//! One test per phase a panic can strike, for the panic self-test: it runs them with
//! `CLUSTER_SIM_INJECT_PANIC` naming each test's phase and checks that every one is reported
//! as an `<error type="panic">` with its artifacts, and that Docker keeps nothing.

use harness::prelude::*;

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run by the panic self-test"
)]
async fn in_provision(_cluster: &Cluster) -> TestResult {
    Ok(())
}

#[cluster_test(
    cluster = "examples/selftest_suite/ready.toml",
    ignore = "run by the panic self-test"
)]
async fn in_ready(_cluster: &Cluster) -> TestResult {
    Ok(())
}

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run by the panic self-test"
)]
async fn in_body(_cluster: &Cluster) -> TestResult {
    Ok(())
}

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run by the panic self-test"
)]
async fn in_teardown(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("true").await?.check()?;
    Ok(())
}
