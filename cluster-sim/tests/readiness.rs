//! Readiness and up-front validation on a real engine: a slow service is waited for up to its
//! limit (the back-off never overflows), and input errors stop before the engine is touched.

use std::time::{Duration, Instant};

use anyhow::Result;
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::{Cluster, ClusterSpec, ProvisionError};

fn spec(dir: &tempfile::TempDir, name: &str, text: &str) -> Result<ClusterSpec> {
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text)?;
    Ok(ClusterSpec::from_file(&path)?)
}

async fn nothing_named(docker: &DockerBackend, cluster: &str) -> Result<bool> {
    Ok(docker.containers(Some(cluster)).await?.is_empty()
        && !docker.networks().await?.iter().any(|n| n.1 == cluster))
}

/// A service that becomes ready only after 25 s passes within its 60 s limit (the back-off used
/// to overflow and panic at about 20 s).
#[tokio::test(flavor = "multi_thread")]
async fn a_service_ready_after_25s_passes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = spec(
        &dir,
        "slow",
        "nodes = 2\n[service]\ncommand = \"sleep 25; touch /tmp/ready; exec sleep infinity\"\n\
         [ready]\ncommand = \"test -f /tmp/ready\"\ntimeout = \"60s\"\ninterval = \"1s\"\n",
    )?;
    let started = Instant::now();
    let cluster = Cluster::builder(spec)
        .name(format!("cs-test-slow-ready-{}", std::process::id()))
        .up()
        .await?;
    let took = started.elapsed();
    let out = cluster.node("n2")?.exec("test -f /tmp/ready").await;
    cluster.down().await?;
    assert!(out?.success(), "n2 was declared ready before it was");
    assert!(
        took >= Duration::from_secs(25),
        "ready before the service made its file ({took:?})"
    );
    Ok(())
}

/// A bad name or an undefined template variable fails before anything exists in the engine.
#[tokio::test(flavor = "multi_thread")]
async fn input_errors_stop_before_the_engine() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let dir = tempfile::tempdir()?;
    let ok = spec(&dir, "ok", "nodes = 1\n")?;
    for bad in ["", "Bad Name/x", "-x", &"a".repeat(64)] {
        let e = Cluster::builder(ok.clone())
            .name(bad)
            .up()
            .await
            .unwrap_err();
        assert!(matches!(e, ProvisionError::BadName(_)), "{bad:?}: {e}");
        assert!(e.to_string().starts_with("bad cluster name"), "{e}");
    }
    assert!(nothing_named(&docker, "").await?);

    std::fs::write(dir.path().join("t.tmpl"), "x={{ node.adress }}\n")?;
    let e = spec(
        &dir,
        "tmpl",
        "nodes = 2\n[[file]]\ntemplate = \"t.tmpl\"\ndest = \"t.conf\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("tmpl.toml:3:12: key `file[0].template`: node n1: ")
            && e.contains("t.tmpl:1: undefined variable `node.adress`"),
        "{e}"
    );
    Ok(())
}
