//! Your own service on the nodes, against a real engine: a workspace binary built by cargo
//! and mounted into the nodes, folder configs, and `collect` gathering files back.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use cluster_sim_core::service::Workspace;
use cluster_sim_core::{Cluster, ClusterSpec};

fn clusters_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/clusters")
}

fn parse(text: &str) -> Result<ClusterSpec, cluster_sim_core::SpecError> {
    ClusterSpec::parse(text, "t.toml", &clusters_dir(), "t")
}

#[test]
fn spec_errors_name_file_line_and_key() {
    let e = parse("nodes = 1\n[[binary]]\npackage = \"nope\"\ndest = \"/usr/local/bin/x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:3:11: key `binary[0].package`: no workspace package \"nope\" around the spec's folder "),
        "{e}"
    );
    assert!(e.contains("or the current directory"), "{e}");
    assert!(e.contains("kvd"), "{e}");
    let e = parse("nodes = 1\n[[binary]]\npackage = \"kvd\"\nbin = \"kv\"\ndest = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `binary[0].bin`: package \"kvd\" has no binary \"kv\" (its binaries: kvd)"),
        "{e}"
    );
    let e = parse("nodes = 1\n[[dir]]\nsource = \"nope/conf\"\ndest = \"conf\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:3:10: key `dir[0].source`: folder \"nope/conf\" not found"),
        "{e}"
    );
    let e = parse("nodes = 1\ncollect = [\"logs/$(rm -rf x)\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:2:12: key `collect`: bad collect pattern"),
        "{e}"
    );
}

/// A spec outside any workspace (here a temporary folder) finds its `[[binary]]` package in
/// the workspace of the current directory, as `cluster-sim up /elsewhere/x.toml` run inside
/// the workspace does.
#[test]
fn a_spec_outside_the_workspace_builds_the_current_workspace_s_package() {
    let dir = tempfile::tempdir().unwrap();
    let text = "nodes = 1\n[[binary]]\npackage = \"kvd\"\ndest = \"/usr/local/bin/kvd\"\n";
    let spec = ClusterSpec::parse(text, "x.toml", dir.path(), "x").unwrap();
    assert_eq!(spec.binaries[0].package, "kvd");
    let ws = Workspace::for_package(dir.path(), "kvd").unwrap();
    assert!(
        ws.root.join("examples/kvd").is_dir(),
        "{}",
        ws.root.display()
    );
}

#[test]
fn dir_templates_are_checked_at_parse_time() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("sub")).unwrap();
    std::fs::write(conf.join("a.conf.tmpl"), "name = {{ node.name }}\n").unwrap();
    std::fs::write(conf.join("sub/plain"), "as is\n").unwrap();
    let text = "nodes = 2\n[[dir]]\nsource = \"conf\"\ndest = \"etc/app\"\n";
    let spec = ClusterSpec::parse(text, "t.toml", dir.path(), "t").unwrap();
    let dests: Vec<_> = spec.nodes[0]
        .files
        .iter()
        .map(|f| (f.dest.as_str(), f.template))
        .collect();
    assert_eq!(
        dests,
        [("etc/app/a.conf", true), ("etc/app/sub/plain", false)]
    );
    std::fs::write(conf.join("a.conf.tmpl"), "x\nname = {{ node.nmae }}\n").unwrap();
    let e = ClusterSpec::parse(text, "t.toml", dir.path(), "t")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("t.toml:3:10: key `dir[0].source`: node n1: "),
        "{e}"
    );
    assert!(
        e.contains("a.conf.tmpl:2: undefined variable `node.nmae`"),
        "{e}"
    );
}

/// Brings a spec up, runs `body`, removes the cluster whatever happened.
async fn with_cluster<F, Fut>(spec: ClusterSpec, body: F) -> Result<()>
where
    F: FnOnce(Cluster) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let cluster = Cluster::builder(spec).up().await?;
    let r = body(cluster.clone()).await;
    cluster.down().await?;
    r
}

#[tokio::test]
async fn binary_is_mounted_read_only_from_one_built_file() -> Result<()> {
    let spec = ClusterSpec::from_file(clusters_dir().join("kvd3.toml"))?;
    let ws = Workspace::around(&clusters_dir()).map_err(anyhow::Error::msg)?;
    with_cluster(spec, |cluster| async move {
        let mut hashes = Vec::new();
        for n in cluster.nodes() {
            let v = n.exec("kvd --version").await?.check()?;
            ensure!(v.out().starts_with("kvd "), "{}", v.out());
            // A bind mount, read-only: no per-node copy.
            let m = n
                .exec("grep ' /usr/local/bin/kvd ' /proc/mounts")
                .await?
                .check()?;
            ensure!(
                m.out().contains(" ro,") || m.out().contains(" ro "),
                "{}",
                m.out()
            );
            let h = n.exec("sha256sum /usr/local/bin/kvd").await?.check()?;
            hashes.push(h.out().split_whitespace().next().unwrap_or("").to_string());
        }
        ensure!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
        // The mounted file is the content-addressed copy in the target directory.
        let stash = ws
            .target_dir
            .join("cluster-sim/bin")
            .join(&hashes[0])
            .join("kvd");
        ensure!(stash.is_file(), "{} is missing", stash.display());
        Ok(())
    })
    .await
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

#[tokio::test]
async fn collect_gathers_globs_under_a_cap() -> Result<()> {
    let spec = parse(
        "nodes = 2\ncollect = [\"/var/log/t/*.log\", \"data/*.meta\"]\ncollect_limit = \"4k\"\n",
    )?;
    with_cluster(spec, |cluster| async move {
        let n1 = cluster.node("n1")?;
        n1.exec(
            "mkdir -p /var/log/t \"$CLUSTER_SIM_WORKDIR/data\" && head -c 3000 /dev/zero > /var/log/t/a.log \
             && seq 1 2000 > /var/log/t/b.log && echo offset=7 > \"$CLUSTER_SIM_WORKDIR/data/n.meta\"",
        )
        .await?
        .check()?;
        let b_tail = n1.exec("tail -c 1096 /var/log/t/b.log").await?.check()?;
        let out = tempfile::tempdir()?;
        let reports = cluster.collect_files(out.path()).await;
        let r1 = reports.iter().find(|r| r.node == "n1").context("no report for n1")?;
        ensure!(r1.error.is_none(), "{r1:?}");
        ensure!(r1.files == 2 && r1.bytes == 4096, "{r1:?}");
        let files = out.path().join("nodes/n1/files");
        ensure!(file_len(&files.join("var/log/t/a.log")) == Some(3000));
        // The file that crosses the cap keeps its tail; the one after it is left out.
        let b = std::fs::read(files.join("var/log/t/b.log"))?;
        ensure!(b == b_tail.stdout.to_vec(), "b.log is not the tail");
        ensure!(!files.join("data/n.meta").exists());
        let note = std::fs::read_to_string(out.path().join("nodes/n1/files-cut.txt"))?;
        ensure!(note.contains("/var/log/t/b.log") && note.contains("data/n.meta"), "{note}");
        // n2 matched nothing: nothing written, no error.
        let r2 = reports.iter().find(|r| r.node == "n2").context("no report for n2")?;
        ensure!(r2.files == 0 && r2.error.is_none(), "{r2:?}");
        ensure!(!out.path().join("nodes/n2/files").exists());
        Ok(())
    })
    .await
}

/// A throwaway workspace holding one package, `svc`, whose binary does not compile.
fn broken_workspace() -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    std::fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"svc\"]\nresolver = \"2\"\n",
    )?;
    std::fs::create_dir_all(root.join("svc/src"))?;
    std::fs::write(
        root.join("svc/Cargo.toml"),
        "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )?;
    std::fs::write(
        root.join("svc/src/main.rs"),
        "fn main() {\n    let n: u32 = \"not a number\";\n    println!(\"{n}\");\n}\n",
    )?;
    std::fs::write(
        root.join("svc.toml"),
        "nodes = 2\n[[binary]]\npackage = \"svc\"\ndest = \"/usr/local/bin/svc\"\n",
    )?;
    Ok(dir)
}

#[tokio::test]
async fn a_broken_binary_fails_every_cluster_with_cargos_error_once() -> Result<()> {
    let ws = broken_workspace()?;
    let spec = ClusterSpec::from_file(ws.path().join("svc.toml"))?;
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let progress: std::sync::Arc<dyn Fn(&str) + Send + Sync> =
        std::sync::Arc::new(move |line: &str| {
            if line.starts_with("cargo build ") {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
    // Two clusters of the same spec, side by side, as two tests of one run would ask.
    let (a, b) = tokio::join!(
        cluster_sim_core::service::build_all(&spec, progress.clone()),
        cluster_sim_core::service::build_all(&spec, progress.clone()),
    );
    for r in [a, b] {
        let e = r.err().context("a broken binary built")?.to_string();
        ensure!(
            e.starts_with("building svc (dev): cargo failed:\nerror[E0308]: mismatched types"),
            "{e}"
        );
        ensure!(
            e.contains("svc/src/main.rs:2:18"),
            "cargo's location is missing: {e}"
        );
    }
    ensure!(
        runs.load(std::sync::atomic::Ordering::SeqCst) == 1,
        "cargo ran {runs:?} times"
    );

    // Bringing a cluster up reports the same error and does not run cargo again: the source
    // now compiles, so a second cargo would have succeeded.
    std::fs::write(ws.path().join("svc/src/main.rs"), "fn main() {}\n")?;
    for _ in 0..2 {
        let e = Cluster::builder(spec.clone())
            .up()
            .await
            .err()
            .context("a cluster came up without its binary")?
            .to_string();
        ensure!(e.contains("error[E0308]: mismatched types"), "{e}");
    }
    ensure!(
        runs.load(std::sync::atomic::Ordering::SeqCst) == 1,
        "cargo ran {runs:?} times"
    );
    Ok(())
}
