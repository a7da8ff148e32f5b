//! The docker backend against a real engine, with real etcd and redis inside the nodes.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::{Cluster, ClusterSpec, Janitor, NodeState};

mod conformance;
use conformance::{wait_for, with_fixture as with_cluster};

/// The etcd leader's node name, as seen from `from` (its own view: works with members down).
async fn etcd_leader(cluster: &Cluster, from: &str) -> Option<String> {
    let node = cluster.node(from).ok()?;
    let status = node.exec("etcdctl endpoint status -w json").await.ok()?;
    let members = node.exec("etcdctl member list -w json").await.ok()?;
    if !status.success() || !members.success() {
        return None;
    }
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).ok()?;
    let leader = status.get(0)?["Status"]["leader"]
        .as_u64()
        .filter(|l| *l != 0)?;
    let members: serde_json::Value = serde_json::from_slice(&members.stdout).ok()?;
    members["members"]
        .as_array()?
        .iter()
        .find(|m| m["ID"].as_u64() == Some(leader))
        .and_then(|m| m["name"].as_str())
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_write_on_n1_read_on_n3_and_leader_failover() -> Result<()> {
    with_cluster("etcd3", |c| async move {
        let n1 = c.node("n1")?;
        n1.exec("etcdctl put greeting hello").await?.check()?;
        let got = c
            .node("n3")?
            .exec("etcdctl get --print-value-only greeting")
            .await?
            .check()?;
        assert_eq!(got.out(), "hello");

        // Health of all three members, as a user would check it.
        let health = n1
            .exec("etcdctl endpoint health --cluster")
            .await?
            .check()?;
        let text = format!("{}{}", health.stdout_lossy(), health.stderr_lossy());
        assert_eq!(text.matches("is healthy").count(), 3, "{text}");

        // Kill the leader: the other two elect a new one and writes go on.
        let leader = wait_for("an etcd leader", Duration::from_secs(20), || {
            etcd_leader(&c, "n1")
        })
        .await?;
        c.node(&leader)?.kill().await?;
        assert_eq!(c.node(&leader)?.state().await?, NodeState::Exited);
        let survivor = c
            .nodes()
            .into_iter()
            .find(|n| n.name() != leader)
            .context("a survivor")?;
        let new_leader = wait_for("a new etcd leader", Duration::from_secs(30), || async {
            etcd_leader(&c, survivor.name())
                .await
                .filter(|l| *l != leader)
        })
        .await?;
        assert_ne!(new_leader, leader);
        survivor
            .cmd("etcdctl put after-failover yes")
            .timeout(Duration::from_secs(20))
            .run()
            .await?
            .check()?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_member_keeps_its_data_and_address_across_restart() -> Result<()> {
    with_cluster("etcd3", |c| async move {
        let n2 = c.node("n2")?;
        n2.exec("etcdctl put durable 42").await?.check()?;
        let before = n2.exec("hostname -i").await?.check()?.out().to_string();
        n2.restart().await?;
        assert_eq!(n2.exec("hostname -i").await?.check()?.out(), before);
        assert_eq!(before, n2.address());
        // Serializable reads are answered from the member's own data.
        let got = n2
            .exec("etcdctl get --consistency=s --print-value-only durable")
            .await?
            .check()?;
        assert_eq!(got.out(), "42");
        // Stop then start too.
        n2.stop().await?;
        assert_eq!(n2.state().await?, NodeState::Exited);
        n2.start().await?;
        let got = n2
            .exec("etcdctl get --consistency=s --print-value-only durable")
            .await?
            .check()?;
        assert_eq!(got.out(), "42");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_replicas_converge() -> Result<()> {
    with_cluster("redis3", |c| async move {
        c.node("n1")?
            .exec("redis-cli set colour blue")
            .await?
            .check()?;
        for r in ["n2", "n3"] {
            let node = c.node(r)?;
            let got = wait_for("replica to converge", Duration::from_secs(20), || async {
                let o = node.exec("redis-cli get colour").await.ok()?;
                (o.out() == "blue").then_some(())
            })
            .await;
            got.with_context(|| format!("replica {r}"))?;
            let role = node.exec("redis-cli info replication").await?.check()?;
            assert!(role.out().contains("role:slave"), "{}", role.out());
        }
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn files_round_trip_binary_and_large_and_exec_deadline_kills() -> Result<()> {
    let spec = ClusterSpec::inline(1, None)?;
    let c = Cluster::builder(spec).up().await?;
    let r = async {
        let n = c.node("n1")?;
        // 10 MB of every byte value, in an order that a truncation or re-encoding would break.
        let data: Vec<u8> = (0..10 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        n.write_file("/data/dir/blob.bin", &data).await?;
        let sum = n
            .exec("sha256sum /data/dir/blob.bin | cut -d' ' -f1")
            .await?
            .check()?;
        assert_eq!(sum.out().len(), 64);
        let back = n.read_file("/data/dir/blob.bin").await?;
        assert_eq!(back.len(), data.len());
        assert!(back == data, "content changed in the round trip");

        // Exit codes, stderr, env, workdir and user.
        let o = n.exec("echo out; echo err >&2; exit 7").await?;
        assert_eq!(
            (o.code, o.out().as_ref(), o.err().as_ref()),
            (7, "out", "err")
        );
        let e = o.check().unwrap_err().to_string();
        assert!(
            e.contains("n1") && e.contains("exited 7") && e.contains("err"),
            "{e}"
        );
        let o = n
            .cmd("echo $GREETING $(pwd) $(id -un)")
            .env("GREETING", "hi")
            .workdir("/tmp")
            .user("nobody")
            .run()
            .await?
            .check()?;
        assert_eq!(o.out(), "hi /tmp nobody");

        // A command past its deadline is killed, with its children, and reported.
        let started = Instant::now();
        let o = n
            .cmd("sleep 300 & echo started; wait")
            .timeout(Duration::from_secs(1))
            .run()
            .await?;
        assert!(o.timed_out, "{o:?}");
        assert_eq!(o.out(), "started", "output before the deadline is kept");
        assert!(started.elapsed() < Duration::from_secs(60));
        let e = o.check().unwrap_err().to_string();
        assert!(e.contains("timed out"), "{e}");
        let left = n
            .exec("pgrep -x sleep | grep -v '^1$' | wc -l")
            .await?
            .check()?;
        // The node's own `sleep infinity` is its service; the test's `sleep 300` must be gone.
        assert_eq!(left.out(), "1", "the timed-out command's children survived");

        // A paused node refuses commands at once; unpaused, it answers again.
        n.pause().await?;
        assert_eq!(n.state().await?, NodeState::Paused);
        let r = n.cmd("true").timeout(Duration::from_secs(30)).run().await;
        assert!(r.is_err(), "exec on a paused node: {r:?}");
        n.unpause().await?;
        n.exec("true").await?.check()?;

        // Reading a missing file names node and path.
        let e = n.read_file("/nope").await.unwrap_err().to_string();
        assert!(e.contains("n1") && e.contains("/nope"), "{e}");
        // Unknown node.
        let e = c.node("n9").unwrap_err().to_string();
        assert!(e.contains("n9"), "{e}");
        Ok::<(), anyhow::Error>(())
    }
    .await;
    c.down().await?;
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clusters_from_one_spec_side_by_side() -> Result<()> {
    let spec = ClusterSpec::inline(2, None)?;
    let (a, b) = tokio::join!(
        Cluster::builder(spec.clone()).up(),
        Cluster::builder(spec).up()
    );
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (a, b) => {
            for c in [a.ok(), b.ok()].into_iter().flatten() {
                c.down().await?;
            }
            bail!("one of two clusters failed to come up");
        }
    };
    let r = async {
        assert_ne!(a.name(), b.name());
        for c in [&a, &b] {
            // Node names resolve within each cluster's own network, to its own addresses.
            let o = c.node("n1")?.exec("getent hosts n2").await?.check()?;
            assert!(o.out().starts_with(c.node("n2")?.address()), "{}", o.out());
        }
        assert_ne!(a.node("n1")?.address(), b.node("n1")?.address());
        Ok::<(), anyhow::Error>(())
    }
    .await;
    a.down().await?;
    b.down().await?;
    r
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioning_errors_are_clear_and_leave_nothing() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    // Names of this process's own: another run on the engine may be in this test too.
    let cs_test_badimage = format!("cs-test-badimage-{}", std::process::id());
    let cs_test_dies = format!("cs-test-dies-{}", std::process::id());
    // An image the engine doesn't have.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad-image.toml");
    std::fs::write(&path, "nodes = 2\nimage = \"no-such-image:1\"\n")?;
    let spec = ClusterSpec::from_file(&path)?;
    let e = Cluster::builder(spec)
        .name(&cs_test_badimage)
        .up()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no-such-image:1") && msg.contains("not in the local engine"),
        "{msg}"
    );
    assert!(docker.containers(Some(&cs_test_badimage)).await?.is_empty());
    assert!(!docker
        .networks()
        .await?
        .iter()
        .any(|n| n.1 == cs_test_badimage));

    // A service that dies at once: readiness fails fast with the log tail, nothing is left.
    let path = dir.path().join("dies.toml");
    std::fs::write(
        &path,
        "nodes = 1\n[service]\ncommand = \"echo bye-from-service; exit 3\"\n[ready]\ncommand = \"false\"\ntimeout = \"60s\"\n",
    )?;
    let spec = ClusterSpec::from_file(&path)?;
    let started = Instant::now();
    let e = Cluster::builder(spec)
        .name(&cs_test_dies)
        .up()
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("n1") && msg.contains("exited") && msg.contains("bye-from-service"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "did not fail fast"
    );
    assert!(docker.containers(Some(&cs_test_dies)).await?.is_empty());
    Ok(())
}

/// Child half of the reaper tests: provisions `CLUSTER_SIM_REAPER_CHILD` clusters of two
/// nodes, prints their names and waits to be killed.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by reaper_removes_clusters_of_a_sigkilled_owner"]
async fn reaper_child() -> Result<()> {
    let Ok(count) = std::env::var("CLUSTER_SIM_REAPER_CHILD") else {
        return Ok(());
    };
    let mut clusters = Vec::new();
    for _ in 0..count.parse::<usize>()? {
        clusters.push(Cluster::builder(ClusterSpec::inline(2, None)?).up().await?);
    }
    for c in &clusters {
        println!("CLUSTER={}", c.name());
    }
    use std::io::Write;
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Starts [`reaper_child`] with `count` clusters; returns it and their names.
async fn reaper_child_with(count: usize) -> Result<(tokio::process::Child, Vec<String>)> {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["reaper_child", "--exact", "--ignored", "--nocapture"])
        .env("CLUSTER_SIM_REAPER_CHILD", count.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let names = tokio::time::timeout(Duration::from_secs(300), async {
        let mut names = Vec::new();
        while let Some(l) = lines.next_line().await? {
            if let Some(n) = l.strip_prefix("CLUSTER=") {
                names.push(n.to_string());
                if names.len() == count {
                    return Ok(names);
                }
            }
        }
        bail!("the child exited without provisioning")
    })
    .await
    .context("child did not provision in time")??;
    Ok((child, names))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leftover_the_reaper_cannot_remove_does_not_stop_the_others() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let (mut child, names) = reaper_child_with(2).await?;
    let (stuck, other) = (&names[0], &names[1]);
    // Something that is not ours sits on the first cluster's network: the engine refuses to
    // remove a network with an endpoint.
    let net = format!("{stuck}-net");
    let foreign = std::process::Command::new("docker")
        .args(["run", "-d", "--network", &net, "--entrypoint", "sleep"])
        .args(["cluster-sim/node", "300"])
        .output()?;
    ensure!(
        foreign.status.success(),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    let foreign = String::from_utf8_lossy(&foreign.stdout).trim().to_string();
    child.start_kill()?;
    child.wait().await?;
    let r = async {
        let reaped = docker.reap().await?;
        ensure!(reaped.removed.contains(other), "{:?}", reaped.removed);
        ensure!(
            reaped
                .failed
                .iter()
                .any(|(n, why)| n == stuck && why.contains("still attached")),
            "{:?}",
            reaped.failed
        );
        ensure!(docker.containers(Some(other)).await?.is_empty());
        Ok(())
    }
    .await;
    // Once the foreign container is gone the next reaper removes the rest.
    std::process::Command::new("docker")
        .args(["rm", "-f", &foreign])
        .output()?;
    let reaped = docker.reap().await?.removed;
    r?;
    ensure!(reaped.contains(stuck), "{reaped:?}");
    ensure!(!docker.networks().await?.iter().any(|n| &n.1 == stuck));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn reaper_removes_clusters_of_a_sigkilled_owner() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let (mut child, names) = reaper_child_with(1).await?;
    let name = names[0].clone();
    assert_eq!(docker.containers(Some(&name)).await?.len(), 2);
    // A live owner's cluster is not touched.
    let reaped = docker.reap().await?.removed;
    assert!(!reaped.contains(&name));
    child.start_kill()?; // SIGKILL: no destructor, no teardown
    child.wait().await?;
    let reaped = docker.reap().await?.removed;
    assert!(reaped.contains(&name), "{reaped:?}");
    assert!(docker.containers(Some(&name)).await?.is_empty());
    assert!(!docker.networks().await?.iter().any(|n| n.1 == name));
    Ok(())
}
