//! Tests sharing one etcd3 cluster (`share = "etcd3"`): each finds etcd emptied by the spec's
//! `[reuse] reset`, and a marker file outside etcd proves they ran on the same cluster: it holds
//! one line per test of this process that ran before, plus its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use harness::prelude::*;

/// Tests of this file run so far in this process (they take turns on the cluster).
static RAN: AtomicUsize = AtomicUsize::new(0);

async fn take_turn(cluster: &Cluster, me: &str) -> TestResult {
    let n1 = cluster.node("n1")?;
    let left = n1.exec("etcdctl get --prefix shared/ --keys-only").await?.check()?;
    ensure!(left.out().trim().is_empty(), "reset left keys: {}", left.out());
    n1.exec(format!("etcdctl put shared/{me} 1")).await?.check()?;
    let lines = n1
        .exec(format!("echo {me} >> /tmp/shared-marker && wc -l < /tmp/shared-marker"))
        .await?
        .check()?;
    let before = RAN.fetch_add(1, Ordering::SeqCst);
    ensure!(
        lines.out().trim() == (before + 1).to_string(),
        "marker has {} lines after {before} earlier test(s): not one shared cluster",
        lines.out().trim()
    );
    Ok(())
}

#[cluster_test(cluster = "etcd3", share = "etcd3")]
async fn first(cluster: &Cluster) -> TestResult {
    take_turn(cluster, "first").await
}

#[cluster_test(cluster = "etcd3", share = "etcd3")]
async fn second(cluster: &Cluster) -> TestResult {
    take_turn(cluster, "second").await
}

#[cluster_test(cluster = "etcd3", share = "etcd3")]
async fn third(cluster: &Cluster) -> TestResult {
    take_turn(cluster, "third").await
}
