//! Images with a spec's `packages`: an image derived from a node image (or any Debian-family
//! image) with more Debian packages installed, built once per (image, package set) and cached
//! in the engine under a tag that hashes both.
//!
//! Nothing is pulled and no container needs a network: the `.deb` files are downloaded on this
//! machine by its own apt, resolved against the image's dpkg database (`debs.rs`), copied into a
//! build container made from the image (network `none`), installed there by apt, and the
//! container is committed as the derived image. Builds take the image build lock, so two runs
//! wanting the same image build it once; the second finds it cached.

use std::collections::HashMap;
use std::io::Read;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerConfig, ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateContainerOptionsBuilder,
    DownloadFromContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    UploadToContainerOptionsBuilder, WaitContainerOptions,
};
use bollard::Docker;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

use super::base::SUITE;
use super::debs::{self, Debs};
use super::definition::{short_hex, BUILDER_VERSION};
use super::engine;
use super::ensured::EnsuredImage;
use super::error::{ImageError, Tail};
use super::lock;
use super::progress::Progress;

/// The repository of images with packages: `cluster-sim/packages:<hash of the image id and the
/// sorted packages>`.
pub const PACKAGES_IMAGE: &str = "cluster-sim/packages";

/// Label on an image with packages: its packages, sorted, space separated.
pub const PACKAGES_LABEL: &str = "cluster-sim.image.packages";

/// Label on an image with packages: the id of the image it was derived from.
pub const FROM_LABEL: &str = "cluster-sim.image.from";

/// Where the `.deb` files go in the build container (removed before the commit).
const DEBS_DIR: &str = "tmp/cluster-sim-debs";

/// Installs the copied packages with apt (which orders them; no lists are needed, every
/// dependency is among the files or already installed), with services kept from starting,
/// then checks each asked-for package is installed and removes what the image never needs.
/// While it runs, dpkg skips its fsync calls (the container is thrown away if anything fails)
/// and the documentation, manual pages and translations the base image was slimmed of.
const INSTALL_SCRIPT: &str = r#"set -eu
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
mkdir -p /etc/dpkg/dpkg.cfg.d
cfg=/etc/dpkg/dpkg.cfg.d/zz-cluster-sim-build
printf '%s\n' force-unsafe-io 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
  'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/info/*' 'path-exclude=/usr/share/locale/*' > "$cfg"
if ls /tmp/cluster-sim-debs/*.deb >/dev/null 2>&1; then
  apt-get install -y -q --no-install-recommends /tmp/cluster-sim-debs/*.deb
fi
for p in "$@"; do
  name=${p%%[=:]*}
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$name" 2>/dev/null)" = installed ] || { echo "not installed: $name" >&2; exit 1; }
done
rm -rf "$cfg" /tmp/cluster-sim-debs /usr/sbin/policy-rc.d /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log
"#;

/// The sorted, deduplicated package set.
fn package_set(packages: &[String]) -> Vec<String> {
    let mut set = packages.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

/// `cluster-sim/packages:<12 hex digits>` for the image `image_id` plus `packages`.
pub(crate) fn packages_tag(image_id: &str, packages: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"cluster-sim packages ");
    hasher.update(BUILDER_VERSION.as_bytes());
    hasher.update([0]);
    hasher.update(image_id.as_bytes());
    for p in package_set(packages) {
        hasher.update([0]);
        hasher.update(p.as_bytes());
    }
    format!("{PACKAGES_IMAGE}:{}", short_hex(hasher))
}

/// Makes sure an image of `image` (a tag or id the engine has) with `packages` installed
/// exists, building it on first use; returns its tag. With no packages, `image` itself.
///
/// The cache key is the image's id and the sorted packages, so a rebuilt node image gets its
/// derived images rebuilt too, and nodes asking for the same set share one image. A package
/// apt can't find is [`ImageError::NoSuchPackage`].
pub async fn ensure_packages(
    docker: &Docker,
    image: &str,
    packages: &[String],
    quiet: bool,
) -> Result<EnsuredImage, ImageError> {
    let Some(image_id) = engine::image_id(docker, image).await? else {
        return Err(ImageError::NoImage {
            image: image.to_owned(),
        });
    };
    if packages.is_empty() {
        return Ok(EnsuredImage {
            tag: image.to_owned(),
            id: image_id,
            built: false,
            base: None,
        });
    }
    let set = package_set(packages);
    let tag = packages_tag(&image_id, &set);
    let cached = |id: String| EnsuredImage {
        tag: tag.clone(),
        id,
        built: false,
        base: Some(image.to_owned()),
    };
    if let Some(id) = engine::image_id(docker, &tag).await? {
        return Ok(cached(id));
    }
    let progress = Progress::new(quiet);
    let _lock = lock::acquire(&progress).await?;
    // Another task or process may have built it while we waited.
    if let Some(id) = engine::image_id(docker, &tag).await? {
        return Ok(cached(id));
    }
    let started = Instant::now();
    progress.step(&format!(
        "building {tag}: {image} with {} (once; cached after)",
        set.join(" ")
    ));
    let status = read_image_file(docker, image, "/var/lib/dpkg/status").await?;
    let work_dir = work_dir();
    let debs = debs::download(&status, SUITE, &set, &work_dir, &progress).await?;
    progress.step(&format!(
        "installing {} files ({:.1} MB) in a build container without network...",
        debs.files.len(),
        debs.bytes() as f64 / 1e6
    ));
    let built = install_and_commit(docker, image, &image_id, &set, &debs, &tag, &progress).await;
    debs.remove()?;
    let id = built?;
    progress.step(&format!("built {tag} in {:.0?}", started.elapsed()));
    Ok(EnsuredImage {
        tag,
        id,
        built: true,
        base: Some(image.to_owned()),
    })
}

/// [`ensure_packages`] on the local engine (`DOCKER_HOST`, else the local socket), showing
/// progress: for callers that hold no engine client (`cluster-sim image build --packages`).
pub async fn ensure_packages_local(
    image: &str,
    packages: &[String],
) -> Result<EnsuredImage, ImageError> {
    let connecting = |source| ImageError::Docker {
        action: "connecting to the Docker engine".into(),
        source,
    };
    let docker = Docker::connect_with_defaults()
        .map_err(connecting)?
        .negotiate_version()
        .await
        .map_err(connecting)?;
    ensure_packages(&docker, image, packages, false).await
}

/// Where apt's private state goes while downloading: `$CARGO_TARGET_DIR/cluster-sim/`, else
/// `cluster-sim/` in the system temp dir.
fn work_dir() -> std::path::PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(target) => std::path::PathBuf::from(target).join("cluster-sim"),
        None => std::env::temp_dir().join("cluster-sim"),
    }
}

/// A container of our own that is removed when this goes out of scope, however the build ends
/// (a cancelled build removes it from a spawned task).
struct BuildContainer {
    docker: Docker,
    name: String,
    removed: bool,
}

impl BuildContainer {
    async fn remove(mut self) {
        self.removed = true;
        remove_container(&self.docker, &self.name).await;
    }
}

impl Drop for BuildContainer {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { remove_container(&docker, &name).await });
        }
    }
}

async fn remove_container(docker: &Docker, name: &str) {
    let opts = RemoveContainerOptionsBuilder::default().force(true).build();
    if let Err(e) = docker.remove_container(name, Some(opts)).await {
        tracing::warn!("removing the image build container {name}: {e}");
    }
}

/// A name of our own for a build container: the tag's hash, this process and the time.
fn build_name(tag: &str) -> String {
    let hash = tag.rsplit(':').next().unwrap_or("x");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "cluster-sim-packages-build-{hash}-{}-{nanos}",
        std::process::id()
    )
}

/// Creates a container from `image` with no network, copies the packages in, installs them,
/// and commits it as `tag` with the image's own command and entrypoint.
async fn install_and_commit(
    docker: &Docker,
    image: &str,
    image_id: &str,
    set: &[String],
    debs: &Debs,
    tag: &str,
    progress: &Progress,
) -> Result<String, ImageError> {
    let engine_err = |action: String| move |source| ImageError::Docker { action, source };
    let name = build_name(tag);
    let mut cmd = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        INSTALL_SCRIPT.to_owned(),
        "cluster-sim-install".to_owned(),
    ];
    cmd.extend(set.iter().cloned());
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(cmd),
        user: Some("root".into()),
        labels: Some(HashMap::from([(
            "cluster-sim.image.build".to_owned(),
            tag.to_owned(),
        )])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(engine_err(format!("creating the build container {name}")))?;
    let container = BuildContainer {
        docker: docker.clone(),
        name: name.clone(),
        removed: false,
    };
    let result = async {
        let archive = debs_archive(debs)?;
        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
        docker
            .upload_to_container(&name, Some(opts), bollard::body_full(archive.into()))
            .await
            .map_err(engine_err(format!("copying the packages into {name}")))?;
        docker
            .start_container(&name, None)
            .await
            .map_err(engine_err(format!("starting {name}")))?;
        let code = wait(docker, &name).await?;
        let tail = logs(docker, &name, progress).await;
        if code != 0 {
            return Err(ImageError::PackageInstall {
                tag: tag.to_owned(),
                packages: set.join(" "),
                status: format!("exit code {code}"),
                tail,
            });
        }
        progress.step(&format!("committing {tag}..."));
        commit(docker, image, image_id, set, &name, tag).await
    }
    .await;
    container.remove().await;
    result
}

/// The `.deb` files as a tar under [`DEBS_DIR`].
fn debs_archive(debs: &Debs) -> Result<Vec<u8>, ImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    for file in &debs.files {
        let name = file.file_name().unwrap_or_default();
        tar.append_path_with_name(file, std::path::Path::new(DEBS_DIR).join(name))
            .map_err(|source| ImageError::Rootfs {
                action: "pack the downloaded package",
                path: file.clone(),
                source,
            })?;
    }
    tar.into_inner().map_err(|source| ImageError::Rootfs {
        action: "pack the downloaded packages",
        path: DEBS_DIR.into(),
        source,
    })
}

/// Waits for the container to exit; its exit code.
async fn wait(docker: &Docker, name: &str) -> Result<i64, ImageError> {
    let mut stream = docker.wait_container(name, None::<WaitContainerOptions>);
    match stream.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        // A non-zero exit comes back as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(source)) => Err(ImageError::Docker {
            action: format!("waiting for {name}"),
            source,
        }),
        None => Ok(0),
    }
}

/// The tail of the container's output (each line also shown as progress).
async fn logs(docker: &Docker, name: &str, progress: &Progress) -> Vec<String> {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .build();
    let chunks: Vec<_> = docker
        .logs(name, Some(opts))
        .filter_map(|c| async move { c.ok() })
        .collect()
        .await;
    let mut tail = Tail::default();
    for chunk in chunks {
        let text = chunk.to_string();
        for line in text.lines() {
            progress.detail(line);
        }
        tail.push_text(&text);
    }
    tail.to_vec()
}

/// Commits the container as `tag`, with the image's own command and entrypoint back (the
/// container ran the install script) and our labels; returns the new image's id.
async fn commit(
    docker: &Docker,
    image: &str,
    image_id: &str,
    set: &[String],
    name: &str,
    tag: &str,
) -> Result<String, ImageError> {
    let inspected = docker
        .inspect_image(image)
        .await
        .map_err(|source| ImageError::Docker {
            action: format!("inspecting image {image}"),
            source,
        })?;
    let own = inspected.config.unwrap_or_default();
    let mut labels = own.labels.clone().unwrap_or_default();
    labels.insert(PACKAGES_LABEL.to_owned(), set.join(" "));
    labels.insert(FROM_LABEL.to_owned(), image_id.to_owned());
    let config = ContainerConfig {
        cmd: own.cmd.clone().or_else(|| Some(Vec::new())),
        entrypoint: own.entrypoint.clone(),
        labels: Some(labels),
        ..Default::default()
    };
    let (repo, tag_part) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let opts = CommitContainerOptionsBuilder::default()
        .container(name)
        .repo(repo)
        .tag(tag_part)
        .comment("cluster-sim: packages installed")
        .pause(false)
        .build();
    docker
        .commit_container(opts, config)
        .await
        .map_err(|source| ImageError::Docker {
            action: format!("committing {name} as {tag}"),
            source,
        })?;
    engine::image_id(docker, tag)
        .await?
        .ok_or_else(|| ImageError::PackageInstall {
            tag: tag.to_owned(),
            packages: set.join(" "),
            status: "the commit produced no image".into(),
            tail: Vec::new(),
        })
}

/// One file of an image, read from a container created (never started) from it.
async fn read_image_file(docker: &Docker, image: &str, path: &str) -> Result<Vec<u8>, ImageError> {
    let name = build_name(&format!("read:{}", std::process::id()));
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["true".into()]),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let opts = CreateContainerOptionsBuilder::default().name(&name).build();
    docker
        .create_container(Some(opts), body)
        .await
        .map_err(|source| ImageError::Docker {
            action: format!("creating a container from {image} to read {path}"),
            source,
        })?;
    let container = BuildContainer {
        docker: docker.clone(),
        name: name.clone(),
        removed: false,
    };
    let opts = DownloadFromContainerOptionsBuilder::default()
        .path(path)
        .build();
    let chunks: Result<Vec<bytes::Bytes>, _> = docker
        .download_from_container(&name, Some(opts))
        .try_collect()
        .await;
    container.remove().await;
    let tarball = match chunks {
        Ok(c) => c.concat(),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            return Err(ImageError::NoDpkg {
                image: image.to_owned(),
            })
        }
        Err(source) => {
            return Err(ImageError::Docker {
                action: format!("reading {path} of {image}"),
                source,
            })
        }
    };
    let mut archive = tar::Archive::new(tarball.as_slice());
    let unpack = |source| ImageError::Rootfs {
        action: "unpack",
        path: path.into(),
        source,
    };
    for entry in archive.entries().map_err(unpack)? {
        let mut entry = entry.map_err(unpack)?;
        if entry.header().entry_type().is_file() {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).map_err(unpack)?;
            return Ok(data);
        }
    }
    Err(ImageError::NoDpkg {
        image: image.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn tag_hashes_the_image_and_the_sorted_set() {
        let a = packages_tag("sha256:aa", &names(&["postgresql", "jq"]));
        assert!(a.starts_with("cluster-sim/packages:"), "{a}");
        assert_eq!(a.len(), "cluster-sim/packages:".len() + 12);
        assert_eq!(
            a,
            packages_tag("sha256:aa", &names(&["jq", "postgresql", "jq"]))
        );
        assert_ne!(a, packages_tag("sha256:bb", &names(&["jq", "postgresql"])));
        assert_ne!(a, packages_tag("sha256:aa", &names(&["postgresql"])));
    }
}
