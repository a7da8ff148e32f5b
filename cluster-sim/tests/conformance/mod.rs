//! The backend conformance suite: the same checks, through the same `Cluster` API, against every
//! backend (`tests/conformance_docker.rs`, `tests/ssh.rs`). Real engines and real sshd only.
#![allow(dead_code, reason = "each test target uses its own subset")]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use cluster_sim_core::{Cluster, ClusterBuilder, ClusterSpec, NodeState};
use futures::FutureExt;
use sha2::Digest;

pub mod faults;
mod membership;
mod output;

use membership::nodes_join_and_leave;
use output::{
    background_writers_stay_out, big_output_is_bounded_and_spooled, binary_output_is_exact,
};

/// A backend under test: how to bring a cluster up on it, and how to look behind its back.
pub trait Target: Sync {
    /// Backend name, for messages.
    fn kind(&self) -> &'static str;

    /// Provisions a cluster from `builder` on this backend.
    fn up(&self, builder: ClusterBuilder) -> impl Future<Output = Result<Cluster>> + Send;

    /// Whether anything of node `node`'s working directory `workdir` is left after teardown,
    /// checked without the backend under test.
    fn leftovers(
        &self,
        cluster: &str,
        node: &str,
        workdir: &str,
    ) -> impl Future<Output = Result<bool>> + Send;
}

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A cluster spec of the fixtures by name: `fixture("etcd3")` is `fixtures/clusters/etcd3.toml`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join("clusters").join(format!("{name}.toml"))
}

/// Brings a fixture's cluster up on the default (docker) backend, runs `body`, and removes the
/// cluster whatever happened (a panic in `body` is resumed after the teardown).
pub async fn with_fixture<F, Fut>(name: &str, body: F) -> Result<()>
where
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let spec = ClusterSpec::from_file(fixture(name))?;
    let cluster = Cluster::builder(spec).up().await?;
    let r = std::panic::AssertUnwindSafe(body(cluster.clone()))
        .catch_unwind()
        .await;
    cluster.down().await?;
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// A spec from text, resolved against `fixtures/clusters`.
pub fn spec(text: &str) -> Result<ClusterSpec> {
    let base = fixtures().join("clusters");
    Ok(ClusterSpec::parse(
        text,
        "<conformance>",
        &base,
        "conformance",
    )?)
}

/// Polls `f` until it yields `Some`, or fails after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Brings a cluster up, runs `body`, tears it down whatever happened, then checks that no
/// working directory is left.
pub async fn with_cluster<T, F, Fut>(t: &T, spec: ClusterSpec, body: F) -> Result<()>
where
    T: Target,
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    with_cluster_from(t, Cluster::builder(spec), body).await
}

/// [`with_cluster`] from a prepared builder.
pub async fn with_cluster_from<T, F, Fut>(t: &T, builder: ClusterBuilder, body: F) -> Result<()>
where
    T: Target,
    F: FnOnce(Cluster) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let c = t.up(builder).await?;
    let mut workdirs = Vec::new();
    for n in c.nodes() {
        let w = n
            .exec("echo \"$CLUSTER_SIM_WORKDIR\"")
            .await?
            .check()?
            .out()
            .to_string();
        workdirs.push((n.name().to_string(), w));
    }
    let r = std::panic::AssertUnwindSafe(body(c.clone()))
        .catch_unwind()
        .await;
    let down = c.down().await;
    let r = match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    };
    r?;
    down?;
    for (node, w) in workdirs {
        ensure!(
            !t.leftovers(c.name(), &node, &w).await?,
            "{}: node {node}: {w} is still there after teardown",
            t.kind()
        );
    }
    Ok(())
}

/// Exit code, stdout, stderr, env, workdir, user and argv.
pub async fn exec_semantics<T: Target>(t: &T) -> Result<()> {
    with_cluster(
        t,
        spec("nodes = 1\nenv = { FROM_SPEC = \"spec-value\" }\n")?,
        |c| async move {
            let n = c.node("n1")?;
            let o = n.exec("echo out; echo err >&2; exit 7").await?;
            ensure!(
                (o.code, o.out().as_ref(), o.err().as_ref()) == (7, "out", "err"),
                "{o:?}"
            );
            let e = o.check().unwrap_err().to_string();
            ensure!(
                e.contains("n1") && e.contains("exited 7") && e.contains("err"),
                "{e}"
            );
            let o = n
                .cmd("echo $GREETING $FROM_SPEC $CLUSTER_SIM_NODE $(pwd) $(id -un)")
                .env("GREETING", "hi there")
                .workdir("/tmp")
                .user("nobody")
                .run()
                .await?
                .check()?;
            ensure!(
                o.out() == "hi there spec-value n1 /tmp nobody",
                "{:?}",
                o.out()
            );
            let o = n
                .cmd_argv(["printf", "%s|", "a b", "c'd", "$HOME", ""])
                .run()
                .await?
                .check()?;
            ensure!(o.stdout == b"a b|c'd|$HOME||", "{:?}", o.stdout_lossy());
            // A relative path in the spec's workdir sense: writes land in the working directory.
            let w = n
                .exec("echo $CLUSTER_SIM_WORKDIR")
                .await?
                .check()?
                .out()
                .to_string();
            ensure!(w.starts_with('/'), "{w}");
            let e = c.node("n9").unwrap_err().to_string();
            ensure!(e.contains("n9"), "{e}");
            Ok(())
        },
    )
    .await
}

/// A command past its deadline is killed with its children and reported as timed out.
pub async fn exec_deadline_kills<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec("nodes = 1")?, |c| async move {
        let n = c.node("n1")?;
        let started = Instant::now();
        let o = n
            .cmd("sleep 300.5 & echo started; wait")
            .timeout(Duration::from_secs(1))
            .run()
            .await?;
        ensure!(o.timed_out, "{o:?}");
        ensure!(o.out() == "started", "{o:?}");
        ensure!(
            started.elapsed() < Duration::from_secs(30),
            "took {:?}",
            started.elapsed()
        );
        let e = o.check().unwrap_err().to_string();
        ensure!(e.contains("timed out"), "{e}");
        let left = n
            .exec("pgrep -a -x sleep | grep -c 'sleep 300.5' || true")
            .await?
            .check()?;
        ensure!(
            left.out() == "0",
            "the timed-out command's children survived"
        );
        Ok(())
    })
    .await
}

/// 10 MB of every byte value goes in and comes back unchanged; a missing file is a clear error.
pub async fn files_round_trip<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec("nodes = 1")?, |c| async move {
        let n = c.node("n1")?;
        let w = n
            .exec("echo $CLUSTER_SIM_WORKDIR")
            .await?
            .check()?
            .out()
            .to_string();
        let data: Vec<u8> = (0..10 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let path = format!("{w}/dir/sub/blob.bin");
        n.write_file(&path, &data).await?;
        let sum = n
            .exec(format!("sha256sum {path} | cut -d' ' -f1"))
            .await?
            .check()?;
        ensure!(
            sum.out() == hex::encode(sha2::Sha256::digest(&data)),
            "checksum differs on the node"
        );
        let back = n.read_file(&path).await?;
        ensure!(
            back.len() == data.len(),
            "read {} bytes of {}",
            back.len(),
            data.len()
        );
        ensure!(back == data, "content changed in the round trip");
        n.write_file_mode(&format!("{w}/run.sh"), "#!/bin/sh\necho ran\n", 0o755)
            .await?;
        let o = n.exec(format!("{w}/run.sh")).await?.check()?;
        ensure!(o.out() == "ran", "{o:?}");
        let e = n.read_file("/nope/missing").await.unwrap_err().to_string();
        ensure!(e.contains("n1") && e.contains("/nope/missing"), "{e}");
        Ok(())
    })
    .await
}

const SERVICE: &str = r#"
nodes = 1
[service]
command = "echo started >> \"$CLUSTER_SIM_WORKDIR/starts\"; echo hello-from-service; exec sleep 2147483647"
[ready]
command = "test -s \"$CLUSTER_SIM_WORKDIR/starts\""
timeout = "30s"
"#;

/// The service's log; kill, start, restart, stop, pause and unpause, keeping data.
pub async fn lifecycle_keeps_data<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec(SERVICE)?, |c| async move {
        let n = c.node("n1")?;
        ensure!(n.state().await? == NodeState::Running);
        wait_for(
            "the service's greeting in its log",
            Duration::from_secs(20),
            || async {
                n.logs()
                    .await
                    .ok()
                    .filter(|l| l.contains("hello-from-service"))
            },
        )
        .await?;
        let w = n
            .exec("echo $CLUSTER_SIM_WORKDIR")
            .await?
            .check()?
            .out()
            .to_string();
        n.write_file(&format!("{w}/data"), "kept").await?;
        let starts = |n: cluster_sim_core::Node, w: String| async move {
            let o = n.exec(format!("wc -l < {w}/starts")).await?.check()?;
            Ok::<_, anyhow::Error>(o.out().to_string())
        };

        n.kill().await?;
        ensure!(n.state().await? == NodeState::Exited, "after kill");
        n.start().await?;
        ensure!(n.state().await? == NodeState::Running, "after start");
        ensure!(starts(n.clone(), w.clone()).await? == "2");
        ensure!(n.read_file(&format!("{w}/data")).await? == b"kept");

        n.restart().await?;
        ensure!(n.state().await? == NodeState::Running, "after restart");
        ensure!(starts(n.clone(), w.clone()).await? == "3");
        ensure!(n.read_file(&format!("{w}/data")).await? == b"kept");

        n.stop().await?;
        ensure!(n.state().await? == NodeState::Exited, "after stop");
        n.start().await?;
        ensure!(starts(n.clone(), w.clone()).await? == "4");

        n.pause().await?;
        ensure!(n.state().await? == NodeState::Paused, "after pause");
        n.unpause().await?;
        ensure!(n.state().await? == NodeState::Running, "after unpause");
        let log = n.logs().await?;
        ensure!(
            log.matches("hello-from-service").count() >= 4,
            "log kept across restarts: {log}"
        );
        logs_from_checks(&c, "n1").await?;
        Ok(())
    })
    .await
}

/// A node's log from an offset is what lies past it; past its end, all of it from 0 (the log
/// was replaced). Here on whatever log a node without a service has (memory notes what
/// happens to a node); `lifecycle_keeps_data` checks it on a service's log too.
pub async fn logs_from_an_offset<T: Target>(t: &T) -> Result<()> {
    with_cluster(t, spec("nodes = 1")?, |c| async move {
        c.node("n1")?.exec("true").await?.check()?;
        logs_from_checks(&c, "n1").await
    })
    .await
}

/// `Backend::logs_from` of `node` at half its log and past its end.
async fn logs_from_checks(c: &Cluster, node: &str) -> Result<()> {
    let (b, name) = (c.backend(), c.name());
    let log = b.logs(name, node).await?;
    let half = log.len() as u64 / 2;
    let past = b.logs_from(name, node, half).await?;
    ensure!(past.from == half, "from {} not {half}", past.from);
    ensure!(
        past.bytes.starts_with(&log[half as usize..]),
        "past {half}: {:?} of {:?}",
        String::from_utf8_lossy(&past.bytes),
        String::from_utf8_lossy(&log)
    );
    let beyond = b.logs_from(name, node, log.len() as u64 + 1000).await?;
    ensure!(beyond.from == 0, "beyond its end: from {}", beyond.from);
    ensure!(
        beyond.bytes.starts_with(&log),
        "beyond its end: not all of it"
    );
    Ok(())
}

/// etcd from the unchanged fixture: a write on n1 is read on n3.
pub async fn etcd3_write_and_read<T: Target>(t: &T) -> Result<()> {
    let spec = ClusterSpec::from_file(fixtures().join("clusters/etcd3.toml"))?;
    with_cluster(t, spec, |c| async move {
        c.node("n1")?
            .exec("etcdctl put greeting hello")
            .await?
            .check()?;
        let got = c
            .node("n3")?
            .exec("etcdctl get --print-value-only greeting")
            .await?
            .check()?;
        ensure!(got.out() == "hello", "{got:?}");
        let health = c
            .node("n2")?
            .exec("etcdctl endpoint health --cluster")
            .await?
            .check()?;
        let text = format!("{}{}", health.stdout_lossy(), health.stderr_lossy());
        ensure!(text.matches("is healthy").count() == 3, "{text}");
        Ok(())
    })
    .await
}

/// Runs every check, each on its own cluster, and fails listing the ones that failed.
pub async fn run_all<T: Target>(t: &T) -> Result<()> {
    run_checks(t, true).await
}

/// The checks a backend whose nodes are directories of the test machine (memory) can take:
/// none that runs a service, runs as another user or writes outside the node's directory.
#[allow(
    dead_code,
    reason = "each test target uses one of run_all and run_portable"
)]
pub async fn run_portable<T: Target>(t: &T) -> Result<()> {
    run_checks(t, false).await
}

async fn run_checks<T: Target>(t: &T, all: bool) -> Result<()> {
    let mut failed = Vec::new();
    macro_rules! check {
        ($f:ident) => {{
            let started = Instant::now();
            let r = $f(t)
                .await
                .with_context(|| format!("{}: {}", t.kind(), stringify!($f)));
            match r {
                Ok(()) => eprintln!(
                    "conformance {}: {} ok in {:.1?}",
                    t.kind(),
                    stringify!($f),
                    started.elapsed()
                ),
                Err(e) => {
                    eprintln!("conformance {}: {} FAILED: {e:#}", t.kind(), stringify!($f));
                    failed.push(format!("{e:#}"));
                }
            }
        }};
    }
    check!(exec_deadline_kills);
    check!(files_round_trip);
    check!(big_output_is_bounded_and_spooled);
    check!(logs_from_an_offset);
    if all {
        check!(exec_semantics);
        check!(background_writers_stay_out);
        check!(binary_output_is_exact);
        check!(lifecycle_keeps_data);
        check!(etcd3_write_and_read);
        check!(nodes_join_and_leave);
    }
    if failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} conformance check(s) failed:\n{}",
            failed.len(),
            failed.join("\n")
        )
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Clock skew on a cluster whose services opted in to libfaketime (`CLUSTER_SIM_FAKETIME=1`):
/// n1's service runs an hour ahead; exec on n1, n2's service and this host keep true time (the
/// offset lives in the service's libfaketime); a reset brings n1 back.
pub async fn skew_moves_only_the_service_clock(c: &Cluster) -> Result<()> {
    let before = now_ms();
    ensure!(c.capabilities("n1").await?.faketime, "no faketime on n1");
    c.skew("n1", 3_600_000).await?;
    wait_for(
        "n1's service to see +1h",
        Duration::from_secs(10),
        || async {
            let d = c.service_time_ms("n1").await.ok()? - now_ms();
            (3_500_000..3_700_000).contains(&d).then_some(())
        },
    )
    .await?;
    let d2 = c.service_time_ms("n2").await? - now_ms();
    ensure!(d2.abs() < 60_000, "n2's service is off by {d2}ms");
    let exec_date: i64 = c
        .node("n1")?
        .exec("date +%s")
        .await?
        .check()?
        .out()
        .parse()?;
    ensure!(
        (exec_date - now_ms() / 1000).abs() < 60,
        "exec on n1 sees a skewed clock"
    );
    c.reset_clock("n1").await?;
    wait_for(
        "n1's service clock to come back",
        Duration::from_secs(10),
        || async {
            let d = c.service_time_ms("n1").await.ok()? - now_ms();
            (d.abs() < 60_000).then_some(())
        },
    )
    .await?;
    ensure!(now_ms() >= before, "this host's clock went backwards");
    Ok(())
}
