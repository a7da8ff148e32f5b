//! Faults on the docker backend, against real etcd and redis in real nodes: partitions,
//! one-way cuts, loss, rate, the missing-netem error, service freeze, clock skew, full disks
//! and a nemesis. Every wait polls a condition with a deadline.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{ensure, Context, Result};
use cluster_sim_core::fault::{FaultError, FaultKind, Impairment, Nemesis, NemesisFault, Shape};
use cluster_sim_core::{Cluster, ClusterSpec};

mod conformance;
use conformance::faults::oneway_cut_is_one_way;
use conformance::{fixture, wait_for, with_fixture as with_cluster};

/// Rules of this cluster left in a node's namespace (the test checks cleanup, so it looks).
async fn our_tables(c: &Cluster, node: &str) -> Result<usize> {
    let out = c
        .node(node)?
        .exec("nft list tables 2>/dev/null | grep -c cluster_sim_ || true")
        .await?;
    Ok(out.out().parse().unwrap_or(0))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_isolated_member_loses_writes_then_catches_up_and_freeze_thaw() -> Result<()> {
    with_cluster("etcd3", |c| async move {
        let f = c.isolate("n1").await?;
        assert!(matches!(f.kind, FaultKind::Partition { .. }));
        assert_eq!(c.faults().await?.len(), 1);
        let n1 = c.node("n1")?;
        let put = n1.exec("etcdctl --command-timeout=2s put cut yes").await?;
        ensure!(
            !put.success(),
            "a write through the isolated n1 committed: {put:?}"
        );
        // n2 and n3 keep a majority; if n1 led, they elect a new leader first.
        for n in ["n2", "n3"] {
            let node = c.node(n)?;
            wait_for(
                &format!("a write through {n}"),
                Duration::from_secs(30),
                || {
                    let node = node.clone();
                    async move {
                        let o = node
                            .exec(format!(
                                "etcdctl --command-timeout=2s put from-{0} {0}",
                                node.name()
                            ))
                            .await
                            .ok()?;
                        o.success().then_some(())
                    }
                },
            )
            .await?;
        }
        let healed = c.heal().await?;
        assert_eq!(healed.len(), 1);
        assert!(c.faults().await?.is_empty());
        assert_eq!(our_tables(&c, "n1").await?, 0);
        wait_for(
            "n1 to serve the key written during the cut",
            Duration::from_secs(30),
            || {
                let n1 = n1.clone();
                async move {
                    let o = n1
                        .exec("etcdctl --command-timeout=2s get --print-value-only from-n2")
                        .await
                        .ok()?;
                    (o.success() && o.out() == "n2").then_some(())
                }
            },
        )
        .await?;

        // Freeze: the service stops answering while the node still runs commands.
        c.freeze("n1").await?;
        let health = "etcdctl --endpoints=127.0.0.1:2379 --command-timeout=1s endpoint health";
        wait_for(
            "the frozen etcd to stop answering",
            Duration::from_secs(10),
            || {
                let n1 = n1.clone();
                async move { (!n1.exec(health).await.ok()?.success()).then_some(()) }
            },
        )
        .await?;
        assert_eq!(
            n1.exec("echo still-here").await?.check()?.out(),
            "still-here"
        );
        c.thaw("n1").await?;
        wait_for("the thawed etcd to answer", Duration::from_secs(20), || {
            let n1 = n1.clone();
            async move { n1.exec(health).await.ok()?.success().then_some(()) }
        })
        .await?;
        assert!(c.faults().await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn oneway_loss_rate_and_netem_on_redis_nodes() -> Result<()> {
    with_cluster("redis3", |c| async move {
        // One-way: n1 -> n2 dropped, n2 -> n1 flows.
        oneway_cut_is_one_way(&c, 9100).await?;

        let n1 = c.node("n1")?;
        // Loss 100% is a partition.
        c.impair("n1", Impairment::loss(100.0)).await?;
        let ping = n1.exec("ping -c 3 -W 1 -q n2").await?;
        ensure!(
            !ping.success() && ping.stdout_lossy().contains("100% packet loss"),
            "{ping:?}"
        );
        c.clear_impairments().await?;
        // Loss 30% over 300 pings lands in a sane band.
        c.impair_link("n1", "n2", Impairment::loss(30.0)).await?;
        let ping = n1.exec("ping -c 300 -i 0.01 -W 1 -q n2").await?;
        let lost: f64 = ping
            .stdout_lossy()
            .split(',')
            .find(|p| p.contains("packet loss"))
            .and_then(|p| p.trim().split('%').next()?.parse().ok())
            .with_context(|| format!("no loss figure in {:?}", ping.stdout_lossy()))?;
        ensure!(
            (15.0..=45.0).contains(&lost),
            "30% loss measured as {lost}%"
        );
        c.clear_impairments().await?;

        // Rate: 2 MB at 1 mbit takes at least 10x as long as without.
        let transfer = || async {
            let rx = c.node("n2")?;
            let port = 9200 + (now_ms() % 500) as u16;
            let listen = rx.exec(format!("timeout 60 nc -l {port} > /dev/null"));
            let send = async {
                let started = Instant::now();
                wait_for("the transfer", Duration::from_secs(60), || async {
                    let o = n1
                        .exec(format!("head -c 2000000 /dev/zero | nc -N n2 {port}"))
                        .await
                        .ok()?;
                    o.success().then_some(())
                })
                .await?;
                Ok::<_, anyhow::Error>(started.elapsed())
            };
            let (l, took) = tokio::join!(listen, send);
            l?;
            took
        };
        let fast = transfer().await?;
        c.impair("n1", Impairment::rate("1mbit")).await?;
        let slow = transfer().await?;
        c.clear_impairments().await?;
        ensure!(slow >= fast * 10, "1mbit: {slow:?} vs {fast:?} without");
        // Inbound: what n2 receives is shaped by its senders, so n1 -> n2 slows just the same.
        c.impair_inbound("n2", Impairment::rate("1mbit")).await?;
        let slow_in = transfer().await?;
        c.clear_impairments().await?;
        ensure!(
            slow_in >= fast * 10,
            "1mbit inbound: {slow_in:?} vs {fast:?} without"
        );

        // Latency needs netem: where the kernel lacks it, one clear error naming it and the node.
        let caps = c.capabilities("n1").await?;
        match c
            .impair("n1", Impairment::latency(Duration::from_millis(50)))
            .await
        {
            Err(e @ FaultError::Unsupported { .. }) => {
                ensure!(!caps.netem, "netem probed present but latency failed: {e}");
                let line = e.to_string();
                ensure!(line.contains("sch_netem") && line.contains("n1"), "{line}");
                ensure!(!line.contains('\n'), "one line: {line}");
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {
                ensure!(caps.netem, "latency applied without netem");
                c.clear_impairments().await?;
            }
        }
        assert!(c.faults().await?.is_empty());
        for n in ["n1", "n2", "n3"] {
            assert_eq!(our_tables(&c, n).await?, 0, "{n}");
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_full_and_nemesis_on_redis_nodes() -> Result<()> {
    with_cluster("redis3", |c| async move {
        // Disk: BGSAVE fails with ENOSPC while the working directory is full, works after.
        let n1 = c.node("n1")?;
        c.fill_disk("n1").await?;
        // redis resolved its `dir` once, at start (chdir); setting it again makes it look
        // the path up anew, as a restarted service would.
        let status = |want: &'static str| {
            let n1 = n1.clone();
            async move {
                n1.exec("redis-cli CONFIG SET dir /var/lib/cluster-sim")
                    .await
                    .ok()?;
                n1.exec("redis-cli BGSAVE").await.ok()?;
                let info = n1.exec("redis-cli INFO persistence").await.ok()?;
                let busy = info.stdout_lossy().contains("rdb_bgsave_in_progress:1");
                (!busy
                    && info
                        .stdout_lossy()
                        .contains(&format!("rdb_last_bgsave_status:{want}")))
                .then_some(())
            }
        };
        wait_for("BGSAVE to fail", Duration::from_secs(20), || status("err")).await?;
        let log = n1.logs().await?;
        ensure!(log.contains("No space left on device"), "redis log: {log}");
        c.free_disk("n1").await?;
        wait_for("BGSAVE to work again", Duration::from_secs(20), || {
            status("ok")
        })
        .await?;

        // A nemesis runs faults from its seed and leaves none behind when stopped.
        let nem = Nemesis::new(vec![
            NemesisFault::Partition(Shape::RandomHalves { seed: 0 }),
            NemesisFault::Freeze,
            NemesisFault::Loss(50.0),
        ])
        .seed(7)
        .every(Duration::from_millis(400))
        .heal_after(Duration::from_millis(200));
        let names: Vec<String> = c.nodes().iter().map(|n| n.name().to_string()).collect();
        assert_eq!(nem.schedule(&names, 10), nem.clone().schedule(&names, 10));
        let h = c.nemesis(nem);
        assert_eq!(h.seed(), 7);
        wait_for(
            "the nemesis to start a fault",
            Duration::from_secs(10),
            || async { (!c.faults().await.ok()?.is_empty()).then_some(()) },
        )
        .await?;
        let ran = h.stop().await;
        ensure!(ran >= 1, "nemesis ran {ran} faults");
        assert!(c.faults().await?.is_empty());
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn clock_skew_reaches_only_the_service_of_one_node() -> Result<()> {
    let mut spec = ClusterSpec::from_file(fixture("etcd3"))?;
    // Opt in to libfaketime in the services (see BOOT_SCRIPT for why it is opt-in).
    for n in &mut spec.nodes {
        n.env.insert("CLUSTER_SIM_FAKETIME".into(), "1".into());
    }
    let c = Cluster::builder(spec).up().await?;
    let r = conformance::skew_moves_only_the_service_clock(&c).await;
    c.down().await?;
    r
}
