//! A spec's `packages` on docker: the node image plus Debian packages, made once per package
//! set (downloaded by this machine's apt, installed in a build container without network) and
//! cached. Uses PostgreSQL, the set `fixtures/clusters/postgres.toml` asks for, so the suites'
//! PostgreSQL tests find the image this builds (or this finds theirs).

use anyhow::{Context, Result};
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use cluster_sim_core::docker::DockerBackend;
use cluster_sim_core::image::{
    default_definition_dir, ensure_packages, ImageBuilder, FROM_LABEL, PACKAGES_IMAGE,
    PACKAGES_LABEL,
};
use cluster_sim_core::{Cluster, ClusterSpec};

async fn engine() -> Result<Docker> {
    Ok(Docker::connect_with_defaults()
        .context("connecting to the docker engine")?
        .negotiate_version()
        .await?)
}

/// Build containers still in the engine (there should be none once a build returns).
async fn build_containers(docker: &Docker) -> Result<Vec<String>> {
    let filters =
        std::collections::HashMap::from([("label", vec!["cluster-sim.image.build".to_owned()])]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    Ok(docker
        .list_containers(Some(opts))
        .await?
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .filter(|n| n.contains(&format!("-{}-", std::process::id())))
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_set_builds_once_and_is_cached() -> Result<()> {
    let docker = engine().await?;
    let dir = default_definition_dir().context("no docker/node definition found")?;
    let node = ImageBuilder::new(dir).ensure_image(&docker).await?;
    let set = vec!["postgresql".to_owned()];

    // Two concurrent callers: at most one builds; both get the same image.
    let (a, b) = tokio::join!(
        ensure_packages(&docker, &node.tag, &set, true),
        ensure_packages(&docker, &node.tag, &set, true)
    );
    let (a, b) = (a?, b?);
    assert_eq!(a.tag, b.tag);
    assert_eq!(a.id, b.id);
    assert!(!(a.built && b.built), "both concurrent callers built it");
    assert!(
        a.tag.starts_with(&format!("{PACKAGES_IMAGE}:")),
        "{}",
        a.tag
    );

    // A third call is a cache hit; the image says what it holds and what it came from.
    let again = ensure_packages(&docker, &node.tag, &set, true).await?;
    assert!(!again.built, "a cached image was rebuilt");
    assert_eq!(again.id, a.id);
    let labels = docker
        .inspect_image(&a.tag)
        .await?
        .config
        .and_then(|c| c.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get(PACKAGES_LABEL).map(String::as_str),
        Some("postgresql")
    );
    assert_eq!(labels.get(FROM_LABEL), Some(&node.id));
    assert!(build_containers(&docker).await?.is_empty());

    // No packages: the image itself.
    let plain = ensure_packages(&docker, &node.tag, &[], true).await?;
    assert_eq!(plain.tag, node.tag);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_apt_cannot_find_is_one_line_naming_it_and_the_spec_line() -> Result<()> {
    let docker = DockerBackend::connect().await?;
    let name = format!("cs-test-badpkg-{}", std::process::id());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad-package.toml");
    std::fs::write(
        &path,
        "nodes = 1\n\n[[node]]\nname = \"n1\"\npackages = [\"postgresql\", \"no-such-package-cs\"]\n",
    )?;
    let spec = ClusterSpec::from_file(&path)?;
    let e = Cluster::builder(spec)
        .name(&name)
        .up()
        .await
        .expect_err("a missing package must fail the cluster");
    let msg = e.to_string();
    let place = format!("{}:5", path.display());
    assert!(
        msg.contains(&place) && msg.contains("`no-such-package-cs`") && !msg.contains('\n'),
        "{msg}"
    );
    assert!(docker.containers(Some(&name)).await?.is_empty());
    assert!(build_containers(&engine().await?).await?.is_empty());
    Ok(())
}

#[test]
fn a_package_name_apt_would_never_take_is_a_spec_error_at_its_line() {
    let text = "nodes = 1\npackages = [\"Postgres SQL\"]\n";
    let e =
        ClusterSpec::parse(text, "t.toml", std::path::Path::new("."), "t").expect_err("refused");
    let msg = e.to_string();
    assert!(
        msg.starts_with("t.toml:2:")
            && msg.contains("\"Postgres SQL\" is not a Debian package name"),
        "{msg}"
    );
}
