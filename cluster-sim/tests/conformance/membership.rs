//! Nodes joining and leaving a running cluster (`Cluster::add_node`, `remove_node`), the same
//! on every backend with the membership capability: docker places the node on the cluster's
//! network, ssh on a spare inventory host (and says so clearly when none is left).

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cluster_sim_core::{Cluster, NodeOptions};

use super::{spec, wait_for, Target};

/// Two idle nodes, each with a file listing the members, rendered again when one joins or
/// leaves; ready once the file is in place.
const MEMBERS: &str = r#"
nodes = 2

[service]
command = "exec sleep 1000000"

[ready]
command = "test -s \"$CLUSTER_SIM_WORKDIR/peers\""
timeout = "30s"

[[file]]
template = "members/peers.tmpl"
dest = "peers"
rerender = true
"#;

fn names(c: &Cluster) -> Vec<String> {
    c.nodes().iter().map(|n| n.name().to_string()).collect()
}

async fn peers(c: &Cluster, node: &str) -> Result<String> {
    let n = c.node(node)?;
    Ok(n.exec("cat \"$CLUSTER_SIM_WORKDIR/peers\"")
        .await?
        .check()?
        .out()
        .to_string())
}

async fn workdir(c: &Cluster, node: &str) -> Result<String> {
    Ok(c.node(node)?
        .exec("echo \"$CLUSTER_SIM_WORKDIR\"")
        .await?
        .check()?
        .out()
        .to_string())
}

/// A node joins (its templates and the others' `rerender` ones see it, the fault verbs take
/// it), leaves (its partition ends with it, nothing of it is left), joins again; then the
/// backend's limit: docker takes another node, an ssh inventory of three hosts has none spare.
pub async fn nodes_join_and_leave<T: Target>(t: &T) -> Result<()> {
    let c = t.up(Cluster::builder(spec(MEMBERS)?)).await?;
    let r = join_and_leave(t, &c).await;
    let last: Vec<(String, String)> = {
        let mut v = Vec::new();
        for n in names(&c) {
            v.push((n.clone(), workdir(&c, &n).await.unwrap_or_default()));
        }
        v
    };
    let down = c.down().await;
    r?;
    down?;
    for (n, w) in last {
        ensure!(
            !t.leftovers(c.name(), &n, &w).await?,
            "node {n} ({w}) left behind after teardown"
        );
    }
    Ok(())
}

async fn join_and_leave<T: Target>(t: &T, c: &Cluster) -> Result<()> {
    let n3 = c.add_node(NodeOptions::named("n3")).await?;
    ensure!(names(c) == ["n1", "n2", "n3"], "nodes: {:?}", names(c));
    let a = |n: &str| -> Result<String> { Ok(c.node(n)?.address().to_string()) };
    let all = format!("n1@{},n2@{},n3@{}", a("n1")?, a("n2")?, a("n3")?);
    let mine = peers(c, "n3").await?;
    ensure!(
        mine == format!("me=n3 added=yes\npeers={all}"),
        "n3's own file: {mine:?}"
    );
    let theirs = peers(c, "n1").await?;
    ensure!(
        theirs == format!("me=n1 added=no\npeers={all}"),
        "n1's file was not rendered again: {theirs:?}"
    );
    ensure!(n3.exec("true").await?.success(), "exec on the new node");

    // Errors name the cluster and the node.
    let e = c.add_node(NodeOptions::named("n1")).await.unwrap_err();
    ensure!(e.to_string().contains("already has a node n1"), "{e}");
    let e = c.remove_node("n9").await.unwrap_err();
    ensure!(e.to_string().contains("no node \"n9\""), "{e}");

    // Fault verbs see the new node; its partition ends when it leaves.
    let cut = c.partition(&[&["n1"], &["n3"]]).await?;
    let w3 = workdir(c, "n3").await?;
    let ended = c.remove_node("n3").await?;
    ensure!(
        ended.iter().any(|f| f.id == cut.id),
        "the partition with n3 did not end with it: {ended:?}"
    );
    ensure!(
        c.faults().await?.is_empty(),
        "faults left: {:?}",
        c.faults().await?
    );
    ensure!(names(c) == ["n1", "n2"], "nodes: {:?}", names(c));
    ensure!(
        !t.leftovers(c.name(), "n3", &w3).await?,
        "n3 ({w3}) left behind after remove_node"
    );
    let back = format!("me=n1 added=no\npeers=n1@{},n2@{}", a("n1")?, a("n2")?);
    wait_for("n1's file without n3", Duration::from_secs(10), || async {
        (peers(c, "n1").await.ok()? == back).then_some(())
    })
    .await?;

    // Joins again under the same name; then one more.
    c.add_node(NodeOptions::named("n3")).await?;
    let more = c.add_node(NodeOptions::default()).await;
    if t.kind() == "ssh" {
        let e = more
            .err()
            .context("a fourth node on a three-host inventory")?;
        ensure!(e.to_string().contains("no spare host"), "{e}");
        ensure!(names(c) == ["n1", "n2", "n3"], "nodes: {:?}", names(c));
    } else {
        let n4 = more?;
        ensure!(n4.name() == "n4", "default name {}", n4.name());
        ensure!(
            names(c) == ["n1", "n2", "n3", "n4"],
            "nodes: {:?}",
            names(c)
        );
    }
    Ok(())
}
