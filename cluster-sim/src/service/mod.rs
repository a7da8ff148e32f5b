//! Your own service on the nodes: workspace binaries built by cargo (`[[binary]]`), their glibc
//! checked against each node's, folder configs (`[[dir]]`) and files gathered back (`collect`).
//!
//! Backend-neutral: backends receive [`Placement`]s in their `NodeLaunch` and decide how a
//! binary gets there (docker mounts it read-only; ssh uploads it once per host).

pub mod build;
pub mod glibc;
pub mod hook_when;
pub mod hooks;
pub mod logrules;
pub mod revision;
pub mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use build::{BuildError, BuildRequest, Built};
pub use glibc::{GlibcVersion, NodeLibc};
pub use workspace::Workspace;

use crate::spec::{BinarySource, BinarySpec, ClusterSpec};

/// A built binary bound for one path on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// `kvd` or `package/bin`, for messages.
    pub what: String,
    /// The built file on this machine (immutable; named by its hash).
    pub source: PathBuf,
    /// Absolute destination on the node.
    pub dest: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Newest glibc it needs, if any.
    pub glibc: Option<GlibcVersion>,
    /// Whether the node may switch to another version of it at run time
    /// (`Backend::replace_binary`): backends then place it where it can be swapped.
    pub switchable: bool,
}

impl Placement {
    /// Checks the binary against a node's C library: one line naming both versions and the
    /// ways out when it cannot run there.
    pub fn check(&self, node: &NodeLibc) -> Result<(), String> {
        glibc::check(&self.what, self.glibc, node)
    }
}

/// The builds a spec needs, by `[[binary]]`.
pub type Builds = HashMap<BinarySpec, Arc<Built>>;

/// Builds every binary of `spec` (each once per process), in the spec's order; the test run's
/// profile unless a `[[binary]]` names one. `progress` receives cargo's status lines. Each
/// [`Built::path`] lies under cargo's target directory (`CARGO_TARGET_DIR` honoured).
///
/// ```no_run
/// use cluster_sim_core::{service, ClusterSpec};
/// use std::sync::Arc;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let spec = ClusterSpec::from_file("fixtures/clusters/kvd3.toml")?;
/// for (binary, built) in service::build_all(&spec, Arc::new(|line: &str| eprintln!("{line}"))).await? {
///     println!("{} -> {}", binary.bin, built.path.display()); // <target dir>/cluster-sim/bin/<sha256>/kvd
/// }
/// # Ok(()) }
/// ```
pub async fn build_all(
    spec: &ClusterSpec,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<Builds, BuildError> {
    let mut out = Builds::new();
    for b in &spec.binaries {
        let built = build_one(spec, b, progress.clone()).await?;
        out.insert(b.clone(), built);
    }
    Ok(out)
}

/// Builds (or finds built) one `[[binary]]` of `spec`: a workspace package as the tree is or
/// at a git revision, or a prebuilt file taken into the store.
pub async fn build_one(
    spec: &ClusterSpec,
    b: &BinarySpec,
    progress: Arc<dyn Fn(&str) + Send + Sync>,
) -> Result<Arc<Built>, BuildError> {
    let what = format!("binary {:?}", b.name);
    let no_ws = |message| BuildError {
        what: what.clone(),
        message,
    };
    let rev = match &b.source {
        BinarySource::Path(file) => {
            // The store of the workspace around the spec, else of the current directory's.
            let ws = Workspace::around(&spec.base_dir)
                .or_else(|_| Workspace::around(&std::env::current_dir().unwrap_or_default()))
                .map_err(no_ws)?;
            let (file, bin) = (file.clone(), b.bin.clone());
            return tokio::task::spawn_blocking(move || revision::prebuilt(&ws, &file, &bin))
                .await
                .unwrap_or_else(|e| {
                    Err(BuildError {
                        what: what.clone(),
                        message: format!("the copy task failed: {e}"),
                    })
                })
                .map(Arc::new);
        }
        BinarySource::Rev { commit, .. } => Some(commit.clone()),
        BinarySource::Workspace => None,
    };
    let found = if b.package == crate::fault::storage::FAULTFS_PACKAGE {
        Workspace::for_tool(&spec.base_dir, &b.package)
    } else {
        Workspace::for_package(&spec.base_dir, &b.package)
    };
    let ws = match found {
        Ok(ws) => ws,
        Err(_) if rev.is_some() => Workspace::around(&spec.base_dir).map_err(no_ws)?,
        Err(m) => return Err(no_ws(m)),
    };
    let req = BuildRequest {
        package: b.package.clone(),
        bin: b.bin.clone(),
        profile: b.profile.clone().unwrap_or_else(|| ws.current_profile()),
        target: b.target.clone(),
        rev,
    };
    build::build_with(&ws, &req, progress, revision::build_at).await
}

/// The placements of one node: its binaries with destinations made absolute against `workdir`.
pub fn placements(binaries: &[BinarySpec], builds: &Builds, workdir: &str) -> Vec<Placement> {
    binaries
        .iter()
        .filter_map(|b| Some(placement(b, builds.get(b)?, workdir)))
        .collect()
}

/// Where `built`, a build of `b`, goes on a node whose working directory is `workdir`.
pub fn placement(b: &BinarySpec, built: &Built, workdir: &str) -> Placement {
    let dest = if b.dest.starts_with('/') {
        b.dest.clone()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), b.dest)
    };
    Placement {
        what: if b.name == b.package {
            built.request.describe()
        } else {
            format!("{} {:?}", built.request.describe(), b.name)
        },
        source: built.path.clone(),
        dest,
        sha256: built.sha256.clone(),
        size: built.size,
        glibc: built.glibc,
        switchable: b.switchable,
    }
}
