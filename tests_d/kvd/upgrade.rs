//! Upgrading kvd one node at a time, from the release that speaks replication protocol 1 (a git
//! commit of this repository, `rev` in fixtures/clusters/kvd_upgrade.toml) to the workspace's
//! (protocol 2, checksummed records): mixed versions replicate in both directions, a rolling
//! upgrade under client load loses no acknowledged write, and a downgrade below the protocol a
//! node's data was written with fails with kvd's own error.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use harness::prelude::*;

use history::{OpType, Recorder, Set, SetCounts};

use super::cli::{caught_up, kv, kvd_log, write, PORT};

/// The protocol the node's kvd binary speaks, from `kvd --version`.
async fn protocol(node: &Node) -> anyhow::Result<String> {
    let out = node.exec("kvd --version").await?.check()?;
    let v = out.out();
    v.split("(protocol ")
        .nth(1)
        .map(|p| p.trim_end_matches(')').to_string())
        .with_context(|| format!("{}: `kvd --version` said {v:?}", node.name()))
}

#[cluster_test(cluster = "kvd_upgrade")]
async fn old_and_new_versions_replicate_both_ways(cluster: &Cluster) -> TestResult {
    let (n1, n2, n3) = (cluster.node("n1")?, cluster.node("n2")?, cluster.node("n3")?);
    // The spec put the old build on every node.
    for n in [&n1, &n2, &n3] {
        ensure!(n.version("kvd").as_deref() == Some("old"), "{}: {:?}", n.name(), n.version("kvd"));
        ensure!(protocol(n).await? == "1", "{} does not run the protocol-1 build", n.name());
    }
    write(&n1, 1, 10).await?;

    // A new follower replicates from the old primary, in protocol 1.
    n2.set_version("kvd", "new").await?;
    ensure!(protocol(&n2).await? == "2", "n2 was not upgraded");
    write(&n1, 11, 20).await?;
    for f in [&n2, &n3] {
        wait_until(Duration::from_secs(20), || caught_up(f, "key20", "value 20", 20))
            .await
            .with_context(|| format!("{} did not replicate from the old primary", f.name()))?;
    }
    let log = kvd_log(&n2).await?;
    ensure!(
        log.contains("refused protocol 2") && log.contains("in protocol 1"),
        "n2 did not fall back to protocol 1 with the old primary: {log}"
    );

    // Then the primary: the old follower n3 replicates from the new primary in protocol 1, the
    // new follower n2 in protocol 2.
    n1.set_version("kvd", "new").await?;
    write(&n1, 21, 30).await?;
    for f in [&n2, &n3] {
        wait_until(Duration::from_secs(20), || caught_up(f, "key30", "value 30", 30))
            .await
            .with_context(|| format!("{} did not replicate from the new primary", f.name()))?;
    }
    let log = kvd_log(&n1).await?;
    ensure!(
        log.contains(&format!("follower {}:", n3.address())) && log.contains("in protocol 1"),
        "the new primary did not serve the old follower in protocol 1: {log}"
    );
    ensure!(
        log.contains("from offset 20 in protocol 2"),
        "the new primary did not serve the new follower in protocol 2: {log}"
    );
    ensure!(
        cluster.versions("kvd")
            == [("n1", "new"), ("n2", "new"), ("n3", "old")]
                .map(|(n, v)| (n.to_string(), v.to_string())),
        "{:?}",
        cluster.versions("kvd")
    );
    Ok(())
}

/// How a `kvd cli SET` ended: acknowledged, certainly not applied, or unknown.
enum Outcome {
    Ok,
    Fail(String),
    Unknown(String),
}

async fn add(primary: &Node, i: u64) -> Outcome {
    let r = primary
        .cmd(format!("kvd cli 127.0.0.1:{PORT} SET w{i} {i}"))
        .timeout(Duration::from_secs(5))
        .run()
        .await;
    match r {
        Ok(o) if o.success() && o.out().starts_with("OK ") => Outcome::Ok,
        Ok(o) => {
            let said = format!("{} {}", o.out(), o.err()).trim().to_string();
            // Refused before anything was sent, or refused by the server: not applied.
            if said.contains("Connection refused") || said.starts_with("ERR") {
                Outcome::Fail(said)
            } else {
                Outcome::Unknown(said)
            }
        }
        // The node restarting under the command: it may have reached the server.
        Err(e) => Outcome::Unknown(e.to_string()),
    }
}

/// The elements `w0..w<n>` a node holds, in one command.
async fn read_all(node: &Node, n: u64) -> anyhow::Result<Vec<u64>> {
    let out = node
        .cmd(format!(
            "i=0; while [ $i -lt {n} ]; do printf '%s ' $i; kvd cli 127.0.0.1:{PORT} GET w$i; i=$((i+1)); done"
        ))
        .timeout(Duration::from_secs(120))
        .run()
        .await?
        .check()?;
    Ok(out
        .out()
        .lines()
        .filter_map(|l| {
            let (i, v) = l.split_once(" VALUE ")?;
            (i == v).then(|| i.parse().ok()).flatten()
        })
        .collect())
}

#[cluster_test(cluster = "kvd_upgrade")]
async fn rolling_upgrade_under_load_loses_no_acknowledged_write(cluster: &Cluster) -> TestResult {
    let dir = test_dir().context("the test has no artifact directory")?;
    let rec = Recorder::to_file(&dir.join("history.jsonl"))?;
    let primary = cluster.node("n1")?;
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let processes = Arc::new(AtomicU64::new(100));

    // Three clients add to the set (key w<i> = i) on the primary until the upgrade is over.
    let client = |c: u64| {
        let (primary, rec, next, stop, processes) = (
            primary.clone(),
            rec.clone(),
            next.clone(),
            stop.clone(),
            processes.clone(),
        );
        async move {
            let mut process = c;
            while !stop.load(Ordering::SeqCst) {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let op = rec.invoke(process, "add", None, i);
                match add(&primary, i).await {
                    Outcome::Ok => op.ok_same(),
                    Outcome::Fail(why) => {
                        op.fail(why);
                        // The primary is down: don't spin on it.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Outcome::Unknown(why) => {
                        op.info(why);
                        // Its write may still land: go on as a new client, as Jepsen does.
                        process = processes.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
    };
    let load = async { tokio::join!(client(0), client(1), client(2)) };
    let upgrade = async {
        // Some writes on the old versions first.
        wait_until(Duration::from_secs(30), || async {
            anyhow::Ok(next.load(Ordering::SeqCst) >= 20)
        })
        .await?;
        rec.nemesis(OpType::Invoke, "upgrade", "rolling: kvd old -> new");
        let r = cluster
            .rolling_restart(|node| async move { node.set_version("kvd", "new").await })
            .await;
        rec.nemesis(OpType::Info, "upgrade", format!("{r:?}"));
        // And some on the new ones.
        let after = next.load(Ordering::SeqCst);
        wait_until(Duration::from_secs(30), || async {
            anyhow::Ok(next.load(Ordering::SeqCst) >= after + 20)
        })
        .await?;
        stop.store(true, Ordering::SeqCst);
        r.map_err(anyhow::Error::from)
    };
    let (_, upgraded) = tokio::join!(load, async {
        let r = upgrade.await;
        stop.store(true, Ordering::SeqCst);
        r
    });
    upgraded?;
    for n in cluster.nodes() {
        ensure!(protocol(&n).await? == "2", "{} was not upgraded", n.name());
    }

    // The final read on the primary, once both followers hold all it has.
    let attempted = next.load(Ordering::SeqCst);
    let offset = kv(&primary, "INFO").await?;
    for f in [cluster.node("n2")?, cluster.node("n3")?] {
        let want = offset.replace("primary", "follower");
        wait_until(Duration::from_secs(30), || async {
            let info = kv(&f, "INFO").await?;
            ensure!(info == want, "{}: {info} (primary: {offset})", f.name());
            anyhow::Ok(())
        })
        .await?;
    }
    let read = rec.invoke(0, "read", None, serde_json::Value::Null);
    let present = read_all(&primary, attempted).await?;
    read.ok(present.clone());
    for f in [cluster.node("n2")?, cluster.node("n3")?] {
        let theirs = read_all(&f, attempted).await?;
        ensure!(theirs == present, "{} holds other writes than the primary", f.name());
    }

    let ops = rec.ops();
    std::fs::write(dir.join("history.svg"), history::timeline_svg(&ops))?;
    let report = history::check(&ops, &Set)?;
    println!("{report}");
    let counts = report.details::<SetCounts>().cloned().unwrap_or_default();
    ensure!(report.valid() && counts.lost == 0, "acknowledged writes lost: {report}");
    ensure!(counts.acknowledged >= 40, "too little load to judge: {report}");
    Ok(())
}

#[cluster_test(cluster = "kvd_upgrade")]
async fn downgrade_below_the_data_protocol_is_refused_by_kvd(cluster: &Cluster) -> TestResult {
    let (n1, n3) = (cluster.node("n1")?, cluster.node("n3")?);
    write(&n1, 1, 5).await?;
    // n3 runs protocol 2 once: its data folder is stamped with it.
    n3.set_version("kvd", "new").await?;
    wait_until(Duration::from_secs(20), || caught_up(&n3, "key5", "value 5", 5)).await?;
    let stamp = n3
        .exec("cat \"$CLUSTER_SIM_WORKDIR/data/PROTOCOL\"")
        .await?
        .check()?;
    ensure!(stamp.out() == "2", "n3's data stamp: {:?}", stamp.out());

    // Back to the protocol-1 build: kvd itself refuses to start on that data.
    let err = n3
        .set_version("kvd", "old")
        .await
        .err()
        .context("the downgrade was not refused")?;
    let message = err.to_string();
    println!("the downgrade, as set_version reports it: {message}");
    ensure!(
        message.contains("downgrade refused") && message.contains("written by protocol 2"),
        "not kvd's own refusal: {message}"
    );
    let log = n3.logs().await?;
    ensure!(
        log.contains("kvd: data") && log.contains("this kvd 0.2.0 speaks protocol 1: downgrade refused"),
        "n3's service log lacks kvd's refusal: {log}"
    );
    ensure!(n3.version("kvd").as_deref() == Some("old"));
    // The rest of the cluster goes on.
    write(&n1, 6, 6).await?;
    Ok(())
}
