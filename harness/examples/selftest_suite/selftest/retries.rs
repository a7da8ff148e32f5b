//! Tests that need retries, for the retry self-test (`harness/tests/report.rs`): one fails its
//! first attempt and passes its second (flaky), one fails every attempt.

use std::sync::atomic::{AtomicU32, Ordering};

use harness::prelude::*;

/// Attempts of `flaky` so far in this run (attempts run in the same process).
static FLAKY_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[cluster_test(
    nodes = 1,
    image = "cluster-sim/node",
    retries = 2,
    ignore = "run by the retry self-test"
)]
async fn flaky(cluster: &Cluster) -> TestResult {
    let attempt = FLAKY_ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    let code = if attempt == 1 { 4 } else { 0 };
    cluster
        .node("n1")?
        .exec(format!("echo attempt {attempt}; exit {code}"))
        .await?
        .check()?;
    Ok(())
}

#[cluster_test(
    nodes = 2,
    image = "cluster-sim/node",
    retries = 1,
    ignore = "run by the retry self-test"
)]
async fn always_fails(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("echo fine").await?.check()?;
    cluster
        .node("n2")?
        .exec("echo broken >&2; exit 5")
        .await?
        .check()?;
    Ok(())
}
