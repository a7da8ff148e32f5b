//! kvd with and without `fsync`, its data directory on the fault filesystem (`faulty_dirs`):
//! a power cut on the primary (`lose_unsynced`) loses every acknowledged write kvd did not
//! sync, and the set checker names them; with `fsync = true` it loses none.

use harness::prelude::*;

use history::{Recorder, Set, SetCounts};
use serde_json::Value;

const PORT: u16 = 7400;
const ADDS: u64 = 30;

/// The elements `s1..sN` the primary holds (one exec for the whole read).
async fn present(node: &Node) -> anyhow::Result<Vec<u64>> {
    let out = node
        .exec(format!(
            "for i in $(seq 1 {ADDS}); do printf '%s ' $i; kvd cli 127.0.0.1:{PORT} GET s$i; done"
        ))
        .await?
        .check()?;
    Ok(out
        .out()
        .lines()
        .filter_map(|l| {
            let (i, reply) = l.split_once(' ')?;
            reply.starts_with("VALUE").then(|| i.parse().ok())?
        })
        .collect())
}

#[cluster_test(cluster = "kvd_faulty", requires = ["fuse"], matrix(fsync = [false, true]))]
async fn lose_unsynced_loses_exactly_the_writes_kvd_did_not_sync(
    cluster: &Cluster,
    fsync: bool,
) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let primary = cluster.node("n1")?;
    let conf = primary.exec("cat conf/kvd.conf").await?.check()?;
    ensure!(
        conf.out().contains(&format!("fsync = {fsync}")),
        "kvd.conf does not say fsync = {fsync}: {}",
        conf.out()
    );

    // Every add is acknowledged by kvd ("OK n") before the next one starts.
    for i in 1..=ADDS {
        let p = rec.invoke(0, "add", None, i);
        let out = primary
            .exec(format!("kvd cli 127.0.0.1:{PORT} SET s{i} 1"))
            .await?;
        if out.success() && out.out().starts_with("OK") {
            p.ok_same();
        } else {
            p.fail(out.tail());
        }
    }
    ensure!(present(&primary).await?.len() as u64 == ADDS, "not every add is readable before the power cut");

    let said = cluster.lose_unsynced("n1").await?;
    println!("lose_unsynced: {said}");
    rec.nemesis(history::OpType::Info, "lose-unsynced", "n1");

    let p = rec.invoke(1, "read", None, Value::Null);
    let held = present(&primary).await?;
    p.ok(Value::Array(held.iter().copied().map(Value::from).collect()));

    let ops = rec.ops();
    let report = history::check(&ops, &Set)?;
    println!("{report}");
    let counts = report.details::<SetCounts>().cloned().unwrap_or_default();
    ensure!(counts.acknowledged as u64 == ADDS, "not every add was acknowledged: {report}");
    if fsync {
        ensure!(report.valid() && counts.lost == 0, "kvd synced every write, yet: {report}");
        ensure!(held.len() as u64 == ADDS, "the primary holds only {held:?}");
    } else {
        // Nothing was synced: every acknowledged write is gone, and the checker says so.
        ensure!(held.is_empty(), "the primary still holds {held:?} after the power cut");
        ensure!(
            !report.valid() && counts.lost as u64 == ADDS,
            "expected all {ADDS} acknowledged adds lost, but: {report}"
        );
        let text = report.to_string();
        ensure!(text.contains("lost"), "the report does not name the lost adds: {text}");
    }
    Ok(())
}
