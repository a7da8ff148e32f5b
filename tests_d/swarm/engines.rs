//! One cluster across several Docker engines (`CLUSTER_SIM_BACKEND=swarm`, with the engines
//! file of `cluster-sim lab engines 2`): nodes are spread over the engines, reach each other by
//! name across them, and a partition between nodes on different engines cuts them (the same
//! nftables rules inside the nodes as on one engine). On one engine (docker) the same tests
//! run and the placement check is skipped.

use harness::prelude::*;

/// The engine (`place` on swarm) of each node, from the backend's lookup.
async fn engines_of(cluster: &Cluster) -> anyhow::Result<Vec<(String, String)>> {
    let backend = cluster.backend();
    let lookup = backend
        .lookup()
        .context("the backend can't list a cluster's nodes")?;
    Ok(lookup
        .nodes(cluster.name())
        .await?
        .into_iter()
        .map(|n| (n.name, n.place))
        .collect())
}

/// Whether `from` reaches `to` by name within a second.
async fn reaches(cluster: &Cluster, from: &str, to: &str) -> anyhow::Result<bool> {
    let out = cluster
        .node(from)?
        .exec(format!("ping -c 1 -W 1 {to}"))
        .await?;
    Ok(out.code == 0)
}

#[cluster_test(nodes = 3, timeout = "3m")]
async fn a_partition_cuts_nodes_on_different_engines(cluster: &Cluster) -> TestResult {
    let places = engines_of(cluster).await?;
    if cluster.backend_kind() == "swarm" {
        let mut engines: Vec<&str> = places.iter().map(|(_, e)| e.as_str()).collect();
        engines.sort_unstable();
        engines.dedup();
        ensure!(
            engines.len() >= 2,
            "spread placed every node on one engine: {places:?}"
        );
    }
    // n1 and n2 sit on different engines under spread (each node goes to the least used one).
    let (e1, e2) = (&places[0].1, &places[1].1);
    ensure!(
        cluster.backend_kind() != "swarm" || e1 != e2,
        "n1 and n2 share engine {e1}"
    );
    // Names resolve and packets flow across engines.
    for (from, to) in [("n1", "n2"), ("n2", "n3"), ("n3", "n1")] {
        ensure!(reaches(cluster, from, to).await?, "{from} can't reach {to}");
    }
    cluster.partition(&[&["n1"], &["n2", "n3"]]).await?;
    ensure!(
        !reaches(cluster, "n1", "n2").await?,
        "n1 ({e1}) still reaches n2 ({e2}) across the partition"
    );
    ensure!(!reaches(cluster, "n2", "n1").await?, "n2 still reaches n1");
    ensure!(reaches(cluster, "n2", "n3").await?, "n2 and n3 were cut too");
    cluster.heal().await?;
    ensure!(
        reaches(cluster, "n1", "n2").await?,
        "n1 can't reach n2 after heal"
    );
    Ok(())
}

#[cluster_test(cluster = "kvd3", timeout = "3m")]
async fn binaries_are_copied_to_every_engine(cluster: &Cluster) -> TestResult {
    // `[[binary]]` on engines that can't bind this machine's files: each node has its copy.
    for node in cluster.nodes() {
        let out = node.exec("kvd --version").await?.check()?;
        ensure!(out.out().starts_with("kvd "), "{}: {}", node.name(), out.out());
    }
    Ok(())
}
