//! Fresh clusters on the memory backend: one per outcome the harness reports, and the
//! backend's capabilities seen from inside a test.

use harness::prelude::*;

#[cluster_test(nodes = 1)]
async fn passes(cluster: &Cluster) -> TestResult {
    let out = cluster
        .node("n1")?
        .exec("echo hello; test -d \"$CLUSTER_SIM_WORKDIR\"")
        .await?
        .check()?;
    ensure!(out.out() == "hello");
    Ok(())
}

#[cluster_test(nodes = 1)]
async fn fails_command(cluster: &Cluster) -> TestResult {
    cluster
        .node("n1")?
        .exec("echo partial-output; echo boom >&2; exit 3")
        .await?
        .check()?;
    Ok(())
}

#[cluster_test(nodes = 1, timeout = "2s")]
async fn times_out(cluster: &Cluster) -> TestResult {
    cluster.node("n1")?.exec("sleep 30").await?.check()?;
    Ok(())
}

#[cluster_test(nodes = 2)]
async fn capabilities(cluster: &Cluster) -> TestResult {
    let backend = cluster.backend();
    ensure!(backend.kind() == "memory", "on {}", backend.kind());
    // Lookup finds this cluster without its handle.
    let lookup = backend.lookup().context("no lookup")?;
    let nodes = lookup.nodes(cluster.name()).await?;
    ensure!(nodes.len() == 2 && nodes[0].name == "n1", "{nodes:?}");
    // The janitor never takes a live run's cluster.
    let reaped = backend.janitor().context("no janitor")?.reap().await?;
    ensure!(
        !reaped.removed.iter().any(|c| c == cluster.name()),
        "{reaped:?}"
    );
    // No fault capability: one clear error.
    let e = cluster
        .isolate("n1")
        .await
        .err()
        .context("a partition on memory")?;
    ensure!(
        e.to_string()
            .contains("not available on the memory backend"),
        "{e}"
    );
    Ok(())
}

/// A command past its own deadline: the backend kills its process group. When that kill fails
/// the library warns, and the warning belongs in this test's log (the self-test provokes it
/// with a `PATH` that has no `kill`).
#[cluster_test(nodes = 1)]
async fn command_past_its_deadline(cluster: &Cluster) -> TestResult {
    let out = cluster
        .node("n1")?
        .cmd("sleep 1")
        .timeout(std::time::Duration::from_millis(100))
        .run()
        .await?;
    ensure!(out.check().is_err(), "`sleep 1` beat a 100ms deadline");
    Ok(())
}
