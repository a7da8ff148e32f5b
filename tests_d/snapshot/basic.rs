//! Snapshot and restore: keys written to a 3-node etcd survive `etcdctl snapshot save` and a
//! restore into a new single-node cluster.

use harness::prelude::*;
use harness::ClusterSpec;

/// How many keys the test writes.
const KEYS: usize = 25;

#[cluster_test(cluster = "etcd3")]
async fn save_and_restore(cluster: &Cluster) -> TestResult {
    let n1 = cluster.node("n1")?;
    n1.exec(format!(
        "for i in $(seq -w 1 {KEYS}); do etcdctl put snap/key$i value$i >/dev/null || exit 1; done"
    ))
    .await?
    .check()?;
    let written = keys_and_values(&n1).await?;
    ensure!(
        written.len() == KEYS,
        "wrote {KEYS} keys, read back {}",
        written.len()
    );

    // Save on another member than the one written to: the snapshot is the cluster's, not n1's.
    let n2 = cluster.node("n2")?;
    n2.exec("etcdctl snapshot save /tmp/snap.db")
        .await?
        .check()?;
    n2.exec("etcdctl snapshot status /tmp/snap.db -w json")
        .await?
        .check()?;
    let db = n2.read_file("/tmp/snap.db").await?;
    ensure!(db.len() > 4096, "snapshot is only {} bytes", db.len());

    // A new cluster, made only for the restore; torn down here whatever the outcome.
    let fresh = Cluster::builder(ClusterSpec::inline(1, None)?)
        .name(format!("{}-restore", cluster.name()))
        .up()
        .await?;
    let restored = restore_into(&fresh, &db).await;
    let down = fresh.down().await;
    let restored = restored?;
    down?;
    ensure!(
        restored == written,
        "restored keys differ:\nwritten:  {written:?}\nrestored: {restored:?}"
    );
    Ok(())
}

/// Restores `db` on the new cluster's only node, runs etcd from the restored data directory and
/// returns what it holds under `snap/`.
async fn restore_into(fresh: &Cluster, db: &[u8]) -> anyhow::Result<Vec<(String, String)>> {
    let node = fresh.node("n1")?;
    node.write_file("/tmp/snap.db", db).await?;
    let peer = "http://127.0.0.1:2380";
    node.exec(format!(
        "etcdctl snapshot restore /tmp/snap.db --name restored --data-dir /var/lib/etcd-restored \
         --initial-cluster restored={peer} --initial-advertise-peer-urls {peer}"
    ))
    .await?
    .check()?;
    // Detached, every stream redirected: the exec returns while etcd keeps running.
    node.exec(format!(
        "setsid etcd --name restored --data-dir /var/lib/etcd-restored \
         --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
         --listen-peer-urls {peer} --initial-advertise-peer-urls {peer} \
         --initial-cluster restored={peer} </dev/null >/tmp/etcd.log 2>&1 &"
    ))
    .await?
    .check()?;
    wait_until(Duration::from_secs(30), || async {
        node.exec("etcdctl endpoint health").await?.check()
    })
    .await
    .context("the restored etcd did not become healthy")?;
    keys_and_values(&node).await
}

/// Every `snap/` key with its value, in key order.
async fn keys_and_values(node: &Node) -> anyhow::Result<Vec<(String, String)>> {
    let out = node.exec("etcdctl get --prefix snap/").await?.check()?;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let pairs = lines.chunks_exact(2);
    ensure!(
        pairs.remainder().is_empty(),
        "odd key/value output: {:?}",
        out.stdout
    );
    Ok(pairs
        .map(|kv| (kv[0].to_string(), kv[1].to_string()))
        .collect())
}
