//! Redis loses acknowledged writes in a failover, as its documentation says: clients add to a set
//! on the primary while it is cut off from its replicas, a replica is promoted, the old primary
//! rejoins as a replica of the new one and drops what it took alone. The set checker must find
//! those lost writes: this is the proof that the checker has teeth.

use harness::prelude::*;

use history::{OpType, Recorder, Set, SetCounts};
use workload::{Clients, RedisSet};

/// Acknowledged adds recorded after `since` (nanoseconds into the history).
fn acked_since(rec: &Recorder, since: u64) -> usize {
    rec.ops()
        .iter()
        .filter(|o| o.f == "add" && o.kind == OpType::Ok && o.time > since)
        .count()
}

#[cluster_test(cluster = "redis3", timeout = "2m")]
async fn failover_loses_acknowledged_writes_and_the_checker_sees_it(
    cluster: &Cluster,
) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let (n1, n2, n3) = (cluster.node("n1")?, cluster.node("n2")?, cluster.node("n3")?);
    // Acknowledged on the primary's reply alone (WAIT for 0 replicas): asynchronous replication.
    let set = RedisSet {
        key: "s".into(),
        replicas: 0,
    };
    let clients = Clients {
        clients: 4,
        duration: Duration::from_secs(20),
        op_timeout: Duration::from_secs(2),
        seed: 1,
    };
    let scenario = async {
        // Some adds replicate normally first.
        wait_until(Duration::from_secs(15), || async { acked_since(&rec, 0) >= 20 }).await?;
        let last = rec.ops().last().map_or(0, |o| o.time);
        cluster.partition(&[&["n1"], &["n2", "n3"]]).await?;
        rec.nemesis(OpType::Invoke, "partition", "n1 | n2,n3");
        // The old primary keeps acknowledging adds it can't replicate.
        wait_until(Duration::from_secs(15), || async {
            acked_since(&rec, last) >= 20
        })
        .await?;
        // Fail over: promote n2, point n3 at it, heal, and demote n1 to a replica of n2.
        n2.exec("redis-cli replicaof no one").await?.check()?;
        n3.exec(format!("redis-cli replicaof {} 6379", n2.address()))
            .await?
            .check()?;
        cluster.heal().await?;
        rec.nemesis(OpType::Info, "partition", "healed; n2 promoted");
        n1.exec(format!("redis-cli replicaof {} 6379", n2.address()))
            .await?
            .check()?;
        // n1 has resynced from n2 once its link is up.
        wait_until(Duration::from_secs(30), || async {
            let out = n1.exec("redis-cli info replication").await?.check()?;
            anyhow::Ok(out.out().contains("master_link_status:up"))
        })
        .await?;
        anyhow::Ok(())
    };
    let (_, scenario) = tokio::join!(set.add(&n1, &rec, &clients), scenario);
    scenario?;
    ensure!(
        set.final_read(&n2, &rec, 1_000).await,
        "the final read on n2 failed"
    );

    let ops = rec.ops();
    std::fs::write(dir.join("history.svg"), history::timeline_svg(&ops))?;
    let report = history::check(&ops, &Set)?;
    println!("{report}");
    let counts = report.details::<SetCounts>().cloned().unwrap_or_default();
    ensure!(
        !report.valid() && counts.lost > 0,
        "expected the checker to find acknowledged adds lost in the failover, but: {report}"
    );
    ensure!(
        counts.unexpected == 0,
        "elements no one added were read: {report}"
    );
    Ok(())
}
