//! A node added at run time gets the spec's `faulty_dirs`: its `data` is on the fault
//! filesystem, so a power cut (`lose_unsynced`) drops what it wrote without syncing and keeps
//! what it synced. `NodeOptions::faulty_dirs([])` adds one on plain directories instead.

use harness::cluster_sim::NodeOptions;
use harness::prelude::*;

/// The node's fault filesystem mounts, as /proc/mounts lists them.
async fn faultfs_mounts(node: &Node) -> anyhow::Result<String> {
    let out = node
        .exec("grep '^cluster-sim-faultfs ' /proc/mounts || true")
        .await?
        .check()?;
    Ok(out.out().to_string())
}

#[cluster_test(cluster = "faulty1", requires = ["fuse"])]
async fn an_added_node_mounts_the_specs_faulty_dirs(cluster: &Cluster) -> TestResult {
    let n2 = cluster.add_node(NodeOptions::named("n2")).await?;
    let mounts = faultfs_mounts(&n2).await?;
    ensure!(
        mounts.contains("/data fuse"),
        "n2's data is not on the fault filesystem: {mounts:?}"
    );
    ensure!(
        cluster.capabilities("n2").await?.fuse,
        "n2 probed without FUSE"
    );
    n2.exec("printf synced > data/kept && sync data/kept && printf unsynced > data/lost")
        .await?
        .check()?;
    let said = cluster.lose_unsynced("n2").await?;
    println!("lose_unsynced n2: {said}");
    let n2 = cluster.node("n2")?;
    let kept = n2.exec("cat data/kept").await?.check()?;
    ensure!(kept.out() == "synced", "the synced file holds {:?}", kept.out());
    // Creating the file reached the disk; its unsynced bytes did not.
    let lost = n2.exec("cat data/lost 2>/dev/null").await?;
    ensure!(
        lost.out().is_empty(),
        "the unsynced write survived the power cut: {:?}",
        lost.out()
    );

    // One of its own: plain directories.
    let n3 = cluster
        .add_node(NodeOptions::named("n3").faulty_dirs(Vec::<String>::new()))
        .await?;
    let mounts = faultfs_mounts(&n3).await?;
    ensure!(mounts.is_empty(), "n3 mounts {mounts:?}");
    Ok(())
}
