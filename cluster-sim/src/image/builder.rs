//! `ImageBuilder`: makes sure the node image for a definition directory exists in the engine,
//! building it (and its base) only when no image with the definition's content hash exists.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bollard::Docker;

use super::base;
use super::debootstrap;
use super::definition::Definition;
use super::engine;
use super::ensured::EnsuredImage;
use super::error::ImageError;
use super::lock;
use super::node_build;
use super::packages::ensure_packages;
use super::progress::Progress;

/// The repository of node images, the default image of cluster specs. Images are tagged
/// `cluster-sim/node:<content hash>`, and `cluster-sim/node:latest` names the one most
/// recently ensured.
pub const NODE_IMAGE: &str = "cluster-sim/node";

/// The variable that points [`default_definition_dir`] at a node image definition.
pub const DEFINITION_DIR_VAR: &str = "CLUSTER_SIM_IMAGE_DIR";

/// Makes sure the node image described by a definition directory (a `Dockerfile`, a
/// `packages.txt` and whatever they `COPY`) is in the engine.
///
/// The image's tag is a hash of every file in the directory, so an unchanged definition is
/// never rebuilt and an edited one always is. Builds are serialised across tasks and
/// processes; a build that waited re-checks the cache first.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cluster_sim_core::image::{default_definition_dir, ImageBuilder};
///
/// let docker = bollard::Docker::connect_with_defaults()?.negotiate_version().await?;
/// let dir = default_definition_dir().ok_or("no docker/node definition found")?;
/// let tag = ImageBuilder::new(dir).ensure(&docker).await?;
/// println!("node image: {tag}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ImageBuilder {
    dir: PathBuf,
    force: bool,
    quiet: bool,
    repository: String,
    from: Option<String>,
}

impl ImageBuilder {
    /// A builder for the definition in `definition_dir`, e.g. `<workspace>/docker/node`
    /// (see [`default_definition_dir`]).
    pub fn new(definition_dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: definition_dir.into(),
            force: false,
            quiet: false,
            repository: NODE_IMAGE.to_string(),
            from: None,
        }
    }

    /// Tags the image in another repository than [`NODE_IMAGE`] (`<repository>:<hash>` and
    /// `<repository>:latest`): for images of the node image family that nodes do not run, such
    /// as the engines lab's `cluster-sim/engine`, so `cluster-sim/node:latest` stays the node's.
    pub fn repository(mut self, repository: impl Into<String>) -> Self {
        self.repository = repository.into();
        self
    }

    /// Builds `FROM` `image` (a tag or id the engine has, such as the node image's tag) instead
    /// of a Debian base: the definition's `packages.txt` is first installed on it as a spec's
    /// `packages` are ([`ensure_packages`](super::ensure_packages): the host's apt downloads,
    /// no container has a network), and the Dockerfile gets that image as `BASE`. Its id joins
    /// the tag's hash, so the image is rebuilt whenever `image` is.
    pub fn from_image(mut self, image: impl Into<String>) -> Self {
        self.from = Some(image.into());
        self
    }

    /// Rebuilds even when the image is cached, without the engine's layer cache, and
    /// re-bootstraps the offline base too (a local `debian:bookworm-slim` is still used).
    pub fn force(mut self, yes: bool) -> Self {
        self.force = yes;
        self
    }

    /// Shows no progress on stderr. A cache hit shows none either way.
    pub fn quiet(mut self, yes: bool) -> Self {
        self.quiet = yes;
        self
    }

    /// The definition directory.
    pub fn definition_dir(&self) -> &Path {
        &self.dir
    }

    /// The content-hashed tag the definition builds to, without asking the engine. A builder
    /// [`from_image`](Self::from_image) has none: its tag hashes that image's id, which only
    /// the engine knows ([`ImageError::NeedsEngine`]; [`ensure_image`](Self::ensure_image)
    /// tells it).
    pub fn tag(&self) -> Result<String, ImageError> {
        if let Some(image) = &self.from {
            return Err(ImageError::NeedsEngine {
                image: image.clone(),
            });
        }
        let hash = Definition::read(&self.dir)?.content_hash();
        Ok(format!("{}:{hash}", self.repository))
    }

    /// Makes sure the image exists and returns its content-hashed tag.
    pub async fn ensure(&self, docker: &Docker) -> Result<String, ImageError> {
        Ok(self.ensure_image(docker).await?.tag)
    }

    /// [`ensure`](Self::ensure) on the local engine (`DOCKER_HOST`, else the local socket):
    /// for callers that hold no engine client (`cluster-sim image build`).
    pub async fn ensure_local(&self) -> Result<String, ImageError> {
        let connecting = |source| ImageError::Docker {
            action: "connecting to the Docker engine".into(),
            source,
        };
        let docker = Docker::connect_with_defaults()
            .map_err(connecting)?
            .negotiate_version()
            .await
            .map_err(connecting)?;
        self.ensure(&docker).await
    }

    /// Like [`ensure`](Self::ensure), also telling whether it built the image.
    pub async fn ensure_image(&self, docker: &Docker) -> Result<EnsuredImage, ImageError> {
        let def = Definition::read(&self.dir)?;
        // On another image: that image with the definition's packages is the base (made once,
        // under the build lock, by ensure_packages), and its id is part of the hash.
        let on = match &self.from {
            Some(image) => Some(ensure_packages(docker, image, &def.packages(), self.quiet).await?),
            None => None,
        };
        let hash = match &on {
            Some(base) => def.content_hash_on(&base.id),
            None => def.content_hash(),
        };
        let tag = format!("{}:{hash}", self.repository);
        if !self.force {
            if let Some(found) = cached(docker, &self.repository, &tag).await? {
                return Ok(found);
            }
        }

        let progress = Progress::new(self.quiet);
        let _lock = lock::acquire(&progress).await?;
        // Another task or process may have built it while we waited.
        if !self.force {
            if let Some(found) = cached(docker, &self.repository, &tag).await? {
                return Ok(found);
            }
        }

        let started = Instant::now();
        progress.step(&format!(
            "building image {tag} from {}",
            def.dir().display()
        ));
        let base = match on {
            Some(on) => on.tag,
            None => {
                let work_dir = work_dir(&self.dir);
                debootstrap::remove_stale(&work_dir, &progress).await;
                base::ensure_base(docker, &def.packages(), self.force, &work_dir, &progress).await?
            }
        };
        let id = node_build::build(docker, &def, &tag, &hash, &base, self.force, &progress).await?;
        tag_latest(docker, &self.repository, &tag, &id).await?;
        progress.step(&format!("built {tag} in {:.0?}", started.elapsed()));
        Ok(EnsuredImage {
            tag,
            id,
            built: true,
            base: Some(base),
        })
    }
}

/// The image if the engine has it, with `latest` pointed at it.
async fn cached(
    docker: &Docker,
    repository: &str,
    tag: &str,
) -> Result<Option<EnsuredImage>, ImageError> {
    let Some(id) = engine::image_id(docker, tag).await? else {
        return Ok(None);
    };
    tag_latest(docker, repository, tag, &id).await?;
    Ok(Some(EnsuredImage {
        tag: tag.to_owned(),
        id,
        built: false,
        base: None,
    }))
}

/// Points `<repository>:latest` at `id` unless it already is.
async fn tag_latest(
    docker: &Docker,
    repository: &str,
    tag: &str,
    id: &str,
) -> Result<(), ImageError> {
    let latest = format!("{repository}:latest");
    if engine::image_id(docker, &latest).await?.as_deref() == Some(id) {
        return Ok(());
    }
    engine::tag(docker, tag, repository, "latest").await
}

/// Where the temporary rootfs of an offline base goes: `$CARGO_TARGET_DIR/cluster-sim/`, else
/// `target/cluster-sim/` of the workspace holding the definition (the nearest parent with a
/// `Cargo.lock`), else `cluster-sim/` in the system temp dir. A target dir is on a real disk
/// and rarely mounted `noexec`, which debootstrap's chroot needs.
fn work_dir(definition_dir: &Path) -> PathBuf {
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(target).join("cluster-sim");
    }
    let dir = definition_dir
        .canonicalize()
        .unwrap_or_else(|_| definition_dir.to_path_buf());
    dir.ancestors()
        .skip(1)
        .find(|a| a.join("Cargo.lock").is_file())
        .map(|ws| ws.join("target").join("cluster-sim"))
        // A directory of our own: stale `rootfs-*` directories in it are removed.
        .unwrap_or_else(|| std::env::temp_dir().join("cluster-sim"))
}

/// The node image definition to use: `$CLUSTER_SIM_IMAGE_DIR` if set; else the nearest
/// `docker/node` (holding a `Dockerfile`) in the current directory or one of its parents;
/// else this source tree's own `docker/node`, if it still exists. `None` when none is found.
pub fn default_definition_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DEFINITION_DIR_VAR).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let has_dockerfile = |dir: &Path| dir.join("Dockerfile").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(found) = cwd
            .ancestors()
            .map(|a| a.join("docker").join("node"))
            .find(|d| has_dockerfile(d))
        {
            return Some(found);
        }
    }
    let baked = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docker")
        .join("node");
    has_dockerfile(&baked).then(|| baked.canonicalize().unwrap_or(baked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_definition_dir_finds_this_workspace() {
        // Tests run in the crate directory; the workspace's docker/node is a parent's child.
        if std::env::var_os(DEFINITION_DIR_VAR).is_some() {
            return;
        }
        let dir = default_definition_dir().expect("docker/node found");
        assert!(dir.join("Dockerfile").is_file(), "{}", dir.display());
        assert!(dir.ends_with("docker/node"), "{}", dir.display());
    }

    #[test]
    fn tag_is_the_node_repo_and_the_content_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").expect("write");
        let builder = ImageBuilder::new(dir.path());
        let tag = builder.tag().expect("tag");
        let hash = tag.strip_prefix("cluster-sim/node:").expect("repo prefix");
        assert_eq!(hash.len(), 12);
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCMD [\"x\"]\n")
            .expect("write");
        assert_ne!(builder.tag().expect("tag"), tag);
    }

    #[test]
    fn work_dir_is_under_the_workspace_target() {
        if std::env::var_os("CARGO_TARGET_DIR").is_some() {
            return;
        }
        let def = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docker/node");
        let dir = work_dir(&def);
        assert!(dir.ends_with("target/cluster-sim"), "{}", dir.display());
    }
}
