//! Chooses the base image the node image is built `FROM`: a local `debian:bookworm-slim`,
//! else the cached debootstrapped base, else (only with `CLUSTER_SIM_PULL=1`) a pull with a
//! short deadline, else a fresh base
//! bootstrapped offline with debootstrap and imported into the engine.

use std::path::Path;
use std::time::Duration;

use bollard::query_parameters::CreateImageOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::apt;
use super::debootstrap;
use super::definition::{short_hex, BUILDER_VERSION};
use super::engine;
use super::error::ImageError;
use super::progress::Progress;

/// The Debian suite of every node image.
pub(crate) const SUITE: &str = "bookworm";

/// The upstream base the Dockerfile defaults to.
pub(crate) const SLIM_IMAGE: &str = "debian:bookworm-slim";

/// The repository of debootstrapped base images.
pub const BASE_IMAGE: &str = "cluster-sim/base";

/// Set to 1 to pull `debian:bookworm-slim` from a registry instead of bootstrapping offline.
pub const PULL_VAR: &str = "CLUSTER_SIM_PULL";

/// How long a pull may take to show any sign of a registry before we bootstrap instead.
const PULL_FIRST_RESPONSE: Duration = Duration::from_secs(15);

/// How long a pull that has started may go without a progress message.
const PULL_IDLE: Duration = Duration::from_secs(120);

/// The tag of the debootstrapped base for these packages:
/// `cluster-sim/base:bookworm-<hash of suite, architecture, sorted packages, builder version>`.
pub(crate) fn base_tag(packages: &[String]) -> String {
    let mut sorted: Vec<&str> = packages.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hasher = Sha256::new();
    hasher.update(b"cluster-sim base ");
    hasher.update(BUILDER_VERSION.as_bytes());
    hasher.update([0]);
    hasher.update(SUITE.as_bytes());
    hasher.update([0]);
    hasher.update(std::env::consts::ARCH.as_bytes());
    for package in sorted {
        hasher.update([0]);
        hasher.update(package.as_bytes());
    }
    format!("{BASE_IMAGE}:{SUITE}-{}", short_hex(hasher))
}

/// Returns the name of a base image present in the engine, making one if needed.
///
/// With `force`, a cached debootstrapped base is rebuilt (a local `debian:bookworm-slim` is
/// still used as it is).
pub(crate) async fn ensure_base(
    docker: &Docker,
    packages: &[String],
    force: bool,
    work_dir: &Path,
    progress: &Progress,
) -> Result<String, ImageError> {
    if engine::image_id(docker, SLIM_IMAGE).await?.is_some() {
        progress.step(&format!("base image: {SLIM_IMAGE} (local)"));
        return Ok(SLIM_IMAGE.to_owned());
    }
    // A base bootstrapped earlier beats a pull: it holds every package already, so the node
    // build needs no network at all.
    let tag = base_tag(packages);
    if !force && engine::image_id(docker, &tag).await?.is_some() {
        progress.step(&format!("base image: {tag} (cached)"));
        return Ok(tag);
    }

    // Pulling contacts a registry, so it happens only when asked for: CI machines and sandboxes
    // without one must not send traffic anywhere but the configured apt mirror.
    if std::env::var(PULL_VAR).is_ok_and(|v| v == "1" || v == "true") {
        progress.step(&format!("pulling {SLIM_IMAGE}..."));
        match pull(docker, SLIM_IMAGE, progress).await {
            Ok(()) => {
                progress.step(&format!("base image: {SLIM_IMAGE} (pulled)"));
                return Ok(SLIM_IMAGE.to_owned());
            }
            Err(why) => progress.step(&format!(
                "no registry ({why}); bootstrapping the base image offline instead"
            )),
        }
    }

    let etc_apt = Path::new(apt::ETC_APT);
    debootstrap::bootstrap_image(docker, etc_apt, SUITE, packages, &tag, work_dir, progress)
        .await?;
    Ok(tag)
}

/// Pulls `image`, failing fast where no registry answers. Any failure means "no registry":
/// the caller falls back to debootstrap, so the reason is only reported, not returned as an
/// error.
async fn pull(docker: &Docker, image: &str, progress: &Progress) -> Result<(), String> {
    let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
    let options = CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut deadline = PULL_FIRST_RESPONSE;
    loop {
        match tokio::time::timeout(deadline, stream.next()).await {
            Err(_) => return Err(format!("no answer within {}s", deadline.as_secs())),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(first_line(&e.to_string())),
            Ok(Some(Ok(info))) => {
                if let Some(status) = info.status {
                    progress.detail(&status);
                }
                deadline = PULL_IDLE;
            }
        }
    }
    match engine::image_id(docker, image).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the pull ended without the image".to_owned()),
        Err(e) => Err(first_line(&e.to_string())),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn base_tag_depends_on_the_package_set_only() {
        let a = base_tag(&names(&["tini", "etcd-server"]));
        assert!(a.starts_with("cluster-sim/base:bookworm-"), "{a}");
        assert_eq!(a.len(), "cluster-sim/base:bookworm-".len() + 12);
        assert_eq!(a, base_tag(&names(&["etcd-server", "tini", "tini"])));
        assert_ne!(a, base_tag(&names(&["etcd-server", "tini", "procps"])));
    }
}
