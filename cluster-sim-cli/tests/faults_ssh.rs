//! Faults on the ssh backend, on a lab of sshd containers (fixtures/clusters/sshd3.toml): an
//! isolated host loses its links to the others but keeps our ssh connection, a one-way cut,
//! freeze/thaw/kill of the service's process group, the kernel probe, and that teardown and a
//! `down` by name from a process that never saw the cluster leave no table of ours behind, nor
//! does a SIGKILLed `cluster-sim up` (its watchdog removes its cluster from the hosts), and
//! `cluster-sim prune` on ssh removes a dead owner's cluster only.

#[path = "../../cluster-sim/tests/conformance/mod.rs"]
mod conformance;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use cluster_sim::docker::DockerBackend;
use cluster_sim::fault::{backend_capabilities, FaultError, Signal};
use cluster_sim::ssh::{provision_lab, SshBackend};
use cluster_sim::{Backend, Cluster, NodeState};
use conformance::faults::{oneway_cut_is_one_way, udp_gets_through};
use conformance::wait_for;
use futures::FutureExt;
use tokio::io::AsyncBufReadExt;

/// Our nftables tables on a lab host, seen through docker (not through the backend under test).
async fn our_tables(lab: &Cluster, host: &str) -> Result<Vec<String>> {
    let out = lab
        .node(host)?
        .exec("nft list tables | grep cluster_sim_ || true")
        .await?
        .check()?;
    Ok(out.out().lines().map(str::to_string).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_on_ssh_hosts() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let spec =
        cluster_sim::ClusterSpec::from_file(conformance::fixtures().join("clusters/sshd3.toml"))?;
    let tmp = tempfile::tempdir()?;
    let inventory = tmp.path().join("lab.toml");
    let builder = Cluster::builder(spec).backend(Arc::new(docker.clone()));
    let lab = provision_lab(builder, &docker, &inventory).await?;
    let r = std::panic::AssertUnwindSafe(async {
        body(&lab, &inventory).await?;
        sigkilled_owner(&lab, &inventory).await?;
        prune_on_ssh(&lab, &inventory).await
    })
    .catch_unwind()
    .await;
    lab.down().await?;
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

async fn body(lab: &Cluster, inventory: &std::path::Path) -> Result<()> {
    let backend = SshBackend::from_file(inventory)?;

    // The kernel probe, as `requires` uses it: nftables and htb here, netem missing.
    let caps = backend_capabilities(&backend).await?;
    ensure!(caps.nft && caps.htb, "lab hosts probed as {caps:?}");
    // The lab's spec says `fuse = true`: its hosts may mount the fault filesystem.
    ensure!(caps.fuse, "lab hosts probed without FUSE: {caps:?}");

    let c = Cluster::builder(conformance::spec("nodes = 3")?)
        .backend(Arc::new(backend.clone()))
        .up()
        .await?;
    let r = async {
        ensure!(udp_gets_through(&c, "n1", "n2", 9200).await?, "baseline");
        c.isolate("n1").await?;
        ensure!(!udp_gets_through(&c, "n1", "n2", 9201).await?, "n1 -> n2 cut");
        ensure!(!udp_gets_through(&c, "n3", "n1", 9202).await?, "n3 -> n1 cut");
        ensure!(udp_gets_through(&c, "n2", "n3", 9203).await?, "n2 -> n3 flows");
        // Our own connection is kept: exec on the isolated host still works, and the rule that
        // keeps it comes first.
        c.node("n1")?.exec("true").await?.check()?;
        let table = lab
            .node("n1")?
            .exec("nft list tables | grep -o 'cluster_sim_[a-z0-9_]*' | head -n1 | xargs -r nft list table inet")
            .await?
            .check()?;
        ensure!(
            table.out().contains("tcp dport 22 accept"),
            "no keep rule in:\n{}",
            table.out()
        );
        c.heal().await?;
        ensure!(udp_gets_through(&c, "n1", "n2", 9204).await?, "healed");
        for h in ["n1", "n2", "n3"] {
            ensure!(our_tables(lab, h).await?.is_empty(), "{h}: table after heal");
        }

        oneway_cut_is_one_way(&c, 9205).await?;

        // The service's process group: frozen, thawed, then killed by a chosen signal.
        let n2 = c.node("n2")?;
        c.freeze("n2").await?;
        ensure!(n2.state().await? == NodeState::Paused, "frozen");
        n2.exec("true").await?.check()?;
        c.thaw("n2").await?;
        ensure!(n2.state().await? == NodeState::Running, "thawed");
        c.kill_service("n2", Signal::Term).await?;
        wait_for("the service to end", Duration::from_secs(10), || {
            let n2 = n2.clone();
            async move { (n2.state().await.ok()? == NodeState::Exited).then_some(()) }
        })
        .await?;

        // A full disk: never outside the cluster's directory; inside it a tmpfs mount, which
        // a host that may not mount (a container without CAP_SYS_ADMIN) refuses with one clear
        // line; the lab's hosts may (`fuse = true` gives them CAP_SYS_ADMIN).
        match c.fill_disk_at("n1", "/var").await {
            Err(FaultError::Unsupported { missing, .. }) if missing.contains("working directory") => {}
            other => anyhow::bail!("fill_disk_at /var on ssh: {other:?}"),
        }
        match c.fill_disk("n1").await {
            Err(e @ FaultError::Unsupported { .. }) => {
                let line = e.to_string();
                eprintln!("fill_disk on the lab: {line}");
                ensure!(
                    line.contains("n1") && line.contains("CAP_SYS_ADMIN") && !line.contains('\n'),
                    "fill_disk said: {line}"
                );
            }
            Ok(_) => {
                // A host that may mount: writes there fail until freed.
                let w = c.node("n1")?.exec("head -c 65536 /dev/zero > big").await?;
                ensure!(w.code != 0 && w.err().contains("No space"), "write on a full disk: {w:?}");
                c.free_disk("n1").await?;
                c.node("n1")?.exec("head -c 65536 /dev/zero > big").await?.check()?;
            }
            Err(e) => anyhow::bail!("fill_disk on ssh: {e}"),
        }
        ensure!(c.faults().await?.is_empty(), "a refused fault is listed");

        // Teardown with a partition still in force removes it.
        c.isolate("n3").await?;
        ensure!(!our_tables(lab, "n3").await?.is_empty(), "n3 has our table");
        Ok(())
    }
    .await;
    c.down().await?;
    r?;
    for h in ["n1", "n2", "n3"] {
        ensure!(
            our_tables(lab, h).await?.is_empty(),
            "{h}: table after down"
        );
    }

    clock_skew(&backend).await?;

    // `cluster-sim down NAME` (and a harness killed mid-test): a process that never saw the
    // cluster finds it on the hosts and removes its rules with it.
    let c = Cluster::builder(conformance::spec("nodes = 2")?)
        .backend(Arc::new(backend.clone()))
        .keep(true)
        .up()
        .await?;
    c.isolate("n1").await?;
    ensure!(!our_tables(lab, "n1").await?.is_empty(), "n1 has our table");
    let fresh = SshBackend::from_file(inventory)?;
    fresh.destroy(c.name()).await?;
    for h in ["n1", "n2"] {
        ensure!(
            our_tables(lab, h).await?.is_empty(),
            "{h}: table after down by name"
        );
    }
    fresh.close().await;
    backend.close().await;
    Ok(())
}

const CLI: &str = env!("CARGO_BIN_EXE_cluster-sim");

/// Whether any lab host still holds cluster `name`'s working directory.
async fn workdirs_left(lab: &Cluster, inventory: &std::path::Path, name: &str) -> Result<bool> {
    let inv = SshBackend::from_file(inventory)?.inventory().clone();
    for h in &inv.hosts {
        let dir = format!("{}/{name}", h.workdir);
        let o = lab.node(&h.name)?.exec(format!("test -e '{dir}'")).await?;
        if o.code == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A `cluster-sim up --hold` on the hosts, with a partition in force, is SIGKILLed: within
/// seconds its watchdog has removed the partition's tables and the cluster's directories.
async fn sigkilled_owner(lab: &Cluster, inventory: &std::path::Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = dir.path().join("spec.toml");
    std::fs::write(&spec, "name = \"kill\"\nnodes = 2\n")?;
    let name = format!("cs-sshkill-{}", std::process::id());
    let cli = |args: &[&str]| {
        let mut c = tokio::process::Command::new(CLI);
        c.args(args)
            .env(cluster_sim::BACKEND_VAR, "ssh")
            .env(cluster_sim::INVENTORY_VAR, inventory)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        c
    };
    let mut up = cli(&[
        "up",
        spec.to_str().context("path")?,
        "--name",
        &name,
        "--hold",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()?;
    let mut lines = tokio::io::BufReader::new(up.stderr.take().context("stderr")?).lines();
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(120), lines.next_line()).await {
            Ok(Ok(Some(l))) if l.contains("holding") => break,
            Ok(Ok(Some(l))) => seen.push(l),
            other => anyhow::bail!("up never held ({other:?}); it said:\n{}", seen.join("\n")),
        }
    }
    let out = cli(&["partition", &name, "n1", "n2"]).output().await?;
    ensure!(
        out.status.success(),
        "partition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut tables = 0;
    for h in ["n1", "n2", "n3"] {
        tables += our_tables(lab, h).await?.len();
    }
    ensure!(tables > 0, "the partition made no table");
    ensure!(
        workdirs_left(lab, inventory, &name).await?,
        "no workdir made"
    );

    up.start_kill()?; // SIGKILL: no handler, no destructor
    up.wait().await?;
    wait_for(
        "no table and no workdir of the killed run's cluster",
        Duration::from_secs(30),
        || async {
            for h in ["n1", "n2", "n3"] {
                if !our_tables(lab, h).await.ok()?.is_empty() {
                    return None;
                }
            }
            (!workdirs_left(lab, inventory, &name).await.ok()?).then_some(())
        },
    )
    .await?;
    Ok(())
}

/// Clock skew on ssh hosts: a service that opted in to libfaketime runs an hour ahead on n1
/// only; exec on n1 and n2's service keep true time; reset brings n1 back.
async fn clock_skew(backend: &SshBackend) -> Result<()> {
    let mut spec = conformance::spec("nodes = 2")?;
    for n in &mut spec.nodes {
        n.env.insert("CLUSTER_SIM_FAKETIME".into(), "1".into());
    }
    let c = Cluster::builder(spec)
        .backend(Arc::new(backend.clone()))
        .up()
        .await?;
    let r = conformance::skew_moves_only_the_service_clock(&c).await;
    c.down().await?;
    r
}

/// `CLUSTER_SIM_BACKEND=ssh cluster-sim prune`: a cluster whose owner file names a dead process
/// goes; one whose owner runs (this test) stays, and so does a directory without our owner file.
async fn prune_on_ssh(lab: &Cluster, inventory: &std::path::Path) -> Result<()> {
    let backend = SshBackend::from_file(inventory)?;
    let inv = backend.inventory().clone();
    let up = || {
        Cluster::builder(conformance::spec("nodes = 1").expect("spec"))
            .backend(Arc::new(backend.clone()))
            .up()
    };
    let (dead, live) = (up().await?, up().await?);
    let host = &inv.hosts[0];
    let lab_host = lab.node(&host.name)?;
    // A process that has ended: its pid runs no more (or runs something with another start).
    let mut child = std::process::Command::new("true").spawn()?;
    child.wait()?;
    let mut owner = cluster_sim::docker::Owner::current();
    owner.pid = child.id();
    owner.start = 1;
    let dead_dir = format!("{}/{}", host.workdir, dead.name());
    lab_host
        .exec(format!(
            "printf 'run=gone\\nowner={owner}\\n' > '{dead_dir}/.owner'"
        ))
        .await?
        .check()?;
    let stranger = format!("{}/not-ours-{}", host.workdir, std::process::id());
    lab_host
        .exec(format!("mkdir -p '{stranger}'"))
        .await?
        .check()?;

    let out = tokio::process::Command::new(CLI)
        .arg("prune")
        .env(cluster_sim::BACKEND_VAR, "ssh")
        .env(cluster_sim::INVENTORY_VAR, inventory)
        .stdin(Stdio::null())
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let r = async {
        ensure!(
            out.status.success(),
            "prune: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            stdout.contains(&format!("removed {}", dead.name())),
            "prune said: {stdout}"
        );
        ensure!(
            !stdout.contains(live.name()),
            "prune removed a live cluster: {stdout}"
        );
        let gone = lab_host.exec(format!("test -e '{dead_dir}'")).await?;
        ensure!(gone.code != 0, "the dead owner's directory is still there");
        let kept = lab_host.exec(format!("test -d '{stranger}'")).await?;
        ensure!(
            kept.code == 0,
            "a directory without our owner file was removed"
        );
        live.node("n1")?.exec("true").await?.check()?;
        Ok(())
    }
    .await;
    lab_host.exec(format!("rmdir '{stranger}'")).await?;
    live.down().await?;
    dead.down().await?;
    backend.close().await;
    r
}
