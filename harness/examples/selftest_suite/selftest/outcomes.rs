//! One test per outcome the harness must report. Clusters are a single idle node so the whole
//! suite runs in seconds.

use harness::prelude::*;

#[cluster_test(nodes = 1, image = "cluster-sim/node")]
async fn passes(cluster: &Cluster) -> TestResult {
    let out = cluster.node("n1")?.exec("echo hello").await?.check()?;
    ensure!(out.out() == "hello");
    Ok(())
}

#[cluster_test(nodes = 1, image = "cluster-sim/node")]
async fn fails_command(cluster: &Cluster) -> TestResult {
    cluster
        .node("n1")?
        .exec("echo partial-output; echo boom >&2; exit 3")
        .await?
        .check()?;
    Ok(())
}

#[cluster_test(nodes = 1, image = "cluster-sim/node")]
async fn panics(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("true").await?.check()?;
    panic!("deliberate panic in a test");
}

#[cluster_test(nodes = 1, image = "cluster-sim/node", timeout = "2s")]
async fn times_out(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("sleep 30").await?.check()?;
    Ok(())
}

#[cluster_test(cluster = "examples/selftest_suite/bad.toml")]
async fn bad_spec(_cluster: &Cluster) -> TestResult {
    Ok(())
}

#[cluster_test(nodes = 1, image = "cluster-sim/no-such-image")]
async fn missing_image(_cluster: &Cluster) -> TestResult {
    Ok(())
}

#[cluster_test]
async fn plain_passes() -> TestResult {
    Ok(())
}

#[cluster_test]
async fn prints_and_fails() -> TestResult {
    println!("to stdout {}", 1);
    eprintln!("to stderr");
    bail!("failed after printing")
}

#[cluster_test(ignore = "skipped on purpose")]
async fn ignored() -> TestResult {
    bail!("an ignored test ran")
}

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    ignore = "run only by the interrupt self-test"
)]
async fn slow(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("sleep 120").await?.check()?;
    Ok(())
}

/// Holds two nodes for about a second and prints when (run only by the node-budget self-test,
/// which starts two processes of this suite sharing a budget of three nodes).
#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    ignore = "run only by the node-budget self-test"
)]
async fn holds_two_nodes(cluster: &Cluster) -> TestResult {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    };
    println!("held from {}", now());
    cluster.node("n1")?.exec("sleep 1").await?.check()?;
    println!("held until {}", now());
    Ok(())
}
