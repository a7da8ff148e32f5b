//! kvd, the workspace's own service, built by cargo and placed on the nodes by the spec's
//! `[[binary]]`: writes through the primary reach the followers, and a follower that was
//! killed catches up once it is back.

use harness::prelude::*;

use super::cli::{caught_up, kvd_log, write, PORT};

#[cluster_test(cluster = "kvd3")]
async fn followers_replicate_and_catch_up(cluster: &Cluster) -> TestResult {
    let primary = cluster.node("n1")?;
    let followers = [cluster.node("n2")?, cluster.node("n3")?];

    // The binary on the node is the one cargo built from examples/kvd.
    let version = primary.exec("kvd --version").await?.check()?;
    ensure!(version.out().starts_with("kvd "), "{}", version.out());
    // The [[dir]] template was rendered per node and lost its suffix.
    let conf = followers[0].exec("cat \"$CLUSTER_SIM_WORKDIR/conf/kvd.conf\"").await?.check()?;
    ensure!(
        conf.out().contains(&format!("primary = {}:{PORT}", primary.address())),
        "{}",
        conf.out()
    );

    write(&primary, 1, 20).await?;
    for f in &followers {
        wait_until(Duration::from_secs(20), || caught_up(f, "key20", "value 20", 20))
            .await
            .with_context(|| format!("{} did not replicate", f.name()))?;
    }
    // Followers refuse writes.
    let refused = followers[0]
        .exec(format!("kvd cli 127.0.0.1:{PORT} SET nope 1"))
        .await?;
    ensure!(!refused.success(), "a follower took a write");

    // n3 misses writes while it is down, then catches up from its own log's offset.
    let lagging = &followers[1];
    lagging.kill().await?;
    write(&primary, 21, 30).await?;
    caught_up(&followers[0], "key30", "value 30", 30).await?;
    lagging.start().await?;
    wait_until(Duration::from_secs(30), || caught_up(lagging, "key30", "value 30", 30))
        .await
        .context("the killed follower did not catch up")?;
    let log = kvd_log(lagging).await?;
    ensure!(
        log.contains("following") && log.contains("from offset 20"),
        "n3 did not resume from its own offset: {log}"
    );
    Ok(())
}
