//! Snapshot and restore: keys written to a 3-node etcd survive `etcdctl snapshot save`, a copy
//! of the snapshot to another node, and a restore into a new single-member etcd cluster there.
//!
//! The restored cluster runs beside the original on other ports, inside the node's working
//! directory, so the test runs unchanged on containers and on long-lived ssh hosts.

use harness::prelude::*;

/// How many keys the test writes.
const KEYS: usize = 25;

/// Client and peer URLs of the restored etcd (the original members use 2379 and 2380).
const RESTORED_CLIENT: &str = "http://127.0.0.1:12379";
const RESTORED_PEER: &str = "http://127.0.0.1:12380";

#[cluster_test(cluster = "etcd3")]
async fn save_and_restore(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec(format!(
        "for i in $(seq -w 1 {KEYS}); do etcdctl put snap/key$i value$i >/dev/null || exit 1; done"
    ))
    .await?
    .check()?;
    let written = keys_and_values(&n1, None).await?;
    ensure!(
        written.len() == KEYS,
        "wrote {KEYS} keys, read back {}",
        written.len()
    );

    // Save on another member than the one written to: the snapshot is the cluster's, not n1's.
    let n2 = cluster.node("n2")?;
    n2.exec("etcdctl snapshot save \"$CLUSTER_SIM_WORKDIR/snap.db\"")
        .await?
        .check()?;
    let db = n2
        .read_file(&format!("{}/snap.db", workdir(&n2).await?))
        .await?;
    ensure!(db.len() > 4096, "snapshot is only {} bytes", db.len());

    // Restore on n3 into a new cluster; stop it whatever the outcome.
    let n3 = cluster.node("n3")?;
    let restored = restore_into(&n3, &db).await;
    let stopped = n3
        .exec("kill $(cat \"$CLUSTER_SIM_WORKDIR/restored.pid\") 2>/dev/null; true")
        .await;
    let restored = restored?;
    stopped?;
    ensure!(
        restored == written,
        "restored keys differ:\nwritten:  {written:?}\nrestored: {restored:?}"
    );
    Ok(())
}

async fn workdir(node: &Node) -> anyhow::Result<String> {
    Ok(node
        .exec("printf %s \"$CLUSTER_SIM_WORKDIR\"")
        .await?
        .check()?
        .stdout_str()?
        .to_string())
}

/// Restores `db` on `node` as a new single-member cluster, runs etcd from the restored data
/// directory and returns what it holds under `snap/`.
async fn restore_into(node: &Node, db: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    let dir = workdir(node).await?;
    node.write_file(&format!("{dir}/copied.db"), db).await?;
    let out = node
        .exec(format!(
            "etcdctl snapshot restore {dir}/copied.db --name restored --data-dir {dir}/restored \
             --initial-cluster restored={RESTORED_PEER} --initial-advertise-peer-urls {RESTORED_PEER} \
             --initial-cluster-token restored"
        ))
        .await?
        .check()?;
    ensure!(
        !out.err().contains("error"),
        "restore complained: {}",
        out.err()
    );
    // Detached, every stream redirected: the exec returns while etcd keeps running.
    node.exec(format!(
        "setsid etcd --name restored --data-dir {dir}/restored \
         --listen-client-urls {RESTORED_CLIENT} --advertise-client-urls {RESTORED_CLIENT} \
         --listen-peer-urls {RESTORED_PEER} --initial-advertise-peer-urls {RESTORED_PEER} \
         --initial-cluster restored={RESTORED_PEER} </dev/null >{dir}/restored.log 2>&1 & \
         echo $! > {dir}/restored.pid"
    ))
    .await?
    .check()?;
    wait_until(Duration::from_secs(30), || async {
        node.exec(format!(
            "etcdctl --endpoints {RESTORED_CLIENT} endpoint health"
        ))
        .await?
        .check()
        .map(|_| ())
    })
    .await
    .context("the restored etcd did not become healthy")?;
    // It is a new cluster: one member, not the original three.
    let members = node
        .exec(format!("etcdctl --endpoints {RESTORED_CLIENT} member list"))
        .await?
        .check()?;
    ensure!(
        members.out().lines().count() == 1,
        "restored cluster has members: {}",
        members.out()
    );
    keys_and_values(node, Some(RESTORED_CLIENT)).await
}

/// Every `snap/` key with its value, in key order.
async fn keys_and_values(
    node: &Node,
    endpoint: Option<&str>,
) -> anyhow::Result<Vec<(String, String)>> {
    let endpoints = endpoint
        .map(|e| format!("--endpoints {e} "))
        .unwrap_or_default();
    let out = node
        .exec(format!("etcdctl {endpoints}get --prefix snap/"))
        .await?
        .check()?;
    // Keys and values are text: anything else is an error naming node and command.
    let lines: Vec<&str> = out.stdout_str()?.lines().collect();
    let pairs = lines.chunks_exact(2);
    ensure!(
        pairs.remainder().is_empty(),
        "odd key/value output: {:?}",
        out.out()
    );
    Ok(pairs
        .map(|kv| (kv[0].to_string(), kv[1].to_string()))
        .collect())
}
