//! Redis replication: writes on the primary reach both replicas; a replica that was down while
//! the primary took more writes catches up once it is back.

use harness::prelude::*;

async fn dbsize(node: &Node) -> anyhow::Result<usize> {
    let out = node.exec("redis-cli dbsize").await?.check()?;
    out.out()
        .parse()
        .with_context(|| format!("{}: dbsize said {:?}", node.name(), out.out()))
}

async fn converged(node: &Node, keys: usize, last: &str) -> anyhow::Result<()> {
    let n = dbsize(node).await?;
    anyhow::ensure!(n == keys, "{} holds {n} keys, expected {keys}", node.name());
    let v = node
        .exec(format!("redis-cli get key:{last}"))
        .await?
        .check()?;
    anyhow::ensure!(
        v.out() == format!("val{last}"),
        "{}: key:{last} = {:?}",
        node.name(),
        v.out()
    );
    Ok(())
}

async fn write_range(primary: &Node, from: usize, to: usize) -> TestResult {
    primary
        .exec(format!(
            "for i in $(seq {from} {to}); do redis-cli set key:$i val$i >/dev/null || exit 1; done"
        ))
        .await?
        .check()?;
    Ok(())
}

#[cluster_test(cluster = "redis3")]
async fn replicas_converge_and_catch_up(cluster: &Cluster) -> TestResult {
    let primary = cluster.node("n1")?;
    let replicas = [cluster.node("n2")?, cluster.node("n3")?];

    let role = primary.exec("redis-cli info replication").await?.check()?;
    ensure!(
        role.out().contains("role:master"),
        "n1 is not the primary: {}",
        role.out()
    );

    write_range(&primary, 1, 100).await?;
    for r in &replicas {
        wait_until(Duration::from_secs(20), || converged(r, 100, "100"))
            .await
            .with_context(|| format!("{} did not converge", r.name()))?;
    }

    // n3 misses writes while it is down, then catches up from the primary.
    let lagging = &replicas[1];
    lagging.stop().await?;
    write_range(&primary, 101, 150).await?;
    converged(&replicas[0], 150, "150").await?;
    lagging.start().await?;
    wait_until(Duration::from_secs(30), || converged(lagging, 150, "150"))
        .await
        .context("the restarted replica did not catch up")?;

    let info = primary.exec("redis-cli info replication").await?.check()?;
    ensure!(
        info.out().contains("connected_slaves:2"),
        "primary does not see both replicas: {}",
        info.out()
    );
    Ok(())
}
