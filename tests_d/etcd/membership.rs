//! Membership at run time, all under a partition of one node: `etcdctl member add` for a fourth
//! member, which joins the running cluster (`Cluster::add_node`; the template says
//! `initial-cluster-state: existing` for a node added at run time) and gets the writes; then
//! `member remove` of the partitioned old member, whose node leaves with its partition.

use harness::cluster_sim::NodeOptions;
use harness::prelude::*;

/// `etcdctl member list` on `node` (its own endpoint): the members' names, sorted.
async fn members(node: &Node) -> anyhow::Result<Vec<String>> {
    let out = node.exec("etcdctl member list").await?.check()?;
    let mut names: Vec<String> = out
        .stdout_str()?
        .lines()
        .filter_map(|l| l.split(", ").nth(2).map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// The member id of `name`, as `etcdctl member list` on `node` gives it.
async fn member_id(node: &Node, name: &str) -> anyhow::Result<String> {
    let out = node.exec("etcdctl member list").await?.check()?;
    out.stdout_str()?
        .lines()
        .find(|l| l.split(", ").nth(2) == Some(name))
        .and_then(|l| l.split(", ").next())
        .map(str::to_string)
        .with_context(|| format!("no member {name} in {}", out.out()))
}

/// Waits until `node` serves `key` = `value` from its own copy (a serializable read: what the
/// member itself has replicated, not what a leader forwards).
async fn replicated(node: &Node, key: &str, value: &str) -> anyhow::Result<()> {
    wait_until(Duration::from_secs(30), || async {
        let out = node
            .exec(format!(
                "etcdctl get --consistency=s --print-value-only {key}"
            ))
            .await?
            .check()?;
        anyhow::ensure!(out.out() == value, "{} has {:?}", node.name(), out.out());
        anyhow::Ok(())
    })
    .await?;
    Ok(())
}

#[cluster_test(cluster = "etcd3", timeout = "3m")]
async fn member_joins_and_old_one_leaves_under_partition(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec("etcdctl put before-join 1").await?.check()?;
    // n3 is cut off from the others; n1 and n2 keep the quorum of three.
    let cut = cluster.partition(&[&["n3"], &["n1", "n2"]]).await?;
    // Until n1 and n2 have a leader between them (n3 may have led), a change times out.
    wait_until(Duration::from_secs(30), || async {
        n1.exec("etcdctl put under-partition 1").await?.check()?;
        anyhow::Ok(())
    })
    .await?;

    // The new member is announced first, as etcd requires, by the name its node will have:
    // its container answers to it on the cluster network. (etcd's strict check would refuse
    // any change while n3 is unreachable: the fixture's template turns it off.)
    let added = n1
        .exec("etcdctl member add n4 --peer-urls=http://n4:2380")
        .await?;
    ensure!(
        added.success(),
        "member add under the partition: {}{}",
        added.out(),
        added.stderr_lossy()
    );
    let n4 = cluster.add_node(NodeOptions::named("n4")).await?;
    ensure!(
        cluster.nodes().len() == 4,
        "cluster.nodes(): {:?}",
        cluster.nodes()
    );
    // Its template said it joins an existing cluster; the others' files were rendered again.
    let conf = n4.exec("cat $CLUSTER_SIM_WORKDIR/etcd.yml").await?.check()?;
    ensure!(
        conf.out().contains("initial-cluster-state: existing"),
        "{}",
        conf.out()
    );
    let conf = n1.exec("cat $CLUSTER_SIM_WORKDIR/etcd.yml").await?.check()?;
    ensure!(
        conf.out().contains(&format!("n4=http://{}:2380", n4.address())),
        "n1's etcd.yml does not list n4: {}",
        conf.out()
    );
    ensure!(
        members(&n4).await? == ["n1", "n2", "n3", "n4"],
        "member list on n4: {:?}",
        members(&n4).await?
    );

    // Writes before and after it joined reach it.
    replicated(&n4, "before-join", "1").await?;
    n1.exec("etcdctl put after-join 2").await?.check()?;
    replicated(&n4, "after-join", "2").await?;
    // The fault verbs see it too.
    let faults = cluster.faults().await?;
    ensure!(faults.len() == 1, "faults: {faults:?}");

    // The partitioned old member leaves: etcd first, then its node, with its partition.
    let id = member_id(&n1, "n3").await?;
    n1.exec(format!("etcdctl member remove {id}"))
        .await?
        .check()?;
    let ended = cluster.remove_node("n3").await?;
    ensure!(
        ended.iter().any(|f| f.id == cut.id),
        "the partition of n3 did not end with it: {ended:?}"
    );
    let names: Vec<String> = cluster
        .nodes()
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    ensure!(names == ["n1", "n2", "n4"], "cluster.nodes(): {names:?}");
    n4.exec("etcdctl put after-leave 3").await?.check()?;
    for n in cluster.nodes() {
        replicated(&n, "after-leave", "3").await?;
        ensure!(
            members(&n).await? == ["n1", "n2", "n4"],
            "member list on {}: {:?}",
            n.name(),
            members(&n).await?
        );
    }
    Ok(())
}
