//! A matrix test: one trial per combination of cluster size and snapshot threshold, each
//! checking that its values reached the test (typed parameters), the spec (`nodes` sized the
//! cluster) and the template (`params.snapshot_count` in every member's config).

use harness::prelude::*;

#[cluster_test(
    cluster = "etcd_tuned",
    matrix(nodes = [1, 3], snapshot_count = [100, 10000])
)]
async fn sized_and_tuned(cluster: &Cluster, nodes: usize, snapshot_count: u64) -> TestResult {
    let case = harness::case().context("a matrix test knows its case")?;
    ensure!(
        case.name
            .ends_with(&format!("[nodes={nodes},snapshot_count={snapshot_count}]")),
        "case {}",
        case.name
    );
    ensure!(
        cluster.nodes().len() == nodes,
        "{} nodes, not {nodes}",
        cluster.nodes().len()
    );
    let members = cluster
        .node("n1")?
        .exec("etcdctl member list")
        .await?
        .check()?;
    ensure!(
        members.out().lines().count() == nodes,
        "members: {}",
        members.out()
    );
    for node in cluster.nodes() {
        let conf = node
            .exec("cat \"$CLUSTER_SIM_WORKDIR/etcd.yml\"")
            .await?
            .check()?;
        ensure!(
            conf.out()
                .lines()
                .any(|l| l == format!("snapshot-count: {snapshot_count}")),
            "{}: {}",
            node.name(),
            conf.out()
        );
    }
    Ok(())
}
