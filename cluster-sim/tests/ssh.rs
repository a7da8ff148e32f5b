//! The ssh backend against real sshd: a lab of three sshd containers (fixtures/clusters/sshd3.toml
//! on the docker backend, with an inventory written as `cluster-sim up --lab` does), the
//! conformance suite on it, and the bad inputs a lab meets (unreachable host, wrong key or user,
//! changed host key, no sudo, unknown package, a dropped connection).

mod conformance;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::ssh::{provision_lab, Inventory, SshBackend};
use cluster_sim_core::{Cluster, ClusterBuilder, ClusterSpec};
use futures::FutureExt;

/// A running lab: its docker cluster and the inventory written for it.
struct Lab {
    cluster: Cluster,
    inventory: PathBuf,
    dir: PathBuf,
}

/// Brings a lab up in a temporary directory, runs `body`, removes the lab whatever happened.
async fn with_lab<F, Fut>(body: F) -> Result<()>
where
    F: FnOnce(Arc<Lab>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let docker = DockerBackend::connect().await?;
    let spec = ClusterSpec::from_file(conformance::fixtures().join("clusters/sshd3.toml"))?;
    let tmp = tempfile::tempdir()?;
    let inventory = tmp.path().join("lab.toml");
    let builder = Cluster::builder(spec).backend(Arc::new(docker.clone()));
    let cluster = provision_lab(builder, &docker, &inventory).await?;
    let lab = Arc::new(Lab {
        cluster: cluster.clone(),
        inventory,
        dir: tmp.path().to_path_buf(),
    });
    let r = std::panic::AssertUnwindSafe(body(lab)).catch_unwind().await;
    cluster.down().await?;
    match r {
        Ok(r) => r,
        Err(p) => std::panic::resume_unwind(p),
    }
}

struct Ssh {
    lab: Arc<Lab>,
    backend: SshBackend,
}

impl conformance::Target for Ssh {
    fn kind(&self) -> &'static str {
        "ssh"
    }

    async fn up(&self, builder: ClusterBuilder) -> Result<Cluster> {
        Ok(builder.backend(Arc::new(self.backend.clone())).up().await?)
    }

    async fn leftovers(&self, _cluster: &str, node: &str, workdir: &str) -> Result<bool> {
        // Nodes land on the lab host of the same name; look through docker, not ssh.
        let o = self
            .lab
            .cluster
            .node(node)?
            .exec(format!("test -e {workdir}"))
            .await?;
        Ok(o.success())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_ssh() -> Result<()> {
    with_lab(|lab| async move {
        let backend = SshBackend::from_file(&lab.inventory)?;
        let t = Ssh {
            lab: lab.clone(),
            backend: backend.clone(),
        };
        let r = conformance::run_all(&t).await;
        backend.close().await;
        r
    })
    .await
}

/// Tries to bring a one-node cluster up on `inv`; returns the error line and how long it took.
async fn failure(inv: Inventory, spec_text: &str) -> Result<(String, Duration)> {
    let backend = SshBackend::new(inv);
    let started = Instant::now();
    let r = Cluster::builder(conformance::spec(spec_text)?)
        .backend(Arc::new(backend.clone()))
        .up()
        .await;
    let took = started.elapsed();
    backend.close().await;
    match r {
        Ok(c) => {
            c.down().await?;
            anyhow::bail!("provisioning succeeded but should have failed")
        }
        Err(e) => {
            let msg = e.to_string();
            ensure!(!msg.contains('\n'), "not one line: {msg}");
            Ok((msg, took))
        }
    }
}

/// The lab's inventory, cut to its first host, with a short connect deadline.
fn one_host(lab: &Lab) -> Result<Inventory> {
    let mut inv = Inventory::from_file(&lab.inventory)?;
    inv.hosts.truncate(1);
    inv.hosts[0].connect_timeout = Duration::from_secs(5);
    Ok(inv)
}

fn keygen(path: &Path) -> Result<String> {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .output()?;
    ensure!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(std::fs::read_to_string(path.with_extension("pub"))?)
}

fn expect(msg: &str, took: Duration, parts: &[&str]) -> Result<()> {
    for p in parts {
        ensure!(msg.contains(p), "expected {p:?} in: {msg}");
    }
    // Connect deadline (5s) plus slack for a slow machine; never a hang.
    ensure!(took < Duration::from_secs(20), "took {took:?}: {msg}");
    eprintln!("ok ({took:.1?}): {msg}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_clearly_naming_host_and_step() -> Result<()> {
    with_lab(|lab| async move {
        let n1 = lab.cluster.node("n1")?;

        // Unreachable: a closed port on loopback.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut inv = one_host(&lab)?;
        inv.hosts[0].port = Some(closed);
        let (msg, took) = failure(inv, "nodes = 1").await?;
        expect(&msg, took, &["host n1", "connect", "connection refused"])?;

        // Wrong key.
        let other_key = lab.dir.join("other_key");
        let other_pub = keygen(&other_key)?;
        let mut inv = one_host(&lab)?;
        inv.hosts[0].key = Some(other_key.clone());
        let (msg, took) = failure(inv, "nodes = 1").await?;
        expect(&msg, took, &["host n1", "connect", "permission denied", "other_key"])?;

        // Wrong user.
        let mut inv = one_host(&lab)?;
        inv.hosts[0].user = Some("nosuchuser".into());
        let (msg, took) = failure(inv, "nodes = 1").await?;
        expect(&msg, took, &["host n1", "connect", "permission denied", "nosuchuser"])?;

        // Changed host key: known_hosts holds another key for the host. Refused by default and
        // with trust_new_host_keys alike.
        let port = one_host(&lab)?.hosts[0].port.context("port")?;
        let forged = lab.dir.join("forged_known_hosts");
        let fake = other_pub.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        std::fs::write(&forged, format!("[127.0.0.1]:{port} {fake}\n"))?;
        for trust in [false, true] {
            let mut inv = one_host(&lab)?;
            inv.hosts[0].known_hosts = Some(forged.clone());
            inv.hosts[0].trust_new_host_keys = trust;
            let (msg, took) = failure(inv, "nodes = 1").await?;
            expect(&msg, took, &["host n1", "connect", "host key changed"])?;
        }

        // Unknown host key: refused by default, accepted (and recorded) when trusted.
        let empty = lab.dir.join("empty_known_hosts");
        std::fs::write(&empty, "")?;
        let mut inv = one_host(&lab)?;
        inv.hosts[0].known_hosts = Some(empty.clone());
        let (msg, took) = failure(inv.clone(), "nodes = 1").await?;
        expect(&msg, took, &["host n1", "connect", "host key unknown", "trust_new_host_keys"])?;
        inv.hosts[0].trust_new_host_keys = true;
        let backend = SshBackend::new(inv);
        let c = Cluster::builder(conformance::spec("nodes = 1")?)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let o = c.node("n1")?.exec("echo trusted").await?.check()?;
        ensure!(o.out() == "trusted");
        // Recorded (perhaps hashed, per HashKnownHosts), so a strict check now passes.
        ensure!(!std::fs::read_to_string(&empty)?.trim().is_empty(), "the new key was not recorded");
        let mut strict = one_host(&lab)?;
        strict.hosts[0].known_hosts = Some(empty.clone());
        let checked = SshBackend::new(strict).check_hosts().await;
        ensure!(checked[0].1.is_ok(), "{:?}", checked[0].1);

        // A dropped master (closed under us) and a dropped connection (killed on the host) are
        // reconnected once, and the command runs.
        let ctl = backend.control_socket("n1").await.context("a master for n1")?;
        let st = std::process::Command::new("ssh")
            .arg("-S")
            .arg(&ctl)
            .args(["-O", "exit", "x"])
            .output()?;
        ensure!(st.status.success(), "ssh -O exit: {}", String::from_utf8_lossy(&st.stderr));
        let o = c.node("n1")?.exec("echo after-master-exit").await?.check()?;
        ensure!(o.out() == "after-master-exit");
        n1.exec("pkill -f 'sshd: root@' || true").await?;
        let o = wait_for_exec(&c, "echo after-drop").await?;
        ensure!(o == "after-drop");
        c.down().await?;
        backend.close().await;

        // Packages already present are skipped without touching apt.
        let inv = one_host(&lab)?;
        let backend = SshBackend::new(inv.clone());
        let c = Cluster::builder(conformance::spec("nodes = 1\npackages = [\"procps\", \"iproute2\"]")?)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        c.down().await?;
        backend.close().await;
        let lists = n1.exec("ls /var/lib/apt/lists | grep -c Packages || true").await?.check()?;
        ensure!(lists.out() == "0", "apt ran for packages already installed");

        // Unknown package.
        let (msg, took) = failure(
            one_host(&lab)?,
            "nodes = 1\npackages = [\"procps\", \"cluster-sim-no-such-package\"]",
        )
        .await?;
        ensure!(took < Duration::from_secs(300), "took {took:?}");
        for p in ["host n1", "install packages", "unknown package", "cluster-sim-no-such-package"] {
            ensure!(msg.contains(p), "expected {p:?} in: {msg}");
        }
        eprintln!("ok ({took:.1?}): {msg}");

        // No sudo: a user who isn't root, with sudo = true where sudo is missing, and with
        // sudo = false, each refused at the file outside its working directory.
        n1.exec(
            "useradd -m -s /bin/sh tester && usermod -p '*' tester && mkdir -p /home/tester/.ssh \
             && cp /root/.ssh/authorized_keys /home/tester/.ssh/ && chown -R tester /home/tester/.ssh \
             && chmod 700 /home/tester/.ssh",
        )
        .await?
        .check()?;
        let dest = "nodes = 1\n[[file]]\nsource = \"../templates/etcd/etcd.yml.tmpl\"\ndest = \"/etc/cluster-sim-test.conf\"\n";
        for sudo in [true, false] {
            let mut inv = one_host(&lab)?;
            inv.hosts[0].user = Some("tester".into());
            inv.hosts[0].workdir = "/home/tester/cs".into();
            inv.hosts[0].sudo = sudo;
            let (msg, took) = failure(inv, dest).await?;
            let why = if sudo { "sudo is not installed" } else { "set sudo = true" };
            expect(&msg, took, &["host n1", "upload /etc/cluster-sim-test.conf", why])?;
        }

        // More nodes than hosts.
        let (msg, _) = failure(one_host(&lab)?, "nodes = 2").await?;
        ensure!(msg.contains("needs 2 hosts but inventory") && msg.contains("has 1"), "{msg}");
        Ok(())
    })
    .await
}

/// Runs `cmd` on n1, retrying briefly while a killed connection is noticed.
async fn wait_for_exec(c: &Cluster, cmd: &str) -> Result<String> {
    let n = c.node("n1")?;
    let mut last = String::new();
    for _ in 0..3 {
        match n.exec(cmd).await {
            Ok(o) if o.success() => return Ok(o.out().to_string()),
            Ok(o) => last = format!("{o:?}"),
            Err(e) => last = e.to_string(),
        }
        // Not synchronisation: a back-off while the master notices its connection is gone.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    anyhow::bail!("no success after a dropped connection: {last}")
}

/// The cached copies of kvd on a lab host, as `inode path` lines (looked at through docker).
async fn cached_kvd(lab: &Lab, host: &str) -> Result<String> {
    let o = lab
        .cluster
        .node(host)?
        .exec("stat -c '%i %n' /root/.cache/cluster-sim/bin/*/kvd 2>/dev/null || true")
        .await?
        .check()?;
    Ok(o.out().to_string())
}

/// Runs `kvd cli` against the node's own kvd.
async fn kv(c: &Cluster, node: &str, command: &str) -> Result<String> {
    let o = c
        .node(node)?
        .exec(format!("kvd cli 127.0.0.1:7400 {command}"))
        .await?
        .check()?;
    Ok(o.out().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn kvd_is_uploaded_once_per_host_runs_and_is_collected() -> Result<()> {
    with_lab(|lab| async move {
        let spec = || ClusterSpec::from_file(conformance::fixtures().join("clusters/kvd3.toml"));
        let hosts = ["n1", "n2", "n3"];
        for h in hosts {
            ensure!(
                cached_kvd(&lab, h).await?.is_empty(),
                "{h} has kvd before the run"
            );
        }

        let backend = SshBackend::from_file(&lab.inventory)?;
        let c = Cluster::builder(spec()?)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let r = async {
            // One upload per host, in the cache named by the file's hash; kvd runs from its dest.
            let mut first = Vec::new();
            for h in hosts {
                let cached = cached_kvd(&lab, h).await?;
                ensure!(cached.lines().count() == 1, "{h}: {cached:?}");
                first.push(cached);
                let v = c.node(h)?.exec("kvd --version").await?.check()?;
                ensure!(v.out().starts_with("kvd "), "{}", v.out());
            }
            // Writes through the primary reach the followers over the hosts' node addresses.
            for i in 1..=5 {
                let r = kv(&c, "n1", &format!("SET key{i} v{i}")).await?;
                ensure!(r == format!("OK {i}"), "SET key{i} -> {r:?}");
            }
            for f in ["n2", "n3"] {
                conformance::wait_for(
                    &format!("{f} to replicate"),
                    Duration::from_secs(20),
                    || async {
                        let got = kv(&c, f, "GET key5").await.ok()?;
                        (got == "VALUE v5").then_some(())
                    },
                )
                .await?;
            }
            // collect gathers the relative globs from every ssh node.
            let out = tempfile::tempdir()?;
            let reports = c.collect_files(out.path()).await;
            ensure!(reports.len() == 3, "{reports:?}");
            for r in &reports {
                ensure!(
                    r.error.is_none() && r.files == 2 && r.cut.is_empty(),
                    "{r:?}"
                );
                let files = out.path().join("nodes").join(&r.node).join("files");
                let log = std::fs::read_to_string(files.join("log/kvd.log"))?;
                ensure!(!log.is_empty(), "{}: empty kvd.log", r.node);
                ensure!(
                    files.join("data/kvd.meta").is_file(),
                    "{}: no kvd.meta",
                    r.node
                );
            }
            Ok(first)
        }
        .await;
        c.down().await?;
        backend.close().await;
        let first = r?;

        // A second run with a fresh backend finds the same hash on every host: no upload (the
        // cached file keeps its inode; an upload renames a new file over it).
        let backend = SshBackend::from_file(&lab.inventory)?;
        let c = Cluster::builder(spec()?)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let r = async {
            for (h, before) in hosts.iter().zip(&first) {
                let now = cached_kvd(&lab, h).await?;
                ensure!(&now == before, "{h}: uploaded again: {before:?} -> {now:?}");
            }
            // down removed the working directories: a fresh store, and kvd serves it.
            let r = kv(&c, "n1", "SET again 1").await?;
            ensure!(r == "OK 1", "after a second up: {r:?}");
            conformance::wait_for("n2 to replicate again", Duration::from_secs(20), || async {
                (kv(&c, "n2", "GET again").await.ok()? == "VALUE 1").then_some(())
            })
            .await
        }
        .await;
        c.down().await?;
        backend.close().await;
        r
    })
    .await
}

/// Versions of kvd on ssh hosts (fixtures/clusters/kvd_upgrade.toml: the protocol-1 build from
/// a git commit on every node): one node switched to the workspace's build, which is copied
/// over the old file, replicates from the old primary; switched back, kvd itself refuses the
/// data folder the new build stamped.
#[tokio::test(flavor = "multi_thread")]
async fn kvd_versions_switch_on_ssh_hosts() -> Result<()> {
    with_lab(|lab| async move {
        let spec =
            ClusterSpec::from_file(conformance::fixtures().join("clusters/kvd_upgrade.toml"))?;
        let backend = SshBackend::from_file(&lab.inventory)?;
        let c = Cluster::builder(spec)
            .backend(Arc::new(backend.clone()))
            .up()
            .await?;
        let r = async {
            let n2 = c.node("n2")?;
            let version = || async {
                let o = n2.exec("kvd --version").await?.check()?;
                anyhow::Ok(o.out().to_string())
            };
            ensure!(
                version().await?.ends_with("(protocol 1)"),
                "{}",
                version().await?
            );
            n2.set_version("kvd", "new").await?;
            ensure!(
                version().await?.ends_with("(protocol 2)"),
                "{}",
                version().await?
            );
            ensure!(kv(&c, "n1", "SET k v").await? == "OK 1");
            conformance::wait_for("n2 to replicate", Duration::from_secs(20), || async {
                (kv(&c, "n2", "GET k").await.ok()? == "VALUE v").then_some(())
            })
            .await?;
            let e = n2
                .set_version("kvd", "old")
                .await
                .err()
                .context("the downgrade was not refused")?
                .to_string();
            ensure!(e.contains("downgrade refused"), "{e}");
            Ok(())
        }
        .await;
        c.down().await?;
        backend.close().await;
        r
    })
    .await
}
