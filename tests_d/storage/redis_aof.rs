//! Redis's append-only file on the fault filesystem (`faulty_dirs`): with `appendfsync no`
//! redis leaves syncing to the OS, so a power cut (`lose_unsynced`) loses acknowledged adds
//! and the set checker names them; with `appendfsync always` it loses none.

use harness::prelude::*;

use history::{Recorder, Set, SetCounts};
use workload::RedisSet;

const ADDS: u64 = 30;

#[cluster_test(cluster = "redis_faulty", requires = ["fuse"], matrix(appendfsync = ["no", "always"]))]
async fn lose_unsynced_loses_what_the_aof_did_not_sync(
    cluster: &Cluster,
    appendfsync: &str,
) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let n1 = cluster.node("n1")?;
    let conf = n1.exec("redis-cli config get appendfsync").await?.check()?;
    ensure!(
        conf.out().lines().nth(1) == Some(appendfsync),
        "redis runs with appendfsync {:?}, not {appendfsync}",
        conf.out()
    );

    // Each add is acknowledged (SADD's reply) before the next one starts.
    for i in 1..=ADDS {
        let p = rec.invoke(0, "add", None, i);
        let out = n1.exec(format!("redis-cli sadd s {i}")).await?;
        if out.success() && out.out().trim() == "1" {
            p.ok_same();
        } else {
            p.fail(out.tail());
        }
    }

    let said = cluster.lose_unsynced("n1").await?;
    println!("lose_unsynced: {said}");
    rec.nemesis(history::OpType::Info, "lose-unsynced", "n1");

    let set = RedisSet {
        key: "s".into(),
        replicas: 0,
    };
    ensure!(set.final_read(&n1, &rec, 1).await, "the final read failed");
    let ops = rec.ops();
    let report = history::check(&ops, &Set)?;
    println!("{report}");
    let counts = report.details::<SetCounts>().cloned().unwrap_or_default();
    ensure!(counts.acknowledged as u64 == ADDS, "not every add was acknowledged: {report}");
    if appendfsync == "always" {
        ensure!(report.valid() && counts.lost == 0, "redis synced every add, yet: {report}");
    } else {
        ensure!(
            !report.valid() && counts.lost as u64 == ADDS,
            "expected all {ADDS} acknowledged adds lost, but: {report}"
        );
    }
    ensure!(counts.unexpected == 0, "elements no one added were read: {report}");
    Ok(())
}
