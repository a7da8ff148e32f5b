//! Only what is ours, on the real engine: owners in other PID namespaces are never reaped while
//! their lease runs, a SIGKILLed owner's clusters go within seconds (its watchdog), concurrent
//! `up` of one name leaves one cluster, and a same-named container we didn't make is never
//! touched.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use cluster_sim::docker::{DockerBackend, LABEL_CLUSTER, LABEL_EXPIRES};
use cluster_sim::{Cluster, ClusterSpec, Janitor};
use tokio::io::{AsyncBufReadExt, BufReader};

#[path = "../../cluster-sim/tests/conformance/mod.rs"]
mod conformance;
use conformance::wait_for;

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("{prefix}-{}-{:x}", std::process::id(), nanos & 0xfffff)
}

/// A spec file in a temporary directory.
fn spec_file(dir: &tempfile::TempDir, text: &str) -> Result<PathBuf> {
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

async fn cluster_filter_is_empty(docker: &DockerBackend, name: &str) -> Result<bool> {
    Ok(docker
        .resources(&[format!("{LABEL_CLUSTER}={name}")])
        .await?
        .is_empty())
}

/// Runs the CLI to completion: (success, stdout, stderr).
async fn cli(args: &[&str]) -> Result<(bool, String, String)> {
    let out = tokio::process::Command::new(CLI)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Seeded xorshift, so a failing kill point can be replayed (`CLUSTER_SIM_SEED`).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_owner_leaves_nothing_within_seconds() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let dir = tempfile::tempdir()?;
    let spec = spec_file(&dir, "name = \"kill\"\nnodes = 2\n")?;
    let seed: u64 = std::env::var("CLUSTER_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0007);
    eprintln!("seed {seed} (CLUSTER_SIM_SEED)");
    let mut rng = Rng(seed | 1);
    for round in 0..10 {
        let name = unique(&format!("cs-kill{round}"));
        let mut child = tokio::process::Command::new(CLI)
            .args([
                "up",
                spec.to_str().context("path")?,
                "--name",
                &name,
                "--hold",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        // A kill point: after the k-th progress line (none, provisioning, allocated, nodes
        // started, holding: each phase twice), plus a random 0-300 ms.
        let lines_before = round % 5;
        let extra = Duration::from_millis(rng.below(300));
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let mut seen = Vec::new();
        while (seen.len() as u64) < lines_before {
            match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
                Ok(Ok(Some(l))) => seen.push(l),
                _ => break,
            }
        }
        tokio::time::sleep(extra).await;
        child.start_kill()?; // SIGKILL: no handler, no destructor
        child.wait().await?;
        eprintln!(
            "round {round}: killed after {} line(s) + {extra:?} ({:?})",
            seen.len(),
            seen.last()
        );
        wait_for(
            &format!("nothing left of {name} after SIGKILL"),
            Duration::from_secs(30),
            || async {
                cluster_filter_is_empty(&docker, &name)
                    .await
                    .ok()
                    .filter(|empty| *empty)
            },
        )
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_up_of_one_name_leaves_exactly_one_cluster() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let dir = tempfile::tempdir()?;
    let spec = spec_file(&dir, "name = \"race\"\nnodes = 2\n")?;
    let spec = spec.to_str().context("path")?;
    let name = unique("cs-race");
    let args = ["up", spec, "--name", &name];
    let runs = (0..4).map(|_| cli(&args));
    let results = futures::future::join_all(runs).await;
    let outcome = async {
        let mut winners = 0;
        for r in &results {
            let (ok, out, err) = r.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            if *ok {
                winners += 1;
                ensure!(out.trim() == name, "the winner prints the name: {out:?}");
            } else {
                let last = err.lines().last().unwrap_or_default();
                ensure!(
                    last.contains("already exists") && last.contains(&name),
                    "a loser says why in one line: {err}"
                );
            }
        }
        ensure!(
            winners == 1,
            "{winners} of 4 concurrent `up` won: {results:?}"
        );
        let res = docker
            .resources(&[format!("{LABEL_CLUSTER}={name}")])
            .await?;
        let all = &res.get(&name).context("the winner's cluster")?.resources;
        let nets = all
            .iter()
            .filter(|r| r.kind == cluster_sim::docker::ResourceKind::Network)
            .count();
        ensure!(nets == 1, "{nets} networks for one cluster: {all:?}");
        ensure!(docker.containers(Some(&name)).await?.len() == 2);
        Ok(())
    }
    .await;
    let (down_ok, _, down_err) = cli(&["down", &name]).await?;
    outcome?;
    ensure!(down_ok, "down: {down_err}");
    ensure!(cluster_filter_is_empty(&docker, &name).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_up_exits_non_zero_and_leaves_nothing_kept() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let dir = tempfile::tempdir()?;
    let spec = spec_file(&dir, "name = \"term\"\nnodes = 2\n")?;
    for (signal, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGINT, 130),
        (libc::SIGKILL, -1),
    ] {
        let name = unique("cs-term");
        let mut child = tokio::process::Command::new(CLI)
            .args(["up", spec.to_str().context("path")?, "--name", &name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        // Mid-way: the network exists, the nodes don't yet.
        while let Some(l) = lines.next_line().await? {
            if l.contains("allocated") {
                break;
            }
        }
        let pid = child.id().context("pid")? as i32;
        std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        let status = child.wait().await?;
        if code > 0 {
            ensure!(status.code() == Some(code), "signal {signal}: {status:?}");
        } else {
            ensure!(!status.success());
        }
        wait_for(
            &format!("nothing left of {name} after signal {signal}"),
            Duration::from_secs(30),
            || async {
                cluster_filter_is_empty(&docker, &name)
                    .await
                    .ok()
                    .filter(|e| *e)
            },
        )
        .await?;
    }
    Ok(())
}

/// A running container of the node image, made here without any cluster-sim label.
async fn stranger(docker: &DockerBackend, name: &str) -> Result<String> {
    let dir = cluster_sim::image::default_definition_dir().context("node image definition")?;
    let image = cluster_sim::image::ImageBuilder::new(dir)
        .ensure(docker.client())
        .await?;
    let body = ContainerCreateBody {
        image: Some(image),
        cmd: Some(vec!["sleep".into(), "infinity".into()]),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(name).build();
    let id = docker.client().create_container(Some(opts), body).await?.id;
    docker.client().start_container(&id, None).await?;
    Ok(id)
}

/// (running, number of execs the engine ran in it).
async fn looks(docker: &DockerBackend, id: &str) -> Result<(bool, usize)> {
    let i = docker.client().inspect_container(id, None).await?;
    Ok((
        i.state.and_then(|s| s.running).unwrap_or(false),
        i.exec_ids.map(|e| e.len()).unwrap_or(0),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn same_named_unlabelled_container_is_never_touched() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let base = unique("cs-plain");
    let id = stranger(&docker, &format!("{base}-box")).await?;
    let dir = tempfile::tempdir()?;
    let outcome = async {
        let before = looks(&docker, &id).await?;
        ensure!(before.0, "the stranger runs");
        for args in [
            vec!["exec", &base, "box", "--", "touch", "/touched"],
            vec!["kill", &base, "box"],
            vec!["stop", &base, "box"],
            vec!["logs", &base, "box"],
            vec!["down", &base],
        ] {
            let (ok, _, err) = cli(&args).await?;
            ensure!(
                !ok,
                "{args:?} succeeded on a container cluster-sim did not make"
            );
            ensure!(err.contains("no cluster named"), "{args:?}: {err}");
        }
        let (ok, _, err) = cli(&["prune"]).await?;
        ensure!(ok, "prune: {err}");
        // A cluster whose node would take the stranger's name fails, and removes only its own.
        let spec = spec_file(&dir, "name = \"plain\"\nnodes = [\"box\"]\n")?;
        let (ok, _, err) = cli(&["up", spec.to_str().context("path")?, "--name", &base]).await?;
        ensure!(!ok, "up over a taken container name succeeded");
        ensure!(err.contains("box"), "{err}");
        ensure!(cluster_filter_is_empty(&docker, &base).await?);
        ensure!(
            looks(&docker, &id).await? == before,
            "the stranger was touched: {before:?} -> {:?}",
            looks(&docker, &id).await?
        );

        // `exec rel-a-b c` must not run in node `b-c` of cluster `rel-a`.
        let spec = ClusterSpec::parse(
            "name = \"rel\"\nnodes = [\"b-c\"]\n",
            "<test>",
            std::path::Path::new("."),
            "rel",
        )?;
        let rel = format!("{base}-a");
        let cluster = Cluster::builder(spec).name(&rel).up().await?;
        let r = async {
            let node = docker
                .containers(Some(&rel))
                .await?
                .into_iter()
                .next()
                .context("node b-c")?;
            let execs = looks(&docker, &node.id).await?.1;
            let (ok, _, err) = cli(&["exec", &format!("{rel}-b"), "c", "--", "true"]).await?;
            ensure!(!ok && err.contains("no cluster named"), "{err}");
            ensure!(looks(&docker, &node.id).await?.1 == execs, "ran in b-c");
            let (ok, out, err) = cli(&["exec", &rel, "b-c", "--", "echo", "here"]).await?;
            ensure!(ok && out.trim() == "here", "{out} {err}");
            Ok(())
        }
        .await;
        cluster.down().await?;
        r
    }
    .await;
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    docker.client().remove_container(&id, Some(opts)).await?;
    outcome
}

/// Child half of the PID namespace test: run inside `unshare --pid --fork --mount-proc --uts`,
/// provisions a cluster with a short lease, reaps beside the parent's cluster, reports, waits.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by owner_in_another_pid_namespace_keeps_its_cluster"]
async fn pidns_child() -> Result<()> {
    let Ok(lease) = std::env::var("CLUSTER_SIM_PIDNS_CHILD") else {
        return Ok(());
    };
    let lease = Duration::from_secs(lease.parse()?);
    let c = Cluster::builder(ClusterSpec::inline(1, None)?)
        .expires_after(lease)
        .up()
        .await?;
    let reaped = DockerBackend::connect().await?.reap().await?.removed;
    println!("REAPED={}", reaped.join(","));
    println!("CLUSTER={}", c.name());
    use std::io::Write;
    std::io::stdout().flush()?;
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_in_another_pid_namespace_keeps_its_cluster() -> Result<()> {
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--uts", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "skipped: `unshare --pid --fork --mount-proc --uts` does not run here (needs root)"
        );
        return Ok(());
    }
    let docker = DockerBackend::connect().await?;
    // Ours, beside it: the child's reaper must leave it alone too.
    let ours = Cluster::builder(ClusterSpec::inline(1, None)?)
        .expires_after(Duration::from_secs(600))
        .up()
        .await?;
    let r = async {
        let lease = 20;
        let mut child = tokio::process::Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--uts", "--kill-child"])
            .arg(std::env::current_exe()?)
            .args(["pidns_child", "--exact", "--ignored", "--nocapture"])
            .env("CLUSTER_SIM_PIDNS_CHILD", lease.to_string())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let (reaped, theirs) = tokio::time::timeout(Duration::from_secs(300), async {
            let mut reaped = None;
            while let Some(l) = lines.next_line().await? {
                if let Some(r) = l.strip_prefix("REAPED=") {
                    reaped = Some(r.to_string());
                }
                if let Some(n) = l.strip_prefix("CLUSTER=") {
                    return Ok((reaped.unwrap_or_default(), n.to_string()));
                }
            }
            bail!("the child exited without provisioning")
        })
        .await
        .context("the child did not provision in time")??;
        ensure!(
            !reaped.split(',').any(|n| n == ours.name()),
            "the reaper in the other namespace removed our live cluster"
        );
        ensure!(docker.containers(Some(ours.name())).await?.len() == 1);

        // Its owner runs in another PID namespace with our host name: not ours to judge.
        let removed = docker.reap().await?.removed;
        ensure!(!removed.contains(&theirs), "reaped a live owner's cluster");
        ensure!(docker.containers(Some(&theirs)).await?.len() == 1);

        // Its owner is gone (the whole namespace with it), but nothing here can prove that:
        // the cluster stays until its lease ends, then the next reaper removes it.
        let expires: u64 = docker
            .resources(&[format!("{LABEL_CLUSTER}={theirs}")])
            .await?
            .get(&theirs)
            .and_then(|r| {
                r.resources
                    .first()
                    .map(|r| r.label(LABEL_EXPIRES).to_string())
            })
            .context("lease label")?
            .parse()?;
        child.start_kill()?;
        child.wait().await?;
        let removed = docker.reap().await?.removed;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        if now + 1 < expires {
            ensure!(!removed.contains(&theirs), "reaped before its lease ended");
        }
        let started = Instant::now();
        wait_for(
            "the lease to end and the reaper to remove it",
            Duration::from_secs(lease + 60),
            || async {
                let _ = docker.reap().await;
                cluster_filter_is_empty(&docker, &theirs)
                    .await
                    .ok()
                    .filter(|e| *e)
            },
        )
        .await?;
        eprintln!("reaped {:.1?} after the owner died", started.elapsed());
        ensure!(docker.containers(Some(ours.name())).await?.len() == 1);
        Ok(())
    }
    .await;
    ours.down().await?;
    r
}
